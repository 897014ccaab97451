//! Operations telemetry of the real binary: X-Ray traces exported over OTLP/HTTP to a
//! receiver run by the test (decoded with the OpenTelemetry protobuf types), and JSON log
//! lines that never carry a token, the token secret or message text.

// Helpers outside #[test] fns: a panic there is the test's failure report.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use support::{SECRET, ServerProcess, WAIT, free_port, session};

/// What the ALB sends: no `Sampled` flag.
const ALB_HEADER: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8";
const TRACE_ID: &str = "5759e988bd862e3fe1be46a994272793";
const PARENT_ID: &str = "53995c3f42cd8ad8";

/// An OTLP/HTTP trace receiver on a free loopback port, keeping every span it is sent.
struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn export(State(spans): State<Arc<Mutex<Vec<Span>>>>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut kept = spans.lock().unwrap();
    for rs in req.resource_spans {
        for ss in rs.scope_spans {
            kept.extend(ss.spans);
        }
    }
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

impl Receiver {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .with_state(Arc::clone(&spans));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, spans, task }
    }

    /// Waits until a span matching `pick` arrives and returns it.
    async fn wait_for(&self, what: &str, pick: impl Fn(&Span) -> bool) -> Span {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.spans.lock().unwrap().iter().find(|s| pick(s)) {
                return s.clone();
            }
            let names: Vec<String> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .map(|s| s.name.clone())
                .collect();
            assert!(
                Instant::now() < deadline,
                "no exported span {what}; got {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A string attribute of an exported span.
fn attribute(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            Any::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Log lines collected from a child's stdout.
type Lines = Arc<Mutex<Vec<String>>>;

/// Starts the binary with `env`, stdout piped into the returned lines; its data dir lives as
/// long as the returned `TempDir`.
async fn start_piped(env: &[(&str, &str)]) -> (ServerProcess, Lines, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHAT_LISTEN", addr.to_string())
        .env("CHAT_ADMIN_LISTEN", admin.to_string())
        .env("CHAT_DATA_DIR", dir.path())
        .env("CHAT_TOKEN_SECRET", SECRET)
        .env("CHAT_DRAIN_SECS", "1")
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn chat-server");
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let p = ServerProcess { addr, admin, child };
    p.wait_healthy().await;
    (p, lines, dir)
}

/// A WebSocket through the "ALB": the upgrade carries `X-Amzn-Trace-Id`. Hello, join `room`,
/// send `text`, wait for the ack.
async fn chat_once(
    p: &ServerProcess,
    token: &str,
    room: &str,
    text: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = p.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("x-amzn-trace-id", ALB_HEADER.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    for frame in [
        json!({"type": "hello", "token": token}),
        json!({"type": "join", "room": room}),
        json!({"type": "send", "room": room, "client_msg_id": "m-1", "text": text}),
    ] {
        ws.send(Message::text(frame.to_string())).await.unwrap();
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .expect("no ack in time")
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_ne!(v["type"], "error", "{v}");
            if v["type"] == "ack" {
                return ws;
            }
        }
    }
}

#[tokio::test]
async fn spans_continue_the_alb_trace_and_link_sends_to_their_connection() {
    let receiver = Receiver::start().await;
    let endpoint = format!("http://{}", receiver.addr);
    let (p, logs, _dir) = start_piped(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;

    // An HTTP request through the ALB continues its trace, as a child of the ALB's segment.
    let r = reqwest::Client::new()
        .get(p.url("/version"))
        .header("X-Amzn-Trace-Id", ALB_HEADER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let request = receiver
        .wait_for("GET /version", |s| s.name == "GET /version")
        .await;
    assert_eq!(hex(&request.trace_id), TRACE_ID);
    assert_eq!(hex(&request.parent_span_id), PARENT_ID);
    // X-Ray ids: the first 4 bytes of a trace id are its start time; ours came from the ALB.
    // A request without the header starts a new X-Ray trace (epoch seconds in front).
    reqwest::get(p.url("/api/rooms/fresh")).await.unwrap();
    let fresh = receiver
        .wait_for("GET /api/rooms/{room}", |s| {
            s.name == "GET /api/rooms/{room}"
        })
        .await;
    let epoch = u32::from_str_radix(&hex(&fresh.trace_id[..4]), 16).unwrap();
    let now = u32::try_from(chat_server::now_ms() / 1000).unwrap();
    assert!(
        now.abs_diff(epoch) < 600,
        "X-Ray trace id starts with the time"
    );

    // The upgrade and the connection belong to the ALB's trace; the send is its own root
    // linked to the connection, with the store write beneath it.
    let token = session(&p.url(""), json!({"nickname": "Tracer"})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = chat_once(&p, &token, "traced", "hello tracing").await;
    ws.close(None).await.unwrap();
    let connection = receiver
        .wait_for("ws.connection", |s| s.name == "ws.connection")
        .await;
    assert_eq!(hex(&connection.trace_id), TRACE_ID);
    let upgrade = receiver.wait_for("GET /ws", |s| s.name == "GET /ws").await;
    assert_eq!(connection.parent_span_id, upgrade.span_id);
    let send = receiver
        .wait_for("chat.send", |s| s.name == "chat.send")
        .await;
    assert!(send.parent_span_id.is_empty(), "a send is a root span");
    assert!(
        send.links.iter().any(|l| l.span_id == connection.span_id),
        "the send links to its connection: {:?}",
        send.links
    );
    let store = receiver
        .wait_for("store.append", |s| s.name == "store.append")
        .await;
    assert_eq!(
        (store.trace_id.clone(), store.parent_span_id.clone()),
        (send.trace_id.clone(), send.span_id.clone())
    );
    // A client span with db.system and the operation: X-Ray's service map draws the store.
    assert_eq!(
        store.kind,
        SpanKind::Client as i32,
        "store.append is a client span"
    );
    assert_eq!(attribute(&store, "db.system").as_deref(), Some("embedded"));
    assert_eq!(
        attribute(&store, "db.operation.name").as_deref(),
        Some("append")
    );
    let publish = receiver
        .wait_for("fanout.publish", |s| s.name == "fanout.publish")
        .await;
    assert_eq!(publish.parent_span_id, send.span_id);
    assert_eq!(
        publish.kind,
        SpanKind::Client as i32,
        "fanout.publish is a client span"
    );
    assert_eq!(attribute(&publish, "db.system").as_deref(), Some("local"));
    assert_eq!(
        attribute(&publish, "db.operation.name").as_deref(),
        Some("publish")
    );
    // From the trace to its log lines: a line logged inside the connection carries the trace's
    // X-Ray id; a line outside any traced span (start-up) carries none.
    let xray_id = format!("1-{}-{}", &TRACE_ID[..8], &TRACE_ID[8..]);
    let deadline = Instant::now() + WAIT;
    let closed = loop {
        let found = logs
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("WebSocket closed"))
            .cloned();
        if let Some(line) = found {
            break serde_json::from_str::<Value>(&line).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no \"WebSocket closed\" log line"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(closed["trace_id"], xray_id.as_str(), "{closed}");
    let startup = logs.lock().unwrap()[0].clone();
    assert!(
        serde_json::from_str::<Value>(&startup).unwrap()["trace_id"].is_null(),
        "{startup}"
    );
    // Health checks are not traced (the ALB's would be most of the traces).
    assert!(
        !receiver
            .spans
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.name.contains("healthz")),
        "health checks make no spans"
    );
}

#[tokio::test]
async fn log_lines_are_json_and_carry_no_token_secret_or_text() {
    const TEXT: &str = "the-secret-plan-xyzzy-42";
    let (mut p, lines, _dir) = start_piped(&[]).await;
    let token = session(&p.url(""), json!({"nickname": "Logged"})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    // A rejected token is the likeliest place for one to end up in a log.
    let bad = reqwest::Client::new()
        .post(p.url("/api/session"))
        .body(format!("{{\"token\": \"{token}x\", \"nickname\": 3}}"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let mut ws = chat_once(&p, &token, "logged", TEXT).await;
    ws.close(None).await.unwrap();
    p.terminate();
    assert_eq!(p.wait_exit().await, Some(0));
    // The reader thread ends at EOF, right after the exit.
    let deadline = Instant::now() + WAIT;
    while !lines.lock().unwrap().iter().any(|l| l.contains("Drained")) {
        assert!(Instant::now() < deadline, "no \"Drained\" log line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines = lines.lock().unwrap().clone();
    assert!(lines.len() >= 3, "too few log lines: {lines:?}");
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        for (what, needle) in [
            ("token", token.as_str()),
            ("secret", SECRET),
            ("text", TEXT),
        ] {
            assert!(
                !line.contains(needle),
                "a log line carries the {what}: {line}"
            );
        }
    }
    // Trace export is off without an endpoint, and says nothing about it.
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("\"level\":\"ERROR\"") || l.to_lowercase().contains("otlp")),
        "{lines:?}"
    );
}
