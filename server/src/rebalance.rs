//! Live connections follow the ALB weights. An ALB weight applies only to new connections,
//! so after a shift everyone already connected would stay where they are. Every second each
//! task (with the DynamoDB store):
//!
//! 1. publishes its heartbeat in the `fleet` item of the connections table
//!    (`tasks.{task} = {color, conns, ready, at_ms}`; `ready` is the `/readyz` verdict), which
//!    is also how opsctl counts connections per colour and gates on readiness; a task that
//!    stops heartbeating drops out after `FRESH_MS`, and a draining task removes its entry;
//! 2. reads the `opsctl#control` record opsctl writes once the listener carries new weights;
//! 3. when the record asks to rebalance and its colour holds more than its weight's share of
//!    the fleet's live connections, sheds its part of the excess with `reconnect` (reason
//!    `rebalance`) then a 1012 close, spread over the record's window, and waits for the
//!    counts to settle before looking again.
//!
//! Reconnecting clients are routed by those same weights, so a shed connection comes back to
//! its own colour with probability w; shedding `excess / (1 - w)` makes the expected result
//! land on target in one round. That factor is capped at 2 ([`MAX_FACTOR`]) so that a small
//! move (100/0 → 75/25) does not reconnect everyone: it then takes a few rounds instead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use rand::seq::SliceRandom;

use crate::conn::{self, Conn};
use crate::hub::Hub;
use crate::protocol::ServerFrame;
use crate::store::Store;

/// Key (`conn_id`) of the item every task heartbeats into.
pub const FLEET_KEY: &str = "fleet";
/// Key of the record opsctl writes.
pub const CONTROL_KEY: &str = "opsctl#control";
/// A heartbeat older than this belongs to a dead task.
pub const FRESH_MS: i64 = 10_000;
/// Time between heartbeats.
pub const BEAT: Duration = Duration::from_secs(1);
/// After a shedding round, how long the counts get to settle before the next look.
const SETTLE: Duration = Duration::from_secs(2);
/// `retry_after_ms` of a `rebalance` reconnect.
const RETRY_AFTER_MS: u64 = 100;
/// Most connections shed per connection of excess.
pub const MAX_FACTOR: f64 = 2.0;
/// A colour within this many connections (or 2 % of the fleet) of its share is on target.
const SLACK: u64 = 1;

/// What opsctl asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub blue: u8,
    pub green: u8,
    pub rebalance: bool,
    pub window: Duration,
}

impl Control {
    fn weight(&self, color: &str) -> Option<u8> {
        match color {
            "blue" => Some(self.blue),
            "green" => Some(self.green),
            _ => None,
        }
    }
}

/// One live task's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    pub color: String,
    pub conns: u64,
}

/// How many of its `mine` connections a task of `color` should shed, given the fleet's
/// live tasks (`beats`, this task's own entry included with `mine`).
pub fn to_shed(control: &Control, color: &str, mine: u64, beats: &[Beat]) -> u64 {
    let Some(weight) = control.weight(color) else {
        return 0;
    };
    if !control.rebalance || weight >= 100 || mine == 0 {
        return 0;
    }
    let total: u64 = beats.iter().map(|b| b.conns).sum();
    let have: u64 = beats
        .iter()
        .filter(|b| b.color == color)
        .map(|b| b.conns)
        .sum();
    if have == 0 || total == 0 {
        return 0;
    }
    let want = total as f64 * f64::from(weight) / 100.0;
    let slack = if weight == 0 {
        0.0
    } else {
        (total as f64 * 0.02).max(SLACK as f64)
    };
    let excess = have as f64 - want;
    if excess <= slack {
        return 0;
    }
    let my_part = excess * mine as f64 / have as f64;
    let factor = (1.0 / (1.0 - f64::from(weight) / 100.0)).min(MAX_FACTOR);
    let shed = (my_part * factor).ceil();
    (shed as u64).min(mine)
}

