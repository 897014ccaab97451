// Polling with a deadline: the tests' only way to wait for something outside the browser
// (inside it, Playwright's auto-waiting and waitForFunction do the job).

export async function waitFor(check, { timeout = 15000, interval = 50, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      if (err && /exited during start-up/.test(err.message)) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
