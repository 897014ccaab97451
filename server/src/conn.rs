//! One client connection as the rest of the server sees it: who it is, its queue of
//! pre-encoded frames (bounded in frames and in bytes), and how to close it. The socket itself
//! lives in [`crate::ws`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};

use bytes::Bytes;
use fastwebsockets::{Frame, Payload};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::protocol::{Refusal, ServerFrame, User};

/// What the writer task sends next.
#[derive(Debug)]
pub enum Outbound {
    /// A complete, already encoded WebSocket frame (shared by every recipient).
    Frame(Bytes),
    /// Send a close frame with this code, then stop.
    Close(u16),
}

/// How much one connection's outbound queue may hold before its client counts as too slow.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    pub frames: usize,
    pub bytes: usize,
}

/// A connected, authenticated client.
pub struct Conn {
    /// Unique within this task.
    pub id: u64,
    /// Unique across tasks (`{task}/{id}`), the key of its store record.
    pub key: String,
    pub user: User,
    tx: mpsc::Sender<Outbound>,
    /// Bytes queued and not yet taken by the writer, and the most allowed.
    queued_bytes: AtomicUsize,
    max_queued_bytes: usize,
    /// Cancelled when the connection must end now (slow reader, draining, peer gone).
    cancel: CancellationToken,
    /// Close code to send when cancelled.
    close_code: AtomicU16,
    /// On its way out: a close queued, or its socket ended (see [`Conn::is_ending`]).
    ending: AtomicBool,
    /// Rooms joined, in join order.
    rooms: Mutex<Vec<String>>,
    /// The moderator, when `hello` carried a valid moderator credential.
    moderator: std::sync::OnceLock<crate::moderator::Moderator>,
    metrics: Arc<Metrics>,
}

impl Conn {
    pub fn new(
        id: u64,
        key: String,
        user: User,
        tx: mpsc::Sender<Outbound>,
        max_queued_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            id,
            key,
            user,
            tx,
            queued_bytes: AtomicUsize::new(0),
            max_queued_bytes,
            cancel: CancellationToken::new(),
            close_code: AtomicU16::new(crate::protocol::close::NORMAL),
            ending: AtomicBool::new(false),
            rooms: Mutex::new(Vec::new()),
            moderator: std::sync::OnceLock::new(),
            metrics,
        }
    }

    /// Marks the connection as a moderator's (set once, right after `hello`).
    pub fn set_moderator(&self, moderator: crate::moderator::Moderator) {
        let _ = self.moderator.set(moderator);
    }

    /// The moderator's name, while the connection holds a moderator credential that has not
    /// expired (an open connection loses its rights when its credential ends).
    pub fn moderator(&self) -> Option<&str> {
        self.moderator
            .get()
            .filter(|m| m.expires_ms > crate::now_ms())
            .map(|m| m.name.as_str())
    }

    /// Queues a frame. A full queue (in frames or in bytes) means the client reads too
    /// slowly: it is closed with 1008 and `false` returned; the caller carries on with
    /// everyone else.
    pub fn push(&self, frame: Bytes) -> bool {
        let len = frame.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if before + len > self.max_queued_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.too_slow();
            return false;
        }
        match self.tx.try_send(Outbound::Frame(frame)) {
            Ok(()) => true,
            Err(e) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    self.too_slow();
                }
                false
            }
        }
    }

    fn too_slow(&self) {
        if !self.cancel.is_cancelled() {
            self.metrics.slow_consumers_closed.inc();
        }
        self.kill(crate::protocol::close::POLICY);
    }

    /// The writer took `len` bytes off the queue.
    pub fn taken(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
    }

    /// Queues one server frame (see [`Conn::push`]).
    pub fn send(&self, frame: &ServerFrame<'_>) -> bool {
        self.push(server_frame(frame))
    }

    /// Queues the `error` frame of `refusal`; `client_msg_id` names a refused send.
    pub fn refuse(&self, refusal: &Refusal, client_msg_id: Option<&str>) -> bool {
        self.send(&refusal.frame(client_msg_id))
    }

    /// Queues `frame` then a close with `code`, so the client reads the frame first; closes at
    /// once when the queue has no room.
    pub fn push_then_close(&self, frame: Bytes, code: u16) {
        self.mark_ending();
        let len = frame.len();
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if self.tx.try_send(Outbound::Frame(frame)).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.kill(code);
        } else if self.tx.try_send(Outbound::Close(code)).is_err() {
            self.kill(code);
        }
    }

    /// Ends the connection now with `code`, dropping whatever is queued.
    pub fn kill(&self, code: u16) {
        if !self.cancel.is_cancelled() {
            self.close_code.store(code, Ordering::Relaxed);
            self.cancel.cancel();
        }
    }

    /// Marks the connection as on its way out (its socket ended; its cleanup follows).
    pub fn mark_ending(&self) {
        self.ending.store(true, Ordering::Relaxed);
    }

    /// Whether the connection is on its way out: a close is queued, it was killed, or its
    /// socket ended. Its cleanup (leaving rooms, deleting its store record) can take a while
    /// on a slow store; it no longer counts as live meanwhile (the fleet heartbeat).
    pub fn is_ending(&self) -> bool {
        self.ending.load(Ordering::Relaxed) || self.cancel.is_cancelled()
    }

    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn close_code(&self) -> u16 {
        self.close_code.load(Ordering::Relaxed)
    }

    pub fn is_in(&self, room: &str) -> bool {
        self.rooms.lock().iter().any(|r| r == room)
    }

    /// Records a join: `Ok(false)` when already joined, `Err` when already in `max` rooms.
    pub(crate) fn add_room(&self, room: &str, max: usize) -> Result<bool, Refusal> {
        let mut rooms = self.rooms.lock();
        if rooms.iter().any(|r| r == room) {
            return Ok(false);
        }
        if rooms.len() >= max {
            return Err(Refusal::new(
                crate::protocol::ErrorCode::TooManyRooms,
                format!("a connection may be in at most {max} rooms; leave one first"),
            ));
        }
        rooms.push(room.to_string());
        Ok(true)
    }

    /// Records a leave; false when not joined.
    pub(crate) fn remove_room(&self, room: &str) -> bool {
        let mut rooms = self.rooms.lock();
        let before = rooms.len();
        rooms.retain(|r| r != room);
        rooms.len() != before
    }

    pub fn rooms(&self) -> Vec<String> {
        self.rooms.lock().clone()
    }
}

