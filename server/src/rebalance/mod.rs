//! Live connections follow the ALB weights. An ALB weight applies only to new connections,
//! so after a shift everyone already connected would stay where they are. Every second each
//! task (with the DynamoDB store):
//!
//! 1. publishes its heartbeat in the `fleet` item of the connections table (the items are
//!    `chat_contract::rollout`'s, reached through the `Store` seam)
//!    (`tasks.{task} = {color, conns, ready, at_ms, shed_until_ms, shed_from}`; `ready` is the
//!    `/readyz` verdict, `shed_until_ms` the end of its latest shed window and `shed_from` the
//!    fleet total it shed from, so that every task waits for those to land), which is also how opsctl
//!    counts connections per colour and gates on readiness; a task that stops heartbeating
//!    drops out after `FRESH_MS`, a draining task removes its entry, and the entry of a task
//!    that died without draining (killed, Spot reclaimed) is removed by the others after
//!    [`PRUNE_MS`], so the item (at most 400 KB) never grows with the event's dead tasks;
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

use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;

use crate::background::Background;
use crate::conn::{self, Conn};
use crate::hub::Hub;
use crate::protocol::ServerFrame;
use crate::store::{Rollout, Store};

pub use chat_contract::rollout::{CONTROL_KEY, FLEET_KEY, FRESH_MS};
pub use decide::{Beat, Control, LastShed, Look, MAX_FACTOR, decide};
/// For the rebalancing decision a task is dead only after this long: until then its late
/// heartbeat holds every decision ([`decide::LATE_MS`]) rather than leaving it out of the
/// count, which would make the others shed toward a partial total.
pub const DEAD_MS: i64 = 60_000;
/// A heartbeat this old is removed from the fleet item by whichever task sees it first: far past
/// [`DEAD_MS`], so clock differences between tasks (milliseconds, Amazon Time Sync) never prune a
/// live one.
pub const PRUNE_MS: i64 = 5 * DEAD_MS;
/// Time between heartbeats.
pub const BEAT: Duration = Duration::from_secs(1);
/// `retry_after_ms` of a `rebalance` reconnect.
const RETRY_AFTER_MS: u64 = 100;

/// Starts the heartbeat / rebalance loop of this task under `background`. It removes the
/// task's heartbeat and ends once the hub drains (or at the shutdown, whichever is first).
pub fn spawn(hub: Arc<Hub>, store: Arc<dyn Store>, background: &Background) {
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
                if let Err(e) = store.remove_fleet_beat(&task).await {
                    tracing::warn!(error = %e, "Removing the fleet heartbeat failed");
                }
                return;
            }
            let ready = crate::readiness::failing(&store, &hub).await.is_empty();
            // Live ones only: a shed or closed connection stays in the hub until its cleanup
            // (store calls) is done, which on a slow store lags far behind its socket.
            let mine = live(&hub).len() as u64;
            let beat = Beat {
                color: color.clone(),
                conns: mine,
                ready,
                at_ms: crate::now_ms(),
                shed_until_ms: last.map_or(0, |l| l.until_ms),
                shed_from: last.map_or(0, |l| l.fleet_total),
            };
            if let Err(e) = store.put_fleet_beat(&task, &beat).await {
                tracing::debug!(error = %e, "Fleet heartbeat failed");
                continue;
            }
            let rollout = match store.rollout().await {
                Ok(rollout) => rollout,
                Err(e) => {
                    tracing::debug!(error = %e, "Reading the rollout control failed");
                    continue;
                }
            };
            let now = crate::now_ms();
            for (dead, at_ms) in dead_beats(&rollout, now) {
                match store.prune_fleet_beat(&dead, at_ms).await {
                    Ok(()) => {
                        tracing::info!(task = %dead, at_ms, "Removed a dead task's fleet heartbeat")
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, task = %dead, "Pruning a dead heartbeat failed")
                    }
                }
            }
            let Some((control, beats)) = living(rollout, now) else {
                continue;
            };
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
            shed(&hub, n as usize, control.window(), &sheds);
            last = Some(LastShed {
                until_ms: now.saturating_add(control.window_ms),
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

/// (task, at_ms) of the heartbeats older than [`PRUNE_MS`]: tasks that died without draining.
fn dead_beats(rollout: &Rollout, now: i64) -> Vec<(String, i64)> {
    rollout
        .beats
        .iter()
        .filter(|(_, beat)| now - beat.at_ms > PRUNE_MS)
        .map(|(task, beat)| (task.clone(), beat.at_ms))
        .collect()
}

/// The control record, and the heartbeats of tasks not dead for the decision (younger than
/// [`DEAD_MS`]); `None` while opsctl has written no control record.
fn living(rollout: Rollout, now: i64) -> Option<(Control, Vec<Beat>)> {
    let control = rollout.control?;
    let beats = rollout
        .beats
        .into_iter()
        .map(|(_, beat)| beat)
        .filter(|beat| now - beat.at_ms <= DEAD_MS)
        .collect();
    Some((control, beats))
}
