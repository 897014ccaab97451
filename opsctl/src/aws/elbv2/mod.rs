//! ELBv2: finds the load balancer, the weighted listener and the blue/green target groups;
//! reads and writes the listener's forward weights (both the plain `TargetGroupArn` and the
//! `ForwardConfig` shape) — in its default action, or, when the default action refuses
//! (the Terraform's CloudFront-only listener answers 403), in the one listener rule that
//! forwards to several target groups; keeps opsctl's memory (previous weights, stable colour)
//! as listener tags; reports target health.
//!
//! This file finds the [`Topology`]; `aws/elbv2/listener` writes and reads it back (weights,
//! tags, target health).

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, anyhow, bail};
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum};
use serde::Serialize;

use super::SdkContext as _;
use crate::weights::{Color, Weights};

/// Listener tag holding the weights in force before the last change (`blue=100,green=0`).
pub const TAG_PREVIOUS: &str = "opsctl:previous-weights";
/// Listener tag holding the stable colour: the one that had 100 % when the current rollout
/// began (written by the first weight change away from a sole colour).
pub const TAG_STABLE: &str = "opsctl:stable";
/// The tag that says which colour a target group or ECS service is.
pub const TAG_COLOR: &str = "Color";

/// A blue or green target group.
#[derive(Debug, Clone, Serialize)]
pub struct TargetGroup {
    pub name: String,
    pub arn: String,
}

/// Everything opsctl needs to know about the traffic split, found from the ALB name.
#[derive(Debug, Clone)]
pub struct Topology {
    pub alb_name: String,
    pub listener_arn: String,
    pub listener_port: i32,
    /// The rule holding the weighted forward, when the default action does not forward.
    pub rule_arn: Option<String>,
    /// The default actions (or the rule's actions) as read, so a write changes only the forward action.
    actions: Vec<Action>,
    /// Index of the forward action within `actions`.
    forward: usize,
    pub target_groups: BTreeMap<Color, TargetGroup>,
    pub weights: Weights,
    pub previous: Option<Weights>,
    pub stable: Option<Color>,
}

impl Topology {
    pub fn target_group(&self, color: Color) -> &TargetGroup {
        // discover() fails unless both colours are present.
        &self.target_groups[&color]
    }
}

