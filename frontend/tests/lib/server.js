// Starts and stops real chat-server processes for the browser tests: each on free loopback
// ports with its own temp data dir, waited on by polling /healthz, killed when the test ends.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { waitFor } from "./wait.js";

const live = new Set();
const temps = [];
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});

/** The chat-server binary, from CHAT_SERVER_BIN (set by scripts/test-browser.layer.sh). */
export function serverBinary() {
  const bin = process.env.CHAT_SERVER_BIN;
  if (!bin) {
    throw new Error("CHAT_SERVER_BIN is unset: run the browser tests through ./scripts/test.sh or scripts/test-browser.layer.sh (it builds chat-server and sets it)");
  }
  if (!fs.existsSync(bin)) throw new Error(`CHAT_SERVER_BIN=${bin} does not exist: build it with cargo build -p chat-server`);
  return bin;
}

/** Ports already handed out by this process: never handed out twice. */
const handedOut = new Set();

/**
 * A loopback TCP port free right now, picked at random below Linux's ephemeral range
 * (32768–60999) so that no outgoing connection (a test's client, a server's store socket) can
 * take it before the server binds it; the same rule as the Rust tests' `testkit::free_port`.
 */
export async function freePort() {
  for (let i = 0; i < 10000; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port)) continue;
    const free = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.unref();
      srv.on("error", () => resolve(false));
      srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no free loopback port in 20000-32000");
}

/** A fresh temp dir, removed when the test process exits. */
export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

export class ChatServer {
  /**
   * Starts chat-server. Reuse `port` and `dataDir` to restart "the same" server.
   * @param {object} [o]
   * @param {number} [o.port]
   * @param {string} [o.dataDir]
   * @param {object} [o.env] extra CHAT_* variables
   */
  static async start({ port, dataDir, env = {} } = {}) {
    const s = new ChatServer();
    s.port = port ?? (await freePort());
    s.adminPort = await freePort();
    s.dataDir = dataDir ?? tempDir("chat-browser-data-");
    s.env = env;
    s.base = `http://127.0.0.1:${s.port}`;
    s.log = "";
    const child = spawn(serverBinary(), [], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        RUST_LOG: process.env.RUST_LOG ?? "warn",
        CHAT_LISTEN: `127.0.0.1:${s.port}`,
        CHAT_ADMIN_LISTEN: `127.0.0.1:${s.adminPort}`,
        CHAT_DATA_DIR: s.dataDir,
        CHAT_DRAIN_SECS: "0",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    s.child = child;
    live.add(child);
    const keep = (chunk) => {
      s.log = (s.log + chunk.toString()).slice(-20000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    s.exited = new Promise((resolve) => child.on("exit", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }));
    let exit = null;
    s.exited.then((e) => (exit = e));
    await waitFor(async () => {
      if (exit) throw new Error(`chat-server exited during start-up (${JSON.stringify(exit)}):\n${s.log}`);
      try {
        const r = await fetch(`${s.base}/healthz`, { signal: AbortSignal.timeout(1000) });
        return r.ok;
      } catch {
        return false;
      }
    }, { timeout: 20000, what: `chat-server on ${s.base} to answer /healthz` });
    return s;
  }

  /** SIGTERM (the server drains), then SIGKILL if it has not exited within the deadline. */
  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Same data dir, same port, same settings: "the server restarted". */
  async restart() {
    await this.stop();
    return ChatServer.start({ port: this.port, dataDir: this.dataDir, env: this.env });
  }

  async json(pathname) {
    const r = await fetch(`${this.base}${pathname}`, { signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`GET ${pathname}: HTTP ${r.status} ${await r.text()}`);
    return r.json();
  }

  /** Every message of a room, oldest first, through the history route. */
  async allMessages(room) {
    const out = [];
    let before;
    for (;;) {
      const q = before === undefined ? "limit=200" : `limit=200&before=${before}`;
      const page = await this.json(`/api/rooms/${room}/messages?${q}`);
      out.unshift(...page.messages);
      if (!page.has_more || page.messages.length === 0) return out;
      before = page.messages[0].seq;
    }
  }
}
