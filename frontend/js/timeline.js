// @ts-check
// The message list: renders messages in seq order (deduped), keeps the view pinned to the
// newest only when the reader is already at the bottom (else a "new messages" pill), loads
// older pages when the reader scrolls to the top, and shows my not-yet-acked messages below.
// Between days it shows a date separator, and consecutive messages from one person are grouped
// under one name. Every piece of user text goes in through textContent (links included).

import { paintAvatar } from "./avatar.js";
import { button } from "./dom.js";
import { formatDateTime, formatTime, serverMessage, setLabel, setText, t } from "./i18n.js";
import { MUTE_MAX_SECS } from "./limits.js";
import { messageOf } from "./api.js";
import { SeqList } from "./seqlist.js";
import { linkify } from "./linkify.js";
import { continues, dayKey, dayLabel } from "./daygroups.js";
import { fitBox } from "./uploads.js";

/** The largest box an image is shown in, in CSS pixels (it keeps its aspect ratio). */
const IMAGE_MAX_W = 320;
const IMAGE_MAX_H = 320;

/** What a moderator may mute someone for (the server allows up to 24 h). */
/** @type {[string, number | null][]} */
export const MUTE_CHOICES = [
  ["mod.muteChoose", null],
  ["mod.mute5m", 300],
  ["mod.mute1h", 3600],
  ["mod.mute24h", MUTE_MAX_SECS],
  ["mod.unmute", 0],
];

/** How long a moderator's first click on Delete waits for the confirming second one. */
const DELETE_CONFIRM_MS = 4000;

/** Within this many pixels of the bottom counts as "at the bottom". */
const BOTTOM_SLACK = 48;
/** Scrolling within this many pixels of the top loads the previous page. */
const TOP_TRIGGER = 120;

/**
 * @typedef {import("./session.js").User} User
 * @typedef {import("./connection.js").Attachment} Attachment
 * @typedef {{ seq: number, user?: User, text?: string, ts?: number, attachment?: Attachment, deleted?: boolean, client_msg_id?: string, reactions?: import("./reactions.js").Reaction[], reactions_version?: number, reply_to?: import("./replies.js").ReplyRef, moderator?: boolean }} Message
 */

export class Timeline {
  /**
   * @param {object} o
   * @param {HTMLElement} o.scroller
   * @param {HTMLElement} o.list
   * @param {HTMLElement} o.pendingList
   * @param {HTMLElement} o.pill
   * @param {HTMLButtonElement} o.loadOlderButton
   * @param {HTMLElement} o.historyStart
   * @param {() => User | null} o.me  the current user
   * @param {(beforeSeq: number) => Promise<{ messages: Message[], has_more: boolean }>} o.fetchOlder
   * @param {(clientMsgId: string) => void} o.onRetry
   * @param {(clientMsgId: string) => void} o.onDiscard
   * @param {(message: string) => void} o.onError
   * @param {{ active: () => boolean, onDelete: (seq: number) => void, onMute: (user: { id: number, nickname: string }, secs: number) => void }} [o.moderation]
   *   delete and mute controls on others' messages while active
   * @param {(m: Message) => void} [o.onShown]  a message was just put in the list (not a pending one)
   */
  constructor({ scroller, list, pendingList, pill, loadOlderButton, historyStart, me, fetchOlder, onRetry, onDiscard, onError, moderation, onShown }) {
    this.scroller = scroller;
    this.list = list;
    this.pendingList = pendingList;
    this.pill = pill;
    this.loadOlderButton = loadOlderButton;
    this.historyStart = historyStart;
    this.me = me;
    this.fetchOlder = fetchOlder;
    this.onRetry = onRetry;
    this.onDiscard = onDiscard;
    this.onError = onError;
    this.moderation = moderation;
    this.onShown = onShown;
    this.seqs = new SeqList();
    /** @type {Map<number, HTMLElement>} seq → li */
    this.items = new Map();
    /** @type {Map<string, HTMLElement>} client_msg_id → li */
    this.pending = new Map();
    this.unread = 0;
    this.hasOlder = false;
    this.loadingOlder = false;

    scroller.addEventListener("scroll", () => this.#onScroll(), { passive: true });
    pill.addEventListener("click", () => {
      this.scrollToBottom();
      this.scroller.focus({ preventScroll: true });
    });
    loadOlderButton.addEventListener("click", () => this.loadOlder());
  }

  /** True when the newest message is in view. */
  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= BOTTOM_SLACK;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.#clearUnread();
  }

