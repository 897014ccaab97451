//! What the Redis fanout's handle and its background tasks share: the wanted subscriptions,
//! this task's own presence (kept so presence works while Redis is down and can be
//! registered again when it returns), the backlog of events that could not be published, and
//! the command connection with the calls made on it.
//!
//! Every pipeline here is about one room, so on a Redis Cluster it stays within the room's
//! slot; rooms are sent concurrently (the connection multiplexes them).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::redis::{PushInfo, PushKind, RedisResult, Value};
use bytes::Bytes;
use futures_util::future::join_all;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::endpoint::{COMMAND_TIMEOUT, Commands};
use super::envelope::decode;
use super::keys::{channel, into_room, presence_key, room_of};
use crate::fanout::{FanoutError, FromOthers, ToHub};
use crate::protocol::User;

/// Messages kept for republishing while the link is down; older ones are left to the
/// other tasks' catch-up from the store.
pub const BACKLOG: usize = 4096;

/// This task's own presence.
#[derive(Default)]
pub struct LocalPresence {
    /// room -> user id -> (user, the member string registered for them).
    pub rooms: HashMap<String, BTreeMap<u64, (User, String)>>,
    /// (room, member) removed locally but maybe still in Redis: removed on the next refresh.
    pub stale: HashSet<(String, String)>,
}

/// State shared by the fanout handle and its background tasks.
pub struct Shared {
    /// This process's random instance id: tags what it publishes and registers.
    pub origin: u64,
    /// The subscriber link is up (readiness; commands fail fast while false).
    pub up: AtomicBool,
    /// Rooms the hub wants; the link task applies changes and re-applies all on reconnect.
    pub desired: Mutex<HashSet<String>>,
    /// Wakes the link task when `desired` changed.
    pub changed: Notify,
    pub presence: Mutex<LocalPresence>,
    /// Messages that could not be published: (room, envelope), republished on reconnect.
    pub backlog: Mutex<VecDeque<(String, Vec<u8>)>>,
    pub ttl: Duration,
    /// Where events from other tasks go (the hub's channel).
    pub hub: ToHub,
    pub commands: Commands,
    pub stop: CancellationToken,
}

