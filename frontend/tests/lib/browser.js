// Real headless Chromium (Debian's package) driven by playwright-core, one browser per person
// with a fresh profile, plus the room actions the tests repeat.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { tempDir } from "./server.js";

export const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "artifacts");

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * A person: their own Chromium with a fresh profile (so their own localStorage), one page.
 * `errors` collects uncaught page errors; `dialogs` any alert/confirm/prompt (which a chat
 * page never opens: one means injected script ran). `args` are extra Chromium switches;
 * `locale` is the browser's language (navigator.languages), English unless said.
 */
export async function launchPerson(name, { viewport = { width: 1000, height: 700 }, args = [], locale = "en-US" } = {}) {
  const profile = tempDir(`chat-browser-${name}-`);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [...ARGS, ...args],
    viewport,
    locale,
    timeout: 30000,
  });
  context.setDefaultTimeout(15000);
  const page = context.pages()[0] ?? (await context.newPage());
  const person = { name, context, page, errors: [], dialogs: [] };
  page.on("pageerror", (err) => person.errors.push(err.message));
  page.on("dialog", (d) => {
    person.dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  person.close = async () => {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return person;
}

/**
 * Opens `/room/{room}` and gets through the nickname prompt: with `nickname` it saves that
 * name, without it accepts the default guest name. Resolves once the room is joined.
 */
export async function enterRoom(person, base, room, { nickname, query = "" } = {}) {
  const { page } = person;
  await page.goto(`${base}/room/${room}${query}`);
  const dialog = page.locator("#nick-dialog");
  await dialog.waitFor({ state: "visible" });
  if (nickname) {
    await page.fill("#nick-input", nickname);
    await page.click("#nick-save");
  } else {
    await page.click("#nick-default");
  }
  await dialog.waitFor({ state: "hidden" });
  await waitOnline(page);
}

/**
 * On a page that frames a room (`#chat`), gets through the nickname prompt if it comes (whether
 * the frame shares the top-level profile's storage is the browser's choice) and waits until
 * the room is joined. Returns the chat's Frame.
 */
export async function enterFramedRoom(page, base) {
  const frame = page.frameLocator("#chat");
  await frame.locator('#conn-status[data-state="online"], #nick-dialog[open]').first().waitFor();
  if (await frame.locator("#nick-dialog[open]").count()) await frame.locator("#nick-default").click();
  await frame.locator('#conn-status[data-state="online"]').waitFor();
  return page.frames().find((f) => f.url().startsWith(base));
}

export async function waitOnline(page) {
  await page.locator('#conn-status[data-state="online"]').waitFor();
}

const focusSessions = new WeakMap();
const elsewhere = new WeakMap();

/**
 * The window loses focus (the person switched to another tab or app) or gets it back, as the
 * browser reports it: blur/focus events and document.hasFocus(). Another page of the same
 * browser comes to the front, and the focus emulation Playwright keeps on every page is turned
 * off for this one. Headless Chromium keeps every tab "visible", so this is how a test makes
 * the reader look away.
 */
export async function setFocused(page, focused) {
  // One DevTools session per page, kept open: the emulation lasts as long as its session.
  focusSessions.set(page, focusSessions.get(page) ?? (await page.context().newCDPSession(page)));
  if (!focused) {
    elsewhere.set(page, elsewhere.get(page) ?? (await page.context().newPage()));
    await elsewhere.get(page).bringToFront();
  }
  await focusSessions.get(page).send("Emulation.setFocusEmulationEnabled", { enabled: focused });
  if (focused) await page.bringToFront();
  await page.waitForFunction((f) => document.hasFocus() === f, focused);
}

/** Types `text` in the composer and presses Enter. */
export async function typeAndSend(page, text) {
  await page.fill("#composer-input", text);
  await page.press("#composer-input", "Enter");
}

/** Sends `text` and waits until it is shown as a stored (acked) message. */
export async function sendMessage(page, text) {
  await typeAndSend(page, text);
  await waitForMessage(page, text);
}

/** Waits until a stored message with exactly this text is shown. */
export async function waitForMessage(page, text, options = {}) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#messages .msg .text")].some((el) => el.textContent === t),
    text,
    options,
  );
}

/** The texts of the stored messages shown, top to bottom. */
export function shownTexts(page) {
  return page.$$eval("#messages .msg .text", (els) => els.map((el) => el.textContent));
}

/** The seqs of the stored messages shown, top to bottom. */
export function shownSeqs(page) {
  return page.$$eval("#messages .msg", (els) => els.map((el) => Number(el.dataset.seq)));
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

/**
 * Runs axe-core (npm axe-core, injected into the page) and returns the serious and critical
 * violations as `"rule (impact): help at targets"` lines (empty when there are none).
 */
export async function seriousA11yViolations(pageOrFrame) {
  await pageOrFrame.addScriptTag({ path: AXE_PATH });
  const violations = await pageOrFrame.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations);
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

const AXE_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "node_modules", "axe-core", "axe.min.js");

/**
 * Sends `count` messages into `room` as a fresh guest over a real WebSocket opened by the
 * browser (the server's Origin check needs a page on its own origin), each awaited until
 * acked. Returns the acks' seqs.
 */
export async function seedMessages(person, base, room, texts) {
  const { page } = person;
  await page.goto(`${base}/version`);
  return page.evaluate(
    async ({ room, texts }) => {
      const session = await (await fetch("/api/session", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json();
      const ws = new WebSocket(`${location.origin.replace(/^http/, "ws")}/ws`);
      const frames = [];
      let wake = null;
      ws.onmessage = (e) => {
        frames.push(JSON.parse(e.data));
        wake?.();
      };
      const next = async (type) => {
        for (;;) {
          const i = frames.findIndex((f) => f.type === type || f.type === "error");
          if (i >= 0) {
            const [f] = frames.splice(i, 1);
            if (f.type === "error") throw new Error(`seeding: server error ${f.code}: ${f.message}`);
            return f;
          }
          await new Promise((r) => (wake = r));
        }
      };
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("seeding: WebSocket failed to open"));
      });
      ws.send(JSON.stringify({ type: "hello", token: session.token }));
      await next("welcome");
      ws.send(JSON.stringify({ type: "join", room }));
      await next("joined");
      const seqs = [];
      for (const text of texts) {
        ws.send(JSON.stringify({ type: "send", room, client_msg_id: crypto.randomUUID(), text }));
        seqs.push((await next("ack")).seq);
      }
      ws.close();
      return seqs;
    },
    { room, texts },
  );
}
