//! Reads a connection's frames into whole messages with the size bound counted across
//! fragments (a message is closed with 1009 as soon as its total passes the limit), and
//! reports every frame the peer sends — fragments, pings, pongs, refused binary messages
//! included — so the caller counts each toward the rate limit and as activity.
//!
//! Memory is sized to what is in flight, not to the connection: an idle connection holds a
//! 256-byte read-ahead, and a frame's payload is allocated at its exact size once its header
//! has passed the bounds. (fastwebsockets' reader keeps a fixed 8 KiB buffer per connection for
//! its whole life, not configurable in 0.10: most of an idle connection's memory.) The frames
//! are RFC 6455's, server side; fastwebsockets still does the handshake and the writing.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

use crate::protocol::close;

/// Bytes read ahead per connection: a typical client frame (header, mask, a short JSON text)
/// arrives in one read, without kilobytes held per idle connection.
const READ_AHEAD: usize = 256;
/// Largest payload of a control frame (RFC 6455 section 5.5).
const MAX_CONTROL: u64 = 125;

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

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Op {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Op::Continuation,
            0x1 => Op::Text,
            0x2 => Op::Binary,
            0x8 => Op::Close,
            0x9 => Op::Ping,
            0xA => Op::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        matches!(self, Op::Close | Op::Ping | Op::Pong)
    }
}

/// One frame's header, checked.
struct Header {
    fin: bool,
    op: Op,
    mask: [u8; 4],
    len: usize,
}

/// Why reading stopped.
enum Stop {
    /// The peer went away (EOF or an I/O error).
    Gone,
    /// A violation, with the close code it earns.
    Close(u16),
}

impl From<std::io::Error> for Stop {
    fn from(_: std::io::Error) -> Self {
        Stop::Gone
    }
}

/// The read half of a connection, frame by frame.
pub struct MessageReader<S> {
    stream: BufReader<S>,
    max_message: usize,
    partial: Option<Partial>,
}

impl<S: AsyncRead + Unpin> MessageReader<S> {
    /// Reads from `stream` (after the handshake); messages (all fragments together) above
    /// `max_message` bytes end the connection with 1009.
    pub fn new(stream: S, max_message: usize) -> Self {
        Self {
            stream: BufReader::with_capacity(READ_AHEAD, stream),
            max_message,
            partial: None,
        }
    }

    /// The next frame, or the close code a protocol violation earns.
    pub async fn next(&mut self) -> Result<Inbound, u16> {
        match self.frame().await {
            Ok(inbound) => Ok(inbound),
            Err(Stop::Gone) => Ok(Inbound::Closed),
            Err(Stop::Close(code)) => {
                self.partial = None;
                Err(code)
            }
        }
    }

    async fn frame(&mut self) -> Result<Inbound, Stop> {
        let h = self.header().await?;
        match h.op {
            Op::Ping => Ok(Inbound::Ping(Bytes::from(
                self.payload(&h, Vec::new()).await?,
            ))),
            Op::Pong => {
                self.payload(&h, Vec::new()).await?;
                Ok(Inbound::Pong)
            }
            Op::Close => Ok(Inbound::Closed),
            Op::Text | Op::Binary => {
                if self.partial.is_some() {
                    // A new message while one is still open.
                    return Err(Stop::Close(close::PROTOCOL));
                }
                let text = h.op == Op::Text;
                let buf = self.payload(&h, Vec::new()).await?;
                if h.fin {
                    return complete(text, buf);
                }
                self.partial = Some(Partial { text, buf });
                Ok(Inbound::Fragment)
            }
            Op::Continuation => {
                let Some(Partial { text, buf }) = self.partial.take() else {
                    return Err(Stop::Close(close::PROTOCOL));
                };
                let buf = self.payload(&h, buf).await?;
                if h.fin {
                    return complete(text, buf);
                }
                self.partial = Some(Partial { text, buf });
                Ok(Inbound::Fragment)
            }
        }
    }

