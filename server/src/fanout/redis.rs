//! The Redis fanout: events travel between tasks on one sharded pub/sub channel per room
//! (SPUBLISH/SSUBSCRIBE), and presence is one sorted set per room whose scores are expiry
//! times refreshed by heartbeats, so a task that dies silently drops out within the TTL.
//!
//! Redis is a cache, never the source of truth. While the link is down the task keeps
//! serving: `publish` fails fast (the hub has already delivered locally and the store has the
//! message), presence answers from this task's own view, and when the link returns the
//! subscriber resubscribes, re-registers presence, republishes what it could not publish and
//! asks the hub to catch every room up from the store ([`FanoutSink::resync`]).
//!
//! Connections: one dedicated RESP3 subscriber connection per task (owned by the link task,
//! which reconnects with backoff and pings to notice a dead link), and one multiplexed
//! [`ConnectionManager`] for commands. Every key and channel of a room carries the hash tag
//! `{room}`, so they live in one cluster slot.

mod envelope;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, PushInfo,
    PushKind, RedisResult, Value,
};
use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{EventKind, Fanout, FanoutError, RoomEvent, SinkRef};
use crate::protocol::User;

pub use envelope::{Envelope, EnvelopeError, decode, encode};

/// Longest wait for one command; past it the call fails instead of holding up the caller.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the subscriber pings, to notice a link that died without a word.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Messages kept for republishing while the link is down; older ones are left to the
/// other tasks' catch-up from the store.
const BACKLOG: usize = 4096;

/// The channel carrying a room's events.
pub fn channel(room: &str) -> String {
    format!("chat:{{{room}}}:events")
}

/// The room of a channel named by [`channel`].
pub fn room_of(channel: &str) -> Option<&str> {
    channel.strip_prefix("chat:{")?.strip_suffix("}:events")
}

/// The sorted set of a room's presence: member = [`member`], score = expiry (Unix ms).
pub fn presence_key(room: &str) -> String {
    format!("chat:{{{room}}}:presence")
}

/// One task's registration of one user in a room: the task's instance id (16 hex digits)
/// then the user as JSON, so a reader needs no second lookup.
pub fn member(origin: u64, user: &User) -> String {
    let json = serde_json::to_string(user).unwrap_or_default();
    format!("{origin:016x}{json}")
}

/// The user of a presence member, if it parses.
pub fn member_user(member: &str) -> Option<User> {
    serde_json::from_str(member.get(16..)?).ok()
}

/// This task's own presence: always kept, so presence works while Redis is down and can be
/// registered again when it returns.
#[derive(Default)]
struct LocalPresence {
    /// room -> user id -> (user, the member string registered for them).
    rooms: HashMap<String, BTreeMap<u64, (User, String)>>,
    /// (room, member) removed locally but maybe still in Redis: removed on the next refresh.
    stale: HashSet<(String, String)>,
}

/// State shared by the fanout handle and its background tasks.
struct Shared {
    /// This process's random instance id: tags what it publishes and registers.
    origin: u64,
    /// The subscriber link is up (readiness; commands fail fast while false).
    up: AtomicBool,
    /// Rooms the hub wants; the link task applies changes and re-applies all on reconnect.
    desired: Mutex<HashSet<String>>,
    /// Wakes the link task when `desired` changed.
    changed: Notify,
    presence: Mutex<LocalPresence>,
    /// Messages that could not be published: (room, envelope), republished on reconnect.
    backlog: Mutex<VecDeque<(String, Vec<u8>)>>,
    ttl: Duration,
    sink: SinkRef,
    commands: ConnectionManager,
    stop: CancellationToken,
}

/// Fanout and presence over Redis.
pub struct RedisFanout {
    shared: Arc<Shared>,
}

impl RedisFanout {
    /// Starts the link and heartbeat tasks and returns at once: it never waits for Redis,
    /// which may be down (the task becomes ready when it arrives). Fails only on a URL that
    /// cannot be used. Must be called inside a Tokio runtime.
    pub fn new(url: &str, presence_ttl: Duration, sink: SinkRef) -> anyhow::Result<Self> {
        let client = Client::open(Self::connection_info(url)?)
            .map_err(|e| anyhow::anyhow!("CHAT_REDIS_URL: {e}"))?;
        Self::with_client(client, presence_ttl, sink)
    }

