//! The one contract every `Store` keeps, run case by case against BOTH implementations: the
//! embedded redb store (in a temp dir) and the DynamoDB store (on a real moto server, tables
//! made by `create_tables`). A case takes a `Backend` and may open several handles on the same
//! data, standing for several tasks sharing one store.

mod moto;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use chat_server::protocol::User;
use chat_server::store::dynamodb::{self, DynamoStore};
use chat_server::store::embedded::EmbeddedStore;
use chat_server::store::user_ids::{BLOCK, UserIds};
use chat_server::store::{
    Appended, ConnectionChange, ConnectionRecord, HistoryQuery, IDEMPOTENCY_WINDOW_MS, NewMessage,
    Store,
};
use moto::Moto;

/// The data one store keeps, reachable through any number of handles.
enum Backend {
    Embedded {
        store: Arc<EmbeddedStore>,
        _dir: tempfile::TempDir,
    },
    Dynamo {
        moto: Moto,
    },
}

const PREFIX: &str = "contract-";

impl Backend {
    async fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(dir.path()).expect("opening the embedded store");
        Backend::Embedded {
            store: Arc::new(store),
            _dir: dir,
        }
    }

    async fn dynamodb() -> Self {
        let moto = Moto::start().await;
        dynamodb::create_tables(&moto.client().await, PREFIX)
            .await
            .expect("creating the tables on moto");
        Backend::Dynamo { moto }
    }

    /// Another handle on the same data (for DynamoDB, its own client, like another task).
    async fn handle(&self) -> Arc<dyn Store> {
        match self {
            Backend::Embedded { store, .. } => store.clone(),
            Backend::Dynamo { moto } => Arc::new(DynamoStore::new(moto.client().await, PREFIX)),
        }
    }
}

fn user(id: u64) -> User {
    User {
        id,
        nickname: format!("user{id}"),
        avatar: "otter".into(),
    }
}

const T0: i64 = 1_763_800_000_000;

fn msg(room: &str, user_id: u64, client_msg_id: &str, text: &str) -> NewMessage {
    NewMessage {
        room: room.into(),
        user: user(user_id),
        client_msg_id: client_msg_id.into(),
        text: text.into(),
        ts: T0,
        attachment: None,
        reply_to: None,
        moderator: false,
    }
}

fn query(before: Option<u64>, after: Option<u64>, limit: usize) -> HistoryQuery {
    HistoryQuery {
        before,
        after,
        limit,
    }
}

async fn append_ok(store: &dyn Store, batch: Vec<NewMessage>) -> Vec<Appended> {
    store
        .append(batch)
        .await
        .into_iter()
        .map(|r| r.expect("append should succeed"))
        .collect()
}

fn stored(a: &Appended) -> u64 {
    match a {
        Appended::Stored(m) => m.seq,
        Appended::Duplicate(m) => panic!("expected Stored, got Duplicate of seq {}", m.seq),
    }
}

async fn seqs(store: &dyn Store, room: &str, q: HistoryQuery) -> (Vec<u64>, bool) {
    let page = store.history(room, q).await.expect("history");
    for m in &page.messages {
        assert_eq!(
            m.room, room,
            "history of {room} returned a message of {}",
            m.room
        );
    }
    (page.messages.iter().map(|m| m.seq).collect(), page.has_more)
}

async fn user_ids_start_at_one_and_never_repeat(b: Backend) {
    let (s1, s2) = (b.handle().await, b.handle().await);
    assert_eq!(s1.reserve_user_ids(1).await.expect("first id"), 1..=1);
    let mut draws = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 { s1.clone() } else { s2.clone() };
        draws.push(tokio::spawn(async move { s.reserve_user_ids(5).await }));
    }
    let mut ids = BTreeSet::new();
    for d in draws {
        let block = d.await.expect("task").expect("reserve_user_ids");
        assert_eq!(block.clone().count(), 5, "a block of 5: {block:?}");
        for id in block {
            assert!(ids.insert(id), "user id {id} was handed out twice");
        }
    }
    assert_eq!(ids, (2..=201).collect::<BTreeSet<u64>>());
}

