// Starts a real moto server (AWS's APIs on loopback, from MOTO_SERVER, set by
// scripts/test-env.sh) for the browser tests of the S3 paths; killed when the test process
// exits. moto accepts unsigned requests, so a bucket and its CORS rules are made with plain
// HTTP calls (path-style URLs).

import { spawn } from "node:child_process";
import { freePort } from "./server.js";
import { waitFor } from "./wait.js";

const live = new Set();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export class Moto {
  static async start() {
    const bin = process.env.MOTO_SERVER;
    if (!bin) throw new Error("MOTO_SERVER is unset: source scripts/test-env.sh first");
    const m = new Moto();
    m.port = await freePort();
    m.endpoint = `http://127.0.0.1:${m.port}`;
    m.log = "";
    m.child = spawn(bin, ["-H", "127.0.0.1", "-p", String(m.port)], { stdio: ["ignore", "pipe", "pipe"] });
    live.add(m.child);
    const keep = (chunk) => {
      m.log = (m.log + chunk.toString()).slice(-10000);
    };
    m.child.stdout.on("data", keep);
    m.child.stderr.on("data", keep);
    m.child.on("exit", () => live.delete(m.child));
    await waitFor(async () => {
      try {
        return (await fetch(`${m.endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) })).ok;
      } catch {
        return false;
      }
    }, { timeout: 30000, what: `moto_server on ${m.endpoint}` });
    return m;
  }

  /** The variables chat-server needs to use this moto with dummy credentials. */
  env() {
    return {
      AWS_ENDPOINT_URL: this.endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      AWS_EC2_METADATA_DISABLED: "true",
    };
  }

  /**
   * Creates `bucket` with CORS rules letting pages of `origin` PUT and GET objects, and a
   * policy letting anyone read them (standing for CloudFront in front of the bucket on AWS).
   */
  async bucketWithCors(bucket, origin) {
    const put = async (path, body) => {
      const r = await fetch(`${this.endpoint}/${path}`, { method: "PUT", body, signal: AbortSignal.timeout(10000) });
      if (!r.ok) throw new Error(`PUT /${path}: HTTP ${r.status} ${await r.text()}`);
    };
    await put(bucket);
    await put(`${bucket}?cors`, `<CORSConfiguration><CORSRule>
      <AllowedOrigin>${origin}</AllowedOrigin>
      <AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod>
      <AllowedHeader>*</AllowedHeader><MaxAgeSeconds>300</MaxAgeSeconds>
    </CORSRule></CORSConfiguration>`);
    await put(`${bucket}?policy`, JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${bucket}/*` }],
    }));
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    await new Promise((resolve) => this.child.once("exit", resolve));
  }
}
