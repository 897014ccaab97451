//! Changing and reading back the traffic split [`Topology`] describes: the forward weights
//! (in the default action or the weighted rule), opsctl's listener tags, target health.

use anyhow::anyhow;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, Tag, TargetGroupStickinessConfig, TargetGroupTuple,
};
use serde::Serialize;

use super::super::SdkContext as _;
use super::{TargetGroup, Topology, forward_weights};
use crate::weights::{Color, Weights};

/// Writes `weights` into the listener's forward action (always as a `ForwardConfig`),
/// keeping its other actions and its stickiness settings.
pub async fn set_weights(client: &Client, topo: &Topology, weights: Weights) -> anyhow::Result<()> {
    let old = &topo.actions[topo.forward];
    let stickiness = old
        .forward_config
        .as_ref()
        .and_then(|f| f.target_group_stickiness_config.clone())
        .unwrap_or_else(|| {
            TargetGroupStickinessConfig::builder()
                .enabled(false)
                .build()
        });
    let tuples = Color::ALL
        .into_iter()
        .map(|c| {
            TargetGroupTuple::builder()
                .target_group_arn(&topo.target_group(c).arn)
                .weight(i32::from(weights.get(c)))
                .build()
        })
        .collect();
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .set_order(old.order)
        .forward_config(
            ForwardActionConfig::builder()
                .set_target_groups(Some(tuples))
                .target_group_stickiness_config(stickiness)
                .build(),
        )
        .build();
    let mut actions = topo.actions.clone();
    actions[topo.forward] = forward;
    if let Some(rule_arn) = &topo.rule_arn {
        client
            .modify_rule()
            .rule_arn(rule_arn)
            .set_actions(Some(actions))
            .send()
            .await
            .ctx(|| format!("setting weights {weights} on rule {rule_arn}"))?;
        return Ok(());
    }
    client
        .modify_listener()
        .listener_arn(&topo.listener_arn)
        .set_default_actions(Some(actions))
        .send()
        .await
        .ctx(|| {
            format!(
                "setting weights {weights} on listener {}",
                topo.listener_arn
            )
        })?;
    Ok(())
}

/// Sets listener tags (opsctl's memory between runs).
pub async fn tag_listener(
    client: &Client,
    topo: &Topology,
    tags: &[(&str, String)],
) -> anyhow::Result<()> {
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(v).build())
        .collect();
    client
        .add_tags()
        .resource_arns(&topo.listener_arn)
        .set_tags(Some(tags))
        .send()
        .await
        .ctx(|| format!("tagging listener {}", topo.listener_arn))?;
    Ok(())
}

/// Removes listener tags.
pub async fn untag_listener(client: &Client, topo: &Topology, keys: &[&str]) -> anyhow::Result<()> {
    client
        .remove_tags()
        .resource_arns(&topo.listener_arn)
        .set_tag_keys(Some(keys.iter().map(|k| k.to_string()).collect()))
        .send()
        .await
        .ctx(|| format!("untagging listener {}", topo.listener_arn))?;
    Ok(())
}

/// One registered target and its health.
#[derive(Debug, Clone, Serialize)]
pub struct TargetHealth {
    pub id: String,
    pub port: Option<i32>,
    /// `healthy`, `unhealthy`, `initial`, `draining`, `unused`, `unavailable`.
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
}

impl TargetHealth {
    pub fn healthy(&self) -> bool {
        self.state == "healthy"
    }
}

/// Health of every target registered in `tg`.
pub async fn target_health(client: &Client, tg: &TargetGroup) -> anyhow::Result<Vec<TargetHealth>> {
    let out = client
        .describe_target_health()
        .target_group_arn(&tg.arn)
        .send()
        .await
        .ctx(|| format!("reading target health of {}", tg.name))?;
    Ok(out
        .target_health_descriptions
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let health = d.target_health;
            TargetHealth {
                id: d
                    .target
                    .as_ref()
                    .and_then(|t| t.id.clone())
                    .unwrap_or_default(),
                port: d.target.as_ref().and_then(|t| t.port),
                state: health
                    .as_ref()
                    .and_then(|h| h.state.as_ref())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "unknown".into()),
                reason: health
                    .as_ref()
                    .and_then(|h| h.reason.as_ref())
                    .map(|r| r.as_str().to_string()),
                description: health.and_then(|h| h.description),
            }
        })
        .collect())
}

/// The listener's weights now (one DescribeListeners call, or DescribeRules when the weighted
/// forward sits in a rule behind the origin check): what a stepped shift re-reads before each
/// step to notice that someone else changed them.
pub async fn current_weights(client: &Client, topo: &Topology) -> anyhow::Result<Weights> {
    let actions = match &topo.rule_arn {
        Some(rule_arn) => client
            .describe_rules()
            .rule_arns(rule_arn)
            .send()
            .await
            .ctx(|| format!("reading rule {rule_arn}"))?
            .rules
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("rule {rule_arn} is gone"))?
            .actions
            .unwrap_or_default(),
        None => client
            .describe_listeners()
            .listener_arns(&topo.listener_arn)
            .send()
            .await
            .ctx(|| format!("reading listener {}", topo.listener_arn))?
            .listeners
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("listener {} is gone", topo.listener_arn))?
            .default_actions
            .unwrap_or_default(),
    };
    let forward = actions
        .iter()
        .find(|a| a.r#type == Some(ActionTypeEnum::Forward))
        .ok_or_else(|| anyhow!("listener {} has no forward action", topo.listener_arn))?;
    let raw = forward_weights(forward);
    let weight_of = |c: Color| {
        raw.iter()
            .filter(|(arn, _)| *arn == topo.target_group(c).arn)
            .map(|(_, w)| *w)
            .sum::<i32>()
    };
    Weights::from_raw(weight_of(Color::Blue), weight_of(Color::Green)).ok_or_else(|| {
        anyhow!(
            "listener {} gives every target group weight 0",
            topo.listener_arn
        )
    })
}
