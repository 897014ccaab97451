//! One client connection as the rest of the server sees it: who it is, its bounded queue of
//! pre-encoded frames, and how to close it. The socket itself lives in [`crate::ws`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

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

/// A connected, authenticated client.
pub struct Conn {
    /// Unique within this task.
    pub id: u64,
    /// Unique across tasks (`{task}/{id}`), the key of its store record.
    pub key: String,
    pub user: User,
    tx: mpsc::Sender<Outbound>,
    /// Cancelled when the connection must end now (slow reader, draining, peer gone).
    cancel: CancellationToken,
    /// Close code to send when cancelled.
    close_code: AtomicU16,
    /// Rooms joined, in join order.
    rooms: Mutex<Vec<String>>,
    metrics: Arc<Metrics>,
}

impl Conn {
    pub fn new(
        id: u64,
        key: String,
        user: User,
        tx: mpsc::Sender<Outbound>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            id,
            key,
            user,
            tx,
            cancel: CancellationToken::new(),
            close_code: AtomicU16::new(crate::protocol::close::NORMAL),
            rooms: Mutex::new(Vec::new()),
            metrics,
        }
    }

    /// Queues a frame. A full queue means the client reads too slowly: it is closed with 1008
    /// and `false` returned; the caller carries on with everyone else.
    pub fn push(&self, frame: Bytes) -> bool {
        match self.tx.try_send(Outbound::Frame(frame)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.cancel.is_cancelled() {
                    self.metrics.slow_consumers_closed.inc();
                }
                self.kill(crate::protocol::close::POLICY);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
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
        if self.tx.try_send(Outbound::Frame(frame)).is_err()
            || self.tx.try_send(Outbound::Close(code)).is_err()
        {
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

    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn close_code(&self) -> u16 {
        self.close_code.load(Ordering::Relaxed)
    }

    pub fn is_in(&self, room: &str) -> bool {
        self.rooms.lock().iter().any(|r| r == room)
    }

    /// Records a join; false when already joined.
    pub(crate) fn add_room(&self, room: &str) -> bool {
        let mut rooms = self.rooms.lock();
        if rooms.iter().any(|r| r == room) {
            return false;
        }
        rooms.push(room.to_string());
        true
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

    #[test]
    fn frames_text_with_the_right_header() {
        let short = text_frame(b"hi");
        assert_eq!(&short[..], &[0x81, 2, b'h', b'i']);
        let long = text_frame(&[b'a'; 300]);
        assert_eq!(&long[..4], &[0x81, 126, 1, 44]);
        assert_eq!(long.len(), 304);
        assert_eq!(&close_frame(1012)[..], &[0x88, 2, 0x03, 0xF4]);
    }

    #[tokio::test]
    async fn a_full_queue_closes_the_slow_reader_with_1008() {
        let (tx, _rx) = mpsc::channel(1);
        let user = User {
            id: 1,
            nickname: "Al".into(),
            avatar: "fox".into(),
        };
        let conn = Conn::new(1, "t/1".into(), user, tx, Arc::default());
        assert!(conn.push(text_frame(b"1")));
        assert!(!conn.push(text_frame(b"2")));
        assert!(conn.cancelled().is_cancelled());
        assert_eq!(conn.close_code(), 1008);
    }
}
