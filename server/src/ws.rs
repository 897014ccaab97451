//! One WebSocket connection: the `hello` handshake, a read loop that turns frames into hub
//! calls (every frame counted against the rate limit and as activity; a refusal is a typed
//! [`Refused`] told to the client as one `error` frame), and a writer task that
//! drains the connection's queue of pre-encoded frames, writing several per flush. The writer
//! ends with the connection, and a write that makes no progress for [`WRITE_TIMEOUT`] ends
//! it: a peer that stops reading pins no task, socket or queue.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastwebsockets::upgrade::UpgradeFut;
use fastwebsockets::{Frame, Payload};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;

use crate::auth::Tokens;
use crate::conn::{self, Conn, Outbound};
use crate::hub::{Hub, SendRefused, SendRequest};
use crate::inbound::{Inbound, MessageReader};
use crate::protocol::{
    ClientFrame, ErrorCode, HELLO_TIMEOUT_SECS, JOIN_READS_BURST, MAX_FRAME_BYTES,
    MAX_FRAMES_BEFORE_HELLO, REACTIONS_BURST, REACTIONS_PER_SEC, Refusal, ServerFrame, close,
    decode_client_frame,
};
use crate::throttle::Probation;

/// Rate-limited frames within [`STRIKE_WINDOW`] after which a flooder is closed with 1008.
const MAX_STRIKES: u32 = 50;
const STRIKE_WINDOW: Duration = Duration::from_secs(10);
/// Bytes gathered before one write when several frames are queued.
const WRITE_BATCH: usize = 64 * 1024;
/// A write to the socket that makes no progress for this long ends the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the closing handshake (our close frame, the socket's shutdown) may take.
const CLOSE_TIMEOUT: Duration = WRITE_TIMEOUT;

type Io = TokioIo<hyper::upgrade::Upgraded>;

/// Per-connection limits, from the config.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub rate_per_sec: NonZeroU32,
    pub rate_burst: NonZeroU32,
    /// Silence (no frame at all, pongs included) after which the connection is closed 1008.
    pub idle_timeout: Duration,
}

