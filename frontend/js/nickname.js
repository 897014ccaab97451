// @ts-check
// The nickname dialog: asked on the first visit (where "continue" keeps the name made from the
// avatar, e.g. "Anonymous Otter"), and whenever the person wants to change the name.

import { byId } from "./dom.js";
import { serverMessage, setText, t } from "./i18n.js";
import { NICKNAME_MAX, NICKNAME_MIN } from "./limits.js";
import { checkNickname } from "./validate.js";
import { ApiError, messageOf } from "./api.js";
import { defaultNickname, rename } from "./identity.js";
import { saveSession } from "./session.js";
import { showMe } from "./views.js";

/** @typedef {import("./session.js").Session} Session */

/**
 * Shows the dialog; resolves with the (possibly renamed) confirmed session.
 * @param {string} apiBase
 * @param {Session} session
 * @param {boolean} firstVisit
 * @returns {Promise<Session>}
 */
export function askNickname(apiBase, session, firstVisit) {
  const dialog = byId("nick-dialog", HTMLDialogElement);
  const form = byId("nick-form", HTMLFormElement);
  const input = byId("nick-input", HTMLInputElement);
  const errorEl = byId("nick-error");
  const keep = byId("nick-default", HTMLButtonElement);
  const suggested = firstVisit ? defaultNickname(session) : session.user.nickname;
  setText(byId("nick-title"), firstVisit ? "nick.chooseTitle" : "nick.changeTitle");
  setText(byId("nick-intro"), firstVisit ? "nick.firstIntro" : "nick.changeIntro", { name: suggested });
  setText(byId("nick-help"), "nick.help", { min: NICKNAME_MIN, max: NICKNAME_MAX });
  if (firstVisit) setText(keep, "nick.keep", { name: suggested });
  else setText(keep, "nick.cancel");
  input.value = firstVisit ? "" : session.user.nickname;
  input.placeholder = suggested;
  /** @param {string} msg */
  const showError = (msg) => {
    errorEl.textContent = msg;
    errorEl.hidden = !msg;
    input.setAttribute("aria-invalid", msg ? "true" : "false");
  };
  showError("");

  return new Promise((resolve) => {
    /** @param {Session} next */
    const done = (next) => {
      form.removeEventListener("submit", onSubmit);
      keep.removeEventListener("click", onKeep);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      saveSession(next);
      showMe(next.user);
      resolve(next);
    };
    /**
     * @param {string} nickname
     * @param {boolean} anonymous  the name is the one made from the avatar (Session.anonymous)
     */
    const save = async (nickname, anonymous) => {
      if (nickname === session.user.nickname) return done({ ...session, confirmed: true, anonymous });
      try {
        done({ ...(await rename(apiBase, session, nickname)), anonymous });
      } catch (err) {
        showError(err instanceof ApiError ? serverMessage(err.code, err.message) : t("nick.saveFailed", { error: messageOf(err) }));
        input.focus();
      }
    };
    // Keeping the suggestion on a first visit renames "Guest 17" to the avatar's name.
    const onKeep = () => save(suggested, firstVisit || Boolean(session.anonymous));
    /** @param {Event} event */
    const onCancel = (event) => {
      event.preventDefault();
      onKeep();
    };
    /** @param {SubmitEvent} event */
    const onSubmit = (event) => {
      event.preventDefault();
      const check = checkNickname(input.value);
      if (!check.ok) {
        showError(check.message ?? "");
        input.focus();
        return;
      }
      save(check.value, check.value === session.user.nickname && Boolean(session.anonymous));
    };
    form.addEventListener("submit", onSubmit);
    keep.addEventListener("click", onKeep);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    input.focus();
  });
}
