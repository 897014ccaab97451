//! The server's background tasks under one shutdown. `app::start` owns a [`Background`]; the
//! commit loop, the hub's event readers and timers, the fanout's link, the connection
//! records' writer and the rebalancing loop are all started through it, and `app::start`
//! stops them all at once after the drain ([`Background::shutdown`]). No task decides to end
//! because a `Weak` stopped upgrading: a task ends when its work is done or at the shutdown.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest [`Background::shutdown`] waits for tasks that clean up after the cancellation
/// (each bounds its own cleanup; this bounds a wedged one).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Starts background tasks and stops them together. Cheap to clone: clones share the tasks.
#[derive(Clone, Default)]
pub struct Background {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Background {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` until it ends or the shutdown, whichever comes first.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                biased;
                () = stop.cancelled() => {}
                () = task => {}
            }
        });
    }

    /// Runs a task that watches [`Background::stopping`] itself, to clean up before it ends;
    /// the shutdown waits for it (within [`SHUTDOWN_GRACE`]).
    pub fn spawn_graceful<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Cancelled when the shutdown begins.
    pub fn stopping(&self) -> &CancellationToken {
        &self.stop
    }

    /// Stops every task and waits for them to end.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = self.tasks.len(),
                "Background tasks still running after the shutdown grace"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_shutdown_stops_plain_tasks_and_waits_for_graceful_ones() {
        let bg = Background::new();
        bg.spawn(std::future::pending());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let stopping = bg.stopping().clone();
        bg.spawn_graceful(async move {
            stopping.cancelled().await;
            let _ = done_tx.send("cleaned up");
        });
        bg.shutdown().await;
        assert_eq!(done_rx.await.ok(), Some("cleaned up"));
        assert!(bg.tasks.is_empty(), "every task ended");
    }
}
