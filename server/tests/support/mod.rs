//! Shared test harness: start a real chat-server (in process on port 0, or the binary as a
//! child process), a WebSocket client that speaks the protocol, and HTTP helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_server::app::Running;
use chat_server::config::Cli;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod moderators;

pub const SECRET: &str = "test-secret-0123456789";
/// How long a test waits for any single expected event.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server running inside the test process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    running: Option<Running>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Embedded defaults in a fresh temp dir; `extra` are more flags.
    pub async fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = Self::start_in(dir.path(), extra).await;
        s._dir = Some(dir);
        s
    }

    pub async fn start_in(dir: &Path, extra: &[&str]) -> Self {
        let data = dir.to_str().expect("utf-8 path").to_string();
        let mut args = vec![
            "chat-server",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
            "--token-secret",
            SECRET,
            "--color",
            "blue",
            "--task-id",
            "test-task",
            "--drain-secs",
            "1",
        ];
        args.extend_from_slice(extra);
        let cli = Cli::try_parse_from(args).expect("valid test flags");
        let settings = cli.config.validate().expect("valid test config");
        let (stop, stopped) = oneshot::channel();
        let running = chat_server::app::start(settings, async {
            let _ = stopped.await;
        })
        .await
        .expect("server starts");
        Self {
            addr: running.addr,
            admin: running.admin_addr,
            stop: Some(stop),
            running: Some(running),
            _dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Drains and waits for the server to stop.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            running.wait().await.expect("server stops cleanly");
        }
    }
}

/// Per-address limits for a test that plays a whole audience from 127.0.0.1 (one address for
/// everyone, as behind a venue's NAT): far above what the tests open. Later entries of a test's
/// own environment override these.
pub const LOOPBACK_CROWD: &[(&str, &str)] = &[
    ("CHAT_SESSION_LIMIT_ADDR", "100000:10000"),
    ("CHAT_SESSION_LIMIT_TASK", "100000:10000"),
    ("CHAT_HISTORY_LIMIT_ADDR", "100000:10000"),
    ("CHAT_HISTORY_LIMIT_TASK", "100000:10000"),
    ("CHAT_CONNECT_LIMIT_ADDR", "100000:10000"),
];

/// A chat-server binary running as a child process (for restarts and signals).
pub struct ServerProcess {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub child: Child,
}

pub use testkit::free_port;

impl ServerProcess {
    /// Starts the binary with `env` (CHAT_LISTEN/CHAT_ADMIN_LISTEN are chosen here) and waits
    /// until /healthz answers.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let mut all = LOOPBACK_CROWD.to_vec();
        all.extend_from_slice(env);
        Self::start_on_defaults(&all).await
    }

    /// As [`ServerProcess::start`], with the per-address limits left at their defaults (the
    /// attack suite tests them).
    pub async fn start_on_defaults(env: &[(&str, &str)]) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-server"));
        cmd.env("CHAT_LISTEN", addr.to_string())
            .env("CHAT_ADMIN_LISTEN", admin.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn chat-server");
        let p = Self { addr, admin, child };
        p.wait_healthy().await;
        p
    }

    pub async fn wait_healthy(&self) {
        let url = format!("http://{}/healthz", self.addr);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(r) = http().get(&url).timeout(WAIT).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chat-server did not become healthy at {url}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGKILL, and waits for the process to be gone: a crashed task, mid-write or mid-publish.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit and returns its code.
    pub async fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "chat-server did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `POST /api/session` and the JSON answer (panics on a non-200).
pub async fn session(base: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/session"))
        .json(&body)
        .send()
        .await
        .expect("POST /api/session");
    assert_eq!(r.status(), 200, "session failed: {:?}", r.text().await);
    r.json().await.expect("json")
}

/// An HTTP client whose every request ends within [`HTTP_TIMEOUT`]: no test waits on an
/// answer that never comes (a hung task, a held store call).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .expect("HTTP client")
}

/// The longest any test HTTP request may take, body included.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// GET and the status with the JSON body; a request that fails or times out is status 0.
pub async fn get_json(url: &str) -> (u16, Value) {
    let Ok(r) = http().get(url).send().await else {
        return (0, Value::Null);
    };
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A protocol client over a real WebSocket.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub user: Value,
    pub token: String,
}

