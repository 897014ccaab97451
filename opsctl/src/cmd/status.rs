//! `opsctl status`: weights, target health, ECS services and live connections per colour.
//! Connections come from the tasks' fleet heartbeats when they publish them (a dead task
//! drops out within seconds), else from the connection records' `by-color` index.

use std::process::ExitCode;

use anyhow::anyhow;

use crate::aws::{dynamodb, elbv2};
use crate::context::Context;
use crate::gates;
use crate::output::{ColorStatus, Status};
use crate::weights::Color;

pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let status = gather(ctx).await?;
    ctx.out.emit(&status)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads everything `status` (and `watch`) shows.
pub async fn gather(ctx: &Context) -> anyhow::Result<Status> {
    let topo = ctx.topology().await?;
    let mut services = ctx.services().await?;
    let table = ctx
        .global
        .table_prefix
        .as_deref()
        .map(dynamodb::connections_table);
    let fleet = gates::fleet(ctx).await?;
    let mut colors = Vec::new();
    for color in Color::ALL {
        let tg = topo.target_group(color);
        let targets = elbv2::target_health(&ctx.clients.elb, tg).await?;
        let mine: Option<Vec<_>> = fleet
            .as_ref()
            .map(|f| f.iter().filter(|b| b.color == color).collect());
        let live_connections = match (&mine, &table) {
            (Some(beats), _) => Some(beats.iter().map(|b| b.conns).sum()),
            (None, Some(t)) => {
                Some(dynamodb::live_connections(&ctx.clients.dynamodb, t, color).await?)
            }
            (None, None) => None,
        };
        colors.push(ColorStatus {
            color,
            weight: topo.weights.get(color),
            target_group: tg.name.clone(),
            healthy_targets: targets.iter().filter(|t| t.healthy()).count(),
            total_targets: targets.len(),
            service: services
                .remove(&color)
                .ok_or_else(|| anyhow!("no ECS service for {color}"))?,
            live_connections,
            live_tasks: mine.as_ref().map(Vec::len),
            ready_tasks: mine.as_ref().map(|m| m.iter().filter(|b| b.ready).count()),
        });
    }
    Ok(Status {
        alb: topo.alb_name.clone(),
        listener_port: topo.listener_port,
        listener_arn: topo.listener_arn.clone(),
        weights: topo.weights,
        previous_weights: topo.previous,
        stable: topo.stable,
        colors,
    })
}