async fn a_task_draws_its_guests_ids_a_block_at_a_time(b: Backend) {
    let s = b.handle().await;
    let (a, c) = (UserIds::new(s.clone()), UserIds::new(s.clone()));
    let first: Vec<u64> = [a.next().await, a.next().await, c.next().await]
        .into_iter()
        .map(|r| r.expect("next id"))
        .collect();
    // Each task has its own block: ids increase on a task and never repeat across them.
    assert_eq!(first, vec![1, 2, BLOCK + 1]);
    assert_eq!(
        s.reserve_user_ids(1).await.expect("counter"),
        2 * BLOCK + 1..=2 * BLOCK + 1,
        "one counter write per block, not per guest"
    );
}

async fn seqs_start_at_one_and_increase_per_room_in_input_order(b: Backend) {
    let s = b.handle().await;
    assert_eq!(s.last_seq("a").await.expect("last_seq"), 0);
    let batch = vec![
        msg("a", 1, "m1", "one"),
        msg("b", 1, "m2", "two"),
        msg("a", 2, "m3", "three"),
        msg("a", 1, "m4", "four"),
        msg("b", 2, "m5", "five"),
    ];
    let out = append_ok(&*s, batch.clone()).await;
    assert_eq!(out.iter().map(stored).collect::<Vec<_>>(), [1, 1, 2, 3, 2]);
    for (new, done) in batch.iter().zip(&out) {
        let m = done.message();
        assert_eq!(
            (&m.room, &m.user, &m.client_msg_id, &m.text, m.ts),
            (&new.room, &new.user, &new.client_msg_id, &new.text, new.ts)
        );
    }
    let next = append_ok(&*s, vec![msg("a", 3, "m6", "six")]).await;
    assert_eq!(stored(&next[0]), 4);
    assert_eq!(s.last_seq("a").await.expect("last_seq a"), 4);
    assert_eq!(s.last_seq("b").await.expect("last_seq b"), 2);
    assert_eq!(s.last_seq("c").await.expect("last_seq c"), 0);
    // Many rooms at once (the hub's audit), in the order asked.
    let rooms = ["c", "a", "b"].map(String::from);
    assert_eq!(s.last_seqs(&rooms).await.expect("last_seqs"), vec![0, 4, 2]);
    assert!(s.append(Vec::new()).await.is_empty());
}

async fn stored_messages_come_back_unchanged(b: Backend) {
    let s = b.handle().await;
    let long: String = "ü字🦦".repeat(666) + "ok";
    let mut odd = msg("room_-9", 77, "0f8fad5b-d9cb-469f-a165-70867728950e", &long);
    odd.user.nickname = "Zoë 🦦".into();
    odd.user.avatar = "fox".into();
    odd.ts = T0 + 123;
    let plain = msg("room_-9", 78, "x", "a \"quoted\" <b>text</b>\n");
    let out = append_ok(&*s, vec![odd.clone(), plain]).await;
    let page = s
        .history("room_-9", query(None, None, 50))
        .await
        .expect("history");
    assert_eq!(
        page.messages,
        out.iter().map(|a| a.message().clone()).collect::<Vec<_>>()
    );
    assert_eq!(page.messages[0].text, long);
    assert_eq!(page.messages[0].user, odd.user);
    assert!(!page.has_more);
}

