// @ts-check
// The contract's limits on what a person types, checked before anything is sent so the
// message names the rule; the server checks the same rules again.

import { NICKNAME_MIN, NICKNAME_MAX, TEXT_MAX } from "./limits.js";
import { t } from "./i18n.js";

/** @typedef {{ ok: true, value: string } | { ok: false, message: string | null }} Check */

/** Characters as the server counts them (Unicode scalar values, not UTF-16 units). */
export const charCount = (/** @type {string} */ s) => [...s].length;

/** Returns `{ ok: true, value }` (trimmed) or `{ ok: false, message }`. @returns {Check} */
export function checkNickname(/** @type {unknown} */ raw) {
  const value = String(raw ?? "").trim();
  const n = charCount(value);
  if (n < NICKNAME_MIN || n > NICKNAME_MAX) {
    return { ok: false, message: t("nick.length", { min: NICKNAME_MIN, max: NICKNAME_MAX, count: n }) };
  }
  if (/\p{Cc}/u.test(value)) return { ok: false, message: t("nick.control") };
  return { ok: true, value };
}

/**
 * Returns `{ ok: true, value }` or `{ ok: false, message }`; `message` is null for empty input.
 * With `allowEmpty` (a message that carries an image) empty text is fine.
 * @param {unknown} raw
 * @param {{ allowEmpty?: boolean }} [o]
 * @returns {Check}
 */
export function checkText(raw, { allowEmpty = false } = {}) {
  const value = String(raw ?? "");
  if (value.trim() === "") return allowEmpty ? { ok: true, value: "" } : { ok: false, message: null };
  const n = charCount(value);
  if (n > TEXT_MAX) return { ok: false, message: t("text.tooLong", { max: TEXT_MAX, count: n }) };
  return { ok: true, value };
}