    /// The connection settings of `url`, in the RESP3 protocol this fanout needs (sharded
    /// messages arrive as pushes on a connection that also answers commands).
    pub fn connection_info(url: &str) -> anyhow::Result<ConnectionInfo> {
        let info = url
            .into_connection_info()
            .map_err(|e| anyhow::anyhow!("CHAT_REDIS_URL: {e}"))?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        Ok(info.set_redis_settings(settings))
    }

    /// As [`RedisFanout::new`], with a client built by the caller (e.g. trusting a private
    /// CA for `rediss://`); it must use [`RedisFanout::connection_info`].
    pub fn with_client(
        client: Client,
        presence_ttl: Duration,
        sink: SinkRef,
    ) -> anyhow::Result<Self> {
        // rediss:// needs a process-wide rustls provider; keep one that another part installed.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let commands = ConnectionManager::new_lazy_with_config(
            client.clone(),
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(COMMAND_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(BACKOFF_MAX),
        )
        .map_err(|e| anyhow::anyhow!("CHAT_REDIS_URL: {e}"))?;
        let shared = Arc::new(Shared {
            origin: rand::random(),
            up: AtomicBool::new(false),
            desired: Mutex::default(),
            changed: Notify::new(),
            presence: Mutex::default(),
            backlog: Mutex::default(),
            ttl: presence_ttl,
            sink,
            commands,
            stop: CancellationToken::new(),
        });
        tokio::spawn(run_link(Arc::clone(&shared), client));
        tokio::spawn(run_heartbeat(Arc::clone(&shared)));
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

impl Shared {
    fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Runs one command (or pipeline) on the command connection, failing fast while the link
    /// is down (`call` is lazy: nothing is sent) and after [`COMMAND_TIMEOUT`].
    async fn run<T>(
        &self,
        what: &str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, FanoutError> {
        if !self.is_up() {
            return Err(FanoutError::Unavailable("the Redis link is down".into()));
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(FanoutError::Unavailable(format!("Redis {what}: {e}"))),
            Err(_) => Err(FanoutError::Unavailable(format!(
                "Redis {what}: no answer within {COMMAND_TIMEOUT:?}"
            ))),
        }
    }

    fn expiry_ms(&self) -> i64 {
        crate::now_ms() + i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX / 2)
    }

    /// Registers every local presence again with a fresh expiry, removes what was left
    /// stale, and trims expired members (other tasks that died) of the rooms it touches.
    async fn refresh_presence(&self) -> Result<(), FanoutError> {
        let (rooms, stale) = {
            let mut p = self.presence.lock();
            let rooms: Vec<(String, Vec<String>)> = p
                .rooms
                .iter()
                .map(|(room, users)| {
                    (
                        room.clone(),
                        users.values().map(|(_, m)| m.clone()).collect(),
                    )
                })
                .collect();
            (rooms, std::mem::take(&mut p.stale))
        };
        if rooms.is_empty() && stale.is_empty() {
            return Ok(());
        }
        let expiry = self.expiry_ms();
        let now = crate::now_ms();
        let key_ttl = i64::try_from(self.ttl.as_millis() * 2).unwrap_or(i64::MAX);
        let mut pipe = ::redis::pipe();
        for (room, members) in &rooms {
            let key = presence_key(room);
            let scored: Vec<(i64, &String)> = members.iter().map(|m| (expiry, m)).collect();
            pipe.zadd_multiple(&key, &scored)
                .ignore()
                .pexpire(&key, key_ttl)
                .ignore()
                .zrembyscore(&key, "-inf", now)
                .ignore();
        }
        for (room, m) in &stale {
            pipe.zrem(presence_key(room), m).ignore();
        }
        let result = self
            .run(
                "presence refresh",
                pipe.exec_async(&mut self.commands.clone()),
            )
            .await;
        if result.is_err() {
            let mut p = self.presence.lock();
            for s in stale {
                // Still stale unless the user came back meanwhile.
                if !p
                    .rooms
                    .get(&s.0)
                    .is_some_and(|u| u.values().any(|(_, m)| *m == s.1))
                {
                    p.stale.insert(s);
                }
            }
        }
        result
    }

    /// Publishes what could not be published before (kept for the next try on failure).
    async fn republish_backlog(&self) {
        let backlog: Vec<(String, Vec<u8>)> = self.backlog.lock().drain(..).collect();
        if backlog.is_empty() {
            return;
        }
        let mut pipe = ::redis::pipe();
        for (room, payload) in &backlog {
            pipe.cmd("SPUBLISH")
                .arg(channel(room))
                .arg(payload)
                .ignore();
        }
        match self
            .run(
                "SPUBLISH backlog",
                pipe.exec_async(&mut self.commands.clone()),
            )
            .await
        {
            Ok(()) => tracing::info!(messages = backlog.len(), "Republished the Redis backlog"),
            Err(e) => {
                tracing::warn!(error = %e, "Could not republish the Redis backlog; will retry");
                let mut kept = self.backlog.lock();
                for entry in backlog.into_iter().rev() {
                    if kept.len() == BACKLOG {
                        break;
                    }
                    kept.push_front(entry);
                }
            }
        }
    }

    fn keep_for_later(&self, room: &str, payload: Vec<u8>) {
        let mut backlog = self.backlog.lock();
        if backlog.len() == BACKLOG {
            backlog.pop_front();
        }
        backlog.push_back((room.to_string(), payload));
    }

    /// Hands one push from the subscriber connection to the hub. False when the connection
    /// is gone.
    fn on_push(&self, push: PushInfo) -> bool {
        match push.kind {
            PushKind::Disconnection => return false,
            PushKind::SMessage | PushKind::Message => {}
            _ => return true,
        }
        let mut data = push.data.into_iter();
        let (Some(Value::BulkString(ch)), Some(Value::BulkString(payload))) =
            (data.next(), data.next())
        else {
            tracing::warn!("Ignoring a malformed Redis message push");
            return true;
        };
        let Some(room) = std::str::from_utf8(&ch).ok().and_then(room_of) else {
            tracing::warn!("Ignoring a message on an unknown Redis channel");
            return true;
        };
        match decode(Bytes::from(payload)) {
            Ok(env) if env.origin == self.origin => {}
            Ok(env) => {
                if let Some(sink) = self.sink.upgrade() {
                    sink.deliver(room, env.event);
                }
            }
            Err(e) => tracing::warn!(error = %e, room, "Ignoring an undecodable Redis message"),
        }
        true
    }
}

fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(BACKOFF_MIN)
        .with_max_delay(BACKOFF_MAX)
        .with_jitter()
        .without_max_times()
}

/// Brings the subscriber connection's subscriptions to the desired set (one channel per
/// command, pipelined, so each command stays within one cluster slot). True when it
/// subscribed to a room it was not subscribed to.
async fn apply_subscriptions(
    shared: &Shared,
    conn: &mut MultiplexedConnection,
    applied: &mut HashSet<String>,
) -> RedisResult<Vec<String>> {
    let desired = shared.desired.lock().clone();
    let mut pipe = ::redis::pipe();
    let mut n = 0;
    let mut added = Vec::new();
    for room in desired.difference(applied) {
        pipe.cmd("SSUBSCRIBE").arg(channel(room)).ignore();
        n += 1;
        added.push(room.clone());
    }
    for room in applied.difference(&desired) {
        pipe.cmd("SUNSUBSCRIBE").arg(channel(room)).ignore();
        n += 1;
    }
    if n > 0 {
        pipe.exec_async(conn).await?;
    }
    *applied = desired;
    Ok(added)
}

/// A subscriber connection with every desired room subscribed, and its push receiver.
async fn connect(
    shared: &Shared,
    client: &Client,
) -> RedisResult<(
    MultiplexedConnection,
    mpsc::UnboundedReceiver<PushInfo>,
    HashSet<String>,
)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let config = AsyncConnectionConfig::new()
        .set_push_sender(tx)
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let mut applied = HashSet::new();
    apply_subscriptions(shared, &mut conn, &mut applied).await?;
    Ok((conn, rx, applied))
}

