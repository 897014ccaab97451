//! Gap repair, in one place: when a room's seq stream has a gap (an early arrival waits for a
//! missing seq) or the fanout link came back (events may have been missed), read the store
//! after the room's last delivered seq until nothing is missing, backing off between reads.
//! A seq still missing after [`HOLE_TIMEOUT`] counts as never written and is skipped.

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
/// After this long a seq still missing from the store counts as never written (a reserved seq
/// whose write failed) and is skipped.
const HOLE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a fanout reconnect the first read is immediate; retries start this soon.
pub(super) const RESYNC_RETRY: Duration = Duration::from_millis(20);
/// Longest pause between two catch-up reads.
const MAX_RETRY: Duration = Duration::from_secs(1);

/// A room still has a gap after a catch-up read.
#[derive(Debug)]
struct GapLeft;

impl Hub {
    /// Repairs `room` in the background: waits `first`, then reads the store until no gap is
    /// left, waiting `retry` (doubling, at most [`MAX_RETRY`]) between reads. The caller has
    /// set the room's `repairing` flag; the repair clears it when done.
    pub(super) fn spawn_repair(&self, room: Arc<Room>, first: Duration, retry: Duration) {
        let Some(hub) = self.me.upgrade() else { return };
        tokio::spawn(async move {
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

    /// Reads the store after the room's last delivered seq and delivers what it finds.
    /// Returns true when the room has no gap left (and clears `repairing` and the gap).
    async fn catch_up(&self, room: &Arc<Room>) -> bool {
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
            let mut st = room.state.lock();
            if st.closed {
                st.repairing = false;
                return true;
            }
            let skip_holes = st.gap_since.is_some_and(|t| t.elapsed() >= HOLE_TIMEOUT);
            let mut n = 0;
            for m in &page.messages {
                let frame = conn::server_frame(&ServerFrame::Message(m));
                n += st.offer(m.seq, frame, skip_holes);
            }
            if skip_holes {
                n += st.drain_pending(true);
            }
            self.metrics.frames_delivered.inc_by(n);
            if page.has_more {
                continue;
            }
            let done = st.pending.is_empty();
            if done {
                st.repairing = false;
                st.gap_since = None;
            }
            return done;
        }
    }

    /// The fanout link came back: every room may have missed events; repair them all.
    pub(super) fn resync_all(&self) {
        let rooms: Vec<Arc<Room>> = self.rooms.read().values().cloned().collect();
        self.resync(rooms);
    }

    /// Repairs `names` (rooms gone meanwhile are skipped).
    pub(super) fn resync_named(&self, names: &[String]) {
        let rooms: Vec<Arc<Room>> = {
            let map = self.rooms.read();
            names.iter().filter_map(|n| map.get(n).cloned()).collect()
        };
        self.resync(rooms);
    }

    fn resync(&self, rooms: Vec<Arc<Room>>) {
        for room in rooms {
            let start = {
                let mut st = room.state.lock();
                let start = !st.repairing;
                st.repairing = true;
                if st.gap_since.is_none() {
                    st.gap_since = Some(Instant::now());
                }
                start
            };
            if start {
                self.spawn_repair(room, Duration::ZERO, RESYNC_RETRY);
            }
        }
    }
}
