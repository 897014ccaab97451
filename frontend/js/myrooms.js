// @ts-check
// The rooms this browser joined, newest first, with how far the reader has read in each, for
// the landing page's list and its unread counts. Leaving a room forgets it.

import { readJson, writeJson } from "./storage.js";

const KEY = "chat.rooms.v1";
/** The list keeps this many rooms; the least recently opened go first. */
export const MY_ROOMS_MAX = 30;

/** @typedef {{ room: string, title: string | null, openedAt: number, readSeq: number }} MyRoom */

/** The rooms, most recently opened first. @returns {MyRoom[]} */
export function myRooms() {
  const v = readJson(KEY, []);
  return (Array.isArray(v) ? v : [])
    .filter((r) => typeof r?.room === "string")
    .sort((a, b) => (b.openedAt ?? 0) - (a.openedAt ?? 0));
}

/** @param {MyRoom[]} rooms */
function save(rooms) {
  writeJson(KEY, rooms.slice(0, MY_ROOMS_MAX));
}

/**
 * The room was opened now (it goes to the top; a `?title=` given is kept).
 * @param {string} room
 * @param {string | null} title
 */
export function rememberRoom(room, title, now = Date.now()) {
  const rooms = myRooms();
  const old = rooms.find((r) => r.room === room);
  save([{ room, title: title ?? old?.title ?? null, openedAt: now, readSeq: old?.readSeq ?? 0 }, ...rooms.filter((r) => r.room !== room)]);
}

/** The reader has seen `room` up to `seq`. @param {string} room @param {number} seq */
export function markRoomRead(room, seq) {
  const rooms = myRooms();
  const r = rooms.find((x) => x.room === room);
  if (!r || seq <= r.readSeq) return;
  r.readSeq = seq;
  save(rooms);
}

/** Forgets `room`. @param {string} room */
export function forgetRoom(room) {
  save(myRooms().filter((r) => r.room !== room));
}

/** Messages after the read position, given the room's last seq (never negative). @param {MyRoom} r @param {number} lastSeq */
export function unreadCount(r, lastSeq) {
  return Math.max(0, lastSeq - r.readSeq);
}
