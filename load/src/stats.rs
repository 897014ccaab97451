//! What a traffic run counts, per phase (a `max` ramp step; `fanout` and `rooms` have one):
//! sends, acks, errors, expected and actual deliveries, and the send → receive latency of every
//! delivery in an HDR histogram. Connection tasks batch samples locally and merge them under a
//! short lock so the counting stays off the hot path.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use hdrhistogram::Histogram;
use std::sync::Mutex;

/// Ramp steps a run may have.
pub const MAX_PHASES: usize = 64;
/// Samples a connection gathers before merging them.
const BATCH: usize = 256;
/// Longest a sample waits in a connection's batch, in µs.
const BATCH_AGE_US: u64 = 100_000;

/// Counters of one phase.
#[derive(Default)]
pub struct PhaseCounters {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub errors: AtomicU64,
    /// Sum over acked messages of the members of their room: what should be delivered.
    pub expected: AtomicU64,
    /// Messages received (exact; the histogram may lag by a connection's unflushed batch).
    pub delivered: AtomicU64,
}

/// Everything a run records.
pub struct Stats {
    /// Clock every timestamp in message texts is relative to.
    pub epoch: Instant,
    pub phases: Vec<PhaseCounters>,
    hists: Mutex<Vec<Histogram<u64>>>,
    /// Connections that ended before the run did (e.g. closed as slow consumers).
    pub dropped: AtomicU64,
    /// The first server error text seen, to explain a failing run.
    pub first_error: Mutex<Option<String>>,
}

impl Stats {
    pub fn new() -> anyhow::Result<Self> {
        let hist = Histogram::new_with_bounds(1, 60_000_000, 3)?;
        Ok(Self {
            epoch: Instant::now(),
            phases: (0..MAX_PHASES).map(|_| PhaseCounters::default()).collect(),
            hists: Mutex::new(vec![hist; MAX_PHASES]),
            dropped: AtomicU64::new(0),
            first_error: Mutex::new(None),
        })
    }

    /// Microseconds since the epoch (what senders stamp).
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// A latency histogram of `phase` (a copy).
    pub fn histogram(&self, phase: usize) -> Histogram<u64> {
        let hists = self.hists.lock().unwrap_or_else(|e| e.into_inner());
        hists[phase].clone()
    }

    pub fn note_error(&self, text: &str) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(text.to_string());
        }
    }
}

/// A connection's local batch of (phase, latency µs) samples.
pub struct Samples<'a> {
    stats: &'a Stats,
    buf: Vec<(u8, u64)>,
    /// When the oldest sample in `buf` was taken (µs since the epoch).
    oldest_us: u64,
}

impl<'a> Samples<'a> {
    pub fn new(stats: &'a Stats) -> Self {
        Self {
            stats,
            buf: Vec::with_capacity(BATCH),
            oldest_us: 0,
        }
    }

    /// Records one delivery received at `now_us`.
    pub fn record(&mut self, phase: u8, latency_us: u64, now_us: u64) {
        if self.buf.is_empty() {
            self.oldest_us = now_us;
        }
        self.buf.push((phase, latency_us));
        if self.buf.len() >= BATCH || now_us.saturating_sub(self.oldest_us) > BATCH_AGE_US {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let mut hists = self.stats.hists.lock().unwrap_or_else(|e| e.into_inner());
        for &(phase, us) in &self.buf {
            hists[usize::from(phase) % MAX_PHASES].saturating_record(us.max(1));
        }
        drop(hists);
        self.buf.clear();
    }
}

impl Drop for Samples<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// p50, p99, p99.9 in milliseconds (`None` without samples).
pub fn percentiles_ms(h: &Histogram<u64>) -> [Option<f64>; 3] {
    if h.is_empty() {
        return [None; 3];
    }
    [50.0, 99.0, 99.9].map(|q| Some(h.value_at_quantile(q / 100.0) as f64 / 1000.0))
}
