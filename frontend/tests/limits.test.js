// Limits seen from the page, in real Chromium against a real chat-server: a message over the
// length limit is refused with the rule before sending, and messages the server rate-limits
// are shown, then sent again until stored, each exactly once.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, typeAndSend, waitForMessage, shownTexts, screenshot } from "./lib/browser.js";

let server;
let person;

before(async () => {
  server = await ChatServer.start({ env: { CHAT_RATE_PER_SEC: "1", CHAT_RATE_BURST: "1" } });
  person = await launchPerson("limits");
});

after(async () => {
  await person?.close();
  await server?.stop();
});

test("a message over 2,000 characters is refused with the rule and not sent", async () => {
  const { page } = person;
  await enterRoom(person, server.base, "limits", { nickname: "Lim" });
  await typeAndSend(page, "x".repeat(2001));
  await page.locator("#composer-error", { hasText: "at most 2,000 characters (this one has 2,001)" }).waitFor();
  assert.equal(await page.locator("#pending .msg").count(), 0);
  assert.equal(await page.inputValue("#composer-input"), "x".repeat(2001), "the text is kept to be shortened");
  assert.deepEqual(await server.allMessages("limits"), []);
  await screenshot(page, "limits-too-long");
});

test("rate-limited sends are retried until stored, each exactly once, in the order typed", async () => {
  const { page } = person;
  const texts = ["burst 1", "burst 2", "burst 3", "burst 4"];
  for (const t of texts) await typeAndSend(page, t);
  await page.locator("#composer-error", { hasText: "slow down" }).waitFor();
  await screenshot(page, "limits-rate-limited");
  for (const t of texts) await waitForMessage(page, t, { timeout: 30000 });
  await page.locator("#pending .msg").first().waitFor({ state: "detached" });
  assert.deepEqual(await shownTexts(page), texts);
  const stored = (await server.allMessages("limits")).map((m) => m.text);
  assert.deepEqual(stored, texts, "each stored once, in order");
  assert.deepEqual(person.errors, []);
});
