// Replies and mentions in real Chromium against a real chat-server: Bob answers Alice's
// message with the Reply button and names her with the @ completion; Alice sees the quote and
// her message highlighted, counted in her tab title while she looks away; Carol, arriving after
// more than a page of messages, clicks the quote and the original is loaded and shown.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, sendMessage, waitForMessage, seedMessages, setFocused, screenshot } from "./lib/browser.js";

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

/** The shown message whose own text is exactly `text` (a quote of it does not count). */
const msg = (page, text) => page.locator("#messages .msg", { has: page.locator(".text", { hasText: new RegExp(`^${text.replace(/[?.]/g, "\\$&")}$`) }) });

test("a reply quotes and jumps to what it answers; a mention is highlighted and counted", async () => {
  await enterRoom(alice, server.base, "qa", { nickname: "Alice" });
  await enterRoom(bob, server.base, "qa", { nickname: "Bob" });
  await sendMessage(alice.page, "where is hall B?");
  const fillers = Array.from({ length: 60 }, (_, i) => `filler ${i}`);
  await seedMessages(carol, server.base, "qa", fillers);
  await waitForMessage(bob.page, "filler 59");

  // Bob replies to Alice's message and mentions her through the completion.
  await msg(bob.page, "where is hall B?").hover();
  await msg(bob.page, "where is hall B?").getByRole("button", { name: "Reply to Alice" }).click();
  await bob.page.locator("#reply-bar .reply-target", { hasText: "Replying to Alice: where is hall B?" }).waitFor();
  await bob.page.fill("#composer-input", "@Al");
  await bob.page.locator("#mention-list [role=option]", { hasText: "@Alice" }).waitFor();
  await bob.page.press("#composer-input", "Enter");
  assert.equal(await bob.page.inputValue("#composer-input"), "@Alice ", "the completion put the name in, nothing sent");
  await bob.page.locator("#composer-input").pressSequentially("next to the stairs");
  await setFocused(alice.page, false);
  await bob.page.press("#composer-input", "Enter");

  // Alice: the quote, the highlight, and the title counts the mention.
  const reply = msg(alice.page, "@Alice next to the stairs");
  await reply.locator(".reply-quote", { hasText: "where is hall B?" }).waitFor();
  assert.equal(await reply.locator(".reply-author").textContent(), "Alice");
  assert.ok(await reply.evaluate((li) => li.classList.contains("mention")), "highlighted for the one it names");
  await alice.page.waitForFunction(() => document.title.startsWith("(1 · @1) "));
  assert.ok(!(await msg(bob.page, "@Alice next to the stairs").evaluate((li) => li.classList.contains("mention"))), "not for the sender");
  assert.equal(await bob.page.locator("#reply-bar").isHidden(), true, "the draft is done");
  await setFocused(alice.page, true);
  await screenshot(alice.page, "reply-mention");

  // Carol arrives after more than a page: the original is not shown until she clicks the quote.
  await enterRoom(carol, server.base, "qa", { nickname: "Carol" });
  await waitForMessage(carol.page, "@Alice next to the stairs");
  assert.equal(await msg(carol.page, "where is hall B?").count(), 0, "older than the first page");
  await msg(carol.page, "@Alice next to the stairs").locator(".reply-quote").click();
  await msg(carol.page, "where is hall B?").and(carol.page.locator(".flash")).waitFor();
  assert.ok(await msg(carol.page, "where is hall B?").isVisible());
  assert.deepEqual([...alice.errors, ...bob.errors, ...carol.errors], []);
});
