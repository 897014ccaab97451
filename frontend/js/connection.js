// One room's live link to the server: hello → welcome → join, reconnect with jittered backoff
// (at once when the server says `reconnect`), catch-up with `after` = the last seq seen, and an
// outbox of sends that survives disconnects: messages go one at a time in the order typed, each
// sent again with the same client_msg_id until it is acked, so the server stores it once.
//
// Events (CustomEvent, payload in `detail`): state, welcome, joined, message, presence, typing,
// ack, outbox (an entry changed), server-error, unauthorized, deleted (a moderator removed a
// message), muted (a moderator muted me, or confirmed my mute of someone), receipts (read
// positions).

import { backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
import { newId } from "./ids.js";

const HEARTBEAT_MS = 25000;
/** No frame (not even our ping's pong) for this long: the socket is dead, reconnect. */
const SILENCE_MS = 60000;
/** A send not acked after this long is sent again (same client_msg_id: stored once). */
const RESEND_AFTER_MS = 5000;
/** `read` frames go at most this often (the server coalesces receipts per second anyway). */
const READ_EVERY_MS = 1000;
/** After a `rate_limited` error, the unacked send goes again this soon (the budget refills). */
const RATE_LIMITED_RESEND_MS = 1100;

export class ChatConnection extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.url      the WebSocket endpoint
   * @param {string} o.token    the guest token for `hello`
   * @param {string} o.room     the room to join
   * @param {string} [o.moderator] a moderator credential for `hello`
   * @param {object} [o.backoff] `{ baseMs, maxMs }`
   */
  constructor({ url, token, room, moderator = null, backoff = DEFAULT_BACKOFF }) {
    super();
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
    /** client_msg_id → { client_msg_id, text, state: "pending"|"sending"|"failed", error } */
    this.outbox = new Map();
    this.state = "idle";
    this.ws = null;
    this.joined = false;
    this.everJoined = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.heartbeat = null;
    this.lastFrameAt = 0;
    this.stopped = false;
    /** After a rate_limited error, optional frames (typing) wait until then. */
    this.quietUntil = 0;
    /** Read position: the highest seq sent in `read`, the one to send next, when last sent. */
    this.readSent = 0;
    this.readWanted = 0;
    this.readAt = 0;
    this.readTimer = null;
  }

  start() {
    this.stopped = false;
    this.#open();
    this.heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    this.resender = setInterval(() => this.#resendStale(), 1000);
    window.addEventListener("online", this.#retryNow);
    document.addEventListener("visibilitychange", this.#onVisible);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    clearInterval(this.resender);
    window.removeEventListener("online", this.#retryNow);
    document.removeEventListener("visibilitychange", this.#onVisible);
    this.#drop(1000, "leaving");
    this.#setState("idle");
  }

  /** Reconnects at once (e.g. with a new token after a nickname change). */
  restart(token) {
    if (token) this.token = token;
    this.#drop(1000, "restart");
    this.#open();
  }

  /**
   * Queues a message (text, and optionally an uploaded image's attachment); it is sent now if
   * joined, else as soon as the room is joined again.
   */
  send(text, attachment = null) {
    const entry = { client_msg_id: newId(), text, attachment, state: "pending", error: null };
    this.outbox.set(entry.client_msg_id, entry);
    this.#emitOutbox(entry);
    this.#pump();
    return entry;
  }

  /** Sends a failed message again (same client_msg_id, so it is stored once at most). */
  retry(id) {
    const entry = this.outbox.get(id);
    if (!entry) return;
    entry.state = "pending";
    entry.error = null;
    this.#emitOutbox(entry);
    this.#pump();
  }

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

  /** Moderators: deletes the message at `seq`. Returns false when not connected. */
  deleteMessage(seq) {
    if (!this.joined) return false;
    this.#frame({ type: "delete", room: this.room, seq });
    return true;
  }

  /** Moderators: mutes `userId` in this room for `secs` (0 lifts it). */
  mute(userId, secs) {
    if (!this.joined) return false;
    this.#frame({ type: "mute", room: this.room, user_id: userId, secs });
    return true;
  }

  /** Records a seq seen elsewhere (history pages), so a catch-up starts after it. */
  saw(seq) {
    if (seq > this.lastSeq) this.lastSeq = seq;
  }

  // ---- internals ----

  #open() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.#setState(this.everJoined ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.#setState("failed", { message: `Cannot open ${this.url}: ${err.message}` });
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

  #onError(f) {
    if (f.code === "rate_limited") {
      // Transient: stay quiet a moment, then send the same message again (keeping the order).
      this.quietUntil = Date.now() + RATE_LIMITED_RESEND_MS;
      const entry = (f.client_msg_id && this.outbox.get(f.client_msg_id)) || this.#inFlight();
      if (entry && entry.state === "sending") entry.resendAt = Math.min(entry.resendAt, this.quietUntil);
      this.dispatchEvent(new CustomEvent("server-error", { detail: f }));
      return;
    }
    if (f.client_msg_id && this.outbox.has(f.client_msg_id)) {
      const entry = this.outbox.get(f.client_msg_id);
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

  /** A message in this room was seen: advance lastSeq, and settle our own outbox entry. */
  #seen(m) {
    if (typeof m.seq === "number" && m.seq > this.lastSeq) this.lastSeq = m.seq;
    if (this.user && m.user?.id === this.user.id && this.outbox.has(m.client_msg_id)) {
      const entry = this.outbox.get(m.client_msg_id);
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

  #transmit(entry) {
    entry.state = "sending";
    entry.resendAt = Date.now() + RESEND_AFTER_MS;
    const frame = { type: "send", room: this.room, client_msg_id: entry.client_msg_id, text: entry.text };
    // The server takes the signed token; url and size are for showing it while pending.
    if (entry.attachment) frame.attachment = entry.attachment.token;
    this.#frame(frame);
  }

  /**
   * Sends the message in flight again when its ack is late: a frame the server dropped (e.g. a
   * rate-limited one, whose error names no client_msg_id) would otherwise hang forever.
   */
  #resendStale() {
    const entry = this.#inFlight();
    if (entry && this.joined && Date.now() >= entry.resendAt) this.#transmit(entry);
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
    this.#setState(navigator.onLine === false ? "offline" : "reconnecting", { retryAt: Date.now() + delay, attempt: this.attempt });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.#open();
    }, delay);
  }

  #retryNow = () => {
    if (!this.stopped && !this.ws && this.state !== "unauthorized") this.#open();
  };

  #onVisible = () => {
    if (document.visibilityState === "visible") this.#retryNow();
  };

  #beat() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastFrameAt > SILENCE_MS) {
      this.#drop(4000, "silent");
      this.#schedule();
      return;
    }
    this.#frame({ type: "ping" });
  }

  /** Forgets the current socket (its late events are ignored) and closes it. */
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

  #frame(obj) {
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  #setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  #emitOutbox(entry) {
    this.dispatchEvent(new CustomEvent("outbox", { detail: { ...entry, connected: this.joined } }));
  }
}
