//! Read receipts end to end: `read` frames raise a user's position (never lower it), moved
//! positions reach the room's members coalesced (one `receipts` frame per flush, whatever the
//! number of reads), on every task (two processes on one DynamoDB on moto and one
//! redis-server), a member joining gets every known position, and positions survive a restart.

mod moto;
mod support;
mod two_tasks;

use serde_json::{Value, json};
use support::{Client, SECRET, ServerProcess};
use two_tasks::TwoTasks;

/// The next `receipts` frame naming `user` at `seq` or beyond; returns how many receipts
/// frames came until then.
async fn receipts_until(c: &mut Client, user: u64, seq: u64) -> usize {
    let mut frames = 0;
    loop {
        let f = c.recv_type("receipts").await;
        frames += 1;
        if position(&f, user).is_some_and(|s| s >= seq) {
            return frames;
        }
    }
}

fn position(f: &Value, user: u64) -> Option<u64> {
    f["seen"]
        .as_array()?
        .iter()
        .find(|p| p[0] == user)
        .and_then(|p| p[1].as_u64())
}

fn embedded_env(data: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CHAT_DATA_DIR", data.to_string()),
        ("CHAT_TOKEN_SECRET", SECRET.to_string()),
        ("CHAT_DRAIN_SECS", "0".to_string()),
    ]
}

async fn start(env: &[(&'static str, String)]) -> ServerProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start(&env).await
}

#[tokio::test]
async fn reads_are_coalesced_checked_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = embedded_env(dir.path().to_str().expect("utf-8 path"));
    let mut server = start(&env).await;
    let (base, ws) = (server.url(""), server.ws_url());
    let mut alice = Client::connect(&base, &ws, "alice").await;
    let mut bob = Client::connect(&base, &ws, "bob").await;
    alice.join("hall").await;
    bob.join("hall").await;
    for i in 1..=3 {
        alice.say("hall", &format!("m{i}"), "hello").await;
    }
    for _ in 1..=3 {
        bob.recv_type("message").await;
    }

    // A burst of reads: alice hears of them in at most two frames (one flush boundary), the
    // last with bob at 3; a lower read after it changes nothing.
    for seq in [1, 2, 3, 2] {
        bob.send(json!({"type": "read", "room": "hall", "seq": seq}))
            .await;
    }
    let frames = receipts_until(&mut alice, bob.id(), 3).await;
    assert!(
        frames <= 2,
        "{frames} receipts frames for one burst of reads"
    );

    // Limits: past the room's last message, or a room not joined.
    bob.send(json!({"type": "read", "room": "hall", "seq": 99}))
        .await;
    let err = bob.recv_type("error").await;
    assert_eq!(err["code"], "bad_request", "{err}");
    assert!(
        err["message"].as_str().unwrap_or("").contains("99"),
        "{err}"
    );
    bob.send(json!({"type": "read", "room": "other", "seq": 1}))
        .await;
    assert_eq!(bob.recv_type("error").await["code"], "not_joined");

    // A member joining gets the room's positions.
    let mut carol = Client::connect(&base, &ws, "carol").await;
    carol.join("hall").await;
    let f = carol.recv_type("receipts").await;
    assert_eq!(position(&f, bob.id()), Some(3), "{f}");

    // A clean restart stores what was not stored yet; the new process reads it back.
    let bob_id = bob.id();
    drop((alice, bob, carol));
    server.terminate();
    assert_eq!(server.wait_exit().await, Some(0));
    let server = start(&env).await;
    let mut dave = Client::connect(&server.url(""), &server.ws_url(), "dave").await;
    dave.join("hall").await;
    let f = dave.recv_type("receipts").await;
    assert_eq!(position(&f, bob_id), Some(3), "{f}");
}

#[tokio::test]
async fn receipts_cross_tasks() {
    const PREFIX: &str = "rr-";
    let two = TwoTasks::start(PREFIX).await;
    let (a, b) = (&two.a, &two.b);
    let mut alice = Client::connect(&a.url(""), &a.ws_url(), "alice").await;
    let mut bob = Client::connect(&b.url(""), &b.ws_url(), "bob").await;
    alice.join("hall").await;
    bob.join("hall").await;
    let seq = alice.say("hall", "m1", "hello").await;
    assert_eq!(bob.recv_type("message").await["seq"], seq);
    bob.send(json!({"type": "read", "room": "hall", "seq": seq}))
        .await;
    receipts_until(&mut alice, bob.id(), seq).await;

    // Stored on DynamoDB by task B: a member joining task A later gets it (A merged B's event;
    // a task that never saw it reads the store).
    let mut carol = Client::connect(&a.url(""), &a.ws_url(), "carol").await;
    carol.join("hall").await;
    let f = carol.recv_type("receipts").await;
    assert_eq!(position(&f, bob.id()), Some(seq), "{f}");
}