  /** Times and day separators in the page's (new) language. */
  relabel() {
    for (const el of this.list.querySelectorAll("time[datetime]")) {
      const date = new Date(/** @type {HTMLTimeElement} */ (el).dateTime);
      el.textContent = formatTime(date);
      /** @type {HTMLElement} */ (el).title = formatDateTime(date);
    }
    for (const el of /** @type {NodeListOf<HTMLElement>} */ (this.list.querySelectorAll(".day-sep"))) {
      el.textContent = dayLabel(Number(el.dataset.ts));
    }
  }

  /**
   * The first page on entering the room (latest messages).
   * @param {Message[]} messages
   * @param {boolean} hasOlder
   */
  showInitial(messages, hasOlder) {
    for (const m of messages) this.#insert(m);
    this.#setHasOlder(hasOlder);
    this.scrollToBottom();
    this.#fillViewport();
  }

  /**
   * Messages that arrived live or from a catch-up: autoscroll only if already at the bottom.
   * Returns the ones not shown before (duplicates from overlapping catch-ups are dropped).
   * @param {Message[]} messages
   */
  addLive(messages) {
    const wasAtBottom = this.atBottom();
    const added = [];
    let mine = false;
    for (const m of messages) {
      if (this.#insert(m)) {
        added.push(m);
        if (m.user?.id === this.me()?.id) mine = true;
      }
    }
    if (!added.length) return added;
    if (wasAtBottom || mine) {
      this.scrollToBottom();
    } else {
      this.unread += added.length;
      setText(this.pill, "room.newCount", { count: this.unread });
      this.pill.hidden = false;
    }
    return added;
  }

  /**
   * Brings the message at `seq` into view (loading older pages until it is shown, or there are
   * none) and marks it for a moment. Returns false when the room no longer holds it.
   * @param {number} seq
   */
  async reveal(seq) {
    while (!this.items.has(seq) && this.hasOlder && this.seqs.size > 0 && this.seqs.first > seq) {
      const first = this.seqs.first;
      await this.loadOlder();
      if (this.seqs.first === first) break;
    }
    const li = this.items.get(seq);
    if (!li) return false;
    li.scrollIntoView({ block: "center" });
    li.classList.add("flash");
    setTimeout(() => li.classList.remove("flash"), 2000);
    return true;
  }

  /** Loads the page before the oldest message shown, keeping the reader's place. */
  async loadOlder() {
    if (this.loadingOlder || !this.hasOlder || this.seqs.size === 0) return;
    this.loadingOlder = true;
    this.loadOlderButton.disabled = true;
    setText(this.loadOlderButton, "room.loadingOlder");
    this.scroller.setAttribute("aria-busy", "true");
    try {
      const page = await this.fetchOlder(this.seqs.first);
      const before = this.scroller.scrollHeight;
      const top = this.scroller.scrollTop;
      for (const m of page.messages) this.#insert(m);
      this.scroller.scrollTop = top + (this.scroller.scrollHeight - before);
      this.#setHasOlder(page.has_more);
    } catch (err) {
      this.onError?.(t("older.failed", { error: messageOf(err) }));
    } finally {
      this.loadingOlder = false;
      this.loadOlderButton.disabled = false;
      setText(this.loadOlderButton, "room.loadOlder");
      this.scroller.removeAttribute("aria-busy");
    }
    this.#fillViewport();
  }

  /**
   * Shows or updates one of my messages that the server has not acked yet.
   * @param {{ client_msg_id: string, text: string, attachment: Attachment | null, state: string, error: { code: string, message: string } | null, connected: boolean }} entry
   */
  showPending(entry) {
    if (entry.state === "acked" || entry.state === "discarded") {
      this.pending.get(entry.client_msg_id)?.remove();
      this.pending.delete(entry.client_msg_id);
      return;
    }
    let li = this.pending.get(entry.client_msg_id);
    const isNew = !li;
    if (isNew) {
      li = this.#render({ user: this.me() ?? undefined, text: entry.text, attachment: entry.attachment ?? undefined, ts: Date.now() }, true);
      li.classList.add("pending");
      li.dataset.clientMsgId = entry.client_msg_id;
      const status = document.createElement("p");
      status.className = "send-status";
      li.querySelector(".bubble")?.append(status);
      this.pending.set(entry.client_msg_id, li);
      this.pendingList.append(li);
    }
    const shown = /** @type {HTMLElement} */ (li);
    shown.dataset.state = entry.state;
    const status = /** @type {HTMLElement} */ (shown.querySelector(".send-status"));
    status.replaceChildren();
    if (entry.state === "failed") {
      const why = document.createElement("span");
      const error = entry.error ? serverMessage(entry.error.code, entry.error.message) : t("send.refused");
      setText(why, "send.notSent", { error });
      const retry = linkButton("send.retry", () => this.onRetry(entry.client_msg_id));
      const discard = linkButton("send.discard", () => this.onDiscard(entry.client_msg_id));
      status.append(why, retry, " ", discard);
    } else {
      setText(status, entry.state === "sending" ? "send.sending" : entry.connected ? "send.queued" : "send.waiting");
    }
    if (isNew) this.scrollToBottom();
  }

