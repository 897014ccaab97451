// Moderation in real Chromium against a real chat-server (embedded store): an organiser gets a
// credential from `chat-server moderator-token` (the data dir's secret), opens the room with
// `#moderator=…`, and sees Delete and Mute under others' messages; a deleted message turns into
// a tombstone for everyone at once and after a reload, and a muted guest is told and cannot
// send. Guests see no moderation controls.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { ChatServer, serverBinary } from "./lib/server.js";
import { launchPerson, enterRoom, sendMessage, typeAndSend, waitForMessage, screenshot } from "./lib/browser.js";

let server;
let alice;
let mod;

before(async () => {
  server = await ChatServer.start();
  [alice, mod] = await Promise.all([launchPerson("alice"), launchPerson("mod")]);
});

after(async () => {
  await Promise.all([alice?.close(), mod?.close()]);
  await server?.stop();
});

/** A moderator credential for the running server, as an organiser gets one. */
function credential(name) {
  const out = execFileSync(serverBinary(), ["moderator-token", "--name", name, "--ttl-secs", "3600"], {
    env: { PATH: process.env.PATH, CHAT_DATA_DIR: server.dataDir },
  });
  return out.toString().trim();
}

test("a moderator deletes a message everywhere and mutes its author", async () => {
  await enterRoom(alice, server.base, "stage", { nickname: "Alice" });
  await enterRoom(mod, server.base, "stage", { nickname: "Org", query: `#moderator=${encodeURIComponent(credential("Organiser"))}` });

  await mod.page.locator("#moderator-badge", { hasText: "Moderating as Organiser" }).waitFor();
  assert.equal(new URL(mod.page.url()).hash, "", "the credential leaves the address bar");

  await sendMessage(alice.page, "a fine question");
  await sendMessage(alice.page, "something abusive");
  await waitForMessage(mod.page, "something abusive");
  assert.equal(await alice.page.locator(".mod-actions").count(), 0, "guests get no moderation controls");

  const row = mod.page.locator("#messages .msg", { hasText: "something abusive" });
  await row.locator(".mod-delete").click();
  await row.locator(".mod-delete", { hasText: "Confirm delete" }).click();

  for (const person of [alice, mod]) {
    await person.page.locator("#messages .msg.removed .removed-note").waitFor();
    const texts = await person.page.$$eval("#messages .msg .text", (els) => els.map((el) => el.textContent));
    assert.deepEqual(texts, ["a fine question", "Message removed by a moderator"], person.name);
  }
  await screenshot(mod.page, "moderation-deleted");

  // The tombstone is history: a reload shows it in place, never the text.
  await alice.page.reload();
  await alice.page.locator('#conn-status[data-state="online"]').waitFor();
  await alice.page.locator("#messages .msg.removed").waitFor();
  assert.equal(await alice.page.getByText("something abusive").count(), 0);

  // Mute Alice for 5 minutes: she is told, and her next message is refused with the reason.
  const other = mod.page.locator("#messages .msg", { hasText: "a fine question" });
  await other.locator(".mute-select").selectOption("300");
  await mod.page.locator("#mod-status", { hasText: "Muted Alice until" }).waitFor();
  await alice.page.locator("#composer-error", { hasText: "A moderator muted you in this room" }).waitFor();
  await typeAndSend(alice.page, "let me speak");
  const failed = alice.page.locator('#pending .msg[data-state="failed"] .send-status');
  await failed.waitFor();
  assert.match(await failed.textContent(), /muted you in room "stage"/);
  await screenshot(alice.page, "moderation-muted");

  // Unmute: she can send again.
  await other.locator(".mute-select").selectOption("0");
  await alice.page.locator("#composer-error", { hasText: "lifted your mute" }).waitFor();
  await sendMessage(alice.page, "thank you");
  await waitForMessage(mod.page, "thank you");
  assert.deepEqual([...alice.errors, ...mod.errors], []);
});

test("the moderator's messages carry the badge; a guest's do not", async () => {
  await sendMessage(mod.page, "Talk 2 starts in Hall B");
  const official = alice.page.locator("#messages .msg", { hasText: "Talk 2 starts in Hall B" });
  await official.locator(".mod-mark", { hasText: "Moderator" }).waitFor();
  assert.ok(await official.evaluate((li) => li.classList.contains("from-moderator")));
  await sendMessage(alice.page, "me too");
  await waitForMessage(mod.page, "me too");
  assert.equal(await mod.page.locator("#messages .msg", { hasText: "me too" }).locator(".mod-mark").count(), 0);
  await screenshot(alice.page, "moderator-badge");
});
