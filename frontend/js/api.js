// @ts-check
// The HTTP half of the contract: sessions, history pages, room info. Errors carry the
// server's `{"error":{"code","message"}}` so the page can show what was wrong.

import { t } from "./i18n.js";

const TIMEOUT_MS = 10000;

/** What went wrong, for a person: an Error's message, or the thing thrown. @param {unknown} err */
export function messageOf(err) {
  return err instanceof Error ? err.message : String(err);
}

/** Whether an error is a timeout (AbortSignal.timeout). @param {unknown} err */
export const timedOut = (err) => err instanceof Error && err.name === "TimeoutError";

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * One JSON call; `headers` are added (e.g. authorization). Throws ApiError.
 * @param {string} apiBase
 * @param {string} path
 * @param {{ method?: string, body?: unknown, headers?: Record<string, string> }} [o]
 * @returns {Promise<any>}
 */
export async function request(apiBase, path, { method = "GET", body, headers = {} } = {}) {
  let response;
  try {
    response = await fetch(`${apiBase}${path}`, {
      method,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw new ApiError(0, "network", t("net.unreachable", { error: timedOut(err) ? t("net.timedOut") : messageOf(err) }));
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Non-JSON body: reported below with the status.
  }
  if (!response.ok) {
    const e = data && data.error;
    throw new ApiError(response.status, e?.code || "http_error", e?.message || `${method} ${path} failed with HTTP ${response.status}.`);
  }
  if (data === null) throw new ApiError(response.status, "bad_response", `${method} ${path} did not answer JSON.`);
  return data;
}

/**
 * `POST /api/session`: a new guest (no token) or the same one (valid token), optionally renamed.
 * @param {string} apiBase
 * @param {{ token?: string, nickname?: string }} [o]
 */
export function postSession(apiBase, { token, nickname } = {}) {
  /** @type {Record<string, string>} */
  const body = {};
  if (token) body.token = token;
  if (nickname !== undefined) body.nickname = nickname;
  return request(apiBase, "/api/session", { method: "POST", body });
}

/**
 * `GET /api/rooms/{room}/messages`: `{ messages (oldest first), has_more }`.
 * @param {string} apiBase
 * @param {string} room
 * @param {{ before?: number, after?: number, limit?: number }} [o]
 */
export function getHistory(apiBase, room, { before, after, limit } = {}) {
  const q = new URLSearchParams();
  if (before !== undefined) q.set("before", String(before));
  if (after !== undefined) q.set("after", String(after));
  if (limit !== undefined) q.set("limit", String(limit));
  const qs = q.toString();
  return request(apiBase, `/api/rooms/${encodeURIComponent(room)}/messages${qs ? `?${qs}` : ""}`);
}

/**
 * `GET /api/rooms/{room}`: `{ room, last_seq, online, members }`.
 * @param {string} apiBase @param {string} room
 */
export function getRoom(apiBase, room) {
  return request(apiBase, `/api/rooms/${encodeURIComponent(room)}`);
}
