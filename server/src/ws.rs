//! One WebSocket connection: the `hello` handshake, a read loop that turns frames into hub
//! calls (rate limited), and a writer task that drains the connection's queue of pre-encoded
//! frames, writing several per flush.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastwebsockets::upgrade::UpgradeFut;
use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Role, WebSocketError};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;

use crate::auth::Tokens;
use crate::conn::{self, Conn, Outbound};
use crate::hub::Hub;
use crate::protocol::{
    ClientFrame, ErrorCode, HELLO_TIMEOUT_SECS, MAX_FRAME_BYTES, Refusal, ServerFrame, close,
    decode_client_frame,
};

/// A connection that sends nothing (not even a pong) for this long is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Rate-limited frames within [`STRIKE_WINDOW`] after which a flooder is closed with 1008.
const MAX_STRIKES: u32 = 50;
const STRIKE_WINDOW: Duration = Duration::from_secs(10);
/// Bytes gathered before one write when several frames are queued.
const WRITE_BATCH: usize = 64 * 1024;

type Io = TokioIo<hyper::upgrade::Upgraded>;

/// Per-connection limits, from the config.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub rate_per_sec: NonZeroU32,
    pub rate_burst: NonZeroU32,
}

/// Serves one upgraded connection to its end: `tokens` check its hello, `hub` serves it.
pub async fn serve(hub: Arc<Hub>, tokens: Arc<Tokens>, limits: Limits, upgrade: UpgradeFut) {
    let hub = &hub;
    let ws = match upgrade.await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(error = %e, "WebSocket upgrade failed");
            return;
        }
    };
    let (read, write) = tokio::io::split(ws.into_inner());
    let (mut reader, _) =
        fastwebsockets::after_handshake_split(read, tokio::io::sink(), Role::Server);
    reader.set_max_message_size(MAX_FRAME_BYTES + 1);
    reader.set_auto_close(false);
    let mut reader = FragmentCollectorRead::new(reader);

    // Frames before hello go straight to the socket through a small queue.
    let (pre_tx, pre_rx) = mpsc::channel::<Outbound>(8);
    let hello = tokio::time::timeout(
        Duration::from_secs(HELLO_TIMEOUT_SECS),
        read_text(&mut reader, &|f| {
            let _ = pre_tx.try_send(Outbound::Frame(f));
        }),
    )
    .await;
    let user = match hello {
        Ok(Ok(Some(text))) => match decode_client_frame(&text) {
            Ok(ClientFrame::Hello { token }) => tokens.verify(&token),
            _ => None,
        },
        Ok(Err(code)) => {
            let _ = pre_tx.try_send(Outbound::Close(code));
            drop(pre_tx);
            write_loop(write, pre_rx, None).await;
            return;
        }
        _ => None,
    };
    let Some(user) = user else {
        tracing::debug!("WebSocket refused: no valid hello");
        let refusal = Refusal::new(
            ErrorCode::Unauthorized,
            "the first frame must be {\"type\":\"hello\",\"token\":…} with a valid token, within 10 s",
        );
        let _ = pre_tx.try_send(Outbound::Frame(conn::server_frame(&refusal.frame(None))));
        let _ = pre_tx.try_send(Outbound::Close(close::UNAUTHORIZED));
        drop(pre_tx);
        write_loop(write, pre_rx, None).await;
        return;
    };
    drop(pre_tx);
    drop(pre_rx);

    let (conn, rx) = hub.connect(user);
    let writer = tokio::spawn(write_loop(write, rx, Some(Arc::clone(&conn))));
    conn.send(&ServerFrame::Welcome {
        user: &conn.user,
        server: &hub.info,
    });
    let code = read_loop(hub, &tokens, &conn, limits, &mut reader).await;
    tracing::debug!(user_id = conn.user.id, close_code = ?code, "WebSocket closed");
    if let Some(code) = code {
        conn.kill(code);
    }
    hub.disconnect(&conn).await;
    // Let the writer send what is queued (a close at the end), bounded.
    if tokio::time::timeout(Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        conn.kill(close::NORMAL);
    }
}

/// Reads the next complete text message. `Ok(None)`: the peer closed. `Err(code)`: a
/// protocol violation to close with. Replies the reader owes (pongs, errors) go to `out`.
async fn read_text<S>(
    reader: &mut FragmentCollectorRead<S>,
    out: &impl Fn(Bytes),
) -> Result<Option<String>, u16>
where
    S: tokio::io::AsyncRead + Unpin,
{
    loop {
        let frame = reader
            .read_frame(&mut |frame: Frame<'_>| {
                // Obligated replies (pongs) go through the queue like everything else.
                out(conn::encode(frame));
                std::future::ready(Ok::<(), std::io::Error>(()))
            })
            .await;
        let frame = match frame {
            Ok(frame) => frame,
            Err(WebSocketError::FrameTooLarge) => return Err(close::TOO_BIG),
            Err(WebSocketError::InvalidUTF8) => return Err(close::INVALID_UTF8),
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket read ended");
                return Ok(None);
            }
        };
        match frame.opcode {
            OpCode::Text => {
                if frame.payload.len() > MAX_FRAME_BYTES {
                    return Err(close::TOO_BIG);
                }
                return match String::from_utf8(frame.payload.to_vec()) {
                    Ok(text) => Ok(Some(text)),
                    Err(_) => Err(close::INVALID_UTF8),
                };
            }
            OpCode::Binary => {
                if frame.payload.len() > MAX_FRAME_BYTES {
                    return Err(close::TOO_BIG);
                }
                let refusal = Refusal::new(
                    ErrorCode::BadRequest,
                    "frames must be text (JSON), not binary",
                );
                out(conn::server_frame(&refusal.frame(None)));
            }
            OpCode::Close => return Ok(None),
            _ => {}
        }
    }
}

