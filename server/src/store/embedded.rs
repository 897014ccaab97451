//! The zero-configuration store: redb, an embedded, pure-Rust, ACID key-value database in one
//! file under the data dir. Chosen because it is well kept, needs no C toolchain or server,
//! gives crash-safe commits (copy-on-write B-trees, fsync on commit), and ordered tuple keys
//! make a room's history a plain range scan.
//!
//! Sends are group-committed by the caller ([`crate::commit`]) and pipelined here, so the next
//! batch is applied while the one before it is made durable:
//!
//! 1. the apply thread runs each batch (merged with any queued behind it) as one redb write
//!    transaction *without* fsync: seqs, duplicates and history as always, and writes the new
//!    messages as one record to the write-ahead log ([`super::wal`]);
//! 2. the log thread appends the records that queued meanwhile and `fdatasync`s once; only
//!    then are those batches answered (acked), in order;
//! 3. every [`CHECKPOINT_EVERY`] the apply thread commits redb durably and the log is emptied;
//! 4. on open, whatever the log holds that redb lost in a crash is applied again (a message
//!    whose seq the room already reached is skipped, so replaying twice changes nothing).
//!
//! Readers never see a message before it is durable: a read waits until the log has caught up
//! with every batch its snapshot may hold (at most one `fdatasync`).

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use parking_lot::{Condvar, Mutex};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};
use tokio::sync::oneshot;

use super::wal::{self, Log, Record};
use super::{
    Appended, ConnectionChange, HistoryPage, HistoryQuery, IDEMPOTENCY_WINDOW_MS, Mute, NewMessage,
    Store, StoreError, idempotency_scope,
};

mod moderation;
mod receipts;
use crate::protocol::ChatMessage;

/// (room, seq) -> message JSON.
const MESSAGES: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("messages");
/// room -> highest seq allocated.
const ROOM_SEQ: TableDefinition<'_, &str, u64> = TableDefinition::new("room_seq");
/// (user id, [`idempotency_scope`]) -> (room, seq, ts).
const IDEMPOTENCY: TableDefinition<'_, (u64, &str), (&str, u64, i64)> =
    TableDefinition::new("idempotency");
/// name -> value; holds the user counter.
const COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("counters");
/// conn_id -> connection JSON.
const CONNECTIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("connections");

const USERS_COUNTER: &str = "users";

/// The write-ahead log's file, next to `chat.redb`.
const LOG_FILE: &str = "chat.wal";
/// How often applied batches are made durable in redb, so the log can start over.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// ... or sooner, once the log holds this much since the last checkpoint.
const CHECKPOINT_BYTES: usize = 64 << 20;
/// Most messages the apply thread merges into one transaction.
const MAX_APPLY: usize = 4096;
/// Batches [`crate::commit`] keeps in flight: one being answered, one in the log's fsync,
/// one being applied, one queued.
const PIPELINE: usize = 4;
/// Longest a read waits for the log to reach what its snapshot holds.
const READ_WAIT: Duration = Duration::from_secs(10);

type Results = Vec<Result<Appended, StoreError>>;

/// One `append`: its messages and where its answer goes.
struct Request {
    batch: Vec<NewMessage>,
    reply: oneshot::Sender<Results>,
}

/// From the apply thread to the log thread, in apply order.
enum ToLog {
    /// Batch `no` is applied (not durably): write `record` (empty: nothing stored), sync,
    /// then send the answers.
    Batch {
        no: u64,
        record: Vec<u8>,
        answers: Vec<(oneshot::Sender<Results>, Results)>,
    },
    /// redb holds every batch up to `no` durably: answer what waits, empty the log.
    Checkpoint { no: u64 },
}

/// How far the log has come; readers wait on it.
struct Progress {
    /// The last batch readers may see: set before its transaction commits.
    visible: AtomicU64,
    durable: Mutex<Durable>,
    changed: Condvar,
}

struct Durable {
    /// Every batch up to this one is durable.
    through: u64,
    /// The log could not be written: nothing more is acked.
    failed: Option<String>,
}

impl Progress {
    fn advance(&self, no: u64) {
        let mut d = self.durable.lock();
        d.through = d.through.max(no);
        self.changed.notify_all();
    }

    fn fail(&self, why: String) {
        let mut d = self.durable.lock();
        d.failed.get_or_insert(why);
        self.changed.notify_all();
    }

