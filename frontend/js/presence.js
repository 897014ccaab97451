// @ts-check
// Who is here and who is typing: the online count, the participant list, and a
// "Bob is typing…" line that fades out a few seconds after the last typing frame.

import { paintAvatar } from "./avatar.js";
import { formatNumber, setText, t } from "./i18n.js";

/** @typedef {import("./session.js").User} User */

/** A typing frame counts for this long. */
const TYPING_TTL_MS = 4000;

/**
 * Applies a `presence` frame to `members` (id → user): one `joined` or `left` user, or a big
 * room's summary (`joined_users`, `left_users`). Returns the ids of those who left.
 * @param {Map<number, User>} members
 * @param {Record<string, any>} f
 */
export function applyPresence(members, f) {
  for (const u of [f.joined, ...(f.joined_users || [])]) if (u) members.set(u.id, u);
  const left = [f.left, ...(f.left_users || [])].filter(Boolean).map((u) => u.id);
  for (const id of left) members.delete(id);
  return left;
}

/** How many of `online` people a list of `listed` names leaves out. @param {unknown} online @param {number} listed */
export function unlisted(online, listed) {
  return typeof online === "number" && online > listed ? online - listed : 0;
}

export class Presence {
  /**
   * @param {object} o
   * @param {HTMLElement} o.countEl
   * @param {HTMLElement} o.listEl
   * @param {HTMLElement} o.typingEl
   * @param {() => User | null} o.me
   */
  constructor({ countEl, listEl, typingEl, me }) {
    this.countEl = countEl;
    this.listEl = listEl;
    this.typingEl = typingEl;
    this.me = me;
    /** @type {Map<number, User>} */
    this.members = new Map();
    /** @type {Map<number, { user: User, until: number }>} */
    this.typers = new Map();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.typingTimer = undefined;
    this.online = 0;
  }

  /** Redraws the list and the typing line in the page's (new) language. */
  relabel() {
    this.#setOnline(this.online);
    this.#renderList();
    this.#renderTyping();
  }

  /** The snapshot a `joined` frame carries. @param {unknown} online @param {User[] | undefined} members */
  reset(online, members) {
    this.members = new Map((members || []).map((u) => [u.id, u]));
    this.#setOnline(online);
    this.#renderList();
  }

  /** A `presence` frame: someone joined or left (or, in a big room, a second's summary);
   * `online` is the room's new count. @param {Record<string, any>} f */
  update(f) {
    const left = applyPresence(this.members, f);
    if (left.length) {
      for (const id of left) this.typers.delete(id);
      this.#renderTyping();
    }
    this.#setOnline(f.online);
    this.#renderList();
  }

  /** The server says the user's nickname changed (a message or presence carries the new one). @param {User} user */
  rename(user) {
    if (this.members.has(user.id)) {
      this.members.set(user.id, user);
      this.#renderList();
    }
  }

  /** @param {User | undefined} user */
  typing(user) {
    if (!user || user.id === this.me()?.id) return;
    this.typers.set(user.id, { user, until: Date.now() + TYPING_TTL_MS });
    this.#renderTyping();
  }

  /** A message from `user` ends their typing. @param {User | undefined} user */
  stoppedTyping(user) {
    if (user && this.typers.delete(user.id)) this.#renderTyping();
  }

  /** @param {unknown} online */
  #setOnline(online) {
    this.online = typeof online === "number" ? online : this.members.size;
    this.countEl.textContent = formatNumber(this.online);
  }

  #renderList() {
    const users = [...this.members.values()].sort((a, b) => a.nickname.localeCompare(b.nickname));
    this.listEl.replaceChildren(
      ...users.map((u) => {
        const li = document.createElement("li");
        const avatar = document.createElement("span");
        avatar.className = "avatar small";
        avatar.setAttribute("aria-hidden", "true");
        paintAvatar(avatar, u);
        const name = document.createElement("span");
        name.textContent = u.id === this.me()?.id ? t("room.you", { name: u.nickname }) : u.nickname;
        li.append(avatar, name);
        return li;
      }),
    );
    // A big room's `joined` lists 100 of its members: the rest are counted, not named.
    const more = unlisted(this.online, users.length);
    if (more) {
      const li = document.createElement("li");
      li.className = "more";
      setText(li, "room.andMore", { count: more });
      this.listEl.append(li);
    }
  }

  #renderTyping() {
    clearTimeout(this.typingTimer);
    const now = Date.now();
    for (const [id, t] of this.typers) if (t.until <= now) this.typers.delete(id);
    const names = [...this.typers.values()].map((t) => t.user.nickname);
    let text = "";
    if (names.length === 1) text = t("room.typingOne", { name: names[0] });
    else if (names.length === 2) text = t("room.typingTwo", { a: names[0], b: names[1] });
    else if (names.length > 2) text = t("room.typingMany", { count: names.length });
    this.typingEl.textContent = text;
    if (this.typers.size) {
      const next = Math.min(...[...this.typers.values()].map((t) => t.until)) - now;
      this.typingTimer = setTimeout(() => this.#renderTyping(), Math.max(50, next));
    }
  }
}
