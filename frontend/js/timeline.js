// The message list: renders messages in seq order (deduped), keeps the view pinned to the
// newest only when the reader is already at the bottom (else a "new messages" pill), loads
// older pages when the reader scrolls to the top, and shows my not-yet-acked messages below.
// Between days it shows a date separator, and consecutive messages from one person are grouped
// under one name. Every piece of user text goes in through textContent (links included).

import { paintAvatar } from "./avatar.js";
import { SeqList } from "./seqlist.js";
import { linkify } from "./linkify.js";
import { continues, dayKey, dayLabel } from "./daygroups.js";
import { fitBox } from "./uploads.js";

/** The largest box an image is shown in, in CSS pixels (it keeps its aspect ratio). */
const IMAGE_MAX_W = 320;
const IMAGE_MAX_H = 320;

/** What a moderator may mute someone for (the server allows up to 24 h). */
const MUTE_CHOICES = [
  ["Mute…", null],
  ["5 minutes", 300],
  ["1 hour", 3600],
  ["24 hours", 86400],
  ["Unmute", 0],
];

/** How long a moderator's first click on Delete waits for the confirming second one. */
const DELETE_CONFIRM_MS = 4000;

/** Within this many pixels of the bottom counts as "at the bottom". */
const BOTTOM_SLACK = 48;
/** Scrolling within this many pixels of the top loads the previous page. */
const TOP_TRIGGER = 120;

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export class Timeline {
  /**
   * @param {object} o
   * @param {Function} o.me          () => the current user (for "mine")
   * @param {Function} o.fetchOlder  async (beforeSeq) => { messages, has_more }
   * @param {Function} o.onRetry     (client_msg_id) => void
   * @param {Function} o.onDiscard   (client_msg_id) => void
   * @param {object} [o.moderation]  `{ active: () => bool, onDelete(seq), onMute(user, secs) }`:
   *                                 delete and mute controls on others' messages while active
   */
  constructor({ scroller, list, pendingList, pill, loadOlderButton, historyStart, me, fetchOlder, onRetry, onDiscard, onError, moderation }) {
    Object.assign(this, { scroller, list, pendingList, pill, loadOlderButton, historyStart, me, fetchOlder, onRetry, onDiscard, onError, moderation });
    this.seqs = new SeqList();
    this.items = new Map(); // seq → li
    this.pending = new Map(); // client_msg_id → li
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

  /** The first page on entering the room (latest messages). */
  showInitial(messages, hasOlder) {
    for (const m of messages) this.#insert(m);
    this.#setHasOlder(hasOlder);
    this.scrollToBottom();
    this.#fillViewport();
  }

  /**
   * Messages that arrived live or from a catch-up: autoscroll only if already at the bottom.
   * Returns the ones not shown before (duplicates from overlapping catch-ups are dropped).
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
      this.pill.textContent = this.unread === 1 ? "1 new message ↓" : `${this.unread} new messages ↓`;
      this.pill.hidden = false;
    }
    return added;
  }

  /** Loads the page before the oldest message shown, keeping the reader's place. */
  async loadOlder() {
    if (this.loadingOlder || !this.hasOlder || this.seqs.size === 0) return;
    this.loadingOlder = true;
    this.loadOlderButton.disabled = true;
    this.loadOlderButton.textContent = "Loading older messages…";
    this.scroller.setAttribute("aria-busy", "true");
    try {
      const page = await this.fetchOlder(this.seqs.first);
      const before = this.scroller.scrollHeight;
      const top = this.scroller.scrollTop;
      for (const m of page.messages) this.#insert(m);
      this.scroller.scrollTop = top + (this.scroller.scrollHeight - before);
      this.#setHasOlder(page.has_more);
    } catch (err) {
      this.onError?.(`Could not load older messages: ${err.message}`);
    } finally {
      this.loadingOlder = false;
      this.loadOlderButton.disabled = false;
      this.loadOlderButton.textContent = "Load older messages";
      this.scroller.removeAttribute("aria-busy");
    }
    this.#fillViewport();
  }

  /** Shows or updates one of my messages that the server has not acked yet. */
  showPending(entry) {
    if (entry.state === "acked" || entry.state === "discarded") {
      this.pending.get(entry.client_msg_id)?.remove();
      this.pending.delete(entry.client_msg_id);
      return;
    }
    let li = this.pending.get(entry.client_msg_id);
    const isNew = !li;
    if (isNew) {
      li = this.#render({ user: this.me(), text: entry.text, attachment: entry.attachment, ts: Date.now() }, true);
      li.classList.add("pending");
      li.dataset.clientMsgId = entry.client_msg_id;
      const status = document.createElement("p");
      status.className = "send-status";
      li.querySelector(".bubble").append(status);
      this.pending.set(entry.client_msg_id, li);
      this.pendingList.append(li);
    }
    li.dataset.state = entry.state;
    const status = li.querySelector(".send-status");
    status.replaceChildren();
    if (entry.state === "failed") {
      status.append(`Not sent: ${entry.error?.message || "the server refused it"}. `);
      const retry = button("Retry", () => this.onRetry(entry.client_msg_id));
      const discard = button("Discard", () => this.onDiscard(entry.client_msg_id));
      status.append(retry, " ", discard);
    } else {
      status.textContent = entry.state === "sending" ? "Sending…" : entry.connected ? "Queued…" : "Waiting for connection…";
    }
    if (isNew) this.scrollToBottom();
  }

  /**
   * A moderator deleted a message: its element (if shown) becomes the tombstone in place, so
   * the order and the reader's position hold. Returns true when it was shown.
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
    if (next?.classList.contains("msg")) this.#settle(next);
    else if (next?.nextElementSibling) this.#settle(next.nextElementSibling);
    return true;
  }

  /** Moderation became (in)active (after `welcome`): redraw the controls of shown messages. */
  refreshModeration() {
    for (const [seq, li] of this.items) {
      li.querySelector(".mod-actions")?.remove();
      if (!li.classList.contains("removed")) this.#addModeration(li, seq);
    }
  }

  #addModeration(li, seq) {
    if (!this.moderation?.active() || li.classList.contains("mine")) return;
    const userId = Number(li.dataset.userId);
    const nickname = li.querySelector(".nick")?.textContent ?? "?";
    const row = document.createElement("p");
    row.className = "mod-actions";
    // Two clicks: the first arms the button for a few seconds, the second deletes.
    let armed = null;
    const del = button("Delete", () => {
      if (armed) {
        clearTimeout(armed);
        armed = null;
        this.moderation.onDelete(seq);
        return;
      }
      del.textContent = "Confirm delete";
      del.setAttribute("aria-label", `Confirm: delete the message by ${nickname} for everyone`);
      armed = setTimeout(() => {
        armed = null;
        del.textContent = "Delete";
        del.setAttribute("aria-label", `Delete message by ${nickname}`);
      }, DELETE_CONFIRM_MS);
    });
    del.classList.add("mod-delete");
    del.setAttribute("aria-label", `Delete message by ${nickname}`);
    const mute = document.createElement("select");
    mute.className = "mute-select";
    mute.setAttribute("aria-label", `Mute ${nickname} in this room`);
    for (const [label, secs] of MUTE_CHOICES) {
      const o = document.createElement("option");
      o.value = secs === null ? "" : String(secs);
      o.textContent = label;
      mute.append(o);
    }
    mute.addEventListener("change", () => {
      if (mute.value === "") return;
      this.moderation.onMute({ id: userId, nickname }, Number(mute.value));
      mute.value = "";
    });
    row.append(del, " ", mute);
    li.querySelector(".bubble").append(row);
  }

  /** Adds `m` in seq order unless already shown. Returns true when added. */
  #insert(m) {
    if (typeof m?.seq !== "number") return false;
    const index = this.seqs.insert(m.seq);
    if (index < 0) return false;
    const li = this.#render(m, m.user?.id === this.me()?.id);
    li.dataset.seq = String(m.seq);
    const next = this.seqs.at(index + 1);
    const nextLi = next === undefined ? null : this.items.get(next);
    this.list.insertBefore(li, nextLi);
    this.items.set(m.seq, li);
    if (!m.deleted) this.#addModeration(li, m.seq);
    this.#settle(li);
    if (nextLi) this.#settle(nextLi);
    return true;
  }

  /**
   * Puts a date separator right before `li` exactly when it starts a new day, and marks it as
   * continuing the previous message's group or not. Called for a new element and the one after
   * it, which is all an insertion can change.
   */
  #settle(li) {
    let prev = li.previousElementSibling;
    const sep = prev?.classList.contains("day-sep") ? prev : null;
    if (sep) prev = sep.previousElementSibling;
    const ts = Number(li.dataset.ts);
    const newDay = !prev || prev.dataset.day !== li.dataset.day;
    if (newDay) {
      const label = dayLabel(ts);
      const el = sep ?? document.createElement("li");
      el.className = "day-sep";
      el.setAttribute("role", "separator");
      el.dataset.day = li.dataset.day;
      el.textContent = label;
      if (!sep) this.list.insertBefore(el, li);
    } else {
      sep?.remove();
    }
    const cont = !newDay && continues(facts(prev), facts(li));
    li.classList.toggle("cont", cont);
  }

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
    time.title = fullFmt.format(date);
    time.textContent = timeFmt.format(date);
    meta.append(nick, " ", time);
    const text = document.createElement("p");
    text.className = "text";
    text.append(...linkNodes(m.text ?? ""));
    bubble.append(meta);
    if (m.deleted) {
      li.classList.add("removed");
      const note = document.createElement("p");
      note.className = "text removed-note";
      note.textContent = "Message removed by a moderator";
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
  img.alt = `Image from ${user?.nickname ?? "someone"} (${att.width}×${att.height})`;
  const href = safeImageUrl(att.url);
  if (href) {
    a.href = href;
    img.src = href;
  }
  a.append(img);
  return a;
}

/** Only http(s) URLs (absolute, or relative to this page) are loaded as images. */
function safeImageUrl(url) {
  try {
    const u = new URL(String(url ?? ""), document.baseURI);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

/** What grouping needs to know of a shown message element. */
function facts(li) {
  return li ? { userId: li.dataset.userId, ts: Number(li.dataset.ts), removed: li.classList.contains("removed") } : null;
}

/** The text as text nodes and <a> elements for its http(s) links (opened in a new tab). */
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

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "link";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}
