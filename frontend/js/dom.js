// @ts-check
// Finding the page's elements by id, typed: a missing or different element is a bug in
// index.html, reported by name at once rather than as a later "null has no property".

/**
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @param {{ new (): T }} [type]  e.g. HTMLInputElement
 * @returns {T}
 */
export function byId(id, type) {
  const el = document.getElementById(id);
  const want = type ?? HTMLElement;
  if (!(el instanceof want)) throw new Error(`index.html has no ${want.name} #${id}`);
  return /** @type {T} */ (el);
}

/**
 * A `<button type="button">` with a click handler.
 * @param {string} className
 * @param {(event: MouseEvent) => void} onClick
 */
export function button(className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.addEventListener("click", onClick);
  return b;
}
