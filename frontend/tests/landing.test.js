// The landing page (create or join a room), a phone-sized room, and keyboard use, in real
// Chromium against a real chat-server.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, screenshot, waitOnline, sendMessage } from "./lib/browser.js";

let server;
let person;

before(async () => {
  server = await ChatServer.start();
  person = await launchPerson("phone", { viewport: { width: 390, height: 760 } });
});

after(async () => {
  await person?.close();
  await server?.stop();
});

test("landing page: a bad room name is explained, a good one opens /room/{room}", async () => {
  const { page } = person;
  await page.goto(`${server.base}/`);
  await page.locator("#landing").waitFor();
  await screenshot(page, "landing");
  await page.fill("#room-input", "no spaces please");
  await page.press("#room-input", "Enter");
  await page.locator("#room-error", { hasText: "1–64 letters" }).waitFor();
  await page.fill("#room-input", "team-standup");
  await page.press("#room-input", "Enter");
  await page.waitForURL(`${server.base}/room/team-standup`);
  await page.locator("#nick-dialog").waitFor();
  assert.equal(await page.textContent("#room-title"), "Room team-standup");

  await page.goto(`${server.base}/room/bad%20room`);
  await page.locator("#room-error", { hasText: "is not a room name" }).waitFor();

  await page.goto(`${server.base}/`);
  await page.click("#create-room");
  await page.waitForURL(/\/room\/[a-z0-9]{8}$/);
});

test("keyboard only, on a phone-sized screen", async () => {
  const { page } = person;
  await page.goto(`${server.base}/room/phone`);
  // The prompt has focus; Escape keeps the default guest name.
  await page.locator("#nick-dialog").waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), "nick-input");
  await page.keyboard.press("Escape");
  await page.locator("#nick-dialog").waitFor({ state: "hidden" });
  await waitOnline(page);
  // The first Tab reaches the skip link, which leads to the message box.
  await page.evaluate(() => document.activeElement?.blur());
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip-link");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "composer-input");
  await page.keyboard.type("sent from the keyboard");
  await page.keyboard.press("Enter");
  await page.locator("#messages .msg.mine", { hasText: "sent from the keyboard" }).waitFor();
  // Shift+Enter is a new line, not a send.
  await page.keyboard.type("line one");
  await page.keyboard.press("Shift+Enter");
  await page.keyboard.type("line two");
  assert.equal(await page.inputValue("#composer-input"), "line one\nline two");
  await sendMessage(page, "line one\nline two");

  // Nothing overflows sideways on a phone; the participant list opens from the header.
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true);
  assert.equal(await page.isVisible("#participants"), false);
  await page.click("#online-toggle");
  await page.locator("#participants").waitFor();
  assert.equal(await page.getAttribute("#online-toggle", "aria-expanded"), "true");
  await screenshot(page, "room-phone-participants");
  await page.click("#online-toggle");
  await page.locator("#participants").waitFor({ state: "hidden" });
  await screenshot(page, "room-phone");
  assert.deepEqual(person.errors, []);
});
