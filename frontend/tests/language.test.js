// Korean and English in real Chromium against a real chat-server: the language follows the
// browser's preferences, `?lang=` forces one, an embedding page switches it live by
// postMessage; a visitor who types no nickname is named after their avatar in their language
// and the other person sees that name; times and counts are localised; avatars are drawings.
// Also the screenshots in docs/web-client.md of the room in both languages and both themes.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer, freePort } from "./lib/server.js";
import { startParentPage } from "./lib/parent.js";
import { launchPerson, enterRoom, enterFramedRoom, sendMessage, waitForMessage, screenshot, waitOnline } from "./lib/browser.js";

let server;
let minji;
let sam;
let parentPort;
const parents = [];

before(async () => {
  parentPort = await freePort();
  server = await ChatServer.start({ env: { CHAT_COLOR: "blue", CHAT_FRAME_ANCESTORS: `http://127.0.0.1:${parentPort}` } });
  [minji, sam] = await Promise.all([launchPerson("minji", { locale: "ko-KR" }), launchPerson("sam", { locale: "en-GB" })]);
});

after(async () => {
  await Promise.all([minji?.close(), sam?.close(), ...parents.map((p) => p.close())]);
  await server?.stop();
});

/**
 * Words of the page's own chrome in Latin letters, in text and in labels (user content,
 * badges, addresses and image format names left out).
 */
function latinWords(page) {
  return page.evaluate(() => {
    const allowed = new Set(["JPEG", "PNG", "GIF", "WebP"]);
    const latin = (s) => (s.replace(/https?:\/\/\S+/g, "").match(/[A-Za-z]{3,}/g) || []).filter((w) => !allowed.has(w));
    const skip = "#messages, #pending, #member-list, #me-nick, #server-badge, #room-title, #typing, .nick, script, style, noscript, [hidden]";
    const words = [];
    const walk = (el) => {
      if (el.matches?.(skip)) return;
      for (const child of el.childNodes) {
        if (child.nodeType === Node.TEXT_NODE) words.push(...latin(child.textContent));
        else if (child.nodeType === Node.ELEMENT_NODE) walk(child);
      }
      for (const attr of ["aria-label", "placeholder", "title"]) {
        const v = el.getAttribute?.(attr);
        if (v) words.push(...latin(v));
      }
    };
    walk(document.body);
    return words;
  });
}

test("a Korean browser gets the Korean page; a guest with no nickname is 익명의 + their animal, seen so by others", async () => {
  await minji.page.goto(`${server.base}/`);
  await minji.page.locator("#landing").waitFor();
  assert.equal(await minji.page.textContent("#create-room"), "새 방 만들기");
  assert.equal(await minji.page.evaluate(() => document.documentElement.lang), "ko");

  await minji.page.goto(`${server.base}/room/seoul?title=${encodeURIComponent("키노트 Q&A")}&theme=light`);
  await minji.page.locator("#nick-dialog").waitFor();
  const keep = (await minji.page.textContent("#nick-default")).trim();
  const avatar = await minji.page.evaluate(() => JSON.parse(localStorage.getItem("chat.session.v1")).user.avatar);
  const animals = { otter: "수달", fox: "여우", panda: "판다", koala: "코알라", owl: "부엉이", penguin: "펭귄", tiger: "호랑이", whale: "고래", rabbit: "토끼", hedgehog: "고슴도치", raccoon: "너구리", octopus: "문어", turtle: "거북이", dolphin: "돌고래", lion: "사자", zebra: "얼룩말", giraffe: "기린", badger: "오소리", beaver: "비버", falcon: "매", frog: "개구리", moose: "무스", seal: "물범", sloth: "나무늘보" };
  const name = `익명의 ${animals[avatar]}`;
  assert.equal(keep, `${name}(으)로 계속`);
  await minji.page.click("#nick-default");
  await waitOnline(minji.page);
  assert.equal((await minji.page.textContent("#me-nick")).trim(), name);
  assert.equal(await minji.page.textContent("#conn-status"), "연결됨");
  assert.deepEqual(await latinWords(minji.page), [], "no English left in the Korean page");

  await enterRoom(sam, server.base, "seoul", { query: `?title=${encodeURIComponent("Keynote Q&A")}&theme=light` });
  const samName = (await sam.page.textContent("#me-nick")).trim();
  assert.match(samName, /^Anon(ymous)? [A-Z][a-z]+$/, "an English guest is Anonymous + animal");
  await sendMessage(minji.page, "안녕하세요! 발표 잘 들었습니다 👏");
  await waitForMessage(sam.page, "안녕하세요! 발표 잘 들었습니다 👏");
  const nick = await sam.page.locator("#messages .msg", { hasText: "안녕하세요" }).locator(".nick").textContent();
  assert.equal(nick, name, "the other person sees the Korean name");
  const stored = await server.allMessages("seoul");
  assert.equal(stored[0].user.nickname, name, "the server stored the name");

  // Counts and times the Korean way; avatars are drawings, not emoji characters.
  await minji.page.waitForFunction(() => document.querySelector("#online-toggle").textContent.trim() === "2명 접속 중");
  await sendMessage(sam.page, "Great talk, thank you!");
  await waitForMessage(minji.page, "Great talk, thank you!");
  const time = await minji.page.locator("#messages .msg time").first().textContent();
  assert.match(time, /^(오전|오후) \d{1,2}:\d{2}$/, `a Korean time: ${time}`);
  const avatars = await minji.page.$$eval("#messages .avatar, #me-avatar", (els) => els.map((el) => ({ svg: Boolean(el.querySelector("svg path")), text: el.textContent })));
  assert.ok(avatars.length >= 3);
  for (const a of avatars) assert.deepEqual(a, { svg: true, text: "" });
  await minji.page.fill("#composer-input", "질문 있어요");
  await minji.page.type("#composer-input", "!");
  await sam.page.locator("#typing", { hasText: `${name} is typing…` }).waitFor();
  await sam.page.fill("#composer-input", "Go ahead");
  await sam.page.locator("#composer-input").press("d");
  await minji.page.locator("#typing", { hasText: `${samName} 님이 입력 중…` }).waitFor();

  // The screenshots in docs/web-client.md: the room in Korean and in English, light and dark.
  await screenshot(minji.page, "room-ko-light");
  await screenshot(sam.page, "room-en-light");
  for (const person of [minji, sam]) {
    await person.page.evaluate(() => (document.documentElement.dataset.theme = "dark"));
  }
  await screenshot(minji.page, "room-ko-dark");
  await screenshot(sam.page, "room-en-dark");
  assert.deepEqual([...minji.errors, ...sam.errors], []);
});

