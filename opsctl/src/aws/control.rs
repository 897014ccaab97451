//! The rollout's shared state, kept as three items in the chat servers' connections table
//! (`{prefix}connections`) beside the connection records:
//!
//! - `opsctl#lease`: who may change the weights now (`owner`, `until_ms`), taken with a
//!   conditional write so two operators cannot interleave;
//! - `opsctl#control`: the weights opsctl last put in place and whether tasks should shed
//!   connections toward them (`rebalance`, `window_ms`); tasks poll it;
//! - `fleet`: one entry per task (`tasks.{task_id} = {color, conns, ready, at_ms}`),
//!   refreshed by every task about once a second (with `shed_until_ms`, the end of its latest
//!   shed window, for the other tasks); entries older than [`FRESH_MS`] by DynamoDB's clock
//!   (not the operator's) are dead tasks and drop out.
//!
//! The items' keys, fields and encoding are `chat_contract::rollout`, which the chat
//! servers use too: a field changed there changes both builds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use aws_sdk_dynamodb::types::AttributeValue;
use chat_contract::rollout::{self, FLEET_KEY, LEASE_KEY, Lease};
use serde::Serialize;

use super::SdkContext as _;
use crate::weights::{Color, Weights};

pub use chat_contract::rollout::FRESH_MS;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Who holds the lease, as read when taking it failed.
pub type Holder = Lease;

/// Takes the lease for `owner` until `until_ms`. Unless `steal`, only when nobody holds it
/// (absent or expired) or `owner` already does; `Ok(Err(holder))` names who holds it.
/// With `steal` it always succeeds and returns the holder it displaced, if any.
pub async fn take_lease(
    client: &Client,
    table: &str,
    owner: &str,
    until_ms: i64,
    steal: bool,
) -> anyhow::Result<Result<Option<Holder>, Holder>> {
    let now = now_ms();
    let lease = Lease {
        owner: owner.to_string(),
        until_ms,
    };
    let mut put = client
        .put_item()
        .table_name(table)
        .set_item(Some(lease.to_item()))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld);
    if !steal {
        put = put
            .condition_expression("attribute_not_exists(#k) OR #u < :now OR #o = :me")
            .expression_attribute_names("#k", rollout::KEY)
            .expression_attribute_names("#u", Lease::UNTIL)
            .expression_attribute_names("#o", Lease::OWNER)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":me", s(owner));
    }
    match put.send().await {
        Ok(out) => {
            let displaced = out.attributes.and_then(|old| {
                let holder = Lease::from_item(&old)?;
                (holder.owner != owner && holder.until_ms >= now).then_some(holder)
            });
            Ok(Ok(displaced))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(Err(read_lease(client, table).await?.unwrap_or(Holder {
                owner: "(released meanwhile)".into(),
                until_ms: now,
            })))
        }
        Err(e) => Err(e).ctx(|| format!("taking the opsctl lease in {table}")),
    }
}

/// Extends the lease if `owner` still holds it; `false` when someone took it.
pub async fn renew_lease(
    client: &Client,
    table: &str,
    owner: &str,
    until_ms: i64,
) -> anyhow::Result<bool> {
    let out = client
        .update_item()
        .table_name(table)
        .key(rollout::KEY, s(LEASE_KEY))
        .update_expression("SET #u = :u, #e = :e")
        .condition_expression("#o = :me")
        .expression_attribute_names("#u", Lease::UNTIL)
        .expression_attribute_names("#e", Lease::EXPIRES)
        .expression_attribute_names("#o", Lease::OWNER)
        .expression_attribute_values(":u", n(until_ms))
        .expression_attribute_values(":e", n(Lease::expires_at(until_ms)))
        .expression_attribute_values(":me", s(owner))
        .send()
        .await;
    match out {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(e).ctx(|| format!("renewing the opsctl lease in {table}")),
    }
}

/// Gives the lease back if `owner` still holds it.
pub async fn release_lease(client: &Client, table: &str, owner: &str) -> anyhow::Result<()> {
    let out = client
        .delete_item()
        .table_name(table)
        .key(rollout::KEY, s(LEASE_KEY))
        .condition_expression("#o = :me")
        .expression_attribute_names("#o", Lease::OWNER)
        .expression_attribute_values(":me", s(owner))
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(e).ctx(|| format!("releasing the opsctl lease in {table}")),
    }
}

