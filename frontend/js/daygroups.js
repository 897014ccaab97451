// @ts-check
// When the message list shows a date separator, and which messages are grouped under one name.
// Pure (no DOM) so the rules are unit-tested in Node; the timeline applies them to its elements.
// Days are the reader's local calendar days; labels are in the page's language.

import { lang, t } from "./i18n.js";

/** A message continues the previous one's group when the same person sent it within this. */
export const GROUP_GAP_MS = 5 * 60 * 1000;

/** The local calendar day of `ts` (ms since the epoch), as "YYYY-MM-DD". @param {number} ts */
export function dayKey(ts) {
  const d = new Date(ts);
  /** @param {number} n */
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/**
 * "Today", "Yesterday", or the date (with the year when it is not this year).
 * @param {number} ts
 * @param {string} [locale]  default: the page's language
 */
export function dayLabel(ts, now = Date.now(), locale = lang()) {
  const key = dayKey(ts);
  if (key === dayKey(now)) return t("room.today");
  const yesterday = new Date(now);
  yesterday.setDate(yesterday.getDate() - 1);
  if (key === dayKey(yesterday.getTime())) return t("room.yesterday");
  const sameYear = new Date(ts).getFullYear() === new Date(now).getFullYear();
  const fmt = new Intl.DateTimeFormat(locale, {
    weekday: "long",
    day: "numeric",
    month: "long",
    ...(sameYear ? {} : { year: "numeric" }),
  });
  return fmt.format(new Date(ts));
}

/**
 * Whether `cur` is shown as a continuation of `prev` (no repeated name and avatar): same
 * sender, same day, close in time, and neither is a removed message. Each is
 * `{ userId, ts, removed? }` or null.
 * @typedef {{ userId: string | undefined, ts: number, removed?: boolean } | null} Facts
 * @param {Facts} prev
 * @param {Facts} cur
 */
export function continues(prev, cur) {
  if (!prev || !cur || prev.removed || cur.removed) return false;
  if (prev.userId === undefined || prev.userId !== cur.userId) return false;
  if (dayKey(prev.ts) !== dayKey(cur.ts)) return false;
  const gap = cur.ts - prev.ts;
  return gap >= 0 && gap < GROUP_GAP_MS;
}
