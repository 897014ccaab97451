//! `opsctl deploy --color C --image URI`: a new task-definition revision with that image for
//! C's service, the service updated to it, then a wait (with a bar) for a steady state; a
//! rollout ECS marks FAILED (or rolls back) ends the wait at once with exit 1.
//!
//! The new revision starts from the family's NEWEST revision, not the one the service runs:
//! Terraform registers a new revision when the task definition changes (an environment
//! variable, a role) but leaves the services alone, so a deploy is what carries its change
//! onto the tasks.

use std::process::ExitCode;

use tokio::time::{Instant, sleep};

use crate::aws::ecs;
use crate::cli::DeployArgs;
use crate::context::Context;
use crate::output::Deploy;
use crate::traffic::exit_for;

pub async fn run(ctx: &Context, args: &DeployArgs) -> anyhow::Result<ExitCode> {
    let cluster = ctx.cluster()?;
    let client = &ctx.clients.ecs;
    let mut services = ctx.services().await?;
    let Some(svc) = services.remove(&args.color) else {
        anyhow::bail!("no ECS service for {}", args.color);
    };
    let serving = ecs::serving_container(client, cluster, &svc.name).await?;
    let new_td = ecs::register_with_image(
        client,
        &ecs::family_of(&svc.task_definition),
        args.container.as_deref(),
        serving.as_ref().map(|(name, port)| (name.as_str(), *port)),
        &args.image,
    )
    .await?;
    ecs::update_service(client, cluster, &svc.name, &new_td).await?;
    ctx.out.note(
        None,
        format!(
            "  {}: {} → {} ({})",
            svc.name,
            svc.revision,
            new_td.rsplit('/').next().unwrap_or(&new_td),
            args.image
        ),
    )?;

    let deadline = Instant::now() + args.timeout;
    let bar = ctx.out.bar(
        u64::try_from(svc.desired).unwrap_or(0),
        format!("{} steady", svc.name),
    );
    let mut now = ecs::service(client, cluster, &svc.name).await?;
    let mut failure = None;
    loop {
        bar.set_length(u64::try_from(now.desired).unwrap_or(0));
        bar.set_position(u64::try_from(now.running).unwrap_or(0));
        if now.steady() && now.task_definition == new_td {
            break;
        }
        failure = now.rollout_failure(&new_td);
        if failure.is_some() {
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        sleep(args.interval.min(deadline - Instant::now())).await;
        now = ecs::service(client, cluster, &svc.name).await?;
    }
    bar.finish_and_clear();
    let steady = now.steady() && now.task_definition == new_td;
    let report = Deploy {
        color: args.color,
        service: svc.name,
        previous_task_definition: svc.task_definition,
        task_definition: new_td,
        image: args.image.clone(),
        steady,
        running: now.running,
        desired: now.desired,
    };
    ctx.out.emit(&report)?;
    if let Some(why) = failure {
        eprintln!("opsctl: deploy of {} failed: {why}", report.service);
    } else if !steady {
        eprintln!(
            "opsctl: {} did not reach a steady state within {}",
            report.service,
            humantime::format_duration(args.timeout)
        );
    }
    Ok(exit_for(steady))
}
