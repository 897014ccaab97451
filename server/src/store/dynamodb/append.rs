//! The group-commit write path: one counter `UpdateItem ADD n` per room reserves a block of
//! seqs, then one `TransactWriteItems` per 50 messages writes each message with its
//! idempotency record. A cancelled transaction (a racing duplicate) reads the records back
//! and answers `Duplicate` with the original.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, ReturnValue, TransactWriteItem};
use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::future::join_all;

use super::DynamoStore;
use super::counts::Op;
use super::items::{
    Item, KeyProbe, get_n, get_s, idempotency_hash, idempotency_item, idempotency_key,
    message_from_item, message_item, message_key, n, s, unavailable,
};
use crate::protocol::ChatMessage;
use crate::store::{Appended, IDEMPOTENCY_WINDOW_MS, NewMessage, StoreError};

/// Messages per `TransactWriteItems`: two items each (message + idempotency record), and a
/// transaction holds at most 100 items.
const MESSAGES_PER_TRANSACTION: usize = 50;
/// Keys per `BatchGetItem` (the API's limit).
const KEYS_PER_BATCH_GET: usize = 100;
/// How often a cancelled transaction (a racing duplicate, a transaction conflict) is retried
/// with the messages that are still not known to be duplicates.
const TRANSACTION_ATTEMPTS: u32 = 6;
/// Rounds of `UnprocessedKeys` a `BatchGetItem` may need before giving up.
const BATCH_GET_ROUNDS: u32 = 8;
/// A message with its seq, and the idempotency key it claims.
type Pending = (ChatMessage, KeyProbe);

