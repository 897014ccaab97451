//! Three chat-server processes over a real 3-shard Redis Cluster (`redis+cluster://`), the
//! way ElastiCache in cluster mode carries them: rooms spread over the shards, each room's
//! events and presence on its own shard, and a shard's primary SIGKILLed mid-conversation
//! while its replica takes over. Messages go through one DynamoDB (a moto server), so the
//! three tasks share one history.

mod moto;
mod shards;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chat_server::fanout::redis::{channel, presence_key};
use futures_util::StreamExt;
use moto::Moto;
use serde_json::{Value, json};
use shards::Shards;
use support::{Client, SECRET, ServerProcess, eventually, get_json, session};
use tokio_tungstenite::tungstenite::Message;

const PREFIX: &str = "cluster-";

/// Three chat-server processes on one DynamoDB (moto) and one Redis Cluster.
struct Trio {
    tasks: Vec<ServerProcess>,
    _moto: Moto,
}

async fn trio(cluster: &Shards) -> Trio {
    let moto = Moto::start().await;
    moto.create_tables(&support::bin(), PREFIX);
    let mut tasks = Vec::new();
    for task in ["task-a", "task-b", "task-c"] {
        let mut env: Vec<(&str, String)> = moto.env();
        env.extend([
            ("CHAT_DYNAMODB_TABLE_PREFIX", PREFIX.to_string()),
            ("CHAT_TOKEN_SECRET", SECRET.to_string()),
            ("CHAT_REDIS_URL", cluster.url()),
            ("CHAT_TASK_ID", task.to_string()),
            // moto on a busy 2-core machine is far slower than DynamoDB.
            ("CHAT_DYNAMODB_TIMEOUT_MS", "30000".to_string()),
        ]);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        tasks.push(ServerProcess::start(&env).await);
    }
    for p in &tasks {
        let url = p.url("/readyz");
        eventually("the task is ready", || async {
            get_json(&url).await.0 == 200
        })
        .await;
    }
    Trio { tasks, _moto: moto }
}

/// One user per task (tokens from one session endpoint: the secret is shared).
async fn users(t: &Trio, names: [&str; 3]) -> Vec<Client> {
    let mut clients = Vec::new();
    for (p, name) in t.tasks.iter().zip(names) {
        let s = session(&t.tasks[0].url(""), json!({"nickname": name})).await;
        clients.push(Client::with_token(&p.ws_url(), s["token"].as_str().expect("token")).await);
    }
    clients
}

/// The next `message` frame within [`support::WAIT`], skipping other frames.
async fn next_message(c: &mut Client) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, c.ws.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).expect("frame is JSON");
            if v["type"] == "message" {
                return Some(v);
            }
        }
    }
}

/// Reads `message` frames until `want` per room have arrived; returns each room's seqs in
/// arrival order (more than `want` would be a duplicate, caught by the caller's equality).
async fn messages(c: &mut Client, want: &BTreeMap<String, u64>) -> BTreeMap<String, Vec<u64>> {
    let mut got: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    while want
        .iter()
        .any(|(room, n)| got.get(room).map_or(0, Vec::len) < *n as usize)
    {
        let Some(m) = next_message(c).await else {
            panic!("{} got only {got:?} of {want:?}", c.user["nickname"]);
        };
        let room = m["room"].as_str().expect("room").to_string();
        got.entry(room)
            .or_default()
            .push(m["seq"].as_u64().expect("seq"));
    }
    got
}