impl Shared {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Runs one command (or one room's pipeline) on the command connection, failing fast
    /// while the link is down (`call` is lazy: nothing is sent) and after [`COMMAND_TIMEOUT`].
    pub async fn run<T>(
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

    /// Runs one pipeline per room concurrently; the rooms whose pipeline failed, with the
    /// first error.
    async fn run_per_room(
        &self,
        what: &str,
        pipes: Vec<(String, ::redis::Pipeline)>,
    ) -> (HashSet<String>, Option<FanoutError>) {
        let results = join_all(pipes.into_iter().map(|(room, pipe)| async move {
            let result = self
                .run(what, pipe.exec_async(&mut self.commands.clone()))
                .await;
            (room, result)
        }))
        .await;
        let mut failed = HashSet::new();
        let mut first = None;
        for (room, result) in results {
            if let Err(e) = result {
                failed.insert(room);
                first.get_or_insert(e);
            }
        }
        (failed, first)
    }

    pub fn expiry_ms(&self) -> i64 {
        crate::now_ms() + i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX / 2)
    }

    pub fn key_ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis() * 2).unwrap_or(i64::MAX)
    }

    /// Registers every local presence again with a fresh expiry, removes what was left
    /// stale, and trims expired members (other tasks that died) of the rooms it touches.
    pub async fn refresh_presence(&self) -> Result<(), FanoutError> {
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
        let key_ttl = self.key_ttl_ms();
        let mut pipes: HashMap<String, ::redis::Pipeline> = HashMap::new();
        for (room, members) in &rooms {
            let key = presence_key(room);
            let scored: Vec<(i64, &String)> = members.iter().map(|m| (expiry, m)).collect();
            pipes
                .entry(room.clone())
                .or_insert_with(::redis::pipe)
                .zadd_multiple(&key, &scored)
                .ignore()
                .pexpire(&key, key_ttl)
                .ignore()
                .zrembyscore(&key, "-inf", now)
                .ignore();
        }
        for (room, m) in &stale {
            pipes
                .entry(room.clone())
                .or_insert_with(::redis::pipe)
                .zrem(presence_key(room), m)
                .ignore();
        }
        let (failed, error) = self
            .run_per_room("presence refresh", pipes.into_iter().collect())
            .await;
        if !failed.is_empty() {
            let mut p = self.presence.lock();
            for s in stale.into_iter().filter(|s| failed.contains(&s.0)) {
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
        error.map_or(Ok(()), Err)
    }

    /// Publishes what could not be published before, in order within each room (a room's
    /// entries are kept for the next try when its pipeline fails).
    pub async fn republish_backlog(&self) {
        let backlog: Vec<(String, Vec<u8>)> = self.backlog.lock().drain(..).collect();
        if backlog.is_empty() {
            return;
        }
        let mut pipes: HashMap<String, ::redis::Pipeline> = HashMap::new();
        for (room, payload) in &backlog {
            pipes
                .entry(room.clone())
                .or_insert_with(::redis::pipe)
                .cmd("SPUBLISH")
                .arg(channel(room))
                .arg(payload)
                .ignore();
        }
        let (failed, error) = self
            .run_per_room("SPUBLISH backlog", pipes.into_iter().collect())
            .await;
        match error {
            None => tracing::info!(messages = backlog.len(), "Republished the Redis backlog"),
            Some(e) => {
                tracing::warn!(error = %e, "Could not republish the Redis backlog; will retry");
                let mut kept = self.backlog.lock();
                for entry in backlog.into_iter().rev() {
                    if kept.len() == BACKLOG {
                        break;
                    }
                    if failed.contains(&entry.0) {
                        kept.push_front(entry);
                    }
                }
            }
        }
    }

    pub fn keep_for_later(&self, room: &str, payload: Vec<u8>) {
        let mut backlog = self.backlog.lock();
        if backlog.len() == BACKLOG {
            backlog.pop_front();
        }
        backlog.push_back((room.to_string(), payload));
    }

    /// Removes the given presence members, one pipeline per room.
    pub async fn remove_members(&self, members: Vec<(String, String)>) -> Result<(), FanoutError> {
        let mut pipes: HashMap<String, ::redis::Pipeline> = HashMap::new();
        for (room, m) in &members {
            pipes
                .entry(room.clone())
                .or_insert_with(::redis::pipe)
                .zrem(presence_key(room), m)
                .ignore();
        }
        let (_, error) = self
            .run_per_room("ZREM presence", pipes.into_iter().collect())
            .await;
        error.map_or(Ok(()), Err)
    }

    /// Hands one push from the subscriber connection to the hub. False when a connection
    /// of the subscriber is gone.
    pub fn on_push(&self, push: PushInfo) -> bool {
        match push.kind {
            PushKind::Disconnection => return false,
            PushKind::SMessage | PushKind::Message => {}
            // Redis drops a sharded subscription when the channel's slot moves to another
            // shard (resharding, a primary turned replica): one still wanted needs a new link.
            PushKind::SUnsubscribe => return !self.lost_wanted_channel(&push.data),
            _ => return true,
        }
        let mut data = push.data.into_iter();
        let (Some(Value::BulkString(ch)), Some(Value::BulkString(payload))) =
            (data.next(), data.next())
        else {
            tracing::warn!("Ignoring a malformed Redis message push");
            return true;
        };
        let Some(room) = String::from_utf8(ch).ok().and_then(into_room) else {
            tracing::warn!("Ignoring a message on an unknown Redis channel");
            return true;
        };
        match decode(Bytes::from(payload)) {
            Ok(env) if env.origin == self.origin => {}
            Ok(env) => {
                let event = env.event;
                // The hub's reader is gone only at the shutdown.
                let _ = self.hub.send(FromOthers::Event { room, event });
            }
            Err(e) => {
                tracing::warn!(error = %e, room = %room, "Ignoring an undecodable Redis message")
            }
        }
        true
    }

    /// Whether an unsubscribe push names a channel of a room the hub still wants.
    fn lost_wanted_channel(&self, data: &[Value]) -> bool {
        let Some(Value::BulkString(ch)) = data.first() else {
            return false;
        };
        std::str::from_utf8(ch)
            .ok()
            .and_then(room_of)
            .is_some_and(|room| self.desired.lock().contains(room))
    }
}
