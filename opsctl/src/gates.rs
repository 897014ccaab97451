//! The checks a weight change must pass (unless `--force`): every target of each colour that
//! will receive traffic is registered and healthy, its tasks are ready (each live task
//! publishes its `/readyz` verdict — store and fanout reachable — in the fleet heartbeats;
//! checked when `--table-prefix` is given and tasks publish them), that colour's ECS service
//! runs at least as many tasks as desired, and no named CloudWatch alarm is in ALARM. A failed check is a
//! sentence naming what failed, not an error: the caller decides to refuse or restore.

use crate::aws::cloudwatch::{self, AlarmState};
use crate::aws::control::{self, TaskBeat};
use crate::aws::elbv2::{self, Topology};
use crate::context::Context;
use crate::weights::Color;

/// What one round of checks found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub failures: Vec<String>,
    pub alarms: Vec<AlarmState>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Checks the colours in `receiving` and the alarms.
pub async fn check(
    ctx: &Context,
    topo: &Topology,
    receiving: &[Color],
    alarms: &[String],
) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::default();
    if !receiving.is_empty() {
        let services = ctx.services().await?;
        let fleet = fleet(ctx).await?;
        for &color in receiving {
            let tg = topo.target_group(color);
            let targets = elbv2::target_health(&ctx.clients.elb, tg).await?;
            if targets.is_empty() {
                verdict.failures.push(format!(
                    "{color}: target group {} has no registered targets",
                    tg.name
                ));
            } else {
                let bad: Vec<String> = targets
                    .iter()
                    .filter(|t| !t.healthy())
                    .map(|t| match &t.reason {
                        Some(r) => format!("{} {} ({r})", t.id, t.state),
                        None => format!("{} {}", t.id, t.state),
                    })
                    .collect();
                if !bad.is_empty() {
                    verdict.failures.push(format!(
                        "{color}: {} of {} targets in {} not healthy: {}",
                        bad.len(),
                        targets.len(),
                        tg.name,
                        bad.join(", ")
                    ));
                }
            }
            if let Some(failure) = fleet.as_ref().and_then(|f| unready(color, f)) {
                verdict.failures.push(failure);
            }
            if let Some(svc) = services.get(&color).filter(|s| s.running < s.desired) {
                verdict.failures.push(format!(
                    "{color}: ECS service {} runs {} of {} desired tasks",
                    svc.name, svc.running, svc.desired
                ));
            }
        }
    }
    verdict.alarms = cloudwatch::alarm_states(&ctx.clients.cloudwatch, alarms).await?;
    for alarm in verdict.alarms.iter().filter(|a| a.firing()) {
        verdict
            .failures
            .push(format!("alarm {} is in ALARM", alarm.name));
    }
    Ok(verdict)
}

/// The live tasks' heartbeats, when a table is known and tasks publish them.
pub async fn fleet(ctx: &Context) -> anyhow::Result<Option<Vec<TaskBeat>>> {
    match ctx.global.table_prefix.as_deref() {
        Some(prefix) => {
            let table = crate::aws::dynamodb::connections_table(prefix);
            control::fleet(&ctx.clients.dynamodb, &table).await
        }
        None => Ok(None),
    }
}

/// Why `color` is not ready by its tasks' heartbeats: none live, or some failing `/readyz`.
pub fn unready(color: Color, beats: &[TaskBeat]) -> Option<String> {
    let mine: Vec<&TaskBeat> = beats.iter().filter(|b| b.color == color).collect();
    if mine.is_empty() {
        return Some(format!(
            "{color}: no live task reports readiness (no heartbeat in the last {}s)",
            control::FRESH_MS / 1000
        ));
    }
    let bad: Vec<&str> = mine
        .iter()
        .filter(|b| !b.ready)
        .map(|b| b.task.as_str())
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "{color}: {} of {} tasks not ready (store or fanout failing): {}",
            bad.len(),
            mine.len(),
            bad.join(", ")
        )
    })
}
