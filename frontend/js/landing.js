// @ts-check
// The landing page: open a room by name or create one, and the rooms this browser joined,
// newest first, each with how many messages arrived since the reader last saw it.

import { endpoints, newRoomId, ROOM_RE, carriedQuery } from "./endpoints.js";
import { getRoom } from "./api.js";
import { byId } from "./dom.js";
import { onLanguageChange, setText, t } from "./i18n.js";
import { myRooms, unreadCount } from "./myrooms.js";

/** @param {{ view: "landing", error?: { room: string } }} route */
export function showLanding({ error }) {
  byId("landing").hidden = false;
  document.title = t("page.title");
  onLanguageChange(() => (document.title = t("page.title")));
  const input = byId("room-input", HTMLInputElement);
  const errorEl = byId("room-error");
  const carry = carriedQuery(location.search);
  /** @param {string} key @param {Record<string, string>} [params] */
  const showError = (key, params) => {
    setText(errorEl, key, params);
    errorEl.hidden = false;
    input.setAttribute("aria-invalid", "true");
  };
  if (error) showError("landing.notARoom", { room: error.room });
  byId("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const room = input.value.trim();
    if (!ROOM_RE.test(room)) {
      showError("landing.badRoom");
      input.focus();
      return;
    }
    location.assign(`/room/${room}${carry}`);
  });
  byId("create-room").addEventListener("click", () => location.assign(`/room/${newRoomId()}${carry}`));
  showMyRooms(carry);
  input.focus();
}

/** The rooms list; unread counts fill in as the rooms answer. @param {string} carry */
function showMyRooms(carry) {
  const rooms = myRooms();
  const section = byId("my-rooms");
  section.hidden = rooms.length === 0;
  const { apiBase } = endpoints(location, window.CHAT_CONFIG || {});
  byId("my-rooms-list").replaceChildren(
    ...rooms.map((r) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      const query = new URLSearchParams(carry);
      if (r.title) query.set("title", r.title);
      const qs = query.toString();
      a.href = `/room/${encodeURIComponent(r.room)}${qs ? `?${qs}` : ""}`;
      a.className = "room-link";
      if (r.title) a.textContent = r.title;
      else setText(a, "room.defaultTitle", { room: r.room });
      const badge = document.createElement("span");
      badge.className = "unread";
      badge.hidden = true;
      li.append(a, " ", badge);
      getRoom(apiBase, r.room)
        .then((info) => {
          const n = unreadCount(r, Number(info.last_seq) || 0);
          setText(badge, n ? "landing.unread" : "landing.noUnread", { count: n });
          badge.dataset.count = String(n);
          badge.hidden = false;
        })
        .catch(() => {
          // The count is a courtesy: the link works without it.
        });
      return li;
    }),
  );
}