impl DynamoStore {
    /// `BatchGetItem` of `keys` from `table` (consistent reads), in chunks of 100, following
    /// `UnprocessedKeys`. Returns the items found, in no particular order.
    pub(super) async fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        let mut keys = keys.into_iter().peekable();
        while keys.peek().is_some() {
            let mut chunk: Vec<Item> = keys.by_ref().take(KEYS_PER_BATCH_GET).collect();
            let mut delays = backoff();
            for round in 0.. {
                if round == BATCH_GET_ROUNDS {
                    return Err(StoreError::Unavailable(format!(
                        "dynamodb BatchGetItem on {table}: {} keys still unprocessed after {round} rounds",
                        chunk.len()
                    )));
                }
                if round > 0
                    && let Some(delay) = delays.next()
                {
                    tokio::time::sleep(delay).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(chunk))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Unavailable(format!("BatchGetItem request: {e}")))?;
                self.counters.count(Op::BatchGetItem);
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| unavailable(&format!("BatchGetItem on {table}"), e))?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(table).unwrap_or_default());
                }
                chunk = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if chunk.is_empty() {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// For each probe, the original message if its idempotency key was stored within the
    /// window before the probe's `ts`. Keyed by position in `probes`.
    async fn find_originals(
        &self,
        probes: &[KeyProbe],
    ) -> Result<HashMap<usize, ChatMessage>, StoreError> {
        if probes.is_empty() {
            return Ok(HashMap::new());
        }
        let table = &self.tables.messages;
        let keys = probes
            .iter()
            .map(|p| idempotency_key(p.user_id, &p.room, &p.client_msg_id))
            .collect();
        let records = self.batch_get(table, keys).await?;
        let by_key: HashMap<&str, &Item> = records
            .iter()
            .map(|item| Ok((get_s(item, "room")?, item)))
            .collect::<Result<_, StoreError>>()?;
        // Which original (room, seq) each probe refers to.
        let mut wanted: Vec<(usize, String, u64)> = Vec::new();
        for (i, probe) in probes.iter().enumerate() {
            let key = idempotency_hash(probe.user_id, &probe.room, &probe.client_msg_id);
            let Some(record) = by_key.get(key.as_str()) else {
                continue;
            };
            let orig_ts: i64 = get_n(record, "orig_ts")?;
            if probe.ts.saturating_sub(orig_ts) >= IDEMPOTENCY_WINDOW_MS {
                continue;
            }
            wanted.push((
                i,
                get_s(record, "orig_room")?.to_string(),
                get_n(record, "orig_seq")?,
            ));
        }
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let mut unique: Vec<(&str, u64)> =
            wanted.iter().map(|(_, r, q)| (r.as_str(), *q)).collect();
        unique.sort_unstable();
        unique.dedup();
        let originals = self
            .batch_get(
                table,
                unique
                    .iter()
                    .map(|&(room, seq)| message_key(room, seq))
                    .collect(),
            )
            .await?
            .iter()
            .map(|item| message_from_item(item).map(|m| ((m.room.clone(), m.seq), m)))
            .collect::<Result<HashMap<_, _>, _>>()?;
        wanted
            .into_iter()
            .map(|(i, room, seq)| match originals.get(&(room.clone(), seq)) {
                Some(m) => Ok((i, m.clone())),
                None => Err(StoreError::Corrupt(format!(
                    "idempotency record points at missing message {room}/{seq}"
                ))),
            })
            .collect()
    }

    /// Reserves `count` seqs in `room`; returns the first (the block is `first..first+count`).
    async fn reserve_seqs(&self, room: &str, count: u64) -> Result<u64, StoreError> {
        let table = &self.tables.counters;
        let last = self.add_to_counter(&format!("room#{room}"), count).await?;
        last.checked_sub(count - 1)
            .filter(|&first| first >= 1)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "counter room#{room} in {table} is {last} after adding {count}"
                ))
            })
    }

    /// `UpdateItem ADD value :n` on a counter; returns the new value.
    pub(super) async fn add_to_counter(&self, name: &str, by: u64) -> Result<u64, StoreError> {
        let table = &self.tables.counters;
        self.counters.count(Op::UpdateItem);
        let out = self
            .client
            .update_item()
            .table_name(table)
            .key("name", s(name))
            .update_expression("ADD #v :n")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":n", n(by))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| unavailable(&format!("UpdateItem {name} on {table}"), e))?;
        let attributes = out.attributes.unwrap_or_default();
        get_n(&attributes, "value")
    }

    /// Writes messages (seqs already reserved) with their idempotency records, in one
    /// transaction, retrying while a racing duplicate or a transaction conflict cancels it.
    /// Returns one result per input message, in input order.
    async fn write_chunk(&self, chunk: Vec<Pending>) -> Vec<Result<Appended, StoreError>> {
        let mut results: Vec<Option<Result<Appended, StoreError>>> = vec![None; chunk.len()];
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let mut last_cancel = String::new();
        let mut delays = backoff();
        for attempt in 0..TRANSACTION_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0
                && let Some(delay) = delays.next()
            {
                tokio::time::sleep(delay).await;
            }
            match self
                .transact_write(pending.iter().map(|&i| &chunk[i].0))
                .await
            {
                Ok(()) => {
                    for &i in &pending {
                        results[i] = Some(Ok(Appended::Stored(chunk[i].0.clone())));
                    }
                    pending.clear();
                }
                Err(TransactOutcome::Cancelled(codes)) => {
                    // Some key was written meanwhile (a duplicate from another task, our own
                    // earlier attempt that the SDK retried, or a tombstone: a reader gave up
                    // on the seq): read the records back.
                    last_cancel = codes
                        .iter()
                        .filter(|c| *c != "None")
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(",");
                    // Messages whose own key was taken (index into `pending`).
                    let seq_taken: Vec<usize> = (0..pending.len())
                        .filter(|p| {
                            codes.get(2 * p).map(String::as_str) == Some("ConditionalCheckFailed")
                        })
                        .collect();
                    let probes: Vec<KeyProbe> =
                        pending.iter().map(|&i| chunk[i].1.clone()).collect();
                    match self.find_originals(&probes).await {
                        Ok(found) => {
                            let mut still = Vec::new();
                            for (p, &i) in pending.iter().enumerate() {
                                let ours = &chunk[i].0;
                                results[i] = match found.get(&p) {
                                    Some(orig)
                                        if orig.room == ours.room && orig.seq == ours.seq =>
                                    {
                                        Some(Ok(Appended::Stored(orig.clone())))
                                    }
                                    Some(orig) => Some(Ok(Appended::Duplicate(orig.clone()))),
                                    None if seq_taken.contains(&p) => {
                                        // Not ours at our seq: it was settled as abandoned.
                                        Some(self.settled_outcome(ours).await)
                                    }
                                    None => {
                                        still.push(i);
                                        None
                                    }
                                };
                            }
                            pending = still;
                        }
                        Err(e) => {
                            for &i in &pending {
                                results[i] = Some(Err(e.clone()));
                            }
                            pending.clear();
                        }
                    }
                }
                Err(TransactOutcome::Failed(e)) => {
                    // The outcome is unknown (a timeout may hide a write that landed): settle
                    // each seq, so it is either our message or abandoned for good.
                    for &i in &pending {
                        results[i] = Some(match self.settled_outcome(&chunk[i].0).await {
                            Ok(stored) => Ok(stored),
                            Err(_) => Err(e.clone()),
                        });
                    }
                    pending.clear();
                }
            }
        }
        // A seq reserved for a message that turned out to be a duplicate stays unused: mark
        // it abandoned now, so no reader waits for it.
        for (i, r) in results.iter().enumerate() {
            if let Some(Ok(Appended::Duplicate(orig))) = r
                && (orig.room != chunk[i].0.room || orig.seq != chunk[i].0.seq)
                && let Err(e) = self.settle_seq(&chunk[i].0.room, chunk[i].0.seq).await
            {
                tracing::debug!(error = %e, "Could not mark an unused seq abandoned");
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(StoreError::Unavailable(format!(
                        "dynamodb TransactWriteItems on {}: still cancelled after {TRANSACTION_ATTEMPTS} attempts ({last_cancel})",
                        self.tables.messages
                    )))
                })
            })
            .collect()
    }

    /// Settles `ours`'s seq after a write whose outcome is unknown or was refused: `Stored`
    /// when our message is there, an error (retry with the same `client_msg_id`) when the
    /// seq is abandoned.
    async fn settled_outcome(&self, ours: &ChatMessage) -> Result<Appended, StoreError> {
        match self.settle_seq(&ours.room, ours.seq).await? {
            Some(m) if m.user.id == ours.user.id && m.client_msg_id == ours.client_msg_id => {
                Ok(Appended::Stored(m))
            }
            Some(m) => Err(StoreError::Corrupt(format!(
                "{}/{} holds another message ({}) than the one reserved for it",
                m.room, m.seq, m.client_msg_id
            ))),
            None => Err(StoreError::Unavailable(
                "the message was not saved in time and its seq was given up".into(),
            )),
        }
    }

    async fn transact_write<'a>(
        &self,
        messages: impl Iterator<Item = &'a ChatMessage>,
    ) -> Result<(), TransactOutcome> {
        let table = &self.tables.messages;
        let mut items = Vec::new();
        for m in messages {
            let message = Put::builder()
                .table_name(table)
                .set_item(Some(message_item(m)))
                // Seqs are reserved exclusively; this only guards history against a counter
                // that went backwards.
                .condition_expression("attribute_not_exists(#s)")
                .expression_attribute_names("#s", "seq")
                .build();
            let record = Put::builder()
                .table_name(table)
                .set_item(Some(idempotency_item(m)))
                .condition_expression("attribute_not_exists(#r) OR #t <= :cutoff")
                .expression_attribute_names("#r", "room")
                .expression_attribute_names("#t", "orig_ts")
                .expression_attribute_values(":cutoff", n(m.ts - IDEMPOTENCY_WINDOW_MS))
                .build();
            for put in [message, record] {
                let put = put.map_err(|e| {
                    TransactOutcome::Failed(StoreError::Unavailable(format!(
                        "TransactWriteItems request: {e}"
                    )))
                })?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
        }
        self.counters.count(Op::TransactWriteItems);
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let codes = match e.err() {
                    TransactWriteItemsError::TransactionCanceledException(c) => c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect::<Vec<_>>(),
                    _ => Vec::new(),
                };
                Err(TransactOutcome::Cancelled(codes))
            }
            Err(e) => Err(TransactOutcome::Failed(unavailable(
                &format!("TransactWriteItems on {table}"),
                e,
            ))),
        }
    }

    pub(super) async fn append_batch(
        &self,
        batch: Vec<NewMessage>,
    ) -> Vec<Result<Appended, StoreError>> {
        // A repeat inside the batch answers like its first occurrence.
        let mut first_of: HashMap<(u64, &str, &str), usize> = HashMap::new();
        let mut repeat_of: Vec<Option<usize>> = vec![None; batch.len()];
        for (i, m) in batch.iter().enumerate() {
            let key = (m.user.id, m.room.as_str(), m.client_msg_id.as_str());
            match first_of.get(&key) {
                Some(&f) => repeat_of[i] = Some(f),
                None => {
                    first_of.insert(key, i);
                }
            }
        }
        let firsts: Vec<usize> = (0..batch.len())
            .filter(|&i| repeat_of[i].is_none())
            .collect();
        let mut results: Vec<Option<Result<Appended, StoreError>>> = vec![None; batch.len()];

        // Duplicates of earlier batches: no seq is reserved for them.
        let probes: Vec<KeyProbe> = firsts.iter().map(|&i| KeyProbe::of(&batch[i])).collect();
        let mut fresh: Vec<usize> = Vec::with_capacity(firsts.len());
        match self.find_originals(&probes).await {
            Ok(found) => {
                for (p, &i) in firsts.iter().enumerate() {
                    match found.get(&p) {
                        Some(orig) => results[i] = Some(Ok(Appended::Duplicate(orig.clone()))),
                        None => fresh.push(i),
                    }
                }
            }
            Err(e) => {
                for &i in &firsts {
                    results[i] = Some(Err(e.clone()));
                }
            }
        }

        // One counter increment per room, all rooms at once.
        let mut rooms: Vec<(&str, Vec<usize>)> = Vec::new();
        for &i in &fresh {
            let room = batch[i].room.as_str();
            match rooms.iter_mut().find(|(r, _)| *r == room) {
                Some((_, members)) => members.push(i),
                None => rooms.push((room, vec![i])),
            }
        }
        let reservations = join_all(
            rooms
                .iter()
                .map(|(room, members)| self.reserve_seqs(room, members.len() as u64)),
        )
        .await;
        let mut to_write: Vec<(usize, ChatMessage, KeyProbe)> = Vec::with_capacity(fresh.len());
        for ((_, members), reserved) in rooms.iter().zip(reservations) {
            match reserved {
                Ok(first) => {
                    for (k, &i) in members.iter().enumerate() {
                        let new = &batch[i];
                        let message = ChatMessage {
                            room: new.room.clone(),
                            seq: first + k as u64,
                            user: new.user.clone(),
                            text: new.text.clone(),
                            ts: new.ts,
                            client_msg_id: new.client_msg_id.clone(),
                            attachment: new.attachment.as_deref().cloned(),
                            deleted: false,
                            reactions: Vec::new(),
                            reactions_version: 0,
                            reply_to: new.reply_to.clone(),
                            moderator: new.moderator,
                        };
                        to_write.push((i, message, KeyProbe::of(new)));
                    }
                }
                Err(e) => {
                    for &i in members {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }

        // Transactions of up to 50 messages, all at once.
        let mut chunks: Vec<(Vec<usize>, Vec<Pending>)> = Vec::new();
        let mut iter = to_write.into_iter().peekable();
        while iter.peek().is_some() {
            let (idx, msgs): (Vec<usize>, Vec<Pending>) = iter
                .by_ref()
                .take(MESSAGES_PER_TRANSACTION)
                .map(|(i, m, p)| (i, (m, p)))
                .unzip();
            chunks.push((idx, msgs));
        }
        let (indexes, writes): (Vec<Vec<usize>>, Vec<_>) = chunks.into_iter().unzip();
        let written = join_all(writes.into_iter().map(|c| self.write_chunk(c))).await;
        for (idx, outcome) in indexes.into_iter().zip(written) {
            for (i, r) in idx.into_iter().zip(outcome) {
                results[i] = Some(r);
            }
        }

        // Repeats inside the batch: the first occurrence's message, as a duplicate.
        for i in 0..batch.len() {
            if let Some(f) = repeat_of[i] {
                results[i] = Some(match &results[f] {
                    Some(Ok(done)) => Ok(Appended::Duplicate(done.message().clone())),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err(StoreError::Unavailable(
                        "append lost track of a message".into(),
                    )),
                });
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(StoreError::Unavailable(
                        "append lost track of a message".into(),
                    ))
                })
            })
            .collect()
    }
}

enum TransactOutcome {
    /// Cancelled by a condition or a conflict: one code per item, in request order (two
    /// items per message: the message, then its idempotency record; `None` = not the cause).
    Cancelled(Vec<String>),
    /// Anything else: the outcome is unknown or the call was refused.
    Failed(StoreError),
}

/// The delays between our own retries (a cancelled transaction, unprocessed keys): 50 ms,
/// 100 ms, … up to 1.6 s, each plus up to as much again (jitter).
fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(1600))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}
