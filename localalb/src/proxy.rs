//! The data path: each accepted connection goes, whole, to the target the picker chooses
//! (an HTTP keep-alive connection or a WebSocket stays on one target for its life, as on a
//! real ALB), bytes copied both ways. A target that leaves its target group keeps its open
//! connections for the group's deregistration delay, then they are cut, as the ALB does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::routes::{Picker, Routes};

/// How long connecting to a target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A registered target's cut switch and, once it has left its group, when it is cut.
struct Cut {
    token: CancellationToken,
    delay: Duration,
    at: Option<Instant>,
}

/// Shared by the accept loop and the refresher.
pub struct State {
    routes: watch::Receiver<Routes>,
    picker: Mutex<Picker>,
    cuts: Mutex<HashMap<SocketAddr, Cut>>,
}

impl State {
    pub fn new(routes: watch::Receiver<Routes>) -> Arc<State> {
        let state = Arc::new(State {
            routes,
            picker: Mutex::default(),
            cuts: Mutex::default(),
        });
        let current = state.routes.borrow().clone();
        state.reconcile(&current);
        state
    }

    /// Brings the cut switches in line with `routes`: new targets get one, targets that
    /// left get a deadline, targets past their deadline are cut.
    pub fn reconcile(&self, routes: &Routes) {
        let now = Instant::now();
        let mut cuts = self.cuts.lock().unwrap_or_else(PoisonError::into_inner);
        let present: HashMap<SocketAddr, Duration> = routes.targets().collect();
        for (addr, delay) in &present {
            let cut = cuts.entry(*addr).or_insert_with(|| Cut {
                token: CancellationToken::new(),
                delay: *delay,
                at: None,
            });
            cut.delay = *delay;
            cut.at = None;
        }
        cuts.retain(|addr, cut| {
            if present.contains_key(addr) {
                return true;
            }
            let at = *cut.at.get_or_insert(now + cut.delay);
            if at <= now {
                tracing::info!(target = %addr, "Deregistration delay over: cutting its connections");
                cut.token.cancel();
                return false;
            }
            true
        });
    }

    fn token(&self, addr: SocketAddr) -> CancellationToken {
        let mut cuts = self.cuts.lock().unwrap_or_else(PoisonError::into_inner);
        cuts.entry(addr)
            .or_insert_with(|| Cut {
                token: CancellationToken::new(),
                delay: Duration::ZERO,
                at: None,
            })
            .token
            .clone()
    }
}

/// Accepts connections forever.
pub async fn serve(listener: TcpListener, state: Arc<State>) -> anyhow::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "Accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &state).await {
                tracing::debug!(%peer, error = %e, "Connection ended with an error");
            }
        });
    }
}

async fn handle(mut client: TcpStream, state: &State) -> std::io::Result<()> {
    let picked = {
        let routes = state.routes.borrow();
        state
            .picker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pick(&routes)
    };
    let Some((group, target)) = picked else {
        return refuse(&mut client, "503 Service Unavailable").await;
    };
    let token = state.token(target);
    let upstream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await;
    let mut upstream = match upstream {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(%target, %group, error = %e, "Target refused the connection");
            return refuse(&mut client, "502 Bad Gateway").await;
        }
        Err(_) => return refuse(&mut client, "504 Gateway Timeout").await,
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => r.map(|_| ()),
        () = token.cancelled() => Ok(()),
    }
}

async fn refuse(client: &mut TcpStream, status: &str) -> std::io::Result<()> {
    let body = format!(
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\nx-localalb: no-target\r\n\r\n"
    );
    client.write_all(body.as_bytes()).await?;
    client.shutdown().await
}
