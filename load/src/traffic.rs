//! The traffic engine behind `fanout`, `max` and `rooms`: joins every member of every room
//! first, then senders send at a shared total rate (changeable per phase) and every member
//! measures each message's latency from the send stamp in its text to its arrival.
//!
//! A sent text is `L{phase}.{µs since epoch}`; its `client_msg_id` is `{phase}-{sender}-{n}`,
//! so acks and deliveries are counted in the phase that sent them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fastwebsockets::{OpCode, WebSocketError};
use memchr::memmem;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::client::{self, Dialer, Ws};
use crate::stats::{PhaseCounters, Samples, Stats, percentiles_ms};

/// One room of the plan.
#[derive(Clone, Debug)]
pub struct RoomPlan {
    pub name: String,
    pub members: usize,
    /// The first `senders` members send.
    pub senders: usize,
}

/// What senders do now.
struct Control {
    /// Total messages per second across all senders, in thousandths.
    rate_milli: AtomicU64,
    phase: AtomicU8,
    senders: usize,
    /// Unacked sends one sender allows itself; beyond it the sender falls behind its rate.
    inflight: u64,
}

/// A running set of members.
pub struct Traffic {
    pub stats: Arc<Stats>,
    control: Arc<Control>,
    tasks: Vec<JoinHandle<()>>,
    pub connections: usize,
    pub connect_secs: f64,
}

/// One phase's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseResult {
    pub target_rate: f64,
    pub secs: f64,
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    pub expected_deliveries: u64,
    pub deliveries: u64,
    pub sent_per_s: f64,
    pub acked_per_s: f64,
    pub deliveries_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
}

impl Traffic {
    /// Connects, greets and joins every member (at most `concurrency` at a time), then starts
    /// their tasks with a rate of zero.
    pub async fn start(
        dialer: Arc<Dialer>,
        tokens: Arc<Vec<String>>,
        rooms: &[RoomPlan],
        concurrency: usize,
        inflight: u64,
    ) -> Result<Self> {
        let stats = Arc::new(Stats::new()?);
        let senders = rooms.iter().map(|r| r.senders.min(r.members)).sum();
        let control = Arc::new(Control {
            rate_milli: AtomicU64::new(0),
            phase: AtomicU8::new(0),
            senders,
            inflight: inflight.max(1),
        });
        let started = Instant::now();
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut pending = Vec::new();
        let mut i = 0usize;
        for room in rooms {
            for m in 0..room.members {
                let (dialer, tokens, gate) =
                    (Arc::clone(&dialer), Arc::clone(&tokens), Arc::clone(&gate));
                let name = room.name.clone();
                let idx = i;
                // Senders all use the first server, so one store orders each room even when
                // the tasks have separate embedded stores.
                let dial = if m < room.senders { 0 } else { idx };
                pending.push(tokio::spawn(async move {
                    let _permit = gate.acquire_owned().await?;
                    let token = &tokens[idx % tokens.len()];
                    client::member(&dialer, dial, token, &name).await
                }));
                i += 1;
            }
        }
        let mut sockets = Vec::with_capacity(pending.len());
        for p in pending {
            sockets.push(p.await.context("connect task")??);
        }
        let connect_secs = started.elapsed().as_secs_f64();
        let mut tasks = Vec::new();
        let mut sockets = sockets.into_iter();
        let mut sender_no = 0usize;
        for room in rooms {
            let members = room.members as u64;
            for m in 0..room.members {
                let Some(ws) = sockets.next() else {
                    bail!("fewer sockets than members");
                };
                let stats = Arc::clone(&stats);
                if m < room.senders {
                    let (read, write) = ws.split(tokio::io::split);
                    let acked = Arc::new(AtomicU64::new(0));
                    let alive = Arc::new(AtomicBool::new(true));
                    tasks.push(tokio::spawn(receive_split(
                        read,
                        Arc::clone(&stats),
                        members,
                        Arc::clone(&acked),
                        Arc::clone(&alive),
                    )));
                    tasks.push(tokio::spawn(send_loop(
                        write,
                        Arc::clone(&control),
                        stats,
                        room.name.clone(),
                        sender_no,
                        acked,
                        alive,
                    )));
                    sender_no += 1;
                } else {
                    tasks.push(tokio::spawn(receive(ws, stats, members)));
                }
            }
        }
        Ok(Self {
            stats,
            control,
            tasks,
            connections: i,
            connect_secs,
        })
    }

