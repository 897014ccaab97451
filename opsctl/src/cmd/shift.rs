//! `opsctl shift B/G`: set the weights, at once or in `--step`s, through the gates, under
//! the lease (`--force` takes it over); with `--rebalance` live connections follow.

use std::process::ExitCode;

use crate::cli::ShiftArgs;
use crate::context::Context;
use crate::traffic::{self, Plan};

pub async fn run(ctx: &Context, args: &ShiftArgs) -> anyhow::Result<ExitCode> {
    let topo = ctx.topology().await?;
    let plan = Plan {
        command: "shift",
        target: args.weights,
        step: args.step,
        interval: args.interval,
        gates: &args.gates,
        dry_run: args.dry_run,
        rebalance: args.rebalance,
        timeout: args.timeout,
    };
    traffic::carry_out(ctx, &topo, plan).await
}
