//! The attack suite (issue 14): hostile clients against the real binary on its defaults. Each
//! attack runs ten attacker sockets (or HTTP loops) for a few seconds while a bystander in
//! another room sends and times its acks; the server process's memory (VmRSS, with its peak)
//! must grow by less than 64 MiB and the bystander must keep being served (send→ack p99 under
//! `ATTACK_P99_MS`: 2 s in the test command, 250 ms in the benchmark). Every
//! attack also checks the bound that stops it (a close code, an error code, a refused request).
//!
//! The attackers speak WebSocket by hand over a `TcpStream` where a library would refuse to
//! (endless continuation frames, reserved opcodes, a zero receive window). Attacks run one at a
//! time (one server each) so their figures do not mix; each prints its figures and the load.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Client, RedisServer, SECRET, ServerProcess, session};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

/// Attacker sockets per attack.
const ATTACKERS: usize = 10;
/// How long each attack runs.
const ATTACK_FOR: Duration = Duration::from_secs(4);
/// The memory bound of the issue.
const MAX_RSS_GROWTH_MIB: f64 = 64.0;
/// The bystander's send→ack p99 bound in the test command: the attack must not starve the
/// bystander, whatever else the machine runs. Its latency is a benchmark figure: `scripts/bench.sh`
/// runs this suite on a release build with `ATTACK_P99_MS=250`, the issue's bound.
const DEFAULT_P99_BOUND_MS: f64 = 2000.0;