/// Serves one upgraded connection to its end: `tokens` check its hello, `hub` serves it. A
/// connection admitted beyond its address's budget (`probation`) counts against its guest.
pub async fn serve(
    hub: Arc<Hub>,
    tokens: Arc<Tokens>,
    limits: Limits,
    probation: Option<Probation>,
    upgrade: UpgradeFut,
) {
    let hub = &hub;
    let ws = match upgrade.await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(error = %e, "WebSocket upgrade failed");
            return;
        }
    };
    let (read, write) = tokio::io::split(ws.into_inner());
    let mut reader = MessageReader::new(read, MAX_FRAME_BYTES);

    // Frames before hello go straight to the socket through a small queue.
    let (pre_tx, pre_rx) = mpsc::channel::<Outbound>(8);
    let hello = tokio::time::timeout(
        Duration::from_secs(HELLO_TIMEOUT_SECS),
        read_hello(&mut reader, &pre_tx),
    )
    .await;
    let mut moderator = None;
    let user = match hello {
        Ok(Ok(Some(text))) => match decode_client_frame(&text) {
            Ok(ClientFrame::Hello {
                token,
                moderator: credential,
            }) => {
                moderator = credential.map(|c| crate::moderator::verify(&tokens, &c).ok_or(()));
                tokens.verify(&token)
            }
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
    let refused = match &user {
        None => Some((
            Refusal::new(
                ErrorCode::Unauthorized,
                "the first frame must be {\"type\":\"hello\",\"token\":…} with a valid token, within 10 s",
            ),
            close::UNAUTHORIZED,
        )),
        Some(user) if probation.as_ref().is_some_and(|p| !p.admit(user.id)) => Some((
            Refusal::new(
                ErrorCode::RateLimited,
                "too many reconnects for this guest; retry in a few seconds",
            ),
            close::POLICY,
        )),
        Some(_) => None,
    };
    let (Some(user), None) = (user, refused.as_ref()) else {
        tracing::debug!("WebSocket refused: no valid hello, or too many reconnects");
        if let Some((refusal, code)) = refused {
            let _ = pre_tx.try_send(Outbound::Frame(conn::server_frame(&refusal.frame(None))));
            let _ = pre_tx.try_send(Outbound::Close(code));
        }
        drop(pre_tx);
        write_loop(write, pre_rx, None).await;
        return;
    };
    drop(pre_tx);
    drop(pre_rx);

    let (conn, rx) = hub.connect(user);
    let mut writer = tokio::spawn(write_loop(write, rx, Some(Arc::clone(&conn))));
    if let Some(Ok(m)) = &moderator {
        tracing::info!(moderator = %m.name, user_id = conn.user.id, "Moderator connected");
        conn.set_moderator(m.clone());
    }
    conn.send(&ServerFrame::Welcome {
        user: &conn.user,
        server: &hub.info,
        moderator: conn.moderator(),
    });
    if let Some(Err(())) = moderator {
        // The guest is welcome; only the moderator rights are refused.
        conn.refuse(
            &Refusal::new(
                ErrorCode::Forbidden,
                "the moderator credential is invalid or expired; connected as a guest",
            ),
            None,
        );
    }
    let code = read_loop(hub, &tokens, &conn, limits, &mut reader).await;
    tracing::debug!(user_id = conn.user.id, close_code = ?code, "WebSocket closed");
    if let Some(code) = code {
        conn.kill(code);
    }
    hub.disconnect(&conn).await;
    // The writer sends the close and ends (bounded by its own timeouts); it must not outlive
    // the connection whatever the peer does.
    if tokio::time::timeout(WRITE_TIMEOUT + CLOSE_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

/// Reads up to the first complete text message (the `hello`). `Ok(None)`: the peer closed.
/// `Err(code)`: a protocol violation, or more than [`MAX_FRAMES_BEFORE_HELLO`] frames.
async fn read_hello<S>(
    reader: &mut MessageReader<S>,
    out: &mpsc::Sender<Outbound>,
) -> Result<Option<String>, u16>
where
    S: tokio::io::AsyncRead + Unpin,
{
    for _ in 0..MAX_FRAMES_BEFORE_HELLO {
        match reader.next().await? {
            Inbound::Text(text) => return Ok(Some(text)),
            Inbound::Closed => return Ok(None),
            Inbound::Ping(payload) => {
                let _ = out.try_send(Outbound::Frame(pong_frame(&payload)));
            }
            Inbound::Binary | Inbound::Fragment | Inbound::Pong => {}
        }
    }
    Err(close::POLICY)
}

fn pong_frame(payload: &[u8]) -> bytes::Bytes {
    conn::encode(Frame::pong(Payload::Borrowed(payload)))
}

/// Counts frames against the connection's rate and closes a sustained flooder.
struct Flood {
    limiter: DefaultDirectRateLimiter,
    strikes: u32,
    window: Instant,
}

impl Flood {
    fn new(limits: Limits) -> Self {
        Self {
            limiter: RateLimiter::direct(
                Quota::per_second(limits.rate_per_sec).allow_burst(limits.rate_burst),
            ),
            strikes: 0,
            window: Instant::now(),
        }
    }

    /// `Ok(true)`: within the rate. `Ok(false)`: over it (refuse this frame).
    /// `Err`: flooding; close with 1008.
    fn check(&mut self) -> Result<bool, u16> {
        if self.limiter.check().is_ok() {
            return Ok(true);
        }
        if self.window.elapsed() > STRIKE_WINDOW {
            self.window = Instant::now();
            self.strikes = 0;
        }
        self.strikes += 1;
        if self.strikes > MAX_STRIKES {
            return Err(close::POLICY);
        }
        Ok(false)
    }
}

/// Handles frames until the connection ends; returns the close code to send, if any.
async fn read_loop<S>(
    hub: &Arc<Hub>,
    tokens: &Tokens,
    conn: &Arc<Conn>,
    limits: Limits,
    reader: &mut MessageReader<S>,
) -> Option<u16>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let mut flood = Flood::new(limits);
    // `join`s of rooms not yet joined read history: rate-limited on their own.
    let join_reads: DefaultDirectRateLimiter = RateLimiter::direct(
        Quota::per_second(NonZeroU32::MIN)
            .allow_burst(NonZeroU32::new(JOIN_READS_BURST).unwrap_or(NonZeroU32::MIN)),
    );
    // `react`s write to the store: rate-limited on their own.
    let reacts: DefaultDirectRateLimiter = RateLimiter::direct(
        Quota::per_second(NonZeroU32::new(REACTIONS_PER_SEC).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(REACTIONS_BURST).unwrap_or(NonZeroU32::MIN)),
    );
    let rate_limited = || {
        Refusal::new(
            ErrorCode::RateLimited,
            format!(
                "more than {} frames per second; slow down",
                limits.rate_per_sec
            ),
        )
    };
    loop {
        let next = tokio::select! {
            biased;
            _ = conn.cancelled().cancelled() => return None,
            r = tokio::time::timeout(limits.idle_timeout, reader.next()) => r,
        };
        let inbound = match next {
            Err(_) => return Some(close::POLICY),
            Ok(Err(code)) => return Some(code),
            Ok(Ok(Inbound::Closed)) => return Some(close::NORMAL),
            Ok(Ok(inbound)) => inbound,
        };
        // Every frame counts, whatever it is: fragments, pings, pongs, malformed ones.
        let within = match flood.check() {
            Ok(within) => within,
            Err(code) => {
                hub.metrics.rate_limited.inc();
                return Some(code);
            }
        };
        if !within {
            hub.metrics.rate_limited.inc();
        }
        let text = match inbound {
            Inbound::Text(text) => text,
            Inbound::Ping(payload) => {
                if within {
                    conn.push(pong_frame(&payload));
                }
                continue;
            }
            Inbound::Binary => {
                if within {
                    conn.refuse(
                        &Refusal::new(
                            ErrorCode::BadRequest,
                            "frames must be text (JSON), not binary",
                        ),
                        None,
                    );
                }
                continue;
            }
            Inbound::Fragment | Inbound::Pong | Inbound::Closed => continue,
        };
        let frame = match decode_client_frame(&text) {
            Ok(frame) => frame,
            Err(err) => {
                if within {
                    conn.refuse(&err, None);
                }
                continue;
            }
        };
        if !within {
            // A refused send names its client_msg_id so the client knows to retry it.
            Refused::of(frame, rate_limited()).tell(conn);
            continue;
        }
        if let Err(refused) = handle(hub, tokens, conn, &join_reads, &reacts, frame).await {
            refused.tell(conn);
        }
    }
}

/// Why a frame was refused, as the client is told.
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// The frame as a whole.
    #[error(transparent)]
    Frame(#[from] Refusal),
    /// A `send`: the error names its `client_msg_id`.
    #[error(transparent)]
    Send(#[from] SendRefused),
}

impl Refused {
    /// `refusal` of `frame`: a send's names its `client_msg_id`.
    fn of(frame: ClientFrame, refusal: Refusal) -> Self {
        match frame {
            ClientFrame::Send { client_msg_id, .. } => Refused::Send(SendRefused {
                client_msg_id,
                refusal,
            }),
            _ => Refused::Frame(refusal),
        }
    }

    /// Sends the connection the `error` frame.
    fn tell(&self, conn: &Conn) {
        match self {
            Refused::Frame(refusal) => conn.refuse(refusal, None),
            Refused::Send(send) => conn.refuse(&send.refusal, Some(&send.client_msg_id)),
        };
    }
}

/// Serves one decoded frame within the rate. `join_reads` limits joins of new rooms (each
/// reads history), `reacts` reactions (each writes to the store).
async fn handle(
    hub: &Arc<Hub>,
    tokens: &Tokens,
    conn: &Arc<Conn>,
    join_reads: &DefaultDirectRateLimiter,
    reacts: &DefaultDirectRateLimiter,
    frame: ClientFrame,
) -> Result<(), Refused> {
    match frame {
        ClientFrame::Hello { .. } => {
            return Err(Refusal::new(ErrorCode::BadRequest, "hello was already received").into());
        }
        ClientFrame::Join { room, after } => {
            if !conn.is_in(&room) && join_reads.check().is_err() {
                return Err(Refusal::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {JOIN_READS_BURST} joins of new rooms at once, then one per second; slow down"
                    ),
                )
                .into());
            }
            hub.join(conn, &room, after).await?;
            hub.send_reactions(conn, &room);
            hub.send_receipts_soon(conn, room);
        }
        ClientFrame::Leave { room } => {
            if !hub.leave(conn, &room).await {
                return Err(Refusal::new(
                    ErrorCode::NotJoined,
                    format!("not joined to room {room:?}"),
                )
                .into());
            }
        }
        ClientFrame::Send {
            room,
            client_msg_id,
            text,
            attachment,
            reply_to,
        } => {
            let send = SendRequest {
                room,
                client_msg_id,
                text,
                attachment,
                reply_to,
            };
            hub.send(conn, tokens, send).await?;
        }
        ClientFrame::Delete { room, seq } => hub.delete(conn, &room, seq).await?,
        ClientFrame::Read { room, seq } => hub.read(conn, &room, seq)?,
        ClientFrame::Mute {
            room,
            user_id,
            secs,
        } => hub.mute(conn, &room, user_id, secs).await?,
        ClientFrame::Typing { room } => hub.typing(conn, &room).await?,
        ClientFrame::React {
            room,
            seq,
            emoji,
            on,
        } => {
            if reacts.check().is_err() {
                return Err(Refusal::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {REACTIONS_BURST} reactions at once, then {REACTIONS_PER_SEC} per second; slow down"
                    ),
                )
                .into());
            }
            hub.react(conn, &room, seq, &emoji, on).await?
        }
        ClientFrame::Ping => {
            conn.send(&ServerFrame::Pong);
        }
    }
    Ok(())
}