    fn failed(&self) -> Option<String> {
        self.durable.lock().failed.clone()
    }

    /// Waits until every batch a snapshot begun before this call may hold is durable.
    fn wait_readable(&self) -> Result<(), StoreError> {
        let want = self.visible.load(Ordering::SeqCst);
        let deadline = Instant::now() + READ_WAIT;
        let mut d = self.durable.lock();
        while d.through < want {
            if let Some(why) = &d.failed {
                return Err(err(why));
            }
            if self.changed.wait_until(&mut d, deadline).timed_out() {
                return Err(err("the message log did not catch up in time"));
            }
        }
        Ok(())
    }
}

/// What the store and its threads share.
struct Inner {
    db: Database,
    progress: Progress,
}

/// redb file (and its log) under the data dir.
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    /// To the apply thread; dropped (ending both threads) before they are joined.
    apply: Option<std_mpsc::Sender<Request>>,
    threads: Option<JoinHandle<()>>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) `chat.redb` in `dir` and applies what its log holds. Connections
    /// recorded by an earlier run are dropped: on one node, none of them can still be live.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| err(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join("chat.redb");
        let db =
            Database::create(&path).map_err(|e| err(format!("opening {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(err)?;
        {
            txn.open_table(MESSAGES).map_err(err)?;
            txn.open_table(ROOM_SEQ).map_err(err)?;
            txn.open_table(IDEMPOTENCY).map_err(err)?;
            txn.open_table(COUNTERS).map_err(err)?;
            txn.delete_table(CONNECTIONS).map_err(err)?;
            txn.open_table(CONNECTIONS).map_err(err)?;
        }
        txn.commit().map_err(err)?;

        let log_path = dir.join(LOG_FILE);
        let in_log = |e: std::io::Error| err(format!("reading {}: {e}", log_path.display()));
        let (mut log, bytes) = Log::open(&log_path).map_err(in_log)?;
        let (entries, _) = wal::decode(&bytes);
        let restored = replay(&db, &entries)?;
        if restored > 0 {
            tracing::info!(restored, "Restored messages from the write-ahead log");
        }
        log.clear().map_err(in_log)?;

        let inner = Arc::new(Inner {
            db,
            progress: Progress {
                visible: AtomicU64::new(0),
                durable: Mutex::new(Durable {
                    through: 0,
                    failed: None,
                }),
                changed: Condvar::new(),
            },
        });
        let (apply, requests) = std_mpsc::channel();
        let threads = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("store-apply".into())
                .spawn(move || apply_loop(inner, requests, log))
                .map_err(|e| err(format!("starting the store thread: {e}")))?
        };
        Ok(Self {
            inner,
            apply: Some(apply),
            threads: Some(threads),
        })
    }

    /// Runs blocking redb work off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner.db))
            .await
            .map_err(|e| err(format!("store worker failed: {e}")))?
    }

    /// Runs a read of messages off the async workers, on a snapshot holding only durable ones.
    async fn reading<T: Send + 'static>(
        &self,
        work: impl FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let txn = inner.db.begin_read().map_err(err)?;
            inner.progress.wait_readable()?;
            work(&txn)
        })
        .await
        .map_err(|e| err(format!("store worker failed: {e}")))?
    }

    /// Queues a batch for the apply thread: ordered after every batch queued before.
    fn submit(&self, batch: Vec<NewMessage>) -> BoxFuture<'static, Results> {
        let n = batch.len();
        let (reply, answer) = oneshot::channel();
        let queued = self
            .apply
            .as_ref()
            .is_some_and(|a| a.send(Request { batch, reply }).is_ok());
        Box::pin(async move {
            let stopped = || {
                (0..n)
                    .map(|_| Err(err("the store is shutting down")))
                    .collect()
            };
            if !queued {
                return stopped();
            }
            answer.await.unwrap_or_else(|_| stopped())
        })
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.apply.take();
        if let Some(t) = self.threads.take() {
            let _ = t.join();
        }
    }
}