impl Client {
    /// Opens a WebSocket without saying hello.
    pub async fn raw(ws_url: &str) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("WebSocket connects");
        ws
    }

    /// New guest with `nickname`, connected and welcomed.
    pub async fn connect(base: &str, ws_url: &str, nickname: &str) -> Self {
        let s = session(base, json!({"nickname": nickname})).await;
        Self::with_token(ws_url, s["token"].as_str().expect("token")).await
    }

    /// Opens a WebSocket and sends `hello` with `token`, without waiting for the answer.
    pub async fn hello(ws_url: &str, token: &str) -> Self {
        let mut ws = Self::raw(ws_url).await;
        ws.send(Message::text(
            json!({"type": "hello", "token": token}).to_string(),
        ))
        .await
        .expect("send hello");
        Self {
            ws,
            user: Value::Null,
            token: token.to_string(),
        }
    }

    pub async fn with_token(ws_url: &str, token: &str) -> Self {
        let mut c = Self::hello(ws_url, token).await;
        let welcome = c.recv_type("welcome").await;
        c.user = welcome["user"].clone();
        c
    }

    pub fn id(&self) -> u64 {
        self.user["id"].as_u64().expect("user id")
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("send frame");
    }

    /// The next JSON frame (pings are answered by the library and skipped).
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match msg.expect("connection ended").expect("WebSocket error") {
                Message::Text(t) => return serde_json::from_str(&t).expect("frame is JSON"),
                Message::Close(c) => panic!("connection closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame of `kind`, skipping others (presence, typing, …).
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let f = self.recv().await;
            if f["type"] == kind {
                return f;
            }
            assert!(
                f["type"] != "error" || kind == "error",
                "unexpected error frame: {f}"
            );
        }
    }

    pub async fn join(&mut self, room: &str) -> Value {
        self.send(json!({"type": "join", "room": room})).await;
        self.recv_type("joined").await
    }

    /// Sends and waits for the ack; returns its seq.
    pub async fn say(&mut self, room: &str, id: &str, text: &str) -> u64 {
        self.send(json!({"type": "send", "room": room, "client_msg_id": id, "text": text}))
            .await;
        let ack = self.recv_type("ack").await;
        assert_eq!(ack["client_msg_id"], id);
        ack["seq"].as_u64().expect("seq")
    }
}

/// Reads until the server closes; returns the close code (frames before it are skipped).
pub async fn close_code(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> u16 {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for close");
        match msg {
            Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => return u16::from(code),
            Some(Ok(Message::Close(None))) => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("WebSocket error before a close frame: {e}"),
            None => panic!("connection ended without a close frame"),
        }
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chat-server"))
}

/// A real `redis-server` on a loopback port, without persistence; killed when dropped.
/// `kill` then `start_again` simulates Redis restarting (same port, empty).
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// TLS only (`rediss://`), with a certificate for 127.0.0.1 signed by this CA (PEM).
    pub tls_ca: Option<Vec<u8>>,
}

fn redis_binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| {
        panic!(
            "REDIS_SERVER is not set: run the tests through ./scripts/test.sh \
             (or `source scripts/test-env.sh` first)"
        )
    })
}

impl RedisServer {
    /// Starts on a free port and waits until it answers PING.
    pub async fn start() -> Self {
        let mut s = Self::on_port(free_port());
        s.start_again().await;
        s
    }

    /// A server on `port` that is not running yet (for a task started while Redis is down).
    pub fn on_port(port: u16) -> Self {
        Self {
            port,
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
            tls_ca: None,
        }
    }

    /// Starts a TLS-only server on a free port, with a fresh CA and certificate (openssl).
    pub async fn start_tls() -> Self {
        let mut s = Self::on_port(free_port());
        let d = s.dir.path();
        std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("write ext");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("running openssl (installed by scripts/test-env.sh)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=chat test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ]);
        s.tls_ca = Some(std::fs::read(d.join("ca.crt")).expect("read ca.crt"));
        s.start_again().await;
        s
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls_ca.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and waits until it answers PING.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let port = self.port.to_string();
        let mut cmd = Command::new(redis_binary());
        if self.tls_ca.is_some() {
            cmd.args([
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-auth-clients",
                "no",
            ])
            .args([
                "--tls-cert-file",
                "server.crt",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.crt"])
            .current_dir(self.dir.path());
        } else {
            cmd.args(["--port", &port]);
        }
        let child = cmd
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while !self.answers_ping().await {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {} within {WAIT:?}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn answers_ping(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if self.tls_ca.is_some() {
            return self.tls_client().await.is_ok();
        }
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").await.is_ok()
            && s.read_exact(&mut buf).await.is_ok()
            && &buf == b"+PONG\r\n"
    }

    /// SIGKILL: gone at once, like a crashed node.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A command connection for assertions on Redis itself.
    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        if self.tls_ca.is_some() {
            return self
                .tls_client()
                .await
                .expect("connecting to the test redis-server");
        }
        redis::Client::open(self.url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connecting to the test redis-server")
    }

    /// A client for this server as the fanout connects to it (RESP3; trusting the test CA).
    pub fn fanout_client(&self) -> redis::Client {
        let info = chat_server::fanout::redis::RedisFanout::connection_info(&self.url())
            .expect("redis url");
        match &self.tls_ca {
            Some(ca) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            )
            .expect("TLS client"),
            None => redis::Client::open(info).expect("client"),
        }
    }

    async fn tls_client(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        self.fanout_client()
            .get_multiplexed_async_connection()
            .await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns true, or panics with `what` after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
