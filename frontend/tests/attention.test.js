// Getting a reader's attention back, in real Chromium against a real chat-server: the unread
// count in the tab title and a favicon dot while the reader looks elsewhere, desktop
// notifications only after a click on the bell (never asked on load), http(s) links made
// clickable with a safe rel (and nothing else), and consecutive messages grouped.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, sendMessage, waitForMessage, screenshot, setFocused } from "./lib/browser.js";

let server;
let alice;
let bob;

/**
 * Records every desktop notification the page creates (the real one is still shown):
 * `window.__notifications` lists `{ title, body, tag }`.
 */
function recordNotifications() {
  const Real = window.Notification;
  window.__notifications = [];
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({ title, body: options?.body ?? null, tag: options?.tag ?? null });
    }
  }
  window.Notification = Recorded;
}

before(async () => {
  server = await ChatServer.start();
  [alice, bob] = await Promise.all([launchPerson("alice"), launchPerson("bob")]);
  await alice.context.addInitScript(recordNotifications);
});

after(async () => {
  await Promise.all([alice?.close(), bob?.close()]);
  await server?.stop();
});

const notifications = (page) => page.evaluate(() => window.__notifications);
const favicon = (page) => page.evaluate(() => new URL(document.querySelector('link[rel="icon"]').href).pathname);

