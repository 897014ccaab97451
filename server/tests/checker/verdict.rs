//! The checks, per room, once the faults are over and every client has caught up:
//! - every acked message is in the history exactly once, at its acked seq;
//! - nothing appears in the history twice (acked or not);
//! - every client received every acked message above its join point exactly once, in seq
//!   order on each connection (live, in `joined`, or through its own REST catch-up).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::client::Log;

/// The figures of one room (or of all rooms, summed).
#[derive(Debug, Default, Clone)]
pub struct Verdict {
    /// Distinct messages acked.
    pub acked: usize,
    /// Messages in the history.
    pub stored: usize,
    /// Deliveries owed (an acked message above a client's join point) that arrived.
    pub delivered: usize,
    /// Acked messages missing from the history.
    pub lost: usize,
    /// Deliveries owed that never arrived.
    pub undelivered: usize,
    /// Messages stored twice, or received twice by one client.
    pub duplicated: usize,
    pub out_of_order: usize,
    /// Acked with another seq than the history holds, acked twice with different seqs, or
    /// received with another message than the history holds at that seq.
    pub mismatched: usize,
    /// Up to a few examples of each failure, for the report.
    pub examples: Vec<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.lost + self.undelivered + self.duplicated + self.out_of_order + self.mismatched == 0
    }

    fn example(&mut self, what: String) {
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }

    fn add(&mut self, o: &Verdict) {
        self.acked += o.acked;
        self.stored += o.stored;
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.undelivered += o.undelivered;
        self.duplicated += o.duplicated;
        self.out_of_order += o.out_of_order;
        self.mismatched += o.mismatched;
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acked {}, stored {}, delivered {}, lost {}, undelivered {}, duplicated {}, out of order {}, mismatched {}",
            self.acked,
            self.stored,
            self.delivered,
            self.lost,
            self.undelivered,
            self.duplicated,
            self.out_of_order,
            self.mismatched
        )
    }
}

/// Per room, and summed.
#[derive(Debug, Default)]
pub struct Report {
    pub rooms: BTreeMap<String, Verdict>,
    pub total: Verdict,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.rooms.values().all(Verdict::ok)
    }
}

/// `history` is each room's full history as (seq, client_msg_id), oldest first. Every room
/// of `logs` and of `history` gets a verdict.
pub fn judge(logs: &[Log], history: &BTreeMap<String, Vec<(u64, String)>>) -> Report {
    let mut rooms: BTreeMap<String, Verdict> = history
        .keys()
        .map(|r| (r.clone(), Verdict::default()))
        .collect();
    // room -> client_msg_id -> acked seq
    let mut acked: BTreeMap<&str, HashMap<&str, u64>> = BTreeMap::new();
    for log in logs {
        let v = rooms.entry(log.room.clone()).or_default();
        let room = acked.entry(log.room.as_str()).or_default();
        for (id, &seq) in &log.acks {
            room.insert(id.as_str(), seq);
        }
        v.mismatched += log.ack_conflicts.len();
        for id in &log.ack_conflicts {
            v.example(format!("{id} acked with two seqs"));
        }
    }
    for (room, v) in rooms.iter_mut() {
        let acks = acked.get(room.as_str()).cloned().unwrap_or_default();
        v.acked = acks.len();
        let stored = history.get(room).map(Vec::as_slice).unwrap_or_default();
        v.stored = stored.len();
        let mut where_stored: HashMap<&str, Vec<u64>> = HashMap::new();
        for (seq, id) in stored {
            where_stored.entry(id.as_str()).or_default().push(*seq);
        }
        for (id, seqs) in &where_stored {
            if seqs.len() > 1 {
                v.duplicated += seqs.len() - 1;
                v.example(format!("{id} stored at seqs {seqs:?}"));
            }
        }
        for (id, seq) in &acks {
            match where_stored.get(id).map(Vec::as_slice) {
                None => {
                    v.lost += 1;
                    v.example(format!("{id} acked at seq {seq} is not in the history"));
                }
                Some([s]) if s != seq => {
                    v.mismatched += 1;
                    v.example(format!("{id} acked at {seq}, stored at {s}"));
                }
                _ => {}
            }
        }
    }
    let by_seq: BTreeMap<&str, HashMap<u64, &str>> = history
        .iter()
        .map(|(room, h)| {
            let seqs = h.iter().map(|(s, id)| (*s, id.as_str())).collect();
            (room.as_str(), seqs)
        })
        .collect();
    for (i, log) in logs.iter().enumerate() {
        let v = rooms
            .get_mut(&log.room)
            .expect("every client's room has a verdict");
        v.duplicated += log.duplicates.len();
        for seq in &log.duplicates {
            v.example(format!("client {i}: seq {seq} received twice"));
        }
        v.out_of_order += log.out_of_order.len();
        for (prev, seq) in &log.out_of_order {
            v.example(format!("client {i}: seq {seq} after {prev}"));
        }
        let stored = by_seq.get(log.room.as_str());
        for (seq, id) in &log.received {
            let there = stored.and_then(|h| h.get(seq)).copied();
            if there.is_some_and(|t| t != id) {
                v.mismatched += 1;
                v.example(format!(
                    "client {i}: seq {seq} received as {id}, stored as {}",
                    there.unwrap_or("")
                ));
            }
        }
        let start = log.start.unwrap_or(u64::MAX);
        for (id, &seq) in acked.get(log.room.as_str()).into_iter().flatten() {
            if seq <= start {
                continue;
            }
            if log.received.get(&seq).map(String::as_str) == Some(*id) {
                v.delivered += 1;
            } else {
                v.undelivered += 1;
                v.example(format!(
                    "client {i} (from seq {start}) never received {id} (seq {seq})"
                ));
            }
        }
    }
    let mut total = Verdict::default();
    for v in rooms.values() {
        total.add(v);
    }
    Report { rooms, total }
}

