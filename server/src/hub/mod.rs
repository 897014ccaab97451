//! The hub: rooms and the local connections joined to them. It hands every event to each
//! local member's queue as the SAME pre-encoded bytes, keeps each room's messages in seq order
//! (holding early arrivals until the gap fills, or catching up from the store), and keeps
//! presence. Events from other tasks arrive through [`FanoutSink`]; the hub's own events are
//! delivered locally and then published to the other tasks.
//!
//! The folder: this file is the hub's public API (connections, join, leave, send, typing,
//! delivery); [`room`] the pure per-room state machine; [`repair`] gap repair from the store;
//! [`lifecycle`] heartbeat and drain.
//!
//! Locks: the room map (`rooms`) may be taken before a room's state, never after; no lock is
//! held across an await.

mod lifecycle;
mod repair;
mod room;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::commit::{CommitSink, Committer};
use crate::conn::{self, Conn, Outbound, QueueLimits};
use crate::fanout::{EventKind, Fanout, FanoutSink, RoomEvent};
use crate::metrics::Metrics;
use crate::protocol::{
    Attachment, ChatMessage, DEFAULT_HISTORY, ErrorCode, MAX_JOIN_BYTES, MAX_JOIN_CATCH_UP,
    MAX_ROOMS_PER_CONNECTION, Refusal, ServerFrame, ServerInfo, User, validate_client_msg_id,
    validate_room, validate_text,
};
use crate::store::{ConnectionRecord, HistoryQuery, NewMessage, Store};
pub use lifecycle::HEARTBEAT;
use repair::GAP_WAIT;
use room::{Member, Room};

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
    /// Weak self for background tasks the hub spawns.
    me: std::sync::Weak<Hub>,
    pub info: ServerInfo,
    pub metrics: Arc<Metrics>,
    /// Outbound queue bounds of each connection.
    pub queue: QueueLimits,
    /// How often every connection is pinged (silence for three intervals ends it).
    pub ping_every: Duration,
}

impl Hub {
    /// Builds the hub; `make_fanout` receives the sink through which the fanout reaches it.
    pub fn new(
        store: Arc<dyn Store>,
        make_fanout: impl FnOnce(crate::fanout::SinkRef) -> Box<dyn Fanout>,
        info: ServerInfo,
        metrics: Arc<Metrics>,
        queue: QueueLimits,
        ping_every: Duration,
    ) -> Arc<Self> {
        let hub = Arc::new_cyclic(|me: &std::sync::Weak<Hub>| {
            let sink: crate::fanout::SinkRef = me.clone();
            let commit_sink: crate::commit::CommitSinkRef = me.clone();
            Hub {
                committer: Committer::start(Arc::clone(&store), Arc::clone(&metrics), commit_sink),
                fanout: make_fanout(sink),
                store,
                rooms: RwLock::default(),
                conns: Mutex::default(),
                next_conn: AtomicU64::new(1),
                draining: AtomicBool::new(false),
                tasks: TaskTracker::new(),
                me: me.clone(),
                info,
                metrics,
                queue,
                ping_every,
            }
        });
        hub.spawn_heartbeat();
        hub
    }

