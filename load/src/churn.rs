//! `churn`: workers that connect, say hello, join, and close, again and again, for a bounded
//! time: connections + joins per second and the latency of one such cycle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use fastwebsockets::{Frame, OpCode};

use crate::client::{self, Dialer};
use crate::stats::{Samples, Stats, percentiles_ms};

#[derive(Debug, serde::Serialize)]
pub struct ChurnResult {
    pub cycles: u64,
    pub failures: u64,
    pub first_failure: Option<String>,
    pub secs: f64,
    pub cycles_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
}

pub async fn run(
    dialer: Arc<Dialer>,
    tokens: Arc<Vec<String>>,
    workers: usize,
    duration: Duration,
) -> Result<ChurnResult> {
    let stats = Arc::new(Stats::new()?);
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + duration;
    let mut tasks = Vec::new();
    for w in 0..workers.max(1) {
        let (dialer, tokens, stats, failures) = (
            Arc::clone(&dialer),
            Arc::clone(&tokens),
            Arc::clone(&stats),
            Arc::clone(&failures),
        );
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::new(&stats);
            let mut n = w;
            while Instant::now() < end {
                let t = Instant::now();
                let token = &tokens[n % tokens.len()];
                match client::member(&dialer, n, token, "churn").await {
                    Ok(mut ws) => {
                        let took = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
                        samples.record(0, took, stats.now_us());
                        let _ = ws.write_frame(Frame::close(1000, b"")).await;
                        // Wait (bounded) for the server's close so its side is gone too.
                        let _ = tokio::time::timeout(Duration::from_secs(2), async {
                            while let Ok(f) = ws.read_frame().await {
                                if f.opcode == OpCode::Close {
                                    break;
                                }
                            }
                        })
                        .await;
                    }
                    Err(e) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        stats.note_error(&format!("{e:#}"));
                    }
                }
                n += workers;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let h = stats.histogram(0);
    let [p50_ms, p99_ms, p999_ms] = percentiles_ms(&h);
    let first_failure = stats
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(ChurnResult {
        cycles: h.len(),
        failures: failures.load(Ordering::Relaxed),
        first_failure,
        secs,
        cycles_per_s: h.len() as f64 / secs,
        p50_ms,
        p99_ms,
        p999_ms,
    })
}
