//! The hub: rooms and the local connections joined to them. It hands every event to each
//! local member's queue as the SAME pre-encoded bytes, keeps each room's messages in seq order
//! (holding early arrivals until the gap fills, or catching up from the store), and keeps
//! presence. Events from other tasks arrive through [`FanoutSink`]; the hub's own events are
//! delivered locally and then published to the other tasks.
//!
//! Locks: the room map (`rooms`) may be taken before a room's state, never after; no lock is
//! held across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;

use crate::commit::Committer;
use crate::conn::{self, Conn, Outbound};
use crate::fanout::{EventKind, Fanout, FanoutSink, RoomEvent};
use crate::metrics::Metrics;
use crate::protocol::{
    ChatMessage, DEFAULT_HISTORY, ErrorCode, Invalid, MAX_JOIN_CATCH_UP, ServerFrame, ServerInfo,
    User, validate_client_msg_id, validate_room, validate_text,
};
use crate::store::{ConnectionRecord, HistoryQuery, NewMessage, Store};

/// How long an out-of-order message waits for the missing seq before the hub asks the store.
const GAP_WAIT: Duration = Duration::from_millis(150);
/// After this long a seq still missing from the store counts as never written (a reserved seq
/// whose write failed) and is skipped.
const HOLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often live connections are reported to the store and pinged.
pub const HEARTBEAT: Duration = Duration::from_secs(25);

/// One local member of a room.
struct Member {
    conn: Arc<Conn>,
    /// Messages up to this seq were in the member's `joined` frame: skip them.
    floor: u64,
}

#[derive(Default)]
struct RoomState {
    members: Vec<Member>,
    /// user id -> local connections of that user in the room.
    users: HashMap<u64, usize>,
    /// Highest seq delivered in order; `None` until the first join reads it from the store.
    last_seq: Option<u64>,
    /// Messages that arrived ahead of a missing seq.
    pending: BTreeMap<u64, Bytes>,
    /// When the current gap opened.
    gap_since: Option<Instant>,
    /// A repair task is scheduled for the current gap.
    repairing: bool,
    /// Removed from the map (last member left): joins must use a new room.
    closed: bool,
}

struct Room {
    name: String,
    state: Mutex<RoomState>,
}

impl RoomState {
    /// Hands message `seq` to every member above its floor. Returns how many got it.
    fn fan(&self, seq: u64, frame: &Bytes) -> u64 {
        self.fan_to(frame, |m| seq > m.floor)
    }

    /// Hands `frame` to every member `to` picks. Returns how many got it.
    fn fan_to(&self, frame: &Bytes, to: impl Fn(&Member) -> bool) -> u64 {
        let mut n = 0;
        for m in self.members.iter().filter(|m| to(m)) {
            if m.conn.push(frame.clone()) {
                n += 1;
            }
        }
        n
    }

    /// Delivers `seq` if it is next (or `skip_holes`), else holds it. Then drains held
    /// messages that became next.
    fn offer(&mut self, seq: u64, frame: Bytes, skip_holes: bool) -> u64 {
        let Some(last) = self.last_seq else {
            self.pending.insert(seq, frame);
            return 0;
        };
        if seq <= last {
            return 0;
        }
        let mut n = 0;
        if seq == last + 1 || skip_holes {
            n += self.fan(seq, &frame);
            self.last_seq = Some(seq);
        } else {
            self.pending.insert(seq, frame);
        }
        n + self.drain_pending(skip_holes)
    }

    fn drain_pending(&mut self, skip_holes: bool) -> u64 {
        let mut n = 0;
        while let Some(entry) = self.pending.first_entry() {
            let last = self.last_seq.unwrap_or(0);
            let seq = *entry.key();
            if seq <= last {
                entry.remove();
            } else if seq == last + 1 || skip_holes {
                let frame = entry.remove();
                n += self.fan(seq, &frame);
                self.last_seq = Some(seq);
            } else {
                break;
            }
        }
        if self.pending.is_empty() {
            self.gap_since = None;
        } else if self.gap_since.is_none() {
            self.gap_since = Some(Instant::now());
        }
        n
    }
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
    /// Weak self for background tasks the hub spawns.
    me: std::sync::Weak<Hub>,
    pub info: ServerInfo,
    pub metrics: Arc<Metrics>,
    /// Outbound queue capacity of each connection.
    pub queue_capacity: usize,
}

