//! The read path: history pages (a `Query` on a seq range, following pages), a room's last
//! seq and the readiness check. Consistent reads throughout.

use super::counts::Op;
use super::items::{Item, get_n, get_s, is_tombstone, message_from_item, n, s, unavailable};
use super::{DynamoStore, USERS_COUNTER};
use crate::store::{HistoryPage, HistoryQuery, StoreError};

impl DynamoStore {
    pub(super) async fn read_check(&self) -> Result<(), StoreError> {
        let table = &self.tables.counters;
        self.counters.count(Op::GetItem);
        self.client
            .get_item()
            .table_name(table)
            .key("name", s(USERS_COUNTER))
            .send()
            .await
            .map_err(|e| unavailable(&format!("GetItem on {table}"), e))?;
        Ok(())
    }

    pub(super) async fn read_history(
        &self,
        room: &str,
        query: HistoryQuery,
    ) -> Result<HistoryPage, StoreError> {
        let low = query.after.map_or(1, |a| a.saturating_add(1)).max(1);
        let high = query.before.map_or(u64::MAX, |b| b.saturating_sub(1));
        let mut page = HistoryPage::default();
        if query.before == Some(0) || low > high {
            return Ok(page);
        }
        let oldest_first = query.after.is_some();
        let items = self
            .query_range(room, low, high, oldest_first, query.limit + 1)
            .await?;
        let mut messages = Vec::with_capacity(items.len());
        for item in &items {
            if is_tombstone(item) {
                // Only those inside the page's range: past its last message, only if none follow.
                if messages.len() < query.limit {
                    page.abandoned.push(get_n(item, "seq")?);
                }
            } else {
                messages.push(message_from_item(item)?);
            }
        }
        page.has_more = messages.len() > query.limit;
        messages.truncate(query.limit);
        if !oldest_first {
            messages.reverse();
            page.abandoned.reverse();
        }
        page.messages = messages;
        Ok(page)
    }

    pub(super) async fn read_last_seq(&self, room: &str) -> Result<u64, StoreError> {
        let table = &self.tables.counters;
        self.counters.count(Op::GetItem);
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key("name", s(format!("room#{room}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&format!("GetItem room#{room} on {table}"), e))?;
        match out.item {
            Some(item) => get_n(&item, "value"),
            None => Ok(0),
        }
    }

    /// The counters of many rooms in `BatchGetItem`s of 100 (consistent reads), in the
    /// order of `rooms`; a room without a counter is 0.
    pub(super) async fn read_last_seqs(&self, rooms: &[String]) -> Result<Vec<u64>, StoreError> {
        let table = &self.tables.counters;
        let keys = rooms
            .iter()
            .map(|room| Item::from([("name".to_string(), s(format!("room#{room}")))]))
            .collect();
        let mut by_name = std::collections::HashMap::new();
        for item in self.batch_get(table, keys).await? {
            let name = get_s(&item, "name")?.to_string();
            by_name.insert(name, get_n::<u64>(&item, "value")?);
        }
        Ok(rooms
            .iter()
            .map(|room| by_name.get(&format!("room#{room}")).copied().unwrap_or(0))
            .collect())
    }

    /// Up to `want` message items (and the tombstones among them) with `low <= seq <= high`, in the asked order; follows
    /// `LastEvaluatedKey` when a 1 MB page ends early. Consistent reads: a client catching up
    /// right after an ack must see the acked message.
    async fn query_range(
        &self,
        room: &str,
        low: u64,
        high: u64,
        oldest_first: bool,
        want: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let table = &self.tables.messages;
        let mut items: Vec<Item> = Vec::with_capacity(want.min(256));
        let mut start: Option<Item> = None;
        loop {
            let found = items.iter().filter(|i| !is_tombstone(i)).count();
            let limit = i32::try_from(want.saturating_sub(found).max(1)).unwrap_or(i32::MAX);
            self.counters.count(Op::Query);
            let out = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("#r = :r AND #s BETWEEN :low AND :high")
                .expression_attribute_names("#r", "room")
                .expression_attribute_names("#s", "seq")
                .expression_attribute_values(":r", s(room))
                .expression_attribute_values(":low", n(low))
                .expression_attribute_values(":high", n(high))
                .scan_index_forward(oldest_first)
                .consistent_read(true)
                .limit(limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(&format!("Query {room} on {table}"), e))?;
            items.extend(out.items.unwrap_or_default());
            // Tombstones (abandoned seqs) do not count towards the messages wanted.
            let found = items.iter().filter(|i| !is_tombstone(i)).count();
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && found < want => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Every item of one partition of the messages table (consistent reads), following
    /// pages up to `max_pages`; `what` names it in errors.
    pub(super) async fn partition_items(
        &self,
        partition: String,
        max_pages: usize,
        what: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let table = &self.tables.messages;
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        for _ in 0..max_pages {
            self.counters.count(Op::Query);
            let page = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("#r = :r")
                .expression_attribute_names("#r", "room")
                .expression_attribute_values(":r", s(partition.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(&format!("Query {what} on {table}"), e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }
}
