// Reactions in real Chromium against a real chat-server: one person reacts to a message and
// the other sees the emoji, the count and who (tooltip) under it, live; the other adds the same
// emoji (the count goes to 2, pressed for them), then one takes theirs back; someone opening
// the room later sees the reactions from history.

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

const row = (page, text) => page.locator("#messages .msg", { hasText: text }).locator(".reactions");
const chip = (page, text, emoji) => row(page, text).locator("button.reaction", { hasText: emoji });

test("a reaction is seen by the other, counted, named, toggled and kept", async () => {
  await enterRoom(alice, server.base, "stage", { nickname: "Alice" });
  await enterRoom(bob, server.base, "stage", { nickname: "Bob" });
  await sendMessage(alice.page, "welcome everyone");
  await waitForMessage(bob.page, "welcome everyone");

  // Bob opens the set under Alice's message (its tools show on hover) and picks 🎉.
  await bob.page.locator("#messages .msg", { hasText: "welcome everyone" }).hover();
  await row(bob.page, "welcome everyone").getByRole("button", { name: "Add a reaction" }).click();
  await row(bob.page, "welcome everyone").getByRole("button", { name: "React with 🎉" }).click();
  const seen = chip(alice.page, "welcome everyone", "🎉");
  await seen.filter({ hasText: "1" }).waitFor();
  assert.equal(await seen.getAttribute("title"), "Bob");
  assert.equal(await seen.getAttribute("aria-pressed"), "false", "not Alice's own");
  assert.equal(await chip(bob.page, "welcome everyone", "🎉").getAttribute("aria-pressed"), "true");

  // Alice adds hers with a click on the chip: 2 on both sides.
  await seen.click();
  await chip(bob.page, "welcome everyone", "🎉").filter({ hasText: "2" }).waitFor();
  await chip(alice.page, "welcome everyone", "🎉").and(alice.page.locator('[aria-pressed="true"]')).waitFor();
  assert.equal(await chip(bob.page, "welcome everyone", "🎉").getAttribute("title"), "you, Alice");
  await screenshot(alice.page, "reactions");

  // Bob takes his back.
  await chip(bob.page, "welcome everyone", "🎉").click();
  await chip(alice.page, "welcome everyone", "🎉").filter({ hasText: "1" }).waitFor();
  assert.equal(await chip(alice.page, "welcome everyone", "🎉").getAttribute("title"), "you");

  // Someone arriving later sees it from history.
  await enterRoom(carol, server.base, "stage", { nickname: "Carol" });
  await chip(carol.page, "welcome everyone", "🎉").filter({ hasText: "1" }).waitFor();
  assert.equal(await chip(carol.page, "welcome everyone", "🎉").getAttribute("title"), "Alice");
  assert.deepEqual([...alice.errors, ...bob.errors, ...carol.errors], []);
});
