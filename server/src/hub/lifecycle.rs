//! The hub's life around its rooms: the heartbeat (pings every connection and reports the live
//! ones to the store) and the drain (tell every connection to reconnect, wait for their tasks
//! to end, finish pending sends, flush).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Hub;
use crate::conn::{self, Conn};
use crate::protocol::{ServerFrame, close};

/// How often live connections are reported to the store (and pinged, at most).
pub const HEARTBEAT: Duration = Duration::from_secs(25);
/// Longest a drain waits for connections to go after the last `reconnect`.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

impl Hub {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Runs a connection's task; the drain waits for every such task to end.
    pub fn spawn_connection<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Pings every connection each `ping_every` (answers count as activity) and reports the
    /// live ones to the store each [`HEARTBEAT`].
    pub(super) fn spawn_heartbeat(self: &Arc<Self>) {
        let hub = Arc::clone(self);
        let ping_every = self.ping_every;
        self.background.spawn(async move {
            let ping = conn::ping_frame();
            let mut tick = tokio::time::interval(ping_every.min(HEARTBEAT));
            tick.tick().await;
            let mut last_touch = tokio::time::Instant::now();
            loop {
                tick.tick().await;
                let conns = hub.live_connections();
                for c in &conns {
                    c.push(ping.clone());
                }
                if last_touch.elapsed() + ping_every / 2 < HEARTBEAT {
                    continue;
                }
                last_touch = tokio::time::Instant::now();
                // Only connections that joined a room have a record.
                let keys: Vec<String> = {
                    let recorded = hub.records.lock();
                    conns
                        .iter()
                        .filter(|c| recorded.contains_key(&c.id))
                        .map(|c| c.key.clone())
                        .collect()
                };
                if !keys.is_empty()
                    && let Err(e) = hub.store.touch_connections(&keys).await
                {
                    tracing::debug!(error = %e, "Connection heartbeat failed");
                }
                hub.metrics
                    .fanout_link_up
                    .set(i64::from(hub.fanout.is_ready()));
            }
        });
    }

    fn live_connections(&self) -> Vec<Arc<Conn>> {
        self.conns.lock().values().cloned().collect()
    }

    /// Drains the task: refuses new connections, sends every connection `reconnect` then a
    /// 1012 close, spread evenly over `window`, waits for their tasks to end, finishes pending
    /// sends and flushes the store.
    pub async fn drain(self: &Arc<Self>, window: Duration) {
        self.draining.store(true, Ordering::Relaxed);
        self.metrics.draining.set(1);
        let conns = self.live_connections();
        tracing::info!(
            connections = conns.len(),
            window_secs = window.as_secs_f64(),
            "Draining"
        );
        let start = tokio::time::Instant::now();
        let step = window
            .checked_div(conns.len().max(1) as u32)
            .unwrap_or_default();
        let retry_after_ms = u64::try_from(window.as_millis())
            .unwrap_or(u64::MAX)
            .min(5_000);
        let frame = conn::server_frame(&ServerFrame::Reconnect {
            reason: "draining",
            retry_after_ms: retry_after_ms / 10,
        });
        for (i, c) in conns.iter().enumerate() {
            tokio::time::sleep_until(start + step * i as u32).await;
            c.push_then_close(frame.clone(), close::DRAINING);
        }
        self.tasks.close();
        if tokio::time::timeout(DRAIN_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            for c in self.live_connections() {
                c.kill(close::DRAINING);
            }
        }
        // Records of connections whose cleanup did not finish, or whose removal failed.
        self.recorder.flush().await;
        self.committer.finish().await;
        self.store_all_receipts().await;
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "Store flush failed while draining");
        }
        self.fanout.shutdown().await;
        tracing::info!("Drained");
    }
}
