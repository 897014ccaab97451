//! The distributed store: DynamoDB, shared by every task of every colour. The tables are
//! [`schema::tables`]; this module is the only code that reads or writes them, and
//! [`create_tables`] is the only code (besides Terraform) that creates them.
//!
//! Item shapes (README "DynamoDB tables" has the full story):
//! - `{prefix}user-counter`: `{name: "users", value}` draws user ids; `{name: "room#{room}", value}`
//!   is a room's highest allocated seq. Both move only by `UpdateItem ADD`, so they are atomic
//!   across tasks.
//! - `{prefix}messages`: a message is `{room, seq, user_id, nickname, avatar, text, ts,
//!   client_msg_id}`. Its idempotency record lives in the same table as
//!   `{room: "idem#{user_id}#{client_msg_id}", seq: 0, orig_room, orig_seq, orig_ts, expires_at}`
//!   (no `user_id`, so it stays out of the `by-user` index; `expires_at` lets TTL drop it).
//! - `{prefix}connections`: `{conn_id, user_id, rooms, task, color, connected_at, expires_at}`.
//!
//! `append` is a group commit: one counter `UpdateItem ADD n` per room reserves a block of seqs,
//! then one `TransactWriteItems` per 50 messages writes each message together with its
//! idempotency record, the record conditioned on not existing. A duplicate racing from another
//! task cancels the transaction; the records are then read back and the loser answers
//! `Duplicate` with the original. Seqs reserved for messages that turned out to be duplicates
//! are never used: seq is strictly increasing per room, not gapless.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, KeysAndAttributes, PointInTimeRecoverySpecification, Projection,
    ProjectionType, Put, ReturnValue, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus, TransactWriteItem,
};
use futures_util::StreamExt;
use futures_util::future::join_all;

use super::schema::{self, KeyAttr};
use super::{
    Appended, ConnectionRecord, HistoryPage, HistoryQuery, IDEMPOTENCY_WINDOW_MS, NewMessage,
    Store, StoreError,
};
use crate::protocol::{ChatMessage, User};

/// How long a connection item outlives its last heartbeat before TTL may delete it (a task
/// that died without removing its connections stops counting after this).
pub const CONNECTION_TTL: Duration = Duration::from_secs(600);
/// A heartbeat rewrites a connection's expiry only when the last write is older than this:
/// the hub beats every 25 s (it also pings then), DynamoDB needs far fewer writes.
pub const CONNECTION_REFRESH: Duration = Duration::from_secs(120);

/// Messages per `TransactWriteItems`: two items each (message + idempotency record), and a
/// transaction holds at most 100 items.
const MESSAGES_PER_TRANSACTION: usize = 50;
/// Keys per `BatchGetItem` (the API's limit).
const KEYS_PER_BATCH_GET: usize = 100;
/// How often a cancelled transaction (a racing duplicate, a transaction conflict) is retried
/// with the messages that are still not known to be duplicates.
const TRANSACTION_ATTEMPTS: u32 = 6;
/// Rounds of `UnprocessedKeys` a `BatchGetItem` may need before giving up.
const BATCH_GET_ROUNDS: u32 = 8;
/// Heartbeat updates in flight at once.
const TOUCH_CONCURRENCY: usize = 16;

const USERS_COUNTER: &str = "users";

type Item = HashMap<String, AttributeValue>;
/// A message with its seq, and the idempotency key it claims.
type Pending = (ChatMessage, KeyProbe);

/// The DynamoDB API calls the store makes; each has a request counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    GetItem,
    BatchGetItem,
    Query,
    UpdateItem,
    PutItem,
    DeleteItem,
    TransactWriteItems,
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::GetItem,
        Op::BatchGetItem,
        Op::Query,
        Op::UpdateItem,
        Op::PutItem,
        Op::DeleteItem,
        Op::TransactWriteItems,
    ];

    /// The API operation's name.
    pub fn name(self) -> &'static str {
        match self {
            Op::GetItem => "GetItem",
            Op::BatchGetItem => "BatchGetItem",
            Op::Query => "Query",
            Op::UpdateItem => "UpdateItem",
            Op::PutItem => "PutItem",
            Op::DeleteItem => "DeleteItem",
            Op::TransactWriteItems => "TransactWriteItems",
        }
    }

    /// Whether the call writes (what the cost target "write requests per message" counts).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Op::UpdateItem | Op::PutItem | Op::DeleteItem | Op::TransactWriteItems
        )
    }
}

