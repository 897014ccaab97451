//! chat-server: a lean WebSocket chat server.
//!
//! # Layout
//! - [`config`]: flags and environment variables, validated once at start.
//! - [`protocol`]: the frames and limits of the public contract; pure, fuzzable.
//! - [`store`]: the `Store` seam (messages, seq, idempotency, user counter, live connections).
//! - [`fanout`]: the `Fanout` seam (events to other tasks, presence across tasks).

#![forbid(unsafe_code)]

pub mod config;
pub mod fanout;
pub mod protocol;
pub mod store;