  /**
   * A moderator deleted a message: its element (if shown) becomes the tombstone in place, so
   * the order and the reader's position hold. Returns true when it was shown.
   * @param {Message} tombstone
   */
  removeMessage(tombstone) {
    const old = this.items.get(tombstone?.seq);
    if (!old) return false;
    const li = this.#render({ ...tombstone, deleted: true, text: "", attachment: undefined }, old.classList.contains("mine"));
    li.dataset.seq = old.dataset.seq;
    old.replaceWith(li);
    this.items.set(tombstone.seq, li);
    this.#settle(li);
    const next = li.nextElementSibling;
    if (next?.classList.contains("msg")) this.#settle(/** @type {HTMLElement} */ (next));
    else if (next?.nextElementSibling) this.#settle(/** @type {HTMLElement} */ (next.nextElementSibling));
    return true;
  }

  /** Moderation became (in)active (after `welcome`): redraw the controls of shown messages. */
  refreshModeration() {
    for (const [seq, li] of this.items) {
      li.querySelector(".mod-actions")?.remove();
      if (!li.classList.contains("removed")) this.#addModeration(li, seq);
    }
  }

  /** @param {HTMLElement} li @param {number} seq */
  #addModeration(li, seq) {
    if (!this.moderation?.active() || li.classList.contains("mine")) return;
    const userId = Number(li.dataset.userId);
    const nickname = li.querySelector(".nick")?.textContent ?? "?";
    const moderation = this.moderation;
    const row = document.createElement("p");
    row.className = "mod-actions";
    // Two clicks: the first arms the button for a few seconds, the second deletes.
    /** @type {ReturnType<typeof setTimeout> | null} */
    let armed = null;
    const del = linkButton("mod.delete", () => {
      if (armed) {
        clearTimeout(armed);
        armed = null;
        moderation.onDelete(seq);
        return;
      }
      setText(del, "mod.confirmDelete", { name: nickname });
      setLabel(del, "mod.confirmDeleteLabel", { name: nickname });
      armed = setTimeout(() => {
        armed = null;
        setText(del, "mod.delete", { name: nickname });
        setLabel(del, "mod.deleteLabel", { name: nickname });
      }, DELETE_CONFIRM_MS);
    });
    del.classList.add("mod-delete");
    setLabel(del, "mod.deleteLabel", { name: nickname });
    const mute = document.createElement("select");
    mute.className = "mute-select";
    setLabel(mute, "mod.muteLabel", { name: nickname });
    for (const [label, secs] of MUTE_CHOICES) {
      const o = document.createElement("option");
      o.value = secs === null ? "" : String(secs);
      setText(o, label);
      mute.append(o);
    }
    mute.addEventListener("change", () => {
      if (mute.value === "") return;
      moderation.onMute({ id: userId, nickname }, Number(mute.value));
      mute.value = "";
    });
    row.append(del, " ", mute);
    li.querySelector(".bubble")?.append(row);
  }

  /** Adds `m` in seq order unless already shown. Returns true when added. @param {Message} m */
  #insert(m) {
    if (typeof m?.seq !== "number") return false;
    const index = this.seqs.insert(m.seq);
    if (index < 0) return false;
    const li = this.#render(m, m.user?.id === this.me()?.id);
    li.dataset.seq = String(m.seq);
    const next = this.seqs.at(index + 1);
    const nextLi = (next === undefined ? null : this.items.get(next)) ?? null;
    this.list.insertBefore(li, nextLi);
    this.items.set(m.seq, li);
    if (!m.deleted) this.#addModeration(li, m.seq);
    this.#settle(li);
    if (nextLi) this.#settle(nextLi);
    this.onShown?.(m);
    return true;
  }

  /**
   * Puts a date separator right before `li` exactly when it starts a new day, and marks it as
   * continuing the previous message's group or not. Called for a new element and the one after
   * it, which is all an insertion can change.
   * @param {HTMLElement} li
   */
  #settle(li) {
    let prev = /** @type {HTMLElement | null} */ (li.previousElementSibling);
    const sep = prev?.classList.contains("day-sep") ? prev : null;
    if (sep) prev = /** @type {HTMLElement | null} */ (sep.previousElementSibling);
    const ts = Number(li.dataset.ts);
    const newDay = !prev || prev.dataset.day !== li.dataset.day;
    if (newDay) {
      const label = dayLabel(ts);
      const el = sep ?? document.createElement("li");
      el.className = "day-sep";
      el.dataset.day = li.dataset.day;
      el.dataset.ts = String(ts);
      el.textContent = label;
      if (!sep) this.list.insertBefore(el, li);
    } else {
      sep?.remove();
    }
    const cont = !newDay && continues(facts(prev), facts(li));
    li.classList.toggle("cont", cont);
  }

  /** @param {Omit<Message, "seq">} m @param {boolean} mine */
  #render(m, mine) {
    const li = document.createElement("li");
    li.className = mine ? "msg mine" : "msg";
    if (m.user) li.dataset.userId = String(m.user.id);
    const date = new Date(typeof m.ts === "number" ? m.ts : Date.now());
    li.dataset.ts = String(date.getTime());
    li.dataset.day = dayKey(date.getTime());

    const avatar = document.createElement("span");
    avatar.className = "avatar";
    avatar.setAttribute("aria-hidden", "true");
    paintAvatar(avatar, m.user);

    const bubble = document.createElement("div");
    bubble.className = "bubble";
    const meta = document.createElement("p");
    meta.className = "meta";
    const nick = document.createElement("span");
    nick.className = "nick";
    nick.textContent = m.user?.nickname ?? "?";
    const time = document.createElement("time");
    time.dateTime = date.toISOString();
    time.title = formatDateTime(date);
    time.textContent = formatTime(date);
    meta.append(nick, " ", time);
    const text = document.createElement("p");
    text.className = "text";
    text.append(...linkNodes(m.text ?? ""));
    bubble.append(meta);
    if (m.deleted) {
      li.classList.add("removed");
      const note = document.createElement("p");
      note.className = "text removed-note";
      setText(note, "mod.removed");
      bubble.append(note);
      li.append(avatar, bubble);
      return li;
    }
    if (m.attachment) bubble.append(imageFigure(m.attachment, m.user));
    if (m.text || !m.attachment) bubble.append(text);
    li.append(avatar, bubble);
    return li;
  }

  #onScroll() {
    if (this.atBottom()) this.#clearUnread();
    if (this.scroller.scrollTop <= TOP_TRIGGER) this.loadOlder();
  }

  #clearUnread() {
    this.unread = 0;
    this.pill.hidden = true;
  }

  /** @param {unknown} v */
  #setHasOlder(v) {
    this.hasOlder = Boolean(v);
    this.loadOlderButton.hidden = !this.hasOlder;
    this.historyStart.hidden = this.hasOlder;
  }

  /** A page too short to scroll could never trigger loading older ones: load until it scrolls. */
  #fillViewport() {
    if (this.hasOlder && this.scroller.scrollHeight <= this.scroller.clientHeight + TOP_TRIGGER) this.loadOlder();
  }
}