    /// Reads and checks a header: reserved bits, opcode, control frames whole and small,
    /// and the message's size so far plus this frame's within the bound — all before a byte
    /// of the payload is read.
    async fn header(&mut self) -> Result<Header, Stop> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).await?;
        let fin = head[0] & 0x80 != 0;
        let op = Op::from_bits(head[0] & 0x0F).ok_or(Stop::Close(close::PROTOCOL))?;
        if head[0] & 0x70 != 0 {
            return Err(Stop::Close(close::PROTOCOL));
        }
        let len = match head[1] & 0x7F {
            126 => u64::from(self.stream.read_u16().await?),
            127 => self.stream.read_u64().await?,
            n => u64::from(n),
        };
        // Every client frame is masked (RFC 6455 section 5.1): one that is not is closed 1002.
        if head[1] & 0x80 == 0 {
            return Err(Stop::Close(close::PROTOCOL));
        }
        let mut mask = [0u8; 4];
        self.stream.read_exact(&mut mask).await?;
        if op.is_control() && (!fin || len > MAX_CONTROL) {
            return Err(Stop::Close(close::PROTOCOL));
        }
        let so_far = self.partial.as_ref().map_or(0, |p| p.buf.len() as u64);
        if !op.is_control() && so_far.saturating_add(len) > self.max_message as u64 {
            return Err(Stop::Close(close::TOO_BIG));
        }
        Ok(Header {
            fin,
            op,
            mask,
            // Bounded above by the message limit or 125.
            len: len as usize,
        })
    }

    /// `into` with the frame's payload appended, unmasked.
    async fn payload(&mut self, h: &Header, mut into: Vec<u8>) -> Result<Vec<u8>, Stop> {
        let start = into.len();
        into.resize(start + h.len, 0);
        self.stream.read_exact(&mut into[start..]).await?;
        fastwebsockets::unmask(&mut into[start..], h.mask);
        Ok(into)
    }
}

fn complete(text: bool, buf: Vec<u8>) -> Result<Inbound, Stop> {
    if !text {
        return Ok(Inbound::Binary);
    }
    String::from_utf8(buf)
        .map(Inbound::Text)
        .map_err(|_| Stop::Close(close::INVALID_UTF8))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let mut reader = MessageReader::new(server, max);
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
        assert_eq!(
            read_all(vec![0x81, 0x01, b'x'], 100).await,
            vec![Err(1002)],
            "an unmasked client frame"
        );
        let mut reserved = frame(true, 0x1, b"x");
        reserved[0] |= 0x40;
        assert_eq!(
            read_all(reserved, 100).await,
            vec![Err(1002)],
            "a reserved bit"
        );
        let mut long_ping = frame(true, 0x9, &[0; 126]);
        long_ping[1] = 0x80 | 126;
        assert_eq!(
            read_all(long_ping, 1000).await,
            vec![Err(1002)],
            "a 126-byte ping"
        );
        assert_eq!(
            read_all(frame(false, 0x9, b""), 100).await,
            vec![Err(1002)],
            "a fragmented ping"
        );
    }

    #[tokio::test]
    async fn a_huge_announced_length_is_refused_before_any_payload_arrives() {
        // Header only: 2^63 - 1 bytes announced, none sent. The bound must answer from the
        // header alone (nothing allocated, nothing awaited).
        let mut bytes = vec![0x81, 0x80 | 127];
        bytes.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(&bytes).await.unwrap();
        let mut reader = MessageReader::new(server, 16 * 1024);
        assert_eq!(reader.next().await, Err(1009));
        drop(client);
    }

    #[tokio::test]
    async fn masked_payloads_are_unmasked() {
        let mut f = vec![0x81, 0x80 | 5];
        let mask = [1u8, 2, 3, 4];
        f.extend_from_slice(&mask);
        f.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        assert_eq!(read_all(f, 100).await[0], Ok(Inbound::Text("hello".into())));
    }
}
