//! The distributed store: DynamoDB, shared by every task of every colour. The tables are
//! [`schema::tables`]; this folder is the only server code that reads or writes them, and
//! [`create_tables`] (the contract's) is the only code (besides Terraform) that creates them.
//!
//! This file holds the client and the `Store` impl; the folder's other files are mapped in
//! `lib.rs`.
//!
//! Item shapes (docs/storage.md, "DynamoDB tables", has the full story):
//! - `{prefix}user-counter`: `{name: "users", value}` draws user ids; `{name: "room#{room}", value}`
//!   is a room's highest allocated seq. Both move only by `UpdateItem ADD`, so they are atomic
//!   across tasks.
//! - `{prefix}messages`: a message is `{room, seq, user_id, nickname, avatar, text, ts,
//!   client_msg_id}`. Its idempotency record lives in the same table as
//!   `{room: "idem#{user_id}#{room}#{client_msg_id}", seq: 0, orig_room, orig_seq, orig_ts, expires_at}`
//!   (no `user_id`, so it stays out of the `by-user` index; `expires_at` lets TTL drop it).
//!   A deleted message keeps its item with `text: ""`, `deleted: true`, no `attachment`; a
//!   mute is `{room: "mute#{room}", seq: user_id, until, expires_at}` ([`moderation`]); a read
//!   position is `{room: "read#{room}", seq: user_id, pos}` ([`receipts`]). Reactions are number
//!   sets `rx{i}` of user ids and a version `rxv` on the message's item ([`reactions`]).
//! - `{prefix}connections`: `{conn_id, user_id, rooms, task, color, connected_at, expires_at}`.
//!
//! `append` is a group commit: one counter `UpdateItem ADD n` per room reserves a block of seqs,
//! then one `TransactWriteItems` per 50 messages writes each message together with its
//! idempotency record, the record conditioned on not existing. A duplicate racing from another
//! task cancels the transaction; the records are then read back and the loser answers
//! `Duplicate` with the original. Seqs reserved for messages that turned out to be duplicates
//! are never used: seq is strictly increasing per room, not gapless.

mod append;
mod batch;
mod connections;
mod counts;
mod fleet;
mod items;
mod moderation;
mod reactions;
mod reads;
mod receipts;
mod settle;

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;

use super::schema;
use super::{
    Appended, Beat, ConnectionChange, HistoryPage, HistoryQuery, Mute, NewMessage, Rollout, Store,
    StoreError,
};
use crate::protocol::ChatMessage;
pub use chat_contract::admin::create_tables;
pub use connections::{CONNECTION_REFRESH, CONNECTION_TTL};
use counts::Counters;
pub use counts::{Op, RequestCounts};

/// The counter item that draws user ids.
const USERS_COUNTER: &str = "users";

/// How long one store call may take, retries included, unless configured otherwise: a dead
/// endpoint fails `send` with `unavailable` within this, rather than hanging it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// The SDK settings of every DynamoDB client the server makes: each call (retries included)
/// ends within `timeout`; throttling and transient errors are retried with the SDK's
/// exponential backoff inside that budget.
pub fn client(sdk: &SdkConfig, timeout: Duration) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1).min(timeout))
                .operation_attempt_timeout(timeout * 2 / 3)
                .operation_timeout(timeout)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_secs(1)),
        )
        .build();
    Client::from_conf(config)
}

/// A client from the standard AWS environment (region, credentials, `AWS_ENDPOINT_URL`, …).
pub async fn client_from_env(timeout: Duration) -> Client {
    client(
        &aws_config::defaults(BehaviorVersion::latest()).load().await,
        timeout,
    )
}

/// Full table names for one prefix.
#[derive(Debug, Clone)]
struct Tables {
    messages: String,
    connections: String,
    counters: String,
}

/// The `Store` on DynamoDB.
pub struct DynamoStore {
    client: Client,
    tables: Arc<Tables>,
    counters: Arc<Counters>,
    /// When each connection of this process last had its expiry written.
    refreshed: parking_lot::Mutex<HashMap<String, Instant>>,
    /// [`CONNECTION_REFRESH`] unless a test shortens it.
    refresh_every: Duration,
}

