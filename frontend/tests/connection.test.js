// Unit tests of the connection's pure client logic (js/connection.js) with a fake socket and
// mocked timers, no browser and no server: the outbox sends one message at a time in the order
// typed, sends it again with the same client_msg_id (late ack, reconnect, rate limit), keeps
// it in storage across a "reload", and reconnects with the jittered exponential backoff.

import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { ChatConnection, RESEND_AFTER_MS, RATE_LIMITED_RESEND_MS } from "../js/connection.js";

/** A socket the test plays the server for: it opens, receives frames, and closes on command. */
class FakeSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.onopen = this.onmessage = this.onclose = null;
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close(code) {
    this.readyState = 3;
    this.closedWith = code;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
  sends() {
    return this.sent.filter((f) => f.type === "send");
  }
}

const ME = { id: 7, nickname: "Me", avatar: "otter" };
let sockets;
let conn;

/** A connection over fake sockets; `random` fixes the backoff's jitter. */
function connect({ store = null, backoff = { baseMs: 1000, maxMs: 8000 } } = {}) {
  sockets = [];
  conn = new ChatConnection({ url: "ws://test/ws", token: "tok", room: "r", backoff, store, openSocket: (u) => sockets.push(new FakeSocket(u)) && sockets.at(-1) });
  const events = [];
  for (const type of ["outbox", "state", "joined", "message"]) conn.addEventListener(type, (e) => events.push({ type, ...e.detail }));
  conn.start();
  return events;
}

/** The fake server lets the newest socket in: open, welcome, joined. */
function admit(joined = {}) {
  const ws = sockets.at(-1);
  ws.open();
  assert.deepEqual(ws.sent.at(-1), { type: "hello", token: "tok" });
  ws.receive({ type: "welcome", user: ME, server: { color: "blue" } });
  ws.receive({ type: "joined", room: "r", last_seq: 0, online: 1, members: [ME], messages: [], ...joined });
  return ws;
}

beforeEach(() => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_000_000 });
  mock.method(Math, "random", () => 1);
});

afterEach(() => {
  conn?.stop();
  mock.timers.reset();
  mock.restoreAll();
});

test("the outbox waits for the join, then sends one message at a time in the order typed", () => {
  const events = connect();
  const a = conn.send("first");
  const b = conn.send("second");
  assert.equal(sockets.length, 1);
  assert.deepEqual(events.filter((e) => e.type === "outbox").map((e) => [e.text, e.state, e.connected]), [
    ["first", "pending", false],
    ["second", "pending", false],
  ]);
  const ws = admit();
  assert.deepEqual(ws.sent.map((f) => f.type), ["hello", "join", "send"]);
  assert.deepEqual(ws.sends(), [{ type: "send", room: "r", client_msg_id: a.client_msg_id, text: "first" }]);
  ws.receive({ type: "ack", room: "r", client_msg_id: a.client_msg_id, seq: 1 });
  assert.deepEqual(ws.sends().map((f) => f.client_msg_id), [a.client_msg_id, b.client_msg_id]);
  ws.receive({ type: "ack", room: "r", client_msg_id: b.client_msg_id, seq: 2 });
  assert.equal(conn.outbox.size, 0);
  assert.deepEqual(events.filter((e) => e.state === "acked").map((e) => [e.text, e.seq]), [["first", 1], ["second", 2]]);
});

test("a late ack: the same message goes again with the same client_msg_id", () => {
  connect();
  const ws = admit();
  const a = conn.send("hello?");
  assert.equal(ws.sends().length, 1);
  mock.timers.tick(RESEND_AFTER_MS - 1000);
  assert.equal(ws.sends().length, 1, "not before RESEND_AFTER_MS");
  mock.timers.tick(1000);
  assert.deepEqual(ws.sends().map((f) => f.client_msg_id), [a.client_msg_id, a.client_msg_id]);
  // The server acks the repeat with the original seq: the message is settled once.
  ws.receive({ type: "ack", room: "r", client_msg_id: a.client_msg_id, seq: 5 });
  ws.receive({ type: "ack", room: "r", client_msg_id: a.client_msg_id, seq: 5 });
  assert.equal(conn.outbox.size, 0);
  mock.timers.tick(RESEND_AFTER_MS * 3);
  assert.equal(ws.sends().length, 2);
});

test("a reconnect sends the unacked message again with its id, after joining with `after`", () => {
  connect();
  const ws1 = admit({ messages: [{ seq: 3, room: "r", user: ME, text: "old", client_msg_id: "x" }] });
  const a = conn.send("across the gap");
  ws1.drop();
  assert.equal(conn.outbox.get(a.client_msg_id).state, "pending");
  mock.timers.tick(1000);
  assert.equal(sockets.length, 2);
  const ws2 = sockets[1];
  ws2.open();
  ws2.receive({ type: "welcome", user: ME });
  assert.deepEqual(ws2.sent.at(-1), { type: "join", room: "r", after: 3 });
  ws2.receive({ type: "joined", room: "r", messages: [] });
  assert.deepEqual(ws2.sends().map((f) => f.client_msg_id), [a.client_msg_id]);
  // The catch-up carries the stored copy (the ack was lost with the first socket): settled.
  ws2.receive({ type: "message", room: "r", seq: 4, user: ME, text: "across the gap", client_msg_id: a.client_msg_id });
  assert.equal(conn.outbox.size, 0);
});

