//! DynamoDB-only behaviour of the store, on a real moto server: `create_tables` makes exactly
//! the schema, connection items carry a TTL that heartbeats refresh, the request count per
//! message of the group commit, and errors when the endpoint is gone.

mod moto;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, KeyType};
use chat_server::protocol::User;
use chat_server::store::dynamodb::{self, DynamoStore, Op};
use chat_server::store::schema;
use chat_server::store::{ConnectionChange, ConnectionRecord, NewMessage, Store, StoreError};
use moto::Moto;

const PREFIX: &str = "unit-";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

async fn ready() -> (Moto, aws_sdk_dynamodb::Client) {
    let moto = Moto::start().await;
    let client = moto.client().await;
    dynamodb::create_tables(&client, PREFIX)
        .await
        .expect("create_tables");
    (moto, client)
}

fn msg(room: &str, i: usize) -> NewMessage {
    NewMessage {
        room: room.into(),
        user: User {
            id: 1 + (i % 7) as u64,
            nickname: "nick".into(),
            avatar: "otter".into(),
        },
        client_msg_id: format!("{room}-{i}"),
        text: format!("message {i}"),
        ts: 1_763_800_000_000 + i as i64,
        attachment: None,
        reply_to: None,
        moderator: false,
    }
}

#[tokio::test]
async fn create_tables_makes_exactly_the_schema_and_is_idempotent() {
    let (_moto, client) = ready().await;
    dynamodb::create_tables(&client, PREFIX)
        .await
        .expect("second create_tables is a no-op");
    for table in schema::tables(PREFIX) {
        let d = client
            .describe_table()
            .table_name(&table.name)
            .send()
            .await
            .expect("describe")
            .table
            .expect("table");
        let keys: Vec<(String, KeyType)> = d
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name().to_string(), k.key_type().clone()))
            .collect();
        let mut want = vec![(table.hash_key.name.to_string(), KeyType::Hash)];
        want.extend(
            table
                .range_key
                .as_ref()
                .map(|r| (r.name.to_string(), KeyType::Range)),
        );
        assert_eq!(keys, want, "{}", table.name);
        for attr in d.attribute_definitions() {
            let all = std::iter::once(&table.hash_key)
                .chain(table.range_key.as_ref())
                .chain(
                    table
                        .global_secondary_indexes
                        .iter()
                        .flat_map(|i| std::iter::once(&i.hash_key).chain(i.range_key.as_ref())),
                )
                .find(|k| k.name == attr.attribute_name())
                .unwrap_or_else(|| panic!("undeclared attribute {attr:?}"));
            assert_eq!(attr.attribute_type().as_str(), all.kind);
        }
        let mut indexes: Vec<(String, String, Vec<String>)> = d
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                (
                    i.index_name().unwrap_or_default().to_string(),
                    i.projection()
                        .and_then(|p| p.projection_type())
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default(),
                    i.key_schema()
                        .iter()
                        .map(|k| k.attribute_name().to_string())
                        .collect(),
                )
            })
            .collect();
        indexes.sort();
        let want: Vec<(String, String, Vec<String>)> = table
            .global_secondary_indexes
            .iter()
            .map(|i| {
                let mut keys = vec![i.hash_key.name.to_string()];
                keys.extend(i.range_key.as_ref().map(|r| r.name.to_string()));
                (i.name.to_string(), i.projection.to_string(), keys)
            })
            .collect();
        assert_eq!(indexes, want, "{}", table.name);
        assert_eq!(
            d.billing_mode_summary()
                .and_then(|b| b.billing_mode())
                .map(|b| b.as_str()),
            Some(table.billing_mode)
        );
        let ttl = client
            .describe_time_to_live()
            .table_name(&table.name)
            .send()
            .await
            .expect("describe TTL");
        let ttl = ttl.time_to_live_description();
        match table.ttl_attribute {
            Some(attr) => {
                assert_eq!(ttl.and_then(|t| t.attribute_name()), Some(attr));
                assert_eq!(
                    ttl.and_then(|t| t.time_to_live_status())
                        .map(|s| s.as_str()),
                    Some("ENABLED")
                );
            }
            None => assert_ne!(
                ttl.and_then(|t| t.time_to_live_status())
                    .map(|s| s.as_str()),
                Some("ENABLED")
            ),
        }
        let pitr = client
            .describe_continuous_backups()
            .table_name(&table.name)
            .send()
            .await
            .expect("describe backups");
        let status = pitr
            .continuous_backups_description()
            .and_then(|c| c.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            .map(|s| s.as_str());
        let want = if table.point_in_time_recovery {
            "ENABLED"
        } else {
            "DISABLED"
        };
        assert_eq!(status.unwrap_or("DISABLED"), want, "{}", table.name);
    }
}

