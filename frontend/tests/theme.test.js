// Light/dark theme in real Chromium: from ?theme= in the URL, and live from a parent page that
// embeds the room in an iframe and sends postMessage({type: "theme", theme}).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { startParentPage } from "./lib/parent.js";
import { freePort } from "./lib/server.js";
import { launchPerson, enterRoom, enterFramedRoom, sendMessage, waitForMessage, screenshot, waitOnline } from "./lib/browser.js";

let server;
let alice;
let bob;
let parent;
let parentPort;

before(async () => {
  // The page that embeds the room must be listed (Content-Security-Policy: frame-ancestors).
  parentPort = await freePort();
  server = await ChatServer.start({
    env: { CHAT_COLOR: "green", CHAT_FRAME_ANCESTORS: `http://127.0.0.1:${parentPort}` },
  });
  [alice, bob] = await Promise.all([launchPerson("alice"), launchPerson("bob")]);
});

after(async () => {
  await Promise.all([alice?.close(), bob?.close(), parent?.close()]);
  await server?.stop();
});

/** The theme a document shows: its data-theme and whether its background is dark. */
function themeOf(frameOrPage) {
  return frameOrPage.evaluate(() => {
    const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number);
    const luminance = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
    return { attr: document.documentElement.dataset.theme ?? null, dark: luminance < 0.5 };
  });
}

test("theme from ?theme= (light and dark)", async () => {
  const query = `?title=${encodeURIComponent("Keynote Q&A")}`;
  await enterRoom(alice, server.base, "keynote", { nickname: "Alice", query: `${query}&theme=light` });
  await enterRoom(bob, server.base, "keynote", { nickname: "Bob", query: `${query}&theme=dark` });
  assert.equal(await alice.page.textContent("#room-title"), "Keynote Q&A");
  assert.deepEqual(await themeOf(alice.page), { attr: "light", dark: false });
  assert.deepEqual(await themeOf(bob.page), { attr: "dark", dark: true });

  await sendMessage(alice.page, "Welcome to the keynote Q&A 👋 Ask away!");
  await sendMessage(bob.page, "Will the slides be shared after the talk?");
  await sendMessage(alice.page, "Yes: the link goes out right after the session.");
  await waitForMessage(bob.page, "Yes: the link goes out right after the session.");
  await bob.page.fill("#composer-input", "Thanks!");
  await alice.page.locator("#typing", { hasText: "Bob is typing…" }).waitFor();

  // The screenshots in docs/web-client.md: the same room in both themes.
  await screenshot(alice.page, "room-light");
  await alice.page.goto(`${server.base}/room/keynote${query}&theme=dark`);
  await waitOnline(alice.page);
  await waitForMessage(alice.page, "Yes: the link goes out right after the session.");
  assert.deepEqual(await themeOf(alice.page), { attr: "dark", dark: true });
  // Bob sends what he was typing and starts another (a new typing frame).
  await bob.page.press("#composer-input", "Enter");
  await waitForMessage(alice.page, "Thanks!");
  await bob.page.fill("#composer-input", "See you at the next one");
  await alice.page.locator("#typing", { hasText: "Bob is typing…" }).waitFor();
  await screenshot(alice.page, "room-dark");
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

test("theme follows postMessage from the page that embeds the room in an iframe", async () => {
  parent = await startParentPage(`${server.base}/room/embedded?theme=light&title=Live%20chat`, {
    port: parentPort,
  });
  const { page } = bob;
  await page.goto(parent.url);
  const inner = await enterFramedRoom(page, server.base);
  await page.waitForFunction(() => window.chatReady > 0);
  assert.ok(inner, "the chat frame is loaded from the chat server's origin");
  assert.equal(await inner.textContent("#room-title"), "Live chat");
  assert.deepEqual(await themeOf(inner), { attr: "light", dark: false });
  await screenshot(page, "theme-iframe-light");

  await page.evaluate(() => window.setChatTheme("dark"));
  await inner.waitForFunction(() => document.documentElement.dataset.theme === "dark");
  assert.deepEqual(await themeOf(inner), { attr: "dark", dark: true });
  await screenshot(page, "theme-iframe-dark");

  // Only the parent may set the theme: a message from the frame itself, or an unknown
  // theme, is ignored. Messages from one source arrive in order, so once the sentinel
  // posted after them is seen, they were handled.
  await page.evaluate(() => window.setChatTheme("light"));
  await inner.waitForFunction(() => document.documentElement.dataset.theme === "light");
  await inner.evaluate(
    () =>
      new Promise((resolve) => {
        window.addEventListener("message", function seen(e) {
          if (e.data === "sentinel") {
            window.removeEventListener("message", seen);
            resolve();
          }
        });
        window.postMessage({ type: "theme", theme: "dark" }, "*");
        window.postMessage("sentinel", "*");
      }),
  );
  assert.deepEqual(await themeOf(inner), { attr: "light", dark: false }, "own message ignored");
  await page.evaluate(() => window.setChatTheme("bogus"));
  await page.evaluate(() => window.setChatTheme("dark"));
  await inner.waitForFunction(() => document.documentElement.dataset.theme === "dark");

  // The chat works inside the frame.
  await sendMessage(inner, "hello from inside the blog");
  assert.deepEqual(bob.errors, []);
});
