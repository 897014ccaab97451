//! DynamoDB: live connections per colour, counted from the chat servers' connections table
//! (`{prefix}connections`, one item per open WebSocket) through its `by-color` index.
//!
//! The count is a `Query` with `Select=COUNT` on the KEYS_ONLY index: cheap, never a Scan.
//! The index does not carry `expires_at`, so an item a crashed task left behind is counted
//! until DynamoDB's TTL deletes it (usually minutes, at worst about two days after expiry);
//! tasks that stop cleanly delete their items at once.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Select};

use super::SdkContext as _;
use crate::weights::Color;

/// Name of the index keyed by colour (see `contract/src/schema.rs`).
pub const BY_COLOR_INDEX: &str = "by-color";

/// The connections table of a prefix.
pub fn connections_table(prefix: &str) -> String {
    format!("{prefix}connections")
}

/// Items of `color` in `table`'s `by-color` index, following every page.
pub async fn live_connections(client: &Client, table: &str, color: Color) -> anyhow::Result<u64> {
    let mut total = 0u64;
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .index_name(BY_COLOR_INDEX)
            .key_condition_expression("#c = :c")
            .expression_attribute_names("#c", "color")
            .expression_attribute_values(":c", AttributeValue::S(color.as_str().to_string()))
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .ctx(|| format!("counting {color} connections in {table} (index {BY_COLOR_INDEX})"))?;
        total += u64::try_from(out.count).unwrap_or(0);
        start = out.last_evaluated_key.filter(|k| !k.is_empty());
        if start.is_none() {
            break;
        }
    }
    Ok(total)
}