/// Finds ALB `alb_name`, its listener on `port` and the target groups tagged `Color`.
pub async fn discover(client: &Client, alb_name: &str, port: i32) -> anyhow::Result<Topology> {
    let lbs = client
        .describe_load_balancers()
        .names(alb_name)
        .send()
        .await;
    let lb = match lbs {
        Ok(out) => out.load_balancers.unwrap_or_default().into_iter().next(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(e).ctx(|| format!("describing load balancer {alb_name:?}")),
    }
    .ok_or_else(|| {
        anyhow!("load balancer {alb_name:?} not found (check --alb / OPSCTL_ALB and AWS_REGION)")
    })?;
    let lb_arn = lb.load_balancer_arn.clone().unwrap_or_default();

    let mut listeners = Vec::new();
    let mut marker = None;
    loop {
        let out = client
            .describe_listeners()
            .load_balancer_arn(&lb_arn)
            .set_marker(marker)
            .send()
            .await
            .ctx(|| format!("listing listeners of {alb_name:?}"))?;
        listeners.extend(out.listeners.unwrap_or_default());
        marker = out.next_marker;
        if marker.is_none() {
            break;
        }
    }
    let ports: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.port.map(|p| p.to_string()))
        .collect();
    let listener = listeners
        .into_iter()
        .find(|l| l.port == Some(port))
        .ok_or_else(|| {
            anyhow!(
                "load balancer {alb_name:?} has no listener on port {port} (ports: {}; see --listener-port)",
                if ports.is_empty() { "none".into() } else { ports.join(", ") }
            )
        })?;
    let listener_arn = listener.listener_arn.clone().unwrap_or_default();
    let mut actions = listener.default_actions.unwrap_or_default();
    let mut rule_arn = None;
    if !actions
        .iter()
        .any(|a| a.r#type == Some(ActionTypeEnum::Forward))
    {
        let (arn, rule_actions) = weighted_rule(client, &listener_arn).await?.ok_or_else(|| {
            anyhow!(
                "the listener on port {port} of {alb_name:?} has no forward default action and no rule forwarding to several target groups"
            )
        })?;
        rule_arn = Some(arn);
        actions = rule_actions;
    }
    let forward = actions
        .iter()
        .position(|a| a.r#type == Some(ActionTypeEnum::Forward))
        .ok_or_else(|| {
            anyhow!("the listener on port {port} of {alb_name:?} has no forward action")
        })?;
    let raw = forward_weights(&actions[forward]);

    let target_groups = colored_target_groups(client, &lb_arn, lb.vpc_id.as_deref(), &raw)
        .await
        .with_context(|| format!("finding the blue and green target groups of {alb_name:?}"))?;

    let weight_of = |c: Color| {
        raw.iter()
            .filter(|(arn, _)| *arn == target_groups[&c].arn)
            .map(|(_, w)| *w)
            .sum::<i32>()
    };
    if let Some((stray, _)) = raw
        .iter()
        .find(|(arn, w)| *w > 0 && !target_groups.values().any(|tg| &tg.arn == arn))
    {
        bail!(
            "the listener on port {port} forwards to {stray}, which is neither the blue nor the green target group"
        );
    }
    let weights = Weights::from_raw(weight_of(Color::Blue), weight_of(Color::Green))
        .ok_or_else(|| anyhow!("the listener on port {port} gives every target group weight 0"))?;

    let tags = tags_of(client, &listener_arn).await?;
    let previous = match tags.get(TAG_PREVIOUS) {
        Some(v) => {
            Some(Weights::from_tag(v).map_err(|e| anyhow!("listener tag {TAG_PREVIOUS}: {e}"))?)
        }
        None => None,
    };
    let stable = tags.get(TAG_STABLE).and_then(|v| Color::from_tag(v));

    Ok(Topology {
        alb_name: alb_name.to_string(),
        listener_arn,
        listener_port: port,
        rule_arn,
        actions,
        forward,
        target_groups,
        weights,
        previous,
        stable,
    })
}

/// The one non-default rule of the listener whose forward action spreads over several target
/// groups (the weighted blue/green forward), with its actions. Two such rules are ambiguous.
async fn weighted_rule(
    client: &Client,
    listener_arn: &str,
) -> anyhow::Result<Option<(String, Vec<Action>)>> {
    let mut found = Vec::new();
    let mut marker = None;
    loop {
        let out = client
            .describe_rules()
            .listener_arn(listener_arn)
            .set_marker(marker)
            .send()
            .await
            .ctx(|| format!("listing the rules of listener {listener_arn}"))?;
        for rule in out.rules.unwrap_or_default() {
            let actions = rule.actions.clone().unwrap_or_default();
            let weighted = actions
                .iter()
                .any(|a| a.r#type == Some(ActionTypeEnum::Forward) && forward_weights(a).len() > 1);
            if weighted && rule.is_default != Some(true) {
                found.push((rule.rule_arn.unwrap_or_default(), actions));
            }
        }
        marker = out.next_marker;
        if marker.is_none() {
            break;
        }
    }
    if found.len() > 1 {
        let arns: Vec<&str> = found.iter().map(|(arn, _)| arn.as_str()).collect();
        bail!(
            "listener {listener_arn} has several rules forwarding to several target groups: {}",
            arns.join(", ")
        );
    }
    Ok(found.pop())
}

/// (target group ARN, raw weight) of a forward action, whichever shape it has.
fn forward_weights(action: &Action) -> Vec<(String, i32)> {
    let tuples = action
        .forward_config
        .as_ref()
        .map(|f| f.target_groups())
        .unwrap_or_default();
    if !tuples.is_empty() {
        return tuples
            .iter()
            .filter_map(|t| Some((t.target_group_arn.clone()?, t.weight.unwrap_or(1))))
            .collect();
    }
    action
        .target_group_arn
        .iter()
        .map(|arn| (arn.clone(), 1))
        .collect()
}

/// The blue and green target groups: first those attached to the load balancer or named by
/// the listener; when a colour is still missing (a plain listener forwarding to one group),
/// every target group in the load balancer's VPC.
async fn colored_target_groups(
    client: &Client,
    lb_arn: &str,
    vpc_id: Option<&str>,
    listener_groups: &[(String, i32)],
) -> anyhow::Result<BTreeMap<Color, TargetGroup>> {
    let mut candidates: BTreeMap<String, String> = BTreeMap::new(); // arn -> name
    let attached = client
        .describe_target_groups()
        .load_balancer_arn(lb_arn)
        .send()
        .await;
    match attached {
        Ok(out) => {
            for tg in out.target_groups.unwrap_or_default() {
                if let (Some(arn), Some(name)) = (tg.target_group_arn, tg.target_group_name) {
                    candidates.insert(arn, name);
                }
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_target_group_not_found_exception()) => {}
        Err(e) => return Err(e).ctx(|| "listing the load balancer's target groups".into()),
    }
    for (arn, _) in listener_groups {
        candidates.entry(arn.clone()).or_default();
    }
    let mut found = by_color(client, &candidates).await?;
    if found.len() < Color::ALL.len() {
        let mut all = BTreeMap::new();
        let mut marker = None;
        loop {
            let out = client
                .describe_target_groups()
                .set_marker(marker)
                .send()
                .await
                .ctx(|| "listing target groups".into())?;
            for tg in out.target_groups.unwrap_or_default() {
                if vpc_id.is_some() && tg.vpc_id.as_deref() != vpc_id {
                    continue;
                }
                if let (Some(arn), Some(name)) = (tg.target_group_arn, tg.target_group_name) {
                    all.insert(arn, name);
                }
            }
            marker = out.next_marker;
            if marker.is_none() {
                break;
            }
        }
        for (color, tgs) in by_color(client, &all).await? {
            found.entry(color).or_insert(tgs);
        }
    }
    let mut result = BTreeMap::new();
    for color in Color::ALL {
        let mut tgs = found.remove(&color).unwrap_or_default();
        // Several of one colour: the one the listener forwards to wins, else it is ambiguous.
        if tgs.len() > 1 {
            tgs.retain(|tg| listener_groups.iter().any(|(arn, _)| *arn == tg.arn));
        }
        match tgs.len() {
            0 => bail!("no target group tagged {TAG_COLOR}={color}"),
            1 => {
                result.insert(color, tgs.remove(0));
            }
            _ => bail!(
                "several target groups tagged {TAG_COLOR}={color}: {}",
                tgs.iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    Ok(result)
}

/// Groups target groups by their `Color` tag; names missing from `arns` are looked up.
async fn by_color(
    client: &Client,
    arns: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<Color, Vec<TargetGroup>>> {
    let mut out: BTreeMap<Color, Vec<TargetGroup>> = BTreeMap::new();
    let keys: Vec<&String> = arns.keys().collect();
    // DescribeTags takes at most 20 ARNs.
    for chunk in keys.chunks(20) {
        let tags = client
            .describe_tags()
            .set_resource_arns(Some(chunk.iter().map(|s| s.to_string()).collect()))
            .send()
            .await
            .ctx(|| "reading target group tags".into())?;
        for desc in tags.tag_descriptions.unwrap_or_default() {
            let Some(arn) = desc.resource_arn else {
                continue;
            };
            let color = desc
                .tags
                .unwrap_or_default()
                .into_iter()
                .find(|t| t.key.as_deref() == Some(TAG_COLOR))
                .and_then(|t| t.value.as_deref().and_then(Color::from_tag));
            if let Some(color) = color {
                let mut name = arns.get(&arn).cloned().unwrap_or_default();
                if name.is_empty() {
                    // "arn:...:targetgroup/NAME/ID"
                    name = arn.split('/').nth(1).unwrap_or(&arn).to_string();
                }
                out.entry(color)
                    .or_default()
                    .push(TargetGroup { name, arn });
            }
        }
    }
    Ok(out)
}

/// Tags of one resource as a map.
async fn tags_of(client: &Client, arn: &str) -> anyhow::Result<HashMap<String, String>> {
    let out = client
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .ctx(|| format!("reading the tags of {arn}"))?;
    Ok(out
        .tag_descriptions
        .unwrap_or_default()
        .into_iter()
        .flat_map(|d| d.tags.unwrap_or_default())
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect())
}

mod listener;

pub use listener::{
    TargetHealth, current_weights, set_weights, tag_listener, target_health, untag_listener,
};
