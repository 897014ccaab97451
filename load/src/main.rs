//! `chat-load`: a load generator for chat-server that speaks the public protocol over real
//! loopback sockets and prints one summary table (or `--json`).
//!
//! Layout:
//! - [`client`]  sessions, dialing from several 127.0.0.x source addresses, hello/join
//! - [`traffic`] the engine of `fanout`, `max` and `rooms`: members, senders, latency stamps
//! - [`idle`]    K idle joined connections and the server's RSS per connection
//! - [`churn`]   connect + hello + join + close cycles per second
//! - [`stats`]   per-phase counters and HDR latency histograms
//! - [`report`]  the summary row, its table and JSON forms

mod churn;
mod client;
mod idle;
mod report;
mod stats;
mod traffic;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use report::Row;
use traffic::{PhaseResult, RoomPlan, Traffic};

#[derive(Parser, Debug)]
#[command(
    name = "chat-load",
    version,
    about = "Load generator for chat-server (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Server base URL; repeat to spread connections over several tasks (round robin).
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    urls: Vec<String>,
    /// Loopback source addresses to dial from (127.0.0.1 ..= 127.0.0.N); each has ~28 k ports.
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Guest users to create; connections share their tokens round robin.
    #[arg(long, default_value_t = 16)]
    users: usize,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Label of the set-up in the summary (e.g. `1 task, embedded`).
    #[arg(long, default_value = "")]
    setup: String,
    /// Print the summary as one JSON line instead of a table.
    #[arg(long)]
    json: bool,
    /// Unacked sends each sender allows itself (closed loop when small).
    #[arg(long, default_value_t = 512)]
    inflight: u64,
    /// Hard bound on the whole run, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One room, N members, M messages/s: deliveries/s and send → receive latency.
    Fanout {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        members: usize,
        /// Members that send (the rate is split between them).
        #[arg(long, default_value_t = 10)]
        senders: usize,
        /// Messages per second, all senders together.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Seconds of traffic.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        #[arg(long, default_value = "bench-fanout")]
        room: String,
    },
    /// Like fanout, raising the rate each step until p99 passes the bound (or deliveries fall
    /// behind): the highest sustained deliveries/s.
    Max {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 10)]
        senders: usize,
        #[arg(long, default_value_t = 50.0)]
        start_rate: f64,
        /// Each step multiplies the rate by this.
        #[arg(long, default_value_t = 1.5)]
        factor: f64,
        #[arg(long, default_value_t = 2.0)]
        step_secs: f64,
        /// p99 bound in milliseconds.
        #[arg(long, default_value_t = 5.0)]
        p99_ms: f64,
        /// Share of the expected deliveries a step must see arrive (1 = every one: the
        /// ceiling with nothing lost).
        #[arg(long, default_value_t = 0.95, value_parser = fraction)]
        min_delivered: f64,
        #[arg(long, default_value_t = 12)]
        max_steps: u8,
        #[arg(long, default_value = "bench-max")]
        room: String,
    },
    /// K idle joined connections: the server's RSS per connection (give the server's --pid).
    Idle {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Rooms the connections are spread over.
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// The local chat-server process whose /proc/PID/status VmRSS is read.
        #[arg(long)]
        pid: Option<u32>,
        /// Seconds to wait after the last join before reading RSS.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
    },
    /// Connect + hello + join + close cycles per second.
    Churn {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 32)]
        workers: usize,
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
    },
    /// Many small rooms, every member sending: acked sends/s and deliveries/s.
    Rooms {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 200)]
        rooms: usize,
        #[arg(long, default_value_t = 5)]
        room_size: usize,
        /// Messages per second, all rooms together.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
    },
    /// Prints the JSON lines of earlier runs (files) as one table.
    Table { files: Vec<std::path::PathBuf> },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chat-load: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-load: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command) -> Result<()> {
    if let Command::Table { files } = &command {
        let mut rows = Vec::new();
        for f in files {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                rows.push(
                    serde_json::from_str::<Row>(line)
                        .with_context(|| format!("a summary line in {}", f.display()))?,
                );
            }
        }
        print!("{}", report::table(&rows));
        return Ok(());
    }
    let common = match &command {
        Command::Fanout { common, .. }
        | Command::Max { common, .. }
        | Command::Idle { common, .. }
        | Command::Churn { common, .. }
        | Command::Rooms { common, .. } => common.clone(),
        Command::Table { .. } => unreachable!("handled above"),
    };
    let bound = Duration::from_secs(common.timeout);
    let row = tokio::time::timeout(bound, scenario(command, &common))
        .await
        .with_context(|| format!("the run passed its --timeout of {bound:?}"))??;
    if common.json {
        println!("{}", serde_json::to_string(&row)?);
    } else {
        print!("{}", report::table(&[row]));
    }
    Ok(())
}

