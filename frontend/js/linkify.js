// @ts-check
// Finds web links in message text so the page can make them clickable. Pure (no DOM): it only
// splits the text into plain and link pieces; the timeline turns link pieces into <a> elements
// through textContent and the href property, never through HTML. Only http: and https: become
// links, so "javascript:" and "data:" stay text whatever the text says.

/** A candidate: an explicit http(s) scheme, then anything up to whitespace or a quote/angle. */
const CANDIDATE = /\bhttps?:\/\/[^\s<>"'`]+/giu;
/** Punctuation that usually ends the sentence around a link rather than the link itself. */
const TRAILING = /[.,;:!?…]+$/u;
/** @type {Record<string, string>} */
const PAIRS = { ")": "(", "]": "[", "}": "{" };

/**
 * Splits `text` into `[{ text }, { text, href }, …]` in order; joined, the pieces' `text` is
 * exactly the input. `href` is the parsed, normalised URL (http: or https: only).
 */
/** @param {string} text @returns {{ text: string, href?: string }[]} */
export function linkify(text) {
  const s = String(text ?? "");
  const out = [];
  let last = 0;
  for (const match of s.matchAll(CANDIDATE)) {
    const raw = trimTrailing(match[0]);
    const href = safeHref(raw);
    if (!href) continue;
    if (match.index > last) out.push({ text: s.slice(last, match.index) });
    out.push({ text: raw, href });
    last = match.index + raw.length;
  }
  if (last < s.length || out.length === 0) out.push({ text: s.slice(last) });
  return out;
}

/** The normalised URL when `raw` is an absolute http(s) URL with a host, else null. */
/** @param {string} raw */
export function safeHref(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname) return null;
  return url.href;
}

/** Drops sentence punctuation and closing brackets that have no opening one inside the link. */
/** @param {string} raw */
function trimTrailing(raw) {
  let s = raw;
  for (;;) {
    const before = s;
    s = s.replace(TRAILING, "");
    const close = s.at(-1) ?? "";
    if (close in PAIRS && count(s, PAIRS[close]) < count(s, close)) s = s.slice(0, -1);
    if (s === before) return s;
  }
}

/** @param {string} s @param {string} ch */
function count(s, ch) {
  let n = 0;
  for (const c of s) if (c === ch) n++;
  return n;
}
