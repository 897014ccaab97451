// @ts-check
// The page inside an iframe: the embedding page may set the theme
// (`postMessage({type: "theme", theme: "dark"})`) and the language
// (`postMessage({type: "lang", lang: "ko"})`) at any time. Messages from any other window or
// frame are ignored. The chat says `{type: "chat:ready", room}` to the parent once listening,
// so the parent can send its current choices.

import { applyTheme } from "./theme.js";
import { setLang } from "./i18n.js";

/** @param {string | null} room */
export function followParent(room) {
  if (window.parent === window) return;
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    const data = event.data;
    if (!data || typeof data !== "object") return;
    if (data.type === "theme") applyTheme(data.theme);
    else if (data.type === "lang") setLang(data.lang);
  });
  window.parent.postMessage({ type: "chat:ready", room }, "*");
}
