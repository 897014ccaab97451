//! `BatchWriteItem` for the writes that go in bulk (read positions, connection records): in
//! chunks of 25 (DynamoDB's limit), resending what DynamoDB leaves unprocessed (throttling)
//! after a short backoff, a few rounds before giving up with an error that says how many.

use std::time::Duration;

use aws_sdk_dynamodb::types::WriteRequest;

use super::DynamoStore;
use super::counts::Op;
use super::items::unavailable;
use crate::store::StoreError;

/// Items per `BatchWriteItem` (DynamoDB's limit).
pub const BATCH: usize = 25;
/// Rounds of resending what DynamoDB left unprocessed before giving up.
const MAX_ROUNDS: usize = 4;

impl DynamoStore {
    /// Writes `requests` to `table`, [`BATCH`] at a time; `what` names them in errors.
    pub(super) async fn batch_write(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
        what: &str,
    ) -> Result<(), StoreError> {
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let mut chunk: Vec<WriteRequest> = requests.by_ref().take(BATCH).collect();
            for round in 0..MAX_ROUNDS {
                self.counters.count(Op::BatchWriteItem);
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, chunk)
                    .send()
                    .await
                    .map_err(|e| unavailable(&format!("BatchWriteItem {what}"), e))?;
                chunk = out
                    .unprocessed_items
                    .and_then(|mut left| left.remove(table))
                    .unwrap_or_default();
                if chunk.is_empty() {
                    break;
                }
                if round + 1 == MAX_ROUNDS {
                    return Err(StoreError::Unavailable(format!(
                        "dynamodb BatchWriteItem left {} {what} unprocessed",
                        chunk.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50 << round)).await;
            }
        }
        Ok(())
    }
}
