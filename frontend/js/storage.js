// @ts-check
// The browser's localStorage as JSON values, for what the page keeps between visits (the guest
// identity, my rooms, unsent messages, preferences). Storage can be unavailable (privacy
// modes, blocked third-party iframes) or full: then values live in memory for this page only.

/** @type {Map<string, string>} */
const memory = new Map();

function local() {
  try {
    const s = globalThis.localStorage;
    s.getItem("chat.probe");
    return s;
  } catch {
    return null;
  }
}

/** The value under `key`, or `fallback` when there is none or it is not JSON. @param {string} key @param {any} [fallback] */
export function readJson(key, fallback = null) {
  const s = local();
  const raw = s ? s.getItem(key) : memory.get(key);
  if (raw == null) return fallback;
  try {
    return JSON.parse(raw);
  } catch {
    return fallback;
  }
}

/** Keeps `value` under `key` (in memory when storage refuses it). @param {string} key @param {unknown} value */
export function writeJson(key, value) {
  const raw = JSON.stringify(value);
  const s = local();
  if (s) {
    try {
      s.setItem(key, raw);
      return;
    } catch {
      // Quota or policy: fall back to memory.
    }
  }
  memory.set(key, raw);
}

/** Forgets `key`. @param {string} key */
export function removeKey(key) {
  memory.delete(key);
  try {
    globalThis.localStorage.removeItem(key);
  } catch {
    // Nothing kept.
  }
}
