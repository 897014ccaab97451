//! Live connections follow the ALB weights. An ALB weight applies only to new connections,
//! so after a shift everyone already connected would stay where they are. Every second each
//! task (with the DynamoDB store):
//!
//! 1. publishes its heartbeat in the `fleet` item of the connections table
//!    (`tasks.{task} = {color, conns, ready, at_ms, shed_until_ms, shed_from}`; `ready` is the
//!    `/readyz` verdict, `shed_until_ms` the end of its latest shed window and `shed_from` the
//!    fleet total it shed from, so that every task waits for those to land), which is also how opsctl
//!    counts connections per colour and gates on readiness; a task that stops heartbeating
//!    drops out after `FRESH_MS`, and a draining task removes its entry;
//! 2. reads the `opsctl#control` record opsctl writes once the listener carries new weights;
//! 3. decides ([`decide`]): when the record asks to rebalance and its colour holds more than
//!    its weight's share of the fleet's live connections (beyond opsctl's tolerance), it sheds
//!    its part of the excess with `reconnect` (reason `rebalance`) then a 1012 close, spread
//!    over the record's window. At most once per round: the next look waits for a fleet view
//!    newer than every shed, in which the shed connections have landed.
//!
//! Reconnecting clients are routed by those same weights, so a shed connection comes back to
//! its own colour with probability w; shedding `excess / (1 - w)` makes the expected result
//! land on target in one round. That factor is capped at 2 ([`MAX_FACTOR`]) so that a small
//! move (100/0 → 75/25) does not reconnect everyone: it then takes a few rounds instead.

mod decide;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use rand::seq::SliceRandom;

use crate::background::Background;
use crate::conn::{self, Conn};
use crate::hub::Hub;
use crate::protocol::ServerFrame;
use crate::store::Store;

pub use decide::{Beat, Control, LastShed, Look, MAX_FACTOR, decide};

/// Key (`conn_id`) of the item every task heartbeats into.
pub const FLEET_KEY: &str = "fleet";
/// Key of the record opsctl writes.
pub const CONTROL_KEY: &str = "opsctl#control";
/// A heartbeat older than this belongs to a dead task (opsctl counts only heartbeats younger
/// than this).
pub const FRESH_MS: i64 = 10_000;
/// For the rebalancing decision a task is dead only after this long: until then its late
/// heartbeat holds every decision ([`decide::LATE_MS`]) rather than leaving it out of the
/// count, which would make the others shed toward a partial total.
pub const DEAD_MS: i64 = 60_000;
/// Time between heartbeats.
pub const BEAT: Duration = Duration::from_secs(1);
/// `retry_after_ms` of a `rebalance` reconnect.
const RETRY_AFTER_MS: u64 = 100;

/// Starts the heartbeat / rebalance loop of this task under `background`. It removes the
/// task's heartbeat and ends once the hub drains (or at the shutdown, whichever is first).
pub fn spawn(
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    client: Client,
    table: String,
    background: &Background,
) {
    let stop = background.stopping().clone();
    let sheds = background.clone();
    background.spawn_graceful(async move {
        let task = hub.info.task.clone();
        let color = hub.info.color.clone();
        let mut tick = tokio::time::interval(BEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<LastShed> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => {}
            }
            if hub.is_draining() || stop.is_cancelled() {
                if let Err(e) = forget(&client, &table, &task).await {
                    tracing::warn!(error = %e, "Removing the fleet heartbeat failed");
                }
                return;
            }
            let ready = crate::readiness::failing(&store, &hub).await.is_empty();
            // Live ones only: a shed or closed connection stays in the hub until its cleanup
            // (store calls) is done, which on a slow store lags far behind its socket.
            let mine = live(&hub).len() as u64;
            if let Err(e) = beat(&client, &table, &task, &color, mine, ready, last).await {
                tracing::debug!(error = %e, "Fleet heartbeat failed");
                continue;
            }
            let (control, beats) = match read(&client, &table).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "Reading the rollout control failed");
                    continue;
                }
            };
            let Some(control) = control else { continue };
            let now = crate::now_ms();
            let look = decide(&control, &color, mine, &beats, last, now);
            let Look::Shed(n) = look else {
                tracing::trace!(?look, "Rebalance look");
                continue;
            };
            tracing::info!(
                shed = n,
                connections = mine,
                blue = control.blue,
                green = control.green,
                "Rebalancing: shedding connections toward the weights"
            );
            shed(&hub, n as usize, control.window, &sheds);
            let window_ms = i64::try_from(control.window.as_millis()).unwrap_or(i64::MAX);
            last = Some(LastShed {
                until_ms: now.saturating_add(window_ms),
                fleet_total: beats.iter().map(|b| b.conns).sum(),
            });
        }
    });
}

/// The task's connections that are not on their way out.
fn live(hub: &Hub) -> Vec<Arc<Conn>> {
    let mut conns = hub.connections();
    conns.retain(|c| !c.is_ending());
    conns
}

