//! New guests' user ids, drawn from the store's atomic counter a block at a time. One counter
//! write per new guest would put a durable write (an fsync on the embedded store, an update of
//! one hot item on DynamoDB) on every `POST /api/session`, in line with everyone's sends; a
//! block of [`BLOCK`] makes that one write per [`BLOCK`] guests. Ids stay unique and increase
//! on each task; the rest of a block is skipped when the task stops, so ids are not dense.

use std::ops::RangeInclusive;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::{Store, StoreError};

/// Ids reserved per counter write.
pub const BLOCK: u64 = 32;

/// A task's supply of new user ids.
pub struct UserIds {
    store: Arc<dyn Store>,
    /// What is left of the current block (empty at start).
    block: Mutex<RangeInclusive<u64>>,
}

impl UserIds {
    pub fn new(store: Arc<dyn Store>) -> Self {
        #[allow(clippy::reversed_empty_ranges)]
        let empty = 1..=0;
        Self {
            store,
            block: Mutex::new(empty),
        }
    }

    /// A new, never before used user id.
    pub async fn next(&self) -> Result<u64, StoreError> {
        let mut block = self.block.lock().await;
        if let Some(id) = block.next() {
            return Ok(id);
        }
        *block = self.store.reserve_user_ids(BLOCK).await?;
        block
            .next()
            .ok_or_else(|| StoreError::Corrupt("the users counter reserved no id".into()))
    }
}
