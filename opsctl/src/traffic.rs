//! Moving traffic: the one place listener weights are written. `shift` and `rollback` both
//! hand it a plan (a list of weights to pass through); it records the starting weights as a
//! listener tag, checks the gates before every step and while waiting between steps, prints
//! each change as before → after, and on a failed check puts the starting weights back.

use std::process::ExitCode;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::aws::elbv2::{self, TAG_PREVIOUS, TAG_STABLE, Topology};
use crate::cli::GateArgs;
use crate::context::Context;
use crate::gates;
use crate::output::{Change, Outcome, WeightChange};
use crate::weights::{Color, Weights};

/// How often the gates are re-read while waiting between steps.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// A weight change to carry out.
pub struct Plan<'a> {
    /// `shift` or `rollback`, for the report.
    pub command: &'static str,
    pub target: Weights,
    /// Weights to pass through, ending with `target`; empty when already there.
    pub steps: Vec<Weights>,
    /// Pause between steps.
    pub interval: Duration,
    pub gates: &'a GateArgs,
    pub dry_run: bool,
}

/// Carries out `plan` from `topo`'s current weights; prints progress, returns the report and
/// the exit code (0 done, 1 a check failed).
pub async fn apply(
    ctx: &Context,
    topo: &Topology,
    plan: Plan<'_>,
) -> anyhow::Result<(WeightChange, ExitCode)> {
    let start = topo.weights;
    let mut report = WeightChange {
        command: plan.command,
        before: start,
        target: plan.target,
        after: start,
        outcome: Outcome::Unchanged,
        plan: plan.steps.clone(),
        changes: Vec::new(),
        failures: Vec::new(),
        alarms: Vec::new(),
        marked_stable: None,
    };
    if plan.steps.is_empty() {
        return Ok((report, ExitCode::SUCCESS));
    }
    let force = plan.gates.force;
    let alarms = &plan.gates.alarms;

    if plan.dry_run {
        if !force {
            let mut receiving: Vec<Color> = plan.steps.iter().flat_map(|w| w.receiving()).collect();
            receiving.sort();
            receiving.dedup();
            let verdict = gates::check(ctx, topo, &receiving, alarms).await?;
            report.alarms = verdict.alarms;
            report.failures = verdict.failures;
        }
        report.outcome = Outcome::DryRun;
        let code = exit_for(report.failures.is_empty());
        return Ok((report, code));
    }

    let bar = ctx.out.bar(plan.steps.len() as u64, plan.command);
    let mut current = start;
    let mut recorded = false;
    for (i, next) in plan.steps.iter().copied().enumerate() {
        if !force {
            let verdict = gates::check(ctx, topo, &next.receiving(), alarms).await?;
            report.alarms = verdict.alarms;
            if !verdict.failures.is_empty() {
                report.failures = verdict.failures;
                bar.finish_and_clear();
                return fail(ctx, topo, report, current).await;
            }
        }
        if !recorded {
            // Before the first write, so a crash mid-shift still leaves the way back.
            elbv2::tag_listener(&ctx.clients.elb, topo, &[(TAG_PREVIOUS, start.to_tag())]).await?;
            recorded = true;
        }
        if let Err(err) = elbv2::set_weights(&ctx.clients.elb, topo, next).await {
            bar.finish_and_clear();
            if current != start {
                // Best effort: the write error is what gets reported either way.
                if elbv2::set_weights(&ctx.clients.elb, topo, start)
                    .await
                    .is_ok()
                {
                    ctx.out
                        .note(None, format!("restored {}", ctx.out.change(current, start)))?;
                }
            }
            return Err(err);
        }
        ctx.out
            .note(Some(&bar), format!("  {}", ctx.out.change(current, next)))?;
        report.changes.push(Change {
            from: current,
            to: next,
        });
        current = next;
        report.after = current;
        bar.inc(1);

        if i + 1 < plan.steps.len() && !plan.interval.is_zero() {
            let verdict = bake(ctx, topo, current, &plan).await?;
            if let Some(verdict) = verdict {
                report.alarms = verdict.alarms;
                report.failures = verdict.failures;
                bar.finish_and_clear();
                return fail(ctx, topo, report, current).await;
            }
        }
    }
    bar.finish_and_clear();
    if let Some(color) = plan.target.sole() {
        elbv2::tag_listener(&ctx.clients.elb, topo, &[(TAG_STABLE, color.to_string())]).await?;
        report.marked_stable = Some(color);
    }
    report.outcome = Outcome::Done;
    Ok((report, ExitCode::SUCCESS))
}

/// Waits `plan.interval` at `current`, re-checking the gates; returns the failing verdict
/// if one fails.
async fn bake(
    ctx: &Context,
    topo: &Topology,
    current: Weights,
    plan: &Plan<'_>,
) -> anyhow::Result<Option<gates::Verdict>> {
    let deadline = Instant::now() + plan.interval;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        sleep((deadline - now).min(RECHECK_EVERY)).await;
        if !plan.gates.force {
            let verdict = gates::check(ctx, topo, &current.receiving(), &plan.gates.alarms).await?;
            if !verdict.passed() {
                return Ok(Some(verdict));
            }
        }
    }
}

/// A check failed at `current`: put the starting weights back if anything moved.
async fn fail(
    ctx: &Context,
    topo: &Topology,
    mut report: WeightChange,
    current: Weights,
) -> anyhow::Result<(WeightChange, ExitCode)> {
    let start = report.before;
    if current == start {
        report.outcome = Outcome::Refused;
    } else {
        elbv2::set_weights(&ctx.clients.elb, topo, start).await?;
        ctx.out.note(
            None,
            format!("  restored {}", ctx.out.change(current, start)),
        )?;
        report.changes.push(Change {
            from: current,
            to: start,
        });
        report.after = start;
        report.outcome = Outcome::Restored;
        // The change did not happen, so `rollback` keeps meaning "undo the last change".
        match topo.previous {
            Some(p) => {
                elbv2::tag_listener(&ctx.clients.elb, topo, &[(TAG_PREVIOUS, p.to_tag())]).await?
            }
            None => elbv2::untag_listener(&ctx.clients.elb, topo, &[TAG_PREVIOUS]).await?,
        }
    }
    Ok((report, exit_for(false)))
}

pub fn exit_for(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::CHECK_FAILED)
    }
}
