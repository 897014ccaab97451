//! The embedded store's two threads and what they pass: the apply thread runs each batch
//! (merged with any queued behind it) as one redb transaction without fsync and hands its
//! log record on; the log thread appends the records that queued meanwhile, `fdatasync`s
//! once and only then answers those batches, in order. [`Progress`] tells readers how far
//! the log has come.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use super::tables::append_batch;
use super::wal::{Log, Record};
use super::{CHECKPOINT_BYTES, CHECKPOINT_EVERY, Inner, MAX_APPLY, READ_WAIT, err};
use crate::store::{Appended, NewMessage, StoreError};

pub(super) type Results = Vec<Result<Appended, StoreError>>;

/// One `append`: its messages and where its answer goes.
pub(super) struct Request {
    pub(super) batch: Vec<NewMessage>,
    pub(super) reply: oneshot::Sender<Results>,
}

/// From the apply thread to the log thread, in apply order.
pub(super) enum ToLog {
    /// Batch `no` is applied (not durably): write `record` (empty: nothing stored), sync,
    /// then send the answers.
    Batch {
        no: u64,
        record: Vec<u8>,
        answers: Vec<(oneshot::Sender<Results>, Results)>,
    },
    /// redb holds every batch up to `no` durably: answer what waits, empty the log.
    Checkpoint { no: u64 },
}

/// How far the log has come; readers wait on it.
pub(super) struct Progress {
    /// The last batch readers may see: set before its transaction commits.
    pub(super) visible: AtomicU64,
    pub(super) durable: Mutex<Durable>,
    pub(super) changed: Condvar,
}

pub(super) struct Durable {
    /// Every batch up to this one is durable.
    pub(super) through: u64,
    /// The log could not be written: nothing more is acked.
    pub(super) failed: Option<String>,
}

impl Progress {
    pub(super) fn advance(&self, no: u64) {
        let mut d = self.durable.lock();
        d.through = d.through.max(no);
        self.changed.notify_all();
    }

    pub(super) fn fail(&self, why: String) {
        let mut d = self.durable.lock();
        d.failed.get_or_insert(why);
        self.changed.notify_all();
    }

    pub(super) fn failed(&self) -> Option<String> {
        self.durable.lock().failed.clone()
    }

    /// Waits until every batch a snapshot begun before this call may hold is durable.
    pub(super) fn wait_readable(&self) -> Result<(), StoreError> {
        let want = self.visible.load(Ordering::SeqCst);
        let deadline = Instant::now() + READ_WAIT;
        let mut d = self.durable.lock();
        while d.through < want {
            if let Some(why) = &d.failed {
                return Err(err(why));
            }
            if self.changed.wait_until(&mut d, deadline).timed_out() {
                return Err(err("the message log did not catch up in time"));
            }
        }
        Ok(())
    }
}

