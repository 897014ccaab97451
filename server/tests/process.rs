//! The chat-server binary as operators run it: restarts keep state, SIGTERM drains with
//! `reconnect` + 1012 and exit 0, bad configuration exits 2 naming the variable, and the
//! `healthcheck` / `create-tables` subcommands.

mod support;

use std::process::Command;

use serde_json::json;
use support::{Client, ServerProcess, close_code, get_json, session};

#[tokio::test]
async fn a_restart_keeps_history_seq_and_the_user_counter() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let env = [("CHAT_DATA_DIR", data), ("CHAT_DRAIN_SECS", "0")];
    let mut first = ServerProcess::start(&env).await;
    let mut c = Client::connect(&first.url(""), &first.ws_url(), "Keeper").await;
    c.join("kept").await;
    assert_eq!(c.say("kept", "k1", "before restart").await, 1);
    assert_eq!(c.say("kept", "k2", "still before").await, 2);
    let token = c.token.clone();
    let first_id = c.id();
    drop(c);
    first.terminate();
    assert_eq!(first.wait_exit().await, Some(0));

    let second = ServerProcess::start(&env).await;
    // The token (and the generated secret that signs it) survived.
    let renewed = session(&second.url(""), json!({"token": token})).await;
    assert_eq!(renewed["user"]["id"], first_id);
    let fresh = session(&second.url(""), json!({})).await;
    assert!(
        fresh["user"]["id"].as_u64().unwrap() > first_id,
        "the counter continued"
    );
    let (_, page) = get_json(&second.url("/api/rooms/kept/messages")).await;
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["before restart", "still before"]);
    let mut c = Client::with_token(&second.ws_url(), &token).await;
    let joined = c.join("kept").await;
    assert_eq!(joined["last_seq"], 2);
    assert_eq!(c.say("kept", "k3", "after restart").await, 3);
    // The same client_msg_id from before the restart is still recognised.
    assert_eq!(c.say("kept", "k1", "before restart").await, 1);
}

#[tokio::test]
async fn sigterm_sends_reconnect_then_1012_to_everyone_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start(&[
        ("CHAT_DATA_DIR", dir.path().to_str().unwrap()),
        ("CHAT_DRAIN_SECS", "1"),
    ])
    .await;
    let mut a = Client::connect(&p.url(""), &p.ws_url(), "Ann").await;
    let mut b = Client::connect(&p.url(""), &p.ws_url(), "Ben").await;
    a.join("d").await;
    b.join("d").await;
    let seq = a.say("d", "before-drain", "kept").await;
    p.terminate();
    for c in [&mut a, &mut b] {
        let r = c.recv_type("reconnect").await;
        assert_eq!(r["reason"], "draining");
        assert!(r["retry_after_ms"].as_u64().is_some());
        assert_eq!(close_code(&mut c.ws).await, 1012);
    }
    assert_eq!(p.wait_exit().await, Some(0));
    // What was acked before the drain is durable.
    let again = ServerProcess::start(&[("CHAT_DATA_DIR", dir.path().to_str().unwrap())]).await;
    let (_, page) = get_json(&again.url("/api/rooms/d/messages")).await;
    assert_eq!(page["messages"][0]["seq"], seq);
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(support::bin());
    cmd.args(args)
        .env_remove("CHAT_TOKEN_SECRET")
        .env_remove("CHAT_DYNAMODB_TABLE_PREFIX");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run chat-server");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("CHAT_REDIS_URL", "http://nope")], "CHAT_REDIS_URL"),
        (
            &[("CHAT_DYNAMODB_TABLE_PREFIX", "chat-")],
            "CHAT_TOKEN_SECRET",
        ),
        (&[("CHAT_TOKEN_SECRET", "short")], "CHAT_TOKEN_SECRET"),
        (&[("CHAT_LISTEN", "not-an-address")], "CHAT_LISTEN"),
        (
            &[("CHAT_ALLOWED_ORIGINS", "evil.example")],
            "CHAT_ALLOWED_ORIGINS",
        ),
        (&[("CHAT_DRAIN_SECS", "-1")], "drain"),
    ];
    for (env, named) in cases {
        let (code, stderr) = run(&[], env);
        assert_eq!(code, Some(2), "{env:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{env:?} should name {named}: {stderr}"
        );
        assert_eq!(
            stderr
                .trim()
                .lines()
                .filter(|l| l.contains("error"))
                .count(),
            1,
            "one error line: {stderr}"
        );
    }
    let (code, stderr) = run(&["--no-such-flag"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
}

#[tokio::test]
async fn healthcheck_exits_0_against_a_live_server_and_1_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let p = ServerProcess::start(&[("CHAT_DATA_DIR", dir.path().to_str().unwrap())]).await;
    let url = p.url("/healthz");
    let (code, stderr) =
        tokio::task::spawn_blocking(move || run(&["healthcheck", "--url", &url], &[]))
            .await
            .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    let dead = format!("http://127.0.0.1:{}/healthz", support::free_port());
    let (code, stderr) = run(&["healthcheck", "--url", &dead], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains(&dead), "{stderr}");
}

#[test]
fn create_tables_needs_dynamodb_and_prints_the_schema() {
    let (code, stderr) = run(&["create-tables"], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("CHAT_DYNAMODB_TABLE_PREFIX"), "{stderr}");
    let out = Command::new(support::bin())
        .args(["create-tables", "--print-schema"])
        .env("CHAT_DYNAMODB_TABLE_PREFIX", "ev-")
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = schema
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ev-messages", "ev-connections", "ev-user-counter"]);
}

#[test]
fn create_tables_refuses_a_bad_prefix_before_calling_aws() {
    // A closed port: were the prefix not checked first, the call would fail there (exit 1).
    let endpoint = format!("http://127.0.0.1:{}", support::free_port());
    let (code, stderr) = run(
        &["create-tables"],
        &[
            ("CHAT_DYNAMODB_TABLE_PREFIX", "bad prefix!"),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("CHAT_DYNAMODB_TIMEOUT_MS", "500"),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("CHAT_DYNAMODB_TABLE_PREFIX"), "{stderr}");
}

#[test]
fn moderator_token_never_makes_a_secret_and_checks_the_one_it_is_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_dir = data.to_str().expect("utf-8 path");
    // No secret anywhere: a credential signed with a secret made up here would open on no
    // server, and the file would become the secret of a server started later.
    let (code, stderr) = run(
        &["moderator-token", "--name", "Ada"],
        &[("CHAT_DATA_DIR", data_dir)],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("CHAT_TOKEN_SECRET"), "{stderr}");
    assert!(!data.exists(), "nothing is written into {data_dir}");
    // A secret too short to sign with is a configuration error.
    let (code, stderr) = run(
        &["moderator-token", "--name", "Ada"],
        &[("CHAT_DATA_DIR", data_dir), ("CHAT_TOKEN_SECRET", "short")],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("CHAT_TOKEN_SECRET"), "{stderr}");
    assert!(!data.exists());
}
