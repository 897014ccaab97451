//! localalb against moto's ELBv2 API with real chat-server processes as the blue and green
//! targets: new connections follow the listener weights as they change, an open WebSocket
//! stays where it was routed, and a deregistered target's connections are cut once its
//! deregistration delay is over. And the stop as ECS does it: a task whose metadata says
//! STOPPED, deregistered at the same moment, drains its connections (`reconnect`, 1012)
//! before that cut, with no SIGTERM yet.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, TargetDescription,
    TargetGroupAttribute, TargetGroupTuple, TargetTypeEnum,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use testkit::{Proc, free_port, sibling_bin, wait_listening};

/// How long a child may take to listen on a loaded machine.
const START: Duration = Duration::from_secs(30);

fn moto() -> (Proc, String) {
    let bin = std::env::var("MOTO_SERVER")
        .expect("MOTO_SERVER is not set: `source scripts/test-env.sh` first");
    let port = free_port();
    let mut child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    wait_listening(port, "moto", &mut child, START);
    (Proc(child), format!("http://127.0.0.1:{port}"))
}

fn chat_server(color: &str, dir: &std::path::Path, env: &[(&str, String)]) -> (Proc, u16) {
    let port = free_port();
    let mut child = Command::new(sibling_bin("chat-server"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("CHAT_LISTEN", format!("127.0.0.1:{port}"))
        .env("CHAT_ADMIN_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("CHAT_COLOR", color)
        .env("CHAT_DATA_DIR", dir.join(color))
        .env("CHAT_DRAIN_SECS", "1")
        // One secret for both colours, as on AWS: a session from one is valid on the other.
        .env("CHAT_TOKEN_SECRET", "localalb-test-secret-0123456789abcdef")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chat-server");
    wait_listening(port, "chat-server", &mut child, START);
    (Proc(child), port)
}

fn localalb(endpoint: &str) -> (Proc, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_localalb"))
        .args([
            "--alb",
            "chat-alb",
            "--listen",
            "127.0.0.1:0",
            "--refresh",
            "200ms",
        ])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start localalb");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("localalb's first line");
    let addr = line
        .trim()
        .strip_prefix("localalb listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");
    (Proc(child), addr)
}

/// Default subnets of moto's default VPC (EC2 Query API), for the load balancer.
async fn default_subnets(endpoint: &str) -> (String, Vec<String>) {
    let text = reqwest::Client::new()
        .post(endpoint)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=unsigned",
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=DescribeSubnets&Version=2016-11-15")
        .send()
        .await
        .expect("DescribeSubnets")
        .text()
        .await
        .expect("answer");
    let all = |tag: &str| -> Vec<String> {
        text.split(&format!("<{tag}>"))
            .skip(1)
            .filter_map(|s| s.split(&format!("</{tag}>")).next())
            .map(str::to_string)
            .collect()
    };
    let vpc = all("vpcId").into_iter().next().expect("a default VPC");
    (vpc, all("subnetId").into_iter().take(2).collect())
}

struct Alb {
    elb: Client,
    listener: String,
    blue: String,
    green: String,
}

impl Alb {
    /// Blue and green target groups (`deregistration_delay` seconds each) behind a listener
    /// sending everything to blue.
    async fn create(
        endpoint: &str,
        blue_port: u16,
        green_port: u16,
        deregistration_delay: u32,
    ) -> Alb {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_elasticloadbalancingv2::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await;
        let elb = Client::new(&config);
        let (vpc, subnets) = default_subnets(endpoint).await;
        let lb = elb
            .create_load_balancer()
            .name("chat-alb")
            .set_subnets(Some(subnets))
            .send()
            .await
            .expect("create lb")
            .load_balancers()[0]
            .load_balancer_arn()
            .expect("arn")
            .to_string();
        let mut arns = Vec::new();
        for (color, port) in [("blue", blue_port), ("green", green_port)] {
            let arn = elb
                .create_target_group()
                .name(format!("chat-{color}"))
                .protocol(ProtocolEnum::Http)
                .port(8080)
                .vpc_id(&vpc)
                .target_type(TargetTypeEnum::Ip)
                .send()
                .await
                .expect("create tg")
                .target_groups()[0]
                .target_group_arn()
                .expect("arn")
                .to_string();
            elb.modify_target_group_attributes()
                .target_group_arn(&arn)
                .attributes(
                    TargetGroupAttribute::builder()
                        .key("deregistration_delay.timeout_seconds")
                        .value(deregistration_delay.to_string())
                        .build(),
                )
                .send()
                .await
                .expect("deregistration delay");
            elb.register_targets()
                .target_group_arn(&arn)
                .targets(target(port))
                .send()
                .await
                .expect("register");
            arns.push(arn);
        }
        let (blue, green) = (arns[0].clone(), arns[1].clone());
        let listener = elb
            .create_listener()
            .load_balancer_arn(&lb)
            .protocol(ProtocolEnum::Http)
            .port(80)
            .default_actions(forward(&blue, 100, &green, 0))
            .send()
            .await
            .expect("create listener")
            .listeners()[0]
            .listener_arn()
            .expect("arn")
            .to_string();
        Alb {
            elb,
            listener,
            blue,
            green,
        }
    }

    async fn weights(&self, blue: i32, green: i32) {
        self.elb
            .modify_listener()
            .listener_arn(&self.listener)
            .default_actions(forward(&self.blue, blue, &self.green, green))
            .send()
            .await
            .expect("modify listener");
    }

    /// Deregisters the target on `port` from the target group `arn` (blue or green): as ECS
    /// does when it stops a task, the ALB's deregistration delay starts now.
    async fn deregister(&self, arn: &str, port: u16) {
        self.elb
            .deregister_targets()
            .target_group_arn(arn)
            .targets(target(port))
            .send()
            .await
            .expect("deregister");
    }
}

fn target(port: u16) -> TargetDescription {
    TargetDescription::builder()
        .id("127.0.0.1")
        .port(i32::from(port))
        .build()
}

fn forward(blue: &str, bw: i32, green: &str, gw: i32) -> Action {
    let t = |arn: &str, w: i32| {
        TargetGroupTuple::builder()
            .target_group_arn(arn)
            .weight(w)
            .build()
    };
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(t(blue, bw))
                .target_groups(t(green, gw))
                .build(),
        )
        .build()
}

/// The colour answering `/version` on a new connection through `alb`.
async fn color_of_new_connection(alb: SocketAddr) -> String {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let v: serde_json::Value = http
        .get(format!("http://{alb}/version"))
        .send()
        .await
        .expect("GET /version")
        .json()
        .await
        .expect("json");
    v["color"].as_str().expect("color").to_string()
}

async fn count(alb: SocketAddr, n: usize) -> (usize, usize) {
    let mut blue = 0;
    for _ in 0..n {
        if color_of_new_connection(alb).await == "blue" {
            blue += 1;
        }
    }
    (blue, n - blue)
}

/// A WebSocket through `alb`, said hello to; returns it and the colour that welcomed it.
async fn websocket(
    alb: SocketAddr,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
) {
    let session: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{alb}/api/session"))
        .json(&serde_json::json!({"nickname": "alb-test"}))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("session json");
    let token = session["token"].as_str().expect("token");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{alb}/ws"))
        .await
        .expect("websocket");
    let hello = serde_json::json!({"type": "hello", "token": token}).to_string();
    ws.send(Message::text(hello)).await.expect("hello");
    loop {
        let msg = ws.next().await.expect("welcome").expect("frame");
        if let Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "welcome" {
                let color = v["server"]["color"].as_str().expect("color").to_string();
                return (ws, color);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_follow_the_weights_and_deregistered_targets_are_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_moto, endpoint) = moto();
    let (_blue, blue_port) = chat_server("blue", dir.path(), &[]);
    let (_green, green_port) = chat_server("green", dir.path(), &[]);
    let alb = Alb::create(&endpoint, blue_port, green_port, 2).await;
    let (_localalb, addr) = localalb(&endpoint);

    assert_eq!(count(addr, 10).await, (10, 0));

    alb.weights(50, 50).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while color_of_new_connection(addr).await != "green" {
        assert!(
            Instant::now() < deadline,
            "weights 50/50 never reached localalb"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Smooth weighted round-robin: equal weights alternate exactly.
    assert_eq!(count(addr, 40).await, (20, 20));

    // A WebSocket on green stays there when the weights move away from green.
    let (mut ws, mut color) = websocket(addr).await;
    if color != "green" {
        (ws, color) = websocket(addr).await;
    }
    assert_eq!(color, "green");
    alb.weights(100, 0).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(addr, 4).await != (4, 0) {
        assert!(
            Instant::now() < deadline,
            "weights 100/0 never reached localalb"
        );
    }
    ws.send(Message::text(r#"{"type":"ping"}"#))
        .await
        .expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("pong") => return true,
                Some(Ok(_)) => {}
                _ => return false,
            }
        }
    })
    .await;
    assert_eq!(pong, Ok(true), "the green WebSocket should still be open");

    // Deregistered: its connections live out the 2 s delay, then are cut.
    let deregistered = Instant::now();
    alb.deregister(&alb.green, green_port).await;
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the green WebSocket was not cut");
    let after = deregistered.elapsed();
    assert!(
        after >= Duration::from_secs(2),
        "cut after {after:?}, before the 2 s deregistration delay"
    );
}

/// The task metadata endpoint (v4) the ECS agent serves each container, answering `/task`
/// with the task's `DesiredStatus`: RUNNING until `stop` is set, then STOPPED, as ECS marks a
/// task it is stopping. (moto has no ECS agent; this is the one document the server reads.)
async fn task_metadata(stop: Arc<AtomicBool>) -> String {
    let task = move || async move {
        let status = if stop.load(Ordering::SeqCst) {
            "STOPPED"
        } else {
            "RUNNING"
        };
        axum::Json(serde_json::json!({
            "Cluster": "chat",
            "TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/chat/1",
            "DesiredStatus": status,
            "KnownStatus": "RUNNING",
        }))
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", free_port()))
        .await
        .expect("bind metadata endpoint");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route("/v4/chat-task/task", axum::routing::get(task));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v4/chat-task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_ecs_is_stopping_drains_its_connections_before_the_alb_cuts_them() {
    const DELAY: u32 = 6;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_moto, endpoint) = moto();
    let stop = Arc::new(AtomicBool::new(false));
    let metadata = task_metadata(Arc::clone(&stop)).await;
    let (mut blue, blue_port) = chat_server(
        "blue",
        dir.path(),
        &[("ECS_CONTAINER_METADATA_URI_V4", metadata)],
    );
    let (_green, green_port) = chat_server("green", dir.path(), &[]);
    let alb = Alb::create(&endpoint, blue_port, green_port, DELAY).await;
    let (_localalb, addr) = localalb(&endpoint);
    let (mut ws, color) = websocket(addr).await;
    assert_eq!(color, "blue");

    // ECS stops the task: its desired status becomes STOPPED and its target is deregistered,
    // both now; SIGTERM would come only when the deregistration delay is over (never here).
    stop.store(true, Ordering::SeqCst);
    let stopped = Instant::now();
    alb.deregister(&alb.blue, blue_port).await;

    let mut reconnect = None;
    let close = tokio::time::timeout(Duration::from_secs(u64::from(DELAY) + 10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).expect("json");
                    if v["type"] == "reconnect" {
                        reconnect = Some(v);
                    }
                }
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the connection neither drained nor was cut");
    let after = stopped.elapsed();
    assert_eq!(
        close,
        Some(1012),
        "the connection ended without the drain's 1012 after {after:?} (cut by the ALB?)"
    );
    let reconnect = reconnect.expect("a reconnect frame before the 1012");
    assert_eq!(reconnect["reason"], "draining", "{reconnect}");
    assert!(
        after < Duration::from_secs(u64::from(DELAY)),
        "drained after {after:?}, not before the {DELAY} s deregistration delay cut"
    );
    // Drained, it exits by itself: SIGTERM was never sent.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = blue.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the drained task did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "the drained task exited {status}");
}