#[tokio::test]
async fn create_tables_refuses_a_table_with_other_keys() {
    let moto = Moto::start().await;
    let client = moto.client().await;
    let wrong = schema::tables("odd-")
        .into_iter()
        .find(|t| t.name == "odd-user-counter")
        .expect("counter table");
    client
        .create_table()
        .table_name(&wrong.name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::N)
                .build()
                .expect("definition"),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create the wrong table");
    let e = dynamodb::create_tables(&client, "odd-")
        .await
        .expect_err("a table with other keys is an error");
    let text = format!("{e:#}");
    assert!(
        text.contains("odd-user-counter") && text.contains("keys"),
        "{text}"
    );
}

async fn connection_item(
    client: &aws_sdk_dynamodb::Client,
    id: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name("unit-connections")
        .key("conn_id", AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get connection")
        .item
}

fn expires_at(item: &std::collections::HashMap<String, AttributeValue>) -> i64 {
    item.get("expires_at")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .expect("expires_at is a number")
}

#[tokio::test]
async fn connection_items_carry_a_ttl_that_heartbeats_refresh() {
    let (_moto, client) = ready().await;
    let store = DynamoStore::new(client.clone(), PREFIX).with_connection_refresh(Duration::ZERO);
    let conn = ConnectionRecord {
        conn_id: "c1".into(),
        user_id: 9,
        rooms: vec!["lobby".into()],
        task: "task-1".into(),
        color: "green".into(),
        connected_at: 1_763_800_000_000,
    };
    store
        .write_connections(&[ConnectionChange::Put(conn.clone())])
        .await
        .expect("put");
    let item = connection_item(&client, "c1").await.expect("item written");
    let ttl = dynamodb::CONNECTION_TTL.as_secs() as i64;
    let now = now_secs();
    assert!((now + ttl - 5..=now + ttl + 1).contains(&expires_at(&item)));
    assert_eq!(
        item.get("color")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("green")
    );
    assert_eq!(
        item.get("user_id")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("9")
    );

    // Pretend the last heartbeat was long ago; the next one moves the expiry out again.
    client
        .update_item()
        .table_name("unit-connections")
        .key("conn_id", AttributeValue::S("c1".into()))
        .update_expression("SET expires_at = :old")
        .expression_attribute_values(":old", AttributeValue::N("1000".into()))
        .send()
        .await
        .expect("age the item");
    store
        .touch_connections(&["c1".into()])
        .await
        .expect("touch");
    let item = connection_item(&client, "c1")
        .await
        .expect("item still there");
    let now = now_secs();
    assert!((now + ttl - 5..=now + ttl + 1).contains(&expires_at(&item)));

    // A heartbeat never recreates a removed connection.
    store
        .write_connections(&[ConnectionChange::Remove("c1".into())])
        .await
        .expect("remove");
    assert!(connection_item(&client, "c1").await.is_none());
    store
        .touch_connections(&["c1".into()])
        .await
        .expect("touch removed");
    assert!(connection_item(&client, "c1").await.is_none());

    // With the default refresh interval, a heartbeat right after connecting writes nothing.
    let lazy = DynamoStore::new(client.clone(), PREFIX);
    lazy.write_connections(&[ConnectionChange::Put(conn.clone())])
        .await
        .expect("put");
    let before = lazy.request_counts();
    lazy.touch_connections(&["c1".into()]).await.expect("touch");
    assert_eq!(lazy.request_counts().since(&before).total(), 0);
}

#[tokio::test]
async fn a_heartbeat_refreshes_a_crowd_a_share_at_a_time_stalest_first() {
    let (_moto, client) = ready().await;
    let store = DynamoStore::new(client.clone(), PREFIX).with_connection_refresh(Duration::ZERO);
    // 200 connections seated at once: all come due at once.
    let ids: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
    let changes: Vec<ConnectionChange> = ids
        .iter()
        .map(|id| {
            ConnectionChange::Put(ConnectionRecord {
                conn_id: id.clone(),
                user_id: 1,
                rooms: vec!["lobby".into()],
                task: "task-1".into(),
                color: "blue".into(),
                connected_at: 1_763_800_000_000,
            })
        })
        .collect();
    store.write_connections(&changes).await.expect("seat");
    // Pretend every write was long ago, so that a refresh shows.
    for id in &ids {
        client
            .update_item()
            .table_name("unit-connections")
            .key("conn_id", AttributeValue::S(id.clone()))
            .update_expression("SET expires_at = :old")
            .expression_attribute_values(":old", AttributeValue::N("1000".into()))
            .send()
            .await
            .expect("age the item");
    }
    let mut touched = 0;
    for beat in 1..=4 {
        let before = store.request_counts();
        store.touch_connections(&ids).await.expect("touch");
        let used = store.request_counts().since(&before).get(Op::UpdateItem);
        // One in 8 of 200 is 25: at least 64 per beat, never all 200 at once.
        assert_eq!(used, 64, "beat {beat}");
        touched += used;
    }
    assert!(touched >= 200);
    // Stalest first: four beats reached every record, none was left behind.
    for id in &ids {
        let item = connection_item(&client, id).await.expect("item");
        assert!(expires_at(&item) > 1000, "{id} was never refreshed");
    }
}

#[tokio::test]
async fn connection_changes_go_in_batches_of_25() {
    let (_moto, client) = ready().await;
    let store = DynamoStore::new(client.clone(), PREFIX);
    let record = |i: u64| ConnectionRecord {
        conn_id: format!("b{i}"),
        user_id: i,
        rooms: vec!["lobby".into()],
        task: "task-1".into(),
        color: "blue".into(),
        connected_at: 1_763_800_000_000,
    };
    let puts: Vec<ConnectionChange> = (0..60).map(|i| ConnectionChange::Put(record(i))).collect();
    let before = store.request_counts();
    store.write_connections(&puts).await.expect("60 puts");
    let used = store.request_counts().since(&before);
    assert_eq!(used.get(Op::BatchWriteItem), 3, "{used}");
    assert_eq!(used.total(), 3, "{used}");
    assert!(connection_item(&client, "b59").await.is_some());
    // Removals and puts mixed in one call: 30 removed, 5 rooms replaced.
    let mixed: Vec<ConnectionChange> = (0..30)
        .map(|i| ConnectionChange::Remove(format!("b{i}")))
        .chain((30..35).map(|i| {
            let mut r = record(i);
            r.rooms = vec!["other".into()];
            ConnectionChange::Put(r)
        }))
        .collect();
    store.write_connections(&mixed).await.expect("mixed");
    assert!(connection_item(&client, "b0").await.is_none());
    assert!(connection_item(&client, "b29").await.is_none());
    let item = connection_item(&client, "b30").await.expect("b30 kept");
    assert_eq!(
        item.get("rooms").and_then(|v| v.as_l().ok()).map(Vec::len),
        Some(1)
    );
    assert_eq!(
        item.get("rooms")
            .and_then(|v| v.as_l().ok())
            .and_then(|l| l[0].as_s().ok())
            .map(String::as_str),
        Some("other")
    );
    assert!(connection_item(&client, "b59").await.is_some());
}

#[tokio::test]
async fn group_commit_costs_at_most_two_writes_per_message() {
    let (_moto, client) = ready().await;
    let store = DynamoStore::new(client, PREFIX);

    // One message alone: one idempotency read, one counter add, one transaction.
    let before = store.request_counts();
    store.append(vec![msg("solo", 0)]).await;
    let used = store.request_counts().since(&before);
    assert_eq!(used.get(Op::BatchGetItem), 1, "{used}");
    assert_eq!(used.get(Op::UpdateItem), 1, "{used}");
    assert_eq!(used.get(Op::TransactWriteItems), 1, "{used}");
    assert_eq!(used.writes(), 2);

    // 120 messages of one room: still one counter add; a transaction per 50 messages.
    let before = store.request_counts();
    let out = store
        .append((0..120).map(|i| msg("busy", i)).collect())
        .await;
    assert!(out.iter().all(|r| r.is_ok()));
    let used = store.request_counts().since(&before);
    assert_eq!(used.get(Op::UpdateItem), 1, "{used}");
    assert_eq!(used.get(Op::TransactWriteItems), 3, "{used}");
    assert_eq!(used.get(Op::BatchGetItem), 2, "{used}");
    assert_eq!(used.total(), 6);
}

/// The store side of docs/PROTOCOL.md section 10's arithmetic: a room of 1,000 readers costs
/// ⌈1000 / 25⌉ = 40 write requests per store pass (every READ_STORE_SECS = 30 s), and reading
/// the room's positions back is one Query.
#[tokio::test]
async fn read_positions_of_a_thousand_members_cost_forty_batched_writes_and_one_query() {
    let (_moto, client) = ready().await;
    let store = DynamoStore::new(client, PREFIX);
    let seen: Vec<(u64, u64)> = (1..=1000).map(|u| (u, 500 + u % 7)).collect();
    let before = store.request_counts();
    store
        .put_read_positions("keynote", &seen)
        .await
        .expect("put positions");
    let used = store.request_counts().since(&before);
    assert_eq!(used.get(Op::BatchWriteItem), 40, "{used}");
    assert_eq!(used.writes(), 40, "{used}");
    let per_sec = used.writes() as f64 / chat_server::protocol::READ_STORE_SECS as f64;
    println!("1,000 read positions: {used}; {per_sec:.2} write requests/s per room at most");

    let before = store.request_counts();
    let mut back = store.read_positions("keynote").await.expect("read");
    back.sort_unstable();
    assert_eq!(back, seen);
    assert_eq!(store.request_counts().since(&before).to_string(), "Query=1");
}

#[tokio::test]
async fn a_dead_endpoint_is_unavailable_naming_dynamodb() {
    let (mut moto, client) = ready().await;
    let store = DynamoStore::new(client, PREFIX);
    moto.stop();
    let out = store.append(vec![msg("a", 1), msg("b", 2)]).await;
    assert_eq!(out.len(), 2);
    for r in out {
        match r {
            Err(StoreError::Unavailable(e)) => assert!(e.contains("dynamodb"), "{e}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert!(matches!(
        store.check().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(store.reserve_user_ids(1).await.is_err());
}
