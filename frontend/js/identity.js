// @ts-check
// The guest identity over a visit: created on the first visit (named after the avatar in the
// page's language when the person types no nickname), renewed before its token expires, and
// replaced by a new guest under the same name when the server no longer accepts it.

import { postSession, ApiError } from "./api.js";
import { loadSession, saveSession } from "./session.js";
import { backoffDelay } from "./backoff.js";
import { anonymousName } from "./avatar.js";
import { setStatus } from "./views.js";
import { t } from "./i18n.js";

/** @typedef {import("./session.js").Session} Session */

/** A failed token refresh is tried again after this long. */
const REFRESH_RETRY_MS = 30000;

/**
 * The stored form of a `POST /api/session` answer: when the token expires, by this clock.
 * @param {{ token: string, user: import("./session.js").User, expires_in_secs?: number }} fresh
 * @returns {Session}
 */
export function sessionFrom(fresh) {
  return { token: fresh.token, user: fresh.user, expiresAt: Date.now() + (fresh.expires_in_secs ?? 0) * 1000 };
}

/** Milliseconds until the session's token is renewed: half its remaining life. @param {Session} session */
export function refreshDelay(session) {
  if (!session.expiresAt) return 0;
  return Math.max(0, Math.min((session.expiresAt - Date.now()) / 2, 2 ** 31 - 1));
}

/**
 * Retries an HTTP call with backoff while the server is unreachable, showing progress.
 * @template T
 * @param {() => Promise<T>} fn
 * @param {string} whatKey  catalogue key of what is being done
 * @returns {Promise<T>}
 */
export async function retrying(fn, whatKey) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status >= 400 && err.status < 500)) throw err;
      setStatus("reconnecting", { key: "status.retrying", params: { what: t(whatKey), error: err.message } });
      await new Promise((r) => setTimeout(r, backoffDelay(attempt)));
    }
  }
}

/**
 * The session to use now: the stored one, a new guest on a first visit, or a new guest under
 * the same name when the stored token has expired. Saved before it is returned.
 * @param {string} apiBase
 * @returns {Promise<Session>}
 */
export async function currentSession(apiBase) {
  let session = loadSession();
  if (!session) {
    const fresh = await retrying(() => postSession(apiBase, {}), "status.creatingIdentity");
    session = { ...sessionFrom(fresh), confirmed: false };
    saveSession(session);
  }
  if (session.expiresAt !== undefined && session.expiresAt <= Date.now()) {
    // Away longer than a token lives: a new guest under the same name.
    session = await newGuestLike(apiBase, session);
  }
  return session;
}

/**
 * The name a guest who types none gets: "Anonymous Otter" / "익명의 수달" for their avatar in
 * the page's language (the server's own default, "Guest 17", when the page cannot name it).
 * @param {Session} session
 */
export function defaultNickname(session) {
  return anonymousName(session.user.avatar) ?? session.user.nickname;
}

/**
 * Renames the guest (same token, so the same id) and saves the answer.
 * @param {string} apiBase
 * @param {Session} session
 * @param {string} nickname
 * @returns {Promise<Session>}
 */
export async function rename(apiBase, session, nickname) {
  const fresh = await postSession(apiBase, { token: session.token, nickname });
  const next = { ...sessionFrom(fresh), confirmed: true };
  saveSession(next);
  return next;
}

/**
 * Keeps the token fresh: renews it silently at half its life (now, for one saved without an
 * expiry), so the next hello always carries a valid token and the guest keeps its id.
 * @param {string} apiBase
 * @param {() => Session} get
 * @param {(s: Session) => void} set  the renewed session (already saved)
 */
export function keepFresh(apiBase, get, set) {
  const refresh = async () => {
    const session = get();
    try {
      const fresh = await postSession(apiBase, { token: session.token, nickname: session.user.nickname });
      const next = { ...session, ...sessionFrom(fresh) };
      saveSession(next);
      set(next);
      setTimeout(refresh, refreshDelay(next));
    } catch {
      setTimeout(refresh, REFRESH_RETRY_MS);
    }
  };
  setTimeout(refresh, refreshDelay(get()));
}

/**
 * A new guest in place of one whose token expired or was refused (e.g. the server's secret
 * changed): the same nickname, or, for someone who kept the name made from their avatar, the
 * name made from the new guest's avatar (so "Anonymous Otter" does not become a fox named
 * otter). Saved before it is returned.
 * @param {string} apiBase
 * @param {Session} session
 * @returns {Promise<Session>}
 */
export async function newGuestLike(apiBase, session) {
  const body = session.anonymous ? {} : { nickname: session.user.nickname };
  const fresh = await retrying(() => postSession(apiBase, body), "status.renewing");
  /** @type {Session} */
  let next = { ...sessionFrom(fresh), confirmed: session.confirmed, anonymous: session.anonymous };
  const name = session.anonymous ? anonymousName(next.user.avatar) : null;
  if (name) next = { ...(await rename(apiBase, next, name)), anonymous: true };
  saveSession(next);
  return next;
}
