//! A randomized, seeded checker in the spirit of Jepsen: chat-server tasks on one DynamoDB
//! (moto) and one redis-server, each task reaching both through its own fault proxy; clients
//! spread over rooms that reconnect as the protocol says, churn, and retry every send with its
//! `client_msg_id`; faults at random (SIGKILL, SIGTERM drain, Redis restart, DynamoDB latency,
//! call timeouts, hung calls, connection resets and cuts). Then, per room: every acked message
//! is in the history exactly once, every client received every acked message after its join
//! point exactly once and in seq order, and nothing unacked appears twice.
//!
//! Settings (environment): `CHECKER_SEED` (default: random, printed), `CHECKER_SECONDS` of
//! faults (60), `CHECKER_CLIENTS` (60), `CHECKER_ROOMS` (10), `CHECKER_TASKS` (3),
//! `CHECKER_RATE` messages per second over all clients (8), `CHECKER_STAY` mean seconds a
//! client stays connected before it leaves and comes back (40). The defaults are the bounded run
//! of the test command; `scripts/soak.sh SECONDS` runs 300 clients for as long as asked.
//! Every wait has a deadline and the whole run a budget: it ends, passing or failing, and a
//! failure prints the seed and the command that reproduces it (the same seed replays the same
//! clients, sends and fault schedule; timings on a busy machine still vary).

mod moto;
mod support;

#[path = "checker/client.rs"]
mod client;
#[path = "checker/cluster.rs"]
mod cluster;
#[path = "checker/faults.rs"]
mod faults;
#[path = "checker/setting.rs"]
mod setting;
#[path = "checker/verdict.rs"]
mod verdict;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use client::{Client, Control, Pace};
use cluster::Cluster;
use setting::setting;

/// Longest wait for every client's first `joined`, once the last one has arrived.
const JOIN_WAIT: Duration = Duration::from_secs(90);
/// New clients arriving per second at the start.
const ARRIVALS_PER_SEC: f64 = 5.0;
/// Longest wait, once the faults are healed, for every send to be acked and every client to
/// have caught up.
const HEAL_WAIT: Duration = Duration::from_secs(90);
/// Budget of a whole run beyond its seconds of faults (setup, the last fault's restart,
/// healing, the final reads): past it the run fails with its seed.
const OVERHEAD_BUDGET: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
struct Settings {
    seed: u64,
    seconds: u64,
    clients: usize,
    rooms: usize,
    tasks: usize,
    rate: u64,
    stay: u64,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            seed: setting("CHECKER_SEED", rand::random::<u32>().into()),
            seconds: setting("CHECKER_SECONDS", 60),
            clients: setting("CHECKER_CLIENTS", 60).max(1) as usize,
            rooms: setting("CHECKER_ROOMS", 10).max(1) as usize,
            tasks: setting("CHECKER_TASKS", 3).max(1) as usize,
            rate: setting("CHECKER_RATE", 8).max(1),
            stay: setting("CHECKER_STAY", 40).max(1),
        }
    }

    /// The command that replays this run.
    fn reproduce(&self) -> String {
        format!(
            "CHECKER_SEED={} CHECKER_SECONDS={} CHECKER_CLIENTS={} CHECKER_ROOMS={} CHECKER_TASKS={} CHECKER_RATE={} CHECKER_STAY={} cargo test -p chat-server --test checker -- --nocapture",
            self.seed, self.seconds, self.clients, self.rooms, self.tasks, self.rate, self.stay
        )
    }
}

/// What a finished run saw.
struct Outcome {
    report: verdict::Report,
    tally: faults::Tally,
    reconnects: u32,
    /// Why connections ended (besides churn), by reason.
    ends: BTreeMap<String, u32>,
    unacked: usize,
    healed_in: Duration,
}

