//! Connection records: one item per live connection in a room, written when its rooms change, its
//! expiry refreshed by the heartbeat (at most every [`CONNECTION_REFRESH`]), deleted on leave.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::StreamExt;

use super::DynamoStore;
use super::counts::Op;
use super::items::{n, s, unavailable};
use crate::store::{ConnectionRecord, StoreError};

/// How long a connection item outlives its last heartbeat before TTL may delete it (a task
/// that died without removing its connections stops counting after this).
pub const CONNECTION_TTL: Duration = Duration::from_secs(600);
/// A heartbeat rewrites a connection's expiry only when the last write is older than this:
/// the hub beats every 25 s (it also pings then), DynamoDB needs far fewer writes.
pub const CONNECTION_REFRESH: Duration = Duration::from_secs(120);
/// Heartbeat updates in flight at once.
const TOUCH_CONCURRENCY: usize = 16;

impl DynamoStore {
    pub(super) async fn write_connection(&self, conn: &ConnectionRecord) -> Result<(), StoreError> {
        let table = &self.tables.connections;
        self.counters.count(Op::PutItem);
        self.client
            .put_item()
            .table_name(table)
            .item("conn_id", s(&conn.conn_id))
            .item("user_id", n(conn.user_id))
            .item(
                "rooms",
                AttributeValue::L(conn.rooms.iter().map(s).collect()),
            )
            .item("task", s(&conn.task))
            .item("color", s(&conn.color))
            .item("connected_at", n(conn.connected_at))
            .item("expires_at", n(connection_expiry()))
            .send()
            .await
            .map_err(|e| unavailable(&format!("PutItem {} on {table}", conn.conn_id), e))?;
        self.refreshed
            .lock()
            .insert(conn.conn_id.clone(), Instant::now());
        Ok(())
    }

    pub(super) async fn touch(&self, conn_ids: &[String]) -> Result<(), StoreError> {
        let expires_at = connection_expiry();
        let mut due: Vec<String> = Vec::new();
        {
            let now = Instant::now();
            let mut refreshed = self.refreshed.lock();
            for id in conn_ids {
                let fresh = refreshed
                    .get(id.as_str())
                    .is_some_and(|at| now.duration_since(*at) < self.refresh_every);
                if !fresh {
                    refreshed.insert(id.clone(), now);
                    due.push(id.clone());
                }
            }
        }
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

    pub(super) async fn delete_connection(&self, conn_id: &str) -> Result<(), StoreError> {
        self.refreshed.lock().remove(conn_id);
        let table = &self.tables.connections;
        self.counters.count(Op::DeleteItem);
        self.client
            .delete_item()
            .table_name(table)
            .key("conn_id", s(conn_id))
            .send()
            .await
            .map_err(|e| unavailable(&format!("DeleteItem {conn_id} on {table}"), e))?;
        Ok(())
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
