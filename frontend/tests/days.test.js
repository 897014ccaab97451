// Date separators in real Chromium against a real chat-server whose clock is moved back two
// days with libfaketime (FAKETIME_LIB, set by scripts/test-env.sh): messages from two days
// get one separator per day, also after an older page is prepended above them.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, seedMessages, shownTexts, waitForMessage, waitOnline, screenshot } from "./lib/browser.js";

const DAY_MS = 24 * 60 * 60 * 1000;
// Seeding sends many frames from one connection: raise the per-connection rate limit.
const FAST = { CHAT_RATE_PER_SEC: "1000", CHAT_RATE_BURST: "1000" };

let server;
let person;

before(async () => {
  if (!process.env.FAKETIME_LIB) throw new Error("FAKETIME_LIB is unset: source scripts/test-env.sh first (it installs faketime)");
  person = await launchPerson("days");
});

after(async () => {
  await person?.close();
  await server?.stop();
});

/** Every element of the message list: "sep:<label>" for a separator, the text for a message. */
const listing = (page) =>
  page.$$eval("#messages > li", (els) =>
    els.map((e) => (e.classList.contains("day-sep") ? `sep:${e.textContent}` : e.querySelector(".text").textContent)),
  );

test("one separator per day, kept right when older pages are prepended", async () => {
  // Two days ago: 55 messages; today (the same data dir, the real clock): 5.
  server = await ChatServer.start({
    env: { ...FAST, LD_PRELOAD: process.env.FAKETIME_LIB, FAKETIME: "-2d", FAKETIME_DONT_FAKE_MONOTONIC: "1" },
  });
  const old = Array.from({ length: 55 }, (_, i) => `old ${i + 1}`);
  await seedMessages(person, server.base, "days", old);
  await server.stop();
  server = await ChatServer.start({ dataDir: server.dataDir, env: FAST });
  const storedOld = await server.allMessages("days");
  const ago = Date.now() - storedOld[0].ts;
  assert.ok(ago > 1.9 * DAY_MS && ago < 2.1 * DAY_MS, `the first server's clock was two days back (${ago} ms)`);
  const fresh = Array.from({ length: 5 }, (_, i) => `new ${i + 1}`);
  await seedMessages(person, server.base, "days", fresh);

  const { page } = person;
  await page.goto(`${server.base}/room/days`);
  await page.locator("#nick-dialog").waitFor({ state: "visible" });
  await page.click("#nick-default");
  await waitOnline(page);
  await waitForMessage(page, "new 5");
  // The label's wording is unit-tested (unit.test.js); here it only has to be the page's own.
  const oldLabel = await page.evaluate(async (ts) => (await import("/js/daygroups.js")).dayLabel(ts), storedOld[0].ts);
  assert.ok(!["Today", "Yesterday"].includes(oldLabel), oldLabel);

  // The latest 50: old 11..55, then today's five.
  assert.deepEqual(await listing(page), [`sep:${oldLabel}`, ...old.slice(10), "sep:Today", ...fresh]);
  await screenshot(page, "days-separators");

  // Scrolling to the top prepends old 1..10 under the same separator, not a second one.
  await page.evaluate(() => {
    document.querySelector("#scroller").scrollTop = 0;
  });
  await page.locator("#history-start").waitFor();
  assert.deepEqual(await listing(page), [`sep:${oldLabel}`, ...old, "sep:Today", ...fresh]);
  assert.deepEqual(await shownTexts(page), [...old, ...fresh]);
  // A list item of its own (a role on the <li> would break the list for assistive technology).
  assert.equal(await page.getAttribute(".day-sep", "role"), null);
  assert.deepEqual(person.errors, []);
});
