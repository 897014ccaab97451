// Read receipts in real Chromium against a real chat-server: a person's own latest message
// shows "Seen by N" once others have it on screen, with who on hover (title) and tap (the
// line opens); a new message of theirs starts again from nobody.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, sendMessage, waitForMessage, screenshot } from "./lib/browser.js";

let server;
let alice;
let bob;
let carol;

before(async () => {
  server = await ChatServer.start();
  [alice, bob, carol] = await Promise.all([launchPerson("alice"), launchPerson("bob"), launchPerson("carol")]);
});

after(async () => {
  await Promise.all([alice?.close(), bob?.close(), carol?.close()]);
  await server?.stop();
});

const seenLine = (page) => page.locator("#messages .msg.mine .seen-by summary");

test("my latest message says who has seen it", async () => {
  await enterRoom(alice, server.base, "talk", { nickname: "Alice" });
  await enterRoom(bob, server.base, "talk", { nickname: "Bob" });

  await sendMessage(alice.page, "first question");
  await waitForMessage(bob.page, "first question");
  await seenLine(alice.page).filter({ hasText: "Seen by 1" }).waitFor();
  assert.equal(await seenLine(alice.page).getAttribute("title"), "Bob");
  const under = alice.page.locator("#messages .msg", { hasText: "first question" }).locator(".seen-by");
  assert.equal(await under.count(), 1, "under the message it is about");
  assert.equal(await bob.page.locator(".seen-by").count(), 0, "Bob has no message of his own");

  await enterRoom(carol, server.base, "talk", { nickname: "Carol" });
  await seenLine(alice.page).filter({ hasText: "Seen by 2" }).waitFor();
  await seenLine(alice.page).click();
  await alice.page.locator("#messages .seen-by[open] p", { hasText: "Bob, Carol" }).waitFor();
  await screenshot(alice.page, "receipts-seen-by");

  // A new message: the line moves to it once others have seen that one.
  await sendMessage(alice.page, "second question");
  await waitForMessage(bob.page, "second question");
  await waitForMessage(carol.page, "second question");
  await alice.page
    .locator("#messages .msg", { hasText: "second question" })
    .locator(".seen-by summary", { hasText: "Seen by 2" })
    .waitFor();
  assert.equal(await alice.page.locator(".seen-by").count(), 1, "only under my latest message");

  // Bob replies; his message shows who saw it, Alice's line stays under hers.
  await sendMessage(bob.page, "an answer");
  await seenLine(bob.page).filter({ hasText: "Seen by 2" }).waitFor();
  assert.deepEqual([...alice.errors, ...bob.errors, ...carol.errors], []);
});
