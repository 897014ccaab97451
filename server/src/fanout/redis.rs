//! The Redis fanout: events travel between tasks on one sharded pub/sub channel per room
//! (SPUBLISH/SSUBSCRIBE), and presence is one sorted set per room whose scores are expiry
//! times refreshed by heartbeats, so a task that dies silently drops out within the TTL.
//!
//! Redis is a cache, never the source of truth. While the link is down the task keeps
//! serving: `publish` fails fast (the hub has already delivered locally and the store has the
//! message), presence answers from this task's own view, and when the link returns the
//! subscriber resubscribes, re-registers presence, republishes what it could not publish and
//! asks the hub to catch every room up from the store ([`FromOthers::Resync`]).
//!
//! One node (`redis://`, `rediss://`) or a Redis Cluster (`redis+cluster://`,
//! `rediss+cluster://`: ElastiCache in cluster mode), see [`endpoint`]. Every key and channel
//! of a room carries the hash tag `{room}` ([`keys`]), so a room lives on one shard and the
//! rooms spread over the shards.
//!
//! [`FromOthers::Resync`]: super::FromOthers::Resync

mod endpoint;
mod envelope;
mod keys;
mod link;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::redis::{Client, ConnectionInfo};
use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{EventKind, Fanout, FanoutError, RoomEvent, ToHub};
use crate::background::Background;
use crate::protocol::User;
use endpoint::Endpoint;
use state::Shared;

pub use endpoint::is_cluster_url;
pub use envelope::{Envelope, EnvelopeError, decode, encode};
pub use keys::{channel, member, member_user, presence_key, room_of};

/// Why `url` cannot be used as `CHAT_REDIS_URL` (one node or a cluster), checked at start
/// without connecting.
pub fn check_url(url: &str) -> Result<(), String> {
    Endpoint::parse(url).map(|_| ()).map_err(|e| e.to_string())
}

/// Fanout and presence over Redis.
pub struct RedisFanout {
    shared: Arc<Shared>,
}

impl RedisFanout {
    /// Starts the link and heartbeat tasks and returns at once: it never waits for Redis,
    /// which may be down (the task becomes ready when it arrives). Fails only on a URL that
    /// cannot be used. Must be called inside a Tokio runtime. Events from other tasks go
    /// to `hub`; the tasks run under `background`.
    pub fn new(
        url: &str,
        presence_ttl: Duration,
        hub: ToHub,
        background: &Background,
    ) -> anyhow::Result<Self> {
        let endpoint = Endpoint::parse(url).map_err(|e| anyhow::anyhow!("CHAT_REDIS_URL: {e}"))?;
        Self::start(endpoint, presence_ttl, hub, background)
    }

    /// The connection settings of a single-node `url`, in the RESP3 protocol this fanout
    /// needs (sharded messages arrive as pushes on a connection that also answers commands).
    pub fn connection_info(url: &str) -> anyhow::Result<ConnectionInfo> {
        endpoint::connection_info(url).map_err(|e| anyhow::anyhow!("CHAT_REDIS_URL: {e}"))
    }

    /// As [`RedisFanout::new`] for one node, with a client built by the caller (e.g.
    /// trusting a private CA for `rediss://`); it must use [`RedisFanout::connection_info`].
    pub fn with_client(
        client: Client,
        presence_ttl: Duration,
        hub: ToHub,
        background: &Background,
    ) -> anyhow::Result<Self> {
        Self::start(
            Endpoint::Single(Box::new(client)),
            presence_ttl,
            hub,
            background,
        )
    }

    fn start(
        endpoint: Endpoint,
        presence_ttl: Duration,
        hub: ToHub,
        background: &Background,
    ) -> anyhow::Result<Self> {
        // rediss:// needs a process-wide rustls provider; keep one that another part installed.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let shared = Arc::new(Shared {
            origin: rand::random(),
            up: AtomicBool::new(false),
            desired: Mutex::default(),
            changed: Notify::new(),
            presence: Mutex::default(),
            backlog: Mutex::default(),
            ttl: presence_ttl,
            hub,
            commands: endpoint.commands()?,
            // Stopped by the fanout's own shutdown (or drop), or with every background task.
            stop: background.stopping().child_token(),
        });
        background.spawn(link::run_link(Arc::clone(&shared), endpoint));
        background.spawn(link::run_heartbeat(Arc::clone(&shared)));
        Ok(Self { shared })
    }

    /// This task's instance id (the origin in its envelopes and presence members).
    pub fn origin(&self) -> u64 {
        self.shared.origin
    }
}

