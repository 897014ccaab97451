// Two people chat in real Chromium against a real chat-server: the nickname prompt, presence,
// typing, messages both ways, identity and history across a reload, and user text that is
// never run as HTML.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer } from "./lib/server.js";
import { launchPerson, enterRoom, sendMessage, waitForMessage, shownTexts, screenshot, typeAndSend, waitOnline } from "./lib/browser.js";

let server;
let alice;
let bob;

before(async () => {
  server = await ChatServer.start({ env: { CHAT_COLOR: "blue" } });
  [alice, bob] = await Promise.all([launchPerson("alice"), launchPerson("bob")]);
});

after(async () => {
  await Promise.all([alice?.close(), bob?.close()]);
  await server?.stop();
});

test("two people chat: prompt, presence, typing, messages both ways, mine on the right", async () => {
  await enterRoom(alice, server.base, "lobby", { nickname: "Alice" });
  await enterRoom(bob, server.base, "lobby"); // accepts the default guest name
  const bobName = (await bob.page.textContent("#me-nick")).trim();
  assert.match(bobName, /\S{2,}/, "Bob got the server's default nickname");

  await alice.page.waitForFunction(() => document.querySelector("#online-count").textContent === "2");
  // The participant list is open by default on a wide screen; the header button toggles it.
  assert.equal(await alice.page.getAttribute("#online-toggle", "aria-expanded"), "true");
  await alice.page.locator("#member-list li", { hasText: bobName }).waitFor();
  assert.equal(await alice.page.textContent("#room-title"), "Room lobby");
  assert.equal(await alice.page.textContent("#server-badge"), "blue", "badge shows the serving colour");

  await bob.page.fill("#composer-input", "typing something");
  await bob.page.locator("#composer-input").press("g");
  await alice.page.waitForFunction((n) => document.querySelector("#typing").textContent === `${n} is typing…`, bobName);

  await sendMessage(alice.page, "Hello Bob!");
  await waitForMessage(bob.page, "Hello Bob!");
  await typeAndSend(bob.page, "Hi Alice, nice to meet you");
  await waitForMessage(alice.page, "Hi Alice, nice to meet you");
  await waitForMessage(bob.page, "Hi Alice, nice to meet you");
  await alice.page.waitForFunction(() => document.querySelector("#typing").textContent === "");

  assert.deepEqual(await shownTexts(alice.page), ["Hello Bob!", "Hi Alice, nice to meet you"]);
  assert.deepEqual(await shownTexts(bob.page), ["Hello Bob!", "Hi Alice, nice to meet you"]);
  const side = (page, text) =>
    page.evaluate((t) => {
      const li = [...document.querySelectorAll("#messages .msg")].find((el) => el.querySelector(".text").textContent === t);
      const box = li.getBoundingClientRect();
      const list = document.querySelector("#messages").getBoundingClientRect();
      return { mine: li.classList.contains("mine"), right: list.right - box.right < box.left - list.left, nick: li.querySelector(".nick").textContent };
    }, text);
  assert.deepEqual(await side(alice.page, "Hello Bob!"), { mine: true, right: true, nick: "Alice" });
  assert.deepEqual(await side(bob.page, "Hello Bob!"), { mine: false, right: false, nick: "Alice" });
  assert.deepEqual(await side(alice.page, "Hi Alice, nice to meet you"), { mine: false, right: false, nick: bobName });

  await screenshot(alice.page, "chat-two-people-alice");
  await screenshot(bob.page, "chat-two-people-bob");
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

test("reload keeps the identity and shows the history", async () => {
  const idBefore = await alice.page.evaluate(() => JSON.parse(localStorage.getItem("chat.session.v1")).user.id);
  await alice.page.reload();
  // No nickname prompt on a return visit.
  await waitOnline(alice.page);
  assert.equal(await alice.page.locator("#nick-dialog").isVisible(), false);
  assert.equal((await alice.page.textContent("#me-nick")).trim(), "Alice");
  await waitForMessage(alice.page, "Hi Alice, nice to meet you");
  assert.deepEqual(await shownTexts(alice.page), ["Hello Bob!", "Hi Alice, nice to meet you"]);
  const idAfter = await alice.page.evaluate(() => JSON.parse(localStorage.getItem("chat.session.v1")).user.id);
  assert.equal(idAfter, idBefore);
  assert.equal(await alice.page.locator("#messages .msg.mine .text", { hasText: "Hello Bob!" }).count(), 1, "own history still mine");

  // The server sees the same user: a new message carries Alice's id.
  await sendMessage(alice.page, "back after reload");
  const stored = await server.allMessages("lobby");
  assert.equal(stored.at(-1).user.id, idBefore);
  assert.equal(stored.at(-1).user.nickname, "Alice");
  await screenshot(alice.page, "chat-after-reload");
});

test("nickname can be changed, and a bad one is refused with the rule", async () => {
  await alice.page.click("#nick-button");
  await alice.page.fill("#nick-input", "A");
  await alice.page.click("#nick-save");
  await alice.page.locator("#nick-error", { hasText: "2–15 characters" }).waitFor();
  await alice.page.fill("#nick-input", "Alicia");
  await alice.page.click("#nick-save");
  await alice.page.locator("#nick-dialog").waitFor({ state: "hidden" });
  await waitOnline(alice.page);
  assert.equal((await alice.page.textContent("#me-nick")).trim(), "Alicia");
  await sendMessage(alice.page, "renamed");
  await bob.page.locator("#messages .msg", { hasText: "renamed" }).locator(".nick", { hasText: "Alicia" }).waitFor();
});

test("an <img onerror> payload is shown as text and never runs", async () => {
  const payload = `<img src=x onerror="window.__xss=1;alert('xss')"><script>window.__xss=2</script>`;
  await sendMessage(bob.page, payload);
  await waitForMessage(alice.page, payload);
  for (const person of [alice, bob]) {
    const r = await person.page.evaluate(() => ({
      xss: window.__xss ?? null,
      imgs: document.querySelectorAll("#messages img").length,
      scripts: document.querySelectorAll("#messages script").length,
    }));
    assert.deepEqual(r, { xss: null, imgs: 0, scripts: 0 }, `${person.name}: payload stayed text`);
    assert.deepEqual(person.dialogs, [], `${person.name}: no alert ran`);
  }
  // Also after a reload, when the payload comes from history.
  await alice.page.reload();
  await waitForMessage(alice.page, payload);
  assert.equal(await alice.page.evaluate(() => window.__xss ?? null), null);
  assert.equal(await alice.page.locator("#messages img").count(), 0);
  assert.deepEqual(alice.dialogs, []);
  await screenshot(alice.page, "chat-xss-as-text");
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
