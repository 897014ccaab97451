//! Item encoding: how messages, idempotency records and keys look as DynamoDB items, and
//! how SDK errors and malformed items become [`StoreError`]s. Pure: no calls.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::protocol::{Attachment, ChatMessage, REACTION_EMOJI, Reaction, ReplyRef, User};
use crate::store::{IDEMPOTENCY_WINDOW_MS, NewMessage, StoreError};

/// One DynamoDB item.
pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn unavailable<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(format!("dynamodb {what}: {}", DisplayErrorContext(e)))
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        other => Err(StoreError::Corrupt(format!(
            "attribute {name} should be a string, found {other:?}"
        ))),
    }
}

pub(super) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} = {v:?} is out of range"))),
        other => Err(StoreError::Corrupt(format!(
            "attribute {name} should be a number, found {other:?}"
        ))),
    }
}

pub(super) fn idempotency_key(user_id: u64, room: &str, client_msg_id: &str) -> Item {
    HashMap::from([
        (
            "room".into(),
            s(idempotency_hash(user_id, room, client_msg_id)),
        ),
        ("seq".into(), n(0)),
    ])
}

/// The partition key of an idempotency record: per user, per room.
pub(super) fn idempotency_hash(user_id: u64, room: &str, client_msg_id: &str) -> String {
    format!(
        "idem#{user_id}#{}",
        crate::store::idempotency_scope(room, client_msg_id)
    )
}

pub(super) fn message_key(room: &str, seq: u64) -> Item {
    HashMap::from([("room".into(), s(room)), ("seq".into(), n(seq))])
}

pub(super) fn message_item(m: &ChatMessage) -> Item {
    let mut item = HashMap::from([
        ("room".into(), s(&m.room)),
        ("seq".into(), n(m.seq)),
        ("user_id".into(), n(m.user.id)),
        ("nickname".into(), s(&m.user.nickname)),
        ("avatar".into(), s(&m.user.avatar)),
        ("text".into(), s(&m.text)),
        ("ts".into(), n(m.ts)),
        ("client_msg_id".into(), s(&m.client_msg_id)),
    ]);
    if m.deleted {
        item.insert("deleted".into(), AttributeValue::Bool(true));
    }
    if m.moderator {
        item.insert("moderator".into(), AttributeValue::Bool(true));
    }
    if let Some(r) = &m.reply_to {
        // A map attribute, like `attachment`: only on replies.
        item.insert(
            "reply_to".into(),
            AttributeValue::M(HashMap::from([
                ("seq".into(), n(r.seq)),
                ("user_id".into(), n(r.user.id)),
                ("nickname".into(), s(&r.user.nickname)),
                ("avatar".into(), s(&r.user.avatar)),
                ("snippet".into(), s(&r.snippet)),
                ("deleted".into(), AttributeValue::Bool(r.deleted)),
            ])),
        );
    }
    if let Some(a) = &m.attachment {
        // A map attribute: no key or index changes, nothing for text-only messages.
        item.insert(
            "attachment".into(),
            AttributeValue::M(HashMap::from([
                ("url".into(), s(&a.url)),
                ("content_type".into(), s(&a.content_type)),
                ("width".into(), n(a.width)),
                ("height".into(), n(a.height)),
                ("bytes".into(), n(a.bytes)),
            ])),
        );
    }
    item
}

fn reply_from_item(item: &Item) -> Result<Option<Box<ReplyRef>>, StoreError> {
    match item.get("reply_to") {
        None => Ok(None),
        Some(AttributeValue::M(r)) => Ok(Some(Box::new(ReplyRef {
            seq: get_n(r, "seq")?,
            user: User {
                id: get_n(r, "user_id")?,
                nickname: get_s(r, "nickname")?.to_string(),
                avatar: get_s(r, "avatar")?.to_string(),
            },
            snippet: get_s(r, "snippet")?.to_string(),
            deleted: matches!(r.get("deleted"), Some(AttributeValue::Bool(true))),
        }))),
        Some(other) => Err(StoreError::Corrupt(format!(
            "attribute reply_to should be a map, found {other:?}"
        ))),
    }
}

fn attachment_from_item(item: &Item) -> Result<Option<Attachment>, StoreError> {
    match item.get("attachment") {
        None => Ok(None),
        Some(AttributeValue::M(a)) => Ok(Some(Attachment {
            url: get_s(a, "url")?.to_string(),
            content_type: get_s(a, "content_type")?.to_string(),
            width: get_n(a, "width")?,
            height: get_n(a, "height")?,
            bytes: get_n(a, "bytes")?,
        })),
        Some(other) => Err(StoreError::Corrupt(format!(
            "attribute attachment should be a map, found {other:?}"
        ))),
    }
}

/// The reactions a message's item holds: number set `rx{i}` lists who reacted with the i-th
/// emoji of [`REACTION_EMOJI`] (none on a deleted message).
pub(super) fn reactions_from_item(item: &Item) -> Result<Vec<Reaction>, StoreError> {
    if matches!(item.get("deleted"), Some(AttributeValue::Bool(true))) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (i, emoji) in REACTION_EMOJI.iter().enumerate() {
        match item.get(&format!("rx{i}")) {
            None => {}
            Some(AttributeValue::Ns(ids)) => {
                let mut users = ids
                    .iter()
                    .map(|id| {
                        id.parse::<u64>().map_err(|_| {
                            StoreError::Corrupt(format!("reaction user id {id:?} is out of range"))
                        })
                    })
                    .collect::<Result<Vec<u64>, _>>()?;
                users.sort_unstable();
                if !users.is_empty() {
                    out.push(Reaction {
                        emoji: (*emoji).to_string(),
                        users,
                    });
                }
            }
            Some(other) => {
                return Err(StoreError::Corrupt(format!(
                    "attribute rx{i} should be a number set, found {other:?}"
                )));
            }
        }
    }
    Ok(out)
}

