//! The rollout's shared state: three items in the connections table (`{prefix}connections`)
//! beside the connection records, keyed by `conn_id`:
//!
//! - [`FLEET_KEY`]: one [`Beat`] per task under `tasks.{task_id}`, refreshed by every task
//!   about once a second; a beat older than [`FRESH_MS`] is a dead task's.
//! - [`CONTROL_KEY`]: the [`Control`] opsctl last put in place (weights, whether tasks shed
//!   connections toward them, over which window); tasks poll it.
//! - [`LEASE_KEY`]: the [`Lease`]: who may change the weights now, taken with a conditional
//!   write so two operators cannot interleave.
//!
//! None of them has a top-level `color`, so none appears in the `by-color` index that counts
//! connection records. Each item is encoded and decoded here only.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

/// The connections table's partition key, which names the items.
pub const KEY: &str = "conn_id";
/// Key of the item every task heartbeats into.
pub const FLEET_KEY: &str = "fleet";
/// The fleet item's map of task id -> [`Beat`].
pub const FLEET_TASKS: &str = "tasks";
/// Key of the record opsctl writes and tasks watch.
pub const CONTROL_KEY: &str = "opsctl#control";
/// Key of opsctl's lease.
pub const LEASE_KEY: &str = "opsctl#lease";
/// A heartbeat older than this (ms) belongs to a dead task: opsctl counts only younger ones.
pub const FRESH_MS: i64 = 10_000;

/// An item as the SDK reads and writes it.
pub type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key)?.as_n().ok()?.parse().ok()
}

fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)?.as_s().ok().map(String::as_str)
}

fn get_bool(item: &Item, key: &str) -> Option<bool> {
    item.get(key)?.as_bool().ok().copied()
}

/// The key of one of the items.
pub fn key(name: &str) -> (String, AttributeValue) {
    (KEY.to_string(), s(name))
}

/// One task's entry in the fleet item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Beat {
    /// `blue` or `green` (`local` for a task outside a rollout).
    pub color: String,
    /// Its live connections.
    pub conns: u64,
    /// Its `/readyz` checks (store, fanout) pass and it is not draining.
    pub ready: bool,
    /// When it was taken (ms since the epoch).
    pub at_ms: i64,
    /// When the task's latest shed window ends or ended (0: it never shed).
    pub shed_until_ms: i64,
    /// The fleet's live connections that shed was decided from (0: it never shed).
    pub shed_from: u64,
}

impl Beat {
    /// The entry as stored under `tasks.{task_id}`.
    pub fn to_value(&self) -> AttributeValue {
        let count = |v: u64| n(i64::try_from(v).unwrap_or(i64::MAX));
        AttributeValue::M(HashMap::from([
            ("color".to_string(), s(&self.color)),
            ("conns".to_string(), count(self.conns)),
            ("ready".to_string(), AttributeValue::Bool(self.ready)),
            ("at_ms".to_string(), n(self.at_ms)),
            ("shed_until_ms".to_string(), n(self.shed_until_ms)),
            ("shed_from".to_string(), count(self.shed_from)),
        ]))
    }

    /// An entry as stored; `None` when it lacks a colour, a count or a time.
    pub fn from_value(value: &AttributeValue) -> Option<Self> {
        let m = value.as_m().ok()?;
        let count = |k: &str| get_n(m, k).and_then(|v| u64::try_from(v).ok());
        Some(Beat {
            color: get_s(m, "color")?.to_string(),
            conns: count("conns")?,
            ready: get_bool(m, "ready") == Some(true),
            at_ms: get_n(m, "at_ms")?,
            shed_until_ms: get_n(m, "shed_until_ms").unwrap_or(0),
            shed_from: count("shed_from").unwrap_or(0),
        })
    }
}

/// The fleet item holding `beats` (task id -> beat), as written when it is first created.
pub fn fleet_item(beats: &[(&str, &Beat)]) -> Item {
    let tasks = beats
        .iter()
        .map(|(task, beat)| (task.to_string(), beat.to_value()))
        .collect();
    Item::from([
        key(FLEET_KEY),
        (FLEET_TASKS.to_string(), AttributeValue::M(tasks)),
    ])
}

