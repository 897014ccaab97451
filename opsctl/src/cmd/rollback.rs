//! `opsctl rollback`: in one command, all traffic and every live connection back on the
//! stable colour (the one that had 100 % before the current rollout began, kept as the
//! listener's `opsctl:stable` tag). It takes the lease over (any shift in progress stops),
//! scales the stable colour's service up if it was scaled to 0 and waits until its tasks
//! are ready, then sets 100 % and waits until the other colour holds no connection.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use tokio::time::{Instant, sleep};

use crate::aws::control;
use crate::aws::ecs;
use crate::aws::elbv2::{self, TAG_STABLE, Topology};
use crate::cli::RollbackArgs;
use crate::context::Context;
use crate::lease::Lease;
use crate::traffic::{self, Plan, exit_for};
use crate::weights::{Color, Weights};

/// Time between readings while the stable colour starts.
const POLL: Duration = Duration::from_secs(1);

pub async fn run(ctx: &Context, args: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let topo = ctx.topology().await?;
    let Some(stable) = topo.stable.or_else(|| topo.weights.sole()) else {
        // A check that cannot pass rather than a usage error: the contract says 0 or 1.
        eprintln!(
            "opsctl: nothing to roll back to: listener {} has no {TAG_STABLE} tag and splits traffic; use `opsctl shift blue|green --force`",
            topo.listener_arn
        );
        return Ok(exit_for(false));
    };
    let plan = Plan {
        command: "rollback",
        target: Weights::all_to(stable),
        step: None,
        interval: Duration::ZERO,
        gates: &args.gates,
        dry_run: args.dry_run,
        rebalance: Some(args.window),
        timeout: args.timeout,
    };
    if plan.dry_run {
        return traffic::dry_run(ctx, &topo, &plan).await;
    }
    // Always: the emergency wins over whatever holds the lease.
    let Some(mut lease) = traffic::lease(ctx, "rollback", true).await? else {
        return Ok(exit_for(false));
    };
    let deadline = Instant::now() + args.timeout;
    let result = async {
        if !scale_up(ctx, &topo, &mut lease, stable, args, deadline).await? {
            return Ok(None);
        }
        let plan = Plan {
            timeout: deadline.saturating_duration_since(Instant::now()),
            ..plan
        };
        traffic::apply(ctx, &topo, &mut lease, plan).await.map(Some)
    }
    .await;
    lease.release(ctx).await;
    match result? {
        Some((report, code)) => {
            ctx.out.emit(&report)?;
            Ok(code)
        }
        None => Ok(exit_for(false)),
    }
}

/// When `stable`'s service is scaled to 0: scales it up and waits until its tasks run, its
/// targets are healthy and (when tasks publish heartbeats) ready. `false` when they were
/// not in time or the lease was taken meanwhile.
async fn scale_up(
    ctx: &Context,
    topo: &Topology,
    lease: &mut Lease,
    stable: Color,
    args: &RollbackArgs,
    deadline: Instant,
) -> anyhow::Result<bool> {
    let services = ctx.services().await?;
    let svc = services
        .get(&stable)
        .ok_or_else(|| anyhow!("no ECS service for {stable}"))?;
    if svc.desired > 0 {
        return Ok(true);
    }
    let other = services.get(&stable.other()).map_or(0, |s| s.desired);
    let want = args.tasks.unwrap_or(other.max(1));
    let cluster = ctx.cluster()?;
    ecs::set_desired(&ctx.clients.ecs, cluster, &svc.name, want).await?;
    ctx.out.note(
        None,
        format!(
            "  {}: scaled {} from 0 to {want} tasks",
            ctx.out.color_name(stable),
            svc.name
        ),
    )?;
    let bar = ctx.out.bar(
        u64::try_from(want).unwrap_or(1),
        format!("{} ready", svc.name),
    );
    let table = ctx.lease_table()?;
    let tg = topo.target_group(stable);
    loop {
        if !lease.still_held(ctx, false).await? {
            bar.finish_and_clear();
            eprintln!(
                "opsctl: rollback stopped: another change took the lease while {stable} started"
            );
            return Ok(false);
        }
        let now = ecs::service(&ctx.clients.ecs, cluster, &svc.name).await?;
        let healthy = elbv2::target_health(&ctx.clients.elb, tg)
            .await?
            .iter()
            .filter(|t| t.healthy())
            .count();
        let ready = match control::fleet(&ctx.clients.dynamodb, &table).await? {
            Some(beats) => beats
                .iter()
                .filter(|b| b.color == stable && b.ready)
                .count(),
            None => healthy,
        };
        let up = usize::try_from(now.running.min(want))
            .unwrap_or(0)
            .min(healthy)
            .min(ready);
        bar.set_position(up as u64);
        if up >= usize::try_from(want).unwrap_or(1) {
            bar.finish_and_clear();
            ctx.out.note(
                None,
                format!("  {}: {want} tasks ready", ctx.out.color_name(stable)),
            )?;
            return Ok(true);
        }
        if Instant::now() >= deadline {
            bar.finish_and_clear();
            eprintln!(
                "opsctl: rollback stopped: {stable} not ready in time ({} running, {healthy} healthy targets, {ready} ready tasks of {want}); traffic unchanged",
                now.running
            );
            return Ok(false);
        }
        sleep(POLL).await;
    }
}
