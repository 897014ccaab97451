//! Publishing this task's messages to the other tasks without holding anyone up. Each room
//! has a lane, a bounded queue drained by its own task, so a room's messages are published
//! in seq order while the commit loop never waits on Redis: a wedged or slow publish delays
//! only its own room's later publishes. A lane that stays idle goes away. A message that
//! cannot be queued (a lane full behind a dead link) is not lost: the other tasks find it in
//! the store when their audit or a later message shows the gap.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::Hub;
use crate::fanout::RoomEvent;

/// Events queued per room before new ones are dropped (and left to repair).
const LANE_DEPTH: usize = 1024;
/// A lane with nothing to publish for this long ends.
const LANE_IDLE: Duration = Duration::from_secs(30);

/// The lanes by room.
#[derive(Default)]
pub(super) struct Lanes {
    by_room: Mutex<HashMap<String, mpsc::Sender<RoomEvent>>>,
}

impl Hub {
    /// Queues `event` for publishing on `room`'s lane (started when absent). Never waits.
    pub(super) fn publish_in_order(self: &Arc<Self>, room: &str, event: RoomEvent) {
        let mut lanes = self.lanes.by_room.lock();
        let event = match lanes.get(room) {
            Some(tx) => match tx.try_send(event) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => {
                    tracing::warn!("Publish lane full; other tasks will read the store instead");
                    return;
                }
                Err(TrySendError::Closed(event)) => event,
            },
            None => event,
        };
        let (tx, rx) = mpsc::channel(LANE_DEPTH);
        // A fresh channel has room for one.
        let _ = tx.try_send(event);
        lanes.insert(room.to_string(), tx);
        self.background
            .spawn(lane(Arc::clone(self), room.to_string(), rx));
    }
}

/// Publishes a room's queued events in order; ends when idle for [`LANE_IDLE`].
async fn lane(hub: Arc<Hub>, room: String, mut rx: mpsc::Receiver<RoomEvent>) {
    loop {
        match tokio::time::timeout(LANE_IDLE, rx.recv()).await {
            Ok(Some(event)) => {
                let started = std::time::Instant::now();
                if let Err(e) = hub.fanout.publish(&room, &event).await {
                    // Other tasks catch up from the store when their link returns.
                    tracing::debug!(error = %e, "Could not publish message");
                }
                hub.metrics
                    .fanout_publish_seconds
                    .observe(started.elapsed().as_secs_f64());
            }
            Ok(None) => return,
            Err(_) => {
                let mut lanes = hub.lanes.by_room.lock();
                // Senders queue under this lock: with nothing queued, closing loses nothing.
                if rx.is_empty() {
                    lanes.remove(&room);
                    return;
                }
            }
        }
    }
}
