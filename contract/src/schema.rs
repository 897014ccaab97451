//! The DynamoDB tables as data: `chat-server create-tables` creates exactly these, prints
//! them with `--print-schema`, and the Terraform tests compare `terraform/` against them.

use serde::Serialize;

/// Suffix of the messages table: partition `room`, sort `seq`.
pub const MESSAGES: &str = "messages";
/// Suffix of the live-connections table: partition `conn_id`.
pub const CONNECTIONS: &str = "connections";
/// Suffix of the counters table: partition `name` (`users`, `room#{room}`).
pub const USER_COUNTER: &str = "user-counter";

/// A key attribute: name and DynamoDB scalar type (`S`, `N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyAttr {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A global secondary index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    pub name: &'static str,
    pub hash_key: KeyAttr,
    pub range_key: Option<KeyAttr>,
    /// `ALL` or `KEYS_ONLY`.
    pub projection: &'static str,
}

/// One table, on-demand billing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Full name, prefix included.
    pub name: String,
    pub hash_key: KeyAttr,
    pub range_key: Option<KeyAttr>,
    pub global_secondary_indexes: Vec<Index>,
    /// Attribute holding an epoch-seconds expiry, when TTL is on.
    pub ttl_attribute: Option<&'static str>,
    pub point_in_time_recovery: bool,
    pub billing_mode: &'static str,
}

const fn key(name: &'static str, kind: &'static str) -> KeyAttr {
    KeyAttr { name, kind }
}

/// The three tables for a prefix.
pub fn tables(prefix: &str) -> Vec<Table> {
    vec![
        Table {
            name: format!("{prefix}{MESSAGES}"),
            hash_key: key("room", "S"),
            range_key: Some(key("seq", "N")),
            // Moderation: a user's messages by time.
            global_secondary_indexes: vec![Index {
                name: "by-user",
                hash_key: key("user_id", "N"),
                range_key: Some(key("ts", "N")),
                projection: "ALL",
            }],
            // Only idempotency items carry it; messages themselves never expire.
            ttl_attribute: Some("expires_at"),
            point_in_time_recovery: true,
            billing_mode: "PAY_PER_REQUEST",
        },
        Table {
            name: format!("{prefix}{CONNECTIONS}"),
            hash_key: key("conn_id", "S"),
            range_key: None,
            // Operators count live connections per colour with a Query, never a Scan.
            global_secondary_indexes: vec![Index {
                name: "by-color",
                hash_key: key("color", "S"),
                range_key: Some(key("conn_id", "S")),
                projection: "KEYS_ONLY",
            }],
            ttl_attribute: Some("expires_at"),
            point_in_time_recovery: false,
            billing_mode: "PAY_PER_REQUEST",
        },
        Table {
            name: format!("{prefix}{USER_COUNTER}"),
            hash_key: key("name", "S"),
            range_key: None,
            global_secondary_indexes: vec![],
            ttl_attribute: None,
            // Room seqs must never go back, even after a restore.
            point_in_time_recovery: true,
            billing_mode: "PAY_PER_REQUEST",
        },
    ]
}
