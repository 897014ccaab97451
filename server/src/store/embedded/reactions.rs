//! Reactions on the embedded store: kept inside the message's own record (so history and
//! `joined` carry them with no second read), changed in one write transaction.
//! A child of `embedded` so it shares its tables and helpers; apart from the write path.

use redb::{Database, ReadableTable};

use super::{MESSAGES, corrupt, decode, err};
use crate::store::StoreError;
use crate::store::reactions::{Reacted, ReactionChange, toggle};

pub(super) fn react(
    db: &Database,
    room: &str,
    seq: u64,
    change: ReactionChange,
) -> Result<Reacted, StoreError> {
    let txn = db.begin_write().map_err(err)?;
    let reacted = {
        let mut messages = txn.open_table(MESSAGES).map_err(err)?;
        let Some(mut found) = messages
            .get((room, seq))
            .map_err(err)?
            .map(|v| decode(v.value()))
            .transpose()?
            .filter(|m| !m.deleted)
        else {
            return Ok(Reacted::Missing);
        };
        let reacted = toggle(&mut found, change);
        if matches!(reacted, Reacted::Changed(_)) {
            let json = serde_json::to_vec(&found).map_err(corrupt)?;
            messages.insert((room, seq), json.as_slice()).map_err(err)?;
        }
        reacted
    };
    txn.commit().map_err(err)?;
    Ok(reacted)
}
