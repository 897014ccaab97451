// The contract's limits on what a person types, checked before anything is sent so the
// message names the rule; the server checks the same rules again.

export const NICKNAME_MIN = 2;
export const NICKNAME_MAX = 15;
export const TEXT_MAX = 2000;

/** Characters as the server counts them (Unicode scalar values, not UTF-16 units). */
export const charCount = (s) => [...s].length;

/** Returns `{ ok: true, value }` (trimmed) or `{ ok: false, message }`. */
export function checkNickname(raw) {
  const value = String(raw ?? "").trim();
  const n = charCount(value);
  if (n < NICKNAME_MIN || n > NICKNAME_MAX) {
    return { ok: false, message: `A nickname has ${NICKNAME_MIN}–${NICKNAME_MAX} characters (this one has ${n}).` };
  }
  if (/\p{Cc}/u.test(value)) return { ok: false, message: "A nickname cannot contain control characters." };
  return { ok: true, value };
}

/**
 * Returns `{ ok: true, value }` or `{ ok: false, message }`; `message` is null for empty input.
 * With `allowEmpty` (a message that carries an image) empty text is fine.
 */
export function checkText(raw, { allowEmpty = false } = {}) {
  const value = String(raw ?? "");
  if (value.trim() === "") return allowEmpty ? { ok: true, value: "" } : { ok: false, message: null };
  const n = charCount(value);
  if (n > TEXT_MAX) return { ok: false, message: `A message has at most ${TEXT_MAX} characters (this one has ${n}).` };
  return { ok: true, value };
}
