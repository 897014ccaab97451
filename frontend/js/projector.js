// @ts-check
// The projector view (`/room/{room}?view=projector`): for the screen on stage, read from the
// back of a hall. Large type, the room's QR code and address, the newest messages, no
// composer; light or dark like the rest (`?theme=`). It follows the room live as a guest of
// this browser (never asking for a nickname).

import { endpoints, roomUrl } from "./endpoints.js";
import { postSession } from "./api.js";
import { loadSession, saveSession } from "./session.js";
import { ChatConnection } from "./connection.js";
import { paintAvatar } from "./avatar.js";
import { byId } from "./dom.js";
import { onLanguageChange, setText, t } from "./i18n.js";
import { sessionFrom, retrying } from "./identity.js";
import { qrSvg } from "./qr.js";

/** The projector shows this many of the newest messages. */
export const PROJECTOR_MESSAGES = 8;

/** @typedef {import("./timeline.js").Message} Message */

/** @param {{ room: string, title: string | null }} route */
export async function openProjector({ room, title }) {
  const { apiBase, wsUrl } = endpoints(location, window.CHAT_CONFIG || {});
  const roomTitle = () => title ?? t("room.defaultTitle", { room });
  const url = roomUrl(location, room, title);
  byId("projector").hidden = false;
  document.body.classList.add("projector-view");
  const titleEl = byId("projector-title");
  if (title) titleEl.textContent = title;
  else setText(titleEl, "room.defaultTitle", { room });
  const address = byId("projector-url");
  // Short enough to type from the back of the hall: host and path (the QR code has it all).
  const { host, pathname } = new URL(url);
  address.textContent = `${host}${pathname}`;
  const drawQr = () => {
    byId("projector-qr").replaceChildren(qrSvg(url, t("share.qrLabel", { url })));
    document.title = t("page.docTitle", { title: roomTitle() });
  };
  drawQr();
  onLanguageChange(drawQr);

  let session = loadSession();
  if (!session || (session.expiresAt !== undefined && session.expiresAt <= Date.now())) {
    const fresh = await retrying(() => postSession(apiBase, {}), "status.creatingIdentity");
    session = { ...sessionFrom(fresh), confirmed: session?.confirmed ?? false };
    saveSession(session);
  }
  const conn = new ChatConnection({ url: wsUrl, token: session.token, room });
  const list = byId("projector-messages");
  /** @type {Map<number, HTMLElement>} */
  const shown = new Map();
  /** @param {Message[]} messages */
  const add = (messages) => {
    for (const m of messages) {
      if (shown.has(m.seq) || m.deleted) continue;
      const li = render(m);
      const after = [...shown.keys()].filter((s) => s > m.seq).sort((a, b) => a - b)[0];
      list.insertBefore(li, after === undefined ? null : shown.get(after) ?? null);
      shown.set(m.seq, li);
    }
    for (const seq of [...shown.keys()].sort((a, b) => a - b).slice(0, Math.max(0, shown.size - PROJECTOR_MESSAGES))) {
      shown.get(seq)?.remove();
      shown.delete(seq);
    }
    byId("projector-empty").hidden = shown.size > 0;
  };
  conn.addEventListener("joined", (e) => add(/** @type {CustomEvent} */ (e).detail.messages || []));
  conn.addEventListener("message", (e) => add([/** @type {CustomEvent} */ (e).detail]));
  conn.addEventListener("deleted", (e) => {
    const seq = /** @type {CustomEvent} */ (e).detail.message?.seq;
    shown.get(seq)?.remove();
    shown.delete(seq);
    byId("projector-empty").hidden = shown.size > 0;
  });
  conn.addEventListener("state", (e) => {
    const el = byId("projector-status");
    const state = /** @type {CustomEvent} */ (e).detail.state;
    el.dataset.state = state;
    setText(el, `status.${state}`);
  });
  conn.start();
}

/** One message in large type. @param {Message} m */
function render(m) {
  const li = document.createElement("li");
  li.className = "projector-msg";
  li.dataset.seq = String(m.seq);
  const avatar = document.createElement("span");
  avatar.className = "avatar";
  avatar.setAttribute("aria-hidden", "true");
  paintAvatar(avatar, m.user);
  const body = document.createElement("div");
  const nick = document.createElement("p");
  nick.className = "nick";
  nick.textContent = m.user?.nickname ?? "?";
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = m.text ?? "";
  if (!m.text && m.attachment) setText(text, "image.default");
  body.append(nick, text);
  li.append(avatar, body);
  return li;
}
