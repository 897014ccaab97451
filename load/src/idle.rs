//! `idle`: holds K joined connections that say nothing and reads the server's resident memory
//! before and after, giving the server's RSS per idle connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fastwebsockets::OpCode;
use tokio::sync::Semaphore;

use crate::client::{self, Dialer};

/// What the run measured.
#[derive(Debug, serde::Serialize)]
pub struct IdleResult {
    pub connections: usize,
    pub failed: usize,
    pub first_failure: Option<String>,
    pub connect_secs: f64,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub rss_per_conn_bytes: Option<f64>,
}

/// Resident memory of `pid` in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .with_context(|| format!("no VmRSS in {path}"))?;
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("unreadable {line:?} in {path}"))
}

pub async fn run(
    dialer: Arc<Dialer>,
    tokens: Arc<Vec<String>>,
    count: usize,
    rooms: usize,
    concurrency: usize,
    settle: Duration,
    pid: Option<u32>,
) -> Result<IdleResult> {
    let before = pid.map(rss_kib).transpose()?;
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let (dialer, tokens, gate) = (Arc::clone(&dialer), Arc::clone(&tokens), Arc::clone(&gate));
        let room = format!("idle-{}", i % rooms.max(1));
        pending.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            client::member(&dialer, i, &tokens[i % tokens.len()], &room).await
        }));
    }
    let mut held = Vec::with_capacity(count);
    let mut failed = 0;
    let mut first_failure = None;
    for p in pending {
        match p.await.context("connect task")? {
            Ok(mut ws) => held.push(tokio::spawn(async move {
                // Keep reading (presence, pings are answered automatically) until the run ends.
                while let Ok(f) = ws.read_frame().await {
                    if f.opcode == OpCode::Close {
                        break;
                    }
                }
            })),
            Err(e) => {
                failed += 1;
                first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    if held.is_empty() {
        bail!(
            "no connection succeeded: {}",
            first_failure.unwrap_or_default()
        );
    }
    tokio::time::sleep(settle).await;
    let after = pid.map(rss_kib).transpose()?;
    let connections = held.len();
    for h in &held {
        h.abort();
    }
    let per = match (before, after) {
        (Some(b), Some(a)) => Some((a.saturating_sub(b) * 1024) as f64 / connections as f64),
        _ => None,
    };
    Ok(IdleResult {
        connections,
        failed,
        first_failure,
        connect_secs,
        rss_before_kib: before,
        rss_after_kib: after,
        rss_per_conn_bytes: per,
    })
}
