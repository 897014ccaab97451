//! Moderators in tests: a credential for the tests' secret and a guest whose `hello` carries it.

use std::time::Duration;

use chat_server::auth::Tokens;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{Client, SECRET};

/// A moderator credential for the tests' secret, made in process.
pub fn credential(name: &str) -> String {
    chat_server::moderator::issue(
        &Tokens::new(SECRET.as_bytes()),
        name,
        Duration::from_secs(600),
    )
    .expect("a moderator credential")
}

/// A new guest whose `hello` carries `moderator`; returns it with its `welcome`.
pub async fn connect_moderator(base: &str, ws_url: &str, moderator: &str) -> (Client, Value) {
    let s = super::session(base, json!({"nickname": "Mod"})).await;
    let token = s["token"].as_str().expect("token").to_string();
    let mut ws = Client::raw(ws_url).await;
    ws.send(Message::text(
        json!({"type": "hello", "token": token, "moderator": moderator}).to_string(),
    ))
    .await
    .expect("send hello");
    let mut c = Client {
        ws,
        user: Value::Null,
        token,
    };
    let welcome = c.recv_type("welcome").await;
    c.user = welcome["user"].clone();
    (c, welcome)
}