test("?lang= forces a language over the browser's", async () => {
  const { page } = minji;
  await page.goto(`${server.base}/room/seoul?lang=en`);
  await waitOnline(page);
  assert.equal(await page.textContent("#conn-status"), "Connected");
  assert.equal(await page.getAttribute("#composer-input", "placeholder"), "Write a message…");
  assert.deepEqual(await page.evaluate(() => document.documentElement.lang), "en");
  // The landing page it leads to keeps the choice.
  await page.click("#leave-button");
  await page.waitForURL(`${server.base}/?lang=en`);
  assert.equal(await page.textContent("#create-room"), "Create a new room");
});

test("the embedding page switches the language live by postMessage, texts, times and counts included", async () => {
  const parent = await startParentPage(`${server.base}/room/embedded?lang=en`, { port: parentPort });
  parents.push(parent);
  const { page } = sam;
  await page.goto(parent.url);
  const inner = await enterFramedRoom(page, server.base);
  await sendMessage(inner, "switch me");
  assert.equal(await inner.textContent("#conn-status"), "Connected");
  await page.evaluate(() => document.getElementById("chat").contentWindow.postMessage({ type: "lang", lang: "ko" }, "*"));
  await inner.waitForFunction(() => document.documentElement.lang === "ko");
  assert.equal(await inner.textContent("#conn-status"), "연결됨");
  assert.equal(await inner.getAttribute("#composer-input", "placeholder"), "메시지를 입력하세요…");
  assert.equal(await inner.textContent("#composer button[type=submit]"), "보내기");
  assert.match(await inner.locator("#messages time").first().textContent(), /^(오전|오후) /);
  assert.equal(await inner.locator(".day-sep").first().textContent(), "오늘");
  assert.equal(await inner.title(), "embedded 방 · 채팅");
  // Only the parent may switch it: the frame's own message is ignored.
  await inner.evaluate(() => window.postMessage({ type: "lang", lang: "en" }, "*"));
  await page.evaluate(() => document.getElementById("chat").contentWindow.postMessage({ type: "theme", theme: "dark" }, "*"));
  await inner.waitForFunction(() => document.documentElement.dataset.theme === "dark");
  assert.equal(await inner.evaluate(() => document.documentElement.lang), "ko");
  assert.deepEqual(sam.errors, []);
});

test("an anonymous guest whose token expired comes back named after the new guest's avatar; a chosen name is kept", async () => {
  const { page } = minji;
  const expire = () =>
    page.evaluate(() => {
      const s = JSON.parse(localStorage.getItem("chat.session.v1"));
      localStorage.setItem("chat.session.v1", JSON.stringify({ ...s, expiresAt: Date.now() - 1000 }));
      return s.user;
    });
  await page.goto(`${server.base}/room/seoul`);
  await waitOnline(page);
  const before = await expire();
  assert.match(before.nickname, /^익명의 /);
  await page.reload();
  await waitOnline(page);
  const after = await page.evaluate(() => JSON.parse(localStorage.getItem("chat.session.v1")));
  assert.notEqual(after.user.id, before.id, "a new guest");
  assert.equal(after.anonymous, true);
  const animal = await page.evaluate(async (a) => (await import("/js/avatar.js")).anonymousName(a, "ko"), after.user.avatar);
  assert.equal(after.user.nickname, animal, "named after the new avatar");
  assert.equal((await page.textContent("#me-nick")).trim(), animal);

  // Someone who typed a name keeps it.
  await page.click("#nick-button");
  await page.fill("#nick-input", "민지");
  await page.click("#nick-save");
  await page.locator("#nick-dialog").waitFor({ state: "hidden" });
  await waitOnline(page);
  const chosen = await expire();
  assert.equal(chosen.nickname, "민지");
  await page.reload();
  await waitOnline(page);
  const renewed = await page.evaluate(() => JSON.parse(localStorage.getItem("chat.session.v1")));
  assert.notEqual(renewed.user.id, chosen.id);
  assert.deepEqual([renewed.user.nickname, renewed.anonymous], ["민지", false]);
  assert.deepEqual(minji.errors, []);
});
