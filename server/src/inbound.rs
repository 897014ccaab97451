//! Reads a connection's frames into whole messages with the size bound counted across
//! fragments (a message is closed with 1009 as soon as its total passes the limit), and
//! reports every frame the peer sends — fragments, pings, pongs, refused binary messages
//! included — so the caller counts each toward the rate limit and as activity.

use bytes::Bytes;
use fastwebsockets::{OpCode, WebSocketError, WebSocketRead};
use tokio::io::AsyncRead;

use crate::protocol::close;

/// What one frame from the peer amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// The last frame of a text message: the whole message.
    Text(String),
    /// The last frame of a binary message (the protocol refuses binary; it was bounded all
    /// the same).
    Binary,
    /// A frame of a message still being assembled.
    Fragment,
    /// A ping: the caller owes a pong with this payload.
    Ping(Bytes),
    /// A pong (an answer to the server's ping).
    Pong,
    /// The peer closed or went away.
    Closed,
}

/// A message being assembled from fragments.
struct Partial {
    text: bool,
    buf: Vec<u8>,
}

/// The read half of a connection, frame by frame.
pub struct MessageReader<S> {
    inner: WebSocketRead<S>,
    max_message: usize,
    partial: Option<Partial>,
}

impl<S: AsyncRead + Unpin> MessageReader<S> {
    /// Reads from `inner`; messages (all fragments together) above `max_message` bytes end the
    /// connection with 1009.
    pub fn new(mut inner: WebSocketRead<S>, max_message: usize) -> Self {
        // A single frame above the limit fails before its payload is read.
        inner.set_max_message_size(max_message + 1);
        inner.set_auto_close(false);
        // Pings come back to us: counted like every frame, answered through the queue.
        inner.set_auto_pong(false);
        Self {
            inner,
            max_message,
            partial: None,
        }
    }

    /// The next frame, or the close code a protocol violation earns.
    pub async fn next(&mut self) -> Result<Inbound, u16> {
        let frame = match self
            .inner
            .read_frame(&mut |_| std::future::ready(Ok::<(), std::io::Error>(())))
            .await
        {
            Ok(frame) => frame,
            Err(WebSocketError::FrameTooLarge) => return Err(close::TOO_BIG),
            Err(WebSocketError::InvalidUTF8) => return Err(close::INVALID_UTF8),
            Err(WebSocketError::IoError(_) | WebSocketError::UnexpectedEOF) => {
                return Ok(Inbound::Closed);
            }
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket protocol violation");
                return Err(close::PROTOCOL);
            }
        };
        let payload = &frame.payload[..];
        match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                if self.partial.is_some() {
                    // A new message while one is still open.
                    return Err(close::PROTOCOL);
                }
                let text = frame.opcode == OpCode::Text;
                if frame.fin {
                    return complete(text, payload.to_vec());
                }
                self.partial = Some(Partial {
                    text,
                    buf: payload.to_vec(),
                });
                Ok(Inbound::Fragment)
            }
            OpCode::Continuation => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(close::PROTOCOL);
                };
                if partial.buf.len() + payload.len() > self.max_message {
                    self.partial = None;
                    return Err(close::TOO_BIG);
                }
                partial.buf.extend_from_slice(payload);
                if !frame.fin {
                    return Ok(Inbound::Fragment);
                }
                let Partial { text, buf } = self.partial.take().unwrap_or_else(|| unreachable!());
                complete(text, buf)
            }
            OpCode::Ping => Ok(Inbound::Ping(Bytes::copy_from_slice(payload))),
            OpCode::Pong => Ok(Inbound::Pong),
            OpCode::Close => Ok(Inbound::Closed),
        }
    }
}

fn complete(text: bool, buf: Vec<u8>) -> Result<Inbound, u16> {
    if !text {
        return Ok(Inbound::Binary);
    }
    String::from_utf8(buf)
        .map(Inbound::Text)
        .map_err(|_| close::INVALID_UTF8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastwebsockets::Role;
    use tokio::io::AsyncWriteExt;

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    async fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<Inbound, u16>> {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(&bytes).await.unwrap();
        drop(client);
        let (read, _) =
            fastwebsockets::after_handshake_split(server, tokio::io::sink(), Role::Server);
        let mut reader = MessageReader::new(read, max);
        let mut out = Vec::new();
        loop {
            let next = reader.next().await;
            let end = matches!(next, Ok(Inbound::Closed) | Err(_));
            out.push(next);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn assembles_fragments_and_reports_every_frame() {
        let mut bytes = frame(false, 0x1, b"{\"type\":");
        bytes.extend(frame(true, 0x9, b"hi"));
        bytes.extend(frame(true, 0x0, b"\"ping\"}"));
        bytes.extend(frame(true, 0xA, b""));
        bytes.extend(frame(true, 0x2, b"\x00"));
        let out = read_all(bytes, 100).await;
        assert_eq!(
            out,
            vec![
                Ok(Inbound::Fragment),
                Ok(Inbound::Ping(Bytes::from_static(b"hi"))),
                Ok(Inbound::Text(r#"{"type":"ping"}"#.into())),
                Ok(Inbound::Pong),
                Ok(Inbound::Binary),
                Ok(Inbound::Closed),
            ]
        );
    }

    #[tokio::test]
    async fn the_size_bound_counts_across_fragments() {
        let mut bytes = frame(false, 0x1, &[b' '; 60]);
        bytes.extend(frame(false, 0x0, &[b' '; 40]));
        bytes.extend(frame(false, 0x0, &[b' '; 1]));
        let out = read_all(bytes, 100).await;
        assert_eq!(
            out,
            vec![Ok(Inbound::Fragment), Ok(Inbound::Fragment), Err(1009)]
        );
        // Exactly the limit in one frame is fine; one byte more is not.
        let out = read_all(frame(true, 0x1, &[b' '; 100]), 100).await;
        assert_eq!(out[0], Ok(Inbound::Text(" ".repeat(100))));
        let out = read_all(frame(true, 0x1, &[b' '; 101]), 100).await;
        assert_eq!(out, vec![Err(1009)]);
    }

    #[tokio::test]
    async fn protocol_violations_close_with_their_code() {
        let out = read_all(frame(true, 0x0, b"x"), 100).await;
        assert_eq!(
            out,
            vec![Err(1002)],
            "a continuation with nothing to continue"
        );
        let mut bytes = frame(false, 0x1, b"a");
        bytes.extend(frame(true, 0x1, b"b"));
        assert_eq!(
            read_all(bytes, 100).await[1],
            Err(1002),
            "a new message mid-message"
        );
        let mut bytes = frame(false, 0x1, &[0xc3]);
        bytes.extend(frame(true, 0x0, &[0x28]));
        assert_eq!(
            read_all(bytes, 100).await[1],
            Err(1007),
            "invalid UTF-8 across fragments"
        );
        assert_eq!(read_all(frame(true, 0x3, b""), 100).await, vec![Err(1002)]);
    }
}
