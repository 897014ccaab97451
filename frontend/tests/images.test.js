// Images in real Chromium against a real chat-server (embedded store: files under its data
// dir): one person picks an image, everyone in the room sees it inline at the size the server
// measured, with the space reserved before it loads; files that are not images (by their
// bytes) or are too big are refused with the rule.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, screenshot } from "./lib/browser.js";
import { solidPng } from "./lib/images.js";

let server;
let alice;
let bob;

before(async () => {
  server = await ChatServer.start();
  [alice, bob] = await Promise.all([launchPerson("alice"), launchPerson("bob")]);
});

after(async () => {
  await Promise.all([alice?.close(), bob?.close()]);
  await server?.stop();
});

/** The images shown in the message list, as the page lays them out. */
const shownImages = (page) =>
  page.$$eval("#messages .msg .attachment img", (imgs) =>
    imgs.map((img) => ({
      width: img.width,
      height: img.height,
      loaded: img.complete && img.naturalWidth > 0,
      natural: [img.naturalWidth, img.naturalHeight],
      src: new URL(img.src).pathname,
      alt: img.alt,
    })),
  );

test("an image is uploaded, shown to everyone at its size, and stored under the data dir", async () => {
  await enterRoom(alice, server.base, "pics", { nickname: "Alice" });
  await enterRoom(bob, server.base, "pics", { nickname: "Bob" });

  // Bob's page holds the image back until told: its row must already have its final height.
  let release;
  const held = new Promise((r) => (release = r));
  await bob.page.route("**/uploads/*", async (route) => {
    await held;
    await route.continue();
  });

  const png = solidPng(640, 360);
  await alice.page.setInputFiles("#image-input", { name: "stage.png", mimeType: "image/png", buffer: png });
  await bob.page.locator("#messages .msg .attachment img").waitFor();
  const row = bob.page.locator("#messages .msg").filter({ has: bob.page.locator(".attachment") });
  const before = await row.evaluate((li) => li.getBoundingClientRect().height);
  assert.equal(await bob.page.$eval("#messages .attachment img", (img) => img.complete && img.naturalWidth > 0), false, "still loading");
  release();
  await bob.page.waitForFunction(() => {
    const img = document.querySelector("#messages .attachment img");
    return img.complete && img.naturalWidth > 0;
  });
  assert.equal(await row.evaluate((li) => li.getBoundingClientRect().height), before, "no layout jump when it loads");

  for (const person of [alice, bob]) {
    await person.page.waitForFunction(() => {
      const img = document.querySelector("#messages .attachment img");
      return img && img.complete && img.naturalWidth > 0;
    });
    const [img] = await shownImages(person.page);
    assert.deepEqual({ ...img, src: img.src.replace(/[^/]+$/, "*") }, {
      width: 320,
      height: 180,
      loaded: true,
      natural: [640, 360],
      src: "/uploads/*",
      alt: "Image from Alice (640×360)",
    }, person.name);
  }

  // Stored once, with its facts, under the data dir; served as an image and nothing else.
  const [stored] = await server.allMessages("pics");
  assert.equal(stored.text, "");
  assert.deepEqual({ ...stored.attachment, url: undefined }, { url: undefined, content_type: "image/png", width: 640, height: 360, bytes: png.length });
  const file = path.join(server.dataDir, "uploads", path.basename(stored.attachment.url));
  assert.deepEqual(fs.readFileSync(file), png);
  const served = await fetch(`${server.base}${stored.attachment.url}`);
  assert.equal(served.headers.get("content-type"), "image/png");
  assert.equal(served.headers.get("x-content-type-options"), "nosniff");
  assert.deepEqual(Buffer.from(await served.arrayBuffer()), png);
  await screenshot(bob.page, "images-shown");

  // After a reload it comes from history, the same.
  await bob.page.unroute("**/uploads/*");
  await bob.page.reload();
  await bob.page.locator("#messages .attachment img").waitFor();
  assert.equal((await shownImages(bob.page)).length, 1);
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

test("a file that is not an image by its bytes, or over 5 MB, is refused with the rule", async () => {
  const { page } = alice;
  // Named and typed as a PNG, but HTML inside: the server reads the bytes.
  await page.setInputFiles("#image-input", { name: "evil.png", mimeType: "image/png", buffer: Buffer.from("<html><script>alert(1)</script></html>") });
  await page.locator("#composer-error", { hasText: "not a JPEG, PNG, GIF or WebP image" }).waitFor();
  // A GIF declared as PNG: the bytes decide.
  const gif = Buffer.from("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==", "base64");
  await page.setInputFiles("#image-input", { name: "dot.png", mimeType: "image/png", buffer: gif });
  await page.locator("#composer-error", { hasText: "says it is image/png but its bytes are image/gif" }).waitFor();
  // Too big: refused before uploading anything.
  await page.setInputFiles("#image-input", { name: "huge.png", mimeType: "image/png", buffer: Buffer.alloc(5 * 1024 * 1024 + 1) });
  await page.locator("#composer-error", { hasText: "at most 5 MB" }).waitFor();
  // An SVG (could carry script) is not offered as an image type at all.
  await page.setInputFiles("#image-input", { name: "x.svg", mimeType: "image/svg+xml", buffer: Buffer.from("<svg xmlns='http://www.w3.org/2000/svg'/>") });
  await page.locator("#composer-error", { hasText: "Only JPEG, PNG, GIF and WebP" }).waitFor();
  await screenshot(page, "images-refused");

  assert.equal((await server.allMessages("pics")).length, 1, "nothing more was sent");
  const left = fs.readdirSync(path.join(server.dataDir, "uploads")).filter((f) => !f.startsWith("."));
  assert.equal(left.length, 1, `refused files are not kept: ${left}`);
  assert.deepEqual(alice.dialogs, []);
});
