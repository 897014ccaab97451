// @ts-check
// One room's live link to the server: hello → welcome → join, reconnect with jittered backoff
// (at once when the server says `reconnect`), catch-up with `after` = the last seq seen, and an
// outbox of sends that survives disconnects: messages go one at a time in the order typed, each
// sent again with the same client_msg_id until it is acked, so the server stores it once.
//
// Events (CustomEvent, payload in `detail`): state, welcome, joined, message, presence, typing,
// ack, outbox (an entry changed), server-error, unauthorized, deleted (a moderator removed a
// message), muted (a moderator muted me, or confirmed my mute of someone), receipts (read
// positions).
//
// The outbox can be kept in storage (`store`, see outboxstore.js): entries are loaded at
// construction and shown by start(), and every change is saved, so a reload sends what was
// typed before it, with the same client_msg_id (the server stores each id of a user once).

import { backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
import { newId } from "./ids.js";
import { HEARTBEAT_MS, SILENCE_MS, READ_EVERY_MS } from "./limits.js";

/** A send not acked after this long is sent again (same client_msg_id: stored once). */
export const RESEND_AFTER_MS = 5000;
/** After a `rate_limited` error, the unacked send goes again this soon (the budget refills). */
export const RATE_LIMITED_RESEND_MS = 1100;
/** WebSocket.OPEN, also where no WebSocket global exists (unit tests). */
const OPEN = 1;

/**
 * @typedef {{ url: string, content_type?: string, width: number, height: number, bytes?: number, token: string }} Attachment
 * @typedef {"pending" | "sending" | "failed"} EntryState
 * @typedef {{ client_msg_id: string, text: string, attachment: Attachment | null, reply_to?: number, state: EntryState,
 *   error: { code: string, message: string } | null, resendAt?: number }} OutboxEntry
 * @typedef {{ load(): OutboxEntry[], save(entries: OutboxEntry[]): void }} OutboxStore
 * @typedef {{ readyState: number, send(data: string): void, close(code?: number, reason?: string): void,
 *   onopen: ((e: any) => void) | null, onmessage: ((e: { data: any }) => void) | null,
 *   onclose: ((e: { code: number }) => void) | null }} SocketLike
 * @typedef {Record<string, any>} Frame
 */

export class ChatConnection extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.url      the WebSocket endpoint
   * @param {string} o.token    the guest token for `hello`
   * @param {string} o.room     the room to join
   * @param {string | null} [o.moderator] a moderator credential for `hello`
   * @param {{ baseMs: number, maxMs: number }} [o.backoff]
   * @param {OutboxStore | null} [o.store]  keeps the outbox across reloads
   * @param {(url: string) => SocketLike} [o.openSocket]  a WebSocket by default
   */
  constructor({ url, token, room, moderator = null, backoff = DEFAULT_BACKOFF, store = null, openSocket = (u) => /** @type {SocketLike} */ (/** @type {unknown} */ (new WebSocket(u))) }) {
    super();
    this.store = store;
    this.openSocket = openSocket;
    this.url = url;
    this.token = token;
    /** A moderator credential sent with `hello`, if any; `moderatorName` once welcomed. */
    this.moderator = moderator;
    this.moderatorName = null;
    this.room = room;
    this.backoff = backoff;
    /** Highest seq seen in this room (from join catch-ups, live messages, history). */
    this.lastSeq = 0;
    /** The user this connection is, from `welcome`. */
    this.user = null;
    /** @type {Map<string, OutboxEntry>} client_msg_id → entry, in the order typed */
    this.outbox = new Map();
    for (const e of store?.load() ?? []) {
      this.outbox.set(e.client_msg_id, { ...e, state: e.state === "failed" ? "failed" : "pending" });
    }
    /** @type {string} */
    this.state = "idle";
    /** @type {SocketLike | null} */
    this.ws = null;
    this.joined = false;
    this.everJoined = false;
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retryTimer = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.heartbeat = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.resender = undefined;
    this.lastFrameAt = 0;
    this.stopped = false;
    /** After a rate_limited error, optional frames (typing) wait until then. */
    this.quietUntil = 0;
    /** Read position: the highest seq sent in `read`, the one to send next, when last sent. */
    this.readSent = 0;
    this.readWanted = 0;
    this.readAt = 0;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.readTimer = null;
  }

  /** Connects, and shows the entries a stored outbox brought back. */
  start() {
    this.stopped = false;
    for (const entry of this.outbox.values()) this.#emitOutbox(entry);
    this.#open();
    this.heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    this.resender = setInterval(() => this.#resendStale(), 1000);
    globalThis.window?.addEventListener("online", this.#retryNow);
    globalThis.document?.addEventListener("visibilitychange", this.#onVisible);
  }

  stop() {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    clearInterval(this.resender);
    globalThis.window?.removeEventListener("online", this.#retryNow);
    globalThis.document?.removeEventListener("visibilitychange", this.#onVisible);
    this.#drop(1000, "leaving");
    this.#setState("idle");
  }

  /** Reconnects at once (e.g. with a new token after a nickname change). @param {string} [token] */
  restart(token) {
    if (token) this.token = token;
    this.#drop(1000, "restart");
    this.#open();
  }

  /**
   * Queues a message (text, and optionally an uploaded image's attachment); it is sent now if
   * joined, else as soon as the room is joined again.
   * @param {string} text
   * @param {Attachment | null} [attachment]
   * @param {number | null} [replyTo]  the seq of the message it answers
   */
  send(text, attachment = null, replyTo = null) {
    /** @type {OutboxEntry} */
    const entry = { client_msg_id: newId(), text, attachment, state: "pending", error: null };
    if (replyTo) entry.reply_to = replyTo;
    this.outbox.set(entry.client_msg_id, entry);
    this.#emitOutbox(entry);
    this.#pump();
    return entry;
  }

  /** Sends a failed message again (same client_msg_id, so it is stored once at most). @param {string} id */
  retry(id) {
    const entry = this.outbox.get(id);
    if (!entry) return;
    entry.state = "pending";
    entry.error = null;
    this.#emitOutbox(entry);
    this.#pump();
  }

  /** Drops a message that was not sent. @param {string} id */
  discard(id) {
    const entry = this.outbox.get(id);
    if (!entry) return;
    this.outbox.delete(id);
    this.#emitOutbox({ ...entry, state: "discarded" });
    this.#pump();
  }

  typing() {
    if (this.joined && Date.now() >= this.quietUntil) this.#frame({ type: "typing", room: this.room });
  }

  /**
   * I have seen the room up to `seq`: sends `read`, at most once per READ_EVERY_MS (the last
   * wanted seq wins), never a seq at or below one already sent.
   * @param {number} seq
   */
  read(seq) {
    if (seq <= this.readSent || seq <= this.readWanted) return;
    this.readWanted = seq;
    if (this.readTimer) return;
    const wait = Math.max(0, this.readAt + READ_EVERY_MS - Date.now());
    this.readTimer = setTimeout(() => {
      this.readTimer = null;
      if (!this.joined) {
        // Not sent: the next read() after the join asks again.
        this.readWanted = this.readSent;
        return;
      }
      this.readAt = Date.now();
      this.readSent = this.readWanted;
      this.#frame({ type: "read", room: this.room, seq: this.readSent });
    }, wait);
  }

  /**
   * Adds (`on`) or takes back my `emoji` on the message at `seq`. Returns false when not connected.
   * @param {number} seq
   * @param {string} emoji
   * @param {boolean} on
   */
  react(seq, emoji, on) {
    if (!this.joined) return false;
    this.#frame({ type: "react", room: this.room, seq, emoji, on });
    return true;
  }

  /** Moderators: deletes the message at `seq`. Returns false when not connected. @param {number} seq */
  deleteMessage(seq) {
    if (!this.joined) return false;
    this.#frame({ type: "delete", room: this.room, seq });
    return true;
  }

  /**
   * Moderators: mutes `userId` in this room for `secs` (0 lifts it).
   * @param {number} userId
   * @param {number} secs
   */
  mute(userId, secs) {
    if (!this.joined) return false;
    this.#frame({ type: "mute", room: this.room, user_id: userId, secs });
    return true;
  }

  /** Records a seq seen elsewhere (history pages), so a catch-up starts after it. @param {number} seq */
  saw(seq) {
    if (seq > this.lastSeq) this.lastSeq = seq;
  }

  // ---- internals ----

  #open() {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.#setState(this.everJoined ? "reconnecting" : "connecting");
    /** @type {SocketLike} */
    let ws;
    try {
      ws = this.openSocket(this.url);
    } catch (err) {
      this.#setState("failed", { message: `Cannot open ${this.url}: ${err instanceof Error ? err.message : err}` });
      return;
    }
    this.ws = ws;
    this.joined = false;
    ws.onopen = () => {
      this.lastFrameAt = Date.now();
      this.#frame(this.moderator ? { type: "hello", token: this.token, moderator: this.moderator } : { type: "hello", token: this.token });
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.#onFrame(frame);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.#lostLink();
      if (event.code === 4401) {
        this.#setState("unauthorized");
        this.dispatchEvent(new CustomEvent("unauthorized"));
        return;
      }
      this.#schedule();
    };
  }

  /** @param {Frame} f */
  #onFrame(f) {
    switch (f.type) {
      case "welcome":
        this.user = f.user;
        this.moderatorName = typeof f.moderator === "string" ? f.moderator : null;
        this.dispatchEvent(new CustomEvent("welcome", { detail: f }));
        this.#frame(this.everJoined ? { type: "join", room: this.room, after: this.lastSeq } : { type: "join", room: this.room });
        break;
      case "joined":
        if (f.room !== this.room) return;
        this.joined = true;
        this.everJoined = true;
        this.attempt = 0;
        for (const m of f.messages || []) this.#seen(m);
        this.dispatchEvent(new CustomEvent("joined", { detail: f }));
        this.#setState("online");
        this.#pump();
        break;
      case "message":
        if (f.room !== this.room) return;
        this.#seen(f);
        this.dispatchEvent(new CustomEvent("message", { detail: f }));
        break;
      case "ack": {
        const entry = this.outbox.get(f.client_msg_id);
        this.dispatchEvent(new CustomEvent("ack", { detail: f }));
        if (entry) {
          this.outbox.delete(f.client_msg_id);
          this.#emitOutbox({ ...entry, state: "acked", seq: f.seq });
          this.#pump();
        }
        break;
      }
      case "presence":
        if (f.room === this.room) this.dispatchEvent(new CustomEvent("presence", { detail: f }));
        break;
      case "typing":
        if (f.room === this.room) this.dispatchEvent(new CustomEvent("typing", { detail: f }));
        break;
      case "deleted":
      case "muted":
      case "receipts":
      case "reactions":
        if (f.room === this.room) this.dispatchEvent(new CustomEvent(f.type, { detail: f }));
        break;
      case "reconnect":
        // The task is draining: leave now, the load balancer sends us to a healthy one.
        this.#drop(1000, "following reconnect");
        this.#open();
        break;
      case "error":
        this.#onError(f);
        break;
      default:
        break; // pong, and frames added by later versions
    }
  }

  /** @param {Frame} f */
  #onError(f) {
    if (f.code === "rate_limited") {
      // Transient: stay quiet a moment, then send the same message again (keeping the order).
      this.quietUntil = Date.now() + RATE_LIMITED_RESEND_MS;
      const entry = (f.client_msg_id && this.outbox.get(f.client_msg_id)) || this.#inFlight();
      if (entry && entry.state === "sending") entry.resendAt = Math.min(entry.resendAt ?? Infinity, this.quietUntil);
      this.dispatchEvent(new CustomEvent("server-error", { detail: f }));
      return;
    }
    if (f.client_msg_id && this.outbox.has(f.client_msg_id)) {
      const entry = /** @type {OutboxEntry} */ (this.outbox.get(f.client_msg_id));
      entry.state = "failed";
      entry.error = { code: f.code, message: f.message };
      this.#emitOutbox(entry);
      this.#pump();
      return;
    }
    if (f.code === "unauthorized") {
      this.#drop(1000, "unauthorized");
      this.#setState("unauthorized");
      this.dispatchEvent(new CustomEvent("unauthorized"));
      return;
    }
    this.dispatchEvent(new CustomEvent("server-error", { detail: f }));
  }

  /** A message in this room was seen: advance lastSeq, and settle our own outbox entry. @param {Frame} m */
  #seen(m) {
    if (typeof m.seq === "number" && m.seq > this.lastSeq) this.lastSeq = m.seq;
    if (this.user && m.user?.id === this.user.id && this.outbox.has(m.client_msg_id)) {
      const entry = /** @type {OutboxEntry} */ (this.outbox.get(m.client_msg_id));
      this.outbox.delete(m.client_msg_id);
      this.#emitOutbox({ ...entry, state: "acked", seq: m.seq });
      this.#pump();
    }
  }

  /** The send awaiting its ack, if any. */
  #inFlight() {
    for (const entry of this.outbox.values()) if (entry.state === "sending") return entry;
    return null;
  }

  /** Sends the oldest pending message when joined and nothing is awaiting an ack. */
  #pump() {
    if (!this.joined || this.#inFlight()) return;
    for (const entry of this.outbox.values()) {
      if (entry.state === "pending") {
        this.#transmit(entry);
        this.#emitOutbox(entry);
        return;
      }
    }
  }

  /** @param {OutboxEntry} entry */
  #transmit(entry) {
    entry.state = "sending";
    entry.resendAt = Date.now() + RESEND_AFTER_MS;
    /** @type {Frame} */
    const frame = { type: "send", room: this.room, client_msg_id: entry.client_msg_id, text: entry.text };
    // The server takes the signed token; url and size are for showing it while pending.
    if (entry.attachment) frame.attachment = entry.attachment.token;
    if (entry.reply_to) frame.reply_to = entry.reply_to;
    this.#frame(frame);
  }

  /**
   * Sends the message in flight again when its ack is late: a frame the server dropped (e.g. a
   * rate-limited one, whose error names no client_msg_id) would otherwise hang forever.
   */
  #resendStale() {
    const entry = this.#inFlight();
    if (entry && this.joined && Date.now() >= (entry.resendAt ?? 0)) this.#transmit(entry);
  }

  #lostLink() {
    this.joined = false;
    for (const entry of this.outbox.values()) {
      if (entry.state === "sending") {
        entry.state = "pending";
        this.#emitOutbox(entry);
      }
    }
  }

  #schedule() {
    if (this.stopped || this.retryTimer) return;
    const delay = backoffDelay(this.attempt++, this.backoff);
    this.#setState(globalThis.navigator?.onLine === false ? "offline" : "reconnecting", { retryAt: Date.now() + delay, attempt: this.attempt });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.#open();
    }, delay);
  }

  #retryNow = () => {
    if (!this.stopped && !this.ws && this.state !== "unauthorized") this.#open();
  };

  #onVisible = () => {
    if (globalThis.document?.visibilityState === "visible") this.#retryNow();
  };

  #beat() {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return;
    if (Date.now() - this.lastFrameAt > SILENCE_MS) {
      this.#drop(4000, "silent");
      this.#schedule();
      return;
    }
    this.#frame({ type: "ping" });
  }

  /**
   * Forgets the current socket (its late events are ignored) and closes it.
   * @param {number} code
   * @param {string} reason
   */
  #drop(code, reason) {
    const ws = this.ws;
    this.ws = null;
    this.#lostLink();
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {
        // Already closing.
      }
    }
  }

  /** @param {Frame} obj */
  #frame(obj) {
    const ws = this.ws;
    if (ws && ws.readyState === OPEN) ws.send(JSON.stringify(obj));
  }

  /** @param {string} state @param {Record<string, unknown>} [detail] */
  #setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  /**
   * Tells the page an entry changed (`state` also "acked" or "discarded"), and saves the
   * outbox when it is kept in storage.
   * @param {Omit<OutboxEntry, "state"> & { state: string, seq?: number }} entry
   */
  #emitOutbox(entry) {
    this.store?.save([...this.outbox.values()]);
    this.dispatchEvent(new CustomEvent("outbox", { detail: { ...entry, connected: this.joined } }));
  }
}