    /// Runs phase `phase` at `rate` messages/s for `secs`, then waits up to `grace` for its
    /// deliveries; returns how long it sent.
    pub async fn phase(&self, phase: u8, rate: f64, secs: f64, grace: Duration) -> Result<f64> {
        if usize::from(phase) >= crate::stats::MAX_PHASES - 1 {
            bail!("at most {} phases", crate::stats::MAX_PHASES - 1);
        }
        self.control.phase.store(phase, Ordering::Relaxed);
        self.control
            .rate_milli
            .store((rate * 1000.0) as u64, Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let elapsed = started.elapsed().as_secs_f64();
        // Whatever comes next is stamped with another phase; let this one's deliveries land.
        self.control
            .phase
            .store(phase.saturating_add(1), Ordering::Relaxed);
        let deadline = Instant::now() + grace;
        let c = &self.stats.phases[usize::from(phase)];
        loop {
            let expected = c.expected.load(Ordering::Relaxed);
            let got = c.delivered.load(Ordering::Relaxed);
            let answered = c.acked.load(Ordering::Relaxed) + c.errors.load(Ordering::Relaxed);
            if (got >= expected && answered >= c.sent.load(Ordering::Relaxed))
                || Instant::now() >= deadline
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Samples wait at most ~100 ms in a connection's batch before they are merged.
        tokio::time::sleep(Duration::from_millis(150)).await;
        Ok(elapsed)
    }

    /// Stops sending.
    pub fn pause(&self) {
        self.control.rate_milli.store(0, Ordering::Relaxed);
    }

    /// The figures of a finished phase.
    pub fn result(&self, phase: u8, rate: f64, secs: f64) -> PhaseResult {
        let c: &PhaseCounters = &self.stats.phases[usize::from(phase)];
        let h = self.stats.histogram(usize::from(phase));
        let [p50_ms, p99_ms, p999_ms] = percentiles_ms(&h);
        let sent = c.sent.load(Ordering::Relaxed);
        let acked = c.acked.load(Ordering::Relaxed);
        let deliveries = c.delivered.load(Ordering::Relaxed);
        PhaseResult {
            target_rate: rate,
            secs,
            sent,
            acked,
            errors: c.errors.load(Ordering::Relaxed),
            expected_deliveries: c.expected.load(Ordering::Relaxed),
            deliveries,
            sent_per_s: sent as f64 / secs,
            acked_per_s: acked as f64 / secs,
            deliveries_per_s: deliveries as f64 / secs,
            p50_ms,
            p99_ms,
            p999_ms,
        }
    }

    /// Ends every connection task (their samples are merged as they drop).
    pub async fn stop(&mut self) {
        self.pause();
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

/// Handles one text frame a member received.
fn on_text(
    stats: &Stats,
    samples: &mut Samples<'_>,
    members: u64,
    acked_here: Option<&AtomicU64>,
    p: &[u8],
) {
    if p.starts_with(br#"{"type":"message""#) {
        if let Some((phase, sent_us)) = stamp(p) {
            let now = stats.now_us();
            stats.phases[usize::from(phase) % crate::stats::MAX_PHASES]
                .delivered
                .fetch_add(1, Ordering::Relaxed);
            samples.record(phase, now.saturating_sub(sent_us), now);
        }
    } else if p.starts_with(br#"{"type":"ack""#) {
        let phase = msg_phase(p);
        let c = &stats.phases[phase];
        c.acked.fetch_add(1, Ordering::Relaxed);
        c.expected.fetch_add(members, Ordering::Relaxed);
        if let Some(a) = acked_here {
            a.fetch_add(1, Ordering::Relaxed);
        }
    } else if p.starts_with(br#"{"type":"error""#) {
        stats.phases[msg_phase(p)]
            .errors
            .fetch_add(1, Ordering::Relaxed);
        if let Some(a) = acked_here {
            a.fetch_add(1, Ordering::Relaxed);
        }
        stats.note_error(&String::from_utf8_lossy(p));
    }
}

/// `(phase, µs)` from a message's `"text":"L{phase}.{µs}"`.
fn stamp(p: &[u8]) -> Option<(u8, u64)> {
    let at = memmem::find(p, br#""text":"L"#)? + 9;
    let rest = &p[at..];
    let dot = memchr::memchr(b'.', rest)?;
    let phase = parse_u64(&rest[..dot])?;
    let end = memchr::memchr(b'"', &rest[dot + 1..])?;
    let us = parse_u64(&rest[dot + 1..dot + 1 + end])?;
    Some((u8::try_from(phase).ok()?, us))
}

/// The phase of an ack or error from its `"client_msg_id":"{phase}-…"` (0 without one).
fn msg_phase(p: &[u8]) -> usize {
    let Some(at) = memmem::find(p, br#""client_msg_id":""#) else {
        return 0;
    };
    let rest = &p[at + 17..];
    let end = memchr::memchr(b'-', rest).unwrap_or(0);
    parse_u64(&rest[..end]).map_or(0, |n| (n as usize) % crate::stats::MAX_PHASES)
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// A member that only receives.
async fn receive(mut ws: Ws, stats: Arc<Stats>, members: u64) {
    let mut samples = Samples::new(&stats);
    loop {
        match ws.read_frame().await {
            Ok(f) if f.opcode == OpCode::Text => {
                on_text(&stats, &mut samples, members, None, &f.payload)
            }
            Ok(f) if f.opcode == OpCode::Close => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    stats.dropped.fetch_add(1, Ordering::Relaxed);
}

type ReadHalf = fastwebsockets::WebSocketRead<
    tokio::io::ReadHalf<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
>;
type WriteHalf = fastwebsockets::WebSocketWrite<
    tokio::io::WriteHalf<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
>;

/// The receiving half of a sender.
async fn receive_split(
    mut read: ReadHalf,
    stats: Arc<Stats>,
    members: u64,
    acked: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
) {
    let mut samples = Samples::new(&stats);
    // Pongs to the server's pings are not needed within a bounded run.
    let mut ignore = |_| std::future::ready(Ok::<(), WebSocketError>(()));
    loop {
        match read.read_frame(&mut ignore).await {
            Ok(f) if f.opcode == OpCode::Text => {
                on_text(&stats, &mut samples, members, Some(&acked), &f.payload)
            }
            Ok(f) if f.opcode == OpCode::Close => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    alive.store(false, Ordering::Relaxed);
    stats.dropped.fetch_add(1, Ordering::Relaxed);
}

/// Sends at this sender's share of the total rate.
async fn send_loop(
    mut write: WriteHalf,
    control: Arc<Control>,
    stats: Arc<Stats>,
    room: String,
    me: usize,
    acked: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
) {
    let mut sent = 0u64;
    let mut credit = 0.0f64;
    let mut last = Instant::now();
    let mut buf = String::with_capacity(160);
    while alive.load(Ordering::Relaxed) {
        let rate = control.rate_milli.load(Ordering::Relaxed) as f64
            / 1000.0
            / control.senders.max(1) as f64;
        // Tick often enough for smooth traffic, rarely enough to stay cheap.
        let tick = if rate > 0.0 {
            (1.0 / rate).clamp(0.002, 0.1)
        } else {
            0.05
        };
        tokio::time::sleep(Duration::from_secs_f64(tick)).await;
        let now = Instant::now();
        credit = (credit + rate * now.duration_since(last).as_secs_f64()).min(rate * 0.2 + 1.0);
        last = now;
        if rate == 0.0 {
            credit = 0.0;
        }
        let phase = control.phase.load(Ordering::Relaxed);
        while credit >= 1.0 && sent - acked.load(Ordering::Relaxed) < control.inflight {
            credit -= 1.0;
            buf.clear();
            use std::fmt::Write as _;
            let _ = write!(
                buf,
                r#"{{"type":"send","room":"{room}","client_msg_id":"{phase}-{me}-{sent}","text":"L{phase}.{}"}}"#,
                stats.now_us()
            );
            let frame =
                fastwebsockets::Frame::text(fastwebsockets::Payload::Borrowed(buf.as_bytes()));
            if write.write_frame(frame).await.is_err() {
                return;
            }
            sent += 1;
            stats.phases[usize::from(phase)]
                .sent
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_stamp_and_the_phase() {
        let msg = br#"{"type":"message","room":"r","seq":3,"user":{"id":1},"text":"L2.12345","ts":1,"client_msg_id":"2-0-1"}"#;
        assert_eq!(stamp(msg), Some((2, 12345)));
        assert_eq!(msg_phase(msg), 2);
        let ack = br#"{"type":"ack","room":"r","client_msg_id":"7-3-9","seq":4}"#;
        assert_eq!(msg_phase(ack), 7);
        assert_eq!(stamp(br#"{"type":"message","text":"hello"}"#), None);
        assert_eq!(parse_u64(b"12a"), None);
    }
}