/// The current lease holder, if the item exists.
pub async fn read_lease(client: &Client, table: &str) -> anyhow::Result<Option<Holder>> {
    let out = client
        .get_item()
        .table_name(table)
        .key(rollout::KEY, s(LEASE_KEY))
        .consistent_read(true)
        .send()
        .await
        .ctx(|| format!("reading the opsctl lease in {table}"))?;
    Ok(out.item.as_ref().and_then(Lease::from_item))
}

/// What tasks are told: the weights in force and whether to shed toward them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Control {
    pub weights: Weights,
    pub rebalance: bool,
    pub window_ms: i64,
}

/// Writes the control record (after the listener carries `control.weights`).
pub async fn write_control(
    client: &Client,
    table: &str,
    control: Control,
    by: &str,
) -> anyhow::Result<()> {
    let item = rollout::Control {
        blue: control.weights.blue,
        green: control.weights.green,
        rebalance: control.rebalance,
        window_ms: control.window_ms,
    }
    .to_item(by, now_ms());
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .ctx(|| format!("writing the rollout control record in {table}"))?;
    Ok(())
}

/// One live task as its heartbeat says.
#[derive(Debug, Clone, Serialize)]
pub struct TaskBeat {
    pub task: String,
    pub color: Color,
    pub conns: u64,
    /// Its `/readyz` checks (store, fanout) pass and it is not draining.
    pub ready: bool,
    /// Age of the heartbeat in ms.
    pub age_ms: i64,
}

/// Captures the `Date` header of a DynamoDB response: the clock heartbeats are judged by.
#[derive(Debug, Default, Clone)]
struct ServerDate(Arc<Mutex<Option<i64>>>);

impl Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "ServerDate"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let at = context
            .response()
            .headers()
            .get("date")
            .and_then(|d| DateTime::from_str(d, DateTimeFormat::HttpDate).ok())
            .and_then(|d| d.to_millis().ok());
        if let Ok(mut slot) = self.0.lock() {
            *slot = at;
        }
        Ok(())
    }
}

/// The live tasks (fresh heartbeats only); `None` when no task has ever written one.
///
/// A heartbeat's age is measured on the clock of the AWS side (the `Date` of the response that
/// carried it; tasks keep theirs by Amazon Time Sync), not on the operator's laptop, whose clock
/// may be a minute off on venue Wi-Fi: a fast laptop would see every task dead and refuse every
/// shift. Only when the response has no `Date` does the laptop's clock stand in.
pub async fn fleet(client: &Client, table: &str) -> anyhow::Result<Option<Vec<TaskBeat>>> {
    let server_date = ServerDate::default();
    let out = client
        .get_item()
        .table_name(table)
        .key(rollout::KEY, s(FLEET_KEY))
        .consistent_read(true)
        .customize()
        .interceptor(server_date.clone())
        .send()
        .await
        .ctx(|| format!("reading the fleet heartbeats in {table}"))?;
    let Some(item) = out.item else {
        return Ok(None);
    };
    // The Date header has whole seconds: up to 999 ms behind the true time.
    let now = server_date
        .0
        .lock()
        .ok()
        .and_then(|d| *d)
        .map_or_else(now_ms, |d| d + 999);
    let mut beats: Vec<TaskBeat> = rollout::beats(&item)
        .into_iter()
        .filter_map(|(task, beat)| {
            let age_ms = now - beat.at_ms;
            (age_ms <= FRESH_MS).then_some(TaskBeat {
                task,
                color: Color::from_tag(&beat.color)?,
                conns: beat.conns,
                ready: beat.ready,
                age_ms,
            })
        })
        .collect();
    beats.sort_by(|a, b| a.task.cmp(&b.task));
    Ok(Some(beats))
}

/// Live connections per colour from fresh heartbeats.
pub fn counts(beats: &[TaskBeat]) -> BTreeMap<Color, u64> {
    let mut out: BTreeMap<Color, u64> = Color::ALL.into_iter().map(|c| (c, 0)).collect();
    for b in beats {
        *out.entry(b.color).or_default() += b.conns;
    }
    out
}