test("rate_limited: the message goes again soon with the same id; a refusal fails it and the next one goes", () => {
  connect();
  const ws = admit();
  const a = conn.send("too fast");
  const b = conn.send("x".repeat(3));
  ws.receive({ type: "error", code: "rate_limited", message: "slow down", client_msg_id: a.client_msg_id });
  mock.timers.tick(RATE_LIMITED_RESEND_MS + 1000);
  assert.deepEqual(ws.sends().map((f) => f.client_msg_id), [a.client_msg_id, a.client_msg_id]);
  ws.receive({ type: "error", code: "too_large", message: "too long", client_msg_id: a.client_msg_id });
  assert.equal(conn.outbox.get(a.client_msg_id).state, "failed");
  assert.deepEqual(ws.sends().map((f) => f.client_msg_id), [a.client_msg_id, a.client_msg_id, b.client_msg_id]);
  conn.discard(a.client_msg_id);
  assert.deepEqual([...conn.outbox.keys()], [b.client_msg_id]);
});

test("the outbox survives a reload through its store, and is sent with the same ids exactly once", () => {
  let saved = [];
  const store = { load: () => saved, save: (entries) => (saved = structuredClone(entries)) };
  connect({ store });
  const a = conn.send("typed on a train");
  const b = conn.send("and this");
  assert.deepEqual(saved.map((e) => e.client_msg_id), [a.client_msg_id, b.client_msg_id]);
  conn.stop(); // the page reloads before it was ever connected

  const events = connect({ store });
  assert.deepEqual(events.filter((e) => e.type === "outbox").map((e) => e.text), ["typed on a train", "and this"], "shown at once");
  const ws = admit();
  assert.deepEqual(ws.sends().map((f) => [f.client_msg_id, f.text]), [[a.client_msg_id, "typed on a train"]]);
  ws.receive({ type: "ack", room: "r", client_msg_id: a.client_msg_id, seq: 1 });
  ws.receive({ type: "ack", room: "r", client_msg_id: b.client_msg_id, seq: 2 });
  assert.deepEqual(saved, [], "nothing left to send after the acks");
  assert.deepEqual(ws.sends().map((f) => f.client_msg_id), [a.client_msg_id, b.client_msg_id], "each sent once");
});

test("reconnects back off exponentially up to the cap, and start over after a join", () => {
  connect({ backoff: { baseMs: 1000, maxMs: 8000 } });
  const opensAt = [];
  const failNewest = () => sockets.at(-1).drop();
  // With Math.random() = 1 each delay is its cap: 1 s, 2 s, 4 s, 8 s, 8 s.
  failNewest();
  for (const delay of [1000, 2000, 4000, 8000, 8000]) {
    const before = sockets.length;
    mock.timers.tick(delay - 1);
    assert.equal(sockets.length, before, `no retry before ${delay} ms`);
    mock.timers.tick(1);
    assert.equal(sockets.length, before + 1, `a retry at ${delay} ms`);
    opensAt.push(delay);
    failNewest();
  }
  mock.timers.tick(8000);
  admit();
  sockets.at(-1).drop();
  const before = sockets.length;
  mock.timers.tick(1000);
  assert.equal(sockets.length, before + 1, "after a join the backoff starts again at its base");
  // Jitter: with Math.random() = 0 the delay is base/2.
  Math.random.mock.mockImplementation(() => 0);
  sockets.at(-1).drop();
  mock.timers.tick(499);
  assert.equal(sockets.length, before + 1);
  mock.timers.tick(1);
  assert.equal(sockets.length, before + 2);
});

test("a silent socket is dropped and replaced; a `reconnect` frame moves at once", () => {
  connect();
  const ws = admit();
  ws.receive({ type: "reconnect", reason: "draining", retry_after_ms: 100 });
  assert.equal(sockets.length, 2, "follows reconnect without waiting");
  assert.equal(ws.closedWith, 1000);
  const ws2 = admit();
  for (let s = 0; s < 25; s++) mock.timers.tick(1000);
  assert.deepEqual(ws2.sent.at(-1), { type: "ping" }, "pings while idle");
  assert.equal(ws2.closedWith, undefined);
  for (let s = 0; s < 60; s++) mock.timers.tick(1000);
  assert.equal(ws2.closedWith, 4000, "no frame for 60 s: dropped");
  assert.equal(sockets.length, 3);
});
