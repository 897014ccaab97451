//! Several chat-server processes sharing a real `redis-server` act as one chat.
//!
//! Message tests run two processes on one DynamoDB (a real moto server) and one Redis.
//! Presence, SIGKILL and start-up tests need no shared store (presence lives in Redis
//! only), so their processes keep the embedded store and start faster.

mod moto;
mod support;

use std::time::Instant;

use moto::Moto;
use serde_json::{Value, json};
use support::{Client, RedisServer, SECRET, ServerProcess, eventually, get_json, session};

const PREFIX: &str = "redis-";

/// Two chat-server processes on one DynamoDB (moto) and one Redis.
struct Pair {
    a: ServerProcess,
    b: ServerProcess,
    _moto: Moto,
}

async fn pair(redis: &RedisServer) -> Pair {
    let moto = Moto::start().await;
    moto.create_tables(&support::bin(), PREFIX);
    let start = |task: &'static str| {
        let mut env: Vec<(&str, String)> = moto.env();
        env.extend([
            ("CHAT_DYNAMODB_TABLE_PREFIX", PREFIX.to_string()),
            ("CHAT_TOKEN_SECRET", SECRET.to_string()),
            ("CHAT_REDIS_URL", redis.url()),
            ("CHAT_TASK_ID", task.to_string()),
            // moto on a busy 2-core machine is far slower than DynamoDB.
            ("CHAT_DYNAMODB_TIMEOUT_MS", "30000".to_string()),
        ]);
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ServerProcess::start(&env).await
        }
    };
    let a = start("task-a").await;
    let b = start("task-b").await;
    for p in [&a, &b] {
        let url = p.url("/readyz");
        eventually("the task is ready", || async {
            get_json(&url).await.0 == 200
        })
        .await;
    }
    Pair { a, b, _moto: moto }
}

/// The next `message` frame, failing on a close or error.
async fn next_message(c: &mut Client) -> Value {
    c.recv_type("message").await
}

async fn readyz_fails_with_redis(url: &str) -> bool {
    let (status, body) = get_json(url).await;
    status == 503
        && body["failing"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "redis"))
}

#[tokio::test]
async fn messages_presence_and_typing_cross_tasks_each_message_once_and_in_order() {
    let redis = RedisServer::start().await;
    let p = pair(&redis).await;
    let mut alice = Client::connect(&p.a.url(""), &p.a.ws_url(), "alice").await;
    let mut bob = Client::connect(&p.b.url(""), &p.b.ws_url(), "bob").await;
    alice.join("lobby").await;
    let joined = bob.join("lobby").await;
    assert_eq!(
        joined["online"], 2,
        "bob sees alice on the other task: {joined}"
    );
    let presence = alice.recv_type("presence").await;
    assert_eq!(presence["joined"]["id"], bob.id(), "{presence}");
    assert_eq!(presence["online"], 2);

    for i in 1..=20u64 {
        let seq = alice
            .say("lobby", &format!("m{i}"), &format!("hello {i}"))
            .await;
        assert_eq!(seq, i);
    }
    for i in 1..=20u64 {
        let m = next_message(&mut bob).await;
        assert_eq!(m["seq"], i, "in order and each once: {m}");
        assert_eq!(m["text"], format!("hello {i}"));
        assert_eq!(m["user"]["id"], alice.id());
    }
    // Nothing repeated: the next message bob gets is the next one sent.
    alice.say("lobby", "marker", "marker").await;
    assert_eq!(next_message(&mut bob).await["seq"], 21);

    // Typing crosses tasks too (never stored).
    bob.send(json!({"type": "typing", "room": "lobby"})).await;
    let typing = alice.recv_type("typing").await;
    assert_eq!(typing["user"]["id"], bob.id(), "{typing}");

    // Both tasks answer presence for the whole chat.
    for s in [&p.a, &p.b] {
        let (status, room) = get_json(&s.url("/api/rooms/lobby")).await;
        assert_eq!(status, 200);
        assert_eq!(room["online"], 2, "{room}");
        assert_eq!(room["last_seq"], 21);
    }
}