/// A snapshot of the requests a store has sent, per operation (one per call the store makes;
/// the SDK's own retries of a failed attempt are not counted again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts(pub [u64; Op::ALL.len()]);

impl RequestCounts {
    pub fn get(&self, op: Op) -> u64 {
        self.0[op as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub fn writes(&self) -> u64 {
        Op::ALL
            .iter()
            .filter(|op| op.is_write())
            .map(|&op| self.get(op))
            .sum()
    }

    /// The requests made between `earlier` and this snapshot.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        let mut out = self.clone();
        for (now, before) in out.0.iter_mut().zip(earlier.0.iter()) {
            *now = now.saturating_sub(*before);
        }
        out
    }
}

impl std::fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = Op::ALL
            .iter()
            .filter(|&&op| self.get(op) > 0)
            .map(|&op| format!("{}={}", op.name(), self.get(op)))
            .collect();
        write!(f, "{}", parts.join(" "))
    }
}

#[derive(Default)]
struct Counters([AtomicU64; Op::ALL.len()]);

impl Counters {
    fn count(&self, op: Op) {
        self.0[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RequestCounts {
        RequestCounts(std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed)))
    }
}

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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn unavailable<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(format!("dynamodb {what}: {}", DisplayErrorContext(e)))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        other => Err(StoreError::Corrupt(format!(
            "attribute {name} should be a string, found {other:?}"
        ))),
    }
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} = {v:?} is out of range"))),
        other => Err(StoreError::Corrupt(format!(
            "attribute {name} should be a number, found {other:?}"
        ))),
    }
}

fn idempotency_key(user_id: u64, client_msg_id: &str) -> Item {
    HashMap::from([
        ("room".into(), s(format!("idem#{user_id}#{client_msg_id}"))),
        ("seq".into(), n(0)),
    ])
}

fn message_key(room: &str, seq: u64) -> Item {
    HashMap::from([("room".into(), s(room)), ("seq".into(), n(seq))])
}

fn message_item(m: &ChatMessage) -> Item {
    HashMap::from([
        ("room".into(), s(&m.room)),
        ("seq".into(), n(m.seq)),
        ("user_id".into(), n(m.user.id)),
        ("nickname".into(), s(&m.user.nickname)),
        ("avatar".into(), s(&m.user.avatar)),
        ("text".into(), s(&m.text)),
        ("ts".into(), n(m.ts)),
        ("client_msg_id".into(), s(&m.client_msg_id)),
    ])
}

fn message_from_item(item: &Item) -> Result<ChatMessage, StoreError> {
    Ok(ChatMessage {
        room: get_s(item, "room")?.to_string(),
        seq: get_n(item, "seq")?,
        user: User {
            id: get_n(item, "user_id")?,
            nickname: get_s(item, "nickname")?.to_string(),
            avatar: get_s(item, "avatar")?.to_string(),
        },
        text: get_s(item, "text")?.to_string(),
        ts: get_n(item, "ts")?,
        client_msg_id: get_s(item, "client_msg_id")?.to_string(),
    })
}

fn idempotency_item(m: &ChatMessage) -> Item {
    let mut item = idempotency_key(m.user.id, &m.client_msg_id);
    item.insert("orig_room".into(), s(&m.room));
    item.insert("orig_seq".into(), n(m.seq));
    item.insert("orig_ts".into(), n(m.ts));
    let expires_ms = m.ts.saturating_add(IDEMPOTENCY_WINDOW_MS);
    item.insert("expires_at".into(), n(expires_ms.div_euclid(1000) + 1));
    item
}

/// An idempotency key with the send time that decides whether an earlier record still counts.
#[derive(Debug, Clone)]
struct KeyProbe {
    user_id: u64,
    client_msg_id: String,
    ts: i64,
}

impl KeyProbe {
    fn of(m: &NewMessage) -> Self {
        Self {
            user_id: m.user.id,
            client_msg_id: m.client_msg_id.clone(),
            ts: m.ts,
        }
    }
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

