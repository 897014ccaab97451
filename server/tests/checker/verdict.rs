//! The checks, per room, once the faults are over and every client has caught up:
//! - every acked message is in the history exactly once, at its acked seq;
//! - nothing appears in the history twice (acked or not);
//! - every client received every acked message above its join point exactly once, in seq
//!   order on each connection (live, in `joined`, or through its own REST catch-up).

use std::collections::{BTreeMap, HashMap};

use crate::client::Log;

#[derive(Debug, Default)]
pub struct Verdict {
    pub acked: usize,
    pub stored: usize,
    /// Acked messages missing from the history.
    pub lost: usize,
    /// Acked messages some client above their join point never received.
    pub undelivered: usize,
    /// Messages stored twice, or received twice by one client.
    pub duplicated: usize,
    pub out_of_order: usize,
    /// Acked with another seq than the history holds, or acked twice with different seqs.
    pub mismatched: usize,
    /// Up to a few examples of each failure, for the report.
    pub examples: Vec<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.lost + self.undelivered + self.duplicated + self.out_of_order + self.mismatched == 0
    }

    fn example(&mut self, what: String) {
        if self.examples.len() < 20 {
            self.examples.push(what);
        }
    }
}

/// `history` is each room's full history as (seq, client_msg_id), oldest first.
pub fn judge(logs: &[Log], history: &BTreeMap<String, Vec<(u64, String)>>) -> Verdict {
    let mut v = Verdict::default();
    // room -> client_msg_id -> acked seq
    let mut acked: BTreeMap<&str, HashMap<&str, u64>> = BTreeMap::new();
    for log in logs {
        let room = acked.entry(log.room.as_str()).or_default();
        for (id, &seq) in &log.acks {
            room.insert(id.as_str(), seq);
        }
        v.mismatched += log.ack_conflicts.len();
        for id in &log.ack_conflicts {
            v.example(format!("{id} acked with two seqs"));
        }
    }
    v.acked = acked.values().map(HashMap::len).sum();
    for (room, acks) in &acked {
        let stored = history.get(*room).map(Vec::as_slice).unwrap_or_default();
        v.stored += stored.len();
        let mut where_stored: HashMap<&str, Vec<u64>> = HashMap::new();
        for (seq, id) in stored {
            where_stored.entry(id.as_str()).or_default().push(*seq);
        }
        for (id, seqs) in &where_stored {
            if seqs.len() > 1 {
                v.duplicated += seqs.len() - 1;
                v.example(format!("{room}: {id} stored at seqs {seqs:?}"));
            }
        }
        for (id, seq) in acks {
            match where_stored.get(id).map(Vec::as_slice) {
                None => {
                    v.lost += 1;
                    v.example(format!(
                        "{room}: {id} acked at seq {seq} is not in the history"
                    ));
                }
                Some([s]) if s != seq => {
                    v.mismatched += 1;
                    v.example(format!("{room}: {id} acked at {seq}, stored at {s}"));
                }
                _ => {}
            }
        }
    }
    for (i, log) in logs.iter().enumerate() {
        v.duplicated += log.duplicates.len();
        for seq in &log.duplicates {
            v.example(format!(
                "client {i} in {}: seq {seq} received twice",
                log.room
            ));
        }
        v.out_of_order += log.out_of_order.len();
        for (prev, seq) in &log.out_of_order {
            v.example(format!(
                "client {i} in {}: seq {seq} after {prev}",
                log.room
            ));
        }
        let start = log.start.unwrap_or(u64::MAX);
        for (id, &seq) in acked.get(log.room.as_str()).into_iter().flatten() {
            if seq > start && log.received.get(&seq).map(String::as_str) != Some(*id) {
                v.undelivered += 1;
                v.example(format!(
                    "client {i} in {} (from seq {start}) never received {id} (seq {seq})",
                    log.room
                ));
            }
        }
    }
    v
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
        let v = judge(&logs, &history);
        assert_eq!(v.acked, 3);
        assert_eq!(v.duplicated, 1);
        assert_eq!(v.lost, 1);
        // c (seq 3) reached neither client.
        assert_eq!(v.undelivered, 2);
        assert!(!v.ok());

        let history: BTreeMap<String, Vec<(u64, String)>> =
            [("r".to_string(), vec![(1, "a".into()), (2, "b".into())])].into();
        let logs = vec![log("r", 0, &[(1, "a"), (2, "b")], &[("a", 1), ("b", 2)])];
        assert!(judge(&logs, &history).ok());
    }
}
