//! `opsctl rollback`: back to the weights before the last change (the listener's
//! `opsctl:previous-weights` tag), else 100 % to the colour last marked stable. A rollback
//! records the weights it replaced, so a second rollback undoes the first.

use std::process::ExitCode;
use std::time::Duration;

use crate::aws::elbv2::{TAG_PREVIOUS, TAG_STABLE};
use crate::cli::RollbackArgs;
use crate::context::Context;
use crate::traffic::{self, Plan, exit_for};
use crate::weights::Weights;

pub async fn run(ctx: &Context, args: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let topo = ctx.topology().await?;
    let Some(target) = topo.previous.or_else(|| topo.stable.map(Weights::all_to)) else {
        // A check that cannot pass rather than a usage error: the contract says 0 or 1.
        eprintln!(
            "opsctl: nothing to roll back to: listener {} has no {TAG_PREVIOUS} or {TAG_STABLE} tag (opsctl has made no shift here)",
            topo.listener_arn
        );
        return Ok(exit_for(false));
    };
    let steps = if topo.weights == target {
        Vec::new()
    } else {
        vec![target]
    };
    let plan = Plan {
        command: "rollback",
        target,
        steps,
        interval: Duration::ZERO,
        gates: &args.gates,
        dry_run: args.dry_run,
    };
    let (report, code) = traffic::apply(ctx, &topo, plan).await?;
    ctx.out.emit(&report)?;
    Ok(code)
}