/// Every acked seq of `log`'s room above its join point that it has not received yet.
pub fn missing(log: &Log, acked: &HashMap<String, Vec<u64>>) -> usize {
    let start = log.start.unwrap_or(u64::MAX);
    acked
        .get(&log.room)
        .into_iter()
        .flatten()
        .filter(|&&s| s > start && !log.received.contains_key(&s))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(room: &str, start: u64, received: &[(u64, &str)], acks: &[(&str, u64)]) -> Log {
        Log {
            room: room.into(),
            start: Some(start),
            received: received.iter().map(|(s, i)| (*s, i.to_string())).collect(),
            acks: acks.iter().map(|(i, s)| (i.to_string(), *s)).collect(),
            ..Log::default()
        }
    }

    #[test]
    fn a_clean_run_passes_and_each_failure_is_counted() {
        let history: BTreeMap<String, Vec<(u64, String)>> = [(
            "r".to_string(),
            vec![(1, "a".into()), (2, "b".into()), (4, "b".into())],
        )]
        .into();
        // b is stored twice; c was acked but is not stored; d reached nobody.
        let logs = vec![
            log("r", 0, &[(1, "a"), (2, "b")], &[("a", 1), ("c", 3)]),
            log("r", 1, &[(2, "b")], &[("b", 2)]),
        ];
        let report = judge(&logs, &history);
        let v = &report.rooms["r"];
        assert_eq!(v.acked, 3);
        assert_eq!(v.duplicated, 1);
        assert_eq!(v.lost, 1);
        // c (seq 3) reached neither client; a and b reached the first, b the second.
        assert_eq!(v.undelivered, 2);
        assert_eq!(v.delivered, 3);
        assert!(!report.ok());
        assert_eq!(report.total.lost, 1);

        let history: BTreeMap<String, Vec<(u64, String)>> =
            [("r".to_string(), vec![(1, "a".into()), (2, "b".into())])].into();
        let logs = vec![log("r", 0, &[(1, "a"), (2, "b")], &[("a", 1), ("b", 2)])];
        assert!(judge(&logs, &history).ok());
        // A client that got another message at a seq than the history holds.
        let logs = vec![log("r", 0, &[(1, "a"), (2, "x")], &[("a", 1), ("b", 2)])];
        let report = judge(&logs, &history);
        assert_eq!(report.rooms["r"].mismatched, 1);
        assert!(!report.ok());
    }
}