async fn a_repeat_returns_the_original_and_stores_nothing(b: Backend) {
    let (s1, s2) = (b.handle().await, b.handle().await);
    let first = append_ok(&*s1, vec![msg("a", 5, "same", "first")]).await;
    let original = first[0].message().clone();
    // Another task, another text: still the same (user, room, client_msg_id).
    let mut again = msg("a", 5, "same", "second");
    again.ts = T0 + 60_000;
    let out = append_ok(&*s2, vec![again]).await;
    assert_eq!(out, [Appended::Duplicate(original.clone())]);
    assert_eq!(
        seqs(&*s1, "a", query(None, None, 50)).await,
        (vec![1], false)
    );
    // The same id in another room is a message of that room (issue 26).
    let elsewhere = append_ok(&*s2, vec![msg("b", 5, "same", "to b")]).await;
    assert_eq!(stored(&elsewhere[0]), 1);
    assert_eq!(elsewhere[0].message().room, "b");
    assert_eq!(
        seqs(&*s1, "b", query(None, None, 50)).await,
        (vec![1], false)
    );
    let later = append_ok(&*s1, vec![msg("a", 5, "other", "third")]).await;
    assert!(stored(&later[0]) > original.seq);
}

async fn a_repeat_inside_one_batch_is_a_duplicate_of_the_first(b: Backend) {
    let s = b.handle().await;
    let out = append_ok(
        &*s,
        vec![
            msg("a", 1, "k", "first"),
            msg("a", 1, "k", "repeat"),
            msg("a", 2, "k", "someone else"),
        ],
    )
    .await;
    assert!(matches!(&out[0], Appended::Stored(_)));
    assert_eq!(out[1], Appended::Duplicate(out[0].message().clone()));
    assert!(matches!(&out[2], Appended::Stored(m) if m.user.id == 2));
    let (got, _) = seqs(&*s, "a", query(None, None, 50)).await;
    assert_eq!(got.len(), 2, "two messages stored, got seqs {got:?}");
}

async fn a_repeat_after_the_window_is_a_new_message(b: Backend) {
    let s = b.handle().await;
    let out = append_ok(&*s, vec![msg("a", 1, "k", "day one")]).await;
    let first = out[0].message().clone();

    let mut inside = msg("a", 1, "k", "just inside");
    inside.ts = T0 + IDEMPOTENCY_WINDOW_MS - 1;
    assert_eq!(
        append_ok(&*s, vec![inside]).await,
        [Appended::Duplicate(first.clone())]
    );

    let mut outside = msg("a", 1, "k", "day two");
    outside.ts = T0 + IDEMPOTENCY_WINDOW_MS;
    let out = append_ok(&*s, vec![outside]).await;
    let second = out[0].message().clone();
    assert!(stored(&out[0]) > first.seq);

    // From now on the key refers to the new message.
    let mut repeat = msg("a", 1, "k", "day two again");
    repeat.ts = T0 + IDEMPOTENCY_WINDOW_MS + 5_000;
    assert_eq!(
        append_ok(&*s, vec![repeat]).await,
        [Appended::Duplicate(second)]
    );
}

