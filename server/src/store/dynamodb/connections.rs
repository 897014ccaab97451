//! Connection records: one item per live connection in a room, written when its rooms change
//! and deleted when it closes (the hub sends both in batches: `BatchWriteItem`s of 25), its
//! expiry refreshed by the heartbeat (at most every [`CONNECTION_REFRESH`]).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use futures_util::StreamExt;

use super::DynamoStore;
use super::counts::Op;
use super::items::{Item, n, s, unavailable};
use crate::store::{ConnectionChange, StoreError};

/// How long a connection item outlives its last heartbeat before TTL may delete it (a task
/// that died without removing its connections stops counting after this).
pub const CONNECTION_TTL: Duration = Duration::from_secs(600);
/// A heartbeat rewrites a connection's expiry only when the last write is older than this:
/// the hub beats every 25 s (it also pings then), DynamoDB needs far fewer writes.
pub const CONNECTION_REFRESH: Duration = Duration::from_secs(120);
/// Heartbeat updates in flight at once.
const TOUCH_CONCURRENCY: usize = 16;
/// A heartbeat refreshes at most one in this many of its connections (the stalest first), and
/// at least [`TOUCH_MIN`]: records written together (a crowd seated in a minute) come due
/// together, and 2,000 updates at once would crowd out the task's other writes (on the test
/// machine's serial moto they delayed the fleet heartbeats, and so a rollback, by 10 s). The
/// hub beats every 25 s, so a record is refreshed within 8 beats (~200 s) of coming due, far
/// inside [`CONNECTION_TTL`].
const TOUCH_SHARE: usize = 8;
const TOUCH_MIN: usize = 64;

impl DynamoStore {
    /// Applies the changes in `BatchWriteItem`s of 25 (the hub sends them in batches).
    pub(super) async fn write_connections(
        &self,
        changes: &[ConnectionChange],
    ) -> Result<(), StoreError> {
        let expires_at = n(connection_expiry());
        let mut put_ids = Vec::new();
        {
            // A removed connection is no heartbeat's business any more.
            let mut refreshed = self.refreshed.lock();
            for change in changes {
                if let ConnectionChange::Remove(conn_id) = change {
                    refreshed.remove(conn_id);
                }
            }
        }
        let requests = changes
            .iter()
            .map(|change| match change {
                ConnectionChange::Put(conn) => {
                    put_ids.push(conn.conn_id.clone());
                    let item = Item::from([
                        ("conn_id".to_string(), s(&conn.conn_id)),
                        ("user_id".to_string(), n(conn.user_id)),
                        (
                            "rooms".to_string(),
                            AttributeValue::L(conn.rooms.iter().map(s).collect()),
                        ),
                        ("task".to_string(), s(&conn.task)),
                        ("color".to_string(), s(&conn.color)),
                        ("connected_at".to_string(), n(conn.connected_at)),
                        ("expires_at".to_string(), expires_at.clone()),
                    ]);
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .unwrap_or_else(|e| unreachable!("the item is set: {e}"));
                    WriteRequest::builder().put_request(put).build()
                }
                ConnectionChange::Remove(conn_id) => {
                    let delete = DeleteRequest::builder()
                        .key("conn_id", s(conn_id))
                        .build()
                        .unwrap_or_else(|e| unreachable!("the key is set: {e}"));
                    WriteRequest::builder().delete_request(delete).build()
                }
            })
            .collect();
        self.batch_write(&self.tables.connections, requests, "connection records")
            .await?;
        let now = Instant::now();
        let mut refreshed = self.refreshed.lock();
        for id in put_ids {
            refreshed.insert(id, now);
        }
        Ok(())
    }

    pub(super) async fn touch(&self, conn_ids: &[String]) -> Result<(), StoreError> {
        let expires_at = connection_expiry();
        let due: Vec<String> = {
            let now = Instant::now();
            let mut refreshed = self.refreshed.lock();
            let mut due: Vec<(Option<Instant>, &String)> = conn_ids
                .iter()
                .map(|id| (refreshed.get(id.as_str()).copied(), id))
                .filter(|(at, _)| at.is_none_or(|at| now.duration_since(at) >= self.refresh_every))
                .collect();
            // The stalest first (never refreshed here: stalest of all).
            due.sort_by_key(|(at, _)| *at);
            due.truncate(TOUCH_MIN.max(conn_ids.len().div_ceil(TOUCH_SHARE)));
            due.into_iter()
                .map(|(_, id)| {
                    refreshed.insert(id.clone(), now);
                    id.clone()
                })
                .collect()
        };
        let outcomes: Vec<Result<(), StoreError>> = futures_util::stream::iter(due)
            .map(|id| async move {
                let done = self.touch_one(&id, expires_at).await;
                if done.is_err() {
                    // Try again at the next heartbeat.
                    self.refreshed.lock().remove(&id);
                }
                done
            })
            .buffer_unordered(TOUCH_CONCURRENCY)
            .collect()
            .await;
        outcomes.into_iter().collect()
    }

    async fn touch_one(&self, conn_id: &str, expires_at: i64) -> Result<(), StoreError> {
        let table = &self.tables.connections;
        self.counters.count(Op::UpdateItem);
        let outcome = self
            .client
            .update_item()
            .table_name(table)
            .key("conn_id", s(conn_id))
            .update_expression("SET #e = :e")
            // Never recreate (as a fragment) a connection that was removed meanwhile.
            .condition_expression("attribute_exists(#c)")
            .expression_attribute_names("#e", "expires_at")
            .expression_attribute_names("#c", "conn_id")
            .expression_attribute_values(":e", n(expires_at))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(&format!("UpdateItem {conn_id} on {table}"), e)),
        }
    }
}

/// Epoch seconds when a connection item touched now may expire.
fn connection_expiry() -> i64 {
    crate::now_ms() / 1000 + CONNECTION_TTL.as_secs() as i64
}