impl Drop for RedisFanout {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

#[async_trait]
impl Fanout for RedisFanout {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn is_ready(&self) -> bool {
        self.shared.is_up()
    }

    fn subscribe(&self, room: &str) {
        if self.shared.desired.lock().insert(room.to_string()) {
            self.shared.changed.notify_one();
        }
    }

    fn unsubscribe(&self, room: &str) {
        if self.shared.desired.lock().remove(room) {
            self.shared.changed.notify_one();
        }
    }

    async fn publish(&self, room: &str, event: &RoomEvent) -> Result<(), FanoutError> {
        let payload = encode(self.shared.origin, event);
        let result = self
            .shared
            .run(
                "SPUBLISH",
                ::redis::cmd("SPUBLISH")
                    .arg(channel(room))
                    .arg(&payload)
                    .exec_async(&mut self.shared.commands.clone()),
            )
            .await;
        if result.is_err() && matches!(event.kind, EventKind::Message { .. }) {
            self.shared.keep_for_later(room, payload);
        }
        result
    }

    async fn presence_add(&self, room: &str, user: &User) -> Result<(), FanoutError> {
        let m = member(self.shared.origin, user);
        {
            let mut p = self.shared.presence.lock();
            p.stale.remove(&(room.to_string(), m.clone()));
            p.rooms
                .entry(room.to_string())
                .or_default()
                .insert(user.id, (user.clone(), m.clone()));
        }
        let key = presence_key(room);
        let key_ttl = self.shared.key_ttl_ms();
        let expiry = self.shared.expiry_ms();
        let mut pipe = ::redis::pipe();
        pipe.zadd(&key, &m, expiry)
            .ignore()
            .pexpire(&key, key_ttl)
            .ignore();
        if let Err(e) = self
            .shared
            .run(
                "ZADD presence",
                pipe.exec_async(&mut self.shared.commands.clone()),
            )
            .await
        {
            // Kept locally; the next heartbeat or reconnect registers it.
            tracing::debug!(error = %e, "Presence kept locally");
        }
        Ok(())
    }

    async fn presence_remove(&self, room: &str, user: &User) -> Result<(), FanoutError> {
        let removed = {
            let mut p = self.shared.presence.lock();
            let removed = p.rooms.get_mut(room).and_then(|u| u.remove(&user.id));
            if p.rooms.get(room).is_some_and(BTreeMap::is_empty) {
                p.rooms.remove(room);
            }
            removed
        };
        let Some((_, m)) = removed else {
            return Ok(());
        };
        let key = presence_key(room);
        if let Err(e) = self
            .shared
            .run(
                "ZREM presence",
                ::redis::cmd("ZREM")
                    .arg(&key)
                    .arg(&m)
                    .exec_async(&mut self.shared.commands.clone()),
            )
            .await
        {
            tracing::debug!(error = %e, "Presence removal deferred");
            self.shared
                .presence
                .lock()
                .stale
                .insert((room.to_string(), m));
        }
        Ok(())
    }

    async fn presence(&self, room: &str) -> Result<Vec<User>, FanoutError> {
        let mut users: BTreeMap<u64, User> = self
            .shared
            .presence
            .lock()
            .rooms
            .get(room)
            .map(|u| {
                u.iter()
                    .map(|(id, (user, _))| (*id, user.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let key = presence_key(room);
        let now = crate::now_ms();
        match self
            .shared
            .run(
                "ZRANGE presence",
                ::redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(now)
                    .arg("+inf")
                    .arg("BYSCORE")
                    .query_async::<Vec<String>>(&mut self.shared.commands.clone()),
            )
            .await
        {
            Ok(members) => {
                for user in members.iter().filter_map(|m| member_user(m)) {
                    users.entry(user.id).or_insert(user);
                }
            }
            Err(e) => tracing::debug!(error = %e, "Presence answered from the local view"),
        }
        Ok(users.into_values().collect())
    }

    async fn shutdown(&self) {
        let registered: Vec<(String, String)> = {
            let mut p = self.shared.presence.lock();
            let mut all: Vec<(String, String)> = p
                .rooms
                .drain()
                .flat_map(|(room, users)| users.into_values().map(move |(_, m)| (room.clone(), m)))
                .collect();
            all.extend(p.stale.drain());
            all
        };
        if !registered.is_empty()
            && let Err(e) = self.shared.remove_members(registered).await
        {
            tracing::warn!(error = %e, "Presence left to expire");
        }
        self.shared.stop.cancel();
        self.shared.up.store(false, Ordering::Release);
    }
}
