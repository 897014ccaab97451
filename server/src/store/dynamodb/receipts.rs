//! Read positions on DynamoDB, with no new table or index: one item per user and room in the
//! messages table, in the room's own partition `{room: "read#{room}", seq: user_id, pos}`
//! (room ids never hold `#`; no `user_id` attribute, so it stays out of the `by-user` index).
//! Written in `BatchWriteItem`s of 25 (the hub writes a user at most every
//! `READ_STORE_SECS`), read with one `Query` when a room first opens on a task.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::DynamoStore;
use super::items::{Item, get_n, n, s};
use crate::store::StoreError;

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
        let requests = seen
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
        self.batch_write(
            &self.tables.messages,
            requests,
            &format!("read positions of {room}"),
        )
        .await
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