/// Applies queued batches, one redb transaction (without fsync) per turn, and checkpoints.
fn apply_loop(inner: Arc<Inner>, requests: std_mpsc::Receiver<Request>, log: Log) {
    let (to_log, logged) = std_mpsc::channel();
    let writer = {
        let inner = Arc::clone(&inner);
        std::thread::Builder::new()
            .name("store-log".into())
            .spawn(move || log_loop(&inner, logged, log))
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            // Dropping the requests answers each with "shutting down".
            tracing::error!(error = %e, "Starting the store's log thread failed");
            return;
        }
    };
    let mut no = 0u64;
    let mut since_checkpoint = 0usize;
    let mut last_checkpoint = Instant::now();
    while let Ok(first) = requests.recv() {
        let mut turn = vec![first];
        let mut n = turn[0].batch.len();
        while n < MAX_APPLY {
            let Ok(more) = requests.try_recv() else { break };
            n += more.batch.len();
            turn.push(more);
        }
        no += 1;
        let sizes: Vec<usize> = turn.iter().map(|r| r.batch.len()).collect();
        let mut replies = Vec::with_capacity(turn.len());
        let mut batch = Vec::with_capacity(n);
        for r in turn {
            replies.push(r.reply);
            batch.extend(r.batch);
        }
        let (record, results) = match inner.progress.failed() {
            Some(why) => (Vec::new(), failed_all(n, &err(why))),
            None => {
                inner.progress.visible.store(no, Ordering::SeqCst);
                let mut record = Record::new();
                match append_batch(&inner.db, batch, &mut record) {
                    Ok(done) if record.is_empty() => {
                        (Vec::new(), done.into_iter().map(Ok).collect())
                    }
                    Ok(done) => (record.finish(), done.into_iter().map(Ok).collect()),
                    Err(e) => (Vec::new(), failed_all(n, &e)),
                }
            }
        };
        since_checkpoint += record.len();
        let mut results = results.into_iter();
        let answers = replies
            .into_iter()
            .zip(sizes)
            .map(|(reply, size)| (reply, results.by_ref().take(size).collect()))
            .collect();
        if to_log
            .send(ToLog::Batch {
                no,
                record,
                answers,
            })
            .is_err()
        {
            break;
        }
        if since_checkpoint > 0
            && (since_checkpoint >= CHECKPOINT_BYTES
                || last_checkpoint.elapsed() >= CHECKPOINT_EVERY)
            && inner.progress.failed().is_none()
        {
            last_checkpoint = Instant::now();
            // A durable commit makes every earlier non-durable one durable too.
            let durable = inner
                .db
                .begin_write()
                .map_err(err)
                .and_then(|t| t.commit().map_err(err));
            match durable {
                Ok(()) => {
                    since_checkpoint = 0;
                    if to_log.send(ToLog::Checkpoint { no }).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Store checkpoint failed; the log keeps the messages")
                }
            }
        }
    }
    drop(to_log);
    let _ = writer.join();
}

fn failed_all(n: usize, e: &StoreError) -> Results {
    (0..n).map(|_| Err(e.clone())).collect()
}

/// Writes and syncs what the apply thread sends, then answers; merges what queued meanwhile
/// into one write and one `fdatasync`.
fn log_loop(inner: &Inner, logged: std_mpsc::Receiver<ToLog>, mut log: Log) {
    while let Ok(first) = logged.recv() {
        let mut turn = vec![first];
        turn.extend(logged.try_iter());
        let mut bytes = Vec::new();
        let mut waiting = Vec::new();
        let mut through = 0;
        for item in turn {
            match item {
                ToLog::Batch {
                    no,
                    record,
                    answers,
                } => {
                    bytes.extend_from_slice(&record);
                    waiting.extend(answers);
                    through = no;
                }
                ToLog::Checkpoint { no } => {
                    // Durable in redb: what waits needs no log write, nor the log what it holds.
                    bytes.clear();
                    inner.progress.advance(no);
                    answer(&mut waiting);
                    if let Err(e) = log.clear() {
                        tracing::warn!(error = %e, path = %log.path().display(), "Emptying the write-ahead log failed; its records replay harmlessly");
                    }
                }
            }
        }
        if let Some(why) = inner.progress.failed() {
            fail(&mut waiting, &err(why));
        } else if !bytes.is_empty()
            && let Err(e) = log.append(&bytes)
        {
            let why = format!("writing {}: {e}", log.path().display());
            tracing::error!(error = %why, "The write-ahead log failed; no more sends are acked");
            inner.progress.fail(why.clone());
            fail(&mut waiting, &err(why));
        }
        inner.progress.advance(through);
        answer(&mut waiting);
    }
}

fn answer(waiting: &mut Vec<(oneshot::Sender<Results>, Results)>) {
    for (reply, results) in waiting.drain(..) {
        let _ = reply.send(results);
    }
}

