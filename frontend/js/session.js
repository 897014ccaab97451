// @ts-check
// The guest identity kept in the browser (token, user, when the token expires, whether the
// person confirmed the nickname), so a return visit skips the prompt.

import { readJson, writeJson } from "./storage.js";

const KEY = "chat.session.v1";

/**
 * @typedef {{ id: number, nickname: string, avatar: string }} User
 * @typedef {{ token: string, user: User, expiresAt?: number, confirmed?: boolean, anonymous?: boolean }} Session
 *   `anonymous`: the person kept the name made from the avatar (not one they typed)
 */

/** The stored session, or null (none, or a corrupt entry: treated as a first visit). @returns {Session | null} */
export function loadSession() {
  const v = readJson(KEY);
  if (typeof v?.token === "string" && v.user && typeof v.user.id === "number") return v;
  return null;
}

/** @param {Session} session */
export function saveSession(session) {
  writeJson(KEY, session);
}
