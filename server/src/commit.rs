//! Group commit: sends from every connection queue here, and each store round trip makes
//! everything that queued meanwhile durable at once (one log write and fsync on the embedded
//! store, or one counter increment and batch write per room on DynamoDB). Then each sender gets
//! its ack and the room its message, in seq order.
//!
//! Pipelined: one task forms batches and starts them ([`Store::start_append`] fixes their
//! order), up to [`Store::pipeline`] at once; another answers them strictly in that order.
//! So the next batch forms and is applied while the one before it is still being made durable.
//! The answering task acks each sender and hands each stored message to the hub over the
//! channel the hub reads ([`Committed`]); it never calls into the hub.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::{Instrument, Span};

use crate::background::Background;
use crate::conn::Conn;
use crate::metrics::Metrics;
use crate::protocol::{ChatMessage, ErrorCode, ServerFrame};
use crate::store::{Appended, NewMessage, Store, StoreError};

/// What the commit loop hands the hub, in commit order.
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every item is a message: boxing it would allocate once per send"
)]
pub enum Committed {
    /// A message made durable (or found durable on a retry: its first attempt may have
    /// landed unseen, so it is delivered too; every hub drops a seq it already delivered),
    /// with its send's trace span.
    Message(ChatMessage, Span),
    /// Answered by the hub once it has taken every message handed over before it.
    Barrier(oneshot::Sender<()>),
}

/// Stored messages handed over at once before the answering task waits for the hub.
pub const HANDOFF: usize = 4096;

/// Most sends in one store call.
const MAX_BATCH: usize = 512;
/// Sends waiting for a store call, across all connections, before new ones are refused.
const QUEUE: usize = 16_384;

/// The commit queue is full: the send was not queued.
#[derive(Debug)]
pub struct QueueFull {
    pub client_msg_id: String,
}

enum Job {
    /// A send and its trace span (disabled, and free, unless traces are exported).
    Send(Arc<Conn>, NewMessage, Span),
    /// Answered once every send queued before it is answered.
    Barrier(oneshot::Sender<()>),
}

/// Handle to the commit loop.
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the loop under `background`; stored messages go to `out` (the hub's channel).
    /// It ends when this handle is dropped or at the shutdown.
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        out: mpsc::Sender<Committed>,
        background: &Background,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let depth = store.pipeline().max(1);
        let (started, in_flight) = mpsc::channel(depth);
        let permits = Arc::new(Semaphore::new(depth));
        background.spawn(form(store, Arc::clone(&metrics), rx, started, permits));
        background.spawn(answer(metrics, out, in_flight));
        Self { tx }
    }

    /// Queues a send; gives its `client_msg_id` back when the store is too far behind
    /// ([`QUEUE`] sends waiting). Each send is traced as its own root span, linked to the
    /// current span (the connection's).
    pub fn submit(&self, conn: Arc<Conn>, message: NewMessage) -> Result<(), QueueFull> {
        let span = tracing::info_span!(target: crate::telemetry::TARGET, parent: None, "chat.send");
        if !span.is_disabled() {
            span.follows_from(Span::current());
        }
        self.tx
            .try_send(Job::Send(conn, message, span))
            .map_err(|e| match e.into_inner() {
                Job::Send(_, message, _) => QueueFull {
                    client_msg_id: message.client_msg_id,
                },
                Job::Barrier(_) => QueueFull {
                    client_msg_id: String::new(),
                },
            })
    }

    /// Waits until every send queued so far is answered and its message taken by the hub.
    pub async fn finish(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Barrier(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// A batch the store is working on, with who waits for it.
struct InFlight {
    /// None: only barriers.
    results: Option<BoxFuture<'static, Vec<Result<Appended, StoreError>>>>,
    started: Instant,
    senders: Vec<Arc<Conn>>,
    ids: Vec<String>,
    spans: Vec<Span>,
    barriers: Vec<oneshot::Sender<()>>,
    /// Frees a pipeline slot once the store has answered.
    slot: OwnedSemaphorePermit,
}

/// Forms batches from the queue and starts them, while a pipeline slot is free.
async fn form(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Job>,
    started: mpsc::Sender<InFlight>,
    slots: Arc<Semaphore>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        // Wait for a slot first: what queues meanwhile joins this batch.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        if rx.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        let mut senders = Vec::with_capacity(jobs.len());
        let mut batch = Vec::with_capacity(jobs.len());
        let mut spans = Vec::with_capacity(jobs.len());
        let mut barriers = Vec::new();
        for job in jobs.drain(..) {
            match job {
                Job::Send(conn, message, span) => {
                    senders.push(conn);
                    batch.push(message);
                    spans.push(span);
                }
                Job::Barrier(done) => barriers.push(done),
            }
        }
        let ids: Vec<String> = batch.iter().map(|m| m.client_msg_id.clone()).collect();
        let results = (!batch.is_empty()).then(|| {
            metrics.store_batch_size.observe(batch.len() as f64);
            let span = store_span(&spans);
            let work = Arc::clone(&store).start_append(batch);
            Box::pin(work.instrument(span)) as BoxFuture<'static, _>
        });
        let flight = InFlight {
            results,
            started: Instant::now(),
            senders,
            ids,
            spans,
            barriers,
            slot,
        };
        if started.send(flight).await.is_err() {
            return;
        }
    }
}

/// Answers started batches in the order they were started: acks, then the stored messages
/// and the barriers to the hub.
async fn answer(
    metrics: Arc<Metrics>,
    out: mpsc::Sender<Committed>,
    mut in_flight: mpsc::Receiver<InFlight>,
) {
    while let Some(flight) = in_flight.recv().await {
        let InFlight {
            results,
            started,
            senders,
            ids,
            spans,
            barriers,
            slot,
        } = flight;
        if let Some(results) = results {
            let results = results.await;
            drop(slot);
            metrics
                .store_append_seconds
                .observe(started.elapsed().as_secs_f64());
            for (((conn, id), result), span) in senders.iter().zip(ids).zip(results).zip(spans) {
                match result {
                    Ok(appended) => {
                        let m = appended.message();
                        conn.send(&ServerFrame::Ack {
                            room: &m.room,
                            client_msg_id: &m.client_msg_id,
                            seq: m.seq,
                        });
                        match &appended {
                            Appended::Stored(_) => metrics.messages_in.inc(),
                            Appended::Duplicate(_) => metrics.duplicates.inc(),
                        };
                        let message = Committed::Message(appended.into_message(), span);
                        if out.send(message).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        metrics.sends_failed.inc();
                        tracing::warn!(error = %e, "Send not stored");
                        conn.send(&ServerFrame::Error {
                            code: ErrorCode::Unavailable,
                            message: "the message was not saved; retry with the same client_msg_id",
                            client_msg_id: Some(id.as_str()),
                        });
                    }
                }
            }
        }
        for done in barriers {
            if out.send(Committed::Barrier(done)).await.is_err() {
                return;
            }
        }
    }
}

/// The span of one store call: a child of the first traced send of the batch; the batch's
/// other sends link to it. Disabled (and free) when traces are not exported.
fn store_span(sends: &[Span]) -> Span {
    let Some(first) = sends.iter().find(|s| !s.is_disabled()) else {
        return Span::none();
    };
    let span = tracing::info_span!(
        target: crate::telemetry::TARGET,
        parent: first,
        "store.append",
        batch = sends.len()
    );
    for other in sends.iter().filter(|s| !s.is_disabled()) {
        if other.id() != first.id() {
            other.follows_from(&span);
        }
    }
    span
}