async fn history_pages_are_exact(b: Backend) {
    let s = b.handle().await;
    let batch: Vec<NewMessage> = (1..=7)
        .map(|i| msg("a", 1, &format!("a{i}"), &format!("text {i}")))
        .collect();
    append_ok(&*s, batch).await;
    // Neighbouring room names must not leak into each other's pages.
    append_ok(&*s, vec![msg("ab", 1, "x1", "x"), msg("a-", 1, "x2", "y")]).await;

    /// before, after, limit, the seqs wanted, has_more.
    type Case = (Option<u64>, Option<u64>, usize, &'static [u64], bool);
    let cases: &[Case] = &[
        // newest `limit` without `after`
        (None, None, 3, &[5, 6, 7], true),
        (None, None, 6, &[2, 3, 4, 5, 6, 7], true),
        (None, None, 7, &[1, 2, 3, 4, 5, 6, 7], false),
        (None, None, 50, &[1, 2, 3, 4, 5, 6, 7], false),
        // paging back with `before`
        (Some(5), None, 3, &[2, 3, 4], true),
        (Some(4), None, 3, &[1, 2, 3], false),
        (Some(2), None, 3, &[1], false),
        (Some(1), None, 3, &[], false),
        (Some(0), None, 3, &[], false),
        (Some(100), None, 2, &[6, 7], true),
        // catching up with `after`: the oldest `limit`
        (None, Some(0), 3, &[1, 2, 3], true),
        (None, Some(2), 3, &[3, 4, 5], true),
        (None, Some(4), 3, &[5, 6, 7], false),
        (None, Some(6), 3, &[7], false),
        (None, Some(7), 3, &[], false),
        (None, Some(u64::MAX), 3, &[], false),
        // both bounds
        (Some(6), Some(2), 10, &[3, 4, 5], false),
        (Some(6), Some(2), 2, &[3, 4], true),
        (Some(6), Some(2), 3, &[3, 4, 5], false),
        (Some(3), Some(2), 5, &[], false),
        (Some(2), Some(5), 5, &[], false),
    ];
    for &(before, after, limit, want, more) in cases {
        assert_eq!(
            seqs(&*s, "a", query(before, after, limit)).await,
            (want.to_vec(), more),
            "before={before:?} after={after:?} limit={limit}"
        );
    }
    assert_eq!(
        seqs(&*s, "empty", query(None, None, 50)).await,
        (vec![], false)
    );
    assert_eq!(
        seqs(&*s, "ab", query(None, None, 50)).await,
        (vec![1], false)
    );
}

async fn concurrent_appends_get_distinct_increasing_seqs(b: Backend) {
    let handles = [b.handle().await, b.handle().await];
    let mut tasks = Vec::new();
    for t in 0..20u64 {
        let s = handles[(t % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            let batch = (0..5)
                .map(|i| msg("hot", t + 1, &format!("t{t}-{i}"), &format!("{t}/{i}")))
                .collect();
            s.append(batch).await
        }));
    }
    let mut all = HashSet::new();
    for task in tasks {
        let out: Vec<u64> = task
            .await
            .expect("task")
            .into_iter()
            .map(|r| stored(&r.expect("append")))
            .collect();
        assert!(
            out.windows(2).all(|w| w[0] < w[1]),
            "a batch's seqs follow its order: {out:?}"
        );
        for seq in out {
            assert!(all.insert(seq), "seq {seq} given twice");
        }
    }
    let (history, more) = seqs(&*handles[0], "hot", query(None, None, 200)).await;
    assert!(!more);
    assert_eq!(history.len(), 100);
    assert!(history.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(history.iter().copied().collect::<HashSet<_>>(), all);
    let last = handles[1].last_seq("hot").await.expect("last_seq");
    assert_eq!(Some(&last), history.last());
}

async fn racing_repeats_store_one_copy(b: Backend) {
    let handles = [b.handle().await, b.handle().await];
    let mut tasks = Vec::new();
    for key in 0..10u64 {
        for (h, handle) in handles.iter().enumerate() {
            let s = handle.clone();
            tasks.push(tokio::spawn(async move {
                let m = msg("race", 9, &format!("k{key}"), &format!("from handle {h}"));
                (key, s.append(vec![m]).await)
            }));
        }
    }
    let mut by_key: Vec<Vec<Appended>> = vec![Vec::new(); 10];
    for task in tasks {
        let (key, out) = task.await.expect("task");
        for r in out {
            by_key[key as usize].push(r.expect("append"));
        }
    }
    for (key, outcomes) in by_key.iter().enumerate() {
        let stored: Vec<_> = outcomes
            .iter()
            .filter(|a| matches!(a, Appended::Stored(_)))
            .collect();
        assert_eq!(stored.len(), 1, "key k{key}: {outcomes:?}");
        for a in outcomes {
            assert_eq!(a.message(), stored[0].message(), "key k{key}");
        }
    }
    let page = handles[0]
        .history("race", query(None, None, 200))
        .await
        .expect("history");
    assert_eq!(
        page.messages.len(),
        10,
        "one copy per key: {:?}",
        page.messages
    );
}

async fn connections_are_recorded_touched_and_removed(b: Backend) {
    let s = b.handle().await;
    let mut conn = ConnectionRecord {
        conn_id: "c1".into(),
        user_id: 3,
        rooms: vec![],
        task: "task-a".into(),
        color: "blue".into(),
        connected_at: T0,
    };
    s.write_connections(&[ConnectionChange::Put(conn.clone())])
        .await
        .expect("put");
    conn.rooms = vec!["lobby".into(), "other".into()];
    s.write_connections(&[ConnectionChange::Put(conn.clone())])
        .await
        .expect("replace rooms");
    s.touch_connections(&["c1".into(), "never-seen".into()])
        .await
        .expect("touch");
    s.touch_connections(&[]).await.expect("touch nothing");
    s.write_connections(&[ConnectionChange::Remove("c1".into())])
        .await
        .expect("remove");
    s.write_connections(&[ConnectionChange::Remove("c1".into())])
        .await
        .expect("remove twice");
    s.write_connections(&[]).await.expect("nothing");
    // A batch larger than DynamoDB's 25, puts and removals of others mixed.
    let batch: Vec<ConnectionChange> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                ConnectionChange::Put(ConnectionRecord {
                    conn_id: format!("m{i}"),
                    ..conn.clone()
                })
            } else {
                ConnectionChange::Remove(format!("m{i}"))
            }
        })
        .collect();
    s.write_connections(&batch).await.expect("a batch of 40");
}

