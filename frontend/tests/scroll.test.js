// The message list's scrolling rules in real Chromium: it follows new messages only when the
// reader is at the bottom (else a "new messages" pill), and scrolling up pages older history.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, seedMessages, shownSeqs, shownTexts, screenshot, waitForMessage, sendMessage } from "./lib/browser.js";

let server;
let reader;
let writer;

// Seeding sends many frames from one connection: raise the per-connection rate limit.
const FAST = { CHAT_RATE_PER_SEC: "1000", CHAT_RATE_BURST: "1000" };

before(async () => {
  server = await ChatServer.start({ env: FAST });
  [reader, writer] = await Promise.all([launchPerson("reader"), launchPerson("writer")]);
});

after(async () => {
  await Promise.all([reader?.close(), writer?.close()]);
  await server?.stop();
});

const atBottom = (page) =>
  page.evaluate(() => {
    const s = document.querySelector("#scroller");
    return s.scrollHeight - s.scrollTop - s.clientHeight <= 48;
  });

test("autoscroll only at the bottom; otherwise a new-messages pill", async () => {
  const seeded = Array.from({ length: 60 }, (_, i) => `warm-up ${i + 1}`);
  await seedMessages(writer, server.base, "scrolly", seeded);
  await enterRoom(reader, server.base, "scrolly", { nickname: "Reader" });
  await enterRoom(writer, server.base, "scrolly", { nickname: "Writer" });
  await waitForMessage(reader.page, "warm-up 60");
  assert.equal(await atBottom(reader.page), true, "the room opens at the newest message");

  // At the bottom: a new message scrolls into view, no pill.
  await sendMessage(writer.page, "while at the bottom");
  await waitForMessage(reader.page, "while at the bottom");
  await reader.page.waitForFunction(() => {
    const s = document.querySelector("#scroller");
    return s.scrollHeight - s.scrollTop - s.clientHeight <= 48;
  });
  assert.equal(await reader.page.isVisible("#new-pill"), false);

  // Scrolled up to read: the view stays put and the pill counts what arrived.
  const top = await reader.page.evaluate(() => {
    const s = document.querySelector("#scroller");
    s.scrollTop = Math.floor((s.scrollHeight - s.clientHeight) / 2);
    return s.scrollTop;
  });
  await sendMessage(writer.page, "while reading older ones");
  await waitForMessage(reader.page, "while reading older ones");
  await sendMessage(writer.page, "and another");
  await waitForMessage(reader.page, "and another");
  await reader.page.locator("#new-pill", { hasText: "2 new messages" }).waitFor();
  assert.equal(await reader.page.evaluate(() => document.querySelector("#scroller").scrollTop), top, "view did not move");
  assert.equal(await atBottom(reader.page), false);
  await screenshot(reader.page, "scroll-new-messages-pill");

  // The pill takes the reader to the newest and goes away.
  await reader.page.click("#new-pill");
  await reader.page.locator("#new-pill").waitFor({ state: "hidden" });
  assert.equal(await atBottom(reader.page), true);

  // My own message always scrolls to it, even when scrolled up.
  await reader.page.evaluate(() => {
    document.querySelector("#scroller").scrollTop = 200;
  });
  await sendMessage(reader.page, "my own words");
  await reader.page.waitForFunction(() => {
    const s = document.querySelector("#scroller");
    return s.scrollHeight - s.scrollTop - s.clientHeight <= 48;
  });
});

test("the latest 50 on entry; scrolling up loads older pages until the start", async () => {
  const texts = Array.from({ length: 130 }, (_, i) => `history ${i + 1}`);
  const seqs = await seedMessages(writer, server.base, "paging", texts);
  await reader.page.goto(`${server.base}/room/paging`);
  await reader.page.locator('#conn-status[data-state="online"]').waitFor();
  await waitForMessage(reader.page, "history 130");
  assert.deepEqual(await shownSeqs(reader.page), seqs.slice(-50), "entry shows the latest 50");
  assert.equal(await reader.page.isVisible("#load-older"), true);

  // Scroll to the top repeatedly: each time one older page is prepended above, keeping the place.
  for (let pages = 0; pages < 10; pages++) {
    if ((await shownSeqs(reader.page)).length === texts.length) break;
    const before = (await shownSeqs(reader.page)).length;
    const anchor = await reader.page.evaluate(() => {
      const first = document.querySelector("#messages .msg");
      document.querySelector("#scroller").scrollTop = 0;
      return first.dataset.seq;
    });
    await reader.page.waitForFunction((n) => document.querySelectorAll("#messages .msg").length > n, before);
    // The message that was on top is still in view (the reader keeps their place).
    const stillVisible = await reader.page.evaluate((seq) => {
      const el = document.querySelector(`#messages .msg[data-seq="${seq}"]`);
      const s = document.querySelector("#scroller").getBoundingClientRect();
      const r = el.getBoundingClientRect();
      return r.bottom > s.top && r.top < s.bottom;
    }, anchor);
    assert.equal(stillVisible, true, "scroll position kept after prepending");
    if (pages === 0) await screenshot(reader.page, "scroll-older-page-loaded");
  }
  await reader.page.locator("#history-start").waitFor();
  assert.deepEqual(await shownSeqs(reader.page), seqs, "every message once, in order");
  assert.deepEqual(await shownTexts(reader.page), texts);
  assert.equal(await reader.page.isVisible("#load-older"), false);
  assert.deepEqual(reader.errors, []);
});
