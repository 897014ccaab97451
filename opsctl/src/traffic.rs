//! Moving traffic: the one place listener weights are written. `shift`, `rollback` and `undo`
//! hand it a plan and the lease they hold. It re-reads the listener under the lease, walks
//! the steps (before each: the lease is still ours, the listener still carries what we
//! wrote, the gates pass), records the way back only once the first new weights are in
//! place, tells the tasks (control record), and optionally waits for live connections to
//! follow. How it ends is one [`Outcome`]:
//!
//! - a failed check mid-way puts the starting weights back (`restored`, exit 1);
//! - someone else changing the weights or taking the lease stops it without touching
//!   anything (`superseded` / `lease_lost`, exit 1): their change stays in force;
//! - an AWS error after the first write puts the starting weights back (`error_restored`,
//!   exit 3), or says that it could not (`failed`, exit 4).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::aws::control::{self, Control};
use crate::aws::elbv2::{self, TAG_PREVIOUS, TAG_STABLE, Topology};
use crate::cli::GateArgs;
use crate::context::Context;
use crate::converge::{self, Converged};
use crate::gates;
use crate::lease::{Lease, LeaseError};
use crate::output::{Change, Outcome, WeightChange};
use crate::weights::{Color, Weights};

/// How often the gates, the lease and the listener are re-read while waiting between steps.
const RECHECK_EVERY: Duration = Duration::from_secs(1);
/// After displacing another change, how long to wait before checking that its last write
/// did not land after ours.
const SETTLE: Duration = Duration::from_millis(1500);

/// A weight change to carry out.
pub struct Plan<'a> {
    /// `shift`, `rollback` or `undo`, for the report.
    pub command: &'static str,
    pub target: Weights,
    /// Move in steps of at most this many percent; `None`: at once.
    pub step: Option<u8>,
    /// Pause between steps.
    pub interval: Duration,
    pub gates: &'a GateArgs,
    pub dry_run: bool,
    /// Tell tasks to shed connections toward `target` over this window, and wait for them.
    pub rebalance: Option<Duration>,
    /// How long to wait for live connections to follow.
    pub timeout: Duration,
}

/// How the steps ended.
enum Stop {
    Done,
    CheckFailed(gates::Verdict),
    Superseded(Weights),
    LeaseLost,
}

/// Takes the lease (stealing it for the emergency paths); prints who holds it and returns
/// `None` when it is busy.
pub async fn lease(ctx: &Context, command: &str, steal: bool) -> anyhow::Result<Option<Lease>> {
    match Lease::take(ctx, command, steal).await? {
        Ok(lease) => {
            if let Some(h) = &lease.displaced {
                ctx.out.note(
                    None,
                    format!(
                        "  took the lease from {} (it stops at its next check)",
                        h.owner
                    ),
                )?;
            }
            Ok(Some(lease))
        }
        Err(e @ LeaseError::Busy(_)) => {
            eprintln!(
                "opsctl: {command} refused (busy): {e}; wait for it, or use --force / rollback"
            );
            Ok(None)
        }
    }
}

/// The whole of a plain weight change (`shift`, `undo`): with `dry_run` its checks alone,
/// else the change under the lease (taken from another holder only with `--force`);
/// reported either way.
pub async fn carry_out(ctx: &Context, topo: &Topology, plan: Plan<'_>) -> anyhow::Result<ExitCode> {
    if plan.dry_run {
        return dry_run(ctx, topo, &plan).await;
    }
    let Some(mut lease) = lease(ctx, plan.command, plan.gates.force).await? else {
        return Ok(exit_for(false));
    };
    let result = apply(ctx, topo, &mut lease, plan).await;
    lease.release(ctx).await;
    let (report, code) = result?;
    ctx.out.emit(&report)?;
    Ok(code)
}

/// Runs `plan`'s checks only and reports them (`--dry-run`).
pub async fn dry_run(ctx: &Context, topo: &Topology, plan: &Plan<'_>) -> anyhow::Result<ExitCode> {
    let steps = steps(topo.weights, plan);
    let mut report = WeightChange::new(plan.command, topo.weights, plan.target, steps.clone());
    if !plan.gates.force && !steps.is_empty() {
        let mut receiving: Vec<Color> = steps.iter().flat_map(|w| w.receiving()).collect();
        receiving.sort();
        receiving.dedup();
        let verdict = gates::check(ctx, topo, &receiving, &plan.gates.alarms).await?;
        report.alarms = verdict.alarms;
        report.failures = verdict.failures;
    }
    report.outcome = Outcome::DryRun;
    ctx.out.emit(&report)?;
    Ok(exit_for(report.failures.is_empty()))
}

fn steps(from: Weights, plan: &Plan<'_>) -> Vec<Weights> {
    match plan.step {
        Some(step) => from.steps_to(plan.target, step),
        None if from == plan.target => Vec::new(),
        None => vec![plan.target],
    }
}

