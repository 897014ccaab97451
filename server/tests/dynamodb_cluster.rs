//! Two chat-server processes on one DynamoDB (a real moto server): they share user ids,
//! history and seqs; a retried `client_msg_id` is stored once whichever process it reaches;
//! the items and TTL attributes are what docs/storage.md says; and when DynamoDB goes away a send
//! gets `unavailable` (never an ack) and /readyz 503 names dynamodb, until it is back.

mod moto;
mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use moto::Moto;
use serde_json::{Value, json};
use support::{Client, SECRET, ServerProcess, get_json, session};

const PREFIX: &str = "cluster-";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// `chat-server create-tables` against moto; asserts it succeeds.
fn create_tables(moto: &Moto) {
    let stdout = moto.create_tables(&support::bin(), PREFIX);
    assert!(stdout.contains("cluster-messages"), "{stdout}");
}

async fn start_server(moto: &Moto, color: &str, task: &str) -> ServerProcess {
    let mut env: Vec<(&str, String)> = moto.env();
    env.extend([
        ("CHAT_DYNAMODB_TABLE_PREFIX", PREFIX.to_string()),
        ("CHAT_TOKEN_SECRET", SECRET.to_string()),
        ("CHAT_COLOR", color.to_string()),
        ("CHAT_TASK_ID", task.to_string()),
        // moto on a busy 2-core machine is far slower than DynamoDB.
        ("CHAT_DYNAMODB_TIMEOUT_MS", "30000".to_string()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start(&env).await
}

fn base(p: &ServerProcess) -> String {
    format!("http://{}", p.addr)
}

fn ws(p: &ServerProcess) -> String {
    format!("ws://{}/ws", p.addr)
}

fn n(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing or not a number in {item:?}"))
}

/// Polls `probe` until it returns Some, for at most 30 s.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_ids_history_seq_and_idempotency() {
    let moto = Moto::start().await;
    create_tables(&moto);
    // Idempotent: a second run finds the tables and succeeds.
    create_tables(&moto);
    let blue = start_server(&moto, "blue", "task-blue").await;
    let green = start_server(&moto, "green", "task-green").await;
    let db = moto.client().await;

    // 200 concurrent new guests, spread over both processes: 200 distinct ids.
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let url = format!(
            "{}/api/session",
            base(if i % 2 == 0 { &blue } else { &green })
        );
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .json(&json!({"nickname": format!("guest{i}")}))
                .send()
                .await
                .expect("POST /api/session");
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.expect("json");
            v["user"]["id"].as_u64().expect("user id")
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        let id = t.await.expect("session task");
        assert!(ids.insert(id), "user id {id} given twice");
    }
    assert_eq!(ids.len(), 200);

    // One history and one seq sequence across processes.
    let mut alice = Client::connect(&base(&blue), &ws(&blue), "alice").await;
    let mut bob = Client::connect(&base(&green), &ws(&green), "bob").await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    let s1 = alice.say("lobby", "a-1", "hello from blue").await;
    let s2 = bob.say("lobby", "b-1", "hello from green").await;
    assert!(s2 > s1, "seqs {s1} then {s2}");
    let (status, page) = get_json(&format!("{}/api/rooms/lobby/messages", base(&blue))).await;
    assert_eq!(status, 200);
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(texts, ["hello from blue", "hello from green"]);
    let (_, room) = get_json(&format!("{}/api/rooms/lobby", base(&green))).await;
    assert_eq!(room["last_seq"].as_u64(), Some(s2));

    // The same client_msg_id through the other process: acked with the original seq.
    let mut alice_again = Client::with_token(&ws(&green), &alice.token).await;
    alice_again.join("lobby").await;
    let again = alice_again.say("lobby", "a-1", "retry via green").await;
    assert_eq!(again, s1);
    let stored = db
        .query()
        .table_name("cluster-messages")
        .key_condition_expression("#r = :r")
        .expression_attribute_names("#r", "room")
        .expression_attribute_values(":r", AttributeValue::S("lobby".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("query messages");
    let copies: Vec<_> = stored
        .items()
        .iter()
        .filter(|i| i.get("client_msg_id").and_then(|v| v.as_s().ok()) == Some(&"a-1".to_string()))
        .collect();
    assert_eq!(copies.len(), 1, "one stored copy of a-1: {copies:?}");
    let message = copies[0];
    assert_eq!(n(message, "seq"), s1 as i64);
    assert_eq!(n(message, "user_id"), alice.id() as i64);
    assert_eq!(
        message
            .get("text")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("hello from blue")
    );
    assert!(!message.contains_key("expires_at"), "messages never expire");

    // Its idempotency record: points at the original, expires 24 h after it, stays out of the
    // by-user index.
    let record = db
        .get_item()
        .table_name("cluster-messages")
        .key(
            "room",
            AttributeValue::S(format!("idem#{}#lobby#a-1", alice.id())),
        )
        .key("seq", AttributeValue::N("0".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get idempotency record")
        .item
        .expect("idempotency record exists");
    assert_eq!(n(&record, "orig_seq"), s1 as i64);
    assert!(!record.contains_key("user_id"));
    let expires = n(&record, "expires_at");
    let ts_secs = n(message, "ts") / 1000;
    assert!(
        (ts_secs + 86_400..=ts_secs + 86_402).contains(&expires),
        "expires_at {expires} vs ts {ts_secs}"
    );

    // The by-user index finds alice's message, not the record.
    let mine = db
        .query()
        .table_name("cluster-messages")
        .index_name("by-user")
        .key_condition_expression("user_id = :u")
        .expression_attribute_values(":u", AttributeValue::N(alice.id().to_string()))
        .send()
        .await
        .expect("query by-user");
    assert_eq!(mine.count(), 1);

    // Live connections: one item each, with a TTL about 10 minutes out, counted per colour
    // with a COUNT query on the by-color index (what opsctl does).
    let count = |color: &'static str| {
        let db = db.clone();
        async move {
            db.query()
                .table_name("cluster-connections")
                .index_name("by-color")
                .key_condition_expression("color = :c")
                .expression_attribute_values(":c", AttributeValue::S(color.into()))
                .select(Select::Count)
                .send()
                .await
                .expect("count by colour")
                .count()
        }
    };
    let (b, g) = eventually("connection items (1 blue, 2 green)", || async {
        let (b, g) = (count("blue").await, count("green").await);
        (b == 1 && g == 2).then_some((b, g))
    })
    .await;
    assert_eq!((b, g), (1, 2));
    let items = db
        .scan()
        .table_name("cluster-connections")
        .send()
        .await
        .expect("scan connections (test only)");
    // The table also holds the fleet's control records (`fleet`, `opsctl#…`): not connections.
    let connections = items.items().iter().filter(|item| {
        item.get("conn_id")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|id| id != chat_server::rebalance::FLEET_KEY && !id.starts_with("opsctl#"))
    });
    for item in connections {
        let expires = n(item, "expires_at");
        let now = now_secs();
        assert!(
            (now + 500..=now + 610).contains(&expires),
            "expires_at {expires} should be ~10 min after {now}"
        );
        assert!(n(item, "connected_at") > 0);
        assert!(item.get("task").and_then(|v| v.as_s().ok()).is_some());
        assert!(item.get("rooms").and_then(|v| v.as_l().ok()).is_some());
    }

    // A clean disconnect removes the item.
    drop(alice_again);
    eventually("green's closed connection to be removed", || async {
        (count("green").await == 1).then_some(())
    })
    .await;
    drop((alice, bob));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_outage_gives_unavailable_and_503_then_recovers() {
    let mut moto = Moto::start().await;
    create_tables(&moto);
    let server = start_server(&moto, "blue", "task-1").await;
    let readyz = format!("{}/readyz", base(&server));
    assert_eq!(get_json(&readyz).await.0, 200);
    let mut c = Client::connect(&base(&server), &ws(&server), "carol").await;
    c.join("lobby").await;
    c.say("lobby", "before", "while up").await;

    moto.stop();
    c.send(
        json!({"type": "send", "room": "lobby", "client_msg_id": "during", "text": "while down"}),
    )
    .await;
    // The answer to it, skipping the broadcast of the earlier message and presence.
    let answer = loop {
        let f = c.recv().await;
        if f["type"] == "ack" || f["type"] == "error" {
            break f;
        }
    };
    assert_eq!(
        answer["type"], "error",
        "no ack while DynamoDB is down: {answer}"
    );
    assert_eq!(answer["code"], "unavailable");
    assert_eq!(answer["client_msg_id"], "during");
    let (status, body) = get_json(&readyz).await;
    assert_eq!(status, 503);
    assert!(
        body["failing"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("dynamodb"))),
        "{body}"
    );

    // DynamoDB is back (a fresh moto on the same port: its tables made anew).
    moto.restart().await;
    create_tables(&moto);
    eventually("/readyz to answer 200 again", || async {
        (get_json(&readyz).await.0 == 200).then_some(())
    })
    .await;
    // The same connection works again without reconnecting.
    c.join("after").await;
    let seq = c.say("after", "after-1", "back again").await;
    assert_eq!(seq, 1);
    let fresh = session(&base(&server), json!({"nickname": "dave"})).await;
    assert!(fresh["user"]["id"].as_u64().is_some());
}

/// A task killed without draining (SIGKILL, a Spot reclaim) leaves its entry in the `fleet`
/// item; every heartbeat of the event would stay there, growing the item toward DynamoDB's
/// 400 KB. A live task removes entries older than `PRUNE_MS` (5 minutes), and only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_tasks_fleet_heartbeat_is_pruned_by_the_live_ones() {
    let moto = Moto::start().await;
    create_tables(&moto);
    let client = moto.client().await;
    let table = format!("{PREFIX}connections");
    let now_ms = now_secs() * 1000;
    let entry = |at_ms: i64| {
        AttributeValue::M(std::collections::HashMap::from([
            ("color".to_string(), AttributeValue::S("blue".into())),
            ("conns".to_string(), AttributeValue::N("3".into())),
            ("ready".to_string(), AttributeValue::Bool(true)),
            ("at_ms".to_string(), AttributeValue::N(at_ms.to_string())),
        ]))
    };
    client
        .put_item()
        .table_name(&table)
        .item("conn_id", AttributeValue::S("fleet".into()))
        .item(
            "tasks",
            AttributeValue::M(std::collections::HashMap::from([
                // Killed 10 minutes ago, and 2 minutes ago: only the first is past PRUNE_MS.
                ("killed-long-ago".to_string(), entry(now_ms - 600_000)),
                ("killed-lately".to_string(), entry(now_ms - 120_000)),
            ])),
        )
        .send()
        .await
        .expect("put the fleet item");

    let _server = start_server(&moto, "blue", "alive-1").await;
    let tasks = eventually("the dead task's entry pruned", || async {
        let item = client
            .get_item()
            .table_name(&table)
            .key("conn_id", AttributeValue::S("fleet".into()))
            .consistent_read(true)
            .send()
            .await
            .ok()?
            .item?;
        let tasks = item.get("tasks")?.as_m().ok()?.clone();
        (tasks.contains_key("alive-1") && !tasks.contains_key("killed-long-ago")).then_some(tasks)
    })
    .await;
    assert!(
        tasks.contains_key("killed-lately"),
        "an entry younger than PRUNE_MS stays: {tasks:?}"
    );
}
