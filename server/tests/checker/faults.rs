//! The nemesis: faults at random (seeded), one process fault at a time, store faults
//! overlapping them. Kinds: task SIGKILL + restart, SIGTERM drain + restart, Redis restart,
//! DynamoDB latency (0–8 s on one task's calls: writes, reads or all), call timeouts (a write
//! lands, its answer comes after the task gave up), DynamoDB calls hung for a while,
//! connection resets (RST) and cuts (FIN) of a task's DynamoDB or Redis connections. Kinds
//! come in shuffled rounds, so every kind is injected once per round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use faultproxy::{Action, FaultProxy, Rule};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::cluster::{Cluster, STORE_TIMEOUT_MS};

/// Faults injected, by kind.
pub type Tally = BTreeMap<&'static str, u32>;

/// Every kind, in the order a round starts from before shuffling.
pub const KINDS: [&str; 8] = [
    "task_sigkill",
    "task_drain",
    "redis_restart",
    "dynamodb_latency",
    "call_timeout",
    "dynamodb_hang",
    "connection_reset",
    "connection_cut",
];

/// A store fault in force on one proxy until its time is up (a later fault on the same
/// proxy replaces it, and only the latest one lifts the rules).
struct Timed {
    proxy: Arc<FaultProxy>,
    generation: Arc<AtomicU64>,
}

/// Injects faults until `until`, then heals everything (every task up, no rule in force).
pub async fn run(cluster: &mut Cluster, seed: u64, until: Instant) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17);
    let mut tally = Tally::new();
    let timed: Vec<Timed> = cluster
        .ddb
        .iter()
        .map(|p| Timed {
            proxy: Arc::clone(p),
            generation: Arc::default(),
        })
        .collect();
    let mut round: Vec<&'static str> = Vec::new();
    let started = Instant::now();
    let mut lifts = Vec::new();
    loop {
        let pause = Duration::from_millis(rng.random_range(1_000..4_000));
        if Instant::now() + pause >= until {
            break;
        }
        tokio::time::sleep(pause).await;
        if round.is_empty() {
            round = KINDS.to_vec();
            round.shuffle(&mut rng);
        }
        let kind = round.pop().expect("a kind");
        let slot = rng.random_range(0..cluster.len());
        *tally.entry(kind).or_default() += 1;
        println!(
            "checker: fault at {:.1} s: {kind} on task {slot}",
            started.elapsed().as_secs_f64()
        );
        match kind {
            "task_sigkill" => {
                cluster.kill_task(slot);
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..2_000))).await;
                cluster.start_task(slot).await;
            }
            "task_drain" => {
                if !cluster.drain_task(slot).await {
                    println!("checker: task {slot} still draining after 30 s: SIGKILLed");
                    *tally.entry("task_drain_overran_killed").or_default() += 1;
                }
                cluster.start_task(slot).await;
            }
            "redis_restart" => {
                cluster.redis.kill();
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..2_000))).await;
                cluster.redis.start_again().await;
            }
            "dynamodb_latency" => {
                let delay = Action::Delay(Duration::from_millis(rng.random_range(0..8_000)));
                let rules = match rng.random_range(0..3) {
                    0 => vec![
                        Rule::op("TransactWriteItems", delay),
                        Rule::op("UpdateItem", delay),
                    ],
                    1 => vec![Rule::op("Query", delay), Rule::op("GetItem", delay)],
                    _ => vec![Rule::all(delay)],
                };
                let lasts = Duration::from_millis(rng.random_range(2_000..8_000));
                lifts.push(for_a_while(&timed[slot], rules, lasts));
            }
            "call_timeout" => {
                let late = STORE_TIMEOUT_MS + rng.random_range(500..3_000);
                let rules = vec![Rule::op(
                    "TransactWriteItems",
                    Action::DelayResponse(Duration::from_millis(late)),
                )];
                let lasts = Duration::from_millis(rng.random_range(1_000..5_000));
                lifts.push(for_a_while(&timed[slot], rules, lasts));
            }
            "dynamodb_hang" => {
                // Held until the rule is lifted: calls past the task's timeout give up, the
                // held requests are forwarded (and land) when it lifts.
                let op = ["TransactWriteItems", "Query", "UpdateItem"][rng.random_range(0..3)];
                let rules = vec![Rule::op(op, Action::Hang)];
                let lasts = Duration::from_millis(rng.random_range(1_000..8_000));
                lifts.push(for_a_while(&timed[slot], rules, lasts));
            }
            "connection_reset" => {
                if rng.random_bool(0.5) {
                    cluster.ddb[slot].reset_all();
                } else {
                    cluster.rds[slot].reset_all();
                }
            }
            _ => {
                if rng.random_bool(0.5) {
                    cluster.ddb[slot].cut_all();
                } else {
                    cluster.rds[slot].cut_all();
                }
            }
        }
    }
    for lift in lifts {
        let _ = lift.await;
    }
    cluster.clear_faults();
    tally
}

/// Puts `rules` in force on `t`'s proxy for `lasts`, then lifts them unless a later fault
/// replaced them meanwhile.
fn for_a_while(t: &Timed, rules: Vec<Rule>, lasts: Duration) -> tokio::task::JoinHandle<()> {
    let mine = t.generation.fetch_add(1, Ordering::SeqCst) + 1;
    t.proxy.set_rules(rules);
    let proxy = Arc::clone(&t.proxy);
    let generation = Arc::clone(&t.generation);
    tokio::spawn(async move {
        tokio::time::sleep(lasts).await;
        if generation.load(Ordering::SeqCst) == mine {
            proxy.clear();
        }
    })
}
