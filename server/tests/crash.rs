//! An ack means durable: a chat-server killed with SIGKILL in the middle of heavy sending (the
//! embedded store's write-ahead log, redb commits and checkpoints all in flight) loses nothing it
//! acked. After each restart every acked message is in history at its acked seq, each room's
//! seqs run 1, 2, 3 … with no gap, and a retried client_msg_id is still recognised.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::{Client, ServerProcess, WAIT, get_json};
use tokio_tungstenite::tungstenite::Message;

const ROOMS: usize = 4;
const CLIENTS: usize = 8;
/// Unacked sends each client keeps going (the server's commit queue stays busy).
const WINDOW: usize = 32;
const ROUNDS: usize = 3;
/// A client stops on its own after this many sends (bounds the loop if the kill is late).
const MAX_SENDS: usize = 200_000;

/// (room, seq) -> (client_msg_id, text) of every ack received.
type Acked = BTreeMap<(String, u64), (String, String)>;

fn env(data: &str) -> Vec<(&str, &str)> {
    vec![
        ("CHAT_DATA_DIR", data),
        ("CHAT_DRAIN_SECS", "0"),
        ("CHAT_RATE_PER_SEC", "1000000"),
        ("CHAT_RATE_BURST", "1000000"),
    ]
}

/// Sends until the connection dies (or `MAX_SENDS`), keeping `WINDOW` sends unacked; returns
/// what was acked and whether the connection was cut (rather than the loop ending).
async fn send_until_cut(
    mut c: Client,
    room: String,
    prefix: String,
    acks: Arc<AtomicU64>,
) -> (Acked, bool) {
    let mut acked = Acked::new();
    let mut texts = HashMap::new();
    let mut sent = 0;
    let mut waiting = 0;
    loop {
        while waiting < WINDOW && sent < MAX_SENDS {
            let id = format!("{prefix}-{sent}");
            let text = format!("text of {id}");
            let frame = json!({"type": "send", "room": room, "client_msg_id": id, "text": text});
            if c.ws.send(Message::text(frame.to_string())).await.is_err() {
                return (acked, true);
            }
            texts.insert(id, text);
            sent += 1;
            waiting += 1;
        }
        if waiting == 0 {
            return (acked, false);
        }
        let frame = match tokio::time::timeout(WAIT, c.ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(&t).expect("JSON"),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return (acked, true),
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("no frame for {WAIT:?} while sending to {room}"),
        };
        match frame["type"].as_str() {
            Some("ack") => {
                let id = frame["client_msg_id"].as_str().expect("id").to_string();
                let seq = frame["seq"].as_u64().expect("seq");
                let text = texts.remove(&id).expect("an ack for a send of mine");
                acked.insert((room.clone(), seq), (id, text));
                acks.fetch_add(1, Ordering::Relaxed);
                waiting -= 1;
            }
            // Refused (the queue was full): not acked, so nothing to find later.
            Some("error") => waiting -= 1,
            _ => {}
        }
    }
}

/// Every message of `room`, oldest first, paging with `after`.
async fn whole_history(p: &ServerProcess, room: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let url = p.url(&format!(
            "/api/rooms/{room}/messages?after={after}&limit=200"
        ));
        let (status, page) = get_json(&url).await;
        assert_eq!(status, 200, "history of {room}: {page}");
        let messages = page["messages"].as_array().expect("messages").clone();
        if let Some(last) = messages.last() {
            after = last["seq"].as_u64().expect("seq");
        }
        all.extend(messages);
        if page["has_more"] != true {
            return all;
        }
    }
}

/// Checks a restarted server against everything acked so far.
async fn check_history(p: &ServerProcess, acked: &Acked) {
    for r in 0..ROOMS {
        let room = format!("crash-{r}");
        let history = whole_history(p, &room).await;
        for (i, m) in history.iter().enumerate() {
            assert_eq!(
                m["seq"].as_u64(),
                Some(i as u64 + 1),
                "{room}: seqs run from 1 with no gap"
            );
        }
        let by_seq: HashMap<u64, &Value> = history
            .iter()
            .map(|m| (m["seq"].as_u64().expect("seq"), m))
            .collect();
        for ((_, seq), (id, text)) in acked.range((room.clone(), 0)..=(room.clone(), u64::MAX)) {
            let m = by_seq
                .get(seq)
                .unwrap_or_else(|| panic!("{room}: acked seq {seq} ({id}) lost in the crash"));
            assert_eq!(m["client_msg_id"], id.as_str(), "{room}/{seq}");
            assert_eq!(m["text"], text.as_str(), "{room}/{seq}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acked() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed {seed} (set CRASH_SEED to repeat)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let wal = dir.path().join("chat.wal");

    let mut acked = Acked::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut log_held_acks = false;
    for round in 0..ROUNDS {
        let mut p = ServerProcess::start(&env(&data)).await;
        check_history(&p, &acked).await;
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let mut client = match tokens.get(c) {
                Some(t) => Client::with_token(&p.ws_url(), t).await,
                None => Client::connect(&p.url(""), &p.ws_url(), &format!("Crash{c}")).await,
            };
            if tokens.len() <= c {
                tokens.push(client.token.clone());
            }
            let room = format!("crash-{}", c % ROOMS);
            client.join(&room).await;
            clients.push((client, room));
        }
        if round > 0 {
            // A retry of something acked before the crash gets its original seq back.
            let (c, room) = &mut clients[0];
            let mine = format!("r{}-c0-", round - 1);
            let (seq, id, text) = acked
                .range((room.clone(), 0)..=(room.clone(), u64::MAX))
                .rev()
                .find(|(_, (id, _))| id.starts_with(&mine))
                .map(|((_, seq), (id, text))| (*seq, id.clone(), text.clone()))
                .expect("client 0 had an ack in the last round");
            assert_eq!(c.say(room, &id, &text).await, seq, "retry of {id}");
        }

        let acks = Arc::new(AtomicU64::new(0));
        let kill_after = rng.random_range(300..3_000);
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(c, (client, room))| {
                tokio::spawn(send_until_cut(
                    client,
                    room,
                    format!("r{round}-c{c}"),
                    Arc::clone(&acks),
                ))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while acks.load(Ordering::Relaxed) < kill_after {
            assert!(Instant::now() < deadline, "only {acks:?} acks in 60 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        p.kill();
        log_held_acks |= std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0;
        let mut this_round = 0;
        for t in tasks {
            let (got, cut) = t.await.expect("client task");
            assert!(cut, "a client ran out of sends before the kill");
            this_round += got.len();
            acked.extend(got);
        }
        println!("round {round}: killed after {this_round} acks (wanted {kill_after})");
    }
    assert!(
        log_held_acks,
        "no kill found records in the write-ahead log (the crash never hit the log's window)"
    );
    let p = ServerProcess::start(&env(&data)).await;
    check_history(&p, &acked).await;
}
