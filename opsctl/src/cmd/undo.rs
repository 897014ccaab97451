//! `opsctl undo`: back to the weights before the last change (the listener's
//! `opsctl:previous-weights` tag). An undo records the weights it replaced, so a second undo
//! undoes the first.

use std::process::ExitCode;
use std::time::Duration;

use crate::aws::elbv2::TAG_PREVIOUS;
use crate::cli::UndoArgs;
use crate::context::Context;
use crate::traffic::{self, Plan, exit_for};

pub async fn run(ctx: &Context, args: &UndoArgs) -> anyhow::Result<ExitCode> {
    let topo = ctx.topology().await?;
    let Some(target) = topo.previous else {
        // A check that cannot pass rather than a usage error: the contract says 0 or 1.
        eprintln!(
            "opsctl: nothing to undo: listener {} has no {TAG_PREVIOUS} tag (opsctl has made no change here)",
            topo.listener_arn
        );
        return Ok(exit_for(false));
    };
    let plan = Plan {
        command: "undo",
        target,
        step: None,
        interval: Duration::ZERO,
        gates: &args.gates,
        dry_run: args.dry_run,
        rebalance: None,
        timeout: Duration::ZERO,
    };
    traffic::carry_out(ctx, &topo, plan).await
}
