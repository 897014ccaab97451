// @ts-check
// The room page's small views: the connection status, who I am, the serving colour, the
// moderator badge, the participant panel and the composer's error and status lines. Each
// writes translated text (setText), so a language switch redraws it.

import { byId } from "./dom.js";
import { setLabel, setText, t } from "./i18n.js";
import { paintAvatar } from "./avatar.js";

/** @typedef {import("./session.js").User} User */

/**
 * The connection status: `state` names its look and, without `text`, its words.
 * @param {string} state
 * @param {{ key: string, params?: Record<string, string | number> }} [text]  other words
 */
export function setStatus(state, text) {
  const el = byId("conn-status");
  el.dataset.state = state;
  setText(el, text?.key ?? `status.${state}`, text?.params);
  document.body.dataset.connection = state;
}

/** @param {User} user */
export function showMe(user) {
  byId("me-nick").textContent = user.nickname;
  paintAvatar(byId("me-avatar"), user);
  setLabel(byId("nick-button"), "room.meLabel", { name: user.nickname });
}

/** @param {{ color?: string, task?: string, version?: string } | undefined} server */
export function showServer(server) {
  const badge = byId("server-badge");
  const color = String(server?.color || "unknown");
  badge.textContent = color;
  badge.dataset.color = color;
  const params = { color, task: server?.task ?? "?", version: server?.version ?? "?" };
  badge.dataset.i18nTitle = "server.badgeTitle";
  setLabel(badge, "server.badgeLabel", params);
  badge.title = t("server.badgeTitle", params);
  badge.hidden = false;
}

/** The "moderating as" badge. @param {string | null} name */
export function showModeratorBadge(name) {
  const badge = byId("moderator-badge");
  badge.hidden = !name;
  if (name) setText(badge, "moderator.badge", { name });
  else badge.textContent = "";
  document.body.classList.toggle("moderating", Boolean(name));
}

/** @param {boolean} show */
export function showParticipants(show) {
  byId("participants").hidden = !show;
  byId("online-toggle").setAttribute("aria-expanded", String(show));
}

/**
 * A line under the composer: translated (`key` and `params`), or a message that came from
 * elsewhere (`text`, e.g. the server's), or nothing.
 * @param {string} id  composer-error | mod-status | upload-status
 * @param {{ key: string, params?: Record<string, string | number> } | string | null} what
 */
export function showLine(id, what) {
  const el = byId(id);
  if (what && typeof what === "object") {
    setText(el, what.key, what.params);
  } else {
    delete el.dataset.i18n;
    delete el.dataset.i18nArgs;
    el.textContent = what || "";
  }
  el.hidden = !what;
}

/** The composer's error line. @param {{ key: string, params?: Record<string, string | number> } | string | null} what */
export const showComposerError = (what) => showLine("composer-error", what);
