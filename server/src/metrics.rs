//! Prometheus metrics, served as text on the admin listener only. Labels are low-cardinality:
//! never a room id or a user id.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    /// WebSocket connections that completed `hello`.
    pub connections_opened: Counter,
    /// Connections open now.
    pub connections_open: Gauge,
    /// `join` frames accepted.
    pub joins: Counter,
    /// Joins with `after` answered from the room's memory (no store read).
    pub joins_from_memory: Counter,
    /// Chat messages made durable (acked as new).
    pub messages_in: Counter,
    /// Retries of an already stored message (acked with the original seq).
    pub duplicates: Counter,
    /// Frames handed to connection queues (one per recipient).
    pub frames_delivered: Counter,
    /// Connections closed 1008 because their outbound queue was full.
    pub slow_consumers_closed: Counter,
    /// Frames refused with `rate_limited`.
    pub rate_limited: Counter,
    /// Sends that failed with `unavailable`.
    pub sends_failed: Counter,
    /// Seconds one store `append` batch takes.
    pub store_append_seconds: Histogram,
    /// Messages per store `append` batch (group commit size).
    pub store_batch_size: Histogram,
    /// Seconds from a message being durable to it being handed to local members and
    /// published to the other tasks: the fanout's share of a message's latency.
    pub fanout_publish_seconds: Histogram,
    /// 1 while the fanout link to other tasks is up (Redis connected; always 1 in-process).
    pub fanout_link_up: Gauge,
    /// 1 while the task drains.
    pub draining: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("chat");
        let m = Self {
            connections_opened: Counter::default(),
            connections_open: Gauge::default(),
            joins: Counter::default(),
            joins_from_memory: Counter::default(),
            messages_in: Counter::default(),
            duplicates: Counter::default(),
            frames_delivered: Counter::default(),
            slow_consumers_closed: Counter::default(),
            rate_limited: Counter::default(),
            sends_failed: Counter::default(),
            store_append_seconds: Histogram::new(exponential_buckets(0.0002, 2.0, 16)),
            store_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            fanout_publish_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            fanout_link_up: Gauge::default(),
            draining: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections_opened",
            "WebSocket connections that completed hello",
            m.connections_opened.clone(),
        );
        registry.register(
            "connections_open",
            "WebSocket connections open now",
            m.connections_open.clone(),
        );
        registry.register("joins", "join frames accepted", m.joins.clone());
        registry.register(
            "joins_from_memory",
            "Joins with after answered from the room's memory, no store read",
            m.joins_from_memory.clone(),
        );
        registry.register(
            "messages_in",
            "Chat messages made durable",
            m.messages_in.clone(),
        );
        registry.register(
            "duplicate_sends",
            "Retried sends acked with the original seq",
            m.duplicates.clone(),
        );
        registry.register(
            "frames_delivered",
            "Frames handed to connection queues",
            m.frames_delivered.clone(),
        );
        registry.register(
            "slow_consumers_closed",
            "Connections closed 1008 for a full outbound queue",
            m.slow_consumers_closed.clone(),
        );
        registry.register(
            "rate_limited",
            "Frames refused with rate_limited",
            m.rate_limited.clone(),
        );
        registry.register(
            "sends_failed",
            "Sends answered unavailable",
            m.sends_failed.clone(),
        );
        registry.register(
            "store_append_seconds",
            "Seconds per store append batch",
            m.store_append_seconds.clone(),
        );
        registry.register(
            "store_batch_size",
            "Messages per store append batch",
            m.store_batch_size.clone(),
        );
        registry.register(
            "fanout_publish_seconds",
            "Seconds to deliver a durable message locally and publish it to other tasks",
            m.fanout_publish_seconds.clone(),
        );
        registry.register(
            "fanout_link_up",
            "1 while the fanout link to other tasks is up",
            m.fanout_link_up.clone(),
        );
        registry.register("draining", "1 while the task drains", m.draining.clone());
        // `chat_build_info{version, git_sha, built_at} 1`: which build a task runs.
        registry.register(
            "build",
            "Build identity: package version, git commit, build time",
            Info::new(vec![
                ("version", crate::build_info::VERSION),
                ("git_sha", crate::build_info::GIT_SHA),
                ("built_at", crate::build_info::BUILT_AT),
            ]),
        );
        Self { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