test("unread count in the title and a favicon dot while away; notifications only after a click", async () => {
  const { page } = alice;
  await enterRoom(alice, server.base, "attn", { nickname: "Alice" });
  await enterRoom(bob, server.base, "attn", { nickname: "Bob" });
  assert.equal(await page.title(), "Room attn · Chat");
  assert.equal(await favicon(page), "/favicon.svg");
  const icon = await page.request.get(`${server.base}/favicon.svg`);
  assert.equal(icon.status(), 200);
  assert.match(icon.headers()["content-type"], /^image\/svg\+xml/);

  // Never asked on load: headless Chromium denies any request at once, so "default" here
  // means no request was made.
  assert.equal(await page.evaluate(() => Notification.permission), "default");
  assert.equal(await page.getAttribute("#notify-toggle", "aria-pressed"), "false");

  // Asked on a click; refused, the page says how to allow them and stays off.
  await page.click("#notify-toggle");
  await page.locator("#composer-error", { hasText: "Notifications are blocked" }).waitFor();
  assert.equal(await page.evaluate(() => Notification.permission), "denied");
  assert.equal(await page.getAttribute("#notify-toggle", "aria-pressed"), "false");

  // Allowed in the site settings, the bell turns them on.
  await alice.context.grantPermissions(["notifications"], { origin: server.base });
  await page.click("#notify-toggle");
  await page.locator('#notify-toggle[aria-pressed="true"]').waitFor();

  // While Alice looks at another window, Bob's messages are counted and notified.
  await setFocused(page, false);
  await sendMessage(bob.page, "first while you were away");
  await sendMessage(bob.page, "second while you were away");
  await page.waitForFunction(() => document.title === "(2) Room attn · Chat");
  assert.equal(await favicon(page), "/favicon-unread.svg");
  assert.deepEqual(await notifications(page), [
    { title: "Bob · Room attn", body: "first while you were away", tag: "chat-room-attn" },
    { title: "Bob · Room attn", body: "second while you were away", tag: "chat-room-attn" },
  ]);
  await screenshot(page, "attention-unread-title");

  // Back on the page: the count and the dot go; messages read now are not counted.
  await setFocused(page, true);
  await page.waitForFunction(() => document.title === "Room attn · Chat");
  assert.equal(await favicon(page), "/favicon.svg");
  await sendMessage(bob.page, "while you are here");
  await waitForMessage(page, "while you are here");
  assert.equal(await page.title(), "Room attn · Chat");
  assert.equal((await notifications(page)).length, 2, "no notification while looking");

  // The choice is remembered; turned off, the title still counts but nothing is notified.
  await page.reload();
  await page.locator('#notify-toggle[aria-pressed="true"]').waitFor();
  await page.click("#notify-toggle");
  await page.locator('#notify-toggle[aria-pressed="false"]').waitFor();
  await setFocused(page, false);
  await sendMessage(bob.page, "after notifications were turned off");
  await page.waitForFunction(() => document.title === "(1) Room attn · Chat");
  assert.deepEqual(await notifications(page), []);
  await setFocused(page, true);
  await page.waitForFunction(() => document.title === "Room attn · Chat");

  // My own messages (e.g. from another tab) never count.
  await setFocused(bob.page, false);
  await sendMessage(bob.page, "bob's own words");
  assert.equal(await bob.page.title(), "Room attn · Chat");
  await setFocused(bob.page, true);
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

test("http(s) links are clickable, open without a referrer or opener; other schemes stay text", async () => {
  const { page } = alice;
  const link = `${server.base}/version?from=chat`;
  const text = `Slides: ${link}. Not links: javascript:alert(1) and <a href="javascript:alert(2)">x</a> and data:text/html,hi`;
  await sendMessage(bob.page, text);
  await waitForMessage(page, text);
  const li = page.locator("#messages .msg").filter({ hasText: "Slides:" });
  const anchors = await li.locator(".text a").evaluateAll((els) =>
    els.map((a) => ({ href: a.getAttribute("href"), text: a.textContent, rel: a.rel, target: a.target })),
  );
  assert.deepEqual(anchors, [{ href: link, text: link, rel: "noopener noreferrer nofollow ugc", target: "_blank" }]);
  assert.equal(await li.locator(".text").textContent(), text, "the text is shown exactly as sent");
  assert.equal(await page.locator('#messages a[href^="javascript:"], #messages a[href^="data:"]').count(), 0);

  const [tab] = await Promise.all([alice.context.waitForEvent("page"), li.locator(".text a").click()]);
  await tab.waitForLoadState();
  assert.equal(tab.url(), link);
  assert.deepEqual(await tab.evaluate(() => ({ opener: window.opener, referrer: document.referrer })), { opener: null, referrer: "" });
  await tab.close();
  assert.deepEqual(alice.dialogs, []);
});

test("consecutive messages from one person are grouped under one name and avatar", async () => {
  const { page } = bob;
  await page.goto(`${server.base}/room/groups`);
  await page.locator('#conn-status[data-state="online"]').waitFor();
  await alice.page.goto(`${server.base}/room/groups`);
  await alice.page.locator('#conn-status[data-state="online"]').waitFor();
  for (const t of ["g1 Alice", "g2 Alice", "g3 Alice"]) await sendMessage(alice.page, t);
  await sendMessage(bob.page, "g4 Bob");
  await sendMessage(alice.page, "g5 Alice");
  await waitForMessage(page, "g5 Alice");
  const rows = await page.$$eval("#messages .msg", (els) =>
    els.map((li) => ({
      text: li.querySelector(".text").textContent,
      cont: li.classList.contains("cont"),
      avatarShown: getComputedStyle(li.querySelector(".avatar")).visibility === "visible",
      nameShown: li.querySelector(".meta").getBoundingClientRect().width > 1,
      name: li.querySelector(".nick").textContent,
    })),
  );
  assert.deepEqual(rows, [
    { text: "g1 Alice", cont: false, avatarShown: true, nameShown: true, name: "Alice" },
    { text: "g2 Alice", cont: true, avatarShown: false, nameShown: false, name: "Alice" },
    { text: "g3 Alice", cont: true, avatarShown: false, nameShown: false, name: "Alice" },
    { text: "g4 Bob", cont: false, avatarShown: true, nameShown: true, name: "Bob" },
    { text: "g5 Alice", cont: false, avatarShown: true, nameShown: true, name: "Alice" },
  ]);
  // One "Today" separator above the first message, none between messages of one day.
  assert.deepEqual(await page.$$eval("#messages > li", (els) => els.map((e) => (e.classList.contains("day-sep") ? `sep:${e.textContent}` : "msg"))), [
    "sep:Today", "msg", "msg", "msg", "msg", "msg",
  ]);
  await screenshot(page, "attention-grouped");
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
