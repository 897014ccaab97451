//! `opsctl shift B/G`: set the weights, at once or in `--step`s, through the gates.

use std::process::ExitCode;

use crate::cli::ShiftArgs;
use crate::context::Context;
use crate::traffic::{self, Plan};

pub async fn run(ctx: &Context, args: &ShiftArgs) -> anyhow::Result<ExitCode> {
    let topo = ctx.topology().await?;
    let target = args.weights;
    let steps = match args.step {
        Some(step) => topo.weights.steps_to(target, step),
        None if topo.weights == target => Vec::new(),
        None => vec![target],
    };
    let plan = Plan {
        command: "shift",
        target,
        steps,
        interval: args.interval,
        gates: &args.gates,
        dry_run: args.dry_run,
    };
    let (report, code) = traffic::apply(ctx, &topo, plan).await?;
    ctx.out.emit(&report)?;
    Ok(code)
}
