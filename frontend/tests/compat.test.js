// Older browsers and plain HTTP, in real Chromium against a real chat-server:
// - an engine without CSS light-dark() still gets both themes (Chromium has it, so the test
//   serves the stylesheet with light-dark renamed to a function no engine knows: what an old
//   engine makes of it);
// - a page on plain HTTP under a LAN-style name (not localhost, so no secure context and no
//   crypto.randomUUID) still sends messages, each stored once with a v4 UUID.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, sendMessage, screenshot } from "./lib/browser.js";

let server;
let person;
let lan;

before(async () => {
  server = await ChatServer.start();
  person = await launchPerson("compat");
  // chat.test resolves to the loopback server inside this browser only.
  lan = await launchPerson("lan", { args: ["--host-resolver-rules=MAP chat.test 127.0.0.1"] });
});

after(async () => {
  await Promise.all([person?.close(), lan?.close()]);
  await server?.stop();
});

/** The colours that matter, as [r, g, b, alpha] with alpha 0 meaning blank. */
function colours(page) {
  return page.evaluate(() => {
    const rgba = (c) => {
      const [r, g, b, a = 1] = c.match(/[\d.]+/g).map(Number);
      return [r, g, b, a];
    };
    const pick = (sel, prop) => rgba(getComputedStyle(document.querySelector(sel))[prop]);
    return {
      bg: pick("body", "backgroundColor"),
      text: pick("body", "color"),
      composer: pick("#composer", "backgroundColor"),
      button: pick("#send-button", "backgroundColor"),
    };
  });
}

const isDark = ([r, g, b]) => (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255 < 0.5;

async function themeCase(page, { query, scheme }) {
  await page.emulateMedia({ colorScheme: scheme });
  await page.goto(`${server.base}/room/compat${query}`);
  await page.locator('#conn-status[data-state="online"]').waitFor();
  const c = await colours(page);
  for (const [name, v] of Object.entries(c)) assert.equal(v[3], 1, `${query} ${scheme}: ${name} is not blank (${v})`);
  return { dark: isDark(c.bg), textDark: isDark(c.text), c };
}

const CASES = [
  { query: "?theme=light", scheme: "dark", dark: false },
  { query: "?theme=dark", scheme: "light", dark: true },
  { query: "", scheme: "dark", dark: true },
  { query: "", scheme: "light", dark: false },
];

test("colours in both themes with and without CSS light-dark()", async () => {
  const { page } = person;
  await enterRoom(person, server.base, "compat", { nickname: "Compat" });
  const modern = [];
  for (const k of CASES) {
    const got = await themeCase(page, k);
    assert.deepEqual([got.dark, got.textDark], [k.dark, !k.dark], `light-dark(): ${k.query} ${k.scheme}`);
    modern.push(got.c);
  }

  // An engine that does not know light-dark(): the same page, the same colours.
  await page.route("**/style.css", async (route) => {
    const response = await route.fetch();
    const css = (await response.text()).replaceAll("light-dark(", "no-such-function(");
    await route.fulfill({ response, body: css });
  });
  for (const [i, k] of CASES.entries()) {
    const got = await themeCase(page, k);
    assert.deepEqual(got.c, modern[i], `without light-dark(): ${k.query} ${k.scheme} looks the same`);
  }
  await screenshot(page, "compat-no-light-dark");
  await page.unroute("**/style.css");
  await page.emulateMedia({ colorScheme: null });
  assert.deepEqual(person.errors, []);
});

test("plain HTTP without crypto.randomUUID: messages are sent and stored once", async () => {
  const { page } = lan;
  const base = server.base.replace("127.0.0.1", "chat.test");
  await enterRoom(lan, base, "plainhttp", { nickname: "Lan" });
  assert.deepEqual(await page.evaluate(() => [window.isSecureContext, typeof crypto.randomUUID]), [false, "undefined"]);
  // Notifications need a secure context: the bell is not offered.
  assert.equal(await page.isVisible("#notify-toggle"), false);
  await sendMessage(page, "sent over plain HTTP");
  await sendMessage(page, "and another");
  const stored = await server.allMessages("plainhttp");
  assert.deepEqual(stored.map((m) => m.text), ["sent over plain HTTP", "and another"]);
  for (const m of stored) assert.match(m.client_msg_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(stored[0].client_msg_id, stored[1].client_msg_id);
  await screenshot(page, "compat-plain-http");
  assert.deepEqual(lan.errors, []);
});