#[tokio::test]
async fn messages_sent_while_redis_restarts_are_acked_and_reach_the_other_task_once() {
    let mut redis = RedisServer::start().await;
    let p = pair(&redis).await;
    let mut alice = Client::connect(&p.a.url(""), &p.a.ws_url(), "alice").await;
    let mut bob = Client::connect(&p.b.url(""), &p.b.ws_url(), "bob").await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    alice.say("lobby", "before", "before the outage").await;
    assert_eq!(next_message(&mut bob).await["seq"], 1);

    redis.kill();
    for s in [&p.a, &p.b] {
        let url = s.url("/readyz");
        eventually("/readyz names redis", || readyz_fails_with_redis(&url)).await;
    }
    for i in 2..=6u64 {
        let seq = alice
            .say("lobby", &format!("during{i}"), &format!("during {i}"))
            .await;
        assert_eq!(seq, i, "acked from the store while Redis is down");
    }

    redis.start_again().await;
    let back = Instant::now();
    for i in 2..=6u64 {
        let m = next_message(&mut bob).await;
        assert_eq!(m["seq"], i, "in order and each once: {m}");
        assert_eq!(m["text"], format!("during {i}"));
    }
    println!(
        "backlog of 5 messages delivered {} ms after redis-server answered again",
        back.elapsed().as_millis()
    );
    alice.say("lobby", "after", "after the outage").await;
    assert_eq!(
        next_message(&mut bob).await["seq"],
        7,
        "no duplicate, no reconnect"
    );
    for s in [&p.a, &p.b] {
        let url = s.url("/readyz");
        eventually("ready again", || async { get_json(&url).await.0 == 200 }).await;
    }
}

/// A chat-server process on its own data dir, sharing `redis`.
async fn task(redis: &RedisServer, dir: &tempfile::TempDir, id: &str) -> ServerProcess {
    let data = dir.path().to_str().expect("utf-8 path");
    ServerProcess::start(&[
        ("CHAT_DATA_DIR", data),
        ("CHAT_TOKEN_SECRET", SECRET),
        ("CHAT_REDIS_URL", &redis.url()),
        ("CHAT_PRESENCE_TTL_SECS", "3"),
        ("CHAT_TASK_ID", id),
    ])
    .await
}

async fn online(p: &ServerProcess) -> u64 {
    let (status, room) = get_json(&p.url("/api/rooms/lobby")).await;
    assert_eq!(status, 200, "{room}");
    room["online"].as_u64().expect("online")
}

#[tokio::test]
async fn presence_is_the_sum_over_tasks_and_a_killed_task_leaves_within_the_ttl() {
    let redis = RedisServer::start().await;
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = task(&redis, &dir_a, "task-a").await;
    let mut b = task(&redis, &dir_b, "task-b").await;
    for p in [&a, &b] {
        let url = p.url("/readyz");
        eventually("the task is ready", || async {
            get_json(&url).await.0 == 200
        })
        .await;
    }
    // Users from one counter (task a's store); the shared secret makes the tokens valid on b.
    let mut tokens = Vec::new();
    for nick in ["alice", "bob", "carol"] {
        let s = session(&a.url(""), json!({"nickname": nick})).await;
        tokens.push(s["token"].as_str().expect("token").to_string());
    }
    let mut alice = Client::with_token(&a.ws_url(), &tokens[0]).await;
    let mut bob = Client::with_token(&b.ws_url(), &tokens[1]).await;
    let mut carol = Client::with_token(&b.ws_url(), &tokens[2]).await;
    let mut alice_tab = Client::with_token(&b.ws_url(), &tokens[0]).await;
    alice.join("lobby").await;
    assert_eq!(bob.join("lobby").await["online"], 2);
    assert_eq!(carol.join("lobby").await["online"], 3);
    assert_eq!(
        alice_tab.join("lobby").await["online"],
        3,
        "a user with tabs on two tasks counts once"
    );
    assert_eq!(online(&a).await, 3);
    assert_eq!(online(&b).await, 3);

    // SIGKILL: b says nothing; its users drop out when their entries expire.
    b.child.kill().expect("SIGKILL task b");
    b.wait_exit().await;
    let killed = Instant::now();
    eventually("task b's users left the room", || async {
        online(&a).await == 1
    })
    .await;
    println!(
        "presence of a SIGKILLed task expired after {} ms (TTL 3 s)",
        killed.elapsed().as_millis()
    );
}

#[tokio::test]
async fn a_task_started_while_redis_is_down_becomes_ready_when_redis_starts() {
    let mut redis = RedisServer::on_port(support::free_port());
    let dir = tempfile::tempdir().expect("dir");
    let p = task(&redis, &dir, "task-a").await;
    let url = p.url("/readyz");
    assert!(
        readyz_fails_with_redis(&url).await,
        "/readyz names redis while it is down"
    );
    // It serves meanwhile: sessions, joins and sends work from the store.
    let mut alice = Client::connect(&p.url(""), &p.ws_url(), "alice").await;
    assert_eq!(alice.join("lobby").await["online"], 1);
    assert_eq!(alice.say("lobby", "m1", "hi").await, 1);

    redis.start_again().await;
    eventually("ready once Redis is up", || async {
        get_json(&url).await.0 == 200
    })
    .await;
    eventually(
        "the presence kept locally is registered in Redis",
        || async {
            let n: u64 = redis::cmd("ZCARD")
                .arg(chat_server::fanout::redis::presence_key("lobby"))
                .query_async(&mut redis.client().await)
                .await
                .expect("ZCARD");
            n == 1
        },
    )
    .await;
}
