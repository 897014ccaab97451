// @ts-check
// The page's language: Korean or English, one catalogue per language (i18n/en.js, i18n/ko.js),
// chosen by `?lang=ko|en`, else the browser's preferences, and switched live by the embedding
// page (`postMessage({type: "lang", lang})`, see theme.js). Text put on the page through
// `setText` remembers its key, so a switch re-translates it in place; parts that format
// dates or counts themselves subscribe with `onLanguageChange`.

import en from "./i18n/en.js";
import ko from "./i18n/ko.js";

/** @typedef {"en" | "ko"} Lang */
/** @typedef {Record<string, string | number>} Params */
/** @typedef {string | { one?: string, other: string }} Entry */

/** @type {Record<Lang, Record<string, Entry>>} */
export const CATALOGUES = { en, ko };
export const LANGS = /** @type {Lang[]} */ (Object.keys(CATALOGUES));

/** @type {Lang} */
let current = "en";
/** @type {Set<() => void>} */
const listeners = new Set();

/** "ko" | "en" for a language tag ("ko-KR", "EN"), or null for any other language. @param {unknown} tag */
export function normalizeLang(tag) {
  const base = String(tag ?? "").trim().toLowerCase().split(/[-_]/)[0];
  return base === "ko" || base === "en" ? /** @type {Lang} */ (base) : null;
}

/**
 * The language to start in: `?lang=` when it names one we have, else the first of the
 * browser's preferred languages that we have, else English.
 * @param {string} search  location.search
 * @param {readonly string[]} preferred  navigator.languages
 * @returns {Lang}
 */
export function pickLang(search, preferred) {
  const forced = normalizeLang(new URLSearchParams(search).get("lang"));
  if (forced) return forced;
  for (const tag of preferred || []) {
    const l = normalizeLang(tag);
    if (l) return l;
  }
  return "en";
}

/** @returns {Lang} */
export function lang() {
  return current;
}

/**
 * The catalogue's text for `key` in `l` (default: the current language), with `{name}`
 * placeholders filled from `params`; `{count}` picks the plural form and is formatted.
 * @param {string} key
 * @param {Params} [params]
 * @param {Lang} [l]
 */
export function translate(key, params = {}, l = current) {
  /** @type {Entry | undefined} */
  const entry = CATALOGUES[l][key] ?? CATALOGUES.en[key];
  if (entry === undefined) throw new Error(`i18n: no text for "${key}"`);
  let text;
  if (typeof entry === "string") {
    text = entry;
  } else {
    const rule = new Intl.PluralRules(l).select(Number(params.count ?? 0));
    text = (rule === "one" ? entry.one : undefined) ?? entry.other;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!(name in params)) return whole;
    const v = params[name];
    return typeof v === "number" ? formatNumber(v, l) : String(v);
  });
}

/** Shorthand for `translate` in the current language. */
export const t = (/** @type {string} */ key, /** @type {Params} */ params = {}) => translate(key, params);

/**
 * What to show for an error the server sent (`{code, message}`): in English its own message,
 * which names the rule exactly; in another language the catalogue's `server.{code}` text
 * (docs/PROTOCOL.md section 4 lists the codes; a unit test keeps the catalogues complete).
 * @param {string | undefined} code
 * @param {string | undefined} message
 */
export function serverMessage(code, message) {
  const key = `server.${code}`;
  if ((current === "en" && message) || !(key in CATALOGUES[current])) return message || String(code ?? "");
  return translate(key);
}

/** @param {number} n @param {Lang} [l] */
export function formatNumber(n, l = current) {
  return new Intl.NumberFormat(l).format(n);
}

/** Hours and minutes, e.g. "14:05" / "오후 2:05". @param {number | Date} when */
export function formatTime(when) {
  return new Intl.DateTimeFormat(current, { hour: "2-digit", minute: "2-digit" }).format(when);
}

/** A full date and time, for a tooltip. @param {number | Date} when */
export function formatDateTime(when) {
  return new Intl.DateTimeFormat(current, { dateStyle: "medium", timeStyle: "medium" }).format(when);
}

/**
 * Puts translated text in `el` and remembers the key, so a language switch redraws it.
 * @param {HTMLElement} el
 * @param {string} key
 * @param {Params} [params]
 */
export function setText(el, key, params) {
  el.dataset.i18n = key;
  if (params && Object.keys(params).length) el.dataset.i18nArgs = JSON.stringify(params);
  else delete el.dataset.i18nArgs;
  el.textContent = translate(key, params);
}

/**
 * Puts a translated aria-label on `el` and remembers the key (the same `params` serve its text,
 * if set with `setText`).
 * @param {HTMLElement} el
 * @param {string} key
 * @param {Params} [params]
 */
export function setLabel(el, key, params) {
  el.dataset.i18nLabel = key;
  if (params && Object.keys(params).length) el.dataset.i18nArgs = JSON.stringify(params);
  el.setAttribute("aria-label", translate(key, params));
}

/**
 * Translates everything marked in `root`: `data-i18n` (text), `data-i18n-label` (aria-label),
 * `data-i18n-title` (title), `data-i18n-placeholder` (placeholder), each with the optional
 * JSON `data-i18n-args`.
 * @param {ParentNode} root
 */
export function translateTree(root) {
  /** @type {[string, (el: HTMLElement, text: string) => void][]} */
  const kinds = [
    ["i18n", (el, s) => (el.textContent = s)],
    ["i18nLabel", (el, s) => el.setAttribute("aria-label", s)],
    ["i18nTitle", (el, s) => (el.title = s)],
    ["i18nPlaceholder", (el, s) => el.setAttribute("placeholder", s)],
  ];
  const selector = "[data-i18n], [data-i18n-label], [data-i18n-title], [data-i18n-placeholder]";
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll(selector))) {
    const args = el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : {};
    for (const [attr, put] of kinds) {
      const key = el.dataset[attr];
      if (key) put(el, translate(key, args));
    }
  }
}

/** Switches the page to `l` and redraws every translated text. @param {string} l */
export function setLang(l) {
  const next = normalizeLang(l);
  if (!next) return false;
  current = next;
  document.documentElement.lang = next;
  translateTree(document);
  for (const fn of listeners) fn();
  return true;
}

/** Calls `fn` after each language switch. @param {() => void} fn */
export function onLanguageChange(fn) {
  listeners.add(fn);
}