fn p99_bound_ms() -> f64 {
    std::env::var("ATTACK_P99_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_P99_BOUND_MS)
}
/// Growth at which an attack is stopped early: it has already failed, and the machine is shared.
const ABORT_RSS_GROWTH_MIB: f64 = 768.0;
/// Messages in the escape-heavy room, and its name.
const BIG_ROOM_MESSAGES: usize = 500;
const BIG_ROOM: &str = "big";

/// One attack at a time: figures must not mix, and the machine has two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// The target: a chat-server process on its defaults.

struct Target {
    server: ServerProcess,
    token: String,
    _redis: Option<RedisServer>,
    _dir: tempfile::TempDir,
}

impl Target {
    async fn start(with_redis: bool, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().to_str().expect("utf-8").to_string();
        let redis = if with_redis {
            Some(RedisServer::start().await)
        } else {
            None
        };
        let redis_url = redis.as_ref().map(RedisServer::url);
        let mut env = vec![
            ("CHAT_DATA_DIR", data.as_str()),
            ("CHAT_TOKEN_SECRET", SECRET),
        ];
        if let Some(url) = &redis_url {
            env.push(("CHAT_REDIS_URL", url.as_str()));
        }
        env.extend_from_slice(extra);
        let server = ServerProcess::start_on_defaults(&env).await;
        let token = session(&server.url(""), json!({"nickname": "Mallory"})).await["token"]
            .as_str()
            .expect("token")
            .to_string();
        if with_redis {
            support::eventually("the Redis link is up", || async {
                support::get_json(&server.url("/readyz")).await.0 == 200
            })
            .await;
        }
        Self {
            server,
            token,
            _redis: redis,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.server.child.id()
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Fills [`BIG_ROOM`] with messages of escape-heavy text (each character JSON-escapes to
    /// two or six bytes): one client after another, each sending a burst within the
    /// per-connection rate limit and alone in the room (no fan-out to read).
    async fn seed_big_room(&self) {
        let text: String = "\u{1}\"\\\u{2}".repeat(500);
        // Within the per-connection burst of 40 frames (the join included).
        let per_client = 38;
        let mut seeded = 0;
        for c in 0.. {
            if seeded >= BIG_ROOM_MESSAGES {
                break;
            }
            let per_client = per_client.min(BIG_ROOM_MESSAGES - seeded);
            seeded += per_client;
            // One guest (new guests per address are limited), a connection per burst.
            let mut client = Client::with_token(&self.server.ws_url(), &self.token).await;
            client.join(BIG_ROOM).await;
            for i in 0..per_client {
                client
                    .send(json!({"type": "send", "room": BIG_ROOM, "client_msg_id": format!("seed-{c}-{i}"), "text": text}))
                    .await;
            }
            for _ in 0..per_client {
                client.recv_type("ack").await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring: the server's memory and a bystander's send→ack latency.

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Resets the process's peak RSS (VmHWM) to its current RSS.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
}

/// Open sockets of the process.
fn socket_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// What one attack did to the server and the bystander.
#[derive(Debug)]
struct Figures {
    rss_growth_mib: f64,
    p99_ms: f64,
    max_ms: f64,
    acks: usize,
    load: String,
    aborted: bool,
}

impl Figures {
    /// Memory first: the figure that says most about a failed bound.
    fn assert_within_bounds(&self, name: &str) {
        assert!(
            !self.aborted && self.rss_growth_mib < MAX_RSS_GROWTH_MIB,
            "{name}: the server grew by {:.1} MiB (bound {MAX_RSS_GROWTH_MIB} MiB)",
            self.rss_growth_mib
        );
        let bound = p99_bound_ms();
        assert!(
            self.p99_ms < bound,
            "{name}: bystander p99 {:.1} ms (bound {bound} ms; load {})",
            self.p99_ms,
            self.load
        );
    }
}

/// The bystander: its own room, its own runtime thread (attacker tasks cannot starve its
/// timing), one send at a time, every 50 ms, until `stop`. Returns the ack latencies.
fn spawn_bystander(
    base: String,
    ws: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    let ready = Arc::new(std::sync::Barrier::new(2));
    let ready2 = Arc::clone(&ready);
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut by = Client::connect(&base, &ws, "Bystander").await;
            by.join("bystander").await;
            by.say("bystander", "warm-up", "hello").await;
            ready2.wait();
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("b-{n}");
                let sent = Instant::now();
                by.send(json!({"type": "send", "room": "bystander", "client_msg_id": id, "text": "still here?"}))
                    .await;
                loop {
                    let f = by.recv().await;
                    if f["type"] == "ack" && f["client_msg_id"] == id.as_str() {
                        break;
                    }
                    assert_ne!(f["type"], "error", "bystander got an error: {f}");
                }
                latencies.push(sent.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            latencies
        })
    });
    ready.wait();
    handle
}

fn p99(mut latencies: Vec<Duration>) -> (f64, f64, usize) {
    assert!(!latencies.is_empty(), "the bystander got no ack at all");
    latencies.sort();
    let idx = ((latencies.len() as f64) * 0.99).ceil() as usize - 1;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(latencies[idx.min(latencies.len() - 1)]),
        ms(latencies[latencies.len() - 1]),
        latencies.len(),
    )
}

/// Runs `attacker(i, stop)` for each of the [`ATTACKERS`] for [`ATTACK_FOR`] with a bystander,
/// measuring the server. Attackers are told to stop, then aborted.
async fn under_attack<F, Fut>(name: &str, t: &Target, attacker: F) -> Figures
where
    F: Fn(usize, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let pid = t.pid();
    let stop_bystander = Arc::new(AtomicBool::new(false));
    let bystander = spawn_bystander(
        t.server.url(""),
        t.server.ws_url(),
        Arc::clone(&stop_bystander),
    );
    let baseline = proc_status_kib(pid, "VmRSS:");
    reset_peak(pid);
    let stop = CancellationToken::new();
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|i| tokio::spawn(attacker(i, stop.clone())))
        .collect();
    let started = Instant::now();
    let mut peak = baseline;
    let mut aborted = false;
    while started.elapsed() < ATTACK_FOR {
        tokio::time::sleep(Duration::from_millis(20)).await;
        peak = peak
            .max(proc_status_kib(pid, "VmRSS:"))
            .max(proc_status_kib(pid, "VmHWM:"));
        if (peak.saturating_sub(baseline)) as f64 / 1024.0 > ABORT_RSS_GROWTH_MIB {
            aborted = true;
            break;
        }
    }
    let load = load();
    stop.cancel();
    stop_bystander.store(true, Ordering::Relaxed);
    for a in &attackers {
        a.abort();
    }
    peak = peak.max(proc_status_kib(pid, "VmHWM:"));
    let latencies = tokio::task::spawn_blocking(move || bystander.join())
        .await
        .expect("join")
        .expect("the bystander failed");
    let (p99_ms, max_ms, acks) = p99(latencies);
    let f = Figures {
        rss_growth_mib: peak.saturating_sub(baseline) as f64 / 1024.0,
        p99_ms,
        max_ms,
        acks,
        load,
        aborted,
    };
    println!(
        "ATTACK {name}: RSS growth {:.1} MiB{}, bystander p99 {:.1} ms (max {:.1} ms, {} acks), load {}",
        f.rss_growth_mib,
        if f.aborted { " (stopped early)" } else { "" },
        f.p99_ms,
        f.max_ms,
        f.acks,
        f.load
    );
    f
}

// ---------------------------------------------------------------------------------------------
// A hand-made WebSocket client.

/// Opens a TCP connection (with a small receive buffer when asked) and upgrades it.
async fn ws_connect(addr: SocketAddr, recv_buffer: Option<u32>) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(n) = recv_buffer {
        socket.set_recv_buffer_size(n)?;
    }
    let mut s = socket.connect(addr).await?;
    s.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    // Byte by byte: nothing after the head may be swallowed.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await? == 0 || head.len() > 8192 {
            return Err(std::io::Error::other("no handshake answer"));
        }
        head.push(b[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other(
            String::from_utf8_lossy(&head).into_owned(),
        ));
    }
    Ok(s)
}

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn text(v: &Value) -> Vec<u8> {
    frame(true, TEXT, v.to_string().as_bytes())
}