/// A reserved seq given up for good: an item at the message's key that holds no message, so
/// the message's conditional write can never land after it.
pub(super) fn tombstone_item(room: &str, seq: u64) -> Item {
    let mut item = message_key(room, seq);
    item.insert("abandoned".into(), AttributeValue::Bool(true));
    item
}

pub(super) fn is_tombstone(item: &Item) -> bool {
    item.contains_key("abandoned")
}

pub(super) fn message_from_item(item: &Item) -> Result<ChatMessage, StoreError> {
    Ok(ChatMessage {
        room: get_s(item, "room")?.to_string(),
        seq: get_n(item, "seq")?,
        user: User {
            id: get_n(item, "user_id")?,
            nickname: get_s(item, "nickname")?.to_string(),
            avatar: get_s(item, "avatar")?.to_string(),
        },
        text: get_s(item, "text")?.to_string(),
        ts: get_n(item, "ts")?,
        client_msg_id: get_s(item, "client_msg_id")?.to_string(),
        attachment: attachment_from_item(item)?,
        deleted: matches!(item.get("deleted"), Some(AttributeValue::Bool(true))),
        reactions: reactions_from_item(item)?,
        reactions_version: match item.get("rxv") {
            Some(_) => get_n(item, "rxv")?,
            None => 0,
        },
        reply_to: reply_from_item(item)?,
        moderator: matches!(item.get("moderator"), Some(AttributeValue::Bool(true))),
    })
}

pub(super) fn idempotency_item(m: &ChatMessage) -> Item {
    let mut item = idempotency_key(m.user.id, &m.room, &m.client_msg_id);
    item.insert("orig_room".into(), s(&m.room));
    item.insert("orig_seq".into(), n(m.seq));
    item.insert("orig_ts".into(), n(m.ts));
    let expires_ms = m.ts.saturating_add(IDEMPOTENCY_WINDOW_MS);
    item.insert("expires_at".into(), n(expires_ms.div_euclid(1000) + 1));
    item
}

/// An idempotency key with the send time that decides whether an earlier record still counts.
#[derive(Debug, Clone)]
pub(super) struct KeyProbe {
    pub(super) user_id: u64,
    pub(super) room: String,
    pub(super) client_msg_id: String,
    pub(super) ts: i64,
}

impl KeyProbe {
    pub(super) fn of(m: &NewMessage) -> Self {
        Self {
            user_id: m.user.id,
            room: m.room.clone(),
            client_msg_id: m.client_msg_id.clone(),
            ts: m.ts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> ChatMessage {
        ChatMessage {
            room: "lobby".into(),
            seq: 42,
            user: User {
                id: 7,
                nickname: "otto".into(),
                avatar: "otter".into(),
            },
            text: "hi ✓".into(),
            ts: 1_763_800_000_123,
            client_msg_id: "c-1".into(),
            attachment: None,
            deleted: false,
            reactions: Vec::new(),
            reactions_version: 0,
            reply_to: None,
            moderator: false,
        }
    }

    #[test]
    fn message_items_round_trip() {
        let m = message();
        assert_eq!(message_from_item(&message_item(&m)).ok(), Some(m));
        let with_image = ChatMessage {
            text: String::new(),
            attachment: Some(Attachment {
                url: "https://cdn.example/uploads/a.png".into(),
                content_type: "image/png".into(),
                width: 640,
                height: 360,
                bytes: 12_345,
            }),
            ..message()
        };
        assert_eq!(
            message_from_item(&message_item(&with_image)).ok(),
            Some(with_image)
        );
        let reply = ChatMessage {
            reply_to: Some(Box::new(ReplyRef::of(&message()))),
            ..message()
        };
        assert_eq!(message_from_item(&message_item(&reply)).ok(), Some(reply));
        let badged = ChatMessage {
            moderator: true,
            ..message()
        };
        assert_eq!(message_from_item(&message_item(&badged)).ok(), Some(badged));
    }

    #[test]
    fn idempotency_record_points_at_the_message_and_expires_after_the_window() {
        let m = message();
        let item = idempotency_item(&m);
        assert_eq!(get_s(&item, "room").ok(), Some("idem#7#lobby#c-1"));
        assert_eq!(get_n::<u64>(&item, "seq").ok(), Some(0));
        assert_eq!(get_s(&item, "orig_room").ok(), Some("lobby"));
        assert_eq!(get_n::<u64>(&item, "orig_seq").ok(), Some(42));
        assert!(
            !item.contains_key("user_id"),
            "must stay out of the by-user index"
        );
        let expires: i64 = get_n(&item, "expires_at").unwrap_or_default();
        assert!(expires * 1000 >= m.ts + IDEMPOTENCY_WINDOW_MS);
        assert!(expires * 1000 < m.ts + IDEMPOTENCY_WINDOW_MS + 2000);
    }

    #[test]
    fn corrupt_items_name_the_attribute() {
        let mut item = message_item(&message());
        item.insert("seq".into(), s("x"));
        let e = message_from_item(&item)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("seq"), "{e}");
    }
}
