//! The zero-configuration store: redb, an embedded, pure-Rust, ACID key-value database in one
//! file under the data dir. Chosen because it is well kept, needs no C toolchain or server,
//! gives crash-safe commits (copy-on-write B-trees, fsync on commit), and ordered tuple keys
//! make a room's history a plain range scan.
//!
//! Writes are group-committed by the caller ([`crate::commit`]): one `append` is one write
//! transaction and one fsync, however many messages it carries.

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{
    Appended, ConnectionRecord, HistoryPage, HistoryQuery, IDEMPOTENCY_WINDOW_MS, Mute, NewMessage,
    Store, StoreError,
};

mod moderation;
mod receipts;
use crate::protocol::ChatMessage;

/// (room, seq) -> message JSON.
const MESSAGES: TableDefinition<'_, (&str, u64), &[u8]> = TableDefinition::new("messages");
/// room -> highest seq allocated.
const ROOM_SEQ: TableDefinition<'_, &str, u64> = TableDefinition::new("room_seq");
/// (user id, client_msg_id) -> (room, seq, ts).
const IDEMPOTENCY: TableDefinition<'_, (u64, &str), (&str, u64, i64)> =
    TableDefinition::new("idempotency");
/// name -> value; holds the user counter.
const COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("counters");
/// conn_id -> connection JSON.
const CONNECTIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("connections");

const USERS_COUNTER: &str = "users";

/// redb file under the data dir.
pub struct EmbeddedStore {
    db: Arc<Database>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) `chat.redb` in `dir`. Connections recorded by an earlier run are
    /// dropped: on one node, none of them can still be live.
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
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs blocking redb work off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| err(format!("store worker failed: {e}")))?
    }
}

fn decode(bytes: &[u8]) -> Result<ChatMessage, StoreError> {
    serde_json::from_slice(bytes).map_err(corrupt)
}

fn append_batch(db: &Database, batch: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
    let txn = db.begin_write().map_err(err)?;
    let mut out = Vec::with_capacity(batch.len());
    {
        let mut messages = txn.open_table(MESSAGES).map_err(err)?;
        let mut room_seq = txn.open_table(ROOM_SEQ).map_err(err)?;
        let mut idempotency = txn.open_table(IDEMPOTENCY).map_err(err)?;
        for new in batch {
            let key = (new.user.id, new.client_msg_id.as_str());
            let earlier = idempotency
                .get(key)
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
            idempotency
                .insert(
                    (message.user.id, message.client_msg_id.as_str()),
                    (message.room.as_str(), seq, message.ts),
                )
                .map_err(err)?;
            out.push(Appended::Stored(message));
        }
    }
    txn.commit().map_err(err)?;
    Ok(out)
}

fn read_history(db: &Database, room: &str, q: HistoryQuery) -> Result<HistoryPage, StoreError> {
    let txn = db.begin_read().map_err(err)?;
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
        let n = batch.len();
        match self.blocking(move |db| append_batch(db, batch)).await {
            Ok(done) => done.into_iter().map(Ok).collect(),
            Err(e) => {
                let message = e.to_string();
                (0..n)
                    .map(|_| Err(StoreError::Unavailable(message.clone())))
                    .collect()
            }
        }
    }

    async fn history(&self, room: &str, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        let room = room.to_string();
        self.blocking(move |db| read_history(db, &room, query))
            .await
    }

    async fn settle(&self, room: &str, seq: u64) -> Result<Option<ChatMessage>, StoreError> {
        // A seq is allocated and written in one transaction here: it is either stored or was
        // never handed out (nothing to mark).
        let room = room.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(err)?;
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
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(err)?;
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

    async fn put_connection(&self, conn: &ConnectionRecord) -> Result<(), StoreError> {
        let id = conn.conn_id.clone();
        let json = serde_json::to_vec(conn).map_err(corrupt)?;
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(err)?;
            // Live connections are advisory on one node: no fsync per connect.
            txn.set_durability(redb::Durability::None).map_err(err)?;
            txn.open_table(CONNECTIONS)
                .map_err(err)?
                .insert(id.as_str(), json.as_slice())
                .map_err(err)?;
            txn.commit().map_err(err)
        })
        .await
    }

    async fn touch_connections(&self, _conn_ids: &[String]) -> Result<(), StoreError> {
        // One process: a connection is live exactly while its record exists.
        Ok(())
    }

    async fn remove_connection(&self, conn_id: &str) -> Result<(), StoreError> {
        let id = conn_id.to_string();
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(err)?;
            txn.set_durability(redb::Durability::None).map_err(err)?;
            txn.open_table(CONNECTIONS)
                .map_err(err)?
                .remove(id.as_str())
                .map_err(err)?;
            txn.commit().map_err(err)
        })
        .await
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