/**
 * An attached image at its final size from the start (width/height from the server, so the
 * list does not jump when it loads); a click opens it full size in a new tab.
 * @param {Attachment} att
 * @param {User | undefined} user
 */
function imageFigure(att, user) {
  const box = fitBox(att.width, att.height, IMAGE_MAX_W, IMAGE_MAX_H);
  const a = document.createElement("a");
  a.className = "attachment";
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  const img = document.createElement("img");
  img.width = box.width;
  img.height = box.height;
  img.loading = "lazy";
  img.decoding = "async";
  img.alt = t("image.alt", { name: user?.nickname ?? t("image.someone"), width: String(att.width), height: String(att.height) });
  const href = safeImageUrl(att.url);
  if (href) {
    a.href = href;
    img.src = href;
  }
  a.append(img);
  return a;
}

/** Only http(s) URLs (absolute, or relative to this page) are loaded as images. @param {unknown} url */
function safeImageUrl(url) {
  try {
    const u = new URL(String(url ?? ""), document.baseURI);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/** What grouping needs to know of a shown message element. @param {HTMLElement | null} li */
function facts(li) {
  return li ? { userId: li.dataset.userId, ts: Number(li.dataset.ts), removed: li.classList.contains("removed") } : null;
}

/** The text as text nodes and <a> elements for its http(s) links (opened in a new tab). @param {string} text */
function linkNodes(text) {
  return linkify(text).map((piece) => {
    if (!piece.href) return piece.text;
    const a = document.createElement("a");
    a.href = piece.href;
    a.textContent = piece.text;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow ugc";
    return a;
  });
}

/** A link-styled button with translated text. @param {string} key @param {() => void} onClick */
function linkButton(key, onClick) {
  const b = button("link", onClick);
  setText(b, key);
  return b;
}