/// Reads a room's whole history as (seq, client_msg_id), oldest first.
async fn history(base: &str, room: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let url = format!("{base}/api/rooms/{room}/messages?after={after}&limit=200");
        let mut tries = 0;
        let page = loop {
            // moto on a loaded machine may time a read out: ask again (each try is bounded).
            let (status, page) = support::get_json(&url).await;
            if status == 200 {
                break page;
            }
            tries += 1;
            assert!(tries < 20, "history of {room}: {status} {page}");
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

/// One run: start, load, faults, heal, stop every client, read the histories, judge.
async fn check(s: Settings) -> Outcome {
    let mut cluster = Cluster::start(s.tasks, cluster::STORE_TIMEOUT_MS).await;
    let control = Arc::new(Control::default());
    let every = Duration::from_secs_f64(s.clients as f64 / s.rate as f64);
    let mut logs = Vec::new();
    let mut handles = Vec::new();
    // Sessions twenty at a time: through moto one by one they take long on a busy machine.
    let mut tokens = Vec::with_capacity(s.clients);
    for chunk in (0..s.clients).collect::<Vec<_>>().chunks(20) {
        let urls = &cluster.urls;
        let names: Vec<String> = chunk.iter().map(|i| format!("u{i}")).collect();
        tokens.extend(
            futures_util::future::join_all(names.iter().map(|n| client::session(urls, n))).await,
        );
    }
    for (i, token) in tokens.into_iter().enumerate() {
        let room = format!("room-{}", i % s.rooms);
        let c = Client::new(
            i,
            room,
            token,
            Arc::clone(&cluster.urls),
            Arc::clone(&control),
            s.seed,
            Pace {
                every,
                stay: Duration::from_secs(s.stay),
                arrives_after: Duration::from_secs_f64(i as f64 / ARRIVALS_PER_SEC),
            },
        );
        logs.push(Arc::clone(&c.log));
        handles.push(tokio::spawn(c.run()));
    }
    // Everyone joined before the first fault, so every client has a join point.
    let arrivals = Duration::from_secs_f64(s.clients as f64 / ARRIVALS_PER_SEC);
    let joining = Instant::now();
    let deadline = joining + arrivals + JOIN_WAIT;
    let mut progress = joining;
    loop {
        let waiting = logs.iter().filter(|l| l.lock().start.is_none()).count();
        if waiting == 0 {
            println!(
                "checker: all {} clients joined in {:.1} s",
                s.clients,
                joining.elapsed().as_secs_f64()
            );
            break;
        }
        if progress.elapsed() >= Duration::from_secs(10) {
            progress = Instant::now();
            println!(
                "checker: {waiting} clients not joined yet after {:.0} s",
                joining.elapsed().as_secs_f64()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} clients had not joined {JOIN_WAIT:?} after the last one arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    control.sending.store(true, Ordering::Relaxed);
    let tally = faults::run(
        &mut cluster,
        s.seed,
        Instant::now() + Duration::from_secs(s.seconds),
    )
    .await;
    control.sending.store(false, Ordering::Relaxed);

    // Healed: every outstanding send is retried until acked, every client catches up.
    let healing = Instant::now();
    let deadline = healing + HEAL_WAIT;
    let mut progress = healing;
    let unacked = loop {
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
            break 0;
        }
        if progress.elapsed() >= Duration::from_secs(10) {
            progress = Instant::now();
            println!(
                "checker: healing for {:.0} s: {outstanding} sends unacked, {missing} deliveries missing",
                healing.elapsed().as_secs_f64()
            );
        }
        if Instant::now() >= deadline {
            println!(
                "checker: gave up waiting after {HEAL_WAIT:?}: {outstanding} sends unacked, {missing} deliveries missing"
            );
            break outstanding;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let healed_in = healing.elapsed();
    // Every client stops now, wherever it is.
    control.stop.cancel();
    for h in handles {
        match tokio::time::timeout(Duration::from_secs(10), h).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("a client failed: {e}"),
            Err(_) => panic!("a client did not stop within 10 s of being told to"),
        }
    }

    let base = cluster.any_url().expect("a live task after healing");
    let mut stored = BTreeMap::new();
    for r in 0..s.rooms {
        let room = format!("room-{r}");
        stored.insert(room.clone(), history(&base, &room).await);
    }
    let logs: Vec<client::Log> = logs
        .iter()
        .map(|l| std::mem::take(&mut *l.lock()))
        .collect();
    let reconnects: u32 = logs.iter().map(|l| l.connections.saturating_sub(1)).sum();
    let mut ends: BTreeMap<String, u32> = BTreeMap::new();
    for l in &logs {
        for (why, n) in &l.ends {
            *ends.entry(why.clone()).or_default() += n;
        }
    }
    Outcome {
        report: verdict::judge(&logs, &stored),
        tally,
        reconnects,
        ends,
        unacked,
        healed_in,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_faults_lose_no_acked_message() {
    let s = Settings::from_env();
    let seed = s.seed;
    let reproduce = s.reproduce();
    println!(
        "checker: seed {seed} ({} s of faults, {} clients, {} rooms, {} tasks, {} msg/s, {} s mean stay); reproduce with: {reproduce}",
        s.seconds, s.clients, s.rooms, s.tasks, s.rate, s.stay
    );
    let budget = Duration::from_secs(s.seconds) + OVERHEAD_BUDGET;
    let started = Instant::now();
    let run = tokio::spawn(check(s));
    let abort = run.abort_handle();
    let outcome = match tokio::time::timeout(budget, run).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            let why = if e.is_panic() {
                let p = e.into_panic();
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic".into())
            } else {
                e.to_string()
            };
            panic!("checker: seed {seed}: the run failed: {why}\nreproduce with: {reproduce}");
        }
        Err(_) => {
            abort.abort();
            panic!(
                "checker: seed {seed}: the run did not finish within its budget of {budget:?}\nreproduce with: {reproduce}"
            );
        }
    };
    let faults: Vec<String> = outcome
        .tally
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let injected: u32 = outcome.tally.values().sum();
    println!(
        "checker: seed {seed}: faults injected {injected}: {}",
        faults.join(", ")
    );
    for (room, v) in &outcome.report.rooms {
        println!("checker: seed {seed}: {room}: {v}");
        for e in &v.examples {
            println!("checker:   {room}: {e}");
        }
    }
    println!(
        "checker: seed {seed}: all rooms: {}; reconnects {}, unacked at the end {}, healed in {:.1} s, run {:.0} s",
        outcome.report.total,
        outcome.reconnects,
        outcome.unacked,
        outcome.healed_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let ends: Vec<String> = outcome
        .ends
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "checker: seed {seed}: connections ended by: {}",
        ends.join(", ")
    );
    assert!(
        outcome.report.total.acked > 0,
        "checker: seed {seed}: nothing was acked\nreproduce with: {reproduce}"
    );
    let broken: Vec<&String> = outcome
        .report
        .rooms
        .iter()
        .filter(|(_, v)| !v.ok())
        .map(|(r, _)| r)
        .collect();
    assert!(
        broken.is_empty(),
        "checker: seed {seed}: delivery guarantee broken in {broken:?}\nreproduce with: {reproduce}"
    );
}