/// Carries out `plan` under `lease`; prints progress, returns the report and exit code.
pub async fn apply(
    ctx: &Context,
    topo: &Topology,
    lease: &mut Lease,
    plan: Plan<'_>,
) -> anyhow::Result<(WeightChange, ExitCode)> {
    // Under the lease, the listener as it is now (not as `topo` read it before).
    let start = elbv2::current_weights(&ctx.clients.elb, topo).await?;
    let steps = steps(start, &plan);
    let mut report = WeightChange::new(plan.command, start, plan.target, steps.clone());
    report.lease_taken_from = lease.displaced.as_ref().map(|h| h.owner.clone());
    if steps.is_empty() && plan.rebalance.is_none() {
        return Ok((report, ExitCode::SUCCESS));
    }
    let walked = walk(ctx, topo, lease, &plan, &steps, &mut report).await;
    let code = match walked {
        Ok(Stop::Done) => return finish(ctx, topo, lease, &plan, report).await,
        Ok(Stop::CheckFailed(verdict)) => {
            report.alarms = verdict.alarms;
            report.failures = verdict.failures;
            if report.after == start {
                report.outcome = Outcome::Refused;
                exit_for(false)
            } else {
                match restore(ctx, topo, &mut report).await {
                    Ok(()) => {
                        report.outcome = Outcome::Restored;
                        exit_for(false)
                    }
                    Err(e) => failed(&mut report, e),
                }
            }
        }
        Ok(Stop::Superseded(now)) => {
            report.after = now;
            report.outcome = Outcome::Superseded;
            exit_for(false)
        }
        Ok(Stop::LeaseLost) => {
            report.outcome = Outcome::LeaseLost;
            exit_for(false)
        }
        Err(err) => {
            eprintln!("opsctl: {}: {err:#}", plan.command);
            report.error = Some(format!("{err:#}"));
            if report.changes.is_empty() {
                report.outcome = Outcome::Failed;
                ExitCode::from(crate::USAGE_ERROR)
            } else {
                match restore(ctx, topo, &mut report).await {
                    Ok(()) => {
                        report.outcome = Outcome::ErrorRestored;
                        ExitCode::from(crate::ERROR_RESTORED)
                    }
                    Err(e) => failed(&mut report, e),
                }
            }
        }
    };
    Ok((report, code))
}

fn failed(report: &mut WeightChange, err: anyhow::Error) -> ExitCode {
    let first = report.error.take();
    report.error = Some(match first {
        Some(f) => format!("{f}; restoring failed too: {err:#}"),
        None => format!("restoring failed: {err:#}"),
    });
    report.outcome = Outcome::Failed;
    ExitCode::from(crate::FAILED)
}

/// The steps, each after the lease, listener and gate checks; waits (checking) between.
async fn walk(
    ctx: &Context,
    topo: &Topology,
    lease: &mut Lease,
    plan: &Plan<'_>,
    steps: &[Weights],
    report: &mut WeightChange,
) -> anyhow::Result<Stop> {
    let bar = ctx.out.bar(steps.len() as u64, plan.command);
    let table = ctx.lease_table()?;
    for (i, next) in steps.iter().copied().enumerate() {
        if i > 0
            && let Some(stop) = interference(ctx, topo, lease, report.after, true).await?
        {
            bar.finish_and_clear();
            return Ok(stop);
        }
        if !plan.gates.force {
            let verdict = gates::check(ctx, topo, &next.receiving(), &plan.gates.alarms).await?;
            report.alarms = verdict.alarms.clone();
            if !verdict.passed() {
                bar.finish_and_clear();
                return Ok(Stop::CheckFailed(verdict));
            }
        }
        let current = report.after;
        elbv2::set_weights(&ctx.clients.elb, topo, next).await?;
        report.changes.push(Change {
            from: current,
            to: next,
        });
        report.after = next;
        ctx.out
            .note(Some(&bar), format!("  {}", ctx.out.change(current, next)))?;
        if i == 0 {
            // The way back, written only now that the new weights are in place; the
            // stable colour is the one that had everything before this rollout began.
            // One tag per call: moto keeps only one of several tags added at once.
            // A rollout begins when traffic leaves a sole colour: that colour is the stable
            // one until the next rollout begins (a rollback back to it does not re-mark).
            if let Some(c) = report.before.sole().filter(|_| plan.command != "rollback") {
                elbv2::tag_listener(&ctx.clients.elb, topo, &[(TAG_STABLE, c.to_string())]).await?;
                report.marked_stable = Some(c);
            }
            elbv2::tag_listener(
                &ctx.clients.elb,
                topo,
                &[(TAG_PREVIOUS, report.before.to_tag())],
            )
            .await?;
        }
        let last = i + 1 == steps.len();
        let control = Control {
            weights: next,
            rebalance: last && plan.rebalance.is_some(),
            window_ms: window_ms(plan.rebalance),
        };
        control::write_control(&ctx.clients.dynamodb, &table, control, &lease.owner).await?;
        bar.inc(1);
        if !last
            && !plan.interval.is_zero()
            && let Some(stop) = bake(ctx, topo, lease, next, plan).await?
        {
            bar.finish_and_clear();
            return Ok(stop);
        }
    }
    bar.finish_and_clear();
    Ok(Stop::Done)
}

