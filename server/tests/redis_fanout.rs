//! The Redis fanout against a real `redis-server`: several fanouts in one process stand for
//! several tasks, each with a recorder reading what the fanout hands the hub.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chat_server::background::Background;
use chat_server::fanout::redis::{RedisFanout, channel, presence_key};
use chat_server::fanout::{EventKind, Fanout, FromOthers, RoomEvent};
use chat_server::protocol::User;
use parking_lot::Mutex;
use support::{RedisServer, eventually};

const TTL: Duration = Duration::from_secs(3);

/// What the hub of one task would have been handed.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(String, RoomEvent)>>,
    resyncs: AtomicUsize,
    /// Rooms each subscription-time catch-up named.
    room_resyncs: Mutex<Vec<Vec<String>>>,
}

impl Recorder {
    fn record(&self, item: FromOthers) {
        match item {
            FromOthers::Event { room, event } => self.events.lock().push((room, event)),
            FromOthers::Resync => {
                self.resyncs.fetch_add(1, Ordering::SeqCst);
            }
            FromOthers::ResyncRooms(rooms) => self.room_resyncs.lock().push(rooms),
        }
    }

    fn seqs(&self, room: &str) -> Vec<u64> {
        self.events
            .lock()
            .iter()
            .filter(|(r, _)| r == room)
            .filter_map(|(_, e)| match e.kind {
                EventKind::Message { seq } => Some(seq),
                _ => None,
            })
            .collect()
    }
}

/// One "task": its fanout and the recorder of what it hands the hub.
struct Task {
    fanout: RedisFanout,
    sink: Arc<Recorder>,
}

fn task(redis: &RedisServer) -> Task {
    let sink = Arc::new(Recorder::default());
    let (to_hub, mut from_fanout) = tokio::sync::mpsc::unbounded_channel();
    let recorder = Arc::clone(&sink);
    tokio::spawn(async move {
        while let Some(item) = from_fanout.recv().await {
            recorder.record(item);
        }
    });
    let fanout = RedisFanout::with_client(redis.fanout_client(), TTL, to_hub, &Background::new())
        .expect("fanout builds");
    Task { fanout, sink }
}

async fn ready(t: &Task) {
    eventually("the fanout is ready", || async { t.fanout.is_ready() }).await;
}