impl Hub {
    /// Builds the hub; `make_fanout` receives the sink through which the fanout reaches it.
    pub fn new(
        store: Arc<dyn Store>,
        make_fanout: impl FnOnce(crate::fanout::SinkRef) -> Box<dyn Fanout>,
        info: ServerInfo,
        metrics: Arc<Metrics>,
        queue_capacity: usize,
    ) -> Arc<Self> {
        let hub = Arc::new_cyclic(|me: &std::sync::Weak<Hub>| {
            let sink: crate::fanout::SinkRef = me.clone();
            Hub {
                committer: Committer::start(me.clone()),
                fanout: make_fanout(sink),
                store,
                rooms: RwLock::default(),
                conns: Mutex::default(),
                next_conn: AtomicU64::new(1),
                draining: AtomicBool::new(false),
                me: me.clone(),
                info,
                metrics,
                queue_capacity,
            }
        });
        hub.spawn_heartbeat();
        hub
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn fanout(&self) -> &dyn Fanout {
        &*self.fanout
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Registers an authenticated connection and returns it with its outbound queue.
    pub fn connect(&self, user: User) -> (Arc<Conn>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let key = format!("{}/{id}", self.info.task);
        let conn = Arc::new(Conn::new(id, key, user, tx, Arc::clone(&self.metrics)));
        self.conns.lock().insert(id, Arc::clone(&conn));
        self.metrics.connections_opened.inc();
        self.metrics.connections_open.inc();
        self.record_connection(&conn);
        (conn, rx)
    }

    /// Forgets a connection whose socket ended: leaves its rooms.
    /// The record is removed before the connection leaves the map, so a draining task
    /// (which waits for the map to empty) never exits with live-looking records behind it.
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
    /// above it (up to the catch-up limit), else the latest page.
    pub async fn join(
        &self,
        conn: &Arc<Conn>,
        room_name: &str,
        after: Option<u64>,
    ) -> Result<(), Invalid> {
        validate_room(room_name)?;
        let newly = conn.add_room(room_name);
        let result = self.join_inner(conn, room_name, after, newly).await;
        if result.is_err() && newly {
            conn.remove_room(room_name);
        }
        result
    }

    async fn join_inner(
        &self,
        conn: &Arc<Conn>,
        room_name: &str,
        after: Option<u64>,
        newly: bool,
    ) -> Result<(), Invalid> {
        if newly {
            self.fanout
                .presence_add(room_name, &conn.user)
                .await
                .map_err(|e| unavailable(&e))?;
        }
        let members = self
            .fanout
            .presence(room_name)
            .await
            .map_err(|e| unavailable(&e))?;
        loop {
            let room = self.room_or_create(room_name);
            let store_last = self
                .store
                .last_seq(room_name)
                .await
                .map_err(|e| unavailable(&e))?;
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
            let page = self
                .store
                .history(room_name, query)
                .await
                .map_err(|e| unavailable(&e))?;
            // With more to page, the client catches up over REST; deliver live from here on.
            let seen = if page.has_more && after.is_some() {
                page.messages.last().map_or(store_last, |m| m.seq)
            } else {
                store_last.max(page.messages.last().map_or(0, |m| m.seq))
            };
            let frame = conn::text_frame(
                &ServerFrame::Joined {
                    room: room_name,
                    last_seq: store_last.max(seen),
                    online: members.len(),
                    members: &members,
                    messages: &page.messages,
                    has_more: page.has_more && after.is_some(),
                }
                .to_json(),
            );
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
                if st.last_seq.unwrap_or(0) > seen && !(page.has_more && after.is_some()) {
                    continue;
                }
                conn.push(frame);
                if !newly {
                    // A repeated join refreshes the client's view; membership is unchanged.
                    return Ok(());
                }
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
    /// `unavailable` error) follows when the store has answered.
    pub fn send(
        &self,
        conn: &Arc<Conn>,
        room: String,
        client_msg_id: String,
        text: String,
    ) -> Result<(), Invalid> {
        validate_room(&room)?;
        validate_client_msg_id(&client_msg_id)?;
        if !conn.is_in(&room) {
            return Err(Invalid::new(
                ErrorCode::NotJoined,
                format!("join room {room:?} before sending to it"),
            ));
        }
        validate_text(&text)?;
        let message = NewMessage {
            room,
            user: conn.user.clone(),
            client_msg_id,
            text,
            ts: crate::now_ms(),
        };
        self.committer.submit(Arc::clone(conn), message)
    }

    /// Tells the room's other members that `conn`'s user is typing.
    pub async fn typing(&self, conn: &Arc<Conn>, room_name: &str) -> Result<(), Invalid> {
        validate_room(room_name)?;
        if !conn.is_in(room_name) {
            return Err(Invalid::new(
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
    pub(crate) async fn committed(&self, message: &ChatMessage) {
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
                        self.spawn_repair(Arc::clone(&room));
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

    /// Catches a room up from the store until no gap is left; skips seqs that stay missing
    /// longer than [`HOLE_TIMEOUT`].
    fn spawn_repair(&self, room: Arc<Room>) {
        let Some(hub) = self.me.upgrade() else { return };
        tokio::spawn(async move {
            let mut wait = GAP_WAIT;
            loop {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
                if hub.catch_up(&room).await {
                    break;
                }
            }
        });
    }

    /// Reads the store after the room's last delivered seq and delivers what it finds.
    /// Returns true when the room has no gap left (and clears `repairing`).
    async fn catch_up(&self, room: &Arc<Room>) -> bool {
        loop {
            let Some(last) = room.state.lock().last_seq else {
                room.state.lock().repairing = false;
                return true;
            };
            let query = HistoryQuery {
                before: None,
                after: Some(last),
                limit: MAX_JOIN_CATCH_UP,
            };
            let page = match self.store.history(&room.name, query).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "Catch-up read failed; retrying");
                    return false;
                }
            };
            let mut st = room.state.lock();
            if st.closed {
                st.repairing = false;
                return true;
            }
            let skip_holes = st.gap_since.is_some_and(|t| t.elapsed() >= HOLE_TIMEOUT);
            let mut n = 0;
            for m in &page.messages {
                let frame = conn::text_frame(&ServerFrame::Message(m).to_json());
                n += st.offer(m.seq, frame, skip_holes);
            }
            if skip_holes {
                n += st.drain_pending(true);
            }
            self.metrics.frames_delivered.inc_by(n);
            if page.has_more {
                continue;
            }
            let done = st.pending.is_empty();
            if done {
                st.repairing = false;
            }
            return done;
        }
    }

    /// The `GET /api/rooms/{room}` view: last seq and presence across tasks.
    pub async fn room_info(&self, room: &str) -> Result<(u64, Vec<User>), Invalid> {
        validate_room(room)?;
        let last = self
            .store
            .last_seq(room)
            .await
            .map_err(|e| unavailable(&e))?;
        let members = self
            .fanout
            .presence(room)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok((last, members))
    }

    fn spawn_heartbeat(&self) {
        let me = self.me.clone();
        tokio::spawn(async move {
            let ping = conn::ping_frame();
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(hub) = me.upgrade() else { return };
                let conns: Vec<Arc<Conn>> = hub.conns.lock().values().cloned().collect();
                for c in &conns {
                    c.push(ping.clone());
                }
                let keys: Vec<String> = conns.iter().map(|c| c.key.clone()).collect();
                if !keys.is_empty()
                    && let Err(e) = hub.store.touch_connections(&keys).await
                {
                    tracing::debug!(error = %e, "Connection heartbeat failed");
                }
                hub.metrics
                    .fanout_link_up
                    .set(i64::from(hub.fanout.is_ready()));
            }
        });
    }

    /// Drains the task: refuses new connections, sends every connection `reconnect` then a
    /// 1012 close, spread evenly over `window`, waits for them to go, finishes pending sends
    /// and flushes the store.
    pub async fn drain(&self, window: Duration) {
        self.draining.store(true, Ordering::Relaxed);
        self.metrics.draining.set(1);
        let conns: Vec<Arc<Conn>> = self.conns.lock().values().cloned().collect();
        tracing::info!(
            connections = conns.len(),
            window_secs = window.as_secs_f64(),
            "Draining"
        );
        let start = tokio::time::Instant::now();
        let step = window
            .checked_div(conns.len().max(1) as u32)
            .unwrap_or_default();
        let retry_after_ms = u64::try_from(window.as_millis())
            .unwrap_or(u64::MAX)
            .min(5_000);
        let frame = conn::text_frame(
            &ServerFrame::Reconnect {
                reason: "draining",
                retry_after_ms: retry_after_ms / 10,
            }
            .to_json(),
        );
        for (i, c) in conns.iter().enumerate() {
            tokio::time::sleep_until(start + step * i as u32).await;
            c.push_then_close(frame.clone(), crate::protocol::close::DRAINING);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.conns.lock().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for c in self.conns.lock().values() {
            c.kill(crate::protocol::close::DRAINING);
        }
        self.committer.finish().await;
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "Store flush failed while draining");
        }
        self.fanout.shutdown().await;
        tracing::info!("Drained");
    }
}

fn unavailable(e: &dyn std::fmt::Display) -> Invalid {
    Invalid::new(ErrorCode::Unavailable, e.to_string())
}

impl FanoutSink for Hub {
    fn deliver(&self, room: &str, event: RoomEvent) {
        self.deliver_local(room, &event);
    }

    fn resync(&self) {
        let rooms: Vec<Arc<Room>> = self.rooms.read().values().cloned().collect();
        for room in rooms {
            let start = {
                let mut st = room.state.lock();
                let start = !st.repairing;
                st.repairing = true;
                if st.gap_since.is_none() {
                    st.gap_since = Some(Instant::now());
                }
                start
            };
            if start {
                let Some(hub) = self.me.upgrade() else { return };
                tokio::spawn(async move {
                    let mut wait = Duration::from_millis(20);
                    while !hub.catch_up(&room).await {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(1));
                    }
                    room.state.lock().gap_since = None;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(floor: u64) -> (Member, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(64);
        let user = User {
            id: 1,
            nickname: "Al".into(),
            avatar: "fox".into(),
        };
        let conn = Arc::new(Conn::new(1, "t/1".into(), user, tx, Arc::default()));
        (Member { conn, floor }, rx)
    }

    fn seqs(rx: &mut mpsc::Receiver<Outbound>) -> Vec<u8> {
        let mut out = Vec::new();
        while let Ok(Outbound::Frame(f)) = rx.try_recv() {
            out.push(*f.last().unwrap());
        }
        out
    }

    fn frame(seq: u64) -> Bytes {
        Bytes::from(vec![u8::try_from(seq).unwrap()])
    }

    #[test]
    fn early_messages_wait_for_the_gap_and_leave_in_order() {
        let (m, mut rx) = member(0);
        let mut st = RoomState {
            members: vec![m],
            last_seq: Some(0),
            ..Default::default()
        };
        st.offer(2, frame(2), false);
        st.offer(3, frame(3), false);
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
        assert!(st.gap_since.is_some());
        st.offer(1, frame(1), false);
        assert_eq!(seqs(&mut rx), vec![1, 2, 3]);
        assert!(st.gap_since.is_none());
        // Repeats are dropped.
        st.offer(2, frame(2), false);
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
    }

    #[test]
    fn a_hole_is_skipped_only_when_told() {
        let (m, mut rx) = member(0);
        let mut st = RoomState {
            members: vec![m],
            last_seq: Some(4),
            ..Default::default()
        };
        st.offer(6, frame(6), false);
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
        st.drain_pending(true);
        assert_eq!(seqs(&mut rx), vec![6]);
        assert_eq!(st.last_seq, Some(6));
    }

    #[test]
    fn a_member_skips_what_its_joined_frame_held() {
        let (m, mut rx) = member(7);
        let mut st = RoomState {
            members: vec![m],
            last_seq: Some(5),
            ..Default::default()
        };
        for seq in 6..=9 {
            st.offer(seq, frame(seq), false);
        }
        assert_eq!(seqs(&mut rx), vec![8, 9]);
    }

    #[test]
    fn before_the_room_knows_its_seq_everything_waits() {
        let (m, mut rx) = member(0);
        let mut st = RoomState {
            members: vec![m],
            ..Default::default()
        };
        st.offer(3, frame(3), false);
        st.offer(4, frame(4), false);
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
        st.last_seq = Some(3);
        st.drain_pending(false);
        assert_eq!(seqs(&mut rx), vec![4]);
    }
}
