// The server restarts mid-conversation (same data dir, same port): the page shows it is
// reconnecting, keeps what was typed meanwhile as pending, reconnects by itself, catches up
// the messages it missed (join with after = last seq), and sends the pending one exactly once.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, sendMessage, waitForMessage, shownTexts, shownSeqs, screenshot, typeAndSend, waitOnline } from "./lib/browser.js";

let server;
let side;
let alice;
let bob;
let carol;

before(async () => {
  server = await ChatServer.start();
  [alice, bob, carol] = await Promise.all([launchPerson("alice"), launchPerson("bob"), launchPerson("carol")]);
});

after(async () => {
  await Promise.all([alice?.close(), bob?.close(), carol?.close()]);
  await side?.stop();
  await server?.stop();
});

test("server restarted mid-conversation: reconnect, catch up, pending sent once", async () => {
  await enterRoom(alice, server.base, "resilient", { nickname: "Alice" });
  await enterRoom(bob, server.base, "resilient", { nickname: "Bob" });
  await sendMessage(alice.page, "before the restart");
  await waitForMessage(bob.page, "before the restart");

  // The server goes away: both pages say so.
  await server.stop();
  for (const p of [alice.page, bob.page]) {
    await p.locator('#conn-status[data-state="reconnecting"]').waitFor();
  }

  // Alice writes while disconnected: shown as pending, not lost.
  const pendingText = "written while the server was down";
  await typeAndSend(alice.page, pendingText);
  await alice.page.locator('#pending .msg[data-state="pending"]', { hasText: pendingText }).waitFor();
  await alice.page.locator("#pending .send-status", { hasText: "Waiting for connection" }).waitFor();
  await screenshot(alice.page, "reconnect-pending-while-down");

  // Meanwhile others keep talking (through a server on another port over the same data, so
  // Alice and Bob cannot reach it): these are the messages they must catch up on.
  side = await ChatServer.start({ dataDir: server.dataDir });
  await enterRoom(carol, side.base, "resilient", { nickname: "Carol" });
  const missed = ["missed one", "missed two", "missed three"];
  for (const text of missed) await sendMessage(carol.page, text);
  await carol.close();
  carol = null;
  await side.stop();
  side = null;

  // The same server comes back on the same port with the same data.
  server = await ChatServer.start({ port: server.port, dataDir: server.dataDir });
  for (const p of [alice.page, bob.page]) {
    await waitOnline(p);
    await waitForMessage(p, pendingText);
  }
  await alice.page.locator("#pending .msg").waitFor({ state: "detached" });

  const expected = ["before the restart", ...missed, pendingText];
  assert.deepEqual(await shownTexts(alice.page), expected);
  assert.deepEqual(await shownTexts(bob.page), expected);
  const seqs = await shownSeqs(alice.page);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in seq order");
  assert.equal(new Set(seqs).size, seqs.length, "each message once");

  // Stored once, by Alice, in the same order.
  const stored = await server.allMessages("resilient");
  assert.deepEqual(stored.map((m) => m.text), expected);
  assert.equal(stored.filter((m) => m.text === pendingText).length, 1);
  await screenshot(alice.page, "reconnect-caught-up");
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
