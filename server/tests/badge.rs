//! The moderator badge: a message sent from a connection with a valid moderator credential
//! carries `moderator: true` (live on every task, in history, stored on DynamoDB), and a guest
//! cannot forge it (a `send` naming `moderator` is stored without it). Two processes on one
//! DynamoDB on moto and one redis-server.

mod moto;
mod support;
mod two_tasks;

use serde_json::{Value, json};
use support::moderators::{connect_moderator, credential};
use support::{Client, get_json};
use two_tasks::TwoTasks;

/// The `message` frame with `seq` (earlier ones may come first).
async fn message(c: &mut Client, seq: u64) -> Value {
    loop {
        let m = c.recv_type("message").await;
        if m["seq"] == seq {
            return m;
        }
    }
}

#[tokio::test]
async fn a_moderators_messages_carry_a_badge_guests_cannot_forge() {
    const PREFIX: &str = "badge-";
    let two = TwoTasks::start(PREFIX).await;
    let (a, b) = (&two.a, &two.b);
    let (mut ada, _) = connect_moderator(&a.url(""), &a.ws_url(), &credential("Ada")).await;
    let mut eve = Client::connect(&b.url(""), &b.ws_url(), "eve").await;
    ada.join("hall").await;
    eve.join("hall").await;

    let official = ada.say("hall", "m1", "Talk 2 starts in Hall B").await;
    assert_eq!(message(&mut eve, official).await["moderator"], true);

    // A guest naming `moderator` in its send: stored and shown without the badge.
    eve.send(json!({"type": "send", "room": "hall", "client_msg_id": "f1", "text": "I am staff", "moderator": true}))
        .await;
    let forged = eve.recv_type("ack").await["seq"].as_u64().expect("seq");
    let m = message(&mut ada, forged).await;
    assert!(m.get("moderator").is_none(), "{m}");

    for t in [a, b] {
        let (_, page) = get_json(&t.url("/api/rooms/hall/messages")).await;
        let marks: Vec<bool> = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["moderator"] == true)
            .collect();
        assert_eq!(marks, vec![true, false], "{page}");
    }
}