async fn check_and_flush_answer(b: Backend) {
    let s = b.handle().await;
    s.check().await.expect("check");
    append_ok(&*s, vec![msg("a", 1, "k", "t")]).await;
    s.flush().await.expect("flush");
}

async fn a_deleted_message_becomes_a_tombstone_at_its_seq(b: Backend) {
    let (s1, s2) = (b.handle().await, b.handle().await);
    let mut with_image = msg("a", 1, "k2", "");
    with_image.attachment = Some(Box::new(chat_server::protocol::Attachment {
        url: "/uploads/x.png".into(),
        content_type: "image/png".into(),
        width: 2,
        height: 3,
        bytes: 40,
    }));
    let done = append_ok(
        &*s1,
        vec![
            msg("a", 1, "k1", "one"),
            with_image,
            msg("a", 2, "k3", "three"),
        ],
    )
    .await;
    let at: Vec<u64> = done.iter().map(stored).collect();
    for seq in [at[0], at[1]] {
        let tomb = s2
            .delete_message("a", seq)
            .await
            .expect("delete")
            .expect("a message was there");
        assert!(tomb.deleted && tomb.text.is_empty() && tomb.attachment.is_none());
        assert_eq!((tomb.seq, tomb.user.id, tomb.ts), (seq, 1, T0));
    }
    // Deleting again returns the tombstone; an empty seq or room is None.
    let again = s1.delete_message("a", at[0]).await.expect("delete");
    assert!(again.is_some_and(|m| m.deleted));
    assert_eq!(s1.delete_message("a", 99).await.expect("delete"), None);
    assert_eq!(s1.delete_message("b", at[0]).await.expect("delete"), None);

    // History keeps every seq; pages are unchanged in shape.
    let page = s1
        .history("a", query(None, None, 10))
        .await
        .expect("history");
    let got: Vec<(u64, bool, &str)> = page
        .messages
        .iter()
        .map(|m| (m.seq, m.deleted, m.text.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (at[0], true, ""),
            (at[1], true, ""),
            (at[2], false, "three")
        ]
    );
    assert!(page.messages[1].attachment.is_none());
    assert_eq!(
        seqs(&*s2, "a", query(Some(at[2]), None, 1)).await,
        (vec![at[1]], true)
    );
    assert_eq!(s2.last_seq("a").await.expect("last_seq"), at[2]);
    // A repeat of the deleted message's client_msg_id answers the tombstone, stores nothing.
    let repeat = append_ok(&*s2, vec![msg("a", 1, "k1", "one")]).await;
    assert!(matches!(&repeat[0], Appended::Duplicate(m) if m.seq == at[0] && m.deleted));
    // A seq given up for good is not a message to delete.
    let reserved = s1.last_seq("a").await.expect("last_seq") + 1;
    let _ = s1.settle("a", reserved).await.expect("settle");
    assert_eq!(
        s1.delete_message("a", reserved).await.expect("delete"),
        None
    );
}

