//! What reactions cost on DynamoDB (moto), measured: 1,000 members each reacting to one
//! message take exactly one `UpdateItem` each and no read; the 1,001st on a full emoji is
//! refused (`Full`) with one more `GetItem`; a deleted or missing message is `Missing`; what
//! history reads back is every reaction.

mod moto;

use chat_server::protocol::{MAX_REACTORS_PER_EMOJI, User};
use chat_server::store::dynamodb::{self, DynamoStore, Op};
use chat_server::store::reactions::{Reacted, ReactionChange};
use chat_server::store::{HistoryQuery, NewMessage, Store};
use moto::Moto;

const PREFIX: &str = "cost-";

fn change(user_id: u64, emoji: usize, on: bool) -> ReactionChange {
    ReactionChange { user_id, emoji, on }
}

#[tokio::test]
async fn a_reaction_is_one_update_and_the_limit_holds() {
    let moto = Moto::start().await;
    let client = moto.client().await;
    dynamodb::create_tables(&client, PREFIX)
        .await
        .expect("create_tables");
    let store = DynamoStore::new(client, PREFIX);
    let sent = store
        .append(vec![NewMessage {
            room: "hall".into(),
            user: User {
                id: 1,
                nickname: "Al".into(),
                avatar: "fox".into(),
            },
            client_msg_id: "c1".into(),
            text: "hello".into(),
            ts: 1,
            attachment: None,
            reply_to: None,
            moderator: false,
        }])
        .await;
    let seq = sent[0].as_ref().expect("stored").message().seq;

    let members = MAX_REACTORS_PER_EMOJI as u64;
    let before = store.request_counts();
    for user in 1..=members {
        let reacted = store.react("hall", seq, change(user, 0, true)).await;
        assert!(matches!(reacted, Ok(Reacted::Changed(_))), "{reacted:?}");
    }
    let used = store.request_counts().since(&before);
    println!(
        "{members} reactions: {} requests, {} UpdateItem",
        used.total(),
        used.get(Op::UpdateItem)
    );
    assert_eq!(used.get(Op::UpdateItem), members);
    assert_eq!(used.total(), members, "no read per reaction");

    let before = store.request_counts();
    let full = store.react("hall", seq, change(members + 1, 0, true)).await;
    assert!(matches!(full, Ok(Reacted::Full)), "{full:?}");
    assert_eq!(store.request_counts().since(&before).total(), 2);
    let again = store.react("hall", seq, change(7, 0, true)).await;
    assert!(
        matches!(again, Ok(Reacted::Changed(_))),
        "a repeat is no new entry: {again:?}"
    );
    let missing = store.react("hall", seq + 5, change(7, 1, true)).await;
    assert!(matches!(missing, Ok(Reacted::Missing)), "{missing:?}");

    let Ok(Reacted::Changed(state)) = store.react("hall", seq, change(3, 0, false)).await else {
        panic!("taking one back")
    };
    assert_eq!(state.reactions[0].users.len(), MAX_REACTORS_PER_EMOJI - 1);
    let page = store
        .history(
            "hall",
            HistoryQuery {
                before: None,
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("history");
    let m = &page.messages[0];
    assert_eq!(m.reactions, state.reactions);
    assert_eq!(m.reactions_version, state.version);

    store.delete_message("hall", seq).await.expect("delete");
    let gone = store.react("hall", seq, change(9, 2, true)).await;
    assert!(matches!(gone, Ok(Reacted::Missing)), "{gone:?}");
}
