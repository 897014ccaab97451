// @ts-check
// Avatars: the server names an animal per guest; the page draws it as an inline SVG (art.js,
// the same on every system, no emoji font needed) on a colour derived from the user id, and
// names it in the page's language. Unknown names fall back to their first letter.

import { AVATAR_ART, ICON_ART } from "./art.js";
import { translate } from "./i18n.js";
import { NICKNAME_MAX } from "./limits.js";

/** @typedef {{ id: number, nickname: string, avatar?: string }} User */

const SVG_NS = "http://www.w3.org/2000/svg";

/** True when the page has a drawing for this avatar name. @param {unknown} name */
export function hasArt(name) {
  return Object.hasOwn(AVATAR_ART, String(name ?? "").toLowerCase());
}

/** A stable hue per user, so the same person keeps the same colour everywhere. @param {unknown} userId */
export function avatarHue(userId) {
  return (Number(userId) * 137) % 360;
}

/**
 * The animal's name in `lang` (default: the page's), e.g. "Otter" / "수달"; an unknown name as
 * the server sent it.
 * @param {unknown} avatar
 * @param {import("./i18n.js").Lang} [lang]
 */
export function animalName(avatar, lang) {
  const key = String(avatar ?? "").toLowerCase();
  return hasArt(key) ? translate(`animal.${key}`, {}, lang) : String(avatar ?? "");
}

/**
 * The nickname of someone who typed none: "Anonymous Otter" / "익명의 수달", or the shorter
 * form when the long one would pass the nickname limit ("Anon Hedgehog"). Null for an avatar
 * the page cannot name.
 * @param {unknown} avatar
 * @param {import("./i18n.js").Lang} [lang]
 */
export function anonymousName(avatar, lang) {
  if (!hasArt(avatar)) return null;
  const animal = animalName(avatar, lang);
  const long = translate("nick.anonymous", { animal }, lang);
  return [...long].length <= NICKNAME_MAX ? long : translate("nick.anonymousShort", { animal }, lang);
}

/**
 * An `<svg>` drawing on a 36×36 view box, hidden from assistive technology (its meaning is
 * always said in text next to it).
 * @param {string} body  SVG markup from art.js (the page's own constants, never user input)
 */
export function svgOf(body) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 36 36");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.innerHTML = body;
  return svg;
}

/** An icon of the page (bell, picture, link). @param {keyof typeof ICON_ART} name */
export function icon(name) {
  const svg = svgOf(ICON_ART[name]);
  svg.classList.add("icon-svg");
  return svg;
}

/**
 * Fills `el` (a span) with the user's avatar.
 * @param {HTMLElement} el
 * @param {Partial<User> | null | undefined} user
 */
export function paintAvatar(el, user) {
  const key = String(user?.avatar ?? "").toLowerCase();
  if (hasArt(key)) {
    el.replaceChildren(svgOf(AVATAR_ART[/** @type {keyof typeof AVATAR_ART} */ (key)]));
  } else {
    el.textContent = key ? key[0].toUpperCase() : "?";
  }
  el.dataset.avatar = key;
  el.style.setProperty("--avatar-hue", String(avatarHue(user?.id ?? 0)));
  el.title = key ? animalName(key) : "";
}

/** Renames the avatars' tooltips after a language switch. @param {ParentNode} root */
export function retitleAvatars(root) {
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll(".avatar[data-avatar]"))) {
    el.title = el.dataset.avatar ? animalName(el.dataset.avatar) : "";
  }
}