/// A server frame as a WebSocket text frame, encoded once (to share between recipients).
pub fn server_frame(frame: &ServerFrame<'_>) -> Bytes {
    text_frame(&frame.to_json())
}

/// Frames a server-to-client (unmasked) WebSocket text frame around `json`, once.
pub fn text_frame(json: &[u8]) -> Bytes {
    encode(Frame::text(Payload::Borrowed(json)))
}

/// The start of every `message` frame's JSON: what follows is the message object's fields.
const MESSAGE_TAG: &[u8] = br#"{"type":"message","#;

/// A `joined` frame whose `messages` are the messages of already encoded `message` frames
/// (oldest first), copied rather than serialised again; the same JSON as
/// [`ServerFrame::Joined`]. None when a frame is not a `message` frame.
pub fn joined_from_frames(
    room: &str,
    last_seq: u64,
    online: usize,
    members: &[User],
    message_frames: &[Bytes],
    has_more: bool,
) -> Option<Bytes> {
    let head = ServerFrame::Joined {
        room,
        last_seq,
        online,
        members,
        messages: &[],
        has_more: false,
    }
    .to_json();
    // `{…,"messages":[]}`: keep everything up to the `]`, then the messages.
    let open = head.strip_suffix(b"]}")?.len();
    let size: usize = message_frames.iter().map(Bytes::len).sum();
    let mut json = Vec::with_capacity(head.len() + size);
    json.extend_from_slice(&head[..open]);
    for (i, frame) in message_frames.iter().enumerate() {
        let fields = text_payload(frame)?.strip_prefix(MESSAGE_TAG)?;
        json.extend_from_slice(if i == 0 { b"{" } else { b",{" });
        json.extend_from_slice(fields);
    }
    json.extend_from_slice(if has_more {
        &br#"],"has_more":true}"#[..]
    } else {
        b"]}"
    });
    Some(text_frame(&json))
}

/// The payload of an unmasked, unfragmented text frame as [`text_frame`] encodes it.
fn text_payload(frame: &[u8]) -> Option<&[u8]> {
    let (&first, rest) = frame.split_first()?;
    let (&len, rest) = rest.split_first()?;
    if first != 0x81 || len & 0x80 != 0 {
        return None;
    }
    let (len, rest) = match len {
        126 => {
            let (n, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*n)), rest)
        }
        127 => {
            let (n, rest) = rest.split_first_chunk::<8>()?;
            (usize::try_from(u64::from_be_bytes(*n)).ok()?, rest)
        }
        n => (usize::from(n), rest),
    };
    (rest.len() == len).then_some(rest)
}

/// A close frame with `code`.
pub fn close_frame(code: u16) -> Bytes {
    encode(Frame::close(code, b""))
}

/// A ping frame (the server's keep-alive).
pub fn ping_frame() -> Bytes {
    encode(Frame::new(
        true,
        fastwebsockets::OpCode::Ping,
        None,
        Payload::Borrowed(b""),
    ))
}

