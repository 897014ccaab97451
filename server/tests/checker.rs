//! A randomized, seeded checker in the spirit of Jepsen: three chat-server tasks on one
//! DynamoDB (moto) and one redis-server, each reached through a fault proxy; about 300
//! clients in 10 rooms that reconnect as the protocol says and retry every send with its
//! `client_msg_id`; faults at random (SIGKILL, SIGTERM drain, Redis restart, DynamoDB latency,
//! call timeouts, connection resets). Then, per room: every acked message is in the history
//! exactly once, every client received every acked message after its join point exactly once
//! and in seq order, and nothing unacked appears twice.
//!
//! Settings (environment): `CHECKER_SEED` (default: random, printed), `CHECKER_SECONDS` of
//! faults (60), `CHECKER_CLIENTS` (300), `CHECKER_ROOMS` (10), `CHECKER_TASKS` (3),
//! `CHECKER_RATE` messages per second over all clients (15). A failure prints the seed; the
//! same seed replays the same clients, sends and fault schedule (timings on a busy machine
//! still vary). `scripts/soak.sh SECONDS [SEED]` runs it for as long as asked.

mod moto;
mod support;

#[path = "checker/client.rs"]
mod client;
#[path = "checker/cluster.rs"]
mod cluster;
#[path = "checker/faults.rs"]
mod faults;
#[path = "checker/verdict.rs"]
mod verdict;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use client::{Client, Control};
use cluster::Cluster;

fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// Reads a room's whole history as (seq, client_msg_id), oldest first.
async fn history(base: &str, room: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let url = format!("{base}/api/rooms/{room}/messages?after={after}&limit=200");
        let mut tries = 0;
        let page = loop {
            // moto on a loaded machine may time a read out: ask again.
            let (status, page) = support::get_json(&url).await;
            if status == 200 {
                break page;
            }
            tries += 1;
            assert!(tries < 20, "history of {room}: {page}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        for m in &messages {
            let seq = m["seq"].as_u64().expect("seq");
            out.push((seq, m["client_msg_id"].as_str().unwrap_or("").to_string()));
            after = seq;
        }
        if page["has_more"] != Value::Bool(true) || messages.is_empty() {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_faults_lose_no_acked_message() {
    let seed = setting("CHECKER_SEED", rand::random::<u32>().into());
    let seconds = setting("CHECKER_SECONDS", 60);
    let clients = setting("CHECKER_CLIENTS", 300) as usize;
    let rooms = setting("CHECKER_ROOMS", 10).max(1) as usize;
    let tasks = setting("CHECKER_TASKS", 3).max(1) as usize;
    let rate = setting("CHECKER_RATE", 15).max(1);
    println!(
        "checker: seed {seed} ({seconds} s of faults, {clients} clients, {rooms} rooms, {tasks} tasks, {rate} msg/s); reproduce with CHECKER_SEED={seed}"
    );

    let mut cluster = Cluster::start(tasks, cluster::STORE_TIMEOUT_MS).await;
    let control = Arc::new(Control::default());
    control.running.store(true, Ordering::Relaxed);
    let every = Duration::from_secs_f64(clients as f64 / rate as f64);
    let mut logs = Vec::new();
    let mut handles = Vec::new();
    // Sessions twenty at a time: through moto one by one they take long on a busy machine.
    let mut tokens = Vec::with_capacity(clients);
    for chunk in (0..clients).collect::<Vec<_>>().chunks(20) {
        let urls = &cluster.urls;
        let names: Vec<String> = chunk.iter().map(|i| format!("u{i}")).collect();
        tokens.extend(
            futures_util::future::join_all(names.iter().map(|n| client::session(urls, n))).await,
        );
    }
    for (i, token) in tokens.into_iter().enumerate() {
        let room = format!("room-{}", i % rooms);
        let c = Client::new(
            i,
            room,
            token,
            Arc::clone(&cluster.urls),
            Arc::clone(&control),
            seed,
            every,
        );
        logs.push(Arc::clone(&c.log));
        handles.push(tokio::spawn(c.run()));
    }
    // Everyone joined before the first fault, so every client has a join point.
    let deadline = Instant::now() + Duration::from_secs(60);
    while logs.iter().any(|l| l.lock().start.is_none()) {
        assert!(
            Instant::now() < deadline,
            "clients did not all join within 60 s (seed {seed})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    control.sending.store(true, Ordering::Relaxed);
    let tally = faults::run(
        &mut cluster,
        seed,
        Instant::now() + Duration::from_secs(seconds),
    )
    .await;
    control.sending.store(false, Ordering::Relaxed);

    // Healed: every outstanding send is retried until acked, every client catches up.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let outstanding = logs
            .iter()
            .filter(|l| l.lock().outstanding.is_some())
            .count();
        let mut acked: HashMap<String, Vec<u64>> = HashMap::new();
        for l in &logs {
            let l = l.lock();
            acked
                .entry(l.room.clone())
                .or_default()
                .extend(l.acks.values());
        }
        let missing: usize = logs
            .iter()
            .map(|l| verdict::missing(&l.lock(), &acked))
            .sum();
        if outstanding == 0 && missing == 0 {
            break;
        }
        if Instant::now() >= deadline {
            println!(
                "checker: gave up waiting: {outstanding} sends unacked, {missing} deliveries missing"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    control.running.store(false, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }

    let base = cluster.any_url().expect("a live task after healing");
    let mut stored = BTreeMap::new();
    for r in 0..rooms {
        let room = format!("room-{r}");
        stored.insert(room.clone(), history(&base, &room).await);
    }
    let logs: Vec<client::Log> = logs
        .iter()
        .map(|l| std::mem::take(&mut *l.lock()))
        .collect();
    let reconnects: u32 = logs.iter().map(|l| l.connections.saturating_sub(1)).sum();
    let v = verdict::judge(&logs, &stored);
    let faults: Vec<String> = tally.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("checker: seed {seed}: faults: {}", faults.join(", "));
    println!(
        "checker: seed {seed}: acked {}, stored {}, reconnects {reconnects}, lost {}, undelivered {}, duplicated {}, out of order {}, mismatched {}",
        v.acked, v.stored, v.lost, v.undelivered, v.duplicated, v.out_of_order, v.mismatched
    );
    for e in &v.examples {
        println!("checker:   {e}");
    }
    assert!(v.acked > 0, "nothing was acked (seed {seed})");
    assert!(
        v.ok(),
        "delivery guarantee broken; reproduce with CHECKER_SEED={seed}"
    );
}
