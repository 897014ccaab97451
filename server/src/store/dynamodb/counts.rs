//! Request counting: one counter per DynamoDB API call the store makes, so tests and the
//! bench can measure the write requests each message costs.

use std::sync::atomic::{AtomicU64, Ordering};

/// The DynamoDB API calls the store makes; each has a request counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    GetItem,
    BatchGetItem,
    Query,
    UpdateItem,
    PutItem,
    DeleteItem,
    TransactWriteItems,
    BatchWriteItem,
}

impl Op {
    pub const ALL: [Op; 8] = [
        Op::GetItem,
        Op::BatchGetItem,
        Op::Query,
        Op::UpdateItem,
        Op::PutItem,
        Op::DeleteItem,
        Op::TransactWriteItems,
        Op::BatchWriteItem,
    ];

    /// The API operation's name.
    pub fn name(self) -> &'static str {
        match self {
            Op::GetItem => "GetItem",
            Op::BatchGetItem => "BatchGetItem",
            Op::Query => "Query",
            Op::UpdateItem => "UpdateItem",
            Op::PutItem => "PutItem",
            Op::DeleteItem => "DeleteItem",
            Op::TransactWriteItems => "TransactWriteItems",
            Op::BatchWriteItem => "BatchWriteItem",
        }
    }

    /// Whether the call writes (what the cost target "write requests per message" counts).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Op::UpdateItem
                | Op::PutItem
                | Op::DeleteItem
                | Op::TransactWriteItems
                | Op::BatchWriteItem
        )
    }
}

/// A snapshot of the requests a store has sent, per operation (one per call the store makes;
/// the SDK's own retries of a failed attempt are not counted again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts(pub [u64; Op::ALL.len()]);

impl RequestCounts {
    pub fn get(&self, op: Op) -> u64 {
        self.0[op as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    pub fn writes(&self) -> u64 {
        Op::ALL
            .iter()
            .filter(|op| op.is_write())
            .map(|&op| self.get(op))
            .sum()
    }

    /// The requests made between `earlier` and this snapshot.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        let mut out = self.clone();
        for (now, before) in out.0.iter_mut().zip(earlier.0.iter()) {
            *now = now.saturating_sub(*before);
        }
        out
    }
}

impl std::fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = Op::ALL
            .iter()
            .filter(|&&op| self.get(op) > 0)
            .map(|&op| format!("{}={}", op.name(), self.get(op)))
            .collect();
        write!(f, "{}", parts.join(" "))
    }
}

/// The live counters a store increments.
#[derive(Default)]
pub(super) struct Counters([AtomicU64; Op::ALL.len()]);

impl Counters {
    pub(super) fn count(&self, op: Op) {
        self.0[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> RequestCounts {
        RequestCounts(std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_counts_separate_writes() {
        let c = Counters::default();
        c.count(Op::UpdateItem);
        c.count(Op::TransactWriteItems);
        c.count(Op::BatchGetItem);
        let snap = c.snapshot();
        assert_eq!((snap.total(), snap.writes()), (3, 2));
        assert_eq!(snap.since(&snap).total(), 0);
        assert_eq!(
            snap.to_string(),
            "BatchGetItem=1 UpdateItem=1 TransactWriteItems=1"
        );
    }
}
