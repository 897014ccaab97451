//! chat-server: a lean WebSocket chat server. The contract it serves is `docs/PROTOCOL.md`.
//!
//! # Layout (each module imports only those below it)
//! - [`config`]: flags and environment variables, validated once into typed [`config::Settings`].
//! - [`app`]: builds the store, fanout and hub from the settings, binds, serves, drains.
//! - [`listen`]: the public listener's accept loop: connection caps, header-read timeout.
//! - [`http`]: the HTTP routes and the state they share ([`http::AppState`]);
//!   [`http_error`] the JSON error answer they (and the upload routes) give.
//! - [`uploads`]: images in messages: upload slots, the check by bytes, the embedded or S3
//!   backend, the signed attachment a `send` carries.
//! - [`ws`]: one WebSocket connection: hello, read loop, rate limit, writer task.
//! - [`hub`]: rooms -> local connections. `hub/mod.rs` the API (join, leave, send, typing,
//!   delivery); `hub/room.rs` the pure in-order state machine; `hub/repair.rs` gap repair from
//!   the store; `hub/lifecycle.rs` heartbeat and drain.
//! - [`commit`]: group commit of sends to the store, then ack; hands stored messages to the
//!   hub over the hub's channel ([`commit::Committed`]).
//! - [`background`]: the background tasks, started and stopped under one shutdown.
//! - [`conn`]: a connection as the hub sees it: bounded queue of pre-encoded frames, close.
//! - [`store`]: the `Store` seam; `embedded` (redb) and `dynamodb/` (items, append, reads,
//!   connections, admin, counts).
//! - [`fanout`]: the `Fanout` seam (events to other tasks, presence across tasks); `local`, `redis`.
//! - [`protocol`]: the frames, codes and limits of the contract; pure, fuzzable.
//! - [`auth`]: guest tokens (HMAC-SHA256), avatars, default nicknames.
//! - [`metrics`]: Prometheus metrics for the admin listener.
//! - [`telemetry`]: JSON logs and X-Ray traces (OpenTelemetry over OTLP to the ADOT sidecar).
//! - [`web`]: the embedded web client: the page with its frame-ancestors, per-build versioned files.
//! - [`build_info`]: git commit and build time baked in by build.rs (`--version`, `/version`,
//!   `welcome`, `chat_build_info`).

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod background;
pub mod build_info;
pub mod commit;
pub mod config;
pub mod conn;
pub mod ecs_stop;
pub mod fanout;
pub mod http;
pub mod http_error;
pub mod hub;
pub mod inbound;
pub mod listen;
pub mod metrics;
pub mod moderator;
pub mod protocol;
pub mod readiness;
pub mod rebalance;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod uploads;
pub mod web;
pub mod ws;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
