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
//!    messages as one record to the write-ahead log ([`wal`]);
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
use std::sync::atomic::AtomicU64;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use parking_lot::{Condvar, Mutex};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};
use tokio::sync::oneshot;

use super::{
    Appended, ConnectionChange, HistoryPage, HistoryQuery, Mute, NewMessage, Store, StoreError,
};
use wal::Log;

mod moderation;
mod pipeline;
mod reactions;
mod receipts;
mod tables;
pub mod wal;

use crate::protocol::ChatMessage;
use pipeline::{Durable, Progress, Request, Results, apply_loop};
use tables::{
    CONNECTIONS, COUNTERS, IDEMPOTENCY, MESSAGES, ROOM_SEQ, decode, read_history, replay,
};

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

    async fn react(
        &self,
        room: &str,
        seq: u64,
        change: super::reactions::ReactionChange,
    ) -> Result<super::reactions::Reacted, StoreError> {
        let room = room.to_string();
        self.blocking(move |db| reactions::react(db, &room, seq, change))
            .await
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
    use super::wal::Record;
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
            reply_to: None,
            moderator: false,
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
