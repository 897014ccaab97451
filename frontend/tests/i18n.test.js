// Unit tests of the page's languages (no browser): both catalogues say the same things, the
// language is picked from the URL and the browser, counts pick their plural and are localised,
// and a guest who types no nickname is named after their avatar within the nickname limit,
// for every avatar the server can draw (read from server/src/auth.rs).

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { CATALOGUES, LANGS, pickLang, translate, normalizeLang } from "../js/i18n.js";
import { anonymousName, hasArt, animalName } from "../js/avatar.js";
import { AVATAR_ART } from "../js/art.js";
import { NICKNAME_MAX, NICKNAME_MIN } from "../js/limits.js";

const placeholders = (entry) => {
  const texts = typeof entry === "string" ? [entry] : Object.values(entry);
  return [...new Set(texts.flatMap((s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1])))].sort();
};

test("Korean and English catalogues have the same keys and the same placeholders", () => {
  assert.deepEqual(LANGS, ["en", "ko"]);
  const en = Object.keys(CATALOGUES.en).sort();
  const ko = Object.keys(CATALOGUES.ko).sort();
  assert.deepEqual(ko, en);
  for (const key of en) {
    assert.deepEqual(placeholders(CATALOGUES.ko[key]), placeholders(CATALOGUES.en[key]), key);
    assert.notEqual(String(CATALOGUES.ko[key]).trim(), "", key);
  }
});

test("every key the page uses exists (data-i18n in index.html, t/setText/setLabel in the modules)", () => {
  const root = new URL("..", import.meta.url);
  const files = ["index.html", "app.js", ...fs.readdirSync(new URL("js/", root)).filter((f) => f.endsWith(".js")).map((f) => `js/${f}`)];
  const used = new Set();
  for (const f of files) {
    const src = fs.readFileSync(new URL(f, root), "utf8");
    for (const m of src.matchAll(/data-i18n(?:-label|-title|-placeholder)?="([\w.]+)"/g)) used.add(m[1]);
    for (const m of src.matchAll(/(?:\bt|setText\([^,]+|setLabel\([^,]+|translate)\(?\s*"([a-z]+\.[\w.]+)"/g)) used.add(m[1]);
    for (const m of src.matchAll(/\{ key: "([\w.]+)"/g)) used.add(m[1]);
  }
  assert.ok(used.size > 60, `found ${used.size} keys in use`);
  for (const key of used) assert.ok(key in CATALOGUES.en, `${key} is used but not in the catalogues`);
});

test("language: ?lang= forces, else the browser's first language we have, else English", () => {
  assert.equal(pickLang("?lang=ko", ["en-US"]), "ko");
  assert.equal(pickLang("?lang=EN", ["ko-KR"]), "en");
  assert.equal(pickLang("?lang=fr", ["ko-KR", "en"]), "ko", "an unknown forced language falls through");
  assert.equal(pickLang("", ["fr-FR", "ko", "en"]), "ko");
  assert.equal(pickLang("", ["de", "fr"]), "en");
  assert.equal(pickLang("", []), "en");
  assert.equal(normalizeLang("ko_KR"), "ko");
  assert.equal(normalizeLang("kok"), null);
});

test("counts pick their plural form and are written the local way", () => {
  assert.equal(translate("landing.unread", { count: 1 }, "en"), "1 new message");
  assert.equal(translate("landing.unread", { count: 1234 }, "en"), "1,234 new messages");
  assert.equal(translate("landing.unread", { count: 1 }, "ko"), "새 메시지 1개");
  assert.equal(translate("room.typingMany", { count: 3 }, "ko"), "3명이 입력 중…");
  assert.throws(() => translate("no.such.key"), /no text for "no.such.key"/);
});

test("a guest with no nickname is named after their avatar, within the nickname limit, for every avatar the server draws", () => {
  const auth = fs.readFileSync(new URL("../../server/src/auth.rs", import.meta.url), "utf8");
  const list = /pub const AVATARS: &\[&str\] = &\[([^\]]+)\]/.exec(auth);
  assert.ok(list, "AVATARS not found in server/src/auth.rs");
  const server = [...list[1].matchAll(/"(\w+)"/g)].map((m) => m[1]).sort();
  assert.ok(server.length >= 20);
  assert.deepEqual(Object.keys(AVATAR_ART).sort(), server, "the page draws exactly the server's avatars");
  assert.equal(anonymousName("otter", "en"), "Anonymous Otter");
  assert.equal(anonymousName("otter", "ko"), "익명의 수달");
  assert.equal(anonymousName("hedgehog", "en"), "Anon Hedgehog", "the long form would pass 15 characters");
  assert.equal(anonymousName("quokka", "en"), null);
  for (const a of server) {
    assert.ok(hasArt(a), a);
    for (const l of LANGS) {
      const name = anonymousName(a, l);
      const n = [...name].length;
      assert.ok(n >= NICKNAME_MIN && n <= NICKNAME_MAX, `${l} ${a}: "${name}" has ${n} characters`);
      assert.notEqual(animalName(a, l), a, `${l} names ${a}`);
    }
  }
});
