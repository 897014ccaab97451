// @ts-check
// Where a room's unsent messages wait across reloads: one storage entry per room, written on
// every change of the outbox (connection.js), read when the room opens again.

import { readJson, writeJson, removeKey } from "./storage.js";

/** @typedef {import("./connection.js").OutboxEntry} OutboxEntry */

/** @param {string} room */
const keyOf = (room) => `chat.outbox.v1.${room}`;

/**
 * The outbox store of `room` for ChatConnection's `store` option.
 * @param {string} room
 * @returns {import("./connection.js").OutboxStore}
 */
export function outboxStore(room) {
  return {
    load() {
      const entries = readJson(keyOf(room), []);
      return Array.isArray(entries) ? entries.filter((e) => typeof e?.client_msg_id === "string" && typeof e.text === "string") : [];
    },
    save(entries) {
      if (entries.length) {
        writeJson(keyOf(room), entries.map(({ client_msg_id, text, attachment, state, error }) => ({ client_msg_id, text, attachment, state, error })));
      } else {
        removeKey(keyOf(room));
      }
    },
  };
}

/** Forgets the unsent messages of `room` (leaving it). @param {string} room */
export function clearOutbox(room) {
  removeKey(keyOf(room));
}