#[tokio::test]
async fn three_tasks_over_three_shards_deliver_each_message_once_in_order_and_sum_presence() {
    let cluster = Shards::start().await;
    // One room on each shard.
    let mut by_primary: BTreeMap<u16, String> = BTreeMap::new();
    for i in 0.. {
        let room = format!("room-{i}");
        let primary = cluster.primary_of(&channel(&room)).await;
        by_primary.entry(primary).or_insert(room);
        if by_primary.len() == 3 {
            break;
        }
    }
    let rooms: Vec<String> = by_primary.values().cloned().collect();
    for room in &rooms {
        assert_eq!(
            cluster.slot(&channel(room)).await,
            cluster.slot(&presence_key(room)).await,
            "a room's channel and presence share one slot"
        );
    }
    let t = trio(&cluster).await;
    let mut clients = users(&t, ["alice", "bob", "carol"]).await;
    for room in &rooms {
        for (i, c) in clients.iter_mut().enumerate() {
            let joined = c.join(room).await;
            assert_eq!(
                joined["online"],
                i + 1,
                "presence summed over tasks: {joined}"
            );
        }
    }
    for room in &rooms {
        for p in &t.tasks {
            let (status, r) = get_json(&p.url(&format!("/api/rooms/{room}"))).await;
            assert_eq!(status, 200);
            assert_eq!(r["online"], 3, "every task counts the three users: {r}");
        }
        let primary = cluster.primary_of(&presence_key(room)).await;
        let members: u64 = cluster
            .query(primary, &["ZCARD", &presence_key(room)])
            .await
            .expect("ZCARD on the room's shard");
        assert_eq!(
            members, 3,
            "one presence entry per task and user, on the room's shard"
        );
    }

    // Round-robin: each user, on its own task, sends 4 messages to every room.
    const EACH: u64 = 4;
    for k in 0..EACH {
        for room in &rooms {
            for (i, c) in clients.iter_mut().enumerate() {
                c.send(json!({"type": "send", "room": room, "client_msg_id": format!("{room}-{i}-{k}"), "text": format!("{i}:{k}")}))
                    .await;
            }
        }
    }
    let want: BTreeMap<String, u64> = rooms.iter().map(|r| (r.clone(), 3 * EACH)).collect();
    let expected: Vec<u64> = (1..=3 * EACH).collect();
    for c in &mut clients {
        let got = messages(c, &want).await;
        for room in &rooms {
            assert_eq!(
                got[room], expected,
                "{room}: each message once, in seq order"
            );
        }
    }
    // Nothing repeated: the next message each client gets is the next one sent.
    clients[0].say(&rooms[0], "marker", "marker").await;
    for c in &mut clients {
        let m = c.recv_type("message").await;
        assert_eq!(m["seq"], 3 * EACH + 1, "{m}");
    }
}

#[tokio::test]
async fn a_shards_primary_killed_mid_conversation_loses_nothing_acked() {
    let mut cluster = Shards::start().await;
    let room = "lobby";
    let t = trio(&cluster).await;
    let mut clients = users(&t, ["alice", "bob", "carol"]).await;
    for c in &mut clients {
        c.join(room).await;
    }
    // The sender is a fourth user on task a (its `say` reads its own acks and messages).
    let s = session(&t.tasks[0].url(""), json!({"nickname": "dave"})).await;
    let mut dave =
        Client::with_token(&t.tasks[0].ws_url(), s["token"].as_str().expect("token")).await;
    dave.join(room).await;
    let mut acked = BTreeSet::new();
    for i in 1..=10 {
        acked.insert(
            dave.say(room, &format!("before{i}"), &format!("before {i}"))
                .await,
        );
    }

    let dead = cluster.primary_of(&channel(room)).await;
    cluster.kill(dead);
    let killed = Instant::now();
    // The conversation goes on while the shard has no primary: acked from the store.
    for i in 1..=10 {
        acked.insert(
            dave.say(room, &format!("during{i}"), &format!("during {i}"))
                .await,
        );
    }
    let promoted = cluster.wait_failover(&channel(room), dead).await;
    println!(
        "replica on {promoted} took over from {dead} {} ms after the SIGKILL",
        killed.elapsed().as_millis()
    );
    for i in 1..=10 {
        acked.insert(
            dave.say(room, &format!("after{i}"), &format!("after {i}"))
                .await,
        );
    }
    assert_eq!(
        acked,
        (1..=30).collect(),
        "every send acked once, seqs 1..=30"
    );

    let want = BTreeMap::from([(room.to_string(), 30)]);
    for c in &mut clients {
        let got = messages(c, &want).await;
        assert_eq!(
            got[room],
            (1..=30).collect::<Vec<_>>(),
            "every acked message, once and in order"
        );
    }
    println!(
        "all 30 messages on all 3 tasks {} ms after the SIGKILL",
        killed.elapsed().as_millis()
    );
    for p in &t.tasks {
        let url = p.url("/readyz");
        eventually("ready again after the failover", || async {
            get_json(&url).await.0 == 200
        })
        .await;
    }
    // The room now lives on the promoted replica: new messages travel through it, once.
    dave.say(room, "marker", "marker").await;
    for c in &mut clients {
        assert_eq!(c.recv_type("message").await["seq"], 31);
    }
    for p in &t.tasks {
        let (status, r) = get_json(&p.url(&format!("/api/rooms/{room}"))).await;
        assert_eq!(status, 200);
        assert_eq!(
            r["online"], 4,
            "every task still counts the four users: {r}"
        );
    }
    let members: u64 = cluster
        .query(promoted, &["ZCARD", &presence_key(room)])
        .await
        .expect("ZCARD on the promoted replica");
    assert_eq!(
        members, 4,
        "the room's presence lives on the promoted replica"
    );
}
