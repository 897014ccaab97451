//! The `Store` seam: everything durable. Messages with a per-room `seq` and idempotency,
//! history pages, the atomic user counter, the live-connection registry, and the rollout's
//! items opsctl shares with the tasks (`chat_contract::rollout`).
//!
//! Implementations: [`embedded`] (redb on local disk, the zero-configuration default) and
//! DynamoDB (on AWS). Both pass the one contract suite in `tests/store_contract.rs`.

use std::ops::RangeInclusive;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::protocol::{Attachment, ChatMessage, ErrorCode, Refusal, ReplyRef, User};
pub use chat_contract::rollout::{Beat, Control};
/// The tables as data (the contract both the server and opsctl build against).
pub use chat_contract::schema;

pub mod dynamodb;
pub mod embedded;
pub mod reactions;
pub mod user_ids;

/// How long an idempotency key (user, room, client_msg_id) is remembered.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// The room and `client_msg_id` part of an idempotency key: a `client_msg_id` counts per room
/// (a send to room B with an id used in room A is a new message of B). Room names never
/// hold `#`, so the two parts cannot run into each other.
pub fn idempotency_scope(room: &str, client_msg_id: &str) -> String {
    format!("{room}#{client_msg_id}")
}

/// A message accepted from a client, not yet durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub room: String,
    pub user: User,
    pub client_msg_id: String,
    pub text: String,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    /// An image checked at upload (its signed token verified by the WebSocket side). Boxed:
    /// sends wait in the commit queue, and most carry none.
    pub attachment: Option<Box<Attachment>>,
    /// The message it answers, checked and quoted by the hub.
    pub reply_to: Option<Box<ReplyRef>>,
    /// Sent from a moderator's connection.
    pub moderator: bool,
}

/// What `append` did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Newly durable with a fresh seq: ack it and broadcast it.
    Stored(ChatMessage),
    /// The same (user, client_msg_id) was stored before within the window: ack with the
    /// original seq; write and broadcast nothing.
    Duplicate(ChatMessage),
}

impl Appended {
    pub fn message(&self) -> &ChatMessage {
        match self {
            Appended::Stored(m) | Appended::Duplicate(m) => m,
        }
    }

    pub fn into_message(self) -> ChatMessage {
        match self {
            Appended::Stored(m) | Appended::Duplicate(m) => m,
        }
    }
}

/// Which slice of a room's history to read. Pages are returned oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only messages with `seq < before` (paging back).
    pub before: Option<u64>,
    /// Only messages with `seq > after` (catching up). With `after`, the OLDEST `limit`
    /// matching messages are returned; without it, the NEWEST `limit`.
    pub after: Option<u64>,
    pub limit: usize,
}

/// One page of history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryPage {
    /// Oldest first.
    pub messages: Vec<ChatMessage>,
    /// More messages match the query beyond this page (older without `after`, newer with it).
    pub has_more: bool,
    /// Seqs in the range this page covered that were reserved and then abandoned (see
    /// [`Store::settle`]); never shown to clients, read by the hub to pass over them.
    pub abandoned: Vec<u64>,
}

/// One live WebSocket connection, as operators count them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionRecord {
    pub conn_id: String,
    pub user_id: u64,
    pub rooms: Vec<String>,
    pub task: String,
    pub color: String,
    /// Milliseconds since the Unix epoch.
    pub connected_at: i64,
}

/// A change to the live-connection registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionChange {
    /// Records a live connection, or replaces its rooms.
    Put(ConnectionRecord),
    /// Forgets a connection that closed (by its `conn_id`).
    Remove(String),
}

impl ConnectionChange {
    /// The connection it is about.
    pub fn conn_id(&self) -> &str {
        match self {
            ConnectionChange::Put(record) => &record.conn_id,
            ConnectionChange::Remove(conn_id) => conn_id,
        }
    }
}

/// A moderator's mute: `user_id` may not send in the room until `until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mute {
    pub user_id: u64,
    /// Milliseconds since the Unix epoch.
    pub until_ms: i64,
}

/// What the rebalancing loop reads each round: opsctl's control record (none yet: no
/// rollout asked for anything) and every task's heartbeat, by task id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rollout {
    pub control: Option<Control>,
    pub beats: Vec<(String, Beat)>,
}

/// Why a store call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or refused the call; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with something this code cannot read.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
}

/// A store failure as the client sees it: `unavailable`, with no backend detail (which is
/// logged here instead).
impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "Store call failed");
        Refusal::new(
            ErrorCode::Unavailable,
            "the message store is unavailable; retry shortly",
        )
    }
}

