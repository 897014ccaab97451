//! Issue 18's end-to-end proof that live connections follow the weights. Blue and green (one
//! chat-server task each, a real redis-server, DynamoDB on its own moto) behind localalb, which
//! routes each new connection by the listener weights in the stack's moto; `LIVE_CLIENTS`
//! clients (default 1,000, all from one address as a venue's audience behind its NAT, with the
//! connection limit per address as shipped: none may be refused) in one room, `LIVE_SENDERS` of them (default 10) sending numbered
//! messages all along. The clients are the server checker's (`server/tests/checker/client.rs`):
//! they reconnect as docs/PROTOCOL.md §7 says, rejoining with `after` = the last seq seen, and
//! retry every send with its `client_msg_id` until it is acked.
//!
//! - `opsctl shift 50/50 --rebalance` → within 30 s each colour holds 50 % ± 10 of the clients
//!   (counted from the colour each client was welcomed by), and still does, as the clients and
//!   as `opsctl status` count them, a window + [`HOLD_BEYOND_WINDOW`] after opsctl exited (no
//!   overshoot);
//! - `opsctl rollback` → green holds none within 30 s;
//! - then every acked message reached every client exactly once and in seq order across the
//!   moves, checked against the room's history (the checker's verdict).
//!
//! Prints the measured times and the tasks' store calls per phase. `LIVE_SEED` (default 18,
//! printed) seeds the clients' pace; `LIVE_WINDOW` (seconds, default 5 as opsctl's) is the window over
//! which tasks shed (`--rebalance=WINDOW`, `rollback --window`); `LIVE_CONVERGE` (seconds,
//! default 30) the bound on each move, for measuring larger crowds (docs/operations.md has the
//! figures at 2,000). A move costs the serial moto little: the join is answered from the room's
//! memory and the connection records go in batches of 25.

mod support;

#[path = "../../server/tests/checker/client.rs"]
#[allow(dead_code)]
mod client;
#[path = "../../server/tests/checker/setting.rs"]
mod setting;
#[path = "../../server/tests/checker/verdict.rs"]
mod verdict;

/// What the checker's client needs of its cluster: the base URLs to dial (here localalb alone).
mod cluster {
    pub type Urls = std::sync::Arc<parking_lot::RwLock<Vec<Option<String>>>>;
}

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::time::Instant;

use client::{Client, Control, Log, Pace};
use setting::setting;
use support::live::{LocalAlb, Redis, StoreMoto, Task};
use support::{FaultProxy, Moto, Options, Stack, args};

const ROOM: &str = "live";
/// How long each move may take, as the issue says (at 200 clients); `LIVE_CONVERGE` (seconds)
/// widens it to measure a larger crowd on this machine's serial test store.
const CONVERGE_SECS: u64 = 30;
/// How long after `opsctl shift` exits the split must still hold, beyond one shed window: a
/// whole further rebalancing round (the window, the settle time, a heartbeat) and more.
const HOLD_BEYOND_WINDOW: Duration = Duration::from_secs(5);
/// A colour's share may be this many percentage points off its weight.
const TOLERANCE_PCT: usize = 10;
/// Mean time between a sender's messages.
const SEND_EVERY: Duration = Duration::from_secs(1);
/// New clients per second while they first connect.
const ARRIVALS_PER_SEC: u64 = 50;

type Logs = Vec<Arc<Mutex<Log>>>;

/// Clients welcomed per colour now, as the clients see it: (blue, green).
fn split(logs: &Logs) -> (usize, usize) {
    let (mut blue, mut green) = (0, 0);
    for l in logs {
        match l.lock().color.as_deref() {
            Some("blue") => blue += 1,
            Some("green") => green += 1,
            _ => {}
        }
    }
    (blue, green)
}

/// Each colour holds 50 % ± [`TOLERANCE_PCT`] of all `n` clients.
fn halves(n: usize, (blue, green): (usize, usize)) -> bool {
    let ok = |c: usize| c * 100 >= n * (50 - TOLERANCE_PCT) && c * 100 <= n * (50 + TOLERANCE_PCT);
    ok(blue) && ok(green)
}

