//! The Redis fanout's two background tasks. The link task owns the subscriber connection:
//! it connects with backoff, subscribes every wanted room, marks the fanout ready, catches
//! the hub up, hands messages over until a connection breaks, and starts again. On a cluster
//! "a connection breaks" includes any one node's connection dropping (a primary that died or
//! was failed over) and a wanted channel's slot moving away: the new link subscribes each
//! room on the shard that owns it now, and the catch-up from the store covers what was
//! published meanwhile. The heartbeat task keeps presence alive and retries the backlog.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ::redis::{PushInfo, PushKind, RedisResult};
use backon::{ExponentialBuilder, Retryable};
use tokio::sync::mpsc;

use super::endpoint::{COMMAND_TIMEOUT, Endpoint, Subscriber};
use super::keys::{channel, room_of};
use super::state::Shared;
use crate::fanout::FromOthers;

/// How often the subscriber pings, to notice a link that died without a word.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(BACKOFF_MIN)
        .with_max_delay(BACKOFF_MAX)
        .with_jitter()
        .without_max_times()
}

/// Brings the subscriber's subscriptions to the desired set.
async fn apply_subscriptions(
    shared: &Shared,
    conn: &mut Subscriber,
    applied: &mut HashSet<String>,
) -> RedisResult<()> {
    let desired = shared.desired.lock().clone();
    let added: Vec<String> = desired.difference(applied).map(|r| channel(r)).collect();
    let removed: Vec<String> = applied.difference(&desired).map(|r| channel(r)).collect();
    conn.apply(&added, true).await?;
    conn.apply(&removed, false).await?;
    *applied = desired;
    Ok(())
}

/// A subscriber connection with every desired room subscribed, and its push receiver.
async fn connect(
    shared: &Shared,
    endpoint: &Endpoint,
) -> RedisResult<(
    Subscriber,
    mpsc::UnboundedReceiver<PushInfo>,
    HashSet<String>,
)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut conn = endpoint.subscriber(tx).await?;
    let mut applied = HashSet::new();
    apply_subscriptions(shared, &mut conn, &mut applied).await?;
    Ok((conn, rx, applied))
}

/// The room a subscription confirmation (`ssubscribe` push) is for.
fn subscribed_room(push: &PushInfo) -> Option<String> {
    if push.kind != PushKind::SSubscribe {
        return None;
    }
    match push.data.first() {
        Some(::redis::Value::BulkString(ch)) => std::str::from_utf8(ch)
            .ok()
            .and_then(room_of)
            .map(str::to_string),
        _ => None,
    }
}

/// Hands `first` and every push already queued to the hub, adding the rooms whose
/// subscription was confirmed among them to `subscribed`. False when the link broke.
fn hand_over(
    shared: &Shared,
    first: Option<PushInfo>,
    pushes: &mut mpsc::UnboundedReceiver<PushInfo>,
    subscribed: &mut Vec<String>,
) -> bool {
    let mut next = first.or_else(|| pushes.try_recv().ok());
    while let Some(push) = next {
        subscribed.extend(subscribed_room(&push));
        if !shared.on_push(push) {
            return false;
        }
        next = pushes.try_recv().ok();
    }
    true
}

/// Every room caught up from the store (the link was down: anything may have been missed).
fn resync(shared: &Shared) {
    // The hub's reader is gone only at the shutdown.
    let _ = shared.hub.send(FromOthers::Resync);
}

/// The link task: connect (with backoff), subscribe, mark ready, catch up, then hand
/// messages to the hub until the link breaks; repeat until stopped.
pub async fn run_link(shared: Arc<Shared>, endpoint: Endpoint) {
    let mut down_since = Instant::now();
    let mut ever_up = false;
    loop {
        let attempt = (|| connect(&shared, &endpoint))
            .retry(backoff())
            .notify(|e, wait| {
                tracing::debug!(error = %e, retry_in_ms = wait.as_millis() as u64, "Redis not reachable");
            });
        let (mut conn, mut pushes, mut applied) = tokio::select! {
            () = shared.stop.cancelled() => return,
            result = attempt => match result {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "Redis connection failed");
                    continue;
                }
            },
        };
        shared.up.store(true, Ordering::Release);
        let down_ms = down_since.elapsed().as_millis() as u64;
        tracing::info!(
            down_ms,
            rooms = applied.len(),
            reconnect = ever_up,
            "Redis link up"
        );
        // Presence first (joins meanwhile counted only locally), then whatever other tasks
        // missed from us, then catch our own rooms up from the store.
        if let Err(e) = shared.refresh_presence().await {
            tracing::warn!(error = %e, "Could not register presence after connecting");
        }
        shared.republish_backlog().await;
        // The confirmations of the subscriptions just made are queued: the catch-up below
        // covers them.
        if !hand_over(&shared, None, &mut pushes, &mut Vec::new()) {
            shared.up.store(false, Ordering::Release);
            tracing::warn!("Redis link broke while connecting; reconnecting");
            continue;
        }
        resync(&shared);
        ever_up = true;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                () = shared.stop.cancelled() => {
                    shared.up.store(false, Ordering::Release);
                    return;
                }
                push = pushes.recv() => {
                    let Some(push) = push else { break };
                    let mut subscribed = Vec::new();
                    if !hand_over(&shared, Some(push), &mut pushes, &mut subscribed) {
                        break;
                    }
                    // A subscription became active: ours (a message published between the
                    // hub's join, which read the store, and now would be missed), or one the
                    // cluster client moved to the shard that owns its slot now (what was
                    // published meanwhile went elsewhere). Catch those rooms up once, and only
                    // them: one new room must not cost a read of every room on the task.
                    if !subscribed.is_empty() {
                        let _ = shared.hub.send(FromOthers::ResyncRooms(subscribed));
                    }
                }
                () = shared.changed.notified() => {
                    if let Err(e) = apply_subscriptions(&shared, &mut conn, &mut applied).await {
                        tracing::warn!(error = %e, "Redis subscribe failed");
                        break;
                    }
                }
                _ = ping.tick() => {
                    let pong = tokio::time::timeout(COMMAND_TIMEOUT, conn.ping()).await;
                    if !matches!(pong, Ok(Ok(()))) {
                        break;
                    }
                }
            }
        }
        shared.up.store(false, Ordering::Release);
        down_since = Instant::now();
        tracing::warn!("Redis link down; reconnecting");
    }
}

/// Refreshes this task's presence every third of the TTL, so it outlives a missed beat, and
/// retries publishing what failed while the link looked up.
pub async fn run_heartbeat(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval((shared.ttl / 3).max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if shared.is_up() {
            if let Err(e) = shared.refresh_presence().await {
                tracing::debug!(error = %e, "Presence heartbeat failed");
            }
            shared.republish_backlog().await;
        }
    }
}
