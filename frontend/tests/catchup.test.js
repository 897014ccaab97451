// A long absence in an active room: the page reconnects, gets the first 500 missed messages
// in `joined` (has_more), and pages the rest over HTTP while live messages keep arriving.
// Each page must start after the highest seq the catch-up itself read, not after the newest
// live message (which would skip every message in between).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, sendMessage, waitForMessage, shownSeqs, seedMessages, waitOnline } from "./lib/browser.js";

// Seeding sends hundreds of frames as fast as they are acked.
const env = { CHAT_RATE_PER_SEC: "2000", CHAT_RATE_BURST: "2000" };
const MISSED = 750;

let server;
let side;
let alice;
let bob;
let seeder;

before(async () => {
  server = await ChatServer.start({ env });
  [alice, bob, seeder] = await Promise.all([launchPerson("alice"), launchPerson("bob"), launchPerson("seeder")]);
});

after(async () => {
  await Promise.all([alice?.close(), bob?.close(), seeder?.close()]);
  await side?.stop();
  await server?.stop();
});

test("catch-up after a long absence pages by its own progress while live messages arrive", async () => {
  await enterRoom(alice, server.base, "backlog", { nickname: "Alice" });
  await sendMessage(alice.page, "before the absence");

  // Alice is cut off; meanwhile the room moves on by more than one join's catch-up (500).
  await server.stop();
  await alice.page.locator('#conn-status[data-state="reconnecting"]').waitFor();
  side = await ChatServer.start({ dataDir: server.dataDir, env });
  const texts = Array.from({ length: MISSED }, (_, i) => `missed ${i + 1}`);
  await seedMessages(seeder, side.base, "backlog", texts);
  await side.stop();
  side = null;

  // Hold Alice's first catch-up page until a live message has reached her.
  let requested;
  const firstPage = new Promise((r) => (requested = r));
  let release;
  const held = new Promise((r) => (release = r));
  let first = true;
  await alice.page.route(/\/api\/rooms\/backlog\/messages\?.*after=/, async (route) => {
    if (first) {
      first = false;
      requested();
      await held;
    }
    await route.continue();
  });

  server = await ChatServer.start({ port: server.port, dataDir: server.dataDir, env });
  await waitOnline(alice.page);
  await firstPage;
  await enterRoom(bob, server.base, "backlog", { nickname: "Bob" });
  await sendMessage(bob.page, "live during the catch-up");
  await waitForMessage(alice.page, "live during the catch-up");
  release();

  // Every message once, in order, with no hole: 1 before, MISSED missed, 1 live.
  const total = MISSED + 2;
  await alice.page.waitForFunction((n) => document.querySelectorAll("#messages .msg").length >= n, total);
  const seqs = await shownSeqs(alice.page);
  assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1));
  assert.deepEqual(alice.errors, []);
});
