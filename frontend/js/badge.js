// @ts-check
// The moderator badge on a message the server marked `moderator` (sent from a moderator's
// connection; a guest cannot set it): a label after the name, and the message set apart.

import { setText } from "./i18n.js";

/** @param {HTMLElement} li a shown message */
export function markModerator(li) {
  li.classList.add("from-moderator");
  const nick = li.querySelector(".meta .nick");
  if (!nick || nick.parentElement?.querySelector(".mod-mark")) return;
  const mark = document.createElement("span");
  mark.className = "mod-mark";
  setText(mark, "badge.moderator");
  nick.after(" ", mark);
}
