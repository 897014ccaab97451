//! The live-connection registry's writes, in batches. The hub hands this a connection's record
//! whenever its rooms change and its removal when it closes; every [`FLUSH_EVERY`] a writer
//! sends what queued as one `write_connections` call (on DynamoDB, `BatchWriteItem`s of 25),
//! the latest change per connection only. Flushes run one after another, so a removal never
//! overtakes the write it follows, and a failed flush is queued again unless something newer
//! about the same connection came meanwhile. A crowd arriving, or a rebalance moving
//! thousands, costs the store a few requests a second instead of one per connection, and no
//! join ever waits for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::background::Background;
use crate::store::{ConnectionChange, ConnectionRecord, Store};

/// How often queued changes are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Queue {
    /// Per connection, the latest change not written yet.
    changes: HashMap<String, ConnectionChange>,
    /// The number of the flush that will take the queue next.
    next: u64,
}

pub(super) struct Recorder {
    store: Arc<dyn Store>,
    queue: Mutex<Queue>,
    /// One flush at a time, in order.
    flushing: tokio::sync::Mutex<()>,
    /// Flushes done: every flush numbered below this has finished.
    done: watch::Sender<u64>,
}

impl Recorder {
    /// A recorder writing to `store`, with its writer running under `background` (the
    /// drain's last [`Recorder::flush`] writes what queued after the writer's last turn).
    pub(super) fn start(store: Arc<dyn Store>, background: &Background) -> Arc<Self> {
        let recorder = Arc::new(Recorder {
            store,
            queue: Mutex::default(),
            flushing: tokio::sync::Mutex::default(),
            done: watch::Sender::new(0),
        });
        let writer = Arc::clone(&recorder);
        background.spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                writer.flush().await;
            }
        });
        recorder
    }

    /// Queues the connection's record (replacing whatever about it is queued).
    pub(super) fn put(&self, record: ConnectionRecord) {
        self.queue
            .lock()
            .changes
            .insert(record.conn_id.clone(), ConnectionChange::Put(record));
    }

    /// Queues the connection's removal; returns once a flush that took it has finished.
    pub(super) async fn remove(&self, conn_id: &str) {
        let flush = {
            let mut q = self.queue.lock();
            q.changes.insert(
                conn_id.to_string(),
                ConnectionChange::Remove(conn_id.to_string()),
            );
            q.next
        };
        let mut done = self.done.subscribe();
        // The sender lives as long as `self`.
        let _ = done.wait_for(|&n| n > flush).await;
    }

    /// Writes everything queued now (after any flush under way).
    pub(super) async fn flush(&self) {
        let _one_at_a_time = self.flushing.lock().await;
        let (changes, number) = {
            let mut q = self.queue.lock();
            let number = q.next;
            q.next += 1;
            (std::mem::take(&mut q.changes), number)
        };
        if !changes.is_empty() {
            let changes: Vec<ConnectionChange> = changes.into_values().collect();
            if let Err(e) = self.store.write_connections(&changes).await {
                tracing::debug!(error = %e, n = changes.len(), "Could not write connection records");
                let mut q = self.queue.lock();
                for change in changes {
                    q.changes
                        .entry(change.conn_id().to_string())
                        .or_insert(change);
                }
            }
        }
        self.done.send_replace(number + 1);
    }
}