/// Sends `n` random connections `reconnect` (reason `rebalance`) then 1012, spread over
/// `window`, in the background.
fn shed(hub: &Arc<Hub>, n: usize, window: Duration, background: &Background) {
    let mut conns = live(hub);
    conns.shuffle(&mut rand::rng());
    conns.truncate(n);
    let frame = conn::text_frame(
        &ServerFrame::Reconnect {
            reason: "rebalance",
            retry_after_ms: RETRY_AFTER_MS,
        }
        .to_json(),
    );
    let step = window.checked_div(n.max(1) as u32).unwrap_or_default();
    background.spawn(async move {
        let start = tokio::time::Instant::now();
        for (i, c) in conns.iter().enumerate() {
            tokio::time::sleep_until(start + step * i as u32).await;
            c.push_then_close(frame.clone(), crate::protocol::close::DRAINING);
        }
    });
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Writes this task's entry into the fleet item (creating the item the first time).
async fn beat(
    client: &Client,
    table: &str,
    task: &str,
    color: &str,
    conns: u64,
    ready: bool,
    last: Option<LastShed>,
) -> anyhow::Result<()> {
    let entry = AttributeValue::M(HashMap::from([
        ("color".to_string(), s(color)),
        (
            "conns".to_string(),
            n(i64::try_from(conns).unwrap_or(i64::MAX)),
        ),
        ("ready".to_string(), AttributeValue::Bool(ready)),
        ("at_ms".to_string(), n(crate::now_ms())),
        (
            "shed_until_ms".to_string(),
            n(last.map_or(0, |l| l.until_ms)),
        ),
        (
            "shed_from".to_string(),
            n(last.map_or(0, |l| i64::try_from(l.fleet_total).unwrap_or(i64::MAX))),
        ),
    ]));
    let update = || {
        client
            .update_item()
            .table_name(table)
            .key("conn_id", s(FLEET_KEY))
            .update_expression("SET tasks.#t = :e")
            .condition_expression("attribute_exists(tasks)")
            .expression_attribute_names("#t", task)
            .expression_attribute_values(":e", entry.clone())
            .send()
    };
    match update().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            // First heartbeat of the fleet: create the item (unless another task just did).
            let created = client
                .put_item()
                .table_name(table)
                .item("conn_id", s(FLEET_KEY))
                .item("tasks", AttributeValue::M(HashMap::new()))
                .condition_expression("attribute_not_exists(conn_id)")
                .send()
                .await;
            if let Err(e) = created
                && !e
                    .as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception())
            {
                return Err(anyhow::anyhow!(
                    "{}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                ));
            }
            update().await.map(|_| ()).map_err(|e| {
                anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e))
            })
        }
        Err(e) => Err(anyhow::anyhow!(
            "{}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&e)
        )),
    }
}

/// Removes this task's entry (drain), so it drops out of the counts at once.
async fn forget(client: &Client, table: &str, task: &str) -> anyhow::Result<()> {
    client
        .update_item()
        .table_name(table)
        .key("conn_id", s(FLEET_KEY))
        .update_expression("REMOVE tasks.#t")
        .expression_attribute_names("#t", task)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    Ok(())
}

/// The control record and the fresh heartbeats, in one consistent read each.
async fn read(client: &Client, table: &str) -> anyhow::Result<(Option<Control>, Vec<Beat>)> {
    let get = |key: &'static str| {
        client
            .get_item()
            .table_name(table)
            .key("conn_id", s(key))
            .consistent_read(true)
            .send()
    };
    let err = |e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e));
    let control = get(CONTROL_KEY).await.map_err(err)?.item.and_then(|item| {
        let num = |k: &str| -> Option<i64> { item.get(k)?.as_n().ok()?.parse().ok() };
        Some(Control {
            blue: u8::try_from(num("blue")?).ok()?,
            green: u8::try_from(num("green")?).ok()?,
            rebalance: *item.get("rebalance")?.as_bool().ok()?,
            window: Duration::from_millis(u64::try_from(num("window_ms")?).ok()?),
        })
    });
    let now = crate::now_ms();
    let beats = get(FLEET_KEY)
        .await
        .map_err(err)?
        .item
        .and_then(|item| item.get("tasks")?.as_m().ok().cloned())
        .unwrap_or_default()
        .into_values()
        .filter_map(|v| {
            let m = v.as_m().ok()?;
            let at: i64 = m.get("at_ms")?.as_n().ok()?.parse().ok()?;
            (now - at <= DEAD_MS).then_some(())?;
            Some(Beat {
                color: m.get("color")?.as_s().ok()?.clone(),
                conns: m.get("conns")?.as_n().ok()?.parse().ok()?,
                at_ms: at,
                shed_until_ms: m
                    .get("shed_until_ms")
                    .and_then(|v| v.as_n().ok()?.parse().ok())
                    .unwrap_or(0),
                shed_from: m
                    .get("shed_from")
                    .and_then(|v| v.as_n().ok()?.parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect();
    Ok((control, beats))
}
