//! The hub: rooms and the local connections joined to them. It hands every event to each
//! local member's queue as the SAME pre-encoded bytes, keeps each room's messages in seq order
//! (holding early arrivals until the gap fills, or catching up from the store), and keeps
//! presence.
//!
//! Events flow one way. The hub owns two channels and reads them: the commit loop hands it
//! every stored message ([`Committed`]) and the fanout every event of another task
//! ([`FromOthers`]); neither calls back into the hub. The hub's own events are delivered
//! locally and then published to the other tasks. Every task the hub starts runs under the
//! server's one [`Background`] and stops with it.
//!
//! This file is the hub's public API (connections, leave, typing, delivery, the two
//! channels' readers); the folder's other files are mapped in `lib.rs`.
//!
//! Locks: the room map (`rooms`) may be taken before a room's state, never after; `records`
//! may be taken before `conns`, never after; no lock is held across an await.

mod join;
mod lifecycle;
mod moderate;
mod presence;
mod publish;
mod reactions;
mod receipts;
mod records;
mod repair;
mod replies;
mod room;
mod send;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::background::Background;
use crate::commit::{Committed, Committer};
use crate::conn::{self, Conn, Outbound, QueueLimits};
use crate::fanout::{EventKind, Fanout, FromOthers, RoomEvent, ToHub};
use crate::metrics::Metrics;
use crate::protocol::{
    ChatMessage, ErrorCode, Refusal, ServerFrame, ServerInfo, User, validate_room,
};
use crate::store::{ConnectionRecord, Store};
pub use lifecycle::HEARTBEAT;
pub use moderate::MUTE_REFRESH;
use repair::GAP_WAIT;
use room::Room;
pub use send::{SendRefused, SendRequest};

/// Where a connection's record stands in the store.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Record {
    /// Never written (the connection has not joined a room).
    #[default]
    Never,
    /// Queued for writing, or written.
    Written,
    /// Removed, or never to be written: the connection ended.
    Removed,
}

/// Rooms and local connections.
pub struct Hub {
    store: Arc<dyn Store>,
    fanout: Box<dyn Fanout>,
    committer: Committer,
    rooms: RwLock<HashMap<String, Arc<Room>>>,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_conn: AtomicU64,
    draining: AtomicBool,
    /// Every connection's task, so the drain can wait for them to end.
    tasks: TaskTracker,
    /// Per-room queues publishing this task's messages in order (`publish`).
    lanes: publish::Lanes,
    /// Per connection that joined a room, whether its record was written (so a connection
    /// that never joined costs the store nothing) or removed (so no write follows the
    /// removal: no ghost record).
    records: Mutex<HashMap<u64, Record>>,
    /// Writes the records, in batches (`records`).
    recorder: Arc<records::Recorder>,
    /// The mutes of rooms this task checked sends in (`moderate`).
    mutes: moderate::Mutes,
    /// Read positions of the rooms this task serves (`receipts`).
    receipts: receipts::Receipts,
    /// Reactions of the rooms this task serves (`reactions`).
    reactions: reactions::Reactions,
    /// Where the hub's background work runs (stopped with the server).
    background: Background,
    pub info: ServerInfo,
    pub metrics: Arc<Metrics>,
    /// Outbound queue bounds of each connection.
    pub queue: QueueLimits,
    /// How often every connection is pinged (silence for three intervals ends it).
    pub ping_every: Duration,
}

