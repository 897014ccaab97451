//! Joining a room: presence, the `joined` frame, and the member's floor. The floor is the room's
//! last SETTLED seq on this task (never the counter, which runs ahead of writes in flight), and
//! never below the client's `after`, so a seq reserved but not yet written reaches the member live
//! once it lands, and nothing the client has comes twice. A join that fails leaves nothing behind:
//! no membership, no presence, no subscription. A room the connection is already in is answered
//! from memory, and so is a join into a room live on this task whose recent frames cover what it
//! asks for (every message above its `after`, or the latest page): its `joined` is put together
//! from the frames as delivered, with no store read and nothing serialised again; and a burst of
//! joins into a room new on this task reads the store once (the first; the others wait for it, then
//! answer from memory); when that first join is a catch-up, the read also takes the page below its
//! `after`, so the audience reconnecting behind it is answered from memory. A connection in
//! [`MAX_ROOMS_PER_CONNECTION`] rooms is refused `too_many_rooms`; a catch-up is cut at
//! [`MAX_JOIN_BYTES`] (the client pages the rest), and a frame read from the store is built on the
//! blocking pool, so a flood of joins never holds the workers that carry everyone else's acks.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use super::Hub;
use super::repair::GAP_WAIT;
use super::room::{MAX_ROOMS_PER_TASK, Member, Room, RoomState};
use crate::conn::{self, Conn};
use crate::protocol::{
    ChatMessage, DEFAULT_HISTORY, MAX_JOIN_BYTES, MAX_JOIN_CATCH_UP, MAX_JOINED_MEMBERS,
    MAX_ROOMS_PER_CONNECTION, Refusal, ServerFrame, User, validate_room,
};
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
/// Builds of the `joined` frame off the workers before the last one is built under the
/// room's lock (the room moved during each).
const BUILD_ATTEMPTS: usize = 3;

/// Keeps the first messages whose JSON fits in `max` bytes (at least one); true when any
/// were dropped.
fn truncate_to_bytes(messages: &mut Vec<ChatMessage>, max: usize) -> bool {
    let mut total = 0;
    let keep = messages
        .iter()
        .position(|m| {
            total += serde_json::to_vec(m).map_or(0, |v| v.len() + 1);
            total > max
        })
        .map_or(messages.len(), |i| i.max(1));
    let dropped = keep < messages.len();
    messages.truncate(keep);
    dropped
}

/// What a join hands the member, decided from what the room has settled.
#[derive(Clone, Copy)]
struct Plan {
    /// The member gets every message up to here now (in `joined` or from memory), the rest
    /// live.
    floor: u64,
    /// `joined` holds the page's messages up to here; settled ones in `(covered, floor]` come
    /// from the room's memory right after it.
    covered: u64,
    /// What the room had settled when this plan was made.
    settled: u64,
}

/// Who is in a room, as a `joined` frame carries it: everyone counted, at most
/// [`MAX_JOINED_MEMBERS`] of them listed (a crowd's newcomer gets a count, not 2,000 names).
#[derive(Clone)]
struct Present {
    online: usize,
    listed: Vec<User>,
}

/// Everything a `joined` frame needs, shareable with the blocking pool.
struct Joined {
    room: String,
    present: Present,
    messages: Vec<ChatMessage>,
    paging: bool,
}

impl Joined {
    /// The frame for `plan`: the page's messages up to `plan.covered` (they are oldest first).
    fn frame(&self, plan: &Plan) -> Bytes {
        let n = self.messages.partition_point(|m| m.seq <= plan.covered);
        conn::server_frame(&ServerFrame::Joined {
            room: &self.room,
            last_seq: plan.floor,
            online: self.present.online,
            members: &self.present.listed,
            messages: &self.messages[..n],
            has_more: self.paging,
        })
    }
}

/// What admitting a member found, for the work done outside the lock.
struct Admitted {
    /// The user's first connection in the room on this task: announce them.
    first_of_user: bool,
    /// Seqs reserved but not settled yet.
    gap: bool,
}

/// Under the room's lock, right after its `joined` frame: the settled frames above what that
/// frame held, then the member itself (it gets everything above `floor` live).
fn admit(st: &mut RoomState, conn: &Arc<Conn>, floor: u64, extra: Vec<(u64, Bytes)>) -> Admitted {
    for (_, frame) in extra {
        conn.push(frame);
    }
    st.members.push(Member {
        conn: Arc::clone(conn),
        floor,
    });
    let count = st.users.entry(conn.user.id).or_insert(0);
    *count += 1;
    Admitted {
        first_of_user: *count == 1,
        gap: st.has_gap(),
    }
}

