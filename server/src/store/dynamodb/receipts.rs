//! Read positions on DynamoDB, with no new table or index: one item per user and room in the
//! messages table, in the room's own partition `{room: "read#{room}", seq: user_id, pos}`
//! (room ids never hold `#`; no `user_id` attribute, so it stays out of the `by-user` index).
//! Written in `BatchWriteItem`s of 25 (the hub writes a user at most every
//! `READ_STORE_SECS`), read with one `Query` when a room first opens on a task.

use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::DynamoStore;
use super::counts::Op;
use super::items::{Item, get_n, n, s, unavailable};
use crate::store::StoreError;

/// Items per `BatchWriteItem` (DynamoDB's limit).
const BATCH: usize = 25;
/// Rounds of resending what DynamoDB left unprocessed (throttling) before giving up.
const MAX_ROUNDS: usize = 4;
/// Pages of a room's positions read at most (each up to 1 MB, ~40 000 positions).
const MAX_PAGES: usize = 16;

fn partition(room: &str) -> String {
    format!("read#{room}")
}

impl DynamoStore {
    pub(super) async fn write_positions(
        &self,
        room: &str,
        seen: &[(u64, u64)],
    ) -> Result<(), StoreError> {
        let table = &self.tables.messages;
        for chunk in seen.chunks(BATCH) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|&(user_id, seq)| {
                    let item = Item::from([
                        ("room".to_string(), s(partition(room))),
                        ("seq".to_string(), n(user_id)),
                        ("pos".to_string(), n(seq)),
                    ]);
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .unwrap_or_else(|e| unreachable!("the item is set: {e}"));
                    WriteRequest::builder().put_request(put).build()
                })
                .collect();
            for round in 0..MAX_ROUNDS {
                self.counters.count(Op::BatchWriteItem);
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table.clone(), requests)
                    .send()
                    .await
                    .map_err(|e| {
                        unavailable(&format!("BatchWriteItem read positions of {room}"), e)
                    })?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut left| left.remove(table.as_str()))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if round + 1 == MAX_ROUNDS {
                    return Err(StoreError::Unavailable(format!(
                        "dynamodb BatchWriteItem left {} read positions of {room} unprocessed",
                        requests.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50 << round)).await;
            }
        }
        Ok(())
    }

    pub(super) async fn query_positions(&self, room: &str) -> Result<Vec<(u64, u64)>, StoreError> {
        let items = self
            .partition_items(
                partition(room),
                MAX_PAGES,
                &format!("read positions of {room}"),
            )
            .await?;
        items
            .iter()
            .map(|item| Ok((get_n(item, "seq")?, get_n(item, "pos")?)))
            .collect()
    }
}