fn window_ms(window: Option<Duration>) -> i64 {
    window.map_or(0, |w| i64::try_from(w.as_millis()).unwrap_or(i64::MAX))
}

/// Someone else took the lease or changed the weights.
async fn interference(
    ctx: &Context,
    topo: &Topology,
    lease: &mut Lease,
    expected: Weights,
    renew: bool,
) -> anyhow::Result<Option<Stop>> {
    if !lease.still_held(ctx, renew).await? {
        return Ok(Some(Stop::LeaseLost));
    }
    let now = elbv2::current_weights(&ctx.clients.elb, topo).await?;
    Ok((now != expected).then_some(Stop::Superseded(now)))
}

/// Waits `plan.interval` at `current`, re-checking lease, listener and gates.
async fn bake(
    ctx: &Context,
    topo: &Topology,
    lease: &mut Lease,
    current: Weights,
    plan: &Plan<'_>,
) -> anyhow::Result<Option<Stop>> {
    let deadline = Instant::now() + plan.interval;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        sleep((deadline - now).min(RECHECK_EVERY)).await;
        if let Some(stop) = interference(ctx, topo, lease, current, false).await? {
            return Ok(Some(stop));
        }
        if !plan.gates.force {
            let verdict = gates::check(ctx, topo, &current.receiving(), &plan.gates.alarms).await?;
            if !verdict.passed() {
                return Ok(Some(Stop::CheckFailed(verdict)));
            }
        }
    }
}

/// Puts the starting weights back, and the tags and control record as they were.
async fn restore(ctx: &Context, topo: &Topology, report: &mut WeightChange) -> anyhow::Result<()> {
    let (current, start) = (report.after, report.before);
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
    // The change did not happen, so `undo` keeps meaning "undo the last change".
    match topo.previous {
        Some(p) => {
            elbv2::tag_listener(&ctx.clients.elb, topo, &[(TAG_PREVIOUS, p.to_tag())]).await?
        }
        None => elbv2::untag_listener(&ctx.clients.elb, topo, &[TAG_PREVIOUS]).await?,
    }
    let control = Control {
        weights: start,
        rebalance: false,
        window_ms: 0,
    };
    control::write_control(
        &ctx.clients.dynamodb,
        &ctx.lease_table()?,
        control,
        "restore",
    )
    .await
}

/// After the last step: make sure a displaced change did not overwrite us, and wait for
/// live connections when rebalancing.
async fn finish(
    ctx: &Context,
    topo: &Topology,
    lease: &mut Lease,
    plan: &Plan<'_>,
    mut report: WeightChange,
) -> anyhow::Result<(WeightChange, ExitCode)> {
    let target = plan.target;
    if lease.displaced.is_some() {
        // The change we displaced may have had a write in flight: ours must stay in force.
        sleep(SETTLE).await;
        let now = elbv2::current_weights(&ctx.clients.elb, topo).await?;
        if now != target {
            elbv2::set_weights(&ctx.clients.elb, topo, target).await?;
            ctx.out.note(
                None,
                format!("  re-asserted {}", ctx.out.change(now, target)),
            )?;
            report.changes.push(Change {
                from: now,
                to: target,
            });
        }
    }
    report.outcome = Outcome::Done;
    let Some(window) = plan.rebalance else {
        return Ok((report, ExitCode::SUCCESS));
    };
    if report.changes.is_empty() {
        // Already at the target: still ask the tasks to rebalance toward it.
        let control = Control {
            weights: target,
            rebalance: true,
            window_ms: window_ms(Some(window)),
        };
        control::write_control(
            &ctx.clients.dynamodb,
            &ctx.lease_table()?,
            control,
            &lease.owner,
        )
        .await?;
    }
    let started = Instant::now();
    let code = match converge::wait(ctx, topo, lease, target, plan.timeout).await? {
        Converged::Yes(counts) => {
            report.connections = Some(counts);
            report.converge_secs = Some(started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Converged::NoFleet => {
            ctx.out.note(
                None,
                "  no task publishes heartbeats: no live connections to move",
            )?;
            report.connections = Some(BTreeMap::new());
            ExitCode::SUCCESS
        }
        Converged::TimedOut(counts) => {
            report.connections = Some(counts);
            report.outcome = Outcome::NotConverged;
            exit_for(false)
        }
        Converged::LeaseLost => {
            report.outcome = Outcome::LeaseLost;
            exit_for(false)
        }
        Converged::Superseded(now) => {
            report.after = now;
            report.outcome = Outcome::Superseded;
            exit_for(false)
        }
    };
    Ok((report, code))
}

pub fn exit_for(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::CHECK_FAILED)
    }
}
