//! Gap repair, in one place. A room has a gap when a reserved seq is not settled yet: an
//! early arrival waits for it, the room's counter is ahead of what was delivered, or the
//! fanout link came back after a break. Repair reads the store after the room's last settled
//! seq (messages, and seqs marked abandoned) until nothing is missing. A seq still missing
//! [`HOLE_TIMEOUT`] after it was first seen missing is settled in the store (`Store::settle`):
//! its message if it landed meanwhile, else a tombstone that no late write can pass. Nothing
//! is ever skipped on a timer alone, so a slow write is never lost, however slow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};

use super::Hub;
use super::room::Room;
use crate::conn;
use crate::protocol::{MAX_JOIN_CATCH_UP, ServerFrame};
use crate::store::HistoryQuery;

/// How long an out-of-order message waits for the missing seq before the hub asks the store.
pub(super) const GAP_WAIT: Duration = Duration::from_millis(150);
/// How long a reserved seq may stay missing before the hub settles it in the store. Not a
/// guess that the write failed: settling is atomic, a late write then fails and its sender
/// retries (the message gets a new seq).
pub(super) const HOLE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a fanout reconnect the first read is immediate; retries start this soon.
pub(super) const RESYNC_RETRY: Duration = Duration::from_millis(20);
/// Longest pause between two catch-up reads.
const MAX_RETRY: Duration = Duration::from_secs(1);
/// How often every room compares its counter with what it delivered (a publish lost with a
/// killed task, or a seq reserved by one, shows up here).
pub(super) const AUDIT_EVERY: Duration = Duration::from_secs(2);
/// Most overdue seqs settled in one pass.
const SETTLE_BATCH: usize = 32;

/// A room still has a gap after a catch-up read.
#[derive(Debug)]
struct GapLeft;

impl Hub {
    /// Repairs `room` in the background unless a repair is already running: waits `first`,
    /// then reads the store until no gap is left, waiting `retry` (doubling, at most
    /// [`MAX_RETRY`]) between reads.
    pub(super) fn repair(self: &Arc<Self>, room: &Arc<Room>, first: Duration, retry: Duration) {
        {
            let mut st = room.state.lock();
            if st.repairing || st.closed {
                return;
            }
            st.repairing = true;
        }
        let hub = Arc::clone(self);
        let room = Arc::clone(room);
        self.background.spawn(async move {
            if !first.is_zero() {
                tokio::time::sleep(first).await;
            }
            let backoff = ExponentialBuilder::default()
                .with_min_delay(retry)
                .with_max_delay(MAX_RETRY)
                .with_factor(2.0)
                .without_max_times();
            let read = || async {
                if hub.catch_up(&room).await {
                    Ok(())
                } else {
                    Err(GapLeft)
                }
            };
            // Never gives up: every error is retried, so the result is always Ok.
            let _ = read.retry(backoff).await;
        });
    }

    /// Reads the store after the room's last settled seq, delivers what it finds, and settles
    /// seqs missing for too long. Returns true when no gap is left (and clears `repairing`).
    pub(super) async fn catch_up(self: &Arc<Self>, room: &Arc<Room>) -> bool {
        loop {
            let Some(last) = room.state.lock().last_seq else {
                room.state.lock().repairing = false;
                return true;
            };
            let query = HistoryQuery {
                before: None,
                after: Some(last),
                limit: MAX_JOIN_CATCH_UP,
            };
            let page = match self.store.history(&room.name, query).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "Catch-up read failed; retrying");
                    return false;
                }
            };
            let overdue = {
                let mut st = room.state.lock();
                if st.closed {
                    st.repairing = false;
                    return true;
                }
                let mut n = 0;
                for m in &page.messages {
                    n += st.offer(m.seq, conn::server_frame(&ServerFrame::Message(m)));
                }
                for &seq in &page.abandoned {
                    n += st.abandoned(seq);
                }
                self.metrics.frames_delivered.inc_by(n);
                if page.has_more {
                    continue;
                }
                st.overdue(Instant::now(), HOLE_TIMEOUT)
            };
            for seq in overdue.into_iter().take(SETTLE_BATCH) {
                let settled = match self.store.settle(&room.name, seq).await {
                    Ok(settled) => settled,
                    Err(e) => {
                        tracing::warn!(error = %e, seq, "Could not settle a missing seq; retrying");
                        return false;
                    }
                };
                let mut st = room.state.lock();
                let n = match settled {
                    Some(m) => st.offer(m.seq, conn::server_frame(&ServerFrame::Message(&m))),
                    None => {
                        tracing::info!(seq, "Reserved seq settled as abandoned");
                        st.abandoned(seq)
                    }
                };
                self.metrics.frames_delivered.inc_by(n);
            }
            let mut st = room.state.lock();
            let done = !st.has_gap() || st.closed;
            if done {
                st.repairing = false;
            }
            return done;
        }
    }

    /// The fanout link came back: every room may have missed events; repair them all.
    pub(super) fn resync_all(self: &Arc<Self>) {
        let rooms: Vec<Arc<Room>> = self.rooms.read().values().cloned().collect();
        self.resync(rooms);
    }

    /// Repairs `names` (rooms gone meanwhile are skipped).
    pub(super) fn resync_named(self: &Arc<Self>, names: &[String]) {
        let rooms: Vec<Arc<Room>> = {
            let map = self.rooms.read();
            names.iter().filter_map(|n| map.get(n).cloned()).collect()
        };
        self.resync(rooms);
    }

    fn resync(self: &Arc<Self>, rooms: Vec<Arc<Room>>) {
        for room in rooms {
            self.repair(&room, Duration::ZERO, RESYNC_RETRY);
        }
    }

    /// Compares every room's counter with what it settled, and repairs rooms that are behind.
    pub(super) fn spawn_audit(self: &Arc<Self>) {
        let hub = Arc::clone(self);
        self.background.spawn(async move {
            let mut tick = tokio::time::interval(AUDIT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let rooms: Vec<Arc<Room>> = hub
                    .rooms
                    .read()
                    .values()
                    .filter(|r| !r.state.lock().repairing)
                    .cloned()
                    .collect();
                if rooms.is_empty() {
                    continue;
                }
                // One batched read of every counter, not one call per room.
                let names: Vec<String> = rooms.iter().map(|r| r.name.clone()).collect();
                let Ok(counters) = hub.store.last_seqs(&names).await else {
                    continue;
                };
                for (room, reserved) in rooms.iter().zip(counters) {
                    let behind = {
                        let mut st = room.state.lock();
                        st.reserved(reserved);
                        st.has_gap()
                    };
                    if behind {
                        hub.repair(room, Duration::ZERO, GAP_WAIT);
                    }
                }
            }
        });
    }
}
