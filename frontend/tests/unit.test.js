// Unit tests of the client's pure logic (no browser): endpoints and routes, backoff bounds,
// seq ordering and dedupe, the input rules, links, days and groups, unread titles, ids, my rooms.

import { test } from "node:test";
import assert from "node:assert/strict";
import { endpoints, parseRoute, newRoomId, ROOM_RE, roomUrl, carriedQuery } from "../js/endpoints.js";
import { backoffDelay } from "../js/backoff.js";
import { SeqList } from "../js/seqlist.js";
import { checkNickname, checkText } from "../js/validate.js";
import { normalizeTheme } from "../js/theme.js";
import { animalName, anonymousName, hasArt } from "../js/avatar.js";
import { linkify, safeHref } from "../js/linkify.js";
import { continues, dayKey, dayLabel, GROUP_GAP_MS } from "../js/daygroups.js";
import { titleWithUnread, notificationText } from "../js/attention.js";
import { newId } from "../js/ids.js";
import { checkImageFile, fitBox, IMAGE_MAX_BYTES } from "../js/uploads.js";
import { applyPresence, unlisted } from "../js/presence.js";
import { myRooms, rememberRoom, markRoomRead, forgetRoom, unreadCount, MY_ROOMS_MAX } from "../js/myrooms.js";

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
  assert.deepEqual(parseRoute("/room/lobby", ""), { view: "room", room: "lobby", title: null, theme: null });
  assert.deepEqual(parseRoute("/room/talk-1/", "?title=Keynote%20Q%26A&theme=dark"), { view: "room", room: "talk-1", title: "Keynote Q&A", theme: "dark" });
  assert.deepEqual(parseRoute("/room/talk-1", "?view=projector&lang=ko"), { view: "projector", room: "talk-1", title: null, theme: null });
  assert.deepEqual(parseRoute("/room/no%20spaces", ""), { view: "landing", theme: null, error: { room: "no spaces" } });
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
  assert.match(String(checkNickname("A").message), /2–15 characters \(this one has 1\)/);
  assert.equal(checkNickname("x".repeat(16)).ok, false);
  assert.equal(checkNickname("🦦🦦").ok, true, "counts characters, not UTF-16 units");
  assert.match(String(checkNickname("a\u0007b").message), /control characters/);
  assert.deepEqual(checkText("   "), { ok: false, message: null });
  assert.equal(checkText("é".repeat(2000)).ok, true);
  assert.match(String(checkText("x".repeat(2001)).message), /at most 2,000 characters \(this one has 2,001\)/);
});

test("themes and avatars", () => {
  assert.equal(normalizeTheme("DARK"), "dark");
  assert.equal(normalizeTheme("light"), "light");
  assert.equal(normalizeTheme("system"), "auto");
  assert.equal(normalizeTheme("<script>"), null);
  assert.equal(hasArt("otter"), true);
  assert.equal(hasArt("quokka"), false);
  assert.equal(animalName("otter", "en"), "Otter");
  assert.equal(animalName("otter", "ko"), "수달");
  assert.equal(animalName("quokka", "ko"), "quokka", "an unknown animal keeps the server's name");
});

test("links: only http(s), trailing punctuation left out, pieces join back to the text", () => {
  const cases = [
    ["see https://example.com/a?b=1#c.", [{ text: "see " }, { text: "https://example.com/a?b=1#c", href: "https://example.com/a?b=1#c" }, { text: "." }]],
    ["(http://x.org/wiki/Foo_(bar)) ok", [{ text: "(" }, { text: "http://x.org/wiki/Foo_(bar)", href: "http://x.org/wiki/Foo_(bar)" }, { text: ") ok" }]],
    ["javascript:alert(1)", [{ text: "javascript:alert(1)" }]],
    ["data:text/html,<b>x</b> and JAVASCRIPT://x", [{ text: "data:text/html,<b>x</b> and JAVASCRIPT://x" }]],
    ["xhttps://nope.example", [{ text: "xhttps://nope.example" }]],
    ["https:// and http://", [{ text: "https:// and http://" }]],
    ["", [{ text: "" }]],
    ["HTTPS://Example.COM", [{ text: "HTTPS://Example.COM", href: "https://example.com/" }]],
    ["two: https://a.example, https://b.example!", [{ text: "two: " }, { text: "https://a.example", href: "https://a.example/" }, { text: ", " }, { text: "https://b.example", href: "https://b.example/" }, { text: "!" }]],
    [`<a href="https://e.example">`, [{ text: `<a href="` }, { text: "https://e.example", href: "https://e.example/" }, { text: `">` }]],
  ];
  for (const [input, want] of cases) {
    const got = linkify(input);
    assert.deepEqual(got, want, input);
    assert.equal(got.map((p) => p.text).join(""), input, "nothing lost or added");
  }
  assert.equal(safeHref("javascript:alert(1)"), null);
  assert.equal(safeHref("ftp://example.com"), null);
  assert.equal(safeHref("https://example.com"), "https://example.com/");
});

