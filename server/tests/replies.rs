//! Replies end to end: a `send` with `reply_to` is checked (a message of the room, else
//! `not_found` naming the send) and stored with a quote of the original (its seq, author and
//! the start of its text), which the live `message`, history and `joined` carry, on one task
//! with the embedded store and across two tasks (DynamoDB on moto, one redis-server).

mod moto;
mod support;
mod two_tasks;

use serde_json::{Value, json};
use support::{Client, SECRET, ServerProcess, get_json};
use two_tasks::TwoTasks;

fn reply(id: &str, text: &str, to: u64) -> Value {
    json!({"type": "send", "room": "hall", "client_msg_id": id, "text": text, "reply_to": to})
}

async fn start(env: &[(&'static str, String)]) -> ServerProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServerProcess::start(&env).await
}

/// The `message` frame with `seq` (the sender's own earlier ones may come first).
async fn message(c: &mut Client, seq: u64) -> Value {
    loop {
        let m = c.recv_type("message").await;
        if m["seq"] == seq {
            return m;
        }
    }
}

/// The quote `message` carries: (seq, author id, snippet).
fn quote(message: &Value) -> (u64, u64, String) {
    let r = &message["reply_to"];
    (
        r["seq"].as_u64().expect("reply_to.seq"),
        r["user"]["id"].as_u64().expect("reply_to.user.id"),
        r["snippet"].as_str().expect("reply_to.snippet").to_string(),
    )
}

#[tokio::test]
async fn a_reply_is_checked_and_carries_a_quote_of_the_original() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = vec![
        (
            "CHAT_DATA_DIR",
            dir.path().to_str().expect("utf-8").to_string(),
        ),
        ("CHAT_TOKEN_SECRET", SECRET.to_string()),
        ("CHAT_DRAIN_SECS", "0".to_string()),
    ];
    let server = start(&env).await;
    let (base, ws) = (server.url(""), server.ws_url());
    let mut alice = Client::connect(&base, &ws, "alice").await;
    let mut bob = Client::connect(&base, &ws, "bob").await;
    alice.join("hall").await;
    bob.join("hall").await;
    let long = format!("where  is\nhall B? {}", "x".repeat(200));
    let original = alice.say("hall", "q1", &long).await;
    assert_eq!(bob.recv_type("message").await["seq"], original);

    bob.send(reply("a1", "next to the stairs", original)).await;
    let ack = bob.recv_type("ack").await;
    let m = message(&mut alice, ack["seq"].as_u64().expect("seq")).await;
    let (seq, author, snippet) = quote(&m);
    assert_eq!((seq, author), (original, alice.id()));
    assert!(snippet.starts_with("where is hall B? xxx"), "{snippet}");
    assert_eq!(
        snippet.chars().count(),
        121,
        "120 characters and …: {snippet}"
    );
    assert!(snippet.ends_with('…'));

    // A seq the room does not hold: refused by name, nothing stored.
    bob.send(reply("a2", "hm", 99)).await;
    let err = bob.recv_type("error").await;
    assert_eq!(err["code"], "not_found", "{err}");
    assert_eq!(err["client_msg_id"], "a2");

    // History and a later joined carry the quote.
    let (_, page) = get_json(&server.url("/api/rooms/hall/messages")).await;
    let stored = page["messages"].as_array().expect("messages");
    assert_eq!(stored.len(), 2, "{page}");
    assert_eq!(quote(&stored[1]).0, original);
    let mut carol = Client::connect(&base, &ws, "carol").await;
    let joined = carol.join("hall").await;
    assert_eq!(quote(&joined["messages"][1]).2, snippet);
}

#[tokio::test]
async fn replies_cross_tasks_and_are_stored_on_dynamodb() {
    const PREFIX: &str = "rp-";
    let two = TwoTasks::start(PREFIX).await;
    let (a, b) = (&two.a, &two.b);
    let mut alice = Client::connect(&a.url(""), &a.ws_url(), "alice").await;
    let mut bob = Client::connect(&b.url(""), &b.ws_url(), "bob").await;
    alice.join("hall").await;
    bob.join("hall").await;
    let original = alice.say("hall", "q1", "when does talk 2 start?").await;
    assert_eq!(bob.recv_type("message").await["seq"], original);

    bob.send(reply("a1", "at three", original)).await;
    let ack = bob.recv_type("ack").await;
    let m = message(&mut alice, ack["seq"].as_u64().expect("seq")).await;
    assert_eq!(
        quote(&m),
        (original, alice.id(), "when does talk 2 start?".to_string())
    );
    for t in [a, b] {
        let (_, page) = get_json(&t.url("/api/rooms/hall/messages")).await;
        assert_eq!(quote(&page["messages"][1]).0, original, "{page}");
    }
}