/// Drains the queue onto the socket: one write per frame when the queue is short, gathered
/// writes of up to [`WRITE_BATCH`] bytes when frames pile up. Ends after a close frame, when
/// the connection is killed (even mid-write), when a write makes no progress for
/// [`WRITE_TIMEOUT`], or when every sender is gone.
async fn write_loop(
    mut w: WriteHalf<Io>,
    mut rx: mpsc::Receiver<Outbound>,
    conn: Option<Arc<Conn>>,
) {
    let never = tokio_util::sync::CancellationToken::new();
    let cancel = conn.as_ref().map_or(&never, |c| c.cancelled());
    let mut buf: Vec<u8> = Vec::new();
    let mut close_with = None;
    // False once a write was cut short: the stream is mid-frame, no close frame can follow.
    let mut clean = true;
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
        if let Some(conn) = &conn {
            conn.taken(buf.len());
        }
        let written = {
            let write = tokio::time::timeout(WRITE_TIMEOUT, w.write_all(&buf));
            tokio::pin!(write);
            tokio::select! {
                biased;
                r = &mut write => Some(r),
                // Killed mid-write: this write may finish (bounded) so a close frame can follow.
                _ = cancel.cancelled() => Some((&mut write).await),
            }
        };
        buf.clear();
        // Going idle (or grown past a batch): give the buffer back, so an idle connection
        // holds no write buffer sized by the largest frame it was ever sent.
        if rx.is_empty() || buf.capacity() > WRITE_BATCH * 2 {
            buf = Vec::new();
        }
        match written {
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(_))) => {
                clean = false;
                break;
            }
            Some(Err(_)) => {
                tracing::debug!("WebSocket write made no progress; closing");
                clean = false;
                close_with = Some(close::POLICY);
                break;
            }
            None => {
                clean = false;
                close_with = conn.as_ref().map(|c| c.close_code());
                break;
            }
        }
        if cancel.is_cancelled() {
            close_with = conn.as_ref().map(|c| c.close_code());
            break;
        }
        if close_with.is_some() {
            break;
        }
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if clean && let Some(code) = close_with {
            let _ = w.write_all(&conn::close_frame(code)).await;
        }
        let _ = w.flush().await;
        let _ = w.shutdown().await;
    })
    .await;
    if let Some(conn) = conn {
        // Stops the reader too if the writer ended first.
        conn.kill(close_with.unwrap_or(close::NORMAL));
    }
}
