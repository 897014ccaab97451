//! `opsctl health`: per-target health of one colour, or of every colour receiving traffic,
//! and its tasks' readiness (store and fanout) from the fleet heartbeats.

use std::process::ExitCode;

use crate::aws::elbv2;
use crate::cli::HealthArgs;
use crate::context::Context;
use crate::gates;
use crate::output::{ColorHealth, Health};
use crate::traffic::exit_for;

pub async fn run(ctx: &Context, args: &HealthArgs) -> anyhow::Result<ExitCode> {
    let topo = ctx.topology().await?;
    let colors = match args.color {
        Some(c) => vec![c],
        None => topo.weights.receiving(),
    };
    let mut report = Health {
        healthy: true,
        colors: Vec::new(),
    };
    let fleet = gates::fleet(ctx).await?;
    for color in colors {
        let tg = topo.target_group(color);
        let targets = elbv2::target_health(&ctx.clients.elb, tg).await?;
        let not_ready = fleet.as_ref().and_then(|f| gates::unready(color, f));
        let healthy =
            !targets.is_empty() && targets.iter().all(|t| t.healthy()) && not_ready.is_none();
        report.healthy &= healthy;
        report.colors.push(ColorHealth {
            color,
            target_group: tg.name.clone(),
            healthy,
            targets,
            not_ready,
        });
    }
    ctx.out.emit(&report)?;
    Ok(exit_for(report.healthy))
}
