// Images on the S3 path in real Chromium: chat-server uses a real moto server's S3 (as on AWS,
// where the bucket sits behind CloudFront), so the browser PUTs the image straight to the
// presigned moto URL (a cross-origin request the bucket's CORS rules allow), the server checks
// the object by its bytes, and everyone sees it loaded from the bucket's public URL.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ChatServer, freePort } from "./lib/server.js";
import { Moto } from "./lib/moto.js";
import { launchPerson, enterRoom, screenshot } from "./lib/browser.js";
import { solidPng } from "./lib/images.js";

const BUCKET = "chat-uploads";
let moto;
let server;
let alice;
let bob;

before(async () => {
  moto = await Moto.start();
  const port = await freePort();
  await moto.bucketWithCors(BUCKET, `http://127.0.0.1:${port}`);
  server = await ChatServer.start({
    port,
    env: {
      ...moto.env(),
      CHAT_UPLOADS_BUCKET: BUCKET,
      CHAT_UPLOADS_PUBLIC_URL: `${moto.endpoint}/${BUCKET}/uploads/`,
    },
  });
  [alice, bob] = await Promise.all([launchPerson("alice"), launchPerson("bob")]);
});

after(async () => {
  await Promise.all([alice?.close(), bob?.close()]);
  await server?.stop();
  await moto?.stop();
});

test("an image goes from the browser straight to S3 and is shown to everyone from the bucket", async () => {
  await enterRoom(alice, server.base, "s3pics", { nickname: "Alice" });
  await enterRoom(bob, server.base, "s3pics", { nickname: "Bob" });

  // Where Alice's page sends the bytes: a presigned PUT to moto, never to chat-server.
  const puts = [];
  alice.page.on("request", (r) => {
    if (r.method() === "PUT") puts.push(r.url());
  });

  const png = solidPng(400, 300);
  await alice.page.setInputFiles("#image-input", { name: "slide.png", mimeType: "image/png", buffer: png });
  for (const person of [alice, bob]) {
    await person.page.waitForFunction(() => {
      const img = document.querySelector("#messages .attachment img");
      return img && img.complete && img.naturalWidth > 0;
    });
    const img = await person.page.$eval("#messages .attachment img", (el) => ({
      src: el.src,
      width: el.width,
      height: el.height,
      natural: [el.naturalWidth, el.naturalHeight],
    }));
    assert.ok(img.src.startsWith(`${moto.endpoint}/${BUCKET}/uploads/`), `${person.name}: ${img.src}`);
    assert.deepEqual({ ...img, src: undefined }, { src: undefined, width: 320, height: 240, natural: [400, 300] }, person.name);
  }
  assert.equal(puts.length, 1, puts.join(", "));
  const put = new URL(puts[0]);
  assert.equal(put.origin, moto.endpoint, "the bytes went to S3 (moto), not chat-server");
  assert.ok(put.pathname.startsWith(`/${BUCKET}/uploads/`), put.pathname);
  assert.ok(put.searchParams.has("X-Amz-Signature"), "a presigned URL");

  // The object in the bucket is the image the browser sent, byte for byte.
  const stored = await fetch(`${moto.endpoint}${put.pathname}`);
  assert.equal(stored.status, 200);
  assert.deepEqual(Buffer.from(await stored.arrayBuffer()), png);
  await screenshot(bob.page, "images-s3");
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
