// @ts-check
// Light/dark theme: from `?theme=` at load, and live from an embedding page (embedding.js).
// Without either, the system preference applies (CSS `color-scheme: light dark`).

/** "light" | "dark" | "auto" (follow the system), or null for anything else. @param {unknown} value */
export function normalizeTheme(value) {
  const v = String(value ?? "").toLowerCase();
  if (v === "light" || v === "dark") return v;
  if (v === "auto" || v === "system") return "auto";
  return null;
}

/** @param {unknown} theme */
export function applyTheme(theme) {
  const t = normalizeTheme(theme);
  if (!t) return false;
  const root = document.documentElement;
  if (t === "auto") delete root.dataset.theme;
  else root.dataset.theme = t;
  return true;
}
