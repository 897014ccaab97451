// @ts-check
// Where the page finds its server, and what its URL asks for. Pure functions of the page's
// location and the optional window.CHAT_CONFIG, so they are unit-tested in Node.

import { ROOM_MAX } from "./limits.js";

/** @typedef {{ apiBase?: string, wsBase?: string }} ChatConfig */
/**
 * @typedef {{ view: "landing", theme: string | null, error?: { room: string } }} LandingRoute
 * @typedef {{ view: "room", room: string, title: string | null, theme: string | null }} RoomRoute
 * @typedef {{ view: "projector", room: string, title: string | null, theme: string | null }} ProjectorRoute
 * @typedef {LandingRoute | RoomRoute | ProjectorRoute} Route
 */

/** Room ids of the contract: 1–64 of [A-Za-z0-9_-]. */
export const ROOM_RE = new RegExp(`^[A-Za-z0-9_-]{1,${ROOM_MAX}}$`);

/**
 * The API and WebSocket bases. By default the page's own origin (so the same files work behind
 * chat-server, an ALB or CloudFront); `config.apiBase` / `config.wsBase` override either.
 * Returns `{ apiBase, wsUrl }` where `apiBase` has no trailing slash and `wsUrl` is the full
 * URL of the WebSocket endpoint.
 * @param {{ origin: string }} location
 * @param {ChatConfig} [config]
 */
export function endpoints(location, config = {}) {
  /** @param {string} s */
  const trim = (s) => String(s).replace(/\/+$/, "");
  const apiBase = trim(config.apiBase || location.origin);
  let wsBase = config.wsBase ? trim(config.wsBase) : apiBase.replace(/^http/i, "ws");
  if (!/^wss?:\/\//i.test(wsBase)) {
    throw new Error(`CHAT_CONFIG.wsBase must start with ws:// or wss://, got ${JSON.stringify(wsBase)}`);
  }
  return { apiBase, wsUrl: `${wsBase}/ws` };
}

/**
 * What the URL asks for: `/room/{room}` opens a room (`?view=projector`: its projector view),
 * anything else is the landing page; a malformed room id is the landing page with
 * `error: { room }`. `title` is `?title=` (null without: the page names the room).
 * @param {string} pathname
 * @param {string} search
 * @returns {Route}
 */
export function parseRoute(pathname, search) {
  const params = new URLSearchParams(search);
  const theme = params.get("theme");
  const match = /^\/room\/([^/]*)\/?$/.exec(pathname);
  if (!match) return { view: "landing", theme };
  let room;
  try {
    room = decodeURIComponent(match[1]);
  } catch {
    room = match[1];
  }
  if (!ROOM_RE.test(room)) {
    return { view: "landing", theme, error: { room } };
  }
  const title = (params.get("title") || "").trim() || null;
  return params.get("view") === "projector" ? { view: "projector", room, title, theme } : { view: "room", room, title, theme };
}

/**
 * The address people use to join `room` (for the share dialog and the projector): the page's
 * origin and path, keeping `?title=` and nothing else (not a theme, language or view).
 * @param {{ origin: string }} location
 * @param {string} room
 * @param {string | null} title
 */
export function roomUrl(location, room, title) {
  const url = new URL(`/room/${encodeURIComponent(room)}`, location.origin);
  if (title) url.searchParams.set("title", title);
  return url.href;
}

/**
 * The query a link to another page of the chat keeps from this one: `?theme=` and `?lang=`
 * (a forced look and language hold across the landing page and rooms).
 * @param {string} search
 */
export function carriedQuery(search) {
  const from = new URLSearchParams(search);
  const out = new URLSearchParams();
  for (const key of ["theme", "lang"]) {
    const v = from.get(key);
    if (v) out.set(key, v);
  }
  const s = out.toString();
  return s ? `?${s}` : "";
}

/** A fresh room id for "Create a new room": short, readable, valid. */
export function newRoomId(random = Math.random) {
  const alphabet = "abcdefghijkmnpqrstuvwxyz23456789";
  let id = "";
  for (let i = 0; i < 8; i++) id += alphabet[Math.floor(random() * alphabet.length)];
  return id;
}
