//! The nemesis: faults at random (seeded), one process fault at a time, store faults
//! overlapping them. Kinds: task SIGKILL + restart, SIGTERM drain + restart, Redis restart,
//! DynamoDB latency (0–8 s on one task's calls, writes only or all), call timeouts (a write
//! lands, its answer comes after the task gave up), connection resets (a task's DynamoDB or
//! Redis connections).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use faultproxy::{Action, FaultProxy, Rule};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::cluster::{Cluster, STORE_TIMEOUT_MS};

/// Faults injected, by kind.
pub type Tally = BTreeMap<&'static str, u32>;

/// Injects faults until `until`, then heals everything (every task up, no rule in force).
pub async fn run(cluster: &mut Cluster, seed: u64, until: Instant) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17);
    let mut tally = Tally::new();
    // Store faults end on their own; their handles are awaited before healing.
    let mut timed = Vec::new();
    loop {
        let pause = Duration::from_millis(rng.random_range(1_000..4_000));
        if Instant::now() + pause >= until {
            break;
        }
        tokio::time::sleep(pause).await;
        let slot = rng.random_range(0..cluster.len());
        let kind = match rng.random_range(0..6) {
            0 => "task_sigkill",
            1 => "task_drain",
            2 => "redis_restart",
            3 => "dynamodb_latency",
            4 => "call_timeout",
            _ => "connection_reset",
        };
        *tally.entry(kind).or_default() += 1;
        match kind {
            "task_sigkill" => {
                cluster.kill_task(slot);
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..2_000))).await;
                cluster.start_task(slot).await;
            }
            "task_drain" => {
                cluster.drain_task(slot).await;
                cluster.start_task(slot).await;
            }
            "redis_restart" => {
                cluster.redis.kill();
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..2_000))).await;
                cluster.redis.start_again().await;
            }
            "dynamodb_latency" => {
                let delay = Duration::from_millis(rng.random_range(0..8_000));
                let rules = if rng.random_bool(0.5) {
                    vec![
                        Rule::op("TransactWriteItems", Action::Delay(delay)),
                        Rule::op("UpdateItem", Action::Delay(delay)),
                    ]
                } else {
                    vec![Rule::all(Action::Delay(delay))]
                };
                let lasts = Duration::from_millis(rng.random_range(2_000..8_000));
                timed.push(for_a_while(Arc::clone(&cluster.ddb[slot]), rules, lasts));
            }
            "call_timeout" => {
                let late = STORE_TIMEOUT_MS + rng.random_range(500..3_000);
                let rules = vec![Rule::op(
                    "TransactWriteItems",
                    Action::DelayResponse(Duration::from_millis(late)),
                )];
                let lasts = Duration::from_millis(rng.random_range(1_000..5_000));
                timed.push(for_a_while(Arc::clone(&cluster.ddb[slot]), rules, lasts));
            }
            _ => {
                if rng.random_bool(0.5) {
                    cluster.ddb[slot].reset_all();
                } else {
                    cluster.rds[slot].reset_all();
                }
            }
        }
    }
    for t in timed {
        let _ = t.await;
    }
    cluster.clear_faults();
    tally
}

/// Puts `rules` in force on `proxy` for `lasts`, then lifts them.
fn for_a_while(
    proxy: Arc<FaultProxy>,
    rules: Vec<Rule>,
    lasts: Duration,
) -> tokio::task::JoinHandle<()> {
    proxy.set_rules(rules);
    tokio::spawn(async move {
        tokio::time::sleep(lasts).await;
        proxy.clear();
    })
}
