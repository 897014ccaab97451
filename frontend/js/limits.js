// @ts-check
// Every limit of the contract the page enforces or relies on, in one place, each named after
// its row in docs/PROTOCOL.md. A unit test (tests/unit.test.js, "the page's limits are the
// contract's") reads that document and fails when one of these differs from it.

/** `NICKNAME_CHARS`: nickname characters after trimming. */
export const NICKNAME_MIN = 2;
export const NICKNAME_MAX = 15;
/** `MAX_TEXT_CHARS`: characters of message text. */
export const TEXT_MAX = 2000;
/** `MAX_ROOM_LEN`: room id length (1–64 of [A-Za-z0-9_-]). */
export const ROOM_MAX = 64;
/** `MAX_CLIENT_MSG_ID_LEN`: the ids the page makes (UUIDs, 36) must fit. */
export const CLIENT_MSG_ID_MAX = 64;
/** `DEFAULT_HISTORY`: what `join` without `after` returns; a full page means older ones may exist. */
export const FIRST_PAGE = 50;
/** `MAX_HISTORY_LIMIT`: the largest history page the page asks for (catch-up paging). */
export const HISTORY_PAGE_MAX = 200;
/** `MAX_MUTE_SECS`: the longest mute a moderator can pick. */
export const MUTE_MAX_SECS = 86400;
/** `RECEIPTS_FLUSH_MS`: `read` frames go at most this often (the server coalesces per second). */
export const READ_EVERY_MS = 1000;
/**
 * "server ping interval" (25 s): the page pings as often, so an idle connection always sends
 * a frame well within the server's silence limit (3 intervals).
 */
export const HEARTBEAT_MS = 25000;
/** "silence … before close 1008" (3 ping intervals, 75 s): the server's side of it. */
export const SERVER_SILENCE_MS = 75000;
/**
 * The page's own silence limit: no frame (not even a pong) for this long means the socket is
 * dead. Longer than the server's ping interval (its pings keep a live socket talking), shorter
 * than its silence limit.
 */
export const SILENCE_MS = 60000;
/** Image uploads (section 8): types and size. */
export const IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];
export const IMAGE_MAX_BYTES = 5 * 1024 * 1024;
/** `REACTION_EMOJI`: the emoji a message may be reacted with, in the order shown. */
export const REACTION_EMOJI = ["👍", "❤️", "😂", "😮", "👏", "🎉"];
