//! chat-server: a lean WebSocket chat server.
//!
//! # Layout
//! - [`config`]: flags and environment variables, validated once at start.
//! - [`app`]: builds the store, fanout and hub from the config; serves; drains on shutdown.
//! - [`protocol`]: the frames and limits of the public contract; pure, fuzzable.
//! - [`http`]: the HTTP routes (health, version, sessions, history, rooms, web client, metrics).
//! - [`ws`]: one WebSocket connection: hello, read loop, rate limit, writer task.
//! - [`conn`]: a connection as the hub sees it: bounded queue of pre-encoded frames, close.
//! - [`hub`]: rooms -> local connections; in-order delivery; presence; drain.
//! - [`commit`]: group commit of sends to the store, then ack and broadcast.
//! - [`store`]: the `Store` seam (messages, seq, idempotency, user counter, live connections).
//! - [`fanout`]: the `Fanout` seam (events to other tasks, presence across tasks).
//! - [`auth`]: guest tokens (HMAC-SHA256), avatars, default nicknames.
//! - [`metrics`]: Prometheus metrics for the admin listener.
//! - [`telemetry`]: JSON logs and X-Ray traces (OpenTelemetry over OTLP to the ADOT sidecar).

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod commit;
pub mod config;
pub mod conn;
pub mod fanout;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod protocol;
pub mod store;
pub mod telemetry;
pub mod ws;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
