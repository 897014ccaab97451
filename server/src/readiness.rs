//! What `/readyz` checks, in one place: the store answers, the fanout link is up, the task
//! is not draining. The HTTP route and the fleet heartbeat (`rebalance`), which is how
//! opsctl's gates learn a colour's readiness, both report this same list.

use std::sync::Arc;
use std::time::Duration;

use crate::hub::Hub;
use crate::store::Store;

/// How long the store check may take before it counts as failing.
const STORE_CHECK: Duration = Duration::from_secs(2);

/// Names of the failing parts; empty when ready.
pub async fn failing(store: &Arc<dyn Store>, hub: &Hub) -> Vec<&'static str> {
    let mut failing = Vec::new();
    let check = tokio::time::timeout(STORE_CHECK, store.check()).await;
    if !matches!(check, Ok(Ok(()))) {
        failing.push(store.name());
    }
    if !hub.fanout().is_ready() {
        failing.push(hub.fanout().name());
    }
    if hub.is_draining() {
        failing.push("draining");
    }
    failing
}
