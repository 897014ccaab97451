//! chat-server: a lean WebSocket chat server. The contract it serves is `docs/PROTOCOL.md`.
//!
//! # Layout
//!
//! The one map of the crate's modules (`testkit::house` checks that it names every module
//! and nothing else, and that no two modules import each other). A folder of modules is
//! `name/mod.rs`. A send reads top to bottom: [`ws`] -> `hub/send` -> [`commit`] -> the
//! store, then the hub's channel -> local sockets and `hub/publish` -> [`fanout`].
//!
//! - [`config`]: flags and environment variables; `config/settings` validates them once
//!   into the typed [`config::Settings`], one part per subsystem.
//! - [`app`]: builds the store, fanout and hub from the settings, binds, serves, drains.
//! - [`background`]: the background tasks, started and stopped under one shutdown.
//! - [`listen`]: the public listener's accept loop: connection caps, header-read timeout.
//! - [`http`]: the HTTP routes and the state they share ([`http::AppState`]);
//!   [`http_error`] the JSON error answer they (and the upload routes) give; [`readiness`]
//!   the `/readyz` checks; [`throttle`] per-address and per-task rate limits; [`web`] the
//!   embedded web client.
//! - [`uploads`]: images in messages: `uploads/routes` (upload slots), `uploads/sniff`
//!   (the check by bytes), `uploads/backend` (embedded or S3), the signed attachment.
//! - [`ws`]: one WebSocket connection: hello, read loop, rate limit, typed refusals, writer
//!   task; [`inbound`] its frames into whole messages.
//! - [`hub`]: rooms -> local connections, and the readers of the two channels the commit
//!   loop and the fanout hand it events on. `hub/send` every check of a send;
//!   `hub/join` joining; `hub/room` the pure in-order state machine; `hub/repair` gap repair;
//!   `hub/publish` per-room publish lanes; `hub/presence` presence summaries;
//!   `hub/moderate` delete, mute and the mutes' cache; `hub/receipts` read positions;
//!   `hub/records` the connection records; `hub/lifecycle` heartbeat and drain;
//!   `hub/reactions` reactions, coalesced per room; `hub/replies` what a reply quotes.
//! - [`commit`]: group commit of sends to the store, then ack; hands stored messages to the
//!   hub over the hub's channel ([`commit::Committed`]).
//! - [`conn`]: a connection as the hub sees it: bounded queue of pre-encoded frames, close.
//! - [`rebalance`]: the fleet heartbeat and shedding toward opsctl's weights;
//!   `rebalance/decide` the pure decision.
//! - [`ecs_stop`]: draining when ECS says the task is stopping.
//! - [`moderator`]: moderator credentials.
//! - [`store`]: the `Store` seam; `store/user_ids` draws user ids in blocks;
//!   `store/reactions` the pure toggle of a message's reactions.
//!   `store/embedded` (redb): `store/embedded/pipeline` its apply and log threads,
//!   `store/embedded/tables` its transactions, `store/embedded/wal` the write-ahead log,
//!   `store/embedded/moderation`, `store/embedded/receipts`, `store/embedded/reactions`.
//!   `store/dynamodb`: `store/dynamodb/items` encoding, `store/dynamodb/append` the group
//!   commit, `store/dynamodb/batch`, `store/dynamodb/settle`, `store/dynamodb/reads`,
//!   `store/dynamodb/connections`, `store/dynamodb/fleet` the rollout's items,
//!   `store/dynamodb/moderation`, `store/dynamodb/receipts`, `store/dynamodb/reactions`,
//!   `store/dynamodb/counts`. The
//!   tables' schema is `chat_contract`'s.
//! - [`fanout`]: the `Fanout` seam (events to other tasks, presence across tasks);
//!   `fanout/local`; `fanout/redis` with `fanout/redis/endpoint` (one node or a cluster),
//!   `fanout/redis/keys`, `fanout/redis/state`, `fanout/redis/link` (its tasks),
//!   `fanout/redis/envelope` (the wire format).
//! - [`protocol`]: the frames, codes and limits of the contract; pure, fuzzable.
//! - [`auth`]: guest tokens (HMAC-SHA256), avatars, default nicknames.
//! - [`metrics`]: Prometheus metrics for the admin listener.
//! - [`telemetry`]: JSON logs and X-Ray traces (OpenTelemetry over OTLP to the ADOT sidecar).
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

#[cfg(test)]
mod house {
    #[test]
    fn the_crate_keeps_the_house_rules() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let problems = testkit::house::problems(&src, "lib.rs");
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