async fn scenario(command: Command, common: &Common) -> Result<Row> {
    let dialer = Arc::new(client::Dialer::new(&common.urls, common.sources)?);
    let tokens = Arc::new(client::sessions(dialer.targets()[0], common.users).await?);
    let tasks = dialer.targets().len();
    let mut row = Row {
        setup: if common.setup.is_empty() {
            format!("{tasks} task(s)")
        } else {
            common.setup.clone()
        },
        ..Row::default()
    };
    match command {
        Command::Fanout {
            members,
            senders,
            rate,
            duration,
            room,
            ..
        } => {
            let plan = [RoomPlan {
                name: room,
                members,
                senders,
            }];
            let r = steady(dialer, tokens, &plan, common, rate, duration, &mut row).await?;
            row.scenario = "fanout".into();
            row.result = format!("{} msg/s to {members} members", r.target_rate);
        }
        Command::Rooms {
            rooms,
            room_size,
            rate,
            duration,
            ..
        } => {
            let plan: Vec<RoomPlan> = (0..rooms)
                .map(|i| RoomPlan {
                    name: format!("bench-room-{i}"),
                    members: room_size,
                    senders: room_size,
                })
                .collect();
            let r = steady(dialer, tokens, &plan, common, rate, duration, &mut row).await?;
            row.scenario = "rooms".into();
            row.result = format!("{:.0} acked sends/s", r.acked_per_s);
        }
        Command::Max {
            members,
            senders,
            start_rate,
            factor,
            step_secs,
            p99_ms,
            min_delivered,
            max_steps,
            room,
            ..
        } => {
            let plan = [RoomPlan {
                name: room,
                members,
                senders,
            }];
            let mut traffic =
                Traffic::start(dialer, tokens, &plan, common.concurrency, common.inflight).await?;
            let mut steps: Vec<PhaseResult> = Vec::new();
            let mut best: Option<PhaseResult> = None;
            let mut rate = start_rate;
            for step in 0..max_steps.min(60) {
                let secs = traffic
                    .phase(step, rate, step_secs, Duration::from_secs(1))
                    .await?;
                let r = traffic.result(step, rate, secs);
                let kept_up = r.deliveries as f64 >= min_delivered * r.expected_deliveries as f64
                    && r.acked as f64 >= 0.9 * r.target_rate * r.secs
                    && r.errors == 0;
                let ok = kept_up && r.p99_ms.is_some_and(|p| p <= p99_ms);
                steps.push(r.clone());
                if !ok {
                    break;
                }
                best = Some(r);
                rate *= factor;
            }
            row.scenario = "max".into();
            match &best {
                Some(b) => {
                    fill(&mut row, &traffic, b);
                    row.result = format!(
                        "best {:.0} deliveries/s with p99 <= {p99_ms} ms, >= {}% delivered ({} members)",
                        b.deliveries_per_s,
                        min_delivered * 100.0,
                        members
                    );
                }
                None => {
                    row.connections = traffic.connections as u64;
                    row.result = format!("the first step already broke p99 <= {p99_ms} ms");
                }
            }
            row.detail = serde_json::json!({ "steps": steps, "dropped": dropped(&traffic) });
            traffic.stop().await;
        }
        Command::Idle {
            count,
            rooms,
            pid,
            settle,
            ..
        } => {
            let r = idle::run(
                dialer,
                tokens,
                count,
                rooms,
                common.concurrency,
                Duration::from_secs_f64(settle),
                pid,
            )
            .await?;
            row.scenario = "idle".into();
            row.connections = r.connections as u64;
            row.result = match r.rss_per_conn_bytes {
                Some(b) => format!(
                    "{:.2} KiB server RSS/conn ({} failed)",
                    b / 1024.0,
                    r.failed
                ),
                None => format!("no --pid: RSS not read ({} failed)", r.failed),
            };
            row.detail = serde_json::to_value(&r)?;
        }
        Command::Churn {
            workers, duration, ..
        } => {
            let r = churn::run(dialer, tokens, workers, Duration::from_secs_f64(duration)).await?;
            if r.cycles == 0 {
                bail!(
                    "no connect+join cycle succeeded: {}",
                    r.first_failure.unwrap_or_default()
                );
            }
            row.scenario = "churn".into();
            row.connections = workers as u64;
            row.p50_ms = r.p50_ms;
            row.p99_ms = r.p99_ms;
            row.p999_ms = r.p999_ms;
            row.result = format!(
                "{:.0} connect+join/s ({} failed)",
                r.cycles_per_s, r.failures
            );
            row.detail = serde_json::to_value(&r)?;
        }
        Command::Table { .. } => unreachable!("handled in run"),
    }
    Ok(row)
}

/// A share between 0 and 1.
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{s:?} is not a share between 0 and 1")),
    }
}

fn dropped(traffic: &Traffic) -> u64 {
    traffic
        .stats
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// One steady phase at `rate` over `plan`: connect, run, stop, and fill `row` with the result.
async fn steady(
    dialer: Arc<client::Dialer>,
    tokens: Arc<Vec<String>>,
    plan: &[RoomPlan],
    common: &Common,
    rate: f64,
    duration: f64,
    row: &mut Row,
) -> Result<PhaseResult> {
    let mut traffic =
        Traffic::start(dialer, tokens, plan, common.concurrency, common.inflight).await?;
    let secs = traffic
        .phase(0, rate, duration, Duration::from_secs(3))
        .await?;
    traffic.stop().await;
    let r = traffic.result(0, rate, secs);
    fill(row, &traffic, &r);
    Ok(r)
}

fn fill(row: &mut Row, traffic: &Traffic, r: &PhaseResult) {
    row.connections = traffic.connections as u64;
    row.sent_per_s = Some(r.sent_per_s);
    row.acked_per_s = Some(r.acked_per_s);
    row.deliveries_per_s = Some(r.deliveries_per_s);
    row.p50_ms = r.p50_ms;
    row.p99_ms = r.p99_ms;
    row.p999_ms = r.p999_ms;
    let first_error = traffic
        .stats
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    row.detail = serde_json::json!({
        "phase": r,
        "connect_secs": traffic.connect_secs,
        "dropped": dropped(traffic),
        "first_error": first_error,
    });
}

#[cfg(test)]
mod house {
    #[test]
    fn the_crate_keeps_the_house_rules() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let problems = testkit::house::problems(&src, "main.rs");
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
