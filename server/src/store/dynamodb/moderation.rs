//! Moderation on DynamoDB, with no new table or index:
//! - a deleted message keeps its item (same key, so seqs and history pages hold): one
//!   `UpdateItem` empties `text`, drops `attachment` and sets `deleted`, on condition that a
//!   message is there (not an abandoned seq);
//! - a mute is an item of the messages table in the room's own partition
//!   `{room: "mute#{room}", seq: user_id, until, expires_at}` (room ids never hold `#`), so a
//!   room's mutes are one `Query`; it carries no `user_id`, staying out of the `by-user` index,
//!   and TTL drops it after it ends.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::DynamoStore;
use super::counts::Op;
use super::items::{Item, get_n, message_from_item, message_key, n, s, unavailable};
use crate::protocol::ChatMessage;
use crate::store::{Mute, StoreError};

/// Pages of a room's mutes read at most (each up to 1 MB: far beyond any room's mutes).
const MAX_MUTE_PAGES: usize = 16;

fn mute_partition(room: &str) -> String {
    format!("mute#{room}")
}

impl DynamoStore {
    pub(super) async fn tombstone_message(
        &self,
        room: &str,
        seq: u64,
    ) -> Result<Option<ChatMessage>, StoreError> {
        let table = &self.tables.messages;
        self.counters.count(Op::UpdateItem);
        let out = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(message_key(room, seq)))
            .condition_expression("attribute_exists(#u)")
            .update_expression("SET #t = :empty, #d = :yes REMOVE #a")
            .expression_attribute_names("#u", "user_id")
            .expression_attribute_names("#t", "text")
            .expression_attribute_names("#d", "deleted")
            .expression_attribute_names("#a", "attachment")
            .expression_attribute_values(":empty", s(""))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => out.attributes.as_ref().map(message_from_item).transpose(),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(None)
            }
            Err(e) => Err(unavailable(
                &format!("UpdateItem delete {room}/{seq} on {table}"),
                e,
            )),
        }
    }

    pub(super) async fn put_mute(
        &self,
        room: &str,
        user_id: u64,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        let table = &self.tables.messages;
        let item = Item::from([
            ("room".to_string(), s(mute_partition(room))),
            ("seq".to_string(), n(user_id)),
            ("until".to_string(), n(until_ms)),
            ("expires_at".to_string(), n(until_ms.div_euclid(1000) + 1)),
        ]);
        self.counters.count(Op::PutItem);
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable(&format!("PutItem mute in {room} on {table}"), e))?;
        Ok(())
    }

    pub(super) async fn read_mutes(
        &self,
        room: &str,
        now_ms: i64,
    ) -> Result<Vec<Mute>, StoreError> {
        let items = self
            .partition_items(
                mute_partition(room),
                MAX_MUTE_PAGES,
                &format!("mutes of {room}"),
            )
            .await?;
        let mut out = Vec::new();
        for item in &items {
            let until_ms: i64 = get_n(item, "until")?;
            if until_ms > now_ms {
                out.push(Mute {
                    user_id: get_n(item, "seq")?,
                    until_ms,
                });
            }
        }
        Ok(out)
    }
}
