// Accessibility in real Chromium: axe-core (npm axe-core) finds no serious or critical
// violation on the landing page (with my rooms), a room with messages and its share dialog,
// and the projector view, in Korean and in English, light and dark.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, sendMessage, seriousA11yViolations, waitOnline } from "./lib/browser.js";

let server;
let person;

before(async () => {
  server = await ChatServer.start({ env: { CHAT_COLOR: "green" } });
  person = await launchPerson("a11y");
  await enterRoom(person, server.base, "a11y", { nickname: "Ally" });
  await sendMessage(person.page, "A first message with a link https://example.com/slides");
  await sendMessage(person.page, "and a second one");
});

after(async () => {
  await person?.close();
  await server?.stop();
});

for (const lang of ["en", "ko"]) {
  for (const theme of ["light", "dark"]) {
    test(`no serious or critical violations (${lang}, ${theme}): landing, room, share dialog, projector`, async () => {
      const { page } = person;
      const q = `?lang=${lang}&theme=${theme}`;
      await page.goto(`${server.base}/${q}`);
      await page.locator("#my-rooms-list .unread:not([hidden])").first().waitFor();
      assert.deepEqual(await seriousA11yViolations(page), [], "landing");

      await page.goto(`${server.base}/room/a11y${q}`);
      await waitOnline(page);
      await page.locator("#messages .msg").nth(1).waitFor();
      assert.deepEqual(await seriousA11yViolations(page), [], "room");
      await page.click("#share-button");
      await page.locator("#share-dialog[open]").waitFor();
      assert.deepEqual(await seriousA11yViolations(page), [], "share dialog");

      await page.goto(`${server.base}/room/a11y${q}&view=projector`);
      await page.locator("#projector-messages li").nth(1).waitFor();
      assert.deepEqual(await seriousA11yViolations(page), [], "projector");
      assert.deepEqual(person.errors, []);
    });
  }
}