/// Handles frames until the connection ends; returns the close code to send, if any.
async fn read_loop<S>(
    hub: &Arc<Hub>,
    tokens: &Tokens,
    conn: &Arc<Conn>,
    limits: Limits,
    reader: &mut FragmentCollectorRead<S>,
) -> Option<u16>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let limiter: DefaultDirectRateLimiter =
        RateLimiter::direct(Quota::per_second(limits.rate_per_sec).allow_burst(limits.rate_burst));
    let mut strikes = 0u32;
    let mut strike_window = Instant::now();
    // Control replies (pongs) share the connection's queue (no queue of their own: a
    // channel per connection costs ~1.5 KiB even when idle).
    let reply = |f: Bytes| {
        conn.push(f);
    };
    loop {
        let next = tokio::select! {
            biased;
            _ = conn.cancelled().cancelled() => return None,
            r = tokio::time::timeout(IDLE_TIMEOUT, read_text(reader, &reply)) => r,
        };
        let text = match next {
            Err(_) => return Some(close::POLICY),
            Ok(Err(code)) => return Some(code),
            Ok(Ok(None)) => return Some(close::NORMAL),
            Ok(Ok(Some(text))) => text,
        };
        let frame = match decode_client_frame(&text) {
            Ok(frame) => frame,
            Err(err) => {
                conn.refuse(&err, None);
                continue;
            }
        };
        if limiter.check().is_err() {
            hub.metrics.rate_limited.inc();
            if strike_window.elapsed() > STRIKE_WINDOW {
                strike_window = Instant::now();
                strikes = 0;
            }
            strikes += 1;
            if strikes > MAX_STRIKES {
                return Some(close::POLICY);
            }
            let err = Refusal::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {} frames per second; slow down",
                    limits.rate_per_sec
                ),
            );
            // A refused send names its client_msg_id so the client knows to retry it.
            let id = match &frame {
                ClientFrame::Send { client_msg_id, .. } => Some(client_msg_id.as_str()),
                _ => None,
            };
            conn.refuse(&err, id);
            continue;
        }
        let result = match frame {
            ClientFrame::Hello { .. } => Err((
                Refusal::new(ErrorCode::BadRequest, "hello was already received"),
                None,
            )),
            ClientFrame::Join { room, after } => {
                hub.join(conn, &room, after).await.map_err(|e| (e, None))
            }
            ClientFrame::Leave { room } => {
                if hub.leave(conn, &room).await {
                    Ok(())
                } else {
                    Err((
                        Refusal::new(ErrorCode::NotJoined, format!("not joined to room {room:?}")),
                        None,
                    ))
                }
            }
            ClientFrame::Send {
                room,
                client_msg_id,
                text,
                attachment,
            } => {
                let id = client_msg_id.clone();
                attachment
                    .map(|token| crate::uploads::open_attachment(tokens, conn.user.id, &token))
                    .transpose()
                    .and_then(|attachment| hub.send(conn, room, client_msg_id, text, attachment))
                    .map_err(|e| (e, Some(id)))
            }
            ClientFrame::Typing { room } => hub.typing(conn, &room).await.map_err(|e| (e, None)),
            ClientFrame::Ping => {
                conn.send(&ServerFrame::Pong);
                Ok(())
            }
        };
        if let Err((err, id)) = result {
            conn.refuse(&err, id.as_deref());
        }
    }
}

/// Drains the queue onto the socket: one write per frame when the queue is short, gathered
/// writes of up to [`WRITE_BATCH`] bytes when frames pile up. Ends after a close frame, when
/// the connection is killed, or when every sender is gone.
async fn write_loop(
    mut w: WriteHalf<Io>,
    mut rx: mpsc::Receiver<Outbound>,
    conn: Option<Arc<Conn>>,
) {
    let never = tokio_util::sync::CancellationToken::new();
    let cancel = conn.as_ref().map_or(&never, |c| c.cancelled());
    let mut buf: Vec<u8> = Vec::new();
    let mut close_with = None;
    loop {
        let first = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                close_with = conn.as_ref().map(|c| c.close_code());
                break;
            }
            m = rx.recv() => m,
        };
        let frame = match first {
            None => break,
            Some(Outbound::Close(code)) => {
                close_with = Some(code);
                break;
            }
            Some(Outbound::Frame(f)) => f,
        };
        let result = if rx.is_empty() {
            w.write_all(&frame).await
        } else {
            buf.extend_from_slice(&frame);
            while buf.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(Outbound::Frame(f)) => buf.extend_from_slice(&f),
                    Ok(Outbound::Close(code)) => {
                        close_with = Some(code);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let r = w.write_all(&buf).await;
            buf.clear();
            if buf.capacity() > WRITE_BATCH * 2 {
                buf = Vec::new();
            }
            r
        };
        if result.is_err() || close_with.is_some() {
            break;
        }
    }
    if let Some(code) = close_with {
        let _ = w.write_all(&conn::close_frame(code)).await;
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
    if let Some(conn) = conn {
        // Stops the reader too if the writer ended first.
        conn.kill(close_with.unwrap_or(close::NORMAL));
    }
}
