//! Read receipts in the hub: each user's read position per room, coalesced so a busy room does
//! not multiply traffic. A `read` frame only raises the position in memory; every
//! [`RECEIPTS_FLUSH_MS`] the task sends each room's moved positions as ONE `receipts` frame to
//! its members and ONE fanout event to the other tasks (which merge them and pass the frame
//! on); at most every [`READ_STORE_SECS`] it writes the positions that moved to the store, in
//! one batched call per room (and all the rest while draining). A
//! room's stored positions are read once, when a member first joins it on this task
//! (`send_receipts`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Deserialize;

use super::Hub;
use crate::conn::Conn;
use crate::fanout::{EventKind, RoomEvent};
use crate::protocol::{
    ErrorCode, READ_STORE_SECS, RECEIPTS_FLUSH_MS, Refusal, ServerFrame, validate_room,
};

/// One room's read positions on this task.
#[derive(Default)]
struct RoomReceipts {
    /// The store's positions were merged in.
    loaded: bool,
    /// user id -> highest seq seen (local reads and other tasks' receipts, merged).
    seen: HashMap<u64, u64>,
    /// Positions raised by this task's members since the last flush.
    moved: HashMap<u64, u64>,
    /// Users whose position this task raised and has not stored yet.
    unstored: HashMap<u64, ()>,
    /// When this task last stored the room's positions (one pass stores all that moved).
    stored_at: Option<Instant>,
}

/// The read positions of the rooms this task serves.
#[derive(Default)]
pub(super) struct Receipts {
    rooms: Mutex<HashMap<String, RoomReceipts>>,
}

/// What one flush of a room sends and stores.
struct Flush {
    room: String,
    moved: Vec<(u64, u64)>,
    store: Vec<(u64, u64)>,
}

impl Receipts {
    /// Raises `user_id`'s position in `room` to `seq`; `false` when it was not higher.
    fn raise(&self, room: &str, user_id: u64, seq: u64) -> bool {
        let mut rooms = self.rooms.lock();
        let r = rooms.entry(room.to_string()).or_default();
        let known = r.seen.get(&user_id).copied().unwrap_or(0);
        if seq <= known {
            return false;
        }
        r.seen.insert(user_id, seq);
        r.moved.insert(user_id, seq);
        r.unstored.insert(user_id, ());
        true
    }

    /// Positions from elsewhere (another task, the store): kept where higher.
    fn merge(&self, room: &str, seen: &[(u64, u64)]) {
        let mut rooms = self.rooms.lock();
        let r = rooms.entry(room.to_string()).or_default();
        for &(user, seq) in seen {
            let known = r.seen.entry(user).or_insert(0);
            *known = (*known).max(seq);
        }
    }

    /// Takes what each room has to send and store now.
    fn take(&self, now: Instant, live: &dyn Fn(&str) -> bool) -> Vec<Flush> {
        let every = Duration::from_secs(READ_STORE_SECS);
        let mut rooms = self.rooms.lock();
        // A room no longer served here, with nothing left to store, is forgotten.
        rooms.retain(|name, r| live(name) || !r.unstored.is_empty());
        let mut out = Vec::new();
        for (name, r) in rooms.iter_mut() {
            let moved: Vec<(u64, u64)> = r.moved.drain().collect();
            // One store pass per room per interval, with every position that moved: each user
            // at most once per interval, in as few batched writes as the users need.
            let due = r
                .stored_at
                .is_none_or(|at| now.saturating_duration_since(at) >= every);
            let mut store = Vec::new();
            if due && !r.unstored.is_empty() {
                r.stored_at = Some(now);
                store = r
                    .unstored
                    .drain()
                    .map(|(u, ())| (u, r.seen.get(&u).copied().unwrap_or(0)))
                    .collect();
            }
            if !moved.is_empty() || !store.is_empty() {
                out.push(Flush {
                    room: name.clone(),
                    moved,
                    store,
                });
            }
        }
        out
    }

    /// Every room's positions raised here and not stored yet (for a draining task).
    fn take_unstored(&self) -> Vec<(String, Vec<(u64, u64)>)> {
        let mut rooms = self.rooms.lock();
        rooms
            .iter_mut()
            .filter(|(_, r)| !r.unstored.is_empty())
            .map(|(name, r)| {
                let users: Vec<(u64, u64)> = r
                    .unstored
                    .drain()
                    .map(|(u, ())| (u, r.seen.get(&u).copied().unwrap_or(0)))
                    .collect();
                (name.clone(), users)
            })
            .collect()
    }

    /// Every known position of `room`, or `None` when the store's are not merged in yet.
    fn all(&self, room: &str) -> Option<Vec<(u64, u64)>> {
        let rooms = self.rooms.lock();
        let r = rooms.get(room).filter(|r| r.loaded)?;
        Some(r.seen.iter().map(|(&u, &s)| (u, s)).collect())
    }

    fn loaded(&self, room: &str, stored: &[(u64, u64)]) {
        self.merge(room, stored);
        if let Some(r) = self.rooms.lock().get_mut(room) {
            r.loaded = true;
        }
    }
}

