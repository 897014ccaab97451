// Light/dark theme: from `?theme=` at load, and live from an embedding page through
// `postMessage({type: "theme", theme: "dark"})`. Without either, the system preference applies
// (CSS `color-scheme: light dark`).

/** "light" | "dark" | "auto" (follow the system), or null for anything else. */
export function normalizeTheme(value) {
  const v = String(value ?? "").toLowerCase();
  if (v === "light" || v === "dark") return v;
  if (v === "auto" || v === "system") return "auto";
  return null;
}

export function applyTheme(theme) {
  const t = normalizeTheme(theme);
  if (!t) return false;
  const root = document.documentElement;
  if (t === "auto") delete root.dataset.theme;
  else root.dataset.theme = t;
  return true;
}

/**
 * Follows theme messages from the embedding page only (not from other frames or windows).
 * Tells the parent the chat is ready so it can send its current theme.
 */
export function followParentTheme(room) {
  if (window.parent === window) return;
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    const data = event.data;
    if (data && typeof data === "object" && data.type === "theme") applyTheme(data.theme);
  });
  window.parent.postMessage({ type: "chat:ready", room }, "*");
}