/// The link task: connect (with backoff), subscribe, mark ready, catch up, then hand
/// messages to the hub until the link breaks; repeat until stopped.
async fn run_link(shared: Arc<Shared>, client: Client) {
    let mut down_since = Instant::now();
    let mut ever_up = false;
    loop {
        let attempt = (|| connect(&shared, &client))
            .retry(backoff())
            .notify(|e, wait| {
                tracing::debug!(error = %e, retry_in_ms = wait.as_millis() as u64, "Redis not reachable");
            });
        let (mut conn, mut pushes, mut applied) = tokio::select! {
            () = shared.stop.cancelled() => return,
            result = attempt => match result {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "Redis connection failed");
                    continue;
                }
            },
        };
        shared.up.store(true, Ordering::Release);
        let down_ms = down_since.elapsed().as_millis() as u64;
        tracing::info!(
            down_ms,
            rooms = applied.len(),
            reconnect = ever_up,
            "Redis link up"
        );
        // Presence first (joins meanwhile counted only locally), then whatever other tasks
        // missed from us, then catch our own rooms up from the store.
        if let Err(e) = shared.refresh_presence().await {
            tracing::warn!(error = %e, "Could not register presence after connecting");
        }
        shared.republish_backlog().await;
        if let Some(sink) = shared.sink.upgrade() {
            sink.resync();
        }
        ever_up = true;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                () = shared.stop.cancelled() => {
                    shared.up.store(false, Ordering::Release);
                    return;
                }
                push = pushes.recv() => {
                    if !push.is_some_and(|p| shared.on_push(p)) {
                        break;
                    }
                }
                () = shared.changed.notified() => {
                    match apply_subscriptions(&shared, &mut conn, &mut applied).await {
                        // A message published between the hub's join (which read the store)
                        // and this subscription would be missed: catch the new rooms up once
                        // more (only them: one new room must not cost a read of every room).
                        Ok(added) => {
                            if !added.is_empty()
                                && let Some(sink) = shared.sink.upgrade()
                            {
                                sink.resync_rooms(&added);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "Redis subscribe failed");
                            break;
                        }
                    }
                }
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(
                        COMMAND_TIMEOUT,
                        ::redis::cmd("PING").exec_async(&mut conn),
                    )
                    .await;
                    if !matches!(pong, Ok(Ok(()))) {
                        break;
                    }
                }
            }
        }
        shared.up.store(false, Ordering::Release);
        down_since = Instant::now();
        tracing::warn!("Redis link down; reconnecting");
    }
}

