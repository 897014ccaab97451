//! One simulated user, as the protocol says a client behaves: it keeps one WebSocket to any
//! live task, joins its room with `after` = the highest seq it has, pages the rest of a
//! long absence over REST by the highest seq that catch-up itself returned, sends numbered
//! messages one at a time and retries each with its `client_msg_id` until it is acked.
//! Now and then it leaves and comes back (churn), as people do. Every step has a deadline,
//! and the whole client stops the moment the test says so.
//! Everything it sees goes into its [`Log`] for the verdict.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::cluster::Urls;

/// A send unanswered this long is sent again (same `client_msg_id`).
const ACK_TIMEOUT: Duration = Duration::from_secs(20);
/// A connection, hello, join, frame write or history page that takes longer is abandoned
/// and tried again.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// A `join` (store reads behind every other client's) may take longer on a loaded machine.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed connection: random up to this, doubling per failure in a row up to
/// [`MAX_BACKOFF`], so a crowd that lost its task does not come back as one herd.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What one client saw.
#[derive(Debug, Default)]
pub struct Log {
    pub room: String,
    /// Highest seq of the first `joined` frame: every acked message above it must arrive.
    pub start: Option<u64>,
    /// Every message received (joined, live or REST catch-up): seq -> client_msg_id.
    pub received: BTreeMap<u64, String>,
    /// Seqs that came in `joined` or live frames (each must come once).
    pub streamed: HashSet<u64>,
    pub duplicates: Vec<u64>,
    /// (previous seq, seq) pairs where a frame came out of seq order on a connection.
    pub out_of_order: Vec<(u64, u64)>,
    /// client_msg_id -> seq of its ack.
    pub acks: HashMap<String, u64>,
    /// client_msg_ids acked twice with different seqs.
    pub ack_conflicts: Vec<String>,
    /// The send not acked yet (retried until it is).
    pub outstanding: Option<String>,
    /// Connections opened (the first and every reconnect).
    pub connections: u32,
    /// Colour of the task this client is welcomed on now (`welcome.server.color`), `None`
    /// between connections: how many clients each colour holds, as the clients see it.
    pub color: Option<String>,
    /// Why connections ended, by reason (for the report).
    pub ends: BTreeMap<String, u32>,
}

/// What the test tells every client.
#[derive(Default)]
pub struct Control {
    /// New messages are sent (and clients churn) while set; an outstanding one is retried
    /// regardless.
    pub sending: AtomicBool,
    /// Cancelled at the end: every client stops at once, wherever it is.
    pub stop: CancellationToken,
}

pub struct Client {
    id: usize,
    token: String,
    urls: Urls,
    control: Arc<Control>,
    pub log: Arc<Mutex<Log>>,
    rng: StdRng,
    /// Mean time between this client's sends.
    every: Duration,
    /// Mean time it stays connected before it leaves and comes back on its own (while the
    /// test sends): joins with `after` keep landing on every task, restarted ones too.
    stay: Duration,
    next_n: u64,
    /// When it first connects (clients arrive spread out, as people do).
    arrives_after: Duration,
    /// Connections in a row that failed before being joined.
    failures: u32,
}

enum End {
    /// The server asked to reconnect after this long (drain).
    Reconnect(Duration),
    /// The connection broke or a step failed, and why.
    Broken(String),
}

/// A client's pace.
pub struct Pace {
    /// Mean time between its sends.
    pub every: Duration,
    /// Mean time it stays connected before leaving and coming back.
    pub stay: Duration,
    /// When it first connects.
    pub arrives_after: Duration,
}

impl Client {
    pub fn new(
        id: usize,
        room: String,
        token: String,
        urls: Urls,
        control: Arc<Control>,
        seed: u64,
        pace: Pace,
    ) -> Self {
        Self {
            id,
            token,
            urls,
            control,
            log: Arc::new(Mutex::new(Log {
                room,
                ..Log::default()
            })),
            rng: StdRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            every: pace.every,
            stay: pace.stay,
            next_n: 0,
            arrives_after: pace.arrives_after,
            failures: 0,
        }
    }

    fn room(&self) -> String {
        self.log.lock().room.clone()
    }

    /// Runs until the control says stop: then returns at once, whatever it was doing.
    pub async fn run(mut self) {
        let stop = self.control.stop.clone();
        stop.run_until_cancelled(async move {
            tokio::time::sleep(self.arrives_after).await;
            loop {
                let live: Vec<String> = self.urls.read().iter().flatten().cloned().collect();
                let pause = if live.is_empty() {
                    Duration::from_millis(100)
                } else {
                    let base = live[self.rng.random_range(0..live.len())].clone();
                    let end = self.connection(&base).await;
                    self.log.lock().color = None;
                    match end {
                        End::Reconnect(after) => after,
                        End::Broken(why) => {
                            *self.log.lock().ends.entry(why).or_default() += 1;
                            self.backoff()
                        }
                    }
                };
                tokio::time::sleep(pause).await;
            }
        })
        .await;
    }

