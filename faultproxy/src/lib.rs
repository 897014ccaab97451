//! A TCP proxy for tests that injects faults by real means: it sits between a chat-server task
//! and DynamoDB (moto) or Redis, and on command from the test delays, hangs, cuts (FIN) or
//! resets (RST) the traffic. In HTTP mode it reads each request's `X-Amz-Target` header, so
//! a rule can name one DynamoDB operation (`TransactWriteItems`) and slow only the writes.
//!
//! Layout:
//! - this file: [`FaultProxy`] (start, rules, one-shot cuts and resets, request counts);
//! - [`pump`]: one proxied connection, both directions, applying the rules;
//! - [`http`]: framing of HTTP/1.1 requests (head and `Content-Length` body).
//!
//! Loopback only: the listener binds 127.0.0.1 on a free port.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod http;
mod pump;

/// How the proxy reads the client's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Opaque bytes (Redis): rules without an operation apply to every chunk read.
    Tcp,
    /// HTTP/1.1 requests (DynamoDB): rules apply per request, by operation.
    Http,
}

/// What happens to a request (HTTP) or a chunk (TCP) that a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Forward it after this long: the call is slow and its write lands late.
    Delay(Duration),
    /// Forward it at once but hold the answer this long: the write lands, the call may time
    /// out before it hears so.
    DelayResponse(Duration),
    /// Hold it until the rules change (then it is looked at again).
    Hang,
    /// Close both connections (FIN) instead of forwarding it.
    Cut,
    /// Reset both connections (RST) instead of forwarding it.
    Reset,
}

/// One fault: `action` for requests of operation `op` (the part of `X-Amz-Target` after the
/// last `.`, e.g. `TransactWriteItems`), or for everything when `op` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub op: Option<String>,
    pub action: Action,
}

impl Rule {
    /// A rule for every request or chunk.
    pub fn all(action: Action) -> Self {
        Self { op: None, action }
    }

    /// A rule for one DynamoDB operation (HTTP mode).
    pub fn op(op: &str, action: Action) -> Self {
        Self {
            op: Some(op.to_string()),
            action,
        }
    }
}

/// How a connection is ended on command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kill {
    Cut,
    Reset,
}

/// State shared by the listener, every connection and the test's handle.
pub(crate) struct Shared {
    pub(crate) upstream: SocketAddr,
    pub(crate) mode: Mode,
    /// The rules in force; connections watch it so a `Hang` ends when the rules change.
    pub(crate) rules: watch::Sender<Vec<Rule>>,
    /// Live connections' kill switches, by connection number.
    conns: Mutex<HashMap<u64, watch::Sender<Option<Kill>>>>,
    next_conn: AtomicU64,
    /// Requests forwarded, by operation (`""` for a request without `X-Amz-Target`).
    forwarded: Mutex<HashMap<String, u64>>,
    /// Requests (or chunks) a `Delay` or `Hang` is holding right now.
    pub(crate) held: AtomicU64,
}

impl Shared {
    /// The first rule matching `op` (HTTP) or any rule without an operation (TCP).
    pub(crate) fn action_for(&self, op: Option<&str>) -> Option<Action> {
        self.rules
            .borrow()
            .iter()
            .find(|r| r.op.is_none() || r.op.as_deref() == op)
            .map(|r| r.action)
    }

    pub(crate) fn count(&self, op: &str) {
        *self.forwarded.lock().entry(op.to_string()).or_insert(0) += 1;
    }
}

/// A running proxy; stops accepting when dropped (live connections end with it).
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr, mode: Mode) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            mode,
            rules: watch::Sender::new(Vec::new()),
            conns: Mutex::default(),
            next_conn: AtomicU64::new(1),
            forwarded: Mutex::default(),
            held: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `redis://127.0.0.1:PORT`, for `CHAT_REDIS_URL`.
    pub fn redis_url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Replaces the rules in force (the first matching rule wins). Held requests look again.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.shared.rules.send_replace(rules);
    }

    /// Removes every rule: traffic flows again, hung requests are forwarded.
    pub fn clear(&self) {
        self.set_rules(Vec::new());
    }

    /// Closes every live connection (FIN) now; new connections are served.
    pub fn cut_all(&self) {
        self.kill_all(Kill::Cut);
    }

    /// Resets every live connection (RST) now; new connections are served.
    pub fn reset_all(&self) {
        self.kill_all(Kill::Reset);
    }

    fn kill_all(&self, how: Kill) {
        for kill in self.shared.conns.lock().values() {
            kill.send_replace(Some(how));
        }
    }

    /// Connections open through the proxy now.
    pub fn open_connections(&self) -> usize {
        self.shared.conns.lock().len()
    }

    /// Requests (HTTP) or chunks (TCP) held back by a `Delay` or `Hang` rule right now: a
    /// test waits for 0 to know every delayed request went on.
    pub fn held(&self) -> u64 {
        self.shared.held.load(Ordering::Relaxed)
    }

    /// Requests of `op` forwarded so far (HTTP mode).
    pub fn forwarded(&self, op: &str) -> u64 {
        self.shared.forwarded.lock().get(op).copied().unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.kill_all(Kill::Cut);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of descriptors or similar: back off rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let (kill, killed) = watch::channel(None);
        shared.conns.lock().insert(id, kill.clone());
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            pump::serve(client, &shared, kill, killed).await;
            shared.conns.lock().remove(&id);
        });
    }
}

#[cfg(test)]
mod house {
    #[test]
    fn the_crate_keeps_the_house_rules() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let problems = testkit::house::problems(&src, "lib.rs");
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
