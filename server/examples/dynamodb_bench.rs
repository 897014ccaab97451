//! Measures the DynamoDB store's append path: messages per second and requests per message,
//! for group-commit batches of several sizes. Points at whatever `AWS_ENDPOINT_URL` names
//! (a local moto in practice: its figures say little about DynamoDB's speed, but the request
//! counts are the same).
//!
//! `AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x \
//!  AWS_SECRET_ACCESS_KEY=x cargo run --release -p chat-server --example dynamodb_bench -- 400`

use std::time::{Duration, Instant};

use chat_server::protocol::User;
use chat_server::store::dynamodb::{self, DynamoStore};
use chat_server::store::{NewMessage, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(400);
    let client = dynamodb::client_from_env(Duration::from_secs(60)).await;
    let prefix = format!("bench{}-", std::process::id());
    dynamodb::create_tables(&client, &prefix).await?;
    let store = DynamoStore::new(client, &prefix);
    println!(
        "batch  messages  seconds  msgs/s  requests/msg  writes/msg  ({total} messages per row)"
    );
    for batch in [1usize, 10, 50, 200] {
        let room = format!("room{batch}");
        let before = store.request_counts();
        let started = Instant::now();
        let mut sent = 0;
        while sent < total {
            let n = batch.min(total - sent);
            let messages: Vec<NewMessage> = (sent..sent + n)
                .map(|i| NewMessage {
                    room: room.clone(),
                    user: User {
                        id: 1 + (i % 100) as u64,
                        nickname: "bench".into(),
                        avatar: "otter".into(),
                    },
                    client_msg_id: format!("{batch}-{i}"),
                    text: "x".repeat(100),
                    ts: 1_763_800_000_000 + i as i64,
                    attachment: None,
                    reply_to: None,
                    moderator: false,
                })
                .collect();
            for r in store.append(messages).await {
                r?;
            }
            sent += n;
        }
        let secs = started.elapsed().as_secs_f64();
        let used = store.request_counts().since(&before);
        println!(
            "{batch:>5}  {sent:>8}  {secs:>7.2}  {:>6.0}  {:>12.3}  {:>10.3}   {used}",
            sent as f64 / secs,
            used.total() as f64 / sent as f64,
            used.writes() as f64 / sent as f64,
        );
    }
    Ok(())
}