test("days and groups: separators by local day, runs by one person within minutes", () => {
  const now = new Date(2026, 10, 29, 15, 0).getTime();
  assert.equal(dayLabel(now - 60_000, now), "Today");
  assert.equal(dayLabel(new Date(2026, 10, 28, 23, 59).getTime(), now), "Yesterday");
  // ICU versions differ in the comma after the weekday.
  assert.match(dayLabel(new Date(2026, 10, 2, 9, 0).getTime(), now, "en-GB"), /^Monday,? 2 November$/, "this year: no year");
  assert.match(dayLabel(new Date(2025, 10, 2, 9, 0).getTime(), now, "en-GB"), /^Sunday,? 2 November 2025$/);
  assert.equal(dayKey(new Date(2026, 0, 5, 0, 0).getTime()), "2026-01-05");
  assert.equal(dayKey(new Date(2026, 0, 4, 23, 59, 59).getTime()), "2026-01-04");

  const at = (h, m) => new Date(2026, 10, 29, h, m).getTime();
  assert.equal(continues({ userId: "1", ts: at(10, 0) }, { userId: "1", ts: at(10, 4) }), true);
  assert.equal(continues({ userId: "1", ts: at(10, 0) }, { userId: "1", ts: at(10, 0) + GROUP_GAP_MS }), false, "gap too long");
  assert.equal(continues({ userId: "1", ts: at(10, 0) }, { userId: "2", ts: at(10, 1) }), false, "another person");
  assert.equal(continues(null, { userId: "1", ts: at(10, 0) }), false);
  assert.equal(continues({ userId: undefined, ts: at(10, 0) }, { userId: undefined, ts: at(10, 1) }), false, "unknown sender");
  assert.equal(continues({ userId: "1", ts: new Date(2026, 10, 28, 23, 58).getTime() }, { userId: "1", ts: at(0, 1) }), false, "across midnight");
  assert.equal(continues({ userId: "1", ts: at(10, 0), removed: true }, { userId: "1", ts: at(10, 1) }), false, "after a removed one");
});

test("unread title and notification text", () => {
  assert.equal(titleWithUnread("Keynote · Chat", 0), "Keynote · Chat");
  assert.equal(titleWithUnread("Keynote · Chat", 3), "(3) Keynote · Chat");
  assert.equal(titleWithUnread("Keynote · Chat", 120), "(99+) Keynote · Chat");
  assert.deepEqual(notificationText({ user: { nickname: "Bob" }, text: "hi <b>there</b>" }, "Keynote"), { title: "Bob · Keynote", body: "hi <b>there</b>" });
  const long = notificationText({ user: { nickname: "Bob" }, text: "🦦".repeat(300) }, "K").body;
  assert.equal([...long].length, 140);
  assert.ok(long.endsWith("…"));
});

test("ids: randomUUID when present, else a v4 UUID from getRandomValues or Math.random", () => {
  const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  assert.equal(newId({ randomUUID: () => "from-randomUUID" }), "from-randomUUID");
  const fromBytes = newId({ getRandomValues: (a) => a.fill(0xff) });
  assert.equal(fromBytes, "ffffffff-ffff-4fff-bfff-ffffffffffff");
  const seen = new Set();
  for (let i = 0; i < 1000; i++) {
    const plain = newId({ getRandomValues: (a) => globalThis.crypto.getRandomValues(a) });
    const bare = newId({}); // no Web Crypto at all
    assert.match(plain, UUID_V4);
    assert.match(bare, UUID_V4);
    seen.add(plain).add(bare);
  }
  assert.equal(seen.size, 2000, "no repeats");
  assert.match(newId(), UUID_V4, "the default crypto");
});