/// Refreshes this task's presence every third of the TTL, so it outlives a missed beat, and
/// retries publishing what failed while the link looked up.
async fn run_heartbeat(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval((shared.ttl / 3).max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if shared.is_up() {
            if let Err(e) = shared.refresh_presence().await {
                tracing::debug!(error = %e, "Presence heartbeat failed");
            }
            shared.republish_backlog().await;
        }
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
        let key_ttl = i64::try_from(self.shared.ttl.as_millis() * 2).unwrap_or(i64::MAX);
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
        if !registered.is_empty() {
            let mut pipe = ::redis::pipe();
            for (room, m) in &registered {
                pipe.zrem(presence_key(room), m).ignore();
            }
            if let Err(e) = self
                .shared
                .run(
                    "ZREM presence",
                    pipe.exec_async(&mut self.shared.commands.clone()),
                )
                .await
            {
                tracing::warn!(error = %e, "Presence left to expire");
            }
        }
        self.shared.stop.cancel();
        self.shared.up.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_keys_and_channel_share_one_hash_tag() {
        assert_eq!(channel("lobby"), "chat:{lobby}:events");
        assert_eq!(presence_key("lobby"), "chat:{lobby}:presence");
        assert_eq!(room_of(&channel("a-b_9")), Some("a-b_9"));
        assert_eq!(room_of("chat:{lobby}:presence"), None);
        assert_eq!(room_of("other"), None);
    }

    #[test]
    fn a_member_names_its_task_and_carries_the_user() {
        let user = User {
            id: 17,
            nickname: "otter fan".into(),
            avatar: "otter".into(),
        };
        let m = member(0xabc, &user);
        assert!(m.starts_with("0000000000000abc{"), "{m}");
        assert_ne!(
            m,
            member(0xabd, &user),
            "two tasks register distinct members"
        );
        assert_eq!(member_user(&m), Some(user));
        assert_eq!(member_user("short"), None);
        assert_eq!(member_user("0000000000000abcnot json"), None);
    }
}