fn fail(waiting: &mut [(oneshot::Sender<Results>, Results)], e: &StoreError) {
    for (_, results) in waiting.iter_mut() {
        let n = results.len();
        *results = failed_all(n, e);
    }
}

/// Applies the log's messages that redb lost (its seq not yet reached in the room), durably.
/// Returns how many it applied.
fn replay(db: &Database, entries: &[&[u8]]) -> Result<usize, StoreError> {
    if entries.is_empty() {
        return Ok(0);
    }
    let txn = db.begin_write().map_err(err)?;
    let mut restored = 0;
    {
        let mut messages = txn.open_table(MESSAGES).map_err(err)?;
        let mut room_seq = txn.open_table(ROOM_SEQ).map_err(err)?;
        let mut idempotency = txn.open_table(IDEMPOTENCY).map_err(err)?;
        for entry in entries {
            let m = decode(entry)?;
            let reached = room_seq
                .get(m.room.as_str())
                .map_err(err)?
                .map_or(0, |g| g.value());
            if reached >= m.seq {
                continue;
            }
            room_seq.insert(m.room.as_str(), m.seq).map_err(err)?;
            messages
                .insert((m.room.as_str(), m.seq), *entry)
                .map_err(err)?;
            idempotency
                .insert(
                    (
                        m.user.id,
                        idempotency_scope(&m.room, &m.client_msg_id).as_str(),
                    ),
                    (m.room.as_str(), m.seq, m.ts),
                )
                .map_err(err)?;
            restored += 1;
        }
    }
    txn.commit().map_err(err)?;
    Ok(restored)
}

fn decode(bytes: &[u8]) -> Result<ChatMessage, StoreError> {
    serde_json::from_slice(bytes).map_err(corrupt)
}

/// Applies one batch in one transaction without fsync, pushing each new message to `record`.
fn append_batch(
    db: &Database,
    batch: Vec<NewMessage>,
    record: &mut Record,
) -> Result<Vec<Appended>, StoreError> {
    let mut txn = db.begin_write().map_err(err)?;
    // Durable through the write-ahead log; the next checkpoint makes it durable here.
    txn.set_durability(Durability::None).map_err(err)?;
    let mut out = Vec::with_capacity(batch.len());
    {
        let mut messages = txn.open_table(MESSAGES).map_err(err)?;
        let mut room_seq = txn.open_table(ROOM_SEQ).map_err(err)?;
        let mut idempotency = txn.open_table(IDEMPOTENCY).map_err(err)?;
        for new in batch {
            let scope = idempotency_scope(&new.room, &new.client_msg_id);
            let earlier = idempotency
                .get((new.user.id, scope.as_str()))
                .map_err(err)?
                .map(|g| {
                    let (room, seq, ts) = g.value();
                    (room.to_string(), seq, ts)
                })
                .filter(|(_, _, ts)| new.ts - ts < IDEMPOTENCY_WINDOW_MS);
            if let Some((room, seq, _)) = earlier {
                let original = messages
                    .get((room.as_str(), seq))
                    .map_err(err)?
                    .ok_or_else(|| {
                        corrupt(format!("idempotency key points at missing {room}/{seq}"))
                    })?;
                out.push(Appended::Duplicate(decode(original.value())?));
                continue;
            }
            let seq = room_seq
                .get(new.room.as_str())
                .map_err(err)?
                .map_or(0, |g| g.value())
                + 1;
            room_seq.insert(new.room.as_str(), seq).map_err(err)?;
            let message = ChatMessage {
                room: new.room,
                seq,
                user: new.user,
                text: new.text,
                ts: new.ts,
                client_msg_id: new.client_msg_id,
                attachment: new.attachment.map(|a| *a),
                deleted: false,
            };
            let json = serde_json::to_vec(&message).map_err(corrupt)?;
            messages
                .insert((message.room.as_str(), seq), json.as_slice())
                .map_err(err)?;
            record.push(&json);
            idempotency
                .insert(
                    (message.user.id, scope.as_str()),
                    (message.room.as_str(), seq, message.ts),
                )
                .map_err(err)?;
            out.push(Appended::Stored(message));
        }
    }
    txn.commit().map_err(err)?;
    Ok(out)
}