/// Applies queued batches, one redb transaction (without fsync) per turn, and checkpoints.
pub(super) fn apply_loop(inner: Arc<Inner>, requests: std_mpsc::Receiver<Request>, log: Log) {
    let (to_log, logged) = std_mpsc::channel();
    let writer = {
        let inner = Arc::clone(&inner);
        std::thread::Builder::new()
            .name("store-log".into())
            .spawn(move || log_loop(&inner, logged, log))
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            // Dropping the requests answers each with "shutting down".
            tracing::error!(error = %e, "Starting the store's log thread failed");
            return;
        }
    };
    let mut no = 0u64;
    let mut since_checkpoint = 0usize;
    let mut last_checkpoint = Instant::now();
    while let Ok(first) = requests.recv() {
        let mut turn = vec![first];
        let mut n = turn[0].batch.len();
        while n < MAX_APPLY {
            let Ok(more) = requests.try_recv() else { break };
            n += more.batch.len();
            turn.push(more);
        }
        no += 1;
        let sizes: Vec<usize> = turn.iter().map(|r| r.batch.len()).collect();
        let mut replies = Vec::with_capacity(turn.len());
        let mut batch = Vec::with_capacity(n);
        for r in turn {
            replies.push(r.reply);
            batch.extend(r.batch);
        }
        let (record, results) = match inner.progress.failed() {
            Some(why) => (Vec::new(), failed_all(n, &err(why))),
            None => {
                inner.progress.visible.store(no, Ordering::SeqCst);
                let mut record = Record::new();
                match append_batch(&inner.db, batch, &mut record) {
                    Ok(done) if record.is_empty() => {
                        (Vec::new(), done.into_iter().map(Ok).collect())
                    }
                    Ok(done) => (record.finish(), done.into_iter().map(Ok).collect()),
                    Err(e) => (Vec::new(), failed_all(n, &e)),
                }
            }
        };
        since_checkpoint += record.len();
        let mut results = results.into_iter();
        let answers = replies
            .into_iter()
            .zip(sizes)
            .map(|(reply, size)| (reply, results.by_ref().take(size).collect()))
            .collect();
        if to_log
            .send(ToLog::Batch {
                no,
                record,
                answers,
            })
            .is_err()
        {
            break;
        }
        if since_checkpoint > 0
            && (since_checkpoint >= CHECKPOINT_BYTES
                || last_checkpoint.elapsed() >= CHECKPOINT_EVERY)
            && inner.progress.failed().is_none()
        {
            last_checkpoint = Instant::now();
            // A durable commit makes every earlier non-durable one durable too.
            let durable = inner
                .db
                .begin_write()
                .map_err(err)
                .and_then(|t| t.commit().map_err(err));
            match durable {
                Ok(()) => {
                    since_checkpoint = 0;
                    if to_log.send(ToLog::Checkpoint { no }).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Store checkpoint failed; the log keeps the messages")
                }
            }
        }
    }
    drop(to_log);
    let _ = writer.join();
}

pub(super) fn failed_all(n: usize, e: &StoreError) -> Results {
    (0..n).map(|_| Err(e.clone())).collect()
}

/// Writes and syncs what the apply thread sends, then answers; merges what queued meanwhile
/// into one write and one `fdatasync`.
pub(super) fn log_loop(inner: &Inner, logged: std_mpsc::Receiver<ToLog>, mut log: Log) {
    while let Ok(first) = logged.recv() {
        let mut turn = vec![first];
        turn.extend(logged.try_iter());
        let mut bytes = Vec::new();
        let mut waiting = Vec::new();
        let mut through = 0;
        for item in turn {
            match item {
                ToLog::Batch {
                    no,
                    record,
                    answers,
                } => {
                    bytes.extend_from_slice(&record);
                    waiting.extend(answers);
                    through = no;
                }
                ToLog::Checkpoint { no } => {
                    // Durable in redb: what waits needs no log write, nor the log what it holds.
                    bytes.clear();
                    inner.progress.advance(no);
                    answer(&mut waiting);
                    if let Err(e) = log.clear() {
                        tracing::warn!(error = %e, path = %log.path().display(), "Emptying the write-ahead log failed; its records replay harmlessly");
                    }
                }
            }
        }
        if let Some(why) = inner.progress.failed() {
            fail(&mut waiting, &err(why));
        } else if !bytes.is_empty()
            && let Err(e) = log.append(&bytes)
        {
            let why = format!("writing {}: {e}", log.path().display());
            tracing::error!(error = %why, "The write-ahead log failed; no more sends are acked");
            inner.progress.fail(why.clone());
            fail(&mut waiting, &err(why));
        }
        inner.progress.advance(through);
        answer(&mut waiting);
    }
}

pub(super) fn answer(waiting: &mut Vec<(oneshot::Sender<Results>, Results)>) {
    for (reply, results) in waiting.drain(..) {
        let _ = reply.send(results);
    }
}

pub(super) fn fail(waiting: &mut [(oneshot::Sender<Results>, Results)], e: &StoreError) {
    for (_, results) in waiting.iter_mut() {
        let n = results.len();
        *results = failed_all(n, e);
    }
}
