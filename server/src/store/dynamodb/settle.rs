//! Settling a reserved seq: whoever gives up waiting for a seq (the writer whose call failed
//! or timed out, or a reader that has waited long enough) puts a tombstone at the message's
//! key, on condition that nothing is there. Exactly one of the message write (same
//! condition) and the tombstone wins, so a seq is either a message or abandoned for good: a
//! late write can never land behind a reader that moved on.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;

use super::DynamoStore;
use super::counts::Op;
use super::items::{is_tombstone, message_from_item, message_key, tombstone_item, unavailable};
use crate::protocol::ChatMessage;
use crate::store::StoreError;

impl DynamoStore {
    /// The message stored at `seq`, or `None` once `seq` is abandoned (now or before).
    pub(super) async fn settle_seq(
        &self,
        room: &str,
        seq: u64,
    ) -> Result<Option<ChatMessage>, StoreError> {
        let table = &self.tables.messages;
        self.counters.count(Op::PutItem);
        let put = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(tombstone_item(room, seq)))
            .condition_expression("attribute_not_exists(#s)")
            .expression_attribute_names("#s", "seq")
            .send()
            .await;
        match put {
            Ok(_) => return Ok(None),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {}
            Err(e) => {
                return Err(unavailable(
                    &format!("PutItem tombstone {room}/{seq} on {table}"),
                    e,
                ));
            }
        }
        // Something is there: the message, or an earlier tombstone.
        self.counters.count(Op::GetItem);
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(message_key(room, seq)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&format!("GetItem {room}/{seq} on {table}"), e))?;
        match out.item {
            Some(item) if is_tombstone(&item) => Ok(None),
            Some(item) => message_from_item(&item).map(Some),
            None => Err(StoreError::Corrupt(format!(
                "{room}/{seq} refused a tombstone but holds nothing"
            ))),
        }
    }
}