async fn mutes_are_per_room_replaced_and_end(b: Backend) {
    let (s1, s2) = (b.handle().await, b.handle().await);
    assert!(s1.mutes("a", T0).await.expect("mutes").is_empty());
    s1.set_mute("a", 7, T0 + 60_000).await.expect("mute");
    s1.set_mute("a", 8, T0 + 1_000).await.expect("mute");
    s1.set_mute("b", 7, T0 + 60_000).await.expect("mute");
    let mut now: Vec<(u64, i64)> = s2
        .mutes("a", T0)
        .await
        .expect("mutes")
        .iter()
        .map(|m| (m.user_id, m.until_ms))
        .collect();
    now.sort_unstable();
    assert_eq!(now, vec![(7, T0 + 60_000), (8, T0 + 1_000)]);
    // Ended mutes are not returned.
    let later = s2.mutes("a", T0 + 1_000).await.expect("mutes");
    assert_eq!(later.iter().map(|m| m.user_id).collect::<Vec<_>>(), vec![7]);
    // A new mute replaces the old one; a past time lifts it.
    s2.set_mute("a", 7, T0).await.expect("unmute");
    let after = s1.mutes("a", T0 + 1_000).await.expect("mutes");
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(s1.mutes("b", T0).await.expect("mutes").len(), 1);
    // Mutes are not messages.
    assert_no_messages(&s1, "a").await;
}

async fn read_positions_are_per_room_and_rise(b: Backend) {
    let (s1, s2) = (b.handle().await, b.handle().await);
    assert!(s1.read_positions("a").await.expect("read").is_empty());
    // More than one batch's worth (25 per BatchWriteItem on DynamoDB).
    let many: Vec<(u64, u64)> = (1..=60).map(|u| (u, u * 2)).collect();
    s1.put_read_positions("a", &many).await.expect("put");
    s1.put_read_positions("b", &[(1, 9)]).await.expect("put");
    s2.put_read_positions("a", &[(1, 50)]).await.expect("put");
    let mut got = s2.read_positions("a").await.expect("read");
    got.sort_unstable();
    let mut want = many.clone();
    want[0] = (1, 50);
    assert_eq!(got, want);
    assert_eq!(s1.read_positions("b").await.expect("read"), vec![(1, 9)]);
    // Positions are not messages.
    assert_no_messages(&s1, "a").await;
}

/// `room` holds no message: its counter is 0 and its history empty.
async fn assert_no_messages(store: &Arc<dyn Store>, room: &str) {
    assert_eq!(store.last_seq(room).await.expect("last_seq"), 0);
    let page = store
        .history(room, query(None, None, 10))
        .await
        .expect("history");
    assert!(page.messages.is_empty(), "{:?}", page.messages);
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::embedded().await).await
                }
            )*
        }
        mod dynamodb_on_moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::dynamodb().await).await
                }
            )*
        }
    };
}

contract!(
    user_ids_start_at_one_and_never_repeat,
    a_task_draws_its_guests_ids_a_block_at_a_time,
    seqs_start_at_one_and_increase_per_room_in_input_order,
    stored_messages_come_back_unchanged,
    a_repeat_returns_the_original_and_stores_nothing,
    a_repeat_inside_one_batch_is_a_duplicate_of_the_first,
    a_repeat_after_the_window_is_a_new_message,
    history_pages_are_exact,
    concurrent_appends_get_distinct_increasing_seqs,
    racing_repeats_store_one_copy,
    connections_are_recorded_touched_and_removed,
    check_and_flush_answer,
    a_deleted_message_becomes_a_tombstone_at_its_seq,
    mutes_are_per_room_replaced_and_end,
    read_positions_are_per_room_and_rise,
);