test("images: types and size checked before uploading; the box reserved keeps the aspect ratio", () => {
  assert.deepEqual(checkImageFile({ name: "a.png", type: "image/png", size: 1000 }), { ok: true });
  assert.equal(checkImageFile({ name: "a.webp", type: "image/webp", size: IMAGE_MAX_BYTES }).ok, true, "exactly 5 MB");
  assert.match(checkImageFile({ name: "b.png", type: "image/png", size: IMAGE_MAX_BYTES + 1 }).message, /at most 5 MB \(b\.png is 5\.0 MB\)/);
  assert.match(checkImageFile({ name: "c.svg", type: "image/svg+xml", size: 10 }).message, /Only JPEG, PNG, GIF and WebP.*c\.svg is image\/svg\+xml/);
  assert.match(checkImageFile({ name: "d.png", type: "image/png", size: 0 }).message, /empty/);
  assert.deepEqual(fitBox(640, 480, 320, 320), { width: 320, height: 240 });
  assert.deepEqual(fitBox(100, 1000, 320, 320), { width: 32, height: 320 });
  assert.deepEqual(fitBox(10, 20, 320, 320), { width: 10, height: 20 }, "small images are not enlarged");
  assert.deepEqual(fitBox(0, 0, 320, 320), { width: 320, height: 240 });
});

test("presence: one user joins or leaves, or a big room's summary moves many", () => {
  const u = (id) => ({ id, nickname: `u${id}`, avatar: "fox" });
  const members = new Map([[1, u(1)], [2, u(2)]]);
  assert.deepEqual(applyPresence(members, { online: 3, joined: u(3) }), []);
  assert.deepEqual(applyPresence(members, { online: 2, left: u(1) }), [1]);
  assert.deepEqual([...members.keys()].sort(), [2, 3]);
  const left = applyPresence(members, { online: 3, joined_users: [u(4), u(5)], left_users: [u(2)] });
  assert.deepEqual(left, [2]);
  assert.deepEqual([...members.keys()].sort(), [3, 4, 5]);
  assert.deepEqual(applyPresence(members, { online: 3, joined_users: [], left_users: [] }), []);
  assert.equal(members.size, 3);
  // A big room lists 100 names; the rest are counted.
  assert.equal(unlisted(2000, 100), 1900);
  assert.equal(unlisted(3, 3), 0);
  assert.equal(unlisted(undefined, 3), 0);
});

test("addresses: a room's shareable URL keeps only its title; links keep the forced theme and language", () => {
  const loc = { origin: "https://chat.example.com" };
  assert.equal(roomUrl(loc, "keynote", null), "https://chat.example.com/room/keynote");
  assert.equal(roomUrl(loc, "keynote", "Q&A 2026"), "https://chat.example.com/room/keynote?title=Q%26A+2026");
  assert.equal(carriedQuery("?theme=dark&lang=ko&view=projector&title=x"), "?theme=dark&lang=ko");
  assert.equal(carriedQuery("?view=projector"), "");
});

test("my rooms: newest first, capped, read positions only rise, unread never negative", () => {
  for (const r of myRooms()) forgetRoom(r.room);
  rememberRoom("a", null, 1000);
  rememberRoom("b", "Keynote", 2000);
  rememberRoom("a", null, 3000);
  assert.deepEqual(myRooms().map((r) => [r.room, r.title, r.openedAt]), [["a", null, 3000], ["b", "Keynote", 2000]]);
  rememberRoom("b", null, 4000);
  assert.equal(myRooms()[0].title, "Keynote", "a title once given is kept");
  markRoomRead("a", 10);
  markRoomRead("a", 4);
  const a = myRooms().find((r) => r.room === "a");
  assert.equal(a.readSeq, 10);
  assert.equal(unreadCount(a, 13), 3);
  assert.equal(unreadCount(a, 9), 0);
  for (let i = 0; i < MY_ROOMS_MAX + 5; i++) rememberRoom(`r${i}`, null, 5000 + i);
  assert.equal(myRooms().length, MY_ROOMS_MAX);
  assert.equal(myRooms()[0].room, `r${MY_ROOMS_MAX + 4}`);
  forgetRoom(`r${MY_ROOMS_MAX + 4}`);
  assert.equal(myRooms()[0].room, `r${MY_ROOMS_MAX + 3}`);
});