impl Hub {
    /// A member's `read`: its user has seen `room` up to `seq`. Raises the position (never
    /// lowers it); the flush sends and stores it.
    pub fn read(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        room_name: &str,
        seq: u64,
    ) -> Result<(), Refusal> {
        validate_room(room_name)?;
        if !conn.is_in(room_name) {
            return Err(Refusal::new(
                ErrorCode::NotJoined,
                format!("join room {room_name:?} before marking it read"),
            ));
        }
        let last = self
            .room(room_name)
            .and_then(|r| r.state.lock().last_seq)
            .unwrap_or(0);
        if seq > last {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!("seq {seq} is past the room's last message ({last})"),
            ));
        }
        self.receipts.raise(room_name, conn.user.id, seq);
        Ok(())
    }

    /// [`Hub::send_receipts`] in the background: a slow store never holds up the
    /// connection's next frames.
    pub fn send_receipts_soon(self: &Arc<Self>, conn: &Arc<Conn>, room_name: String) {
        let (hub, conn) = (Arc::clone(self), Arc::clone(conn));
        self.background
            .spawn(async move { hub.send_receipts(&conn, &room_name).await });
    }

    /// Sends `conn` every known read position of the room it just joined (reading the
    /// store's once per room on this task).
    pub async fn send_receipts(self: &Arc<Self>, conn: &Arc<Conn>, room_name: &str) {
        let seen = match self.receipts.all(room_name) {
            Some(seen) => seen,
            None => match self.store.read_positions(room_name).await {
                Ok(stored) => {
                    self.receipts.loaded(room_name, &stored);
                    self.receipts.all(room_name).unwrap_or_default()
                }
                Err(e) => {
                    tracing::debug!(error = %e, room = room_name, "Could not read read positions");
                    return;
                }
            },
        };
        if !seen.is_empty() {
            conn.send(&ServerFrame::Receipts {
                room: room_name,
                seen: &seen,
            });
        }
    }

    /// Receipts from another task: merge them, and pass the frame to the local members.
    pub(super) fn deliver_receipts(self: &Arc<Self>, room_name: &str, json: &[u8]) {
        #[derive(Deserialize)]
        struct Receipts {
            seen: Vec<(u64, u64)>,
        }
        match serde_json::from_slice::<Receipts>(json) {
            Ok(r) => self.receipts.merge(room_name, &r.seen),
            Err(e) => {
                tracing::warn!(error = %e, room = room_name, "A receipts event could not be read")
            }
        }
    }

    /// Every [`RECEIPTS_FLUSH_MS`]: each room's moved positions to its members here and on
    /// the other tasks, and the due ones to the store.
    pub(super) fn spawn_receipts(self: &Arc<Self>) {
        let hub = Arc::clone(self);
        self.background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(RECEIPTS_FLUSH_MS));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let live = |room: &str| hub.room(room).is_some();
                for flush in hub.receipts.take(Instant::now(), &live) {
                    hub.flush_receipts(flush).await;
                }
            }
        });
    }

    /// While draining: stores every position raised here and not stored yet, so a restart
    /// loses none.
    pub(super) async fn store_all_receipts(self: &Arc<Self>) {
        for (room, seen) in self.receipts.take_unstored() {
            if let Err(e) = self.store.put_read_positions(&room, &seen).await {
                tracing::warn!(error = %e, room, "Could not store read positions while draining");
            }
        }
    }

    async fn flush_receipts(self: &Arc<Self>, flush: Flush) {
        if !flush.moved.is_empty() {
            let json = ServerFrame::Receipts {
                room: &flush.room,
                seen: &flush.moved,
            }
            .to_json();
            let event = RoomEvent {
                kind: EventKind::Receipts,
                json,
            };
            self.deliver_local(&flush.room, &event);
            if let Err(e) = self.fanout.publish(&flush.room, &event).await {
                tracing::debug!(error = %e, "Could not publish receipts");
            }
        }
        if !flush.store.is_empty()
            && let Err(e) = self
                .store
                .put_read_positions(&flush.room, &flush.store)
                .await
        {
            tracing::debug!(error = %e, room = flush.room, "Could not store read positions");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_only_rise_and_are_sent_once_per_flush() {
        let r = Receipts::default();
        let t0 = Instant::now();
        let live = |_: &str| true;
        assert!(r.raise("a", 1, 5));
        assert!(r.raise("a", 1, 7));
        assert!(!r.raise("a", 1, 6), "never lowered");
        assert!(r.raise("a", 2, 3));
        let mut flush = r.take(t0, &live);
        assert_eq!(flush.len(), 1);
        flush[0].moved.sort_unstable();
        assert_eq!(
            flush[0].moved,
            vec![(1, 7), (2, 3)],
            "coalesced: one entry per user"
        );
        flush[0].store.sort_unstable();
        assert_eq!(flush[0].store, vec![(1, 7), (2, 3)]);
        assert!(r.take(t0, &live).is_empty(), "nothing moved since");
    }

    #[test]
    fn a_user_is_stored_at_most_once_per_interval() {
        let r = Receipts::default();
        let t0 = Instant::now();
        let live = |_: &str| true;
        r.raise("a", 1, 1);
        assert_eq!(r.take(t0, &live)[0].store, vec![(1, 1)]);
        r.raise("a", 1, 2);
        let soon = r.take(t0 + Duration::from_secs(1), &live);
        assert_eq!(soon[0].moved, vec![(1, 2)], "sent at once");
        assert!(
            soon[0].store.is_empty(),
            "not stored again within the interval"
        );
        let later = r.take(t0 + Duration::from_secs(READ_STORE_SECS), &live);
        assert_eq!(
            later[0].store,
            vec![(1, 2)],
            "stored once the interval passed"
        );
    }

    #[test]
    fn merged_positions_are_known_but_not_resent_and_rooms_gone_are_forgotten() {
        let r = Receipts::default();
        let t0 = Instant::now();
        r.merge("a", &[(3, 9)]);
        r.loaded("a", &[(4, 2), (3, 1)]);
        let mut all = r.all("a").unwrap_or_default();
        all.sort_unstable();
        assert_eq!(all, vec![(3, 9), (4, 2)]);
        assert!(r.take(t0, &|_: &str| true).is_empty());
        assert!(r.take(t0, &|_: &str| false).is_empty());
        assert_eq!(r.all("a"), None, "forgotten once the room is gone");
    }
}
