//! Reads the routing table from the ELBv2 API (moto locally): the load balancer by name,
//! its listener on a port, the forward action's weighted target groups (the listener's default
//! action, or the weighted rule behind the origin header as Terraform lays it out), each group's
//! registered targets (`ip` targets: address and port) and its deregistration delay.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext;
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, TargetHealthStateEnum};

use crate::routes::{Group, Routes};

/// ELBv2's default when the attribute is unset.
const DEFAULT_DELAY: Duration = Duration::from_secs(300);

fn sdk<E: std::error::Error>(e: E) -> anyhow::Error {
    anyhow!("{}", DisplayErrorContext(&e))
}

/// The listener ARN of `alb`'s listener on `port`.
pub async fn listener(client: &Client, alb: &str, port: i32) -> anyhow::Result<String> {
    let lb = client
        .describe_load_balancers()
        .names(alb)
        .send()
        .await
        .map_err(sdk)
        .with_context(|| format!("describing load balancer {alb:?}"))?
        .load_balancers
        .unwrap_or_default()
        .into_iter()
        .next()
        .and_then(|l| l.load_balancer_arn)
        .ok_or_else(|| anyhow!("load balancer {alb:?} not found"))?;
    let listeners = client
        .describe_listeners()
        .load_balancer_arn(&lb)
        .send()
        .await
        .map_err(sdk)
        .with_context(|| format!("listing listeners of {alb:?}"))?
        .listeners
        .unwrap_or_default();
    listeners
        .into_iter()
        .find(|l| l.port == Some(port))
        .and_then(|l| l.listener_arn)
        .ok_or_else(|| anyhow!("load balancer {alb:?} has no listener on port {port}"))
}

/// The routing table of `listener_arn` now.
pub async fn routes(client: &Client, listener_arn: &str) -> anyhow::Result<Routes> {
    let listener = client
        .describe_listeners()
        .listener_arns(listener_arn)
        .send()
        .await
        .map_err(sdk)
        .context("reading the listener")?
        .listeners
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("listener {listener_arn} is gone"))?;
    let default_forward = listener
        .default_actions()
        .iter()
        .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
        .cloned();
    let forward = match default_forward {
        Some(forward) => forward,
        None => weighted_rule(client, listener_arn).await?,
    };
    let tuples = forward
        .forward_config()
        .map(|f| f.target_groups())
        .unwrap_or_default();
    let weighted: Vec<(String, i32)> = if tuples.is_empty() {
        forward
            .target_group_arn()
            .map(|a| vec![(a.to_string(), 1)])
            .unwrap_or_default()
    } else {
        tuples
            .iter()
            .filter_map(|t| Some((t.target_group_arn()?.to_string(), t.weight().unwrap_or(1))))
            .collect()
    };
    let mut groups = Vec::new();
    for (arn, weight) in weighted {
        groups.push(group(client, &arn, weight).await?);
    }
    Ok(Routes { groups })
}

/// The forward action of the listener's rule that spreads over several target groups: where
/// Terraform puts the weighted forward behind CloudFront's origin header (the listener itself
/// answers 403). localalb stands for CloudFront and the ALB together, so it follows that rule.
async fn weighted_rule(client: &Client, listener_arn: &str) -> anyhow::Result<Action> {
    let rules = client
        .describe_rules()
        .listener_arn(listener_arn)
        .send()
        .await
        .map_err(sdk)
        .with_context(|| format!("listing the rules of listener {listener_arn}"))?
        .rules
        .unwrap_or_default();
    rules
        .into_iter()
        .filter(|r| r.is_default() != Some(true))
        .flat_map(|r| r.actions.unwrap_or_default())
        .find(|a| {
            a.r#type() == Some(&ActionTypeEnum::Forward)
                && a.forward_config().map_or(0, |f| f.target_groups().len()) > 1
        })
        .ok_or_else(|| {
            anyhow!("listener {listener_arn} has no forward action and no weighted forward rule")
        })
}

async fn group(client: &Client, arn: &str, weight: i32) -> anyhow::Result<Group> {
    let name = arn.split('/').nth(1).unwrap_or(arn).to_string();
    let health = client
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(sdk)
        .with_context(|| format!("reading the targets of {name}"))?;
    let mut targets = Vec::new();
    for d in health.target_health_descriptions() {
        let routable = d.target_health().and_then(|h| h.state()).is_none_or(|s| {
            !matches!(
                s,
                TargetHealthStateEnum::Draining | TargetHealthStateEnum::Unused
            )
        });
        let Some(t) = d.target() else { continue };
        let (Some(id), Some(port)) = (t.id(), t.port()) else {
            continue;
        };
        if let (true, Ok(ip), Ok(port)) = (routable, id.parse::<IpAddr>(), u16::try_from(port)) {
            targets.push(SocketAddr::new(ip, port));
        }
    }
    targets.sort();
    let attrs = client
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(sdk)
        .with_context(|| format!("reading the attributes of {name}"))?;
    let deregistration_delay = attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value()?.parse::<u64>().ok())
        .map_or(DEFAULT_DELAY, Duration::from_secs);
    Ok(Group {
        name,
        weight: u32::try_from(weight.max(0)).unwrap_or(0),
        targets,
        deregistration_delay,
    })
}