    /// `BatchGetItem` of `keys` from `table` (consistent reads), in chunks of 100, following
    /// `UnprocessedKeys`. Returns the items found, in no particular order.
    async fn batch_get(&self, table: &str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        let mut keys = keys.into_iter().peekable();
        while keys.peek().is_some() {
            let mut chunk: Vec<Item> = keys.by_ref().take(KEYS_PER_BATCH_GET).collect();
            for round in 0.. {
                if round == BATCH_GET_ROUNDS {
                    return Err(StoreError::Unavailable(format!(
                        "dynamodb BatchGetItem on {table}: {} keys still unprocessed after {round} rounds",
                        chunk.len()
                    )));
                }
                if round > 0 {
                    tokio::time::sleep(backoff(round)).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(chunk))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Unavailable(format!("BatchGetItem request: {e}")))?;
                self.counters.count(Op::BatchGetItem);
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| unavailable(&format!("BatchGetItem on {table}"), e))?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(table).unwrap_or_default());
                }
                chunk = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if chunk.is_empty() {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// For each probe, the original message if its idempotency key was stored within the
    /// window before the probe's `ts`. Keyed by position in `probes`.
    async fn find_originals(
        &self,
        probes: &[KeyProbe],
    ) -> Result<HashMap<usize, ChatMessage>, StoreError> {
        if probes.is_empty() {
            return Ok(HashMap::new());
        }
        let table = &self.tables.messages;
        let keys = probes
            .iter()
            .map(|p| idempotency_key(p.user_id, &p.client_msg_id))
            .collect();
        let records = self.batch_get(table, keys).await?;
        let by_key: HashMap<&str, &Item> = records
            .iter()
            .map(|item| Ok((get_s(item, "room")?, item)))
            .collect::<Result<_, StoreError>>()?;
        // Which original (room, seq) each probe refers to.
        let mut wanted: Vec<(usize, String, u64)> = Vec::new();
        for (i, probe) in probes.iter().enumerate() {
            let key = format!("idem#{}#{}", probe.user_id, probe.client_msg_id);
            let Some(record) = by_key.get(key.as_str()) else {
                continue;
            };
            let orig_ts: i64 = get_n(record, "orig_ts")?;
            if probe.ts.saturating_sub(orig_ts) >= IDEMPOTENCY_WINDOW_MS {
                continue;
            }
            wanted.push((
                i,
                get_s(record, "orig_room")?.to_string(),
                get_n(record, "orig_seq")?,
            ));
        }
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let mut unique: Vec<(&str, u64)> =
            wanted.iter().map(|(_, r, q)| (r.as_str(), *q)).collect();
        unique.sort_unstable();
        unique.dedup();
        let originals = self
            .batch_get(
                table,
                unique
                    .iter()
                    .map(|&(room, seq)| message_key(room, seq))
                    .collect(),
            )
            .await?
            .iter()
            .map(|item| message_from_item(item).map(|m| ((m.room.clone(), m.seq), m)))
            .collect::<Result<HashMap<_, _>, _>>()?;
        wanted
            .into_iter()
            .map(|(i, room, seq)| match originals.get(&(room.clone(), seq)) {
                Some(m) => Ok((i, m.clone())),
                None => Err(StoreError::Corrupt(format!(
                    "idempotency record points at missing message {room}/{seq}"
                ))),
            })
            .collect()
    }

    /// Reserves `count` seqs in `room`; returns the first (the block is `first..first+count`).
    async fn reserve_seqs(&self, room: &str, count: u64) -> Result<u64, StoreError> {
        let table = &self.tables.counters;
        let last = self.add_to_counter(&format!("room#{room}"), count).await?;
        last.checked_sub(count - 1)
            .filter(|&first| first >= 1)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "counter room#{room} in {table} is {last} after adding {count}"
                ))
            })
    }

    /// `UpdateItem ADD value :n` on a counter; returns the new value.
    async fn add_to_counter(&self, name: &str, by: u64) -> Result<u64, StoreError> {
        let table = &self.tables.counters;
        self.counters.count(Op::UpdateItem);
        let out = self
            .client
            .update_item()
            .table_name(table)
            .key("name", s(name))
            .update_expression("ADD #v :n")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":n", n(by))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| unavailable(&format!("UpdateItem {name} on {table}"), e))?;
        let attributes = out.attributes.unwrap_or_default();
        get_n(&attributes, "value")
    }

    /// Writes messages (seqs already reserved) with their idempotency records, in one
    /// transaction, retrying while a racing duplicate or a transaction conflict cancels it.
    /// Returns one result per input message, in input order.
    async fn write_chunk(&self, chunk: Vec<Pending>) -> Vec<Result<Appended, StoreError>> {
        let mut results: Vec<Option<Result<Appended, StoreError>>> = vec![None; chunk.len()];
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let mut last_cancel = String::new();
        for attempt in 0..TRANSACTION_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            match self
                .transact_write(pending.iter().map(|&i| &chunk[i].0))
                .await
            {
                Ok(()) => {
                    for &i in &pending {
                        results[i] = Some(Ok(Appended::Stored(chunk[i].0.clone())));
                    }
                    pending.clear();
                }
                Err(TransactOutcome::Cancelled(reasons)) => {
                    // Some key was written meanwhile (a duplicate from another task, or our
                    // own earlier attempt that the SDK retried): read the records back.
                    last_cancel = reasons;
                    let probes: Vec<KeyProbe> =
                        pending.iter().map(|&i| chunk[i].1.clone()).collect();
                    match self.find_originals(&probes).await {
                        Ok(found) => {
                            let mut still = Vec::new();
                            for (p, &i) in pending.iter().enumerate() {
                                let ours = &chunk[i].0;
                                results[i] = match found.get(&p) {
                                    Some(orig)
                                        if orig.room == ours.room && orig.seq == ours.seq =>
                                    {
                                        Some(Ok(Appended::Stored(orig.clone())))
                                    }
                                    Some(orig) => Some(Ok(Appended::Duplicate(orig.clone()))),
                                    None => {
                                        still.push(i);
                                        None
                                    }
                                };
                            }
                            pending = still;
                        }
                        Err(e) => {
                            for &i in &pending {
                                results[i] = Some(Err(e.clone()));
                            }
                            pending.clear();
                        }
                    }
                }
                Err(TransactOutcome::Failed(e)) => {
                    for &i in &pending {
                        results[i] = Some(Err(e.clone()));
                    }
                    pending.clear();
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(StoreError::Unavailable(format!(
                        "dynamodb TransactWriteItems on {}: still cancelled after {TRANSACTION_ATTEMPTS} attempts ({last_cancel})",
                        self.tables.messages
                    )))
                })
            })
            .collect()
    }

    async fn transact_write<'a>(
        &self,
        messages: impl Iterator<Item = &'a ChatMessage>,
    ) -> Result<(), TransactOutcome> {
        let table = &self.tables.messages;
        let mut items = Vec::new();
        for m in messages {
            let message = Put::builder()
                .table_name(table)
                .set_item(Some(message_item(m)))
                // Seqs are reserved exclusively; this only guards history against a counter
                // that went backwards.
                .condition_expression("attribute_not_exists(#s)")
                .expression_attribute_names("#s", "seq")
                .build();
            let record = Put::builder()
                .table_name(table)
                .set_item(Some(idempotency_item(m)))
                .condition_expression("attribute_not_exists(#r) OR #t <= :cutoff")
                .expression_attribute_names("#r", "room")
                .expression_attribute_names("#t", "orig_ts")
                .expression_attribute_values(":cutoff", n(m.ts - IDEMPOTENCY_WINDOW_MS))
                .build();
            for put in [message, record] {
                let put = put.map_err(|e| {
                    TransactOutcome::Failed(StoreError::Unavailable(format!(
                        "TransactWriteItems request: {e}"
                    )))
                })?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
        }
        self.counters.count(Op::TransactWriteItems);
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let reasons = match e.err() {
                    TransactWriteItemsError::TransactionCanceledException(c) => c
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code())
                        .filter(|c| *c != "None")
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => String::new(),
                };
                Err(TransactOutcome::Cancelled(reasons))
            }
            Err(e) => Err(TransactOutcome::Failed(unavailable(
                &format!("TransactWriteItems on {table}"),
                e,
            ))),
        }
    }

    async fn append_batch(&self, batch: Vec<NewMessage>) -> Vec<Result<Appended, StoreError>> {
        // A repeat inside the batch answers like its first occurrence.
        let mut first_of: HashMap<(u64, &str), usize> = HashMap::new();
        let mut repeat_of: Vec<Option<usize>> = vec![None; batch.len()];
        for (i, m) in batch.iter().enumerate() {
            let key = (m.user.id, m.client_msg_id.as_str());
            match first_of.get(&key) {
                Some(&f) => repeat_of[i] = Some(f),
                None => {
                    first_of.insert(key, i);
                }
            }
        }
        let firsts: Vec<usize> = (0..batch.len())
            .filter(|&i| repeat_of[i].is_none())
            .collect();
        let mut results: Vec<Option<Result<Appended, StoreError>>> = vec![None; batch.len()];

        // Duplicates of earlier batches: no seq is reserved for them.
        let probes: Vec<KeyProbe> = firsts.iter().map(|&i| KeyProbe::of(&batch[i])).collect();
        let mut fresh: Vec<usize> = Vec::with_capacity(firsts.len());
        match self.find_originals(&probes).await {
            Ok(found) => {
                for (p, &i) in firsts.iter().enumerate() {
                    match found.get(&p) {
                        Some(orig) => results[i] = Some(Ok(Appended::Duplicate(orig.clone()))),
                        None => fresh.push(i),
                    }
                }
            }
            Err(e) => {
                for &i in &firsts {
                    results[i] = Some(Err(e.clone()));
                }
            }
        }

        // One counter increment per room, all rooms at once.
        let mut rooms: Vec<(&str, Vec<usize>)> = Vec::new();
        for &i in &fresh {
            let room = batch[i].room.as_str();
            match rooms.iter_mut().find(|(r, _)| *r == room) {
                Some((_, members)) => members.push(i),
                None => rooms.push((room, vec![i])),
            }
        }
        let reservations = join_all(
            rooms
                .iter()
                .map(|(room, members)| self.reserve_seqs(room, members.len() as u64)),
        )
        .await;
        let mut to_write: Vec<(usize, ChatMessage, KeyProbe)> = Vec::with_capacity(fresh.len());
        for ((_, members), reserved) in rooms.iter().zip(reservations) {
            match reserved {
                Ok(first) => {
                    for (k, &i) in members.iter().enumerate() {
                        let new = &batch[i];
                        let message = ChatMessage {
                            room: new.room.clone(),
                            seq: first + k as u64,
                            user: new.user.clone(),
                            text: new.text.clone(),
                            ts: new.ts,
                            client_msg_id: new.client_msg_id.clone(),
                        };
                        to_write.push((i, message, KeyProbe::of(new)));
                    }
                }
                Err(e) => {
                    for &i in members {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }

        // Transactions of up to 50 messages, all at once.
        let mut chunks: Vec<(Vec<usize>, Vec<Pending>)> = Vec::new();
        let mut iter = to_write.into_iter().peekable();
        while iter.peek().is_some() {
            let (idx, msgs): (Vec<usize>, Vec<Pending>) = iter
                .by_ref()
                .take(MESSAGES_PER_TRANSACTION)
                .map(|(i, m, p)| (i, (m, p)))
                .unzip();
            chunks.push((idx, msgs));
        }
        let (indexes, writes): (Vec<Vec<usize>>, Vec<_>) = chunks.into_iter().unzip();
        let written = join_all(writes.into_iter().map(|c| self.write_chunk(c))).await;
        for (idx, outcome) in indexes.into_iter().zip(written) {
            for (i, r) in idx.into_iter().zip(outcome) {
                results[i] = Some(r);
            }
        }

        // Repeats inside the batch: the first occurrence's message, as a duplicate.
        for i in 0..batch.len() {
            if let Some(f) = repeat_of[i] {
                results[i] = Some(match &results[f] {
                    Some(Ok(done)) => Ok(Appended::Duplicate(done.message().clone())),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err(StoreError::Unavailable(
                        "append lost track of a message".into(),
                    )),
                });
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(StoreError::Unavailable(
                        "append lost track of a message".into(),
                    ))
                })
            })
            .collect()
    }
}

