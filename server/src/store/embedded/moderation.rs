//! Moderation on the embedded store: tombstones replace deleted messages in place (same key,
//! so seqs and history pages hold), and mutes live in their own table keyed by (room, user).
//! A child of `embedded` so it shares its tables and helpers; kept apart from the write path.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::tables::{MESSAGES, decode};
use super::{corrupt, err};
use crate::protocol::ChatMessage;
use crate::store::{Mute, StoreError};

/// (room, user id) -> muted until (ms since the epoch).
const MUTES: TableDefinition<'_, (&str, u64), i64> = TableDefinition::new("mutes");

pub(super) fn delete_message(
    db: &Database,
    room: &str,
    seq: u64,
) -> Result<Option<ChatMessage>, StoreError> {
    let txn = db.begin_write().map_err(err)?;
    let tombstone = {
        let mut messages = txn.open_table(MESSAGES).map_err(err)?;
        let Some(found) = messages
            .get((room, seq))
            .map_err(err)?
            .map(|v| decode(v.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        let tombstone = found.into_tombstone();
        let json = serde_json::to_vec(&tombstone).map_err(corrupt)?;
        messages.insert((room, seq), json.as_slice()).map_err(err)?;
        tombstone
    };
    txn.commit().map_err(err)?;
    Ok(Some(tombstone))
}

pub(super) fn set_mute(
    db: &Database,
    room: &str,
    user_id: u64,
    until_ms: i64,
) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(err)?;
    txn.open_table(MUTES)
        .map_err(err)?
        .insert((room, user_id), until_ms)
        .map_err(err)?;
    txn.commit().map_err(err)
}

pub(super) fn mutes(db: &Database, room: &str, now_ms: i64) -> Result<Vec<Mute>, StoreError> {
    let txn = db.begin_read().map_err(err)?;
    let table = match txn.open_table(MUTES) {
        Ok(table) => table,
        // Nobody was ever muted here.
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut out = Vec::new();
    for item in table.range((room, 0)..=(room, u64::MAX)).map_err(err)? {
        let (key, until) = item.map_err(err)?;
        let until_ms = until.value();
        if until_ms > now_ms {
            out.push(Mute {
                user_id: key.value().1,
                until_ms,
            });
        }
    }
    Ok(out)
}
