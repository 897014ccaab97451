//! Read positions on the embedded store: a table keyed by (room, user) holding the highest seq
//! the user has seen. A child of `embedded` so it shares its helpers; apart from the write path.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use super::err;
use crate::store::StoreError;

/// (room, user id) -> highest seq seen.
const READS: TableDefinition<'_, (&str, u64), u64> = TableDefinition::new("read_positions");

pub(super) fn put(db: &Database, room: &str, seen: &[(u64, u64)]) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(err)?;
    // Advisory and rewritten often: no fsync of its own (the next durable commit carries it).
    txn.set_durability(redb::Durability::None).map_err(err)?;
    {
        let mut table = txn.open_table(READS).map_err(err)?;
        for &(user_id, seq) in seen {
            let old = table
                .get((room, user_id))
                .map_err(err)?
                .map_or(0, |g| g.value());
            if seq > old {
                table.insert((room, user_id), seq).map_err(err)?;
            }
        }
    }
    txn.commit().map_err(err)
}

pub(super) fn get(db: &Database, room: &str) -> Result<Vec<(u64, u64)>, StoreError> {
    let txn = db.begin_read().map_err(err)?;
    let table = match txn.open_table(READS) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut out = Vec::new();
    for item in table.range((room, 0)..=(room, u64::MAX)).map_err(err)? {
        let (key, seq) = item.map_err(err)?;
        out.push((key.value().1, seq.value()));
    }
    Ok(out)
}
