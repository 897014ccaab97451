//! The `Fanout` seam: how one task's events reach the other tasks serving the same room,
//! and who is present in a room across tasks.
//!
//! The hub always delivers to its own local connections itself; a fanout only carries events
//! to OTHER tasks and hands theirs to this task's hub as [`FromOthers`] over the channel the
//! hub reads ([`ToHub`]). Implementations: [`local`] (one process: nothing to carry) and
//! [`redis`] (pub/sub + presence keys).

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::protocol::{ErrorCode, Refusal, User};

pub mod local;
pub mod redis;

/// What kind of event travels on a room's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A stored chat message: delivered once per connection, in seq order.
    Message { seq: u64 },
    /// A presence change about `user_id`: delivered to everyone except that user's
    /// connections (they learn the room's presence from `joined`).
    Presence { user_id: u64 },
    /// Someone is typing: delivered to everyone except that user's connections.
    Typing { user_id: u64 },
    /// A moderator deleted the message at `seq`: delivered to everyone, out of seq order.
    Deleted { seq: u64 },
    /// A moderator muted (or unmuted) `user_id`: delivered to that user's connections, and
    /// every task applies it to its mute cache.
    Muted { user_id: u64 },
    /// Read positions that moved (coalesced): delivered to everyone; every task merges them.
    Receipts,
    /// Messages whose reactions changed (coalesced, each with a version): delivered to
    /// everyone; every task keeps the newest state of each.
    Reactions,
}

/// One event for a room: its kind and the frame's JSON, encoded once by the task that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomEvent {
    pub kind: EventKind,
    pub json: Bytes,
}

/// What a fanout hands this task's hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromOthers {
    /// An event published by another task for a room this task subscribed to.
    Event { room: String, event: RoomEvent },
    /// The link to the other tasks came back after a break: events may have been lost, so
    /// catch every subscribed room up from the store.
    Resync,
    /// These rooms were just subscribed: what was published before the subscription took
    /// hold may have been missed, so catch these rooms (and only these) up from the store.
    ResyncRooms(Vec<String>),
}

/// The channel a fanout hands [`FromOthers`] to the hub over (the hub owns and reads it).
/// Unbounded like the Redis client's own push queue it is fed from: the hub's reader only
/// queues frames, so it keeps up.
pub type ToHub = mpsc::UnboundedSender<FromOthers>;

/// Why a fanout call failed.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("fanout unavailable: {0}")]
    Unavailable(String),
}

/// A fanout failure as the client sees it: `unavailable`, with no backend detail (which is
/// logged here instead).
impl From<FanoutError> for Refusal {
    fn from(e: FanoutError) -> Self {
        tracing::warn!(error = %e, "Fanout call failed");
        Refusal::new(
            ErrorCode::Unavailable,
            "presence across tasks is unavailable; retry shortly",
        )
    }
}

/// Cross-task events and presence. Every method is safe to call from many tasks at once.
#[async_trait]
pub trait Fanout: Send + Sync + 'static {
    /// Short backend name for `/readyz` and metrics (`local`, `redis`).
    fn name(&self) -> &'static str;

    /// Whether the link to the other tasks is up (readiness).
    fn is_ready(&self) -> bool;

    /// This task now has local members in `room`: start handing its events to the hub.
    /// Never blocks on the network: it records the wish and a link that is down applies it
    /// when it comes back.
    fn subscribe(&self, room: &str);

    /// This task's last local member left `room`.
    fn unsubscribe(&self, room: &str);

    /// Sends an event to the other tasks subscribed to `room`.
    async fn publish(&self, room: &str, event: &RoomEvent) -> Result<(), FanoutError>;

    /// `user` has a connection in `room` on this task (called on the user's first local join).
    async fn presence_add(&self, room: &str, user: &User) -> Result<(), FanoutError>;

    /// `user` has no connection left in `room` on this task.
    async fn presence_remove(&self, room: &str, user: &User) -> Result<(), FanoutError>;

    /// Everyone present in `room` across all live tasks, each user once.
    async fn presence(&self, room: &str) -> Result<Vec<User>, FanoutError>;

    /// Stops background work and removes this task's presence (called while draining).
    async fn shutdown(&self);
}
