// @ts-check
// After a reconnect the `joined` frame carries at most one catch-up's worth of missed
// messages (`has_more` says there are more): the rest are paged over HTTP.

import { getHistory } from "./api.js";
import { HISTORY_PAGE_MAX } from "./limits.js";

/** @typedef {import("./timeline.js").Message} Message */

/**
 * Pages the messages after the `joined` frame's, handing each page to `onPage`. Each page
 * starts after the highest seq the catch-up itself has read (the joined frame, then each
 * page), never after the connection's last seq: live frames move that forward meanwhile, and
 * paging from it would skip every message between this page and the newest live one.
 * @param {object} o
 * @param {string} o.apiBase
 * @param {string} o.room
 * @param {{ messages?: Message[], has_more?: boolean }} o.joined
 * @param {(messages: Message[]) => void} o.onPage
 */
export async function catchUp({ apiBase, room, joined, onPage }) {
  let more = Boolean(joined.has_more);
  let cursor = (joined.messages || []).reduce((hi, m) => Math.max(hi, m.seq), 0);
  while (more) {
    const page = await getHistory(apiBase, room, { after: cursor, limit: HISTORY_PAGE_MAX });
    for (const m of page.messages) cursor = Math.max(cursor, m.seq);
    onPage(page.messages);
    more = page.has_more && page.messages.length > 0;
  }
}
