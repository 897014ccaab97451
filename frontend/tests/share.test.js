// Sharing a room in real Chromium against a real chat-server: the share dialog's QR code
// (decoded here with jsQR from the pixels Chromium drew) and copied link both give the room's
// address; the projector view (?view=projector) shows the QR code, the address and the newest
// messages live in large type, without a composer, in light and dark.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import jsQR from "jsqr";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, sendMessage, screenshot } from "./lib/browser.js";
import { PROJECTOR_MESSAGES } from "../js/projector.js";

let server;
let host;
let screen;

before(async () => {
  server = await ChatServer.start();
  [host, screen] = await Promise.all([launchPerson("host"), launchPerson("projector", { viewport: { width: 1280, height: 720 } })]);
});

after(async () => {
  await Promise.all([host?.close(), screen?.close()]);
  await server?.stop();
});

/** What the QR code drawn in `selector` (an <svg>) says, read from its pixels. */
async function decodeQr(page, selector) {
  const { width, height, data } = await page.evaluate(async (sel) => {
    const svg = document.querySelector(sel);
    const img = new Image();
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(new XMLSerializer().serializeToString(svg))}`;
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 400;
    const g = canvas.getContext("2d");
    g.drawImage(img, 0, 0, 400, 400);
    return { width: 400, height: 400, data: Array.from(g.getImageData(0, 0, 400, 400).data) };
  }, selector);
  return jsQR(Uint8ClampedArray.from(data), width, height)?.data ?? null;
}

test("the share dialog: a QR code and a link that copies, both the room's address", async () => {
  const { page } = host;
  await host.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.base });
  const title = "Keynote Q&A";
  await enterRoom(host, server.base, "keynote", { nickname: "Host", query: `?title=${encodeURIComponent(title)}&theme=dark&lang=en` });
  const want = `${server.base}/room/keynote?title=Keynote+Q%26A`;
  await page.click("#share-button");
  await page.locator("#share-dialog[open]").waitFor();
  assert.equal(await page.inputValue("#share-link"), want, "no theme, language or view in the shared address");
  assert.equal(await decodeQr(page, "#share-qr svg"), want);
  assert.equal(await page.getAttribute("#share-qr svg", "aria-label"), `QR code of ${want}`);
  await page.click("#share-copy");
  await page.locator("#share-status", { hasText: "Link copied." }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), want);
  assert.equal(await page.getAttribute("#share-projector", "href"), `${want}&view=projector`);
  await screenshot(page, "share-dialog");
  await page.keyboard.press("Escape");
  await page.locator("#share-dialog[open]").waitFor({ state: "detached" });
  assert.deepEqual(host.errors, []);
});

test("the projector view: QR code, address and the newest messages, live, no composer, light and dark", async () => {
  const { page } = screen;
  const want = `${server.base}/room/keynote?title=Keynote+Q%26A`;
  for (let i = 1; i <= PROJECTOR_MESSAGES + 2; i++) await sendMessage(host.page, `Question ${i}`);
  await page.goto(`${want}&view=projector&theme=light`);
  await page.locator('#projector-status[data-state="online"]').waitFor();
  assert.equal(await page.isVisible("#composer"), false);
  assert.equal(await page.isVisible("#room"), false);
  assert.equal(await page.textContent("#projector-title"), "Keynote Q&A");
  assert.equal(await page.textContent("#projector-url"), `${new URL(server.base).host}/room/keynote`);
  assert.equal(await decodeQr(page, "#projector-qr svg"), want);
  const texts = () => page.$$eval("#projector-messages .text", (els) => els.map((el) => el.textContent));
  await page.waitForFunction((n) => document.querySelectorAll("#projector-messages li").length === n, PROJECTOR_MESSAGES);
  assert.deepEqual(await texts(), Array.from({ length: PROJECTOR_MESSAGES }, (_, i) => `Question ${i + 3}`), "the newest, oldest first");
  // Large type: readable from the back of a hall.
  const size = await page.$eval("#projector-messages .text", (el) => parseFloat(getComputedStyle(el).fontSize));
  assert.ok(size >= 28, `message text is ${size}px`);
  await sendMessage(host.page, "Can you show the architecture slide again?");
  await page.waitForFunction(() => [...document.querySelectorAll("#projector-messages .text")].at(-1)?.textContent === "Can you show the architecture slide again?");
  assert.equal((await texts()).length, PROJECTOR_MESSAGES);
  // The newest message is on screen, whatever the older ones take.
  const newest = await page.$eval("#projector-messages li:last-child", (li) => li.getBoundingClientRect().bottom <= window.innerHeight);
  assert.ok(newest, "the newest message is inside the window");
  await screenshot(page, "projector-light");
  await page.goto(`${want}&view=projector&theme=dark`);
  await page.waitForFunction(() => document.querySelectorAll("#projector-messages li").length > 0);
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(bg, "rgb(246, 247, 249)", "dark background");
  await screenshot(page, "projector-dark");
  assert.deepEqual(screen.errors, []);
});