impl Hub {
    /// Builds the hub and starts its work under `background`; `make_fanout` receives the
    /// channel over which the fanout hands the hub events of other tasks.
    pub fn new(
        store: Arc<dyn Store>,
        make_fanout: impl FnOnce(ToHub) -> anyhow::Result<Box<dyn Fanout>>,
        info: ServerInfo,
        metrics: Arc<Metrics>,
        queue: QueueLimits,
        ping_every: Duration,
        background: &Background,
    ) -> anyhow::Result<Arc<Self>> {
        let (committed_tx, committed) = mpsc::channel(crate::commit::HANDOFF);
        let (others_tx, others) = mpsc::unbounded_channel();
        let fanout = make_fanout(others_tx)?;
        let hub = Arc::new(Hub {
            committer: Committer::start(
                Arc::clone(&store),
                Arc::clone(&metrics),
                committed_tx,
                background,
            ),
            fanout,
            recorder: records::Recorder::start(Arc::clone(&store), background),
            store,
            rooms: RwLock::default(),
            conns: Mutex::default(),
            next_conn: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            tasks: TaskTracker::new(),
            lanes: publish::Lanes::default(),
            records: Mutex::default(),
            mutes: moderate::Mutes::default(),
            receipts: receipts::Receipts::default(),
            reactions: reactions::Reactions::default(),
            background: background.clone(),
            info,
            metrics,
            queue,
            ping_every,
        });
        background.spawn(Arc::clone(&hub).take_committed(committed));
        background.spawn(Arc::clone(&hub).take_from_others(others));
        hub.spawn_heartbeat();
        hub.spawn_audit();
        hub.spawn_receipts();
        hub.spawn_reactions();
        Ok(hub)
    }

