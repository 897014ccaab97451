//! Guest tokens through the real binary: they expire after `CHAT_TOKEN_TTL_SECS` (the session
//! answer says when), and the secret rotates: a task started with the new secret and the old
//! one as `CHAT_TOKEN_SECRET_PREVIOUS` accepts old tokens and renews them under the new key;
//! without it, old tokens are refused with 4401.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Client, ServerProcess, close_code, session};

const OLD: &str = "the-old-secret-0123456789";
const NEW: &str = "the-new-secret-9876543210";

async fn server(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> ServerProcess {
    let data = dir.path().to_str().expect("utf-8").to_string();
    let mut all = vec![("CHAT_DATA_DIR", data.as_str())];
    all.extend_from_slice(env);
    ServerProcess::start(&all).await
}

async fn refused(ws_url: &str, token: &str) -> u16 {
    let mut c = Client::hello(ws_url, token).await;
    close_code(&mut c.ws).await
}

#[tokio::test]
async fn a_rotated_secret_accepts_old_tokens_during_the_overlap_and_renews_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = server(&dir, &[("CHAT_TOKEN_SECRET", OLD)]).await;
    let s = session(&old.url(""), json!({"nickname": "Olga"})).await;
    let old_token = s["token"].as_str().expect("token").to_string();
    let id = s["user"]["id"].clone();
    drop(old);

    let rotating = server(
        &dir,
        &[
            ("CHAT_TOKEN_SECRET", NEW),
            ("CHAT_TOKEN_SECRET_PREVIOUS", OLD),
        ],
    )
    .await;
    let c = Client::with_token(&rotating.ws_url(), &old_token).await;
    assert_eq!(c.user["id"], id, "the old token still says who Olga is");
    let renewed = session(&rotating.url(""), json!({"token": old_token})).await;
    assert_eq!(renewed["user"]["id"], id);
    let new_token = renewed["token"].as_str().expect("token").to_string();
    let key_id = |t: &str| t.split('.').next().unwrap_or_default().to_string();
    assert_ne!(
        key_id(&new_token),
        key_id(&old_token),
        "renewed under the new key"
    );
    drop(rotating);

    let rotated = server(&dir, &[("CHAT_TOKEN_SECRET", NEW)]).await;
    assert_eq!(refused(&rotated.ws_url(), &old_token).await, 4401);
    let c = Client::with_token(&rotated.ws_url(), &new_token).await;
    assert_eq!(c.user["id"], id);
}

#[tokio::test]
async fn a_token_expires_after_its_ttl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = server(
        &dir,
        &[("CHAT_TOKEN_SECRET", NEW), ("CHAT_TOKEN_TTL_SECS", "2")],
    )
    .await;
    let issued = Instant::now();
    let answer = session(&s.url(""), json!({})).await;
    assert_eq!(answer["expires_in_secs"], 2, "{answer}");
    let token = answer["token"].as_str().expect("token").to_string();
    Client::with_token(&s.ws_url(), &token).await;
    // The token's life runs out (real time: the server checks its own clock).
    tokio::time::sleep_until((issued + Duration::from_millis(2100)).into()).await;
    assert_eq!(refused(&s.ws_url(), &token).await, 4401);
    // Renewing an expired token makes a new guest.
    let fresh = session(&s.url(""), json!({"token": token})).await;
    assert_ne!(fresh["user"]["id"], answer["user"]["id"]);
}