/// Every readable beat of a fleet item, by task id, sorted by task id.
pub fn beats(item: &Item) -> Vec<(String, Beat)> {
    let mut out: Vec<(String, Beat)> = item
        .get(FLEET_TASKS)
        .and_then(|t| t.as_m().ok())
        .into_iter()
        .flatten()
        .filter_map(|(task, v)| Some((task.clone(), Beat::from_value(v)?)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// What opsctl asks the tasks: the weights in force and whether to shed toward them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Control {
    pub blue: u8,
    pub green: u8,
    pub rebalance: bool,
    /// The window each shed is spread over.
    pub window_ms: i64,
}

impl Control {
    /// The weight of `color` (`None` for a colour outside a rollout).
    pub fn weight(&self, color: &str) -> Option<u8> {
        match color {
            "blue" => Some(self.blue),
            "green" => Some(self.green),
            _ => None,
        }
    }

    /// The window each shed is spread over.
    pub fn window(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.window_ms).unwrap_or(0))
    }

    /// The control item, written `by` whom at `now_ms`.
    pub fn to_item(&self, by: &str, now_ms: i64) -> Item {
        Item::from([
            key(CONTROL_KEY),
            ("blue".to_string(), n(i64::from(self.blue))),
            ("green".to_string(), n(i64::from(self.green))),
            (
                "rebalance".to_string(),
                AttributeValue::Bool(self.rebalance),
            ),
            ("window_ms".to_string(), n(self.window_ms)),
            ("updated_ms".to_string(), n(now_ms)),
            ("by".to_string(), s(by)),
        ])
    }

    /// The control item as stored; `None` when a field is missing or out of range.
    pub fn from_item(item: &Item) -> Option<Self> {
        Some(Control {
            blue: u8::try_from(get_n(item, "blue")?).ok()?,
            green: u8::try_from(get_n(item, "green")?).ok()?,
            rebalance: get_bool(item, "rebalance")?,
            window_ms: get_n(item, "window_ms")?,
        })
    }
}

/// Who holds opsctl's lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub owner: String,
    pub until_ms: i64,
}

impl Lease {
    /// The attribute names the lease's conditional writes use.
    pub const OWNER: &str = "owner";
    pub const UNTIL: &str = "until_ms";
    /// TTL attribute (epoch seconds): cleans up a lease nobody released.
    pub const EXPIRES: &str = "expires_at";

    /// When a lease held until `until_ms` is cleaned up by the table's TTL (epoch seconds).
    pub fn expires_at(until_ms: i64) -> i64 {
        until_ms / 1000 + 3600
    }

    /// The lease item.
    pub fn to_item(&self) -> Item {
        Item::from([
            key(LEASE_KEY),
            (Self::OWNER.to_string(), s(&self.owner)),
            (Self::UNTIL.to_string(), n(self.until_ms)),
            (
                Self::EXPIRES.to_string(),
                n(Self::expires_at(self.until_ms)),
            ),
        ])
    }

    /// The lease item as stored.
    pub fn from_item(item: &Item) -> Option<Self> {
        Some(Lease {
            owner: get_s(item, Self::OWNER)?.to_string(),
            until_ms: get_n(item, Self::UNTIL)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_reads_back_what_was_written() {
        let beat = Beat {
            color: "green".into(),
            conns: 12,
            ready: true,
            at_ms: 1_000,
            shed_until_ms: 900,
            shed_from: 40,
        };
        let item = fleet_item(&[("t2", &beat), ("t1", &beat)]);
        assert_eq!(
            beats(&item),
            vec![("t1".to_string(), beat.clone()), ("t2".to_string(), beat)]
        );

        let control = Control {
            blue: 30,
            green: 70,
            rebalance: true,
            window_ms: 5_000,
        };
        let item = control.to_item("opsctl", 7);
        assert_eq!(item.get(KEY), Some(&s(CONTROL_KEY)));
        assert_eq!(Control::from_item(&item), Some(control));
        assert_eq!(control.window(), Duration::from_secs(5));
        assert_eq!(control.weight("green"), Some(70));
        assert_eq!(control.weight("local"), None);

        let lease = Lease {
            owner: "me".into(),
            until_ms: 10_000,
        };
        assert_eq!(Lease::from_item(&lease.to_item()), Some(lease));
    }

    #[test]
    fn a_beat_without_its_count_or_time_is_unreadable_and_a_control_out_of_range_too() {
        let mut m = HashMap::from([("color".to_string(), s("blue"))]);
        assert_eq!(Beat::from_value(&AttributeValue::M(m.clone())), None);
        m.insert("conns".into(), n(3));
        m.insert("at_ms".into(), n(5));
        let beat = Beat::from_value(&AttributeValue::M(m)).expect("readable");
        assert_eq!((beat.conns, beat.ready, beat.shed_from), (3, false, 0));

        let mut item = Control {
            blue: 1,
            green: 2,
            rebalance: false,
            window_ms: 0,
        }
        .to_item("x", 0);
        item.insert("blue".into(), n(300));
        assert_eq!(Control::from_item(&item), None);
    }
}