fn message(seq: u64) -> RoomEvent {
    RoomEvent {
        kind: EventKind::Message { seq },
        json: Bytes::from(format!(r#"{{"type":"message","seq":{seq}}}"#)),
    }
}

fn user(id: u64) -> User {
    User {
        id,
        nickname: format!("user{id}"),
        avatar: "otter".into(),
    }
}

/// Subscribers of a room's channel, as Redis counts them.
async fn subscribers(redis: &RedisServer, room: &str) -> i64 {
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg(channel(room))
        .query_async(&mut redis.client().await)
        .await
        .expect("PUBSUB SHARDNUMSUB");
    n
}

async fn ids(f: &RedisFanout, room: &str) -> BTreeSet<u64> {
    f.presence(room)
        .await
        .expect("presence never fails")
        .iter()
        .map(|u| u.id)
        .collect()
}

#[tokio::test]
async fn events_reach_other_tasks_once_in_order_with_the_same_bytes_but_not_their_origin() {
    let redis = RedisServer::start().await;
    let a = task(&redis);
    let b = task(&redis);
    ready(&a).await;
    ready(&b).await;
    a.fanout.subscribe("lobby");
    b.fanout.subscribe("lobby");
    b.fanout.subscribe("other");
    eventually("both tasks subscribed", || async {
        subscribers(&redis, "lobby").await == 2 && subscribers(&redis, "other").await == 1
    })
    .await;

    for seq in 1..=20 {
        a.fanout
            .publish("lobby", &message(seq))
            .await
            .expect("publish");
    }
    eventually("b has every message", || async {
        b.sink.seqs("lobby").len() >= 20
    })
    .await;
    assert_eq!(b.sink.seqs("lobby"), (1..=20).collect::<Vec<_>>());
    let first = b.sink.events.lock()[0].1.clone();
    assert_eq!(first, message(1), "the frame bytes arrive unchanged");

    // Unsubscribed: later events of that room no longer arrive (a marker on another room,
    // published after, proves the earlier one would have arrived by then).
    b.fanout.unsubscribe("lobby");
    eventually("b unsubscribed", || async {
        subscribers(&redis, "lobby").await == 1
    })
    .await;
    a.fanout
        .publish("lobby", &message(21))
        .await
        .expect("publish");
    a.fanout
        .publish("other", &message(1))
        .await
        .expect("publish");
    eventually("the marker arrived", || async {
        b.sink.seqs("other") == [1]
    })
    .await;
    assert_eq!(b.sink.seqs("lobby").len(), 20, "nothing after unsubscribe");
    assert!(
        a.sink.events.lock().is_empty(),
        "a task never receives what it published itself"
    );
}

#[tokio::test]
async fn presence_counts_each_user_once_across_tasks_and_a_silent_task_expires() {
    let redis = RedisServer::start().await;
    let a = task(&redis);
    let b = task(&redis);
    ready(&a).await;
    ready(&b).await;
    a.fanout.presence_add("lobby", &user(1)).await.expect("add");
    b.fanout.presence_add("lobby", &user(1)).await.expect("add");
    b.fanout.presence_add("lobby", &user(2)).await.expect("add");
    assert_eq!(ids(&a.fanout, "lobby").await, BTreeSet::from([1, 2]));
    assert_eq!(ids(&b.fanout, "lobby").await, BTreeSet::from([1, 2]));
    assert!(ids(&a.fanout, "elsewhere").await.is_empty());

    // User 1 still has a tab on b.
    a.fanout
        .presence_remove("lobby", &user(1))
        .await
        .expect("remove");
    assert_eq!(ids(&a.fanout, "lobby").await, BTreeSet::from([1, 2]));
    b.fanout
        .presence_remove("lobby", &user(1))
        .await
        .expect("remove");
    assert_eq!(ids(&a.fanout, "lobby").await, BTreeSet::from([2]));

    // A task that stops beating without a word (dropped, no shutdown) expires.
    let c = task(&redis);
    ready(&c).await;
    c.fanout.presence_add("lobby", &user(3)).await.expect("add");
    assert_eq!(ids(&a.fanout, "lobby").await, BTreeSet::from([2, 3]));
    drop(c);
    eventually("the silent task's user left", || async {
        ids(&a.fanout, "lobby").await == BTreeSet::from([2])
    })
    .await;

    // A clean shutdown removes its members at once (expired ones may linger until trimmed).
    b.fanout.shutdown().await;
    let left: Vec<String> = redis::cmd("ZRANGE")
        .arg(presence_key("lobby"))
        .arg(chat_server::now_ms())
        .arg("+inf")
        .arg("BYSCORE")
        .query_async(&mut redis.client().await)
        .await
        .expect("ZRANGE");
    assert!(left.is_empty(), "shutdown left {left:?}");
}

#[tokio::test]
async fn a_task_started_while_redis_is_down_serves_locally_and_registers_when_it_arrives() {
    let mut redis = RedisServer::on_port(support::free_port());
    let a = task(&redis);
    assert!(!a.fanout.is_ready());
    a.fanout.subscribe("lobby");
    a.fanout
        .presence_add("lobby", &user(7))
        .await
        .expect("presence_add never fails while Redis is down");
    assert_eq!(ids(&a.fanout, "lobby").await, BTreeSet::from([7]));
    let err = a
        .fanout
        .publish("lobby", &message(1))
        .await
        .expect_err("publish fails fast while down");
    assert!(err.to_string().contains("Redis"), "{err}");

    redis.start_again().await;
    ready(&a).await;
    eventually("subscribed and resynced", || async {
        subscribers(&redis, "lobby").await == 1 && a.sink.resyncs.load(Ordering::SeqCst) >= 1
    })
    .await;
    let b = task(&redis);
    ready(&b).await;
    assert_eq!(
        ids(&b.fanout, "lobby").await,
        BTreeSet::from([7]),
        "the local presence was registered in Redis"
    );
}

#[tokio::test]
async fn a_broken_link_reconnects_resubscribes_and_asks_for_a_resync() {
    let mut redis = RedisServer::start().await;
    let a = task(&redis);
    let b = task(&redis);
    ready(&a).await;
    ready(&b).await;
    b.fanout.subscribe("lobby");
    b.fanout.presence_add("lobby", &user(5)).await.expect("add");
    eventually("b subscribed", || async {
        subscribers(&redis, "lobby").await == 1
    })
    .await;
    let resyncs = b.sink.resyncs.load(Ordering::SeqCst);

    redis.kill();
    eventually("both links noticed", || async {
        !a.fanout.is_ready() && !b.fanout.is_ready()
    })
    .await;
    // While down: presence answers from the local view, publish fails fast.
    assert_eq!(ids(&b.fanout, "lobby").await, BTreeSet::from([5]));
    b.fanout.presence_add("lobby", &user(6)).await.expect("add");
    assert!(a.fanout.publish("lobby", &message(1)).await.is_err());

    redis.start_again().await;
    ready(&a).await;
    ready(&b).await;
    eventually("b resubscribed and asked the hub to catch up", || async {
        subscribers(&redis, "lobby").await == 1 && b.sink.resyncs.load(Ordering::SeqCst) > resyncs
    })
    .await;
    assert_eq!(
        ids(&a.fanout, "lobby").await,
        BTreeSet::from([5, 6]),
        "b registered its presence again in the empty Redis"
    );
    a.fanout
        .publish("lobby", &message(2))
        .await
        .expect("publish");
    eventually("a live message arrives again", || async {
        b.sink.seqs("lobby").contains(&2)
    })
    .await;
}

#[tokio::test]
async fn rediss_carries_events_and_presence_over_tls() {
    let redis = RedisServer::start_tls().await;
    assert!(redis.url().starts_with("rediss://"));
    let a = task(&redis);
    let b = task(&redis);
    ready(&a).await;
    ready(&b).await;
    b.fanout.subscribe("lobby");
    eventually("b subscribed over TLS", || async {
        subscribers(&redis, "lobby").await == 1
    })
    .await;
    a.fanout.presence_add("lobby", &user(1)).await.expect("add");
    a.fanout
        .publish("lobby", &message(1))
        .await
        .expect("publish");
    eventually("b got the message", || async {
        b.sink.seqs("lobby") == [1]
    })
    .await;
    assert_eq!(ids(&b.fanout, "lobby").await, BTreeSet::from([1]));
}

#[test]
fn a_url_that_is_not_redis_is_refused_naming_the_variable() {
    let err = RedisFanout::connection_info("http://127.0.0.1:6379")
        .map(|_| ())
        .expect_err("not a redis URL");
    assert!(err.to_string().contains("CHAT_REDIS_URL"), "{err}");
}

/// Subscribing one new room catches up that room only: with many rooms on a task, a join flood
/// across new rooms must not cost a store read of every room per subscription.
#[tokio::test]
async fn a_new_subscription_resyncs_only_the_new_room() {
    let redis = RedisServer::start().await;
    let a = task(&redis);
    ready(&a).await;
    let full_resyncs = a.sink.resyncs.load(Ordering::SeqCst);
    for i in 0..20 {
        a.fanout.subscribe(&format!("room-{i}"));
        eventually("subscribed", || async {
            subscribers(&redis, &format!("room-{i}")).await == 1
        })
        .await;
    }
    a.fanout.subscribe("one-more");
    eventually("the new room is caught up", || async {
        a.sink
            .room_resyncs
            .lock()
            .iter()
            .any(|r| r.contains(&"one-more".to_string()))
    })
    .await;
    let named = a.sink.room_resyncs.lock().clone();
    assert!(
        named.iter().all(|r| r.len() == 1),
        "each catch-up names only the room just subscribed: {named:?}"
    );
    assert_eq!(
        a.sink.resyncs.load(Ordering::SeqCst),
        full_resyncs,
        "no catch-up of every room"
    );
}