/// Durable state. Every method is safe to call from many tasks at once.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Short backend name for `/readyz` and metrics (`embedded`, `dynamodb`).
    fn name(&self) -> &'static str;

    /// Answers when the backend is reachable (readiness).
    async fn check(&self) -> Result<(), StoreError>;

    /// Reserves `count` (≥ 1) new, never before used user ids from the atomic counter, as one
    /// range (the first id ever is 1). [`user_ids::UserIds`] draws them a block at a time.
    async fn reserve_user_ids(&self, count: u64) -> Result<RangeInclusive<u64>, StoreError>;

    /// Makes a batch of messages durable, in order, allocating each room's next seq.
    /// Returns one result per input, in input order. A message is never reported `Stored`
    /// unless it is durable; a repeat of (user.id, client_msg_id) inside the window, also
    /// within the same batch, is `Duplicate` with the original message.
    async fn append(&self, batch: Vec<NewMessage>) -> Vec<Result<Appended, StoreError>>;

    /// How many [`Store::start_append`] batches are worth keeping in flight at once.
    fn pipeline(&self) -> usize {
        1
    }

    /// [`Store::append`], ordered when called: a batch started later is ordered after this one
    /// (its seqs, its duplicates) even while both are in flight. The default does the work when
    /// the future is polled, so its futures must be awaited one after another, in order.
    fn start_append(
        self: Arc<Self>,
        batch: Vec<NewMessage>,
    ) -> BoxFuture<'static, Vec<Result<Appended, StoreError>>> {
        Box::pin(async move { self.append(batch).await })
    }

    /// A page of a room's history (see [`HistoryQuery`]).
    async fn history(&self, room: &str, query: HistoryQuery) -> Result<HistoryPage, StoreError>;

    /// The highest seq allocated in the room so far (0 for an empty room).
    async fn last_seq(&self, room: &str) -> Result<u64, StoreError>;

    /// [`Store::last_seq`] of many rooms at once, in the order of `rooms` (the hub's audit
    /// reads every room of the task each round: one batched read where the backend has one).
    async fn last_seqs(&self, rooms: &[String]) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::with_capacity(rooms.len());
        for room in rooms {
            out.push(self.last_seq(room).await?);
        }
        Ok(out)
    }

    /// Settles a reserved seq for good: the message stored at it, or `None` when it is (now,
    /// or already) abandoned, after which no write of it can ever succeed. Called by whoever
    /// gives up on the seq: the writer whose call failed, or a reader tired of waiting.
    async fn settle(&self, room: &str, seq: u64) -> Result<Option<ChatMessage>, StoreError>;

    /// Moderation: replaces the message at (room, seq) by its tombstone
    /// ([`ChatMessage::into_tombstone`]) and returns it; `None` when no message is stored at
    /// `seq` (never written, or abandoned). Deleting a tombstone again returns it unchanged.
    async fn delete_message(&self, room: &str, seq: u64)
    -> Result<Option<ChatMessage>, StoreError>;

    /// Moderation: `user_id` may not send in `room` until `until_ms` (a time in the past lifts
    /// the mute). Replaces any earlier mute of the user in the room.
    async fn set_mute(&self, room: &str, user_id: u64, until_ms: i64) -> Result<(), StoreError>;

    /// The mutes of `room` still running at `now_ms`.
    async fn mutes(&self, room: &str, now_ms: i64) -> Result<Vec<Mute>, StoreError>;

    /// Read receipts: stores each `(user_id, seq)` read position of `room` (the last write
    /// wins: the hub writes the highest position it knows, merged across tasks).
    async fn put_read_positions(&self, room: &str, seen: &[(u64, u64)]) -> Result<(), StoreError>;

    /// Every stored `(user_id, seq)` read position of `room`.
    async fn read_positions(&self, room: &str) -> Result<Vec<(u64, u64)>, StoreError>;

    /// Reactions: applies one user's change to the message at (room, seq), atomically (many
    /// tasks may change one message at once), raising its `reactions_version`.
    async fn react(
        &self,
        room: &str,
        seq: u64,
        change: reactions::ReactionChange,
    ) -> Result<reactions::Reacted, StoreError>;

    /// Applies changes to the live-connection registry, at most one per connection (the hub
    /// sends them in batches, in order across calls).
    async fn write_connections(&self, changes: &[ConnectionChange]) -> Result<(), StoreError>;

    /// Heartbeat: these connections of this task are still alive.
    async fn touch_connections(&self, conn_ids: &[String]) -> Result<(), StoreError>;

    /// Makes everything written so far durable (called once while draining).
    async fn flush(&self) -> Result<(), StoreError>;

    /// The rollout: writes this task's heartbeat into the fleet. A store of one process
    /// (no fleet, no opsctl) keeps none.
    async fn put_fleet_beat(&self, _task: &str, _beat: &Beat) -> Result<(), StoreError> {
        Ok(())
    }

    /// The rollout: removes this task's heartbeat (while draining).
    async fn remove_fleet_beat(&self, _task: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// The rollout: removes the heartbeat of a task that died without draining, only if it
    /// still carries `at_ms` (a task that came back keeps its new one; another task pruning it
    /// first is no error).
    async fn prune_fleet_beat(&self, _task: &str, _at_ms: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// The rollout: opsctl's control record and the fleet's heartbeats.
    async fn rollout(&self) -> Result<Rollout, StoreError> {
        Ok(Rollout::default())
    }
}