impl Hub {
    /// Everyone present in the room across the tasks, listed up to [`MAX_JOINED_MEMBERS`].
    async fn present(self: &Arc<Self>, room_name: &str) -> Result<Present, Refusal> {
        let mut listed = self.fanout.presence(room_name).await?;
        let online = listed.len();
        listed.truncate(MAX_JOINED_MEMBERS);
        Ok(Present { online, listed })
    }

    /// Joins `conn` to `room` and queues the `joined` frame; with `after`, every message
    /// above it (up to the catch-up limits), else the latest page.
    pub async fn join(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        room_name: &str,
        after: Option<u64>,
    ) -> Result<(), Refusal> {
        validate_room(room_name)?;
        if !conn.add_room(room_name, MAX_ROOMS_PER_CONNECTION)? {
            return self.rejoin(conn, room_name).await;
        }
        let result = match self.clamp_after(room_name, after).await {
            Ok(after) => self.join_inner(conn, room_name, after).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            conn.remove_room(room_name);
            self.undo_join(conn, room_name).await;
        }
        result
    }

    /// A client's `after` is only its claim. Above every seq the room ever reserved (a data
    /// directory wiped, tables re-created, a client of another deployment, or a hostile one)
    /// it is taken as the room's counter: it then never moves where the room starts on this
    /// task, nor hides later messages from anyone, the member itself included. Within what
    /// the room is known to have reserved it costs no read.
    async fn clamp_after(
        self: &Arc<Self>,
        room_name: &str,
        after: Option<u64>,
    ) -> Result<Option<u64>, Refusal> {
        let Some(after) = after else {
            return Ok(None);
        };
        if let Some(room) = self.room(room_name)
            && after <= room.state.lock().horizon()
        {
            return Ok(Some(after));
        }
        Ok(Some(after.min(self.store.last_seq(room_name).await?)))
    }

    /// Seqs in `(after, started_at]` the page lacks: the room started on this task above
    /// them, so it never followed them here, and one may still be being written (a slow
    /// write on another task). Each is settled in the store now, as a repair settles an
    /// overdue seq: its message when it landed (added to the page), else a tombstone that
    /// makes the late write fail and its sender retry under a new seq, which this member
    /// then gets live. So a catch-up join misses nothing that is acked, whatever was in
    /// flight when it came.
    async fn settle_below_start(
        self: &Arc<Self>,
        room_name: &str,
        after: u64,
        started_at: u64,
        page: &mut HistoryPage,
    ) -> Result<(), Refusal> {
        // A page cut at its limit is checked up to its last message (the client pages on).
        let top = match page.messages.last() {
            Some(m) if page.has_more => m.seq.min(started_at),
            _ => started_at,
        };
        if top <= after {
            return Ok(());
        }
        let present: BTreeSet<u64> = page
            .messages
            .iter()
            .map(|m| m.seq)
            .chain(page.abandoned.iter().copied())
            .collect();
        let holes: Vec<u64> = (after + 1..=top)
            .filter(|s| !present.contains(s))
            .take(MAX_JOIN_CATCH_UP)
            .collect();
        if holes.is_empty() {
            return Ok(());
        }
        for seq in holes {
            match self.store.settle(room_name, seq).await? {
                Some(m) => page.messages.push(m),
                None => page.abandoned.push(seq),
            }
        }
        page.messages.sort_by_key(|m| m.seq);
        Ok(())
    }

    /// A repeated `join`: the room's settled seq and members, no messages and no store read
    /// (the connection already receives every message live), so repeating it costs little.
    async fn rejoin(self: &Arc<Self>, conn: &Arc<Conn>, room_name: &str) -> Result<(), Refusal> {
        let present = self.present(room_name).await?;
        let last_seq = self
            .room(room_name)
            .and_then(|r| r.state.lock().last_seq)
            .unwrap_or(0);
        conn.send(&ServerFrame::Joined {
            room: room_name,
            last_seq,
            online: present.online,
            members: &present.listed,
            messages: &[],
            has_more: false,
        });
        Ok(())
    }