    /// A random pause before trying again, growing with the failures in a row.
    fn backoff(&mut self) -> Duration {
        let cap = FIRST_BACKOFF
            .saturating_mul(1 << self.failures.min(6))
            .min(MAX_BACKOFF);
        self.failures += 1;
        Duration::from_millis(100 + self.rng.random_range(0..cap.as_millis() as u64))
    }

    fn next_send_at(&mut self) -> Instant {
        let mean = self.every.as_secs_f64();
        let wait = -mean * (1.0 - self.rng.random::<f64>()).ln();
        Instant::now() + Duration::from_secs_f64(wait.min(mean * 5.0))
    }

    async fn connection(&mut self, base: &str) -> End {
        let ws_url = format!("{}/ws", base.replacen("http://", "ws://", 1));
        let Ok(Ok((mut ws, _))) =
            tokio::time::timeout(STEP_TIMEOUT, tokio_tungstenite::connect_async(ws_url)).await
        else {
            return End::Broken("connect failed".into());
        };
        self.log.lock().connections += 1;
        let room = self.room();
        let hello = json!({"type": "hello", "token": self.token});
        if !send(&mut ws, hello).await {
            return End::Broken("hello not sent".into());
        }
        match expect(&mut ws, "welcome", STEP_TIMEOUT).await {
            Ok(welcome) => {
                self.log.lock().color = welcome["server"]["color"].as_str().map(str::to_string);
            }
            Err(why) => return End::Broken(format!("no welcome: {why}")),
        }
        let after = self.log.lock().received.last_key_value().map(|(s, _)| *s);
        let join = match after {
            Some(a) => json!({"type": "join", "room": room, "after": a}),
            None => json!({"type": "join", "room": room}),
        };
        if !send(&mut ws, join).await {
            return End::Broken("join not sent".into());
        }
        let joined = match expect(&mut ws, "joined", JOIN_TIMEOUT).await {
            Ok(joined) => joined,
            Err(why) => return End::Broken(format!("no joined: {why}")),
        };
        self.failures = 0;
        // Seq order is checked per connection, from the join point on.
        let mut last = after.unwrap_or(0);
        let messages = joined["messages"].as_array().cloned().unwrap_or_default();
        for m in &messages {
            self.streamed(&mut last, m);
        }
        {
            let mut log = self.log.lock();
            if log.start.is_none() {
                log.start = Some(last);
            }
        }
        if joined["has_more"] == true {
            let from = messages
                .last()
                .and_then(|m| m["seq"].as_u64())
                .unwrap_or(last);
            if !self.catch_up(base, &room, from).await {
                return End::Broken("catch-up failed".into());
            }
        }

        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut next_send = self.next_send_at();
        let stay = -self.stay.as_secs_f64() * (1.0 - self.rng.random::<f64>()).ln();
        let leave_at = Instant::now() + Duration::from_secs_f64(stay);
        // When the outstanding send goes (again).
        let mut resend_at = Some(Instant::now());
        loop {
            tokio::select! {
                frame = ws.next() => {
                    let f = match frame {
                        Some(Ok(Message::Text(t))) => match serde_json::from_str::<Value>(&t) {
                            Ok(f) => f,
                            Err(_) => return End::Broken("bad frame".into()),
                        },
                        Some(Ok(Message::Close(c))) => {
                            let code = c.map_or(0, |c| u16::from(c.code));
                            return End::Broken(format!("closed {code}"));
                        }
                        Some(Err(_)) | None => return End::Broken("connection lost".into()),
                        Some(Ok(_)) => continue,
                    };
                    match f["type"].as_str().unwrap_or("") {
                        "message" if f["room"] == room => self.streamed(&mut last, &f),
                        "ack" => {
                            let id = f["client_msg_id"].as_str().unwrap_or("").to_string();
                            let seq = f["seq"].as_u64().unwrap_or(0);
                            let mut log = self.log.lock();
                            if let Some(prev) = log.acks.insert(id.clone(), seq)
                                && prev != seq
                            {
                                log.ack_conflicts.push(id.clone());
                            }
                            if log.outstanding.as_deref() == Some(&id) {
                                log.outstanding = None;
                                resend_at = None;
                                drop(log);
                                next_send = self.next_send_at();
                            }
                        }
                        "error" => {
                            let mine = f["client_msg_id"].as_str().is_some()
                                && f["client_msg_id"].as_str() == self.log.lock().outstanding.as_deref();
                            if mine {
                                resend_at = Some(
                                    Instant::now()
                                        + Duration::from_millis(self.rng.random_range(200..1_500)),
                                );
                            } else if f["code"] == "not_joined" {
                                return End::Broken("not_joined".into());
                            }
                        }
                        "reconnect" => {
                            let why = format!("reconnect {}", f["reason"].as_str().unwrap_or("?"));
                            *self.log.lock().ends.entry(why).or_default() += 1;
                            let ms = f["retry_after_ms"].as_u64().unwrap_or(500);
                            return End::Reconnect(Duration::from_millis(
                                ms + self.rng.random_range(0..500),
                            ));
                        }
                        _ => {}
                    }
                }
                _ = tick.tick() => {
                    if self.control.sending.load(Ordering::Relaxed) && Instant::now() >= leave_at {
                        // Churn: leave (even with a send unanswered) and come back soon.
                        let _ = tokio::time::timeout(STEP_TIMEOUT, ws.close(None)).await;
                        return End::Reconnect(Duration::from_millis(self.rng.random_range(0..1_000)));
                    }
                    let outstanding = self.log.lock().outstanding.clone();
                    let now = Instant::now();
                    let id = match outstanding {
                        Some(id) if resend_at.is_some_and(|t| now >= t) => Some(id),
                        None if self.control.sending.load(Ordering::Relaxed) && now >= next_send => {
                            self.next_n += 1;
                            let id = format!("c{}-{}", self.id, self.next_n);
                            self.log.lock().outstanding = Some(id.clone());
                            Some(id)
                        }
                        _ => None,
                    };
                    if let Some(id) = id {
                        resend_at = Some(now + ACK_TIMEOUT);
                        let frame = json!({"type": "send", "room": room, "client_msg_id": id, "text": id});
                        if !send(&mut ws, frame).await {
                            return End::Broken("send not sent".into());
                        }
                    }
                }
            }
        }
    }

