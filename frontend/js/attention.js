// @ts-check
// Getting a reader's attention back while they look elsewhere: new messages from others are
// counted in the tab title ("(3) Keynote · Chat") and the favicon gets a dot until the page
// is looked at again; optional desktop notifications meanwhile (while the tab is hidden or
// another window has the focus, as chat apps do). Permission for
// notifications is only ever asked from a click on the bell (never on load), and the choice is
// remembered per browser.

import { readJson, writeJson } from "./storage.js";
import { setText, t } from "./i18n.js";

const PREF_KEY = "chat.notify.v1";
const FAVICON = "/favicon.svg";
const FAVICON_UNREAD = "/favicon-unread.svg";
/** A catch-up after a reconnect notifies at most its last few messages. */
const NOTIFY_BATCH_MAX = 3;
/** A notification shows at most this much of the message. */
const NOTIFY_TEXT_MAX = 140;

/**
 * The tab title with `unread` in front ("(3) …", "(99+) …") and, when some of them mention me,
 * how many after an at sign ("(3 · at-sign 1)"), or the base when none.
 * @param {string} base
 * @param {number} unread
 * @param {number} [mentioned]
 */
export function titleWithUnread(base, unread, mentioned = 0) {
  if (!(unread > 0)) return base;
  const count = unread > 99 ? "99+" : String(unread);
  return mentioned > 0 ? `(${count} · @${mentioned > 99 ? "99+" : mentioned}) ${base}` : `(${count}) ${base}`;
}

/**
 * What a notification says for one message: `{ title, body }`, plain text.
 * @param {{ user?: { nickname: string }, text?: string }} message
 * @param {string} roomTitle
 */
export function notificationText(message, roomTitle) {
  const nick = message.user?.nickname ?? t("notify.someone");
  let body = String(message.text ?? "");
  if ([...body].length > NOTIFY_TEXT_MAX) body = `${[...body].slice(0, NOTIFY_TEXT_MAX - 1).join("")}…`;
  return { title: `${nick} · ${roomTitle}`, body };
}

export class Attention {
  /**
   * @param {object} o
   * @param {() => string} o.title      the tab title when nothing is unread
   * @param {() => string} o.roomTitle  the room's name, for notifications
   * @param {string} o.room       the room id (one notification per room replaces the last)
   * @param {HTMLButtonElement} o.bell  the notifications toggle
   * @param {() => import("./session.js").User | null} o.me  the current user
   * @param {(message: string) => void} o.onError  for a refused permission
   * @param {(m: { user?: { id: number }, text?: string }) => boolean} [o.mentionsMe]  a message that names me
   */
  constructor({ title, roomTitle, room, bell, me, onError, mentionsMe = () => false }) {
    this.title = title;
    this.roomTitle = roomTitle;
    this.room = room;
    this.bell = bell;
    this.me = me;
    this.onError = onError;
    this.mentionsMe = mentionsMe;
    this.unread = 0;
    this.mentioned = 0;
    /** @type {HTMLLinkElement | null} */
    this.favicon = document.querySelector('link[rel="icon"]');
    this.enabled = this.#supported() && Notification.permission === "granted" && loadPref();
    const back = () => {
      if (!this.away()) this.#setUnread(0);
    };
    document.addEventListener("visibilitychange", back);
    window.addEventListener("focus", back);
    if (this.#supported()) {
      bell.hidden = false;
      bell.addEventListener("click", () => this.#toggle());
    }
    this.#showBell();
    this.#setUnread(0);
  }

  /** True while the reader is not looking at the page (another tab or another window). */
  away() {
    return document.visibilityState === "hidden" || !document.hasFocus();
  }

  /** The title and the bell in the page's (new) language. */
  relabel() {
    this.#setUnread(this.unread);
    this.#showBell();
  }

  /**
   * New messages were shown: while away, count others' and notify them when enabled.
   * @param {{ user?: { id: number, nickname: string }, text?: string }[]} messages
   */
  saw(messages) {
    if (!this.away()) return;
    const theirs = messages.filter((m) => m.user?.id !== this.me()?.id);
    if (!theirs.length) return;
    const forMe = theirs.filter((m) => this.mentionsMe(m));
    this.mentioned += forMe.length;
    this.#setUnread(this.unread + theirs.length);
    if (!this.enabled) return;
    // The last few of a batch, and every one that names me (however busy the room).
    const last = theirs.slice(-NOTIFY_BATCH_MAX);
    for (const m of forMe) if (!last.includes(m)) this.#notify(m);
    for (const m of last) this.#notify(m);
  }

  /** @param {number} n */
  #setUnread(n) {
    this.unread = n;
    if (n === 0) this.mentioned = 0;
    document.title = titleWithUnread(this.title(), n, this.mentioned);
    if (this.favicon) this.favicon.href = n > 0 ? FAVICON_UNREAD : FAVICON;
  }

  #supported() {
    return typeof window.Notification === "function" && window.isSecureContext;
  }

  async #toggle() {
    if (this.enabled) {
      this.enabled = false;
      savePref(false);
      this.#showBell();
      return;
    }
    let permission = Notification.permission;
    if (permission === "default") {
      try {
        permission = await Notification.requestPermission();
      } catch {
        permission = "denied";
      }
    }
    if (permission !== "granted") {
      this.onError?.(t("notify.blocked"));
      this.#showBell();
      return;
    }
    this.enabled = true;
    savePref(true);
    this.#showBell();
  }

  #showBell() {
    const on = Boolean(this.enabled);
    this.bell.setAttribute("aria-pressed", String(on));
    this.bell.dataset.i18nTitle = on ? "notify.titleOn" : "notify.titleOff";
    this.bell.title = t(this.bell.dataset.i18nTitle);
    const label = /** @type {HTMLElement} */ (this.bell.querySelector(".bell-label"));
    setText(label, on ? "notify.on" : "notify.off");
  }

  /** @param {{ seq?: number, user?: { id: number, nickname: string }, text?: string }} message */
  #notify(message) {
    const { title, body } = notificationText(message, this.roomTitle());
    // A mention gets its own notification (not replaced by the room's next one).
    const tag = this.mentionsMe(message) ? `chat-mention-${this.room}-${message.seq}` : `chat-room-${this.room}`;
    try {
      const n = new Notification(title, { body, tag, icon: FAVICON });
      n.onclick = () => {
        window.focus();
        n.close();
      };
    } catch {
      // Some platforms only allow notifications from a service worker: the title count remains.
    }
  }
}

function loadPref() {
  return readJson(PREF_KEY) === "on";
}

/** @param {boolean} on */
function savePref(on) {
  writeJson(PREF_KEY, on ? "on" : "off");
}