/// One server frame: opcode and payload (server frames are unmasked and unfragmented).
async fn read_frame(r: &mut (impl AsyncRead + Unpin)) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).await?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        r.read_exact(&mut b).await?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).await?;
        len = u64::from_be_bytes(b);
    }
    let mut payload = vec![0; usize::try_from(len).expect("length")];
    r.read_exact(&mut payload).await?;
    Ok((h[0] & 0x0f, payload))
}

/// Says hello and reads up to the `welcome`.
async fn hello(s: &mut TcpStream, token: &str) -> std::io::Result<()> {
    s.write_all(&text(&json!({"type": "hello", "token": token})))
        .await?;
    loop {
        let (op, payload) = read_frame(s).await?;
        if op == CLOSE {
            return Err(std::io::Error::other("closed instead of welcome"));
        }
        if op == TEXT && payload.starts_with(br#"{"type":"welcome""#) {
            return Ok(());
        }
    }
}

/// What the attackers saw: close codes and error codes from the server.
#[derive(Default)]
struct Seen {
    closes: parking_lot::Mutex<Vec<u16>>,
    errors: parking_lot::Mutex<Vec<String>>,
    connections: AtomicU64,
}

impl Seen {
    fn closes_with(&self, code: u16) -> usize {
        self.closes.lock().iter().filter(|c| **c == code).count()
    }

    fn errors_with(&self, code: &str) -> usize {
        self.errors.lock().iter().filter(|c| *c == code).count()
    }
}