    /// A first join failed: take back the presence it added and drop the room when nobody
    /// else is in it (unsubscribing, and forgetting anything it held).
    async fn undo_join(self: &Arc<Self>, conn: &Arc<Conn>, room_name: &str) {
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

    /// A join into a room this task already follows, whose memory holds what the join asks
    /// for: with `after`, every settled message above it; without, the latest page (the last
    /// [`DEFAULT_HISTORY`] messages, or all of them when memory reaches the room's first seq).
    /// The `joined` frame is put together from those messages' frames as they were delivered
    /// (cut at the catch-up limits, as the store path cuts), with no store read and nothing
    /// serialised again, so a crowd arriving at once, or a flood of joins, costs little.
    /// False when memory cannot answer (the store path then does).
    async fn join_from_memory(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        room_name: &str,
        after: Option<u64>,
        present: &Present,
    ) -> bool {
        let after_seq = after.unwrap_or(0);
        let Some(room) = self.room(room_name) else {
            return false;
        };
        for _ in 0..BUILD_ATTEMPTS {
            let (settled, mut frames) = {
                let st = room.state.lock();
                let Some(settled) = st.last_seq else {
                    return false;
                };
                if st.closed {
                    return false;
                }
                let picked = match after {
                    Some(after) => st.settled_since(after, settled.max(after)),
                    None => st.latest(DEFAULT_HISTORY),
                };
                let Some(frames) = picked else {
                    return false;
                };
                (settled, frames)
            };
            // The catch-up limits, as on the store path: the client pages the rest.
            let mut total = 0;
            let cut = frames
                .iter()
                .take(MAX_JOIN_CATCH_UP)
                .position(|(_, f)| {
                    total += f.len();
                    total > MAX_JOIN_BYTES
                })
                .map(|i| i.max(1))
                .or((frames.len() > MAX_JOIN_CATCH_UP).then_some(MAX_JOIN_CATCH_UP));
            let floor = match cut {
                Some(keep) => {
                    frames.truncate(keep);
                    frames
                        .last()
                        .map_or(settled, |(seq, _)| *seq)
                        .max(after_seq)
                }
                None => settled.max(after_seq),
            };
            let frames: Vec<Bytes> = frames.into_iter().map(|(_, f)| f).collect();
            let paging = cut.is_some();
            let Some(frame) = conn::joined_from_frames(
                room_name,
                floor,
                present.online,
                &present.listed,
                &frames,
                paging,
            ) else {
                return false;
            };
            let admitted = {
                let mut st = room.state.lock();
                if st.closed {
                    return false;
                }
                if st.last_seq != Some(settled) {
                    // The room moved while the frame was put together.
                    continue;
                }
                conn.push(frame);
                admit(&mut st, conn, floor, Vec::new())
            };
            self.metrics.joins_from_memory.inc();
            self.admitted(&room, conn, admitted, present.online).await;
            return true;
        }
        false
    }

    /// What follows a member's admission, outside the room's lock.
    async fn admitted(
        self: &Arc<Self>,
        room: &Arc<Room>,
        conn: &Arc<Conn>,
        admitted: Admitted,
        online: usize,
    ) {
        if admitted.gap {
            // Seqs reserved but not settled yet: deliver them as they land or settle.
            self.repair(room, GAP_WAIT, GAP_WAIT * 2);
        }
        self.metrics.joins.inc();
        self.record_connection(conn);
        if admitted.first_of_user {
            self.announce(room, &conn.user, online.max(1), true).await;
        }
    }

    async fn join_inner(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        room_name: &str,
        after: Option<u64>,
    ) -> Result<(), Refusal> {
        if self.room(room_name).is_none() && self.rooms.read().len() >= MAX_ROOMS_PER_TASK {
            return Err(Refusal::new(
                crate::protocol::ErrorCode::Unavailable,
                "this server follows too many rooms right now; retry in a few seconds",
            ));
        }
        self.fanout.presence_add(room_name, &conn.user).await?;
        let present = self.present(room_name).await?;
        if self
            .join_from_memory(conn, room_name, after, &present)
            .await
        {
            return Ok(());
        }
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
        let after_seq = after.unwrap_or(0);
        // A burst of joins into a room new on this task (a drained task's audience arriving,
        // or a flood) reads the store once: the others wait, then answer from memory.
        let room = self.room_or_create(room_name);
        let _first_load = if room.state.lock().last_seq.is_none() {
            let guard = room.first_load.lock().await;
            if self
                .join_from_memory(conn, room_name, after, &present)
                .await
            {
                return Ok(());
            }
            Some(guard)
        } else {
            None
        };
        'read: for _ in 0..JOIN_ATTEMPTS {
            let room = self.room_or_create(room_name);
            // What the room had settled before the read: the read holds every message up to it.
            let settled_before = room.state.lock().last_seq;
            // A room that starts here with a catch-up join also remembers the page below the
            // client's `after` (one read, a page longer): the members reconnecting after it,
            // whose `after` is a little lower, and newcomers asking for the latest page are
            // then answered from memory, not each by the store (a drained or restarted task's
            // audience arriving at once).
            let below = match (settled_before, after) {
                (None, Some(a)) => a.min(DEFAULT_HISTORY as u64),
                _ => 0,
            };
            let read = HistoryQuery {
                after: query.after.map(|a| a - below),
                limit: query.limit + below as usize,
                ..query
            };
            let reserved = self.store.last_seq(room_name).await?;
            let mut page = self.store.history(room_name, read).await?;
            if settled_before.is_some() && after.is_some() {
                let started_at = room.state.lock().started_at;
                self.settle_below_start(room_name, after_seq, started_at, &mut page)
                    .await?;
            }
            // Up to which seq the page is known to hold every message.
            let covered_by_page = {
                let mut st = room.state.lock();
                if st.closed {
                    continue;
                }
                let covered = match settled_before {
                    Some(before) => before,
                    None => {
                        // The room starts here on this task: below the page (or the client's
                        // `after`), then whatever the page holds, in order.
                        let start = read.after.unwrap_or_else(|| {
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
                covered
            };
            // The client's page: above its `after`, within the catch-up limits.
            if below > 0 {
                page.messages.retain(|m| m.seq > after_seq);
                if page.messages.len() > MAX_JOIN_CATCH_UP {
                    page.messages.truncate(MAX_JOIN_CATCH_UP);
                    page.has_more = true;
                }
            }
            if after.is_some() && truncate_to_bytes(&mut page.messages, MAX_JOIN_BYTES) {
                page.has_more = true;
            }
            let paging = page.has_more && after.is_some();
            let page_last = page.messages.last().map(|m| m.seq);
            let plan_for = |settled: u64| {
                let floor = if paging {
                    // More than a join's worth: the client pages the rest over REST.
                    page_last.unwrap_or(settled).min(settled)
                } else {
                    settled
                }
                .max(after_seq);
                // Never below `after`: the client has everything up to it, and a room this
                // task had settled below it may have moved past it during the reads.
                let covered = if paging {
                    floor
                } else {
                    covered_by_page.min(floor)
                }
                .max(after_seq);
                Plan {
                    floor,
                    covered,
                    settled,
                }
            };
            let joined = Arc::new(Joined {
                room: room_name.to_string(),
                present: present.clone(),
                messages: page.messages,
                paging,
            });
            for attempt in 1..=BUILD_ATTEMPTS {
                let last = attempt == BUILD_ATTEMPTS;
                // Built off the workers; on the last attempt, under the lock (it cannot move).
                let built = if last {
                    None
                } else {
                    let settled = room.state.lock().last_seq.unwrap_or(0);
                    let plan = plan_for(settled);
                    let j = Arc::clone(&joined);
                    let frame = match tokio::task::spawn_blocking(move || j.frame(&plan)).await {
                        Ok(frame) => frame,
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    };
                    Some((plan, frame))
                };
                let admitted;
                {
                    let mut st = room.state.lock();
                    if st.closed {
                        continue 'read;
                    }
                    let settled = st.last_seq.unwrap_or(0);
                    let (plan, frame) = match built {
                        Some((plan, frame)) if plan.settled == settled => (plan, frame),
                        // The room moved while the frame was built: build it again.
                        Some(_) => continue,
                        None => {
                            let plan = plan_for(settled);
                            let frame = joined.frame(&plan);
                            (plan, frame)
                        }
                    };
                    // Settled after the read began: from memory, or read again.
                    let Some(extra) = st.settled_since(plan.covered, plan.floor) else {
                        continue 'read;
                    };
                    conn.push(frame);
                    admitted = admit(&mut st, conn, plan.floor, extra);
                }
                self.admitted(&room, conn, admitted, present.online).await;
                return Ok(());
            }
        }
        Err(Refusal::new(
            crate::protocol::ErrorCode::Unavailable,
            "the room is too busy to join right now; retry",
        ))
    }
}
