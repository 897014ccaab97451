//! The embedded store's redb tables and the transactions on them: appending a batch (seqs,
//! idempotency, history), reading a page of history, and replaying the log at open.

use redb::{Database, Durability, ReadTransaction, ReadableTable, TableDefinition};

use super::wal::Record;
use super::{corrupt, err};
use crate::protocol::ChatMessage;
use crate::store::{
    Appended, HistoryPage, HistoryQuery, IDEMPOTENCY_WINDOW_MS, NewMessage, StoreError,
    idempotency_scope,
};

/// (room, seq) -> message JSON.
pub(super) const MESSAGES: TableDefinition<'_, (&str, u64), &[u8]> =
    TableDefinition::new("messages");
/// room -> highest seq allocated.
pub(super) const ROOM_SEQ: TableDefinition<'_, &str, u64> = TableDefinition::new("room_seq");
/// (user id, [`idempotency_scope`]) -> (room, seq, ts).
pub(super) const IDEMPOTENCY: TableDefinition<'_, (u64, &str), (&str, u64, i64)> =
    TableDefinition::new("idempotency");
/// name -> value; holds the user counter.
pub(super) const COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("counters");
/// conn_id -> connection JSON.
pub(super) const CONNECTIONS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("connections");

/// Applies the log's messages that redb lost (its seq not yet reached in the room), durably.
/// Returns how many it applied.
pub(super) fn replay(db: &Database, entries: &[&[u8]]) -> Result<usize, StoreError> {
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

pub(super) fn decode(bytes: &[u8]) -> Result<ChatMessage, StoreError> {
    serde_json::from_slice(bytes).map_err(corrupt)
}

/// Applies one batch in one transaction without fsync, pushing each new message to `record`.
pub(super) fn append_batch(
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
                reactions: Vec::new(),
                reactions_version: 0,
                reply_to: new.reply_to,
                moderator: new.moderator,
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

pub(super) fn read_history(
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
