// Unit tests of the client's pure logic (no browser): endpoints and routes, backoff bounds,
// seq ordering and dedupe, and the input rules.

import { test } from "node:test";
import assert from "node:assert/strict";
import { endpoints, parseRoute, newRoomId, ROOM_RE } from "../js/endpoints.js";
import { backoffDelay } from "../js/backoff.js";
import { SeqList } from "../js/seqlist.js";
import { checkNickname, checkText } from "../js/validate.js";
import { normalizeTheme } from "../js/theme.js";
import { avatarGlyph } from "../js/avatar.js";

test("endpoints default to the page's origin and follow its scheme", () => {
  assert.deepEqual(endpoints({ origin: "http://127.0.0.1:8080" }), { apiBase: "http://127.0.0.1:8080", wsUrl: "ws://127.0.0.1:8080/ws" });
  assert.deepEqual(endpoints({ origin: "https://chat.example.com" }, {}), { apiBase: "https://chat.example.com", wsUrl: "wss://chat.example.com/ws" });
});

test("endpoints are overridable by CHAT_CONFIG", () => {
  const loc = { origin: "https://d123.cloudfront.net" };
  assert.deepEqual(endpoints(loc, { apiBase: "https://api.example.com/" }), { apiBase: "https://api.example.com", wsUrl: "wss://api.example.com/ws" });
  assert.deepEqual(endpoints(loc, { wsBase: "wss://ws.example.com" }), { apiBase: "https://d123.cloudfront.net", wsUrl: "wss://ws.example.com/ws" });
  assert.throws(() => endpoints(loc, { wsBase: "https://ws.example.com" }), /wsBase must start with ws:\/\/ or wss:\/\//);
});

test("routes: landing, rooms, titles, themes, bad room ids", () => {
  assert.deepEqual(parseRoute("/", ""), { view: "landing", theme: null });
  assert.deepEqual(parseRoute("/room/lobby", ""), { view: "room", room: "lobby", title: "Room lobby", theme: null });
  assert.deepEqual(parseRoute("/room/talk-1/", "?title=Keynote%20Q%26A&theme=dark"), { view: "room", room: "talk-1", title: "Keynote Q&A", theme: "dark" });
  const bad = parseRoute("/room/no%20spaces", "");
  assert.equal(bad.view, "landing");
  assert.match(bad.error, /not a room name/);
  assert.equal(parseRoute(`/room/${"a".repeat(65)}`, "").view, "landing");
  for (let i = 0; i < 100; i++) assert.match(newRoomId(), ROOM_RE);
});

test("backoff grows, is capped, and is jittered", () => {
  const opts = { baseMs: 500, maxMs: 8000 };
  assert.equal(backoffDelay(0, opts, () => 0), 250);
  assert.equal(backoffDelay(0, opts, () => 1), 500);
  assert.equal(backoffDelay(3, opts, () => 1), 4000);
  assert.equal(backoffDelay(30, opts, () => 1), 8000);
  assert.equal(backoffDelay(30, opts, () => 0), 250);
  const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(5, opts)));
  assert.ok(seen.size > 10, "delays spread out");
  for (const d of seen) assert.ok(d >= 250 && d <= 8000);
});

test("SeqList orders and dedupes seqs whatever order they arrive in", () => {
  const l = new SeqList();
  assert.equal(l.insert(10), 0);
  assert.equal(l.insert(11), 1);
  assert.equal(l.insert(11), -1, "duplicate refused");
  assert.equal(l.insert(5), 0, "older page goes first");
  assert.equal(l.insert(7), 1);
  assert.equal(l.at(2), 10, "insert before the one that had the index");
  assert.equal(l.insert(12), 4);
  assert.equal(l.insert(7), -1);
  assert.deepEqual([l.first, l.last, l.size], [5, 12, 5]);
  assert.ok(l.has(10) && !l.has(6));
});

test("nickname and text rules match the contract", () => {
  assert.deepEqual(checkNickname("  Al  "), { ok: true, value: "Al" });
  assert.equal(checkNickname("A").ok, false);
  assert.match(checkNickname("A").message, /2–15 characters \(this one has 1\)/);
  assert.equal(checkNickname("x".repeat(16)).ok, false);
  assert.equal(checkNickname("🦦🦦").ok, true, "counts characters, not UTF-16 units");
  assert.match(checkNickname("a\u0007b").message, /control characters/);
  assert.deepEqual(checkText("   "), { ok: false, message: null });
  assert.equal(checkText("é".repeat(2000)).ok, true);
  assert.match(checkText("x".repeat(2001)).message, /at most 2000 characters/);
});

test("themes and avatars", () => {
  assert.equal(normalizeTheme("DARK"), "dark");
  assert.equal(normalizeTheme("light"), "light");
  assert.equal(normalizeTheme("system"), "auto");
  assert.equal(normalizeTheme("<script>"), null);
  assert.equal(avatarGlyph("otter"), "🦦");
  assert.equal(avatarGlyph("quokka"), "Q");
});