/// How the clients' connections ended so far, by reason, summed.
fn ends(logs: &Logs) -> BTreeMap<String, u32> {
    let mut all = BTreeMap::new();
    for l in logs {
        for (why, n) in &l.lock().ends {
            *all.entry(why.clone()).or_default() += n;
        }
    }
    all
}

/// opsctl called `what` done with the audience back: at least 90 % of the `n` connections
/// counted in its JSON report, not a share of the few connected mid-move.
fn assert_audience_back(what: &str, report: &Value, n: usize) {
    let counted: u64 = report["connections"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    assert!(
        counted * 10 >= n as u64 * 9,
        "opsctl called the {what} done with {} of {n} connections back",
        report["connections"]
    );
}

/// `reconnect` frames with reason `rebalance` the clients received so far.
fn rebalance_reconnects(logs: &Logs) -> u32 {
    logs.iter()
        .map(|l| {
            l.lock()
                .ends
                .get("reconnect rebalance")
                .copied()
                .unwrap_or(0)
        })
        .sum()
}

/// opsctl's view: live connections per colour from `opsctl status` (the fleet heartbeats).
fn opsctl_view(moto: &Moto) -> (u64, u64) {
    // The clients go on running on the other worker meanwhile.
    let status = tokio::task::block_in_place(|| {
        moto.opsctl(&args(&["status", "--json"]))
            .expect_code(0)
            .json()
    });
    let of = |color: &str| {
        status["colors"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["color"] == color)
            .and_then(|c| c["live_connections"].as_u64())
            .unwrap_or(0)
    };
    (of("blue"), of("green"))
}

/// The tasks' store calls since `before` (per action) and their rate over `took`.
fn store_load(counter: &FaultProxy, before: &BTreeMap<String, usize>, took: Duration) -> String {
    let now = counter.all_calls();
    let mut total = 0;
    let mut each = Vec::new();
    for (action, n) in &now {
        let d = n - before.get(action).copied().unwrap_or(0);
        if d > 0 {
            total += d;
            each.push(format!("{action} {d}"));
        }
    }
    format!(
        "{total} store calls in {:.1} s ({:.0}/s): {}",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64().max(0.001),
        each.join(", ")
    )
}

/// Polls `check` every 100 ms until it holds; the time it took, or `None` after `within`.
async fn time_until(within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The room's whole history as (seq, client_msg_id), oldest first.
async fn history(base: &str) -> Vec<(u64, String)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let mut out = Vec::new();
    let mut after = 0;
    for _ in 0..100_000 {
        let url = format!("{base}/api/rooms/{ROOM}/messages?after={after}&limit=200");
        let page: Value = http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .json()
            .await
            .expect("history page");
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        for m in &messages {
            let seq = m["seq"].as_u64().expect("seq");
            out.push((seq, m["client_msg_id"].as_str().unwrap_or("").to_string()));
            after = after.max(seq);
        }
        if page["has_more"] != true || messages.is_empty() {
            return out;
        }
    }
    panic!("history of {ROOM} did not end");
}

/// The opsctl run's exit code and JSON report; the time it exited is `exited`.
struct Moved {
    report: Value,
    exited: Duration,
}

/// Runs opsctl `rest` while polling the clients every 100 ms: returns when opsctl has exited
/// and `done` holds (or after `within`), with the time `done` first held.
async fn move_and_watch(
    moto: &Moto,
    rest: &[&str],
    within: Duration,
    mut done: impl FnMut() -> bool,
) -> (Moved, Option<Duration>) {
    let start = Instant::now();
    let mut running = moto.spawn_opsctl(&args(rest));
    let mut reached = None;
    let mut exited = None;
    while start.elapsed() < within && (reached.is_none() || exited.is_none()) {
        if reached.is_none() && done() {
            reached = Some(start.elapsed());
        }
        if exited.is_none() && running.exited() {
            exited = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exited = exited.unwrap_or_else(|| start.elapsed());
    let run = running.wait();
    println!("live: opsctl {}: {}", rest.join(" "), run.stderr);
    run.expect_code(0);
    (
        Moved {
            report: run.json(),
            exited,
        },
        reached,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_connections_follow_shift_and_rollback_and_no_message_is_lost() {
    let n = setting("LIVE_CLIENTS", 1000).max(10) as usize;
    let senders = (setting("LIVE_SENDERS", 10) as usize).clamp(1, n);
    let seed = setting("LIVE_SEED", 18);
    let window = setting("LIVE_WINDOW", 5).max(1);
    println!(
        "live: {n} clients, {senders} senders, seed {seed}, window {window} s (LIVE_CLIENTS, LIVE_SENDERS, LIVE_SEED, LIVE_WINDOW, LIVE_CONVERGE)"
    );
    // Seating, two watched moves and the final catch-up.
    let converge = setting("LIVE_CONVERGE", CONVERGE_SECS);
    let budget = Duration::from_secs(300 + n as u64 / 5 + 4 * converge.saturating_sub(30));
    tokio::time::timeout(budget, run(n, senders, seed, window))
        .await
        .unwrap_or_else(|_| panic!("live: the run did not finish within {budget:?}"));
}

async fn run(n: usize, senders: usize, seed: u64, window: u64) {
    let converge = Duration::from_secs(setting("LIVE_CONVERGE", CONVERGE_SECS));
    // How long a move is watched (and opsctl may take) before it counts as failed.
    let watch = (converge * 2).max(Duration::from_secs(60));
    let opsctl_timeout = format!("{}s", watch.as_secs());
    let hold = Duration::from_secs(window) + HOLD_BEYOND_WINDOW;
    let rebalance = format!("--rebalance={window}s");
    let window = format!("{window}s");
    let logs_dir = tempfile::tempdir().expect("temp dir");
    let store = StoreMoto::start();
    let redis = Redis::start();
    // The tasks reach the store through a proxy that fails nothing and counts their calls.
    let counter = FaultProxy::start(&store.endpoint, "-", usize::MAX);
    let via = counter.endpoint.clone();
    let blue = Task::start("blue", &store, &via, &redis, logs_dir.path()).await;
    let green = Task::start("green", &store, &via, &redis, logs_dir.path()).await;
    let mut moto = Moto::start();
    moto.dynamodb_endpoint = Some(store.endpoint.clone());
    let stack = Stack::create(
        &moto,
        Options {
            real_targets: Some((blue.addr, green.addr)),
            ..Options::default()
        },
    )
    .await;
    assert_eq!(stack.weights().await, (100, 0));
    let alb = LocalAlb::start(&moto.endpoint);
    let urls: cluster::Urls = Arc::new(RwLock::new(vec![Some(alb.base.clone())]));

    // Everyone arrives on blue (100/0), joins, and is counted by opsctl too.
    let setup = Instant::now();
    let tokens: Vec<String> = futures_util::stream::iter(0..n)
        .map(|i| {
            let urls = urls.clone();
            async move { client::session(&urls, &format!("live{i}")).await }
        })
        .buffered(8)
        .collect()
        .await;
    let sending = Arc::new(Control::default());
    let listening = Arc::new(Control::default());
    let mut logs: Logs = Vec::new();
    let mut handles = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let control = if i < senders { &sending } else { &listening };
        let c = Client::new(
            i,
            ROOM.into(),
            token,
            urls.clone(),
            Arc::clone(control),
            seed,
            Pace {
                every: SEND_EVERY,
                // Nobody leaves on their own: every move is the rebalancing's.
                stay: Duration::from_secs(1_000_000_000),
                arrives_after: Duration::from_millis(i as u64 * 1000 / ARRIVALS_PER_SEC),
            },
        );
        logs.push(Arc::clone(&c.log));
        handles.push(tokio::spawn(c.run()));
    }
    let joined = time_until(Duration::from_secs(60 + n as u64 / 10), || {
        logs.iter().all(|l| {
            let l = l.lock();
            l.start.is_some() && l.color.as_deref() == Some("blue")
        })
    })
    .await;
    assert!(
        joined.is_some(),
        "not every client joined on blue: {:?}",
        split(&logs)
    );
    support::eventually(
        Duration::from_secs(30),
        "opsctl to count everyone on blue",
        || {
            let view = opsctl_view(&moto);
            async move { view == (n as u64, 0) }
        },
    )
    .await;
    sending.sending.store(true, Ordering::Relaxed);
    time_until(Duration::from_secs(30), || {
        logs[..senders].iter().all(|l| !l.lock().acks.is_empty())
    })
    .await
    .expect("every sender acked within 30 s");
    println!(
        "live: {n} clients joined on blue and sending after {:.1} s; {}",
        setup.elapsed().as_secs_f64(),
        store_load(&counter, &BTreeMap::new(), setup.elapsed())
    );
    let (mark, since) = (counter.all_calls(), Instant::now());

    // 50/50 with rebalancing: the clients split, and stay split after opsctl exits.
    let (shift, converged) = move_and_watch(
        &moto,
        &[
            "shift",
            "50/50",
            &rebalance,
            "--timeout",
            &opsctl_timeout,
            "--json",
        ],
        watch,
        || halves(n, split(&logs)),
    )
    .await;
    assert_eq!(shift.report["outcome"], "done", "{}", shift.report);
    assert_audience_back("shift", &shift.report, n);
    let converged = converged.unwrap_or_else(|| {
        panic!(
            "shift 50/50: the clients did not split 50 % ± {TOLERANCE_PCT} within {watch:?}: {:?}",
            split(&logs)
        )
    });
    let reconnects_at_exit = rebalance_reconnects(&logs);
    let hold_until = Instant::now() + hold;
    let (mut low, mut high) = (n, 0);
    while Instant::now() < hold_until {
        let (b, g) = split(&logs);
        if b + g == n {
            low = low.min(b);
            high = high.max(b);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A client whose reconnects failed waits up to its longest backoff (30 s) before the next.
    let settled = time_until(Duration::from_secs(45), || {
        let (b, g) = split(&logs);
        b + g == n
    })
    .await;
    let after_hold = split(&logs);
    // A client that came back at the end of the hold (after a `hello` timed out under the
    // load) is in the records once its join's record is written (batched, every 250 ms).
    let view_is_whole =
        |v: (u64, u64)| halves(n, (v.0 as usize, v.1 as usize)) && v.0 + v.1 == n as u64;
    let mut view = opsctl_view(&moto);
    let view_deadline = Instant::now() + Duration::from_secs(30);
    while !view_is_whole(view) && Instant::now() < view_deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        view = opsctl_view(&moto);
    }
    let late_reconnects = rebalance_reconnects(&logs) - reconnects_at_exit;
    println!(
        "live: shift 50/50: clients 50 % ± {TOLERANCE_PCT} after {:.1} s; opsctl exited after {:.1} s \
         (its view {}, {} s from the weight write); {:.0} s after it exited: clients blue {} / green {} \
         (blue between {low} and {high} while all connected), opsctl's view blue {} / green {}, \
         rebalance reconnects since it exited {late_reconnects}",
        converged.as_secs_f64(),
        shift.exited.as_secs_f64(),
        shift.report["connections"],
        shift.report["converge_secs"],
        hold.as_secs_f64(),
        after_hold.0,
        after_hold.1,
        view.0,
        view.1,
    );
    println!(
        "live: shift and hold: {}; connections ended: {:?}",
        store_load(&counter, &mark, since.elapsed()),
        ends(&logs)
    );
    let (mark, since) = (counter.all_calls(), Instant::now());
    assert!(
        converged <= converge,
        "shift 50/50: the clients took {converged:?} to split 50 % ± {TOLERANCE_PCT}"
    );
    assert!(
        settled.is_some(),
        "clients still reconnecting after the hold"
    );
    assert!(
        halves(n, after_hold),
        "the split did not hold after opsctl exited: {after_hold:?}"
    );
    assert!(
        view_is_whole(view),
        "opsctl's view after the hold is not everyone at 50 % ± {TOLERANCE_PCT}: {view:?}"
    );

    // Rollback: green holds none.
    let (rollback, green_empty) = move_and_watch(
        &moto,
        &[
            "rollback",
            "--window",
            &window,
            "--timeout",
            &opsctl_timeout,
            "--json",
        ],
        watch,
        || split(&logs) == (n, 0),
    )
    .await;
    assert_eq!(rollback.report["outcome"], "done", "{}", rollback.report);
    assert_audience_back("rollback", &rollback.report, n);
    let all_blue = green_empty.unwrap_or_else(|| {
        panic!(
            "rollback: not every client was back on blue within {watch:?}: {:?}",
            split(&logs)
        )
    });
    println!(
        "live: rollback: every client on blue (green none) after {:.1} s; opsctl exited after {:.1} s \
         (its view {}, {} s from the weight write)",
        all_blue.as_secs_f64(),
        rollback.exited.as_secs_f64(),
        rollback.report["connections"],
        rollback.report["converge_secs"],
    );
    println!(
        "live: rollback: {}; connections ended: {:?}",
        store_load(&counter, &mark, since.elapsed()),
        ends(&logs)
    );
    assert!(
        all_blue <= converge,
        "rollback: green still held clients after {all_blue:?}"
    );
    // Everyone comes from one address (a venue's NAT) with the shipped connection limit per
    // address: arrival, the rebalance and the rollback reconnect them all within seconds, far
    // past its burst, and none may be refused (a refused upgrade is "connect failed").
    let refused = ends(&logs).get("connect failed").copied().unwrap_or(0);
    assert_eq!(
        refused,
        0,
        "{refused} connections from the one address were refused: {:?}",
        ends(&logs)
    );

    // Every send acked, every client caught up, then the verdict against the history.
    sending.sending.store(false, Ordering::Relaxed);
    let healed = time_until(Duration::from_secs(60), || {
        let mut acked: std::collections::HashMap<String, Vec<u64>> = Default::default();
        let mut outstanding = 0;
        for l in &logs {
            let l = l.lock();
            outstanding += usize::from(l.outstanding.is_some());
            acked
                .entry(l.room.clone())
                .or_default()
                .extend(l.acks.values());
        }
        outstanding == 0
            && logs
                .iter()
                .all(|l| verdict::missing(&l.lock(), &acked) == 0)
    })
    .await;
    sending.stop.cancel();
    listening.stop.cancel();
    for h in handles {
        tokio::time::timeout(Duration::from_secs(10), h)
            .await
            .expect("a client stops within 10 s")
            .expect("client task");
    }
    let stored = BTreeMap::from([(ROOM.to_string(), history(&alb.base).await)]);
    let logs: Vec<Log> = logs
        .iter()
        .map(|l| std::mem::take(&mut *l.lock()))
        .collect();
    let report = verdict::judge(&logs, &stored);
    let reconnects: u32 = logs.iter().map(|l| l.connections.saturating_sub(1)).sum();
    println!(
        "live: messages: {} (reconnects {reconnects}, caught up: {})",
        report.total,
        healed.is_some()
    );
    for task in [&blue, &green] {
        for line in task.rebalance_log() {
            println!("live: {line}");
        }
    }
    for (room, v) in &report.rooms {
        for e in &v.examples {
            println!("live: {room}: {e}");
        }
    }
    assert!(report.total.acked > 0, "nothing was acked");
    assert!(healed.is_some(), "clients did not catch up within 60 s");
    assert!(report.ok(), "delivery broken: {}", report.total);
}
