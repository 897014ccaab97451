//! Joining a room: presence, the `joined` frame, and the member's floor. The floor is the
//! room's last SETTLED seq on this task (never the counter, which runs ahead of writes in
//! flight), so a seq reserved but not yet written reaches the member live once it lands.
//! A join that fails leaves nothing behind: no membership, no presence, no subscription.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::Hub;
use super::repair::GAP_WAIT;
use super::room::Member;
use crate::conn::{self, Conn};
use crate::protocol::{DEFAULT_HISTORY, MAX_JOIN_CATCH_UP, Refusal, ServerFrame, validate_room};
use crate::store::{HistoryPage, HistoryQuery};

/// The highest seq `s` above `start` such that the page holds every seq in `(start, s]`
/// (as a message or as abandoned).
fn contiguous_end(start: u64, page: &HistoryPage) -> u64 {
    let present: BTreeSet<u64> = page
        .messages
        .iter()
        .map(|m| m.seq)
        .chain(page.abandoned.iter().copied())
        .collect();
    let mut end = start;
    while present.contains(&(end + 1)) {
        end += 1;
    }
    end
}

/// Reads of the history before a join gives up on a room that keeps moving past them.
const JOIN_ATTEMPTS: usize = 5;

impl Hub {
    /// Joins `conn` to `room` and queues the `joined` frame; with `after`, every message
    /// above it (up to the catch-up limit), else the latest page.
    pub async fn join(
        &self,
        conn: &Arc<Conn>,
        room_name: &str,
        after: Option<u64>,
    ) -> Result<(), Refusal> {
        validate_room(room_name)?;
        let newly = conn.add_room(room_name);
        let result = self.join_inner(conn, room_name, after, newly).await;
        if result.is_err() && newly {
            conn.remove_room(room_name);
            self.undo_join(conn, room_name).await;
        }
        result
    }

    /// A first join failed: take back the presence it added and drop the room when nobody
    /// else is in it (unsubscribing, and forgetting anything it held).
    async fn undo_join(&self, conn: &Arc<Conn>, room_name: &str) {
        let user_still_here = {
            let mut rooms = self.rooms.write();
            match rooms.get(room_name).cloned() {
                Some(room) => {
                    let mut st = room.state.lock();
                    if st.members.is_empty() {
                        st.closed = true;
                        rooms.remove(room_name);
                        self.fanout.unsubscribe(room_name);
                    }
                    st.users.contains_key(&conn.user.id)
                }
                None => false,
            }
        };
        if !user_still_here && let Err(e) = self.fanout.presence_remove(room_name, &conn.user).await
        {
            tracing::debug!(error = %e, "Could not remove presence after a failed join");
        }
    }

    async fn join_inner(
        &self,
        conn: &Arc<Conn>,
        room_name: &str,
        after: Option<u64>,
        newly: bool,
    ) -> Result<(), Refusal> {
        if newly {
            self.fanout.presence_add(room_name, &conn.user).await?;
        }
        let members = self.fanout.presence(room_name).await?;
        let query = match after {
            Some(a) => HistoryQuery {
                before: None,
                after: Some(a),
                limit: MAX_JOIN_CATCH_UP,
            },
            None => HistoryQuery {
                before: None,
                after: None,
                limit: DEFAULT_HISTORY,
            },
        };
        for _ in 0..JOIN_ATTEMPTS {
            let room = self.room_or_create(room_name);
            // What the room had settled before the read: the read holds every message up to it.
            let settled_before = room.state.lock().last_seq;
            let reserved = self.store.last_seq(room_name).await?;
            let page = self.store.history(room_name, query).await?;
            let paging = page.has_more && after.is_some();
            let first_of_user;
            let gap;
            {
                let mut st = room.state.lock();
                if st.closed {
                    continue;
                }
                // Up to which seq the page is known to hold every message.
                let covered_by_page = match settled_before {
                    Some(before) => before,
                    None => {
                        // The room starts here on this task: below the page (or the client's
                        // `after`), then whatever the page holds, in order.
                        let start = after.unwrap_or_else(|| {
                            page.messages.first().map_or(0, |m| m.seq.saturating_sub(1))
                        });
                        st.start_at(start);
                        for m in &page.messages {
                            st.offer(m.seq, conn::server_frame(&ServerFrame::Message(m)));
                        }
                        for &seq in &page.abandoned {
                            st.abandoned(seq);
                        }
                        contiguous_end(start, &page)
                    }
                };
                st.reserved(reserved);
                let settled = st.last_seq.unwrap_or(0);
                // The member gets every message up to its floor now, the rest live.
                let floor = if paging {
                    // More than a join's worth: the client pages the rest over REST.
                    page.messages.last().map_or(settled, |m| m.seq).min(settled)
                } else {
                    settled
                }
                .max(after.unwrap_or(0));
                // Never below `after`: the client has everything up to it, and a room this
                // task had settled below it may have moved past it during the reads.
                let covered = if paging {
                    floor
                } else {
                    covered_by_page.min(floor)
                }
                .max(after.unwrap_or(0));
                let messages: Vec<_> = page
                    .messages
                    .iter()
                    .filter(|m| m.seq <= covered)
                    .cloned()
                    .collect();
                // Settled after the read began: from memory, or read again.
                let Some(extra) = st.settled_since(covered, floor) else {
                    continue;
                };
                conn.push(conn::server_frame(&ServerFrame::Joined {
                    room: room_name,
                    last_seq: floor,
                    online: members.len(),
                    members: &members,
                    messages: &messages,
                    has_more: paging,
                }));
                for frame in extra {
                    conn.push(frame);
                }
                gap = st.has_gap();
                if !newly {
                    // A repeated join refreshes the client's view; membership is unchanged.
                    drop(st);
                    if gap {
                        self.repair(&room, GAP_WAIT, GAP_WAIT * 2);
                    }
                    return Ok(());
                }
                st.members.push(Member {
                    conn: Arc::clone(conn),
                    floor,
                });
                let count = st.users.entry(conn.user.id).or_insert(0);
                *count += 1;
                first_of_user = *count == 1;
            }
            if gap {
                // Seqs reserved but not settled yet: deliver them as they land or settle.
                self.repair(&room, GAP_WAIT, GAP_WAIT * 2);
            }
            self.metrics.joins.inc();
            self.record_connection(conn);
            if first_of_user {
                let online = members.len().max(1);
                self.announce(&room, &conn.user, online, true).await;
            }
            return Ok(());
        }
        Err(Refusal::new(
            crate::protocol::ErrorCode::Unavailable,
            "the room is too busy to join right now; retry",
        ))
    }
}