/// Any control frame fastwebsockets asks us to send (pong replies).
pub fn encode(mut frame: Frame<'_>) -> Bytes {
    let mut buf = Vec::with_capacity(frame.payload.len() + 14);
    let len = frame.write(&mut buf).len();
    buf.truncate(len);
    buf.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ChatMessage;

    #[test]
    fn frames_text_with_the_right_header() {
        let short = text_frame(b"hi");
        assert_eq!(&short[..], &[0x81, 2, b'h', b'i']);
        let long = text_frame(&[b'a'; 300]);
        assert_eq!(&long[..4], &[0x81, 126, 1, 44]);
        assert_eq!(long.len(), 304);
        assert_eq!(&close_frame(1012)[..], &[0x88, 2, 0x03, 0xF4]);
    }

    #[test]
    fn a_joined_frame_put_together_from_message_frames_is_the_serialised_one() {
        let user = User {
            id: 7,
            nickname: "Al \"quoted\"".into(),
            avatar: "fox".into(),
        };
        let messages: Vec<ChatMessage> = [1usize, 200, 70_000]
            .iter()
            .enumerate()
            .map(|(i, &len)| ChatMessage {
                room: "r".into(),
                seq: i as u64 + 4,
                user: user.clone(),
                text: "\u{1}\"x".repeat(len / 3),
                ts: 1_700_000_000_000,
                client_msg_id: format!("c{i}"),
                attachment: None,
                deleted: false,
                reactions: Vec::new(),
                reactions_version: 0,
                reply_to: None,
                moderator: false,
            })
            .collect();
        let frames: Vec<Bytes> = messages
            .iter()
            .map(|m| server_frame(&ServerFrame::Message(m)))
            .collect();
        let members = [user.clone()];
        for (n, has_more) in [(0, false), (1, true), (3, false), (3, true)] {
            let built =
                joined_from_frames("r", 9, 1, &members, &frames[..n], has_more).expect("joined");
            let expected = server_frame(&ServerFrame::Joined {
                room: "r",
                last_seq: 9,
                online: 1,
                members: &members,
                messages: &messages[..n],
                has_more,
            });
            let parse = |f: &Bytes| -> serde_json::Value {
                serde_json::from_slice(text_payload(f).expect("a text frame")).expect("JSON")
            };
            assert_eq!(parse(&built), parse(&expected), "{n} messages");
        }
        // Anything but a message frame is refused, not spliced.
        assert!(joined_from_frames("r", 9, 1, &members, &[close_frame(1000)], false).is_none());
    }

    /// A connection of user 1 whose queue holds at most `bytes`.
    fn test_conn(tx: mpsc::Sender<Outbound>, bytes: usize) -> Conn {
        let user = User {
            id: 1,
            nickname: "Al".into(),
            avatar: "fox".into(),
        };
        Conn::new(1, "t/1".into(), user, tx, bytes, Arc::default())
    }

    #[tokio::test]
    async fn a_full_queue_closes_the_slow_reader_with_1008() {
        let (tx, _rx) = mpsc::channel(1);
        let conn = test_conn(tx, usize::MAX);
        assert!(conn.push(text_frame(b"1")));
        assert!(!conn.push(text_frame(b"2")));
        assert!(conn.cancelled().is_cancelled());
        assert_eq!(conn.close_code(), 1008);
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes_too() {
        let (tx, mut rx) = mpsc::channel(100);
        let conn = test_conn(tx, 1000);
        let big = text_frame(&[b'a'; 600]);
        assert!(conn.push(big.clone()));
        // Taken by the writer: room again.
        let Some(Outbound::Frame(f)) = rx.recv().await else {
            panic!("a frame")
        };
        conn.taken(f.len());
        assert!(conn.push(big.clone()));
        assert!(!conn.cancelled().is_cancelled());
        assert!(!conn.push(big), "600 + 600 bytes > 1000");
        assert!(conn.cancelled().is_cancelled());
        assert_eq!(conn.close_code(), 1008);
    }

    #[test]
    fn rooms_per_connection_are_capped() {
        let (tx, _rx) = mpsc::channel(1);
        let conn = test_conn(tx, usize::MAX);
        assert_eq!(conn.add_room("a", 2), Ok(true));
        assert_eq!(conn.add_room("a", 2), Ok(false));
        assert_eq!(conn.add_room("b", 2), Ok(true));
        assert_eq!(
            conn.add_room("a", 2),
            Ok(false),
            "a repeated join is not refused"
        );
        let err = conn.add_room("c", 2).unwrap_err();
        assert_eq!(err.code, crate::protocol::ErrorCode::TooManyRooms);
    }
}
