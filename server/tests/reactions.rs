//! Reactions end to end: `react` toggles one user's emoji on a message, the room hears of it
//! coalesced (one `reactions` frame per flush, whatever the number of reactions), on every task
//! (two processes on one DynamoDB on moto and one redis-server), history and `joined` carry
//! them, the limits hold (the fixed set, a message that exists, a room joined, the rate), and
//! they survive a restart.

mod moto;
mod support;
mod two_tasks;

use serde_json::{Value, json};
use support::{Client, SECRET, ServerProcess, get_json};
use two_tasks::TwoTasks;

const THUMBS: &str = "👍";
const PARTY: &str = "🎉";

fn react(seq: u64, emoji: &str, on: bool) -> Value {
    json!({"type": "react", "room": "hall", "seq": seq, "emoji": emoji, "on": on})
}

/// Who reacted with `emoji` in a message's `reactions` (a message or a `reactions` entry).
fn users(reactions: &Value, emoji: &str) -> Vec<u64> {
    reactions
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["emoji"] == emoji)
        .map(|r| {
            r["users"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .collect()
        })
        .unwrap_or_default()
}

/// The state of `seq` in a `reactions` frame, if it names it.
fn state(frame: &Value, seq: u64) -> Option<Value> {
    frame["messages"]
        .as_array()?
        .iter()
        .find(|m| m["seq"] == seq)
        .cloned()
}

/// Reads `reactions` frames until one shows `seq` with exactly `want` on `emoji`; returns how
/// many frames it took.
async fn reactions_until(c: &mut Client, seq: u64, emoji: &str, want: &[u64]) -> usize {
    let mut frames = 0;
    loop {
        let f = c.recv_type("reactions").await;
        frames += 1;
        if state(&f, seq).is_some_and(|s| users(&s["reactions"], emoji) == want) {
            return frames;
        }
    }
}

