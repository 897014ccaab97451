//! One proxied connection: client-to-upstream bytes go a request (HTTP) or a chunk (TCP) at a
//! time through the rules; upstream-to-client bytes go straight through unless a
//! `DelayResponse` holds them. A kill (a rule's `Cut`/`Reset`, or the test's `cut_all` /
//! `reset_all`) ends both sides at once, with FIN or RST.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::http::{self, Parsed};
use crate::{Action, Kill, Mode, Shared};

/// Bytes read from a socket at a time.
const CHUNK: usize = 16 * 1024;

/// Until when answers are held back (set by a `DelayResponse` rule).
type Hold = Mutex<Option<Instant>>;

pub(crate) async fn serve(
    mut client: TcpStream,
    shared: &Arc<Shared>,
    kill: watch::Sender<Option<Kill>>,
    mut killed: watch::Receiver<Option<Kill>>,
) {
    let _ = client.set_nodelay(true);
    let hold: Hold = Mutex::new(None);
    let mut reader = Reader::new(shared.mode);
    // Upstream is dialled only once the first request has passed its rule: a serial upstream
    // (moto serves one connection at a time) must never sit waiting on a connection whose
    // request the proxy is holding back.
    let first = tokio::select! {
        first = async {
            let unit = reader.next(&mut client).await?;
            obey(shared, unit.1.as_deref(), &kill, &hold).await.then_some(unit)
        } => first,
        _ = wait_kill(&mut killed) => None,
    };
    let Some((len, op)) = first else {
        if *killed.borrow() == Some(Kill::Reset) {
            let _ = client.set_zero_linger();
        }
        return;
    };
    let Ok(mut upstream) = TcpStream::connect(shared.upstream).await else {
        // Upstream down: the client sees a reset, as if it had dialled it directly.
        let _ = client.set_zero_linger();
        return;
    };
    let _ = upstream.set_nodelay(true);
    if upstream.write_all(&reader.buf[..len]).await.is_err() {
        let _ = client.set_zero_linger();
        return;
    }
    if let Some(op) = &op {
        shared.count(op);
    }
    reader.buf.drain(..len);
    let how = {
        let (cr, cw) = client.split();
        let (ur, uw) = upstream.split();
        let both = async {
            tokio::join!(
                up(reader, cr, uw, shared, &kill, &hold),
                down(ur, cw, &kill, &hold)
            )
        };
        tokio::select! {
            _ = both => None,
            how = wait_kill(&mut killed) => Some(how),
        }
    };
    if how == Some(Kill::Reset) {
        let _ = client.set_zero_linger();
        let _ = upstream.set_zero_linger();
    }
    // Dropping the streams closes them: FIN, or RST with zero linger.
}

/// Cuts the client's bytes into requests (HTTP) or chunks (TCP).
struct Reader {
    buf: Vec<u8>,
    /// Past an unframeable request, the rest of the connection is forwarded as raw chunks.
    opaque: bool,
}

impl Reader {
    fn new(mode: Mode) -> Self {
        Self {
            buf: Vec::with_capacity(CHUNK),
            opaque: mode == Mode::Tcp,
        }
    }

    /// The length of the next whole request or chunk at the front of `buf`, and its
    /// operation (HTTP); `None` once the client finished or failed (what is left stays in
    /// `buf`).
    async fn next<R: AsyncReadExt + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Option<(usize, Option<String>)> {
        loop {
            if !self.opaque {
                match http::parse(&self.buf) {
                    Parsed::Head(h) if self.buf.len() >= h.len + h.body => {
                        return Some((h.len + h.body, Some(h.op.unwrap_or_default())));
                    }
                    Parsed::Head(_) | Parsed::Partial => {}
                    Parsed::Opaque => self.opaque = true,
                }
            }
            if self.opaque && !self.buf.is_empty() {
                return Some((self.buf.len(), None));
            }
            self.buf.reserve(CHUNK);
            match r.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

async fn wait_kill(killed: &mut watch::Receiver<Option<Kill>>) -> Kill {
    loop {
        if let Some(how) = *killed.borrow_and_update() {
            return how;
        }
        if killed.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Client to upstream, one request (HTTP) or chunk (TCP) at a time.
async fn up(
    mut reader: Reader,
    mut r: ReadHalf<'_>,
    mut w: WriteHalf<'_>,
    shared: &Shared,
    kill: &watch::Sender<Option<Kill>>,
    hold: &Hold,
) {
    loop {
        let Some((len, op)) = reader.next(&mut r).await else {
            // The client finished: pass on what is left, then the FIN.
            let _ = w.write_all(&reader.buf).await;
            let _ = w.shutdown().await;
            return;
        };
        if !obey(shared, op.as_deref(), kill, hold).await {
            return;
        }
        if w.write_all(&reader.buf[..len]).await.is_err() {
            kill.send_replace(Some(Kill::Reset));
            return;
        }
        if let Some(op) = &op {
            shared.count(op);
        }
        reader.buf.drain(..len);
    }
}

/// Counts one request as held while it lives (also when a kill drops it mid-delay).
struct Held<'a>(&'a AtomicU64);

impl<'a> Held<'a> {
    fn count(n: &'a AtomicU64) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Applies the first matching rule to one request or chunk; false when it ended the
/// connection.
async fn obey(
    shared: &Shared,
    op: Option<&str>,
    kill: &watch::Sender<Option<Kill>>,
    hold: &Hold,
) -> bool {
    let _counted = Held::count(&shared.held);
    let mut rules = shared.rules.subscribe();
    loop {
        rules.borrow_and_update();
        let op = op.filter(|o| !o.is_empty());
        match shared.action_for(op) {
            None => return true,
            Some(Action::Delay(d)) => {
                tokio::time::sleep(d).await;
                return true;
            }
            Some(Action::DelayResponse(d)) => {
                *hold.lock() = Some(Instant::now() + d);
                return true;
            }
            Some(Action::Hang) => {
                if rules.changed().await.is_err() {
                    return false;
                }
            }
            Some(Action::Cut) => {
                kill.send_replace(Some(Kill::Cut));
                return false;
            }
            Some(Action::Reset) => {
                kill.send_replace(Some(Kill::Reset));
                return false;
            }
        }
    }
}

/// Upstream to client, held back while a `DelayResponse` is in force.
async fn down(
    mut r: ReadHalf<'_>,
    mut w: WriteHalf<'_>,
    kill: &watch::Sender<Option<Kill>>,
    hold: &Hold,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => {
                let _ = w.shutdown().await;
                return;
            }
            Ok(n) => n,
            Err(_) => {
                kill.send_replace(Some(Kill::Reset));
                return;
            }
        };
        let until = *hold.lock();
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            kill.send_replace(Some(Kill::Reset));
            return;
        }
    }
}