    /// A `message` from a `joined` frame or live: in seq order on this connection, once ever.
    fn streamed(&self, last: &mut u64, m: &Value) {
        let (Some(seq), Some(id)) = (m["seq"].as_u64(), m["client_msg_id"].as_str()) else {
            return;
        };
        let mut log = self.log.lock();
        if !log.streamed.insert(seq) {
            log.duplicates.push(seq);
            return;
        }
        if seq <= *last {
            log.out_of_order.push((*last, seq));
        }
        *last = (*last).max(seq);
        log.received.insert(seq, id.to_string());
    }

    /// Pages `GET /api/rooms/{room}/messages?after=` from `from`, each page after the highest
    /// seq the catch-up itself returned, until nothing more matches.
    async fn catch_up(&self, base: &str, room: &str, mut from: u64) -> bool {
        let http = reqwest::Client::builder()
            .timeout(STEP_TIMEOUT)
            .build()
            .expect("HTTP client");
        loop {
            let url = format!("{base}/api/rooms/{room}/messages?after={from}&limit=200");
            let Ok(r) = http.get(&url).send().await else {
                return false;
            };
            if r.status() != 200 {
                return false;
            }
            let Ok(page) = r.json::<Value>().await else {
                return false;
            };
            let messages = page["messages"].as_array().cloned().unwrap_or_default();
            {
                let mut log = self.log.lock();
                for m in &messages {
                    if let (Some(seq), Some(id)) = (m["seq"].as_u64(), m["client_msg_id"].as_str())
                    {
                        log.received.entry(seq).or_insert_with(|| id.to_string());
                        from = from.max(seq);
                    }
                }
            }
            if page["has_more"] != true || messages.is_empty() {
                return true;
            }
        }
    }
}

/// Writes one frame within [`STEP_TIMEOUT`]; false when the connection is no good.
async fn send<S>(ws: &mut S, frame: Value) -> bool
where
    S: SinkExt<Message> + Unpin,
{
    matches!(
        tokio::time::timeout(STEP_TIMEOUT, ws.send(Message::text(frame.to_string()))).await,
        Ok(Ok(()))
    )
}

/// Reads until a frame of `kind`; why not on an error frame, a close or a timeout.
async fn expect<S>(ws: &mut S, kind: &str, within: Duration) -> Result<Value, String>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = Instant::now() + within;
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err("timed out".into()),
            Ok(None) | Ok(Some(Err(_))) => return Err("connection lost".into()),
            Ok(Some(Ok(msg))) => msg,
        };
        let t = match msg {
            Message::Text(t) => t,
            Message::Close(c) => {
                return Err(format!("closed {}", c.map_or(0, |c| u16::from(c.code))));
            }
            _ => continue,
        };
        let f: Value = serde_json::from_str(&t).map_err(|_| "bad frame".to_string())?;
        if f["type"] == kind {
            return Ok(f);
        }
        if f["type"] == "error" {
            return Err(format!("error {}", f["code"].as_str().unwrap_or("?")));
        }
        if f["type"] == "reconnect" {
            return Err(format!("reconnect {}", f["reason"].as_str().unwrap_or("?")));
        }
    }
}

/// A guest session through any live task, retried until one answers (each try bounded).
pub async fn session(urls: &Urls, nickname: &str) -> String {
    let http = reqwest::Client::builder()
        .timeout(STEP_TIMEOUT)
        .build()
        .expect("HTTP client");
    for _ in 0..200 {
        let base = urls.read().iter().flatten().next().cloned();
        if let Some(base) = base
            && let Ok(r) = http
                .post(format!("{base}/api/session"))
                .json(&json!({"nickname": nickname}))
                .send()
                .await
            && r.status() == 200
            && let Ok(v) = r.json::<Value>().await
            && let Some(t) = v["token"].as_str()
        {
            return t.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no task created a session for {nickname}");
}