enum TransactOutcome {
    /// Cancelled by a condition or a conflict (codes of the failing items).
    Cancelled(String),
    /// Anything else: the outcome is unknown or the call was refused.
    Failed(StoreError),
}

/// Jittered exponential backoff for our own retry loops (50 ms, 100 ms, … up to 1.6 s).
fn backoff(attempt: u32) -> Duration {
    let base = 25u64 << attempt.min(6);
    Duration::from_millis(base + rand::random_range(0..=base))
}

#[async_trait]
impl Store for DynamoStore {
    fn name(&self) -> &'static str {
        "dynamodb"
    }

    async fn check(&self) -> Result<(), StoreError> {
        let table = &self.tables.counters;
        self.counters.count(Op::GetItem);
        self.client
            .get_item()
            .table_name(table)
            .key("name", s(USERS_COUNTER))
            .send()
            .await
            .map_err(|e| unavailable(&format!("GetItem on {table}"), e))?;
        Ok(())
    }

    async fn next_user_id(&self) -> Result<u64, StoreError> {
        self.add_to_counter(USERS_COUNTER, 1).await
    }

    async fn append(&self, batch: Vec<NewMessage>) -> Vec<Result<Appended, StoreError>> {
        if batch.is_empty() {
            return Vec::new();
        }
        self.append_batch(batch).await
    }

    async fn history(&self, room: &str, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        let low = query.after.map_or(1, |a| a.saturating_add(1)).max(1);
        let high = query.before.map_or(u64::MAX, |b| b.saturating_sub(1));
        let mut page = HistoryPage::default();
        if query.before == Some(0) || low > high {
            return Ok(page);
        }
        let oldest_first = query.after.is_some();
        let mut items = self
            .query_range(room, low, high, oldest_first, query.limit + 1)
            .await?;
        page.has_more = items.len() > query.limit;
        items.truncate(query.limit);
        if !oldest_first {
            items.reverse();
        }
        page.messages = items
            .iter()
            .map(message_from_item)
            .collect::<Result<_, _>>()?;
        Ok(page)
    }

    async fn last_seq(&self, room: &str) -> Result<u64, StoreError> {
        let table = &self.tables.counters;
        self.counters.count(Op::GetItem);
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key("name", s(format!("room#{room}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&format!("GetItem room#{room} on {table}"), e))?;
        match out.item {
            Some(item) => get_n(&item, "value"),
            None => Ok(0),
        }
    }

    async fn put_connection(&self, conn: &ConnectionRecord) -> Result<(), StoreError> {
        let table = &self.tables.connections;
        self.counters.count(Op::PutItem);
        self.client
            .put_item()
            .table_name(table)
            .item("conn_id", s(&conn.conn_id))
            .item("user_id", n(conn.user_id))
            .item(
                "rooms",
                AttributeValue::L(conn.rooms.iter().map(s).collect()),
            )
            .item("task", s(&conn.task))
            .item("color", s(&conn.color))
            .item("connected_at", n(conn.connected_at))
            .item("expires_at", n(connection_expiry()))
            .send()
            .await
            .map_err(|e| unavailable(&format!("PutItem {} on {table}", conn.conn_id), e))?;
        self.refreshed
            .lock()
            .insert(conn.conn_id.clone(), Instant::now());
        Ok(())
    }

    async fn touch_connections(&self, conn_ids: &[String]) -> Result<(), StoreError> {
        let expires_at = connection_expiry();
        let mut due: Vec<String> = Vec::new();
        {
            let now = Instant::now();
            let mut refreshed = self.refreshed.lock();
            for id in conn_ids {
                let fresh = refreshed
                    .get(id.as_str())
                    .is_some_and(|at| now.duration_since(*at) < self.refresh_every);
                if !fresh {
                    refreshed.insert(id.clone(), now);
                    due.push(id.clone());
                }
            }
        }
        let outcomes: Vec<Result<(), StoreError>> = futures_util::stream::iter(due)
            .map(|id| async move {
                let done = self.touch_one(&id, expires_at).await;
                if done.is_err() {
                    // Try again at the next heartbeat.
                    self.refreshed.lock().remove(&id);
                }
                done
            })
            .buffer_unordered(TOUCH_CONCURRENCY)
            .collect()
            .await;
        outcomes.into_iter().collect()
    }

    async fn remove_connection(&self, conn_id: &str) -> Result<(), StoreError> {
        self.refreshed.lock().remove(conn_id);
        let table = &self.tables.connections;
        self.counters.count(Op::DeleteItem);
        self.client
            .delete_item()
            .table_name(table)
            .key("conn_id", s(conn_id))
            .send()
            .await
            .map_err(|e| unavailable(&format!("DeleteItem {conn_id} on {table}"), e))?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Every write is durable when its call returns.
        Ok(())
    }
}

/// Epoch seconds when a connection item touched now may expire.
fn connection_expiry() -> i64 {
    now_ms() / 1000 + CONNECTION_TTL.as_secs() as i64
}

impl DynamoStore {
    /// Up to `want` message items with `low <= seq <= high`, in the asked order; follows
    /// `LastEvaluatedKey` when a 1 MB page ends early. Consistent reads: a client catching up
    /// right after an ack must see the acked message.
    async fn query_range(
        &self,
        room: &str,
        low: u64,
        high: u64,
        oldest_first: bool,
        want: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let table = &self.tables.messages;
        let mut items: Vec<Item> = Vec::with_capacity(want.min(256));
        let mut start: Option<Item> = None;
        loop {
            let limit = i32::try_from(want - items.len()).unwrap_or(i32::MAX);
            self.counters.count(Op::Query);
            let out = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("#r = :r AND #s BETWEEN :low AND :high")
                .expression_attribute_names("#r", "room")
                .expression_attribute_names("#s", "seq")
                .expression_attribute_values(":r", s(room))
                .expression_attribute_values(":low", n(low))
                .expression_attribute_values(":high", n(high))
                .scan_index_forward(oldest_first)
                .consistent_read(true)
                .limit(limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(&format!("Query {room} on {table}"), e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && items.len() < want => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    async fn touch_one(&self, conn_id: &str, expires_at: i64) -> Result<(), StoreError> {
        let table = &self.tables.connections;
        self.counters.count(Op::UpdateItem);
        let outcome = self
            .client
            .update_item()
            .table_name(table)
            .key("conn_id", s(conn_id))
            .update_expression("SET #e = :e")
            // Never recreate (as a fragment) a connection that was removed meanwhile.
            .condition_expression("attribute_exists(#c)")
            .expression_attribute_names("#e", "expires_at")
            .expression_attribute_names("#c", "conn_id")
            .expression_attribute_values(":e", n(expires_at))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(&format!("UpdateItem {conn_id} on {table}"), e)),
        }
    }
}

fn key_schema(hash: &KeyAttr, range: Option<&KeyAttr>) -> anyhow::Result<Vec<KeySchemaElement>> {
    let mut out = vec![
        KeySchemaElement::builder()
            .attribute_name(hash.name)
            .key_type(KeyType::Hash)
            .build()?,
    ];
    if let Some(range) = range {
        out.push(
            KeySchemaElement::builder()
                .attribute_name(range.name)
                .key_type(KeyType::Range)
                .build()?,
        );
    }
    Ok(out)
}

/// Creates the tables of [`schema::tables`] for `prefix` (keys, indexes, TTL, point-in-time
/// recovery) and waits until they are ACTIVE. Tables that already exist with the same keys
/// are left as they are (TTL and recovery are still switched on); one with other keys is an
/// error. For local endpoints and tests: on AWS, Terraform owns the tables.
pub async fn create_tables(client: &Client, prefix: &str) -> anyhow::Result<()> {
    let tables = schema::tables(prefix);
    for table in &tables {
        create_table(client, table)
            .await
            .with_context(|| format!("creating table {}", table.name))?;
    }
    for table in &tables {
        wait_active(client, &table.name).await?;
        if let Some(attribute) = table.ttl_attribute {
            enable_ttl(client, &table.name, attribute)
                .await
                .with_context(|| format!("enabling TTL on {}", table.name))?;
        }
        if table.point_in_time_recovery {
            client
                .update_continuous_backups()
                .table_name(&table.name)
                .point_in_time_recovery_specification(
                    PointInTimeRecoverySpecification::builder()
                        .point_in_time_recovery_enabled(true)
                        .build()?,
                )
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
                .with_context(|| format!("enabling point-in-time recovery on {}", table.name))?;
        }
    }
    Ok(())
}

async fn create_table(client: &Client, table: &schema::Table) -> anyhow::Result<()> {
    let mut attributes: Vec<&KeyAttr> = vec![&table.hash_key];
    attributes.extend(table.range_key.as_ref());
    for index in &table.global_secondary_indexes {
        attributes.push(&index.hash_key);
        attributes.extend(index.range_key.as_ref());
    }
    let mut definitions: Vec<AttributeDefinition> = Vec::new();
    for attr in attributes {
        if definitions.iter().any(|d| d.attribute_name() == attr.name) {
            continue;
        }
        definitions.push(
            AttributeDefinition::builder()
                .attribute_name(attr.name)
                .attribute_type(ScalarAttributeType::from(attr.kind))
                .build()?,
        );
    }
    let mut indexes = Vec::new();
    for index in &table.global_secondary_indexes {
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .set_key_schema(Some(key_schema(&index.hash_key, index.range_key.as_ref())?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(index.projection))
                        .build(),
                )
                .build()?,
        );
    }
    let wanted_keys = key_schema(&table.hash_key, table.range_key.as_ref())?;
    let created = client
        .create_table()
        .table_name(&table.name)
        .billing_mode(BillingMode::from(table.billing_mode))
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(wanted_keys.clone()))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => {
            let existing = describe(client, &table.name).await?;
            let keys = existing.key_schema();
            if keys != wanted_keys.as_slice() {
                bail!("it exists with keys {keys:?}, the schema wants {wanted_keys:?}");
            }
            let mut names: Vec<&str> = existing
                .global_secondary_indexes()
                .iter()
                .filter_map(|i| i.index_name())
                .collect();
            names.sort_unstable();
            let mut want: Vec<&str> = table
                .global_secondary_indexes
                .iter()
                .map(|i| i.name)
                .collect();
            want.sort_unstable();
            if names != want {
                bail!("it exists with indexes {names:?}, the schema wants {want:?}");
            }
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("{}", DisplayErrorContext(e))),
    }
}

async fn describe(
    client: &Client,
    name: &str,
) -> anyhow::Result<aws_sdk_dynamodb::types::TableDescription> {
    client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
        .with_context(|| format!("describing {name}"))?
        .table
        .with_context(|| format!("describing {name}: no table in the answer"))
}

/// Polls until the table and its indexes are ACTIVE (5 minutes at most).
async fn wait_active(client: &Client, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let table = describe(client, name).await?;
        let indexes_active = table
            .global_secondary_indexes()
            .iter()
            .all(|i| i.index_status() == Some(&IndexStatus::Active));
        if table.table_status() == Some(&TableStatus::Active) && indexes_active {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "table {name} is still {:?} after 5 minutes",
                table.table_status()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn enable_ttl(client: &Client, name: &str, attribute: &str) -> anyhow::Result<()> {
    let current = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))?;
    if let Some(ttl) = current.time_to_live_description() {
        let on = matches!(
            ttl.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        if on {
            if ttl.attribute_name() == Some(attribute) {
                return Ok(());
            }
            bail!(
                "TTL is on attribute {:?}, the schema wants {attribute:?}",
                ttl.attribute_name()
            );
        }
    }
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()?,
        )
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> ChatMessage {
        ChatMessage {
            room: "lobby".into(),
            seq: 42,
            user: User {
                id: 7,
                nickname: "otto".into(),
                avatar: "otter".into(),
            },
            text: "hi ✓".into(),
            ts: 1_763_800_000_123,
            client_msg_id: "c-1".into(),
        }
    }

    #[test]
    fn message_items_round_trip() {
        let m = message();
        assert_eq!(message_from_item(&message_item(&m)).ok(), Some(m));
    }

    #[test]
    fn idempotency_record_points_at_the_message_and_expires_after_the_window() {
        let m = message();
        let item = idempotency_item(&m);
        assert_eq!(get_s(&item, "room").ok(), Some("idem#7#c-1"));
        assert_eq!(get_n::<u64>(&item, "seq").ok(), Some(0));
        assert_eq!(get_s(&item, "orig_room").ok(), Some("lobby"));
        assert_eq!(get_n::<u64>(&item, "orig_seq").ok(), Some(42));
        assert!(
            !item.contains_key("user_id"),
            "must stay out of the by-user index"
        );
        let expires: i64 = get_n(&item, "expires_at").unwrap_or_default();
        assert!(expires * 1000 >= m.ts + IDEMPOTENCY_WINDOW_MS);
        assert!(expires * 1000 < m.ts + IDEMPOTENCY_WINDOW_MS + 2000);
    }

    #[test]
    fn corrupt_items_name_the_attribute() {
        let mut item = message_item(&message());
        item.insert("seq".into(), s("x"));
        let e = message_from_item(&item)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("seq"), "{e}");
    }

    #[test]
    fn request_counts_separate_writes() {
        let c = Counters::default();
        c.count(Op::UpdateItem);
        c.count(Op::TransactWriteItems);
        c.count(Op::BatchGetItem);
        let snap = c.snapshot();
        assert_eq!((snap.total(), snap.writes()), (3, 2));
        assert_eq!(snap.since(&snap).total(), 0);
        assert_eq!(
            snap.to_string(),
            "BatchGetItem=1 UpdateItem=1 TransactWriteItems=1"
        );
    }
}