/// Reads everything the server sends until it ends, noting close and error codes.
async fn watch(mut r: impl AsyncRead + Unpin, seen: Arc<Seen>) {
    while let Ok((op, payload)) = read_frame(&mut r).await {
        if op == CLOSE {
            let code = payload
                .get(..2)
                .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
            seen.closes.lock().push(code);
            return;
        }
        if op == TEXT
            && let Ok(v) = serde_json::from_slice::<Value>(&payload)
            && v["type"] == "error"
        {
            seen.errors
                .lock()
                .push(v["code"].as_str().unwrap_or("").to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The attacks.

/// One text message as endless 16 KiB continuation frames (FIN=0), before or after `hello`;
/// reconnects whenever the server closes.
async fn continuation_flood(
    addr: SocketAddr,
    token: Option<String>,
    seen: Arc<Seen>,
    stop: CancellationToken,
) {
    let first = frame(false, TEXT, &[b' '; 16 * 1024]);
    let more = frame(false, CONTINUATION, &[b' '; 16 * 1024]);
    while !stop.is_cancelled() {
        let Ok(mut s) = ws_connect(addr, None).await else {
            continue;
        };
        if let Some(token) = &token
            && hello(&mut s, token).await.is_err()
        {
            continue;
        }
        seen.connections.fetch_add(1, Ordering::Relaxed);
        let (r, mut w) = s.into_split();
        let watcher = tokio::spawn(watch(r, Arc::clone(&seen)));
        if w.write_all(&first).await.is_ok() {
            while !stop.is_cancelled() && w.write_all(&more).await.is_ok() {}
        }
        let _ = watcher.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_continuation_frames_before_hello() {
    let _serial = SERIAL.lock().await;
    let t = Target::start(false, &[]).await;
    let seen = Arc::new(Seen::default());
    let (addr, s) = (t.addr(), &seen);
    let f = under_attack("continuation frames before hello", &t, |_, stop| {
        continuation_flood(addr, None, Arc::clone(s), stop)
    })
    .await;
    assert!(
        seen.closes_with(1009) >= ATTACKERS,
        "each flooder is closed with 1009; closes seen: {:?}",
        seen.closes.lock()
    );
    f.assert_within_bounds("continuation frames before hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_continuation_frames_after_hello() {
    let _serial = SERIAL.lock().await;
    let t = Target::start(false, &[]).await;
    let seen = Arc::new(Seen::default());
    let (addr, token, s) = (t.addr(), t.token.clone(), &seen);
    let f = under_attack("continuation frames after hello", &t, |_, stop| {
        continuation_flood(addr, Some(token.clone()), Arc::clone(s), stop)
    })
    .await;
    assert!(
        seen.closes_with(1009) >= ATTACKERS,
        "each flooder is closed with 1009; closes seen: {:?}",
        seen.closes.lock()
    );
    f.assert_within_bounds("continuation frames after hello");
}

/// A client that never reads, repeating `join` with `after: 0` in the big room at the rate
/// limit; reconnects whenever the server gives up on it.
async fn join_repeater(addr: SocketAddr, token: String, seen: Arc<Seen>, stop: CancellationToken) {
    let join = text(&json!({"type": "join", "room": BIG_ROOM, "after": 0}));
    while !stop.is_cancelled() {
        let Ok(mut s) = ws_connect(addr, Some(4096)).await else {
            continue;
        };
        if hello(&mut s, &token).await.is_err() {
            continue;
        }
        seen.connections.fetch_add(1, Ordering::Relaxed);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            let write = tokio::time::timeout(Duration::from_secs(1), s.write_all(&join)).await;
            if stop.is_cancelled() || !matches!(write, Ok(Ok(()))) {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_reading_client_repeating_join_after_0() {
    let _serial = SERIAL.lock().await;
    let t = Target::start(false, &[]).await;
    t.seed_big_room().await;
    let seen = Arc::new(Seen::default());
    let (addr, token, s) = (t.addr(), t.token.clone(), &seen);
    let f = under_attack("repeated join after 0, never reading", &t, |_, stop| {
        join_repeater(addr, token.clone(), Arc::clone(s), stop)
    })
    .await;
    f.assert_within_bounds("repeated join after 0, never reading");
}

/// Joins new rooms at the rate limit, reading what comes back; reconnects when refused.
async fn room_collector(
    addr: SocketAddr,
    token: String,
    i: usize,
    seen: Arc<Seen>,
    stop: CancellationToken,
) {
    let mut n = 0u64;
    while !stop.is_cancelled() {
        let Ok(mut s) = ws_connect(addr, None).await else {
            continue;
        };
        if hello(&mut s, &token).await.is_err() {
            continue;
        }
        seen.connections.fetch_add(1, Ordering::Relaxed);
        let (r, mut w) = s.into_split();
        let watcher = tokio::spawn(watch(r, Arc::clone(&seen)));
        let mut tick = tokio::time::interval(Duration::from_millis(55));
        let refused_before = seen.errors_with("too_many_rooms");
        while !stop.is_cancelled() && !watcher.is_finished() {
            tick.tick().await;
            n += 1;
            let join = text(&json!({"type": "join", "room": format!("flood-{i}-{n}")}));
            if w.write_all(&join).await.is_err() {
                break;
            }
            if seen.errors_with("too_many_rooms") > refused_before {
                break;
            }
        }
        watcher.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_flood_across_many_rooms() {
    let _serial = SERIAL.lock().await;
    let t = Target::start(true, &[]).await;
    let seen = Arc::new(Seen::default());
    let (addr, token, s) = (t.addr(), t.token.clone(), &seen);
    let f = under_attack(
        "join flood across many rooms (Redis fanout)",
        &t,
        |i, stop| room_collector(addr, token.clone(), i, Arc::clone(s), stop),
    )
    .await;
    assert!(
        seen.errors_with("too_many_rooms") >= 1,
        "collectors are refused at the rooms-per-connection cap; errors: {:?}",
        seen.errors.lock().iter().take(20).collect::<Vec<_>>()
    );
    f.assert_within_bounds("join flood across many rooms");
}

/// A peer with a (nearly) zero receive window: joins the big room with `after: 0` a few
/// times without reading, then breaks the protocol (invalid UTF-8) so the server ends the
/// connection, and holds its socket open without reading.
async fn zero_window_peer(
    addr: SocketAddr,
    token: String,
    held: Arc<parking_lot::Mutex<Vec<TcpStream>>>,
    stop: CancellationToken,
) {
    let join = text(&json!({"type": "join", "room": BIG_ROOM, "after": 0}));
    let Ok(mut s) = ws_connect(addr, Some(1024)).await else {
        return;
    };
    if hello(&mut s, &token).await.is_err() {
        return;
    }
    for _ in 0..3 {
        if s.write_all(&join).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = s.write_all(&frame(true, TEXT, &[0xff, 0xfe, 0xfd])).await;
    held.lock().push(s);
    stop.cancelled().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_window_peer_pins_nothing() {
    let _serial = SERIAL.lock().await;
    let t = Target::start(false, &[]).await;
    t.seed_big_room().await;
    let sockets_before = socket_count(t.pid());
    let held = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (addr, token, h) = (t.addr(), t.token.clone(), &held);
    let f = under_attack("zero receive window", &t, |_, stop| {
        zero_window_peer(addr, token.clone(), Arc::clone(h), stop)
    })
    .await;
    assert_eq!(
        held.lock().len(),
        ATTACKERS,
        "every peer got its connection"
    );
    // The peers still hold their sockets open without reading: the server must let go of its
    // ends (writer, queue, socket) once it has read their last frame (it may still be busy
    // with their joins: each reads 500 messages), whatever the peers do.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = socket_count(t.pid());
        if now <= sockets_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server still holds {} sockets more than before, 30 s after the attack",
            now - sockets_before
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f.assert_within_bounds("zero receive window");
    drop(held);
}

/// Floods `frames` in turn as fast as the server takes them, reading replies; reconnects
/// when closed.
async fn frame_flood(
    addr: SocketAddr,
    token: String,
    frames: Arc<Vec<Vec<u8>>>,
    seen: Arc<Seen>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let Ok(mut s) = ws_connect(addr, None).await else {
            continue;
        };
        if hello(&mut s, &token).await.is_err() {
            continue;
        }
        seen.connections.fetch_add(1, Ordering::Relaxed);
        let (r, mut w) = s.into_split();
        let watcher = tokio::spawn(watch(r, Arc::clone(&seen)));
        'conn: while !stop.is_cancelled() {
            for f in frames.iter() {
                if w.write_all(f).await.is_err() || watcher.is_finished() {
                    break 'conn;
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), watcher).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_flood() {
    let _serial = SERIAL.lock().await;
    let t = Target::start(false, &[]).await;
    let frames = Arc::new(vec![
        frame(true, TEXT, b"{not json"),
        frame(true, TEXT, br#"{"type":"dance"}"#),
        frame(true, TEXT, br#"{"type":"join"}"#),
        frame(true, BINARY, b"\x00\x01\x02"),
        frame(
            true,
            TEXT,
            format!("[{}]", "1,".repeat(5000) + "1").as_bytes(),
        ),
    ]);
    flood_until_closed("malformed frame flood", &t, frames, "malformed frames").await;
}

/// Ten flooders send `frames` in turn; `what` must count toward the rate limit, so each
/// flooder is closed with 1008, and the bounds hold.
async fn flood_until_closed(name: &str, t: &Target, frames: Arc<Vec<Vec<u8>>>, what: &str) {
    let seen = Arc::new(Seen::default());
    let (addr, token, s) = (t.addr(), t.token.clone(), &seen);
    let f = under_attack(name, t, |_, stop| {
        frame_flood(
            addr,
            token.clone(),
            Arc::clone(&frames),
            Arc::clone(s),
            stop,
        )
    })
    .await;
    assert!(
        seen.closes_with(1008) >= ATTACKERS,
        "{what} count toward the rate limit: each flooder is closed with 1008; closes seen: {:?}",
        seen.closes.lock()
    );
    f.assert_within_bounds(name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood() {
    let _serial = SERIAL.lock().await;
    let t = Target::start(false, &[]).await;
    let frames = Arc::new(vec![frame(true, PING, &[b'p'; 125])]);
    flood_until_closed("ping-only flood", &t, frames, "pings").await;
}

/// HTTP outcomes of a request loop, by client kind.
#[derive(Default)]
struct HttpTally {
    ok_one_address: AtomicU64,
    ok_spoofed: AtomicU64,
    limited: AtomicU64,
    other: AtomicU64,
}

/// Loops `request` as fast as answers come. Even attackers come from one address (no
/// X-Forwarded-For); odd ones claim a new address every time behind the trusted ALB hop.
async fn http_loop(
    i: usize,
    url: String,
    post: bool,
    tally: Arc<HttpTally>,
    stop: CancellationToken,
) {
    let http = reqwest::Client::new();
    let mut n = 0u32;
    while !stop.is_cancelled() {
        n += 1;
        let mut req = if post {
            http.post(&url).json(&json!({}))
        } else {
            http.get(&url)
        };
        let spoofed = i % 2 == 1;
        if spoofed {
            req = req.header(
                "x-forwarded-for",
                format!("10.{}.{}.{}", i, n / 250 % 250, n % 250),
            );
        }
        let Ok(r) = req.send().await else { continue };
        let status = r.status().as_u16();
        let _ = r.bytes().await;
        let counter = match (status, spoofed) {
            (200, false) => &tally.ok_one_address,
            (200, true) => &tally.ok_spoofed,
            (429, _) => &tally.limited,
            _ => &tally.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Ten HTTP loops on `path` against a task whose per-address and per-task limits of this kind
/// (`CHAT_{kind}_LIMIT_ADDR` 60:10, `CHAT_{kind}_LIMIT_TASK` 600:50: low enough that even a
/// slow loop on a busy machine passes them in 4 s) must refuse them with 429. Half the loops
/// spoof a new `X-Forwarded-For` address each time (only the task's limit holds those back).
/// Returns what one address and the spoofed ones were served.
async fn http_loop_attack(name: &str, kind: &str, path: &str, seed: bool) -> (u64, u64) {
    let _serial = SERIAL.lock().await;
    let (addr_var, task_var) = (
        format!("CHAT_{kind}_LIMIT_ADDR"),
        format!("CHAT_{kind}_LIMIT_TASK"),
    );
    let t = Target::start(false, &[(&addr_var, "60:10"), (&task_var, "600:50")]).await;
    if seed {
        t.seed_big_room().await;
    }
    let tally = Arc::new(HttpTally::default());
    let (url, tl) = (t.server.url(path), &tally);
    // Sessions are created with a POST; history is read with a GET.
    let post = kind == "SESSION";
    let f = under_attack(name, &t, |i, stop| {
        http_loop(i, url.clone(), post, Arc::clone(tl), stop)
    })
    .await;
    let one = tally.ok_one_address.load(Ordering::Relaxed);
    let spoofed = tally.ok_spoofed.load(Ordering::Relaxed);
    let limited = tally.limited.load(Ordering::Relaxed);
    println!(
        "  {name}: {one} served to one address, {spoofed} to spoofed addresses; {limited} refused with 429"
    );
    assert!(limited > 0, "the loop is refused with 429");
    assert_eq!(tally.other.load(Ordering::Relaxed), 0, "only 200 or 429");
    // 60/min, burst 10 per address (the session of `Target::start` included).
    assert!(
        one <= 10 + 60 * ATTACK_FOR.as_secs() / 60 + 2,
        "one address was served {one} times in {ATTACK_FOR:?}"
    );
    f.assert_within_bounds(name);
    (one, spoofed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_loop() {
    let (one, spoofed) =
        http_loop_attack("POST /api/session loops", "SESSION", "/api/session", false).await;
    // The user counter advances by the sessions created: bounded per task too (600/min,
    // burst 50).
    assert!(
        one + spoofed <= 50 + 600 * ATTACK_FOR.as_secs() / 60 + 2,
        "the task created {} sessions in {ATTACK_FOR:?}",
        one + spoofed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_read_loop() {
    let path = format!("/api/rooms/{BIG_ROOM}/messages?after=0&limit=20");
    http_loop_attack("history-read loops", "HISTORY", &path, true).await;
}

/// Pongs are activity: a client that only answers the server's pings stays connected past
/// the idle timeout, while one that answers nothing is closed at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_only_answers_pings_stays_and_a_silent_one_goes() {
    let _serial = SERIAL.lock().await;
    // Pings every second: the idle timeout is three intervals.
    let t = Target::start(false, &[("CHAT_PING_INTERVAL_SECS", "1")]).await;
    let mut polite = Client::with_token(&t.server.ws_url(), &t.token).await;
    let mut silent = ws_connect(t.addr(), None).await.expect("connect");
    hello(&mut silent, &t.token).await.expect("hello");
    let seen = Arc::new(Seen::default());
    // The silent client reads (so its window stays open) but never answers a ping.
    let silent_watch = tokio::spawn(watch(silent, Arc::clone(&seen)));
    // Reading makes tungstenite answer each ping with a pong, and nothing else is sent.
    let until = Instant::now() + Duration::from_secs(5);
    while let Ok(Some(msg)) = tokio::time::timeout_at(until.into(), polite.ws.next()).await {
        msg.expect("the polite client stays connected");
    }
    assert!(
        silent_watch.is_finished(),
        "the silent client is closed after three ping intervals"
    );
    assert_eq!(seen.closes.lock().as_slice(), &[1008]);
    let joined = polite.join("still-here").await;
    assert_eq!(joined["room"], "still-here");
}

/// Upload bodies held open per attacker (ten attackers: sixty bodies).
const BODIES_PER_ATTACKER: usize = 6;

/// One connection that PUTs most of a 5 MiB body to `path` (with `token`, or none), then
/// holds it open until `stop` or until the server ends it; then again.
async fn body_holder(
    addr: SocketAddr,
    path: String,
    token: Option<String>,
    stop: CancellationToken,
) {
    let total: usize = 5 * 1024 * 1024;
    let chunk = vec![b'x'; 64 * 1024];
    while !stop.is_cancelled() {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            continue;
        };
        let auth = token
            .as_ref()
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "PUT {path} HTTP/1.1\r\nhost: chat\r\ncontent-type: image/png\r\n{auth}content-length: {total}\r\n\r\n"
        );
        if s.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        // Most of the body, never the last kilobyte: the server must not wait on it with
        // the rest in memory.
        let mut sent = 0;
        while sent + chunk.len() < total - 1024 && !stop.is_cancelled() {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        let mut buf = [0u8; 1024];
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = s.read(&mut buf) => {}
        }
    }
}

/// Sixty connections each sending most of a 5 MiB `PUT /api/uploads/{id}` (the issue's
/// report: 300 MiB of bodies buffered before anyone was checked): half without a token,
/// half with a valid token and slot (those are read at most `MAX_UPLOAD_BODIES` at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_upload_bodies_held_open() {
    let _serial = SERIAL.lock().await;
    let t = Target::start(false, &[]).await;
    let r = reqwest::Client::new()
        .post(t.server.url("/api/uploads"))
        .bearer_auth(&t.token)
        .json(&json!({"content_type": "image/png", "bytes": 5 * 1024 * 1024}))
        .send()
        .await
        .expect("POST /api/uploads");
    assert_eq!(r.status(), 200);
    let slot: Value = r.json().await.expect("slot");
    let path = slot["upload"]["url"]
        .as_str()
        .expect("upload url")
        .to_string();
    assert!(path.starts_with("/api/uploads/"), "{path}");
    let (addr, token) = (t.addr(), t.token.clone());
    let f = under_attack("60 upload bodies held open", &t, |i, stop| {
        let (path, token) = (path.clone(), (i % 2 == 1).then(|| token.clone()));
        async move {
            let holders: Vec<_> = (0..BODIES_PER_ATTACKER)
                .map(|_| tokio::spawn(body_holder(addr, path.clone(), token.clone(), stop.clone())))
                .collect();
            stop.cancelled().await;
            for h in holders {
                h.abort();
            }
        }
    })
    .await;
    f.assert_within_bounds("60 upload bodies held open");
}

/// A client that sends its request head a byte at a time is closed at the header-read
/// timeout, and a connection past the per-address cap is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_head_is_closed_at_the_header_timeout() {
    let _serial = SERIAL.lock().await;
    let t = Target::start(false, &[]).await;
    let mut s = TcpStream::connect(t.addr()).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut buf = [0u8; 256];
    // Nothing more is sent: the server must end the connection within its 10 s timeout.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection is still open after 20 s");
    let took = started.elapsed();
    println!("a trickled request head was closed after {took:?}");
    assert!(took >= Duration::from_secs(9), "closed after {took:?}");
}

/// Ten guests flood `typing` into a room (one every 50 ms each, within the frame rate): a
/// member of that room receives at most about one per attacker per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typing_flood() {
    let _serial = SERIAL.lock().await;
    let t = Target::start(false, &[]).await;
    let (base, ws) = (t.server.url(""), t.server.ws_url());
    let mut reader = Client::connect(&base, &ws, "Reader").await;
    reader.join("typing").await;
    let typed = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&typed);
    let counting = tokio::spawn(async move {
        while let Some(Ok(m)) = reader.ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = m
                && t.contains("\"type\":\"typing\"")
            {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let (b, w) = (base.clone(), ws.clone());
    let started = Instant::now();
    let f = under_attack("typing flood", &t, |i, stop| {
        let (b, w) = (b.clone(), w.clone());
        async move {
            let mut c = Client::connect(&b, &w, &format!("Typist{i}")).await;
            c.join("typing").await;
            while !stop.is_cancelled() {
                c.send(json!({"type": "typing", "room": "typing"})).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    counting.abort();
    let got = typed.load(Ordering::Relaxed);
    println!("  typing flood: the reader got {got} typing frames in {secs:.1} s");
    assert!(
        (got as f64) <= ATTACKERS as f64 * (secs + 1.0),
        "{got} typing frames in {secs:.1} s from {ATTACKERS} typists"
    );
    f.assert_within_bounds("typing flood");
}