fn read_history(
    txn: &ReadTransaction,
    room: &str,
    q: HistoryQuery,
) -> Result<HistoryPage, StoreError> {
    let messages = txn.open_table(MESSAGES).map_err(err)?;
    let low = q.after.map_or(0, |a| a.saturating_add(1));
    let high = q.before.map_or(u64::MAX, |b| b.saturating_sub(1));
    let mut page = HistoryPage::default();
    if q.before == Some(0) || low > high {
        return Ok(page);
    }
    let range = messages.range((room, low)..=(room, high)).map_err(err)?;
    let take = q.limit + 1;
    let mut picked = Vec::with_capacity(take.min(256));
    if q.after.is_some() {
        for item in range.take(take) {
            let (_, v) = item.map_err(err)?;
            picked.push(decode(v.value())?);
        }
        page.has_more = picked.len() > q.limit;
        picked.truncate(q.limit);
    } else {
        for item in range.rev().take(take) {
            let (_, v) = item.map_err(err)?;
            picked.push(decode(v.value())?);
        }
        page.has_more = picked.len() > q.limit;
        picked.truncate(q.limit);
        picked.reverse();
    }
    page.messages = picked;
    Ok(page)
}

#[async_trait]
impl Store for EmbeddedStore {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(err)?;
            txn.open_table(COUNTERS).map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn reserve_user_ids(&self, count: u64) -> Result<RangeInclusive<u64>, StoreError> {
        let count = count.max(1);
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(err)?;
            let last = {
                let mut counters = txn.open_table(COUNTERS).map_err(err)?;
                let last = counters
                    .get(USERS_COUNTER)
                    .map_err(err)?
                    .map_or(0, |g| g.value())
                    + count;
                counters.insert(USERS_COUNTER, last).map_err(err)?;
                last
            };
            txn.commit().map_err(err)?;
            Ok(last + 1 - count..=last)
        })
        .await
    }

    async fn append(&self, batch: Vec<NewMessage>) -> Vec<Result<Appended, StoreError>> {
        self.submit(batch).await
    }

    fn pipeline(&self) -> usize {
        PIPELINE
    }

    fn start_append(self: Arc<Self>, batch: Vec<NewMessage>) -> BoxFuture<'static, Results> {
        self.submit(batch)
    }

    async fn history(&self, room: &str, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        let room = room.to_string();
        self.reading(move |txn| read_history(txn, &room, query))
            .await
    }

    async fn settle(&self, room: &str, seq: u64) -> Result<Option<ChatMessage>, StoreError> {
        // A seq is allocated and written in one transaction here: it is either stored or was
        // never handed out (nothing to mark).
        let room = room.to_string();
        self.reading(move |txn| {
            let messages = txn.open_table(MESSAGES).map_err(err)?;
            messages
                .get((room.as_str(), seq))
                .map_err(err)?
                .map(|v| decode(v.value()))
                .transpose()
        })
        .await
    }

    async fn last_seq(&self, room: &str) -> Result<u64, StoreError> {
        let room = room.to_string();
        self.reading(move |txn| {
            let seqs = txn.open_table(ROOM_SEQ).map_err(err)?;
            Ok(seqs
                .get(room.as_str())
                .map_err(err)?
                .map_or(0, |g| g.value()))
        })
        .await
    }

    async fn delete_message(
        &self,
        room: &str,
        seq: u64,
    ) -> Result<Option<ChatMessage>, StoreError> {
        let room = room.to_string();
        self.blocking(move |db| moderation::delete_message(db, &room, seq))
            .await
    }

    async fn set_mute(&self, room: &str, user_id: u64, until_ms: i64) -> Result<(), StoreError> {
        let room = room.to_string();
        self.blocking(move |db| moderation::set_mute(db, &room, user_id, until_ms))
            .await
    }

    async fn mutes(&self, room: &str, now_ms: i64) -> Result<Vec<Mute>, StoreError> {
        let room = room.to_string();
        self.blocking(move |db| moderation::mutes(db, &room, now_ms))
            .await
    }

    async fn put_read_positions(&self, room: &str, seen: &[(u64, u64)]) -> Result<(), StoreError> {
        let (room, seen) = (room.to_string(), seen.to_vec());
        self.blocking(move |db| receipts::put(db, &room, &seen))
            .await
    }

    async fn read_positions(&self, room: &str) -> Result<Vec<(u64, u64)>, StoreError> {
        let room = room.to_string();
        self.blocking(move |db| receipts::get(db, &room)).await
    }

    async fn write_connections(&self, changes: &[ConnectionChange]) -> Result<(), StoreError> {
        let changes = changes
            .iter()
            .map(|change| match change {
                ConnectionChange::Put(conn) => serde_json::to_vec(conn)
                    .map(|json| (conn.conn_id.clone(), Some(json)))
                    .map_err(corrupt),
                ConnectionChange::Remove(conn_id) => Ok((conn_id.clone(), None)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(err)?;
            // Live connections are advisory on one node: no fsync for them.
            txn.set_durability(redb::Durability::None).map_err(err)?;
            {
                let mut table = txn.open_table(CONNECTIONS).map_err(err)?;
                for (id, json) in &changes {
                    match json {
                        Some(json) => table.insert(id.as_str(), json.as_slice()).map(drop),
                        None => table.remove(id.as_str()).map(drop),
                    }
                    .map_err(err)?;
                }
            }
            txn.commit().map_err(err)
        })
        .await
    }

    async fn touch_connections(&self, _conn_ids: &[String]) -> Result<(), StoreError> {
        // One process: a connection is live exactly while its record exists.
        Ok(())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // An empty durable commit also makes earlier non-durable ones durable.
        self.blocking(|db| {
            let txn = db.begin_write().map_err(err)?;
            txn.commit().map_err(err)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::User;

    fn new(room: &str, id: &str) -> NewMessage {
        NewMessage {
            room: room.into(),
            user: User {
                id: 7,
                nickname: "seven".into(),
                avatar: "otter".into(),
            },
            client_msg_id: id.into(),
            text: format!("text of {id}"),
            ts: 1_763_800_000_000,
            attachment: None,
        }
    }

    fn stored(a: &Result<Appended, StoreError>) -> ChatMessage {
        match a {
            Ok(Appended::Stored(m)) => m.clone(),
            other => panic!("not stored: {other:?}"),
        }
    }

    fn seqs(page: &HistoryPage) -> Vec<u64> {
        page.messages.iter().map(|m| m.seq).collect()
    }

    const ALL: HistoryQuery = HistoryQuery {
        before: None,
        after: Some(0),
        limit: 100,
    };

    /// A crash after the log's fsync but before redb's checkpoint leaves messages only in the
    /// log: opening applies them (with their idempotency keys) and skips what redb kept.
    #[tokio::test]
    async fn the_log_restores_what_redb_lost_and_replays_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let kept: Vec<ChatMessage> = store
            .append(vec![new("r", "a"), new("r", "b")])
            .await
            .iter()
            .map(stored)
            .collect();
        store.flush().await.unwrap();
        drop(store);
        // What the log of a crashed run holds: seq 2 (also in redb) and seq 3 (only here).
        let lost = ChatMessage {
            seq: 3,
            client_msg_id: "c".into(),
            text: "text of c".into(),
            ..kept[1].clone()
        };
        let mut record = Record::new();
        for m in [&kept[1], &lost] {
            record.push(&serde_json::to_vec(m).unwrap());
        }
        std::fs::write(dir.path().join(LOG_FILE), record.finish()).unwrap();

        for _ in 0..2 {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let page = store.history("r", ALL).await.unwrap();
            assert_eq!(seqs(&page), [1, 2, 3]);
            assert_eq!(page.messages[2], lost);
            assert_eq!(store.last_seq("r").await.unwrap(), 3);
            assert_eq!(
                std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len(),
                0,
                "the log starts over once applied"
            );
            drop(store);
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let again = store.append(vec![new("r", "c"), new("r", "d")]).await;
        assert!(
            matches!(&again[0], Ok(Appended::Duplicate(m)) if *m == lost),
            "{:?}",
            again[0]
        );
        assert_eq!(stored(&again[1]).seq, 4);
    }

    /// Batches in flight together keep their order: seqs follow the order they were started.
    #[tokio::test]
    async fn pipelined_batches_take_seqs_in_start_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let started: Vec<_> = (0..20)
            .map(|i| {
                let batch = (0..5).map(|j| new("p", &format!("{i}-{j}"))).collect();
                Arc::clone(&store).start_append(batch)
            })
            .collect();
        let mut next = 1;
        for batch in started {
            for r in batch.await {
                assert_eq!(stored(&r).seq, next);
                next += 1;
            }
        }
        let page = store.history("p", ALL).await.unwrap();
        assert_eq!(page.messages.len(), 100);
    }
}
