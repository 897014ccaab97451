// Embedding by policy in real Chromium: chat-server answers the page with
// `Content-Security-Policy: frame-ancestors 'self' <CHAT_FRAME_ANCESTORS>` (the header CloudFront
// keeps, terraform/tests/test_edge.py), so a listed site can frame a room and any other site
// gets a blank frame instead of a chat it could overlay.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer, freePort } from "./lib/server.js";
import { startParentPage } from "./lib/parent.js";
import { launchPerson } from "./lib/browser.js";

let server;
let person;
let listedPort;
const parents = [];

before(async () => {
  listedPort = await freePort();
  server = await ChatServer.start({ env: { CHAT_FRAME_ANCESTORS: `http://127.0.0.1:${listedPort}` } });
  person = await launchPerson("embedder");
});

after(async () => {
  await Promise.all([person?.close(), ...parents.map((p) => p.close())]);
  await server?.stop();
});

test("the page carries frame-ancestors with the configured origins; the API does not", async () => {
  for (const path of ["/", "/room/keynote"]) {
    const res = await fetch(`${server.base}${path}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-security-policy"), `frame-ancestors 'self' http://127.0.0.1:${listedPort}`, path);
    assert.equal(res.headers.get("x-frame-options"), null, path);
  }
  const version = await fetch(`${server.base}/version`);
  assert.equal(version.headers.get("content-security-policy"), null);
});

test("a listed site frames the room; any other site gets no chat", async () => {
  const listed = await startParentPage(`${server.base}/room/embedded`, { port: listedPort });
  const other = await startParentPage(`${server.base}/room/embedded`);
  parents.push(listed, other);
  const { page } = person;

  await page.goto(listed.url);
  await page.waitForFunction(() => window.chatReady > 0);
  assert.ok(page.frames().some((f) => f.url().startsWith(server.base)), "the listed site shows the chat");

  await page.goto(other.url);
  // The frame's load event fires for the error page Chromium puts in place of a refused frame.
  await page.waitForFunction(() => window.frameLoads > 0);
  assert.equal(await page.evaluate(() => window.chatReady), 0, "the chat announced itself in a refused frame");
  assert.ok(!page.frames().some((f) => f.url().startsWith(server.base)), "a frame of the chat loaded on an unlisted site");
});
