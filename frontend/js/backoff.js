// @ts-check
// Reconnect delays: exponential with full jitter, so an audience dropped at once (a task
// draining, a deploy) does not come back in one synchronised wave.

export const DEFAULT_BACKOFF = { baseMs: 500, maxMs: 8000 };

/** Delay before reconnect attempt `attempt` (0 = first retry): uniform in [base/2, cap]. */
/**
 * @param {number} attempt
 * @param {{ baseMs: number, maxMs: number }} [o]
 */
export function backoffDelay(attempt, { baseMs, maxMs } = DEFAULT_BACKOFF, random = Math.random) {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  const floor = Math.min(cap, baseMs / 2);
  return Math.round(floor + random() * (cap - floor));
}