    /// The live connections of this task (for `rebalance`).
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
        self.record_connection(&conn);
        (conn, rx)
    }

    /// Forgets a connection whose socket ended: leaves its rooms.
    /// The record is removed before the connection leaves the map (and its task ends), so a
    /// draining task never exits with live-looking records behind it.
    pub async fn disconnect(&self, conn: &Arc<Conn>) {
        if !self.conns.lock().contains_key(&conn.id) {
            return;
        }
        for room in conn.rooms() {
            self.leave_room(conn, &room, false).await;
        }
        if let Err(e) = self.store.remove_connection(&conn.key).await {
            tracing::debug!(error = %e, "Could not remove connection record");
        }
        if self.conns.lock().remove(&conn.id).is_some() {
            self.metrics.connections_open.dec();
        }
    }

    fn record_connection(&self, conn: &Conn) {
        let record = ConnectionRecord {
            conn_id: conn.key.clone(),
            user_id: conn.user.id,
            rooms: conn.rooms(),
            task: self.info.task.clone(),
            color: self.info.color.clone(),
            connected_at: crate::now_ms(),
        };
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            if let Err(e) = store.put_connection(&record).await {
                tracing::debug!(error = %e, "Could not record connection");
            }
        });
    }

    fn room(&self, name: &str) -> Option<Arc<Room>> {
        self.rooms.read().get(name).cloned()
    }

    /// The room, created (and subscribed) when absent.
    fn room_or_create(&self, name: &str) -> Arc<Room> {
        if let Some(room) = self.room(name) {
            return room;
        }
        let mut rooms = self.rooms.write();
        Arc::clone(rooms.entry(name.to_string()).or_insert_with(|| {
            // Subscribing under the map lock keeps subscribe/unsubscribe calls in order.
            self.fanout.subscribe(name);
            Arc::new(Room {
                name: name.to_string(),
                state: Mutex::default(),
            })
        }))
    }

    /// Joins `conn` to `room` and queues the `joined` frame; with `after`, every message
    /// above it (up to the catch-up limits), else the latest page. A room the connection is
    /// already in is answered from memory ([`Hub::rejoin`]); a connection in
    /// [`MAX_ROOMS_PER_CONNECTION`] rooms is refused `too_many_rooms`.
    pub async fn join(
        &self,
        conn: &Arc<Conn>,
        room_name: &str,
        after: Option<u64>,
    ) -> Result<(), Refusal> {
        validate_room(room_name)?;
        if !conn.add_room(room_name, MAX_ROOMS_PER_CONNECTION)? {
            return self.rejoin(conn, room_name).await;
        }
        let result = self.join_inner(conn, room_name, after).await;
        if result.is_err() {
            conn.remove_room(room_name);
        }
        result
    }

    /// A repeated `join`: the room's current seq and members, no messages and no store read
    /// (the connection already receives every message live), so repeating it costs little.
    async fn rejoin(&self, conn: &Arc<Conn>, room_name: &str) -> Result<(), Refusal> {
        let members = self.fanout.presence(room_name).await?;
        let last_seq = self
            .room(room_name)
            .and_then(|r| r.state.lock().last_seq)
            .unwrap_or(0);
        conn.send(&ServerFrame::Joined {
            room: room_name,
            last_seq,
            online: members.len(),
            members: &members,
            messages: &[],
            has_more: false,
        });
        Ok(())
    }

    async fn join_inner(
        &self,
        conn: &Arc<Conn>,
        room_name: &str,
        after: Option<u64>,
    ) -> Result<(), Refusal> {
        self.fanout.presence_add(room_name, &conn.user).await?;
        let members = self.fanout.presence(room_name).await?;
        loop {
            let room = self.room_or_create(room_name);
            let store_last = self.store.last_seq(room_name).await?;
            let query = match after {
                Some(a) => HistoryQuery {
                    before: None,
                    after: Some(a),
                    limit: MAX_JOIN_CATCH_UP,
                },
                None => HistoryQuery {
                    before: None,
                    after: None,
                    limit: DEFAULT_HISTORY,
                },
            };
            let page = self.store.history(room_name, query).await?;
            let catching_up = after.is_some();
            let (frame, seen) =
                joined_frame(room_name, &members, page, catching_up, store_last).await;
            let paged = seen.1;
            let seen = seen.0;
            let first_of_user;
            {
                let mut st = room.state.lock();
                if st.closed {
                    continue;
                }
                if st.last_seq.is_none() {
                    st.last_seq = Some(store_last);
                    st.drain_pending(false);
                }
                // The room delivered past what this read saw: read again so nothing is missed.
                if st.last_seq.unwrap_or(0) > seen && !paged {
                    continue;
                }
                conn.push(frame);
                st.members.push(Member {
                    conn: Arc::clone(conn),
                    floor: seen,
                });
                let count = st.users.entry(conn.user.id).or_insert(0);
                *count += 1;
                first_of_user = *count == 1;
            }
            self.metrics.joins.inc();
            self.record_connection(conn);
            if first_of_user {
                let online = members.len().max(1);
                self.announce(&room, &conn.user, online, true).await;
            }
            return Ok(());
        }
    }

    /// Removes `conn` from `room`; announces the user's departure when it was their last
    /// connection there.
    pub async fn leave(&self, conn: &Arc<Conn>, room_name: &str) -> bool {
        self.leave_room(conn, room_name, true).await
    }

    /// `leave`, re-recording the connection's rooms in the store when `record`.
    async fn leave_room(&self, conn: &Arc<Conn>, room_name: &str, record: bool) -> bool {
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

    /// Accepts a `send`: validates it and queues it for the group commit. The ack (or an
    /// `unavailable` error) follows when the store has answered. `attachment` was checked by
    /// the caller (its signed token).
    pub fn send(
        &self,
        conn: &Arc<Conn>,
        room: String,
        client_msg_id: String,
        text: String,
        attachment: Option<Attachment>,
    ) -> Result<(), Refusal> {
        validate_room(&room)?;
        validate_client_msg_id(&client_msg_id)?;
        if !conn.is_in(&room) {
            return Err(Refusal::new(
                ErrorCode::NotJoined,
                format!("join room {room:?} before sending to it"),
            ));
        }
        validate_text(&text, attachment.is_some())?;
        let message = NewMessage {
            room,
            user: conn.user.clone(),
            client_msg_id,
            text,
            ts: crate::now_ms(),
            attachment: attachment.map(Box::new),
        };
        self.committer.submit(Arc::clone(conn), message)
    }

    /// Tells the room's other members that `conn`'s user is typing.
    pub async fn typing(&self, conn: &Arc<Conn>, room_name: &str) -> Result<(), Refusal> {
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

    /// A message this task made durable: deliver locally, then publish to the other tasks.
    async fn publish_committed(&self, message: &ChatMessage) {
        let json = ServerFrame::Message(message).to_json();
        let event = RoomEvent {
            kind: EventKind::Message { seq: message.seq },
            json,
        };
        self.deliver_local(&message.room, &event);
        if let Err(e) = self.fanout.publish(&message.room, &event).await {
            // Other tasks catch up from the store when their link returns.
            tracing::debug!(error = %e, "Could not publish message");
        }
    }

    /// Tells the room (here and on other tasks) that `user` joined or left it.
    async fn announce(&self, room: &Room, user: &User, online: usize, joined: bool) {
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

    async fn emit(&self, room: &Room, event: RoomEvent) {
        self.deliver_local(&room.name, &event);
        if let Err(e) = self.fanout.publish(&room.name, &event).await {
            tracing::debug!(error = %e, "Could not publish event");
        }
    }

    fn deliver_local(&self, room_name: &str, event: &RoomEvent) {
        let Some(room) = self.room(room_name) else {
            return;
        };
        let frame = conn::text_frame(&event.json);
        let delivered = {
            let mut st = room.state.lock();
            match event.kind {
                EventKind::Message { seq } => {
                    let n = st.offer(seq, frame, false);
                    if st.gap_since.is_some() && !st.repairing {
                        st.repairing = true;
                        self.spawn_repair(Arc::clone(&room), GAP_WAIT, GAP_WAIT * 2);
                    }
                    n
                }
                EventKind::Presence { user_id } | EventKind::Typing { user_id } => {
                    st.fan_to(&frame, |m| m.conn.user.id != user_id)
                }
            }
        };
        self.metrics.frames_delivered.inc_by(delivered);
    }

    /// The `GET /api/rooms/{room}` view: last seq and presence across tasks.
    pub async fn room_info(&self, room: &str) -> Result<(u64, Vec<User>), Refusal> {
        validate_room(room)?;
        let last = self.store.last_seq(room).await?;
        let members = self.fanout.presence(room).await?;
        Ok((last, members))
    }
}

/// The `joined` frame for a page read at `store_last`, and the seq the member has seen with it
/// (and whether the client pages the rest over HTTP). Sizing and serialising up to 500 messages
/// is CPU work of milliseconds to tens of them: it runs on the blocking pool, so a flood of joins
/// never holds the workers that carry everyone else's acks.
async fn joined_frame(
    room: &str,
    members: &[User],
    mut page: crate::store::HistoryPage,
    catching_up: bool,
    store_last: u64,
) -> (bytes::Bytes, (u64, bool)) {
    let room = room.to_string();
    let members = members.to_vec();
    let build = move || {
        if catching_up && truncate_to_bytes(&mut page.messages, MAX_JOIN_BYTES) {
            page.has_more = true;
        }
        let paged = page.has_more && catching_up;
        // With more to page, the client catches up over REST; deliver live from here on.
        let seen = if paged {
            page.messages.last().map_or(store_last, |m| m.seq)
        } else {
            store_last.max(page.messages.last().map_or(0, |m| m.seq))
        };
        let frame = conn::server_frame(&ServerFrame::Joined {
            room: &room,
            last_seq: store_last.max(seen),
            online: members.len(),
            members: &members,
            messages: &page.messages,
            has_more: paged,
        });
        (frame, (seen, paged))
    };
    match tokio::task::spawn_blocking(build).await {
        Ok(built) => built,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Keeps the first messages whose JSON fits in `max` bytes (at least one); true when any
/// were dropped.
fn truncate_to_bytes(messages: &mut Vec<ChatMessage>, max: usize) -> bool {
    let mut total = 0;
    let keep = messages
        .iter()
        .position(|m| {
            total += serde_json::to_vec(m).map_or(0, |v| v.len() + 1);
            total > max
        })
        .map_or(messages.len(), |i| i.max(1));
    let dropped = keep < messages.len();
    messages.truncate(keep);
    dropped
}

#[async_trait::async_trait]
impl CommitSink for Hub {
    async fn committed(&self, message: &ChatMessage) {
        self.publish_committed(message).await;
    }
}

impl FanoutSink for Hub {
    fn deliver(&self, room: &str, event: RoomEvent) {
        self.deliver_local(room, &event);
    }

    fn resync(&self) {
        self.resync_all();
    }

    fn resync_rooms(&self, rooms: &[String]) {
        self.resync_named(rooms);
    }
}