impl DynamoStore {
    /// A store on the tables `{prefix}messages`, `{prefix}connections`, `{prefix}user-counter`
    /// (build `client` with [`client`] or [`client_from_env`]).
    pub fn new(client: Client, prefix: &str) -> Self {
        Self {
            client,
            tables: Arc::new(Tables {
                messages: format!("{prefix}{}", schema::MESSAGES),
                connections: format!("{prefix}{}", schema::CONNECTIONS),
                counters: format!("{prefix}{}", schema::USER_COUNTER),
            }),
            counters: Arc::default(),
            refreshed: parking_lot::Mutex::default(),
            refresh_every: CONNECTION_REFRESH,
        }
    }

    /// Rewrites connection expiries at most this often (default [`CONNECTION_REFRESH`]).
    pub fn with_connection_refresh(mut self, every: Duration) -> Self {
        self.refresh_every = every;
        self
    }

    /// The requests sent so far, per API operation.
    pub fn request_counts(&self) -> RequestCounts {
        self.counters.snapshot()
    }
}

#[async_trait]
impl Store for DynamoStore {
    fn name(&self) -> &'static str {
        "dynamodb"
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.read_check().await
    }

    async fn reserve_user_ids(&self, count: u64) -> Result<RangeInclusive<u64>, StoreError> {
        let count = count.max(1);
        let last = self.add_to_counter(USERS_COUNTER, count).await?;
        let first = last
            .checked_sub(count - 1)
            .filter(|&f| f >= 1)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("the users counter is {last} after adding {count}"))
            })?;
        Ok(first..=last)
    }

    async fn append(&self, batch: Vec<NewMessage>) -> Vec<Result<Appended, StoreError>> {
        if batch.is_empty() {
            return Vec::new();
        }
        self.append_batch(batch).await
    }

    async fn history(&self, room: &str, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.read_history(room, query).await
    }

    async fn last_seq(&self, room: &str) -> Result<u64, StoreError> {
        self.read_last_seq(room).await
    }

    async fn last_seqs(&self, rooms: &[String]) -> Result<Vec<u64>, StoreError> {
        self.read_last_seqs(rooms).await
    }

    async fn settle(&self, room: &str, seq: u64) -> Result<Option<ChatMessage>, StoreError> {
        self.settle_seq(room, seq).await
    }

    async fn delete_message(
        &self,
        room: &str,
        seq: u64,
    ) -> Result<Option<ChatMessage>, StoreError> {
        self.tombstone_message(room, seq).await
    }

    async fn set_mute(&self, room: &str, user_id: u64, until_ms: i64) -> Result<(), StoreError> {
        self.put_mute(room, user_id, until_ms).await
    }

    async fn mutes(&self, room: &str, now_ms: i64) -> Result<Vec<Mute>, StoreError> {
        self.read_mutes(room, now_ms).await
    }

    async fn put_read_positions(&self, room: &str, seen: &[(u64, u64)]) -> Result<(), StoreError> {
        self.write_positions(room, seen).await
    }

    async fn read_positions(&self, room: &str) -> Result<Vec<(u64, u64)>, StoreError> {
        self.query_positions(room).await
    }

    async fn react(
        &self,
        room: &str,
        seq: u64,
        change: super::reactions::ReactionChange,
    ) -> Result<super::reactions::Reacted, StoreError> {
        self.update_reactions(room, seq, change).await
    }

    async fn write_connections(&self, changes: &[ConnectionChange]) -> Result<(), StoreError> {
        DynamoStore::write_connections(self, changes).await
    }

    async fn touch_connections(&self, conn_ids: &[String]) -> Result<(), StoreError> {
        self.touch(conn_ids).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Every write is durable when its call returns.
        Ok(())
    }

    async fn put_fleet_beat(&self, task: &str, beat: &Beat) -> Result<(), StoreError> {
        self.write_beat(task, beat).await
    }

    async fn remove_fleet_beat(&self, task: &str) -> Result<(), StoreError> {
        self.delete_beat(task).await
    }

    async fn prune_fleet_beat(&self, task: &str, at_ms: i64) -> Result<(), StoreError> {
        self.prune_beat(task, at_ms).await
    }

    async fn rollout(&self) -> Result<Rollout, StoreError> {
        self.read_rollout().await
    }
}
