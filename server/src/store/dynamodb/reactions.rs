//! Reactions on DynamoDB, with no new table or item: each emoji of the fixed set is a number
//! set of user ids on the message's own item (`rx{index}`, index into
//! [`REACTION_EMOJI`](crate::protocol::REACTION_EMOJI)), and `rxv` counts the changes. One
//! `UpdateItem` (`ADD`/`DELETE` on the set, `ADD rxv 1`) changes it atomically however many
//! tasks react at once, on condition that a message is there, not deleted, and (when adding)
//! that the set has room; it returns the new state. History and `joined` read the sets with
//! the message. Only a refused change reads the item again (a `GetItem`), to say why.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::DynamoStore;
use super::counts::Op;
use super::items::{get_n, message_key, n, reactions_from_item, unavailable};
use crate::protocol::{MAX_REACTORS_PER_EMOJI, MessageReactions};
use crate::store::StoreError;
use crate::store::reactions::{Reacted, ReactionChange};

impl DynamoStore {
    pub(super) async fn update_reactions(
        &self,
        room: &str,
        seq: u64,
        change: ReactionChange,
    ) -> Result<Reacted, StoreError> {
        let table = &self.tables.messages;
        let set = format!("rx{}", change.emoji);
        let base = "attribute_exists(#u) AND attribute_not_exists(#d)";
        let (update, condition) = if change.on {
            (
                "ADD #s :me, #v :one",
                format!(
                    "{base} AND (attribute_not_exists(#s) OR size(#s) < :max OR contains(#s, :uid))"
                ),
            )
        } else {
            ("DELETE #s :me ADD #v :one", base.to_string())
        };
        let mut call = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(message_key(room, seq)))
            .condition_expression(condition)
            .update_expression(update)
            .expression_attribute_names("#u", "user_id")
            .expression_attribute_names("#d", "deleted")
            .expression_attribute_names("#s", &set)
            .expression_attribute_names("#v", "rxv")
            .expression_attribute_values(
                ":me",
                AttributeValue::Ns(vec![change.user_id.to_string()]),
            )
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew);
        if change.on {
            call = call
                .expression_attribute_values(":max", n(MAX_REACTORS_PER_EMOJI))
                .expression_attribute_values(":uid", n(change.user_id));
        }
        self.counters.count(Op::UpdateItem);
        match call.send().await {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(Reacted::Changed(MessageReactions {
                    seq,
                    version: get_n(&item, "rxv")?,
                    reactions: reactions_from_item(&item)?,
                }))
            }
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                self.why_refused(room, seq).await
            }
            Err(e) => Err(unavailable(
                &format!("UpdateItem react {room}/{seq} on {table}"),
                e,
            )),
        }
    }

    /// A refused change: no message (or a deleted one) is `Missing`, else the set was full.
    async fn why_refused(&self, room: &str, seq: u64) -> Result<Reacted, StoreError> {
        let table = &self.tables.messages;
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
        let present = out.item.as_ref().is_some_and(|item| {
            item.contains_key("user_id")
                && !matches!(item.get("deleted"), Some(AttributeValue::Bool(true)))
        });
        Ok(if present {
            Reacted::Full
        } else {
            Reacted::Missing
        })
    }
}
