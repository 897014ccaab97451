//! Talking to chat-server as a client: guest sessions over HTTP, WebSocket connections from
//! several loopback source addresses (one address has only ~28 k ephemeral ports), and the
//! `hello` / `join` handshakes of the protocol.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocket};
use http_body_util::Empty;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

/// A client WebSocket as fastwebsockets hands it back after the handshake.
pub type Ws = WebSocket<TokioIo<Upgraded>>;

/// How long one protocol step (connect, hello, join) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Servers to load and the source addresses to dial from.
pub struct Dialer {
    targets: Vec<SocketAddr>,
    sources: Vec<Ipv4Addr>,
    next: AtomicUsize,
}

impl Dialer {
    /// `urls` are `http://127.0.0.1:8080` style bases (or bare `host:port`); only loopback is
    /// accepted. `sources` loopback addresses are used: 127.0.0.1, 127.0.0.2, ...
    pub fn new(urls: &[String], sources: u8) -> Result<Self> {
        let targets = urls
            .iter()
            .map(|u| parse_target(u))
            .collect::<Result<Vec<_>>>()?;
        if targets.is_empty() {
            bail!("give at least one --url");
        }
        let sources = (1..=sources.max(1))
            .map(|i| Ipv4Addr::new(127, 0, 0, i))
            .collect();
        Ok(Self {
            targets,
            sources,
            next: AtomicUsize::new(0),
        })
    }

    pub fn targets(&self) -> &[SocketAddr] {
        &self.targets
    }

    /// Opens connection number `i`: server `i % targets`, source address round robin.
    pub async fn dial(&self, i: usize) -> Result<Ws> {
        let target = self.targets[i % self.targets.len()];
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let source = self.sources[n % self.sources.len()];
        tokio::time::timeout(STEP_TIMEOUT, connect(target, source))
            .await
            .with_context(|| format!("connecting to {target} timed out"))?
    }
}

/// Parses `http://127.0.0.1:8080` (or `ws://…`, or `127.0.0.1:8080`) into a loopback address.
pub fn parse_target(url: &str) -> Result<SocketAddr> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = hostport
        .parse()
        .with_context(|| format!("--url {url:?}: expected http://127.0.0.x:PORT"))?;
    if !addr.ip().is_loopback() {
        bail!("--url {url:?}: only loopback targets (127.0.0.0/8) are allowed");
    }
    Ok(addr)
}

async fn connect(target: SocketAddr, source: Ipv4Addr) -> Result<Ws> {
    let socket = TcpSocket::new_v4().context("socket")?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(source), 0))
        .with_context(|| format!("binding source address {source}"))?;
    let stream = socket
        .connect(target)
        .await
        .with_context(|| format!("connecting {source} -> {target}"))?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    let req = hyper::Request::builder()
        .method("GET")
        .uri(format!("http://{target}/ws"))
        .header(hyper::header::HOST, target.to_string())
        .header(hyper::header::UPGRADE, "websocket")
        .header(hyper::header::CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13")
        .body(Empty::<Bytes>::new())
        .context("building the upgrade request")?;
    let (ws, _) = fastwebsockets::handshake::client(&SpawnExecutor, req, stream)
        .await
        .with_context(|| format!("WebSocket handshake with {target}"))?;
    Ok(ws)
}

/// Runs hyper's connection futures on tokio.
struct SpawnExecutor;

impl<Fut> hyper::rt::Executor<Fut> for SpawnExecutor
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::spawn(fut);
    }
}

/// Draws `n` guest sessions from the first target; returns their tokens.
pub async fn sessions(target: SocketAddr, n: usize) -> Result<Vec<String>> {
    let http = reqwest::Client::new();
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n.max(1) {
        let r = http
            .post(format!("http://{target}/api/session"))
            .json(&serde_json::json!({ "nickname": format!("load{i}") }))
            .send()
            .await
            .with_context(|| format!("POST http://{target}/api/session"))?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.context("session answer is not JSON")?;
        let Some(token) = body.get("token").and_then(|t| t.as_str()) else {
            bail!("POST /api/session answered {status}: {body}");
        };
        tokens.push(token.to_string());
    }
    Ok(tokens)
}

/// Sends one text frame.
pub async fn send_text(ws: &mut Ws, text: &[u8]) -> Result<()> {
    ws.write_frame(Frame::text(Payload::Borrowed(text)))
        .await
        .context("sending a frame")
}

/// Reads frames until a text frame starting with `prefix` arrives; an `error` frame or the
/// end of the connection fails.
pub async fn expect(ws: &mut Ws, prefix: &[u8]) -> Result<()> {
    let wait = async {
        loop {
            let frame = ws.read_frame().await.context("reading a frame")?;
            match frame.opcode {
                OpCode::Text if frame.payload.starts_with(prefix) => return Ok(()),
                OpCode::Text if frame.payload.starts_with(br#"{"type":"error""#) => {
                    bail!("server error: {}", String::from_utf8_lossy(&frame.payload))
                }
                OpCode::Close => bail!("server closed the connection"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, wait)
        .await
        .with_context(|| {
            format!(
                "no {} within {STEP_TIMEOUT:?}",
                String::from_utf8_lossy(prefix)
            )
        })?
}

/// `hello` with `token`, then waits for `welcome`.
pub async fn hello(ws: &mut Ws, token: &str) -> Result<()> {
    let frame = serde_json::json!({ "type": "hello", "token": token }).to_string();
    send_text(ws, frame.as_bytes()).await?;
    expect(ws, br#"{"type":"welcome""#).await
}

/// `join` `room`, then waits for `joined`.
pub async fn join(ws: &mut Ws, room: &str) -> Result<()> {
    let frame = serde_json::json!({ "type": "join", "room": room }).to_string();
    send_text(ws, frame.as_bytes()).await?;
    expect(ws, br#"{"type":"joined""#).await
}

/// Dials, says hello and joins: a member ready for traffic.
pub async fn member(dialer: &Dialer, i: usize, token: &str, room: &str) -> Result<Ws> {
    let mut ws = dialer.dial(i).await?;
    hello(&mut ws, token).await?;
    join(&mut ws, room).await?;
    Ok(ws)
}
