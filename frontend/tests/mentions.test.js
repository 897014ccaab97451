// Unit tests of the pure parts of mentions and their count in the tab title (no browser).

import { test } from "node:test";
import assert from "node:assert/strict";
import { mentions, mentionAt, suggest } from "../js/mentions.js";
import { titleWithUnread } from "../js/attention.js";

test("a message mentions a nickname only as a whole @name, in any case", () => {
  assert.ok(mentions("@Alice hi", "Alice"));
  assert.ok(mentions("thanks @alice!", "Alice"));
  assert.ok(mentions("cc @Anonymous Otter, see above", "Anonymous Otter"));
  assert.ok(mentions("@익명의 수달 안녕", "익명의 수달"));
  assert.ok(!mentions("@Alicia hi", "Alice"), "a longer name is someone else");
  assert.ok(!mentions("mail alice@Alice.com", "Alice"), "not inside a word");
  assert.ok(!mentions("Alice hi", "Alice"), "no @, no mention");
  assert.ok(mentions("@A.B (x)", "A.B"), "regex characters in names are literal");
  assert.ok(!mentions("@AxB", "A.B"));
  assert.ok(!mentions("", "Alice") && !mentions("@Alice", ""));
});

test("the completion finds the @word before the caret and suggests names that start so", () => {
  assert.deepEqual(mentionAt("hi @Al", 6), { start: 3, query: "Al" });
  assert.deepEqual(mentionAt("@", 1), { start: 0, query: "" });
  assert.equal(mentionAt("mail a@b", 8), null, "an @ inside a word is not a mention");
  assert.equal(mentionAt("hi @Al there", 12), null, "the caret is past it");
  assert.deepEqual(suggest("al", ["Bob", "alice", "Alan", "Alan", "Zed"]), ["Alan", "alice"]);
  assert.equal(suggest("", Array.from({ length: 20 }, (_, i) => `P${i}`)).length, 6);
});

test("the tab title counts mentions apart", () => {
  assert.equal(titleWithUnread("Room · Chat", 3, 1), "(3 · @1) Room · Chat");
  assert.equal(titleWithUnread("Room · Chat", 3, 0), "(3) Room · Chat");
  assert.equal(titleWithUnread("Room · Chat", 0, 0), "Room · Chat");
});
