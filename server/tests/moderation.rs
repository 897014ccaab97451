//! Moderation end to end: a moderator credential from `chat-server moderator-token`, `delete`
//! leaving a tombstone in history and removing the message live (on every task, over a real
//! redis-server with two processes on one DynamoDB on moto), `mute` stopping a user's sends
//! with `muted` for a bounded time on every task and across a restart, and everything refused
//! to a guest without the credential.

mod moto;
mod support;
mod two_tasks;

use std::time::Duration;

use chat_server::auth::Tokens;
use serde_json::{Value, json};
use support::moderators::{connect_moderator, credential};
use support::{Client, SECRET, ServerProcess, TestServer, get_json};
use two_tasks::TwoTasks;

async fn history(base: &str, room: &str, query: &str) -> Value {
    let (status, page) = get_json(&format!("{base}/api/rooms/{room}/messages?{query}")).await;
    assert_eq!(status, 200, "{page}");
    page
}

#[tokio::test]
async fn the_command_issues_a_credential_the_server_accepts() {
    let out = std::process::Command::new(support::bin())
        .args(["moderator-token", "--name", "Ada", "--ttl-secs", "600"])
        .env("CHAT_TOKEN_SECRET", SECRET)
        .output()
        .expect("run chat-server moderator-token");
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).expect("utf-8");
    let server = TestServer::start(&[]).await;
    let (_, welcome) = connect_moderator(&server.url(""), &server.ws_url(), token.trim()).await;
    assert_eq!(welcome["moderator"], "Ada", "{welcome}");

    // A life above the limit, or a bad name, is refused before anything is printed.
    for args in [
        ["--name", "Ada", "--ttl-secs", "604801"],
        ["--name", "A", "--ttl-secs", "60"],
    ] {
        let out = std::process::Command::new(support::bin())
            .arg("moderator-token")
            .args(args)
            .env("CHAT_TOKEN_SECRET", SECRET)
            .output()
            .expect("run chat-server moderator-token");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn guests_and_bad_credentials_cannot_moderate() {
    let server = TestServer::start(&[]).await;
    let (base, ws) = (server.url(""), server.ws_url());
    let mut alice = Client::connect(&base, &ws, "alice").await;
    alice.join("hall").await;
    let seq = alice.say("hall", "a1", "hello").await;

    alice
        .send(json!({"type": "delete", "room": "hall", "seq": seq}))
        .await;
    let err = alice.recv_type("error").await;
    assert_eq!(err["code"], "forbidden", "{err}");
    alice
        .send(json!({"type": "mute", "room": "hall", "user_id": 1, "secs": 60}))
        .await;
    assert_eq!(alice.recv_type("error").await["code"], "forbidden");

    // A forged or foreign credential: welcomed as a guest, told the credential is refused.
    let foreign = chat_server::moderator::issue(
        &Tokens::new(b"some other deployment"),
        "Eve",
        Duration::from_secs(600),
    )
    .expect("credential");
    let guest_token = alice.token.clone();
    for bad in [foreign, guest_token] {
        let (mut eve, welcome) = connect_moderator(&base, &ws, &bad).await;
        assert!(welcome.get("moderator").is_none(), "{welcome}");
        let err = eve.recv_type("error").await;
        assert_eq!(err["code"], "forbidden", "{err}");
        eve.join("hall").await;
        eve.send(json!({"type": "delete", "room": "hall", "seq": seq}))
            .await;
        assert_eq!(eve.recv_type("error").await["code"], "forbidden");
    }
    let page = history(&base, "hall", "").await;
    assert_eq!(page["messages"][0]["text"], "hello", "nothing was deleted");
}

#[tokio::test]
async fn delete_leaves_a_tombstone_and_removes_the_message_live() {
    let server = TestServer::start(&[]).await;
    let (base, ws) = (server.url(""), server.ws_url());
    let mut alice = Client::connect(&base, &ws, "alice").await;
    let mut bob = Client::connect(&base, &ws, "bob").await;
    let (mut moderator, _) = connect_moderator(&base, &ws, &credential("Ada")).await;
    for c in [&mut alice, &mut bob, &mut moderator] {
        c.join("hall").await;
    }
    let mut seqs = Vec::new();
    for i in 1..=5 {
        seqs.push(
            alice
                .say("hall", &format!("m{i}"), &format!("text {i}"))
                .await,
        );
    }
    let target = seqs[2];

    // Not joined, a seq with no message: named errors, nothing changes.
    moderator
        .send(json!({"type": "delete", "room": "elsewhere", "seq": target}))
        .await;
    assert_eq!(moderator.recv_type("error").await["code"], "not_joined");
    moderator
        .send(json!({"type": "delete", "room": "hall", "seq": 999}))
        .await;
    let err = moderator.recv_type("error").await;
    assert_eq!(err["code"], "not_found", "{err}");

    moderator
        .send(json!({"type": "delete", "room": "hall", "seq": target}))
        .await;
    for c in [&mut bob, &mut alice, &mut moderator] {
        let deleted = c.recv_type("deleted").await;
        assert_eq!(deleted["room"], "hall");
        assert_eq!(deleted["seq"], target);
        assert_eq!(deleted["message"]["deleted"], true, "{deleted}");
        assert_eq!(deleted["message"]["text"], "");
    }

    // History: the tombstone at its seq, its neighbours untouched; paging still exact.
    let page = history(&base, "hall", "").await;
    let got: Vec<u64> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(got, seqs);
    let tomb = &page["messages"][2];
    assert_eq!(tomb["deleted"], true, "{tomb}");
    assert_eq!(tomb["text"], "");
    assert_eq!(tomb["user"]["id"], alice.id());
    assert!(page["messages"][1].get("deleted").is_none());
    assert_eq!(page["messages"][3]["text"], "text 4");
    let older = history(&base, "hall", &format!("before={}&limit=1", seqs[3])).await;
    assert_eq!(older["messages"][0]["seq"], target);
    assert_eq!(older["messages"][0]["deleted"], true);

    // A member joining now gets the tombstone, never the text.
    let mut carol = Client::connect(&base, &ws, "carol").await;
    let joined = carol.join("hall").await;
    assert!(!joined.to_string().contains("text 3"), "{joined}");
    assert_eq!(joined["messages"][2]["deleted"], true, "{joined}");

    // A retry of the deleted message's client_msg_id is acked, not stored again.
    alice
        .send(json!({"type": "send", "room": "hall", "client_msg_id": "m3", "text": "again"}))
        .await;
    assert_eq!(alice.recv_type("ack").await["seq"], target);
    let page = history(&base, "hall", "").await;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn a_muted_user_cannot_send_until_the_mute_ends_even_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path").to_string();
    let env = [
        ("CHAT_DATA_DIR", data.as_str()),
        ("CHAT_TOKEN_SECRET", SECRET),
        ("CHAT_DRAIN_SECS", "0"),
    ];
    let mut server = ServerProcess::start(&env).await;
    let (base, ws) = (server.url(""), server.ws_url());
    let mut alice = Client::connect(&base, &ws, "alice").await;
    let mut bob = Client::connect(&base, &ws, "bob").await;
    let (mut moderator, _) = connect_moderator(&base, &ws, &credential("Ada")).await;
    for c in [&mut alice, &mut bob, &mut moderator] {
        c.join("hall").await;
    }
    alice.say("hall", "before", "before the mute").await;

    // Over the limit: refused, naming it; nobody is muted.
    moderator
        .send(json!({"type": "mute", "room": "hall", "user_id": alice.id(), "secs": 86401}))
        .await;
    let err = moderator.recv_type("error").await;
    assert_eq!(err["code"], "bad_request", "{err}");
    assert!(
        err["message"].as_str().unwrap_or("").contains("86400"),
        "{err}"
    );

    moderator
        .send(json!({"type": "mute", "room": "hall", "user_id": alice.id(), "secs": 600}))
        .await;
    let confirmed = moderator.recv_type("muted").await;
    assert_eq!(confirmed["user_id"], alice.id());
    let told = alice.recv_type("muted").await;
    assert_eq!(told["room"], "hall");
    let until = told["until"].as_i64().expect("until");
    let now = chat_server::now_ms();
    assert!(until > now + 590_000 && until <= now + 600_000, "{told}");

    alice
        .send(json!({"type": "send", "room": "hall", "client_msg_id": "x1", "text": "spam"}))
        .await;
    let err = alice.recv_type("error").await;
    assert_eq!(err["code"], "muted", "{err}");
    assert_eq!(err["client_msg_id"], "x1");
    assert!(
        err["message"].as_str().unwrap_or("").contains("hall"),
        "{err}"
    );
    // Others still send; the mute is per room.
    bob.say("hall", "b1", "still here").await;
    alice.join("other").await;
    alice.say("other", "o1", "elsewhere is fine").await;

    // The mute is in the store: it holds on a restarted server.
    let alice_token = alice.token.clone();
    drop((alice, bob, moderator));
    server.terminate();
    assert_eq!(server.wait_exit().await, Some(0));
    let server = ServerProcess::start(&env).await;
    let (base, ws) = (server.url(""), server.ws_url());
    let mut alice = Client::with_token(&ws, &alice_token).await;
    alice.join("hall").await;
    alice
        .send(json!({"type": "send", "room": "hall", "client_msg_id": "x2", "text": "spam"}))
        .await;
    assert_eq!(alice.recv_type("error").await["code"], "muted");

    // `secs: 0` lifts it.
    let (mut moderator, _) = connect_moderator(&base, &ws, &credential("Ada")).await;
    moderator.join("hall").await;
    moderator
        .send(json!({"type": "mute", "room": "hall", "user_id": alice.id(), "secs": 0}))
        .await;
    moderator.recv_type("muted").await;
    alice.recv_type("muted").await;
    alice.say("hall", "x3", "back again").await;
}

/// Two processes on one DynamoDB (moto) and one redis-server: a delete made on task A
/// removes the message for a member on task B, and a mute given on A stops a send on B.
#[tokio::test]
async fn moderation_holds_across_tasks() {
    const PREFIX: &str = "mod-";
    let two = TwoTasks::start(PREFIX).await;
    let (a, b) = (&two.a, &two.b);
    let (mut moderator, _) = connect_moderator(&a.url(""), &a.ws_url(), &credential("Ada")).await;
    let mut alice = Client::connect(&b.url(""), &b.ws_url(), "alice").await;
    let mut bob = Client::connect(&b.url(""), &b.ws_url(), "bob").await;
    for c in [&mut moderator, &mut alice, &mut bob] {
        c.join("hall").await;
    }
    let seq = alice.say("hall", "m1", "abuse").await;
    assert_eq!(moderator.recv_type("message").await["seq"], seq);
    assert_eq!(bob.recv_type("message").await["seq"], seq);

    moderator
        .send(json!({"type": "delete", "room": "hall", "seq": seq}))
        .await;
    let deleted = bob.recv_type("deleted").await;
    assert_eq!(
        deleted["seq"], seq,
        "the other task's member sees it vanish"
    );
    assert_eq!(deleted["message"]["deleted"], true);
    for p in [a, b] {
        let page = history(&p.url(""), "hall", "").await;
        assert_eq!(page["messages"][0]["deleted"], true, "{page}");
        assert_eq!(page["messages"][0]["text"], "");
    }

    // Task B has read the room's mutes already (alice sent): the event updates it at once.
    moderator
        .send(json!({"type": "mute", "room": "hall", "user_id": alice.id(), "secs": 120}))
        .await;
    moderator.recv_type("muted").await;
    assert_eq!(alice.recv_type("muted").await["user_id"], alice.id());
    alice
        .send(json!({"type": "send", "room": "hall", "client_msg_id": "m2", "text": "more"}))
        .await;
    let err = alice.recv_type("error").await;
    assert_eq!(err["code"], "muted", "{err}");
    bob.say("hall", "b1", "fine").await;
}