/// Starts the heartbeat / rebalance loop of this task.
pub fn spawn(hub: Arc<Hub>, store: Arc<dyn Store>, client: Client, table: String) {
    tokio::spawn(async move {
        let task = hub.info.task.clone();
        let color = hub.info.color.clone();
        let mut tick = tokio::time::interval(BEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut quiet_until = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            if hub.is_draining() {
                if let Err(e) = forget(&client, &table, &task).await {
                    tracing::warn!(error = %e, "Removing the fleet heartbeat failed");
                }
                return;
            }
            let ready = crate::readiness::failing(&store, &hub).await.is_empty();
            let mine = hub.connections().len() as u64;
            if let Err(e) = beat(&client, &table, &task, &color, mine, ready).await {
                tracing::debug!(error = %e, "Fleet heartbeat failed");
                continue;
            }
            if tokio::time::Instant::now() < quiet_until {
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
            let n = to_shed(&control, &color, mine, &beats);
            if n == 0 {
                continue;
            }
            tracing::info!(
                shed = n,
                connections = mine,
                blue = control.blue,
                green = control.green,
                "Rebalancing: shedding connections toward the weights"
            );
            shed(&hub, n as usize, control.window);
            quiet_until = tokio::time::Instant::now() + control.window + SETTLE;
        }
    });
}

/// Sends `n` random connections `reconnect` (reason `rebalance`) then 1012, spread over
/// `window`, in the background.
fn shed(hub: &Arc<Hub>, n: usize, window: Duration) {
    let mut conns: Vec<Arc<Conn>> = hub.connections();
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
    tokio::spawn(async move {
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
) -> anyhow::Result<()> {
    let entry = AttributeValue::M(HashMap::from([
        ("color".to_string(), s(color)),
        (
            "conns".to_string(),
            n(i64::try_from(conns).unwrap_or(i64::MAX)),
        ),
        ("ready".to_string(), AttributeValue::Bool(ready)),
        ("at_ms".to_string(), n(crate::now_ms())),
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
            (now - at <= FRESH_MS).then_some(())?;
            Some(Beat {
                color: m.get("color")?.as_s().ok()?.clone(),
                conns: m.get("conns")?.as_n().ok()?.parse().ok()?,
            })
        })
        .collect();
    Ok((control, beats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(blue: u8, rebalance: bool) -> Control {
        Control {
            blue,
            green: 100 - blue,
            rebalance,
            window: Duration::from_secs(1),
        }
    }

    fn beats(blue: u64, green: u64) -> Vec<Beat> {
        vec![
            Beat {
                color: "blue".into(),
                conns: blue,
            },
            Beat {
                color: "green".into(),
                conns: green,
            },
        ]
    }

    #[test]
    fn sheds_so_that_the_expected_result_is_on_target() {
        // 200 on blue, weights 50/50: excess 100, half of the shed come back.
        assert_eq!(
            to_shed(&control(50, true), "blue", 200, &beats(200, 0)),
            200
        );
        assert_eq!(to_shed(&control(50, true), "green", 0, &beats(200, 0)), 0);
        // Rollback: green at weight 0 sheds everything.
        assert_eq!(
            to_shed(&control(100, true), "green", 40, &beats(160, 40)),
            40
        );
        assert_eq!(
            to_shed(&control(100, true), "blue", 160, &beats(160, 40)),
            0
        );
    }

    #[test]
    fn on_target_or_not_asked_sheds_nothing() {
        assert_eq!(to_shed(&control(50, true), "blue", 101, &beats(101, 99)), 0);
        assert_eq!(to_shed(&control(50, false), "blue", 200, &beats(200, 0)), 0);
        assert_eq!(to_shed(&control(50, true), "local", 200, &beats(200, 0)), 0);
    }

    #[test]
    fn a_task_sheds_its_part_of_its_colours_excess() {
        // Two blue tasks (150 + 50), one green (0), weights 50/50: excess 100.
        let fleet = vec![
            Beat {
                color: "blue".into(),
                conns: 150,
            },
            Beat {
                color: "blue".into(),
                conns: 50,
            },
            Beat {
                color: "green".into(),
                conns: 0,
            },
        ];
        assert_eq!(to_shed(&control(50, true), "blue", 150, &fleet), 150);
        assert_eq!(to_shed(&control(50, true), "blue", 50, &fleet), 50);
        // 75/25: excess 50, the 150-task's part 37.5, times the capped factor 2.
        assert_eq!(to_shed(&control(75, true), "blue", 150, &fleet), 75);
    }
}
