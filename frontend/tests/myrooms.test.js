// My rooms and the outbox that survives a reload, in real Chromium against a real chat-server:
// the landing page lists the rooms this browser joined, newest first, with the messages others
// sent since; Leave forgets a room; messages typed while the connection is down, or sent but
// never acknowledged, are sent again after a reload with their client_msg_id, and stored once.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { waitFor } from "./lib/wait.js";
import { launchPerson, enterRoom, sendMessage, typeAndSend, waitForMessage, shownTexts, screenshot, waitOnline } from "./lib/browser.js";

let server;
let alice;
let bob;

/**
 * What happens to the page's WebSocket: "offline" (closed at once, as on a train), "lossy" (every
 * frame goes through except the server's acks and message echoes, so the page never learns
 * its message was stored), or "normal".
 */
let link = "normal";
/** The `send` frames the page sent, as they went to the server. */
const sends = [];

/** Alice's WebSocket goes through the test, which plays the network as `link` says. */
async function routeAlice() {
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    if (link === "offline") {
      ws.close().catch(() => {});
      return;
    }
    const upstream = ws.connectToServer();
    ws.onMessage((m) => {
      const f = JSON.parse(m);
      if (f.type === "send") sends.push(f);
      upstream.send(m);
    });
    upstream.onMessage((m) => {
      const type = JSON.parse(m).type;
      if (link !== "lossy" || (type !== "ack" && type !== "message")) ws.send(m);
    });
  });
}

before(async () => {
  server = await ChatServer.start();
  [alice, bob] = await Promise.all([launchPerson("alice"), launchPerson("bob")]);
  await routeAlice();
});

after(async () => {
  await Promise.all([alice?.close(), bob?.close()]);
  await server?.stop();
});

/** The landing page's rooms: [name, unread text] top to bottom, once every count is in. */
async function listed(page) {
  await page.goto(`${server.base}/`);
  await page.locator("#landing").waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll("#my-rooms-list .unread")].every((b) => !b.hidden));
  return page.$$eval("#my-rooms-list li", (lis) => lis.map((li) => [li.querySelector(".room-link").textContent, li.querySelector(".unread").textContent]));
}

test("the landing page lists my rooms newest first with what others said since; Leave forgets one", async () => {
  await enterRoom(alice, server.base, "breakfast", { nickname: "Alice" });
  await sendMessage(alice.page, "coffee?");
  await alice.page.goto(`${server.base}/room/keynote?title=${encodeURIComponent("Keynote Q&A")}`);
  await waitOnline(alice.page);
  await alice.page.goto(`${server.base}/room/workshop`);
  await waitOnline(alice.page);
  assert.deepEqual(await listed(alice.page), [
    ["Room workshop", "No new messages"],
    ["Keynote Q&A", "No new messages"],
    ["Room breakfast", "No new messages"],
  ]);

  await enterRoom(bob, server.base, "breakfast", { nickname: "Bob" });
  await sendMessage(bob.page, "yes please");
  await sendMessage(bob.page, "two sugars");
  await sendMessage(bob.page, "and a croissant");
  await bob.page.goto(`${server.base}/room/keynote`); // no prompt the second time
  await waitOnline(bob.page);
  await sendMessage(bob.page, "great talk");
  assert.deepEqual(await listed(alice.page), [
    ["Room workshop", "No new messages"],
    ["Keynote Q&A", "1 new message"],
    ["Room breakfast", "3 new messages"],
  ]);
  await screenshot(alice.page, "landing-my-rooms");

  // Reading a room clears its count and brings it to the top.
  await alice.page.click("text=Room breakfast");
  await waitForMessage(alice.page, "and a croissant");
  await alice.page.waitForFunction(() => JSON.parse(localStorage.getItem("chat.rooms.v1")).find((r) => r.room === "breakfast").readSeq === 4);
  assert.deepEqual(await listed(alice.page), [
    ["Room breakfast", "No new messages"],
    ["Room workshop", "No new messages"],
    ["Keynote Q&A", "1 new message"],
  ]);

  // Leave: back on the landing page, the room is no longer listed.
  await alice.page.click("text=Room workshop");
  await waitOnline(alice.page);
  await alice.page.click("#leave-button");
  await alice.page.waitForURL(`${server.base}/`);
  await alice.page.locator("#my-rooms-list li").first().waitFor();
  assert.deepEqual((await listed(alice.page)).map(([name]) => name), ["Room breakfast", "Keynote Q&A"]);
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

test("messages typed while offline survive a reload and are stored exactly once", async () => {
  const { page } = alice;
  await page.goto(`${server.base}/room/train`);
  await waitOnline(page);
  link = "offline";
  await page.reload();
  await page.locator("#conn-status:not([data-state=online])").waitFor();
  await typeAndSend(page, "typed in a tunnel");
  await typeAndSend(page, "and another");
  await page.locator("#pending .msg", { hasText: "and another" }).waitFor();
  const kept = await page.evaluate(() => JSON.parse(localStorage.getItem("chat.outbox.v1.train")).map((e) => e.text));
  assert.deepEqual(kept, ["typed in a tunnel", "and another"]);
  link = "normal";
  await page.reload();
  // Shown as pending at once, then sent and stored.
  await waitForMessage(page, "and another");
  await page.locator("#pending .msg").first().waitFor({ state: "detached" });
  assert.deepEqual(await shownTexts(page), ["typed in a tunnel", "and another"]);
  assert.deepEqual((await server.allMessages("train")).map((m) => m.text), ["typed in a tunnel", "and another"]);
  assert.equal(await page.evaluate(() => localStorage.getItem("chat.outbox.v1.train")), null, "nothing left to send");
});

test("a message stored whose ack never came is sent again with its id, survives a reload, and is stored once", async () => {
  const { page } = alice;
  link = "lossy";
  await page.goto(`${server.base}/room/lostack`);
  await waitOnline(page);
  await typeAndSend(page, "did this arrive?");
  // No ack: the page sends it again (after 5 s) with the same client_msg_id.
  await page.waitForFunction(async () => (await (await fetch("/api/rooms/lostack/messages")).json()).messages.length === 1);
  await waitFor(() => sends.filter((f) => f.text === "did this arrive?").length >= 2, { timeout: 20000, what: "a resend" });
  const ids = new Set(sends.filter((f) => f.text === "did this arrive?").map((f) => f.client_msg_id));
  assert.equal(ids.size, 1, "every resend carries the same client_msg_id");
  await page.locator("#pending .msg", { hasText: "did this arrive?" }).waitFor();
  assert.equal((await server.allMessages("lostack")).length, 1);
  link = "normal";
  await page.reload();
  await waitForMessage(page, "did this arrive?");
  await page.locator("#pending .msg").first().waitFor({ state: "detached" });
  assert.deepEqual(await shownTexts(page), ["did this arrive?"]);
  const stored = await server.allMessages("lostack");
  assert.equal(stored.length, 1, "the resend was deduplicated by its client_msg_id");
  assert.equal(await page.evaluate(() => localStorage.getItem("chat.outbox.v1.lostack")), null);
  assert.deepEqual(alice.errors, []);
});