    /// Reads the commit loop's channel: each stored message is delivered here, then queued
    /// for the other tasks (never waiting on the fanout); a barrier is answered once every
    /// message before it was.
    async fn take_committed(self: Arc<Self>, mut committed: mpsc::Receiver<Committed>) {
        while let Some(item) = committed.recv().await {
            match item {
                Committed::Message(message, send) => {
                    // A client span with db.system (the fanout) and the operation: X-Ray's
                    // service map draws Redis.
                    let system = self.fanout.name();
                    let publish = tracing::info_span!(
                        target: crate::telemetry::TARGET,
                        parent: &send,
                        "fanout.publish",
                        otel.kind = "client",
                        db.system = system,
                        db.operation.name = if system == "redis" { "SPUBLISH" } else { "publish" },
                    );
                    publish.in_scope(|| self.publish_committed(&message));
                }
                Committed::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Reads the fanout's channel: events of other tasks, and the catch-ups a link that
    /// came back (or a new subscription) calls for.
    async fn take_from_others(self: Arc<Self>, mut others: mpsc::UnboundedReceiver<FromOthers>) {
        while let Some(item) = others.recv().await {
            match item {
                FromOthers::Event { room, event } => {
                    if event.kind == EventKind::Receipts {
                        self.deliver_receipts(&room, &event.json);
                    }
                    if event.kind == EventKind::Reactions {
                        self.deliver_reactions(&room, &event.json);
                    }
                    self.deliver_local(&room, &event);
                }
                FromOthers::Resync => self.resync_all(),
                FromOthers::ResyncRooms(rooms) => self.resync_named(&rooms),
            }
        }
    }

    /// The connections of this task (for `rebalance`), those on their way out included
    /// until their cleanup is done ([`Conn::is_ending`]).
    pub fn connections(&self) -> Vec<Arc<Conn>> {
        self.conns.lock().values().cloned().collect()
    }

    pub fn fanout(&self) -> &dyn Fanout {
        &*self.fanout
    }

    /// Registers an authenticated connection and returns it with its outbound queue.
    pub fn connect(&self, user: User) -> (Arc<Conn>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(self.queue.frames);
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let key = format!("{}/{id}", self.info.task);
        let conn = Arc::new(Conn::new(
            id,
            key,
            user,
            tx,
            self.queue.bytes,
            Arc::clone(&self.metrics),
        ));
        self.conns.lock().insert(id, Arc::clone(&conn));
        self.metrics.connections_opened.inc();
        self.metrics.connections_open.inc();
        (conn, rx)
    }

    /// Forgets a connection whose socket ended: leaves its rooms.
    /// The record is removed before the connection leaves the map (and its task ends), so a
    /// draining task never exits with live-looking records behind it.
    pub async fn disconnect(self: &Arc<Self>, conn: &Arc<Conn>) {
        conn.mark_ending();
        if !self.conns.lock().contains_key(&conn.id) {
            return;
        }
        for room in conn.rooms() {
            self.leave_room(conn, &room, false).await;
        }
        let written = {
            let mut records = self.records.lock();
            let state = records.entry(conn.id).or_default();
            std::mem::replace(state, Record::Removed) == Record::Written
        };
        if written {
            // Queued after every write of it; returns once written.
            self.recorder.remove(&conn.key).await;
        }
        let mut records = self.records.lock();
        if self.conns.lock().remove(&conn.id).is_some() {
            self.metrics.connections_open.dec();
        }
        records.remove(&conn.id);
    }

    /// Queues the connection's record (its rooms now) for the next batch, never after its
    /// removal. Called when its rooms change: a connection is recorded from its first join
    /// on, as a member of the audience.
    fn record_connection(self: &Arc<Self>, conn: &Conn) {
        let record = ConnectionRecord {
            conn_id: conn.key.clone(),
            user_id: conn.user.id,
            rooms: conn.rooms(),
            task: self.info.task.clone(),
            color: self.info.color.clone(),
            connected_at: crate::now_ms(),
        };
        let mut records = self.records.lock();
        // Under the records lock: a disconnect that is done took it after leaving `conns`.
        if !self.conns.lock().contains_key(&conn.id) {
            return;
        }
        let state = records.entry(conn.id).or_default();
        if *state != Record::Removed {
            *state = Record::Written;
            self.recorder.put(record);
        }
    }

    fn room(&self, name: &str) -> Option<Arc<Room>> {
        self.rooms.read().get(name).cloned()
    }

    /// The room, created (and subscribed) when absent.
    fn room_or_create(self: &Arc<Self>, name: &str) -> Arc<Room> {
        if let Some(room) = self.room(name) {
            return room;
        }
        let mut rooms = self.rooms.write();
        Arc::clone(rooms.entry(name.to_string()).or_insert_with(|| {
            // Subscribing under the map lock keeps subscribe/unsubscribe calls in order.
            self.fanout.subscribe(name);
            // Mutes given while the room was not here reached no copy of this task: read
            // them now, in the background, so the first send finds them here.
            self.mutes.forget(name);
            self.refresh_mutes(name);
            Arc::new(Room {
                name: name.to_string(),
                state: Mutex::default(),
                first_load: tokio::sync::Mutex::default(),
            })
        }))
    }

    /// Removes `conn` from `room`; announces the user's departure when it was their last
    /// connection there.
    pub async fn leave(self: &Arc<Self>, conn: &Arc<Conn>, room_name: &str) -> bool {
        self.leave_room(conn, room_name, true).await
    }

    /// `leave`, re-recording the connection's rooms in the store when `record`.
    async fn leave_room(self: &Arc<Self>, conn: &Arc<Conn>, room_name: &str, record: bool) -> bool {
        if !conn.remove_room(room_name) {
            return false;
        }
        let (room, last_of_user) = {
            let mut rooms = self.rooms.write();
            let Some(room) = rooms.get(room_name).cloned() else {
                return true;
            };
            let mut st = room.state.lock();
            st.members.retain(|m| m.conn.id != conn.id);
            let last_of_user = match st.users.get_mut(&conn.user.id) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    st.users.remove(&conn.user.id);
                    st.typed.remove(&conn.user.id);
                    true
                }
                None => false,
            };
            if st.members.is_empty() {
                st.closed = true;
                rooms.remove(room_name);
                self.fanout.unsubscribe(room_name);
            }
            drop(st);
            (room, last_of_user)
        };
        if last_of_user {
            if let Err(e) = self.fanout.presence_remove(room_name, &conn.user).await {
                tracing::debug!(error = %e, "Could not remove presence");
            }
            let online = self
                .fanout
                .presence(room_name)
                .await
                .map(|m| m.len())
                .unwrap_or(0);
            self.announce(&room, &conn.user, online, false).await;
        }
        if record && !self.is_draining() {
            self.record_connection(conn);
        }
        true
    }

    /// Tells the room's other members that `conn`'s user is typing.
    pub async fn typing(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        room_name: &str,
    ) -> Result<(), Refusal> {
        validate_room(room_name)?;
        if !conn.is_in(room_name) {
            return Err(Refusal::new(
                ErrorCode::NotJoined,
                format!("join room {room_name:?} before typing in it"),
            ));
        }
        let Some(room) = self.room(room_name) else {
            return Ok(());
        };
        // A flood of `typing` reaches the room at most once per interval per user.
        if !room
            .state
            .lock()
            .may_type(conn.user.id, std::time::Instant::now())
        {
            return Ok(());
        }
        let json = ServerFrame::Typing {
            room: room_name,
            user: &conn.user,
        }
        .to_json();
        self.emit(
            &room,
            RoomEvent {
                kind: EventKind::Typing {
                    user_id: conn.user.id,
                },
                json,
            },
        )
        .await;
        Ok(())
    }

    /// A message this task made durable (or found durable on a retry): deliver locally, then
    /// queue it for the other tasks. Never waits on the fanout.
    fn publish_committed(self: &Arc<Self>, message: &ChatMessage) {
        let json = ServerFrame::Message(message).to_json();
        let event = RoomEvent {
            kind: EventKind::Message { seq: message.seq },
            json,
        };
        self.deliver_local(&message.room, &event);
        self.publish_in_order(&message.room, event);
    }

    /// Tells the room (here and on other tasks) that `user` joined or left it.
    async fn announce(self: &Arc<Self>, room: &Room, user: &User, online: usize, joined: bool) {
        let json = ServerFrame::Presence {
            room: &room.name,
            online,
            joined: joined.then_some(user),
            left: (!joined).then_some(user),
        }
        .to_json();
        let kind = EventKind::Presence { user_id: user.id };
        self.emit(room, RoomEvent { kind, json }).await;
    }

    async fn emit(self: &Arc<Self>, room: &Room, event: RoomEvent) {
        self.deliver_local(&room.name, &event);
        if let Err(e) = self.fanout.publish(&room.name, &event).await {
            tracing::debug!(error = %e, "Could not publish event");
        }
    }

    /// In [`presence::SUMMARY_EVERY`], sends the room's gathered presence changes as one frame.
    fn send_presence_summary(self: &Arc<Self>, room_name: &str) {
        let hub = Arc::clone(self);
        let room_name = room_name.to_string();
        self.background.spawn(async move {
            tokio::time::sleep(presence::SUMMARY_EVERY).await;
            let Some(room) = hub.room(&room_name) else {
                return;
            };
            let mut st = room.state.lock();
            if let Some(frame) = st.presence.take_frame(&room_name) {
                st.fan_to(&frame, |_| true);
            }
        });
    }

    fn deliver_local(self: &Arc<Self>, room_name: &str, event: &RoomEvent) {
        let Some(room) = self.room(room_name) else {
            return;
        };
        // Encoded once for every recipient; a presence change gathered into a summary never is.
        let frame = || conn::text_frame(&event.json);
        let mut gap = false;
        let delivered = {
            let mut st = room.state.lock();
            match event.kind {
                EventKind::Message { seq } => {
                    let n = st.offer(seq, frame());
                    gap = st.has_gap() && !st.repairing;
                    n
                }
                EventKind::Presence { user_id } => {
                    let members = st.members.len();
                    match st.presence.gather(members, &event.json) {
                        Some(first) => {
                            if first {
                                self.send_presence_summary(room_name);
                            }
                            0
                        }
                        None => st.fan_to(&frame(), |m| m.conn.user.id != user_id),
                    }
                }
                EventKind::Typing { user_id } => st.fan_to(&frame(), |m| m.conn.user.id != user_id),
                EventKind::Deleted { .. } | EventKind::Muted { .. } => {
                    self.deliver_moderation(room_name, &mut st, event, &frame())
                }
                EventKind::Receipts | EventKind::Reactions => st.fan_to(&frame(), |_| true),
            }
        };
        self.metrics.frames_delivered.inc_by(delivered);
        if gap {
            self.repair(&room, GAP_WAIT, GAP_WAIT * 2);
        }
    }

    /// The `GET /api/rooms/{room}` view: last seq and presence across tasks.
    pub async fn room_info(self: &Arc<Self>, room: &str) -> Result<(u64, Vec<User>), Refusal> {
        validate_room(room)?;
        let last = self.store.last_seq(room).await?;
        let members = self.fanout.presence(room).await?;
        Ok((last, members))
    }
}
