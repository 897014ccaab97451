// The page's limits are the contract's: each constant of js/limits.js is compared with its row
// in docs/PROTOCOL.md (section 6 and the images section), so changing a limit on one side only
// fails here. No browser needed.

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import * as limits from "../js/limits.js";
import { MUTE_CHOICES } from "../js/timeline.js";
import { newId } from "../js/ids.js";
import { CATALOGUES, LANGS, translate } from "../js/i18n.js";

const doc = fs.readFileSync(new URL("../../docs/PROTOCOL.md", import.meta.url), "utf8");

/** The value cell of the table row whose first cell is `name` (a constant or a limit's words). */
function row(name) {
  const line = doc.split("\n").find((l) => l.startsWith(`| \`${name}\` |`) || l.startsWith(`| ${name} |`));
  assert.ok(line, `docs/PROTOCOL.md has no row for ${name}`);
  return line.split("|")[2].trim();
}

test("the page's limits are the contract's (docs/PROTOCOL.md)", () => {
  assert.equal(row("NICKNAME_CHARS"), `${limits.NICKNAME_MIN}–${limits.NICKNAME_MAX}`);
  assert.equal(Number(row("MAX_TEXT_CHARS")), limits.TEXT_MAX);
  assert.equal(Number(row("MAX_ROOM_LEN")), limits.ROOM_MAX);
  assert.equal(Number(row("DEFAULT_HISTORY")), limits.FIRST_PAGE);
  assert.equal(Number(row("MAX_HISTORY_LIMIT")), limits.HISTORY_PAGE_MAX);
  assert.equal(Number(row("MAX_MUTE_SECS")), limits.MUTE_MAX_SECS);
  assert.equal(Number(row("RECEIPTS_FLUSH_MS")), limits.READ_EVERY_MS);
  assert.equal(Number(row("MAX_CLIENT_MSG_ID_LEN")), limits.CLIENT_MSG_ID_MAX);
  assert.equal(row("REACTION_EMOJI"), limits.REACTION_EMOJI.join(" "));
  assert.equal(row("server ping interval"), `${limits.HEARTBEAT_MS / 1000} s`);
  const silence = /\((\d+) s\)/.exec(row("silence (no frame at all; pongs count) before close 1008"));
  assert.equal(Number(silence?.[1]) * 1000, limits.SERVER_SILENCE_MS);
  assert.equal(row("image size"), `5 MiB (${limits.IMAGE_MAX_BYTES} bytes)`);
  const types = /for a type other than ([^;]+);/.exec(doc)?.[1];
  assert.equal(types, "JPEG, PNG, GIF, WebP");
  assert.deepEqual(limits.IMAGE_TYPES, ["image/jpeg", "image/png", "image/gif", "image/webp"]);
});

test("every error code of the contract has a text in both catalogues", () => {
  const section = doc.slice(doc.indexOf("## 4. Error codes"), doc.indexOf("## 5."));
  const codes = [...section.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);
  assert.ok(codes.length >= 14, `found ${codes.length} codes`);
  for (const lang of LANGS) for (const code of codes) assert.ok(`server.${code}` in CATALOGUES[lang], `${lang}: server.${code}`);
  assert.equal(translate("server.rate_limited", {}, "ko"), "너무 빠릅니다: 잠시 천천히 보내 주세요.");
});

test("the page's own timings fit the contract's", () => {
  // The page pings at the server's interval: an idle socket is never silent for 3 of them.
  assert.ok(limits.HEARTBEAT_MS < limits.SERVER_SILENCE_MS);
  // It calls a socket dead only after more than one server ping interval without a frame.
  assert.ok(limits.SILENCE_MS > limits.HEARTBEAT_MS && limits.SILENCE_MS < limits.SERVER_SILENCE_MS);
  // Mutes offered to moderators are within the server's maximum; the longest is it.
  const secs = MUTE_CHOICES.map(([, s]) => s).filter((s) => s !== null);
  assert.equal(Math.max(...secs), limits.MUTE_MAX_SECS);
  // The ids the page makes fit the contract.
  assert.ok(newId().length <= limits.CLIENT_MSG_ID_MAX);
  // The largest send the page lets through (the longest room, id and text, in the characters
  // JSON makes longest) fits in one WebSocket message.
  const worst = JSON.stringify({ type: "send", room: "r".repeat(limits.ROOM_MAX), client_msg_id: newId(), text: "\u0001".repeat(limits.TEXT_MAX) });
  const worstWide = JSON.stringify({ type: "send", room: "r".repeat(limits.ROOM_MAX), client_msg_id: newId(), text: "😀".repeat(limits.TEXT_MAX) });
  const maxFrame = Number(row("MAX_FRAME_BYTES"));
  for (const frame of [worst, worstWide]) assert.ok(Buffer.byteLength(frame) < maxFrame, `${Buffer.byteLength(frame)} bytes`);
});
