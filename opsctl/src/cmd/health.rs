//! `opsctl health`: per-target health of one colour, or of every colour receiving traffic.

use std::process::ExitCode;

use crate::aws::elbv2;
use crate::cli::HealthArgs;
use crate::context::Context;
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
    for color in colors {
        let tg = topo.target_group(color);
        let targets = elbv2::target_health(&ctx.clients.elb, tg).await?;
        let healthy = !targets.is_empty() && targets.iter().all(|t| t.healthy());
        report.healthy &= healthy;
        report.colors.push(ColorHealth {
            color,
            target_group: tg.name.clone(),
            healthy,
            targets,
        });
    }
    ctx.out.emit(&report)?;
    Ok(exit_for(report.healthy))
}
