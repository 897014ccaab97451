// Where the page finds its server, and what its URL asks for. Pure functions of the page's
// location and the optional window.CHAT_CONFIG, so they are unit-tested in Node.

/** Room ids of the contract: 1–64 of [A-Za-z0-9_-]. */
export const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The API and WebSocket bases. By default the page's own origin (so the same files work behind
 * chat-server, an ALB or CloudFront); `config.apiBase` / `config.wsBase` override either.
 * Returns `{ apiBase, wsUrl }` where `apiBase` has no trailing slash and `wsUrl` is the full
 * URL of the WebSocket endpoint.
 */
export function endpoints(location, config = {}) {
  const trim = (s) => String(s).replace(/\/+$/, "");
  const apiBase = trim(config.apiBase || location.origin);
  let wsBase = config.wsBase ? trim(config.wsBase) : apiBase.replace(/^http/i, "ws");
  if (!/^wss?:\/\//i.test(wsBase)) {
    throw new Error(`CHAT_CONFIG.wsBase must start with ws:// or wss://, got ${JSON.stringify(wsBase)}`);
  }
  return { apiBase, wsUrl: `${wsBase}/ws` };
}

/**
 * What the URL asks for: `/room/{room}` opens a room, anything else is the landing page.
 * Returns `{ view: "landing" }`, `{ view: "room", room, title, theme }` or
 * `{ view: "landing", error }` for a malformed room id.
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
    return { view: "landing", theme, error: `"${room}" is not a room name: use 1–64 letters, digits, - or _.` };
  }
  const title = (params.get("title") || "").trim() || `Room ${room}`;
  return { view: "room", room, title, theme };
}

/** A fresh room id for "Create a new room": short, readable, valid. */
export function newRoomId(random = Math.random) {
  const alphabet = "abcdefghijkmnpqrstuvwxyz23456789";
  let id = "";
  for (let i = 0; i < 8; i++) id += alphabet[Math.floor(random() * alphabet.length)];
  return id;
}
