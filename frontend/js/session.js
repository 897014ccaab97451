// The guest identity kept in localStorage (token, user, whether the person confirmed the
// nickname), so a return visit skips the prompt. Storage can be unavailable (privacy modes,
// blocked third-party iframes): then the identity lives for the page only.

const KEY = "chat.session.v1";

function storage() {
  try {
    const s = window.localStorage;
    s.getItem(KEY);
    return s;
  } catch {
    return null;
  }
}

let memory = null;

/** `{ token, user, confirmed }` or null. */
export function loadSession() {
  const s = storage();
  const raw = s ? s.getItem(KEY) : memory;
  if (!raw) return null;
  try {
    const v = JSON.parse(raw);
    if (typeof v?.token === "string" && v.user && typeof v.user.id === "number") return v;
  } catch {
    // Corrupt entry: treated as a first visit.
  }
  return null;
}

export function saveSession(session) {
  const raw = JSON.stringify(session);
  const s = storage();
  if (s) {
    try {
      s.setItem(KEY, raw);
      return;
    } catch {
      // Quota or policy: fall back to memory.
    }
  }
  memory = raw;
}