async fn start(env: &[(&'static str, String)]) -> ServerProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start(&env).await
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

#[tokio::test]
async fn reactions_are_toggled_coalesced_checked_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = vec![
        (
            "CHAT_DATA_DIR",
            dir.path().to_str().expect("utf-8").to_string(),
        ),
        ("CHAT_TOKEN_SECRET", SECRET.to_string()),
        ("CHAT_DRAIN_SECS", "0".to_string()),
    ];
    let mut server = start(&env).await;
    let (base, ws) = (server.url(""), server.ws_url());
    let mut alice = Client::connect(&base, &ws, "alice").await;
    let mut bob = Client::connect(&base, &ws, "bob").await;
    let mut carol = Client::connect(&base, &ws, "carol").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.join("hall").await;
    }
    let seq = alice.say("hall", "m1", "hello").await;

    // A burst from three people, one of them toggling twice: alice hears all of it in at most
    // two frames (one flush boundary), each message's whole state at once.
    bob.send(react(seq, THUMBS, true)).await;
    carol.send(react(seq, THUMBS, true)).await;
    carol.send(react(seq, PARTY, true)).await;
    carol.send(react(seq, PARTY, false)).await;
    bob.send(react(seq, THUMBS, true)).await; // again: still once
    let want = sorted(vec![bob.id(), carol.id()]);
    let frames = reactions_until(&mut alice, seq, THUMBS, &want).await;
    assert!(frames <= 2, "{frames} reactions frames for one burst");

    // Limits: an emoji outside the set, a message that is not there, a room not joined.
    bob.send(react(seq, "🦀", true)).await;
    let err = bob.recv_type("error").await;
    assert_eq!(err["code"], "bad_request", "{err}");
    assert!(
        err["message"].as_str().unwrap_or("").contains(THUMBS),
        "{err}"
    );
    bob.send(react(99, THUMBS, true)).await;
    let err = bob.recv_type("error").await;
    assert_eq!(err["code"], "not_found", "{err}");
    bob.send(json!({"type": "react", "room": "other", "seq": 1, "emoji": THUMBS, "on": true}))
        .await;
    assert_eq!(bob.recv_type("error").await["code"], "not_joined");

    // The rate: 10 at once, then 2 per second; a flood is refused by name, nothing else.
    let mut dave = Client::connect(&base, &ws, "dave").await;
    dave.join("hall").await;
    for i in 0..16 {
        dave.send(react(seq, PARTY, i % 2 == 0)).await;
    }
    let err = dave.recv_type("error").await;
    assert_eq!(err["code"], "rate_limited", "{err}");

    // History and a later `joined` carry them.
    let (status, page) = get_json(&server.url("/api/rooms/hall/messages")).await;
    assert_eq!(status, 200);
    let stored = &page["messages"][0];
    assert_eq!(users(&stored["reactions"], THUMBS), want, "{stored}");
    assert!(
        stored["reactions_version"].as_u64().unwrap_or(0) >= 5,
        "{stored}"
    );
    let mut erin = Client::connect(&base, &ws, "erin").await;
    let joined = erin.join("hall").await;
    let in_joined = users(&joined["messages"][0]["reactions"], THUMBS);
    if in_joined != want {
        // Joined from frames remembered before the reactions: the state follows at once.
        let f = erin.recv_type("reactions").await;
        assert_eq!(
            users(&state(&f, seq).expect("seq")["reactions"], THUMBS),
            want
        );
    }

    // Taking one back, then a restart: what was stored is read back.
    bob.send(react(seq, THUMBS, false)).await;
    reactions_until(&mut alice, seq, THUMBS, &[carol.id()]).await;
    let carol_id = carol.id();
    drop((alice, bob, carol, dave, erin));
    server.terminate();
    assert_eq!(server.wait_exit().await, Some(0));
    let server = start(&env).await;
    let mut fred = Client::connect(&server.url(""), &server.ws_url(), "fred").await;
    let joined = fred.join("hall").await;
    assert_eq!(
        users(&joined["messages"][0]["reactions"], THUMBS),
        vec![carol_id],
        "{joined}"
    );
}

#[tokio::test]
async fn reactions_cross_tasks_and_are_stored_on_dynamodb() {
    const PREFIX: &str = "rx-";
    let two = TwoTasks::start(PREFIX).await;
    let (a, b) = (&two.a, &two.b);
    let mut alice = Client::connect(&a.url(""), &a.ws_url(), "alice").await;
    let mut bob = Client::connect(&b.url(""), &b.ws_url(), "bob").await;
    alice.join("hall").await;
    bob.join("hall").await;
    let seq = alice.say("hall", "m1", "hello").await;
    assert_eq!(bob.recv_type("message").await["seq"], seq);

    // Both tasks change the same message at once: the store's sets merge both, and each side
    // ends on the newest state (versions), whichever frame came last.
    alice.send(react(seq, THUMBS, true)).await;
    bob.send(react(seq, THUMBS, true)).await;
    let both = sorted(vec![alice.id(), bob.id()]);
    reactions_until(&mut alice, seq, THUMBS, &both).await;
    reactions_until(&mut bob, seq, THUMBS, &both).await;

    // Taken back on task B: task A's member hears it.
    bob.send(react(seq, THUMBS, false)).await;
    let alice_id = alice.id();
    reactions_until(&mut alice, seq, THUMBS, &[alice_id]).await;

    // On DynamoDB: history on either task, and a later member of task A.
    for t in [a, b] {
        let (_, page) = get_json(&t.url("/api/rooms/hall/messages")).await;
        assert_eq!(
            users(&page["messages"][0]["reactions"], THUMBS),
            vec![alice_id],
            "{page}"
        );
    }
    let mut carol = Client::connect(&a.url(""), &a.ws_url(), "carol").await;
    let joined = carol.join("hall").await;
    if users(&joined["messages"][0]["reactions"], THUMBS) != vec![alice.id()] {
        let f = carol.recv_type("reactions").await;
        assert_eq!(
            users(&state(&f, seq).expect("seq")["reactions"], THUMBS),
            vec![alice.id()]
        );
    }
}
