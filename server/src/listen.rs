//! The public listener's accept loop, in place of `axum::serve`, for the bounds a hostile
//! client must not pass before a byte of its request is looked at: at most
//! [`MAX_CONNECTIONS_PER_TASK`] connections open at once on the task, and, when nothing is
//! trusted in front ([`crate::config`] `CHAT_TRUSTED_PROXIES` 0, so the peer is the client),
//! at most [`MAX_CONNECTIONS_PER_ADDRESS`] from one address; a connection past either is
//! answered `503` and closed without reading it. A request head must arrive whole within
//! [`HEADER_READ_TIMEOUT`] (a client that trickles it is closed). WebSockets keep counting
//! after their upgrade, until they close.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// Connections open at once on one task (HTTP and WebSocket alike).
pub const MAX_CONNECTIONS_PER_TASK: usize = 16_384;
/// Connections open at once from one client address, when the peer is the client (no proxy
/// trusted in front). A venue behind NAT is one address: this is sized for a venue's
/// audience, not for one person.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 4_096;
/// How long a client has to send a whole request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer to a connection past a cap, written without reading the request.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 95\r\nretry-after: 1\r\nconnection: close\r\n\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections; retry in a few seconds\"}}\n";

/// Open connections, per address and in all.
#[derive(Default)]
pub struct Open {
    per_address: Mutex<HashMap<IpAddr, usize>>,
    total: std::sync::atomic::AtomicUsize,
}

/// One admitted connection: counted until dropped.
pub struct Slot {
    open: Arc<Open>,
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open
            .total
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(ip) = self.ip {
            let mut map = self.open.per_address.lock();
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

impl Open {
    /// Counts a connection from `ip` (per address only when `per_address`), or `None` past a
    /// cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, per_address: bool) -> Option<Slot> {
        use std::sync::atomic::Ordering;
        if self.total.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS_PER_TASK {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let mut slot = Slot {
            open: Arc::clone(self),
            ip: None,
        };
        if per_address {
            let mut map = self.per_address.lock();
            let n = map.entry(ip).or_insert(0);
            if *n >= MAX_CONNECTIONS_PER_ADDRESS {
                return None;
            }
            *n += 1;
            slot.ip = Some(ip);
        }
        Some(slot)
    }

    /// Connections open now.
    pub fn count(&self) -> usize {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Serves `router` on `listener` until `stop` turns true, then lets each connection finish
/// its request and waits for them (upgraded WebSockets are the hub's to drain).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    open: Arc<Open>,
    per_address: bool,
    mut stop: watch::Receiver<bool>,
) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = open.admit(peer.ip(), per_address) else {
            tracker.spawn(refuse(stream));
            continue;
        };
        let router = router.clone();
        let stop = stop.clone();
        tracker.spawn(connection(stream, peer, router, slot, stop));
    }
    tracker.close();
    tracker.wait().await;
}

/// Resolves once `stop` is true (the guard of the value is not held across the caller's
/// awaits).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(REFUSED)).await;
    let _ = stream.shutdown().await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    slot: Slot,
    mut stop: watch::Receiver<bool>,
) {
    let slot = Held(Arc::new(slot));
    let held = slot.clone();
    let tower = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(held.clone());
        tower.call(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
    drop(slot);
}

/// A connection's place under the caps, in each of its requests' extensions: a WebSocket
/// keeps it for as long as it is open (the HTTP connection ends at the upgrade).
#[derive(Clone)]
pub struct Held(#[allow(dead_code)] Arc<Slot>);
