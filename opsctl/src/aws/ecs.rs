//! ECS: finds the blue and green services of a cluster by their `Color` tag, reads their
//! counts, task definition and image, registers a task-definition revision with a new image
//! and points a service at it.

use std::collections::BTreeMap;

use anyhow::{Context as _, anyhow, bail};
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{ContainerDefinition, ServiceField, TaskDefinition, TaskDefinitionField};
use serde::Serialize;

use super::SdkContext as _;
use super::elbv2::TAG_COLOR;
use crate::weights::Color;

/// One colour's ECS service as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// Task definition ARN the service runs.
    pub task_definition: String,
    /// `family:revision`, the short form people read.
    pub revision: String,
    /// Container images of that task definition.
    pub images: Vec<String>,
    /// Deployments in flight; 1 when steady.
    pub deployments: usize,
    /// Rollout state of the primary deployment (`COMPLETED`, `IN_PROGRESS`, `FAILED`).
    pub rollout_state: Option<String>,
}

impl Service {
    /// Why the rollout to `task_definition` has failed, if it has: ECS marked the primary
    /// deployment `FAILED`, or the deployment circuit breaker rolled the service back to
    /// another revision (the rollback becomes the primary deployment).
    pub fn rollout_failure(&self, task_definition: &str) -> Option<String> {
        if self.rollout_state.as_deref() == Some("FAILED") {
            return Some(format!("the rollout of {} FAILED", self.revision));
        }
        (self.task_definition != task_definition).then(|| {
            format!(
                "the service now runs {}, not {} (the deployment circuit breaker rolled it back, or another deploy replaced it)",
                self.revision,
                short_revision(task_definition)
            )
        })
    }

    /// ECS has finished rolling out: one deployment, as many running as desired.
    pub fn steady(&self) -> bool {
        self.deployments <= 1
            && self.running >= self.desired
            && self
                .rollout_state
                .as_deref()
                .is_none_or(|s| s == "COMPLETED")
    }
}

/// `family:revision` from a task-definition ARN.
fn short_revision(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// The family of a task-definition ARN (or `family:revision`): naming it alone means its
/// newest ACTIVE revision.
pub fn family_of(arn: &str) -> String {
    let revision = short_revision(arn);
    match revision.rsplit_once(':') {
        Some((family, n)) if n.chars().all(|c| c.is_ascii_digit()) => family.to_string(),
        _ => revision,
    }
}

/// The services of `cluster` tagged `Color`, with their images.
pub async fn services_by_color(
    client: &Client,
    cluster: &str,
) -> anyhow::Result<BTreeMap<Color, Service>> {
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let out = client
            .list_services()
            .cluster(cluster)
            .set_next_token(token)
            .send()
            .await
            .ctx(|| {
                format!(
                    "listing services of ECS cluster {cluster:?} (check --cluster / OPSCTL_CLUSTER)"
                )
            })?;
        arns.extend(out.service_arns.unwrap_or_default());
        token = out.next_token;
        if token.is_none() {
            break;
        }
    }
    let mut found: BTreeMap<Color, Vec<aws_sdk_ecs::types::Service>> = BTreeMap::new();
    // DescribeServices takes at most 10 services.
    for chunk in arns.chunks(10) {
        let out = client
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .include(ServiceField::Tags)
            .send()
            .await
            .ctx(|| format!("describing services of ECS cluster {cluster:?}"))?;
        for svc in out.services.unwrap_or_default() {
            let color = svc
                .tags()
                .iter()
                .find(|t| t.key() == Some(TAG_COLOR))
                .and_then(|t| t.value().and_then(Color::from_tag));
            if let Some(color) = color {
                found.entry(color).or_default().push(svc);
            }
        }
    }
    let mut result = BTreeMap::new();
    for color in Color::ALL {
        let mut svcs = found.remove(&color).unwrap_or_default();
        svcs.retain(|s| s.status() != Some("INACTIVE"));
        match svcs.len() {
            0 => bail!("ECS cluster {cluster:?} has no service tagged {TAG_COLOR}={color}"),
            1 => {
                let svc = svcs.remove(0);
                result.insert(color, to_service(client, svc).await?);
            }
            _ => bail!(
                "ECS cluster {cluster:?} has several services tagged {TAG_COLOR}={color}: {}",
                svcs.iter()
                    .filter_map(|s| s.service_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    Ok(result)
}

/// Re-reads one service by name.
pub async fn service(client: &Client, cluster: &str, name: &str) -> anyhow::Result<Service> {
    let out = client
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
        .ctx(|| format!("describing ECS service {name:?}"))?;
    let svc = out
        .services
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("ECS service {name:?} not found in cluster {cluster:?}"))?;
    to_service(client, svc).await
}

async fn to_service(client: &Client, svc: aws_sdk_ecs::types::Service) -> anyhow::Result<Service> {
    let task_definition = svc.task_definition().unwrap_or_default().to_string();
    let images = if task_definition.is_empty() {
        Vec::new()
    } else {
        let (td, _) = describe_task_definition(client, &task_definition).await?;
        td.container_definitions()
            .iter()
            .filter_map(|c| c.image().map(str::to_string))
            .collect()
    };
    let primary = svc
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    Ok(Service {
        name: svc.service_name().unwrap_or_default().to_string(),
        desired: svc.desired_count,
        running: svc.running_count,
        pending: svc.pending_count,
        revision: short_revision(&task_definition),
        task_definition,
        images,
        deployments: svc.deployments().len(),
        rollout_state: primary
            .and_then(|d| d.rollout_state())
            .map(|s| s.as_str().to_string()),
    })
}

async fn describe_task_definition(
    client: &Client,
    arn: &str,
) -> anyhow::Result<(TaskDefinition, Vec<aws_sdk_ecs::types::Tag>)> {
    let out = client
        .describe_task_definition()
        .task_definition(arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .ctx(|| format!("describing task definition {arn}"))?;
    let td = out
        .task_definition
        .ok_or_else(|| anyhow!("task definition {arn} not found"))?;
    Ok((td, out.tags.unwrap_or_default()))
}

/// The container (name, port) the service's target group sends traffic to, as the service's
/// load balancer block names it (Terraform's `chat`); `None` for a service without one.
pub async fn serving_container(
    client: &Client,
    cluster: &str,
    name: &str,
) -> anyhow::Result<Option<(String, i32)>> {
    let out = client
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
        .ctx(|| format!("describing ECS service {name:?}"))?;
    Ok(out
        .services
        .unwrap_or_default()
        .into_iter()
        .next()
        .and_then(|s| s.load_balancers.unwrap_or_default().into_iter().next())
        .and_then(|lb| Some((lb.container_name?, lb.container_port?))))
}

/// Which container of a task definition gets the new image: the one named with `--container`;
/// else the one serving the target group (by name, then by port mapping), so the sidecars
/// (Terraform's aws-otel-collector) keep theirs; else the only container.
fn pick_container(
    containers: &[ContainerDefinition],
    explicit: Option<&str>,
    serving: Option<(&str, i32)>,
) -> Result<usize, String> {
    let names: Vec<&str> = containers.iter().filter_map(|c| c.name()).collect();
    if let Some(want) = explicit {
        return containers
            .iter()
            .position(|c| c.name() == Some(want))
            .ok_or_else(|| {
                format!(
                    "has no container {want:?} (containers: {})",
                    names.join(", ")
                )
            });
    }
    if let Some((name, port)) = serving {
        let by_name = containers.iter().position(|c| c.name() == Some(name));
        let by_port = || {
            containers.iter().position(|c| {
                c.port_mappings()
                    .iter()
                    .any(|p| p.container_port() == Some(port))
            })
        };
        if let Some(i) = by_name.or_else(by_port) {
            return Ok(i);
        }
    }
    match containers.len() {
        1 => Ok(0),
        n => Err(format!(
            "has {n} containers ({}) and none serves the target group: name one with --container",
            names.join(", ")
        )),
    }
}

/// Registers a new revision of `task_definition` with `image` in one container (see
/// [`pick_container`]) and returns its ARN. Everything else is copied as it was.
pub async fn register_with_image(
    client: &Client,
    task_definition: &str,
    container: Option<&str>,
    serving: Option<(&str, i32)>,
    image: &str,
) -> anyhow::Result<String> {
    let (td, tags) = describe_task_definition(client, task_definition).await?;
    let mut containers = td.container_definitions().to_vec();
    let index = pick_container(&containers, container, serving)
        .map_err(|e| anyhow!("task definition {} {e}", short_revision(task_definition)))?;
    containers[index].image = Some(image.to_string());
    let out = client
        .register_task_definition()
        .set_family(td.family)
        .set_task_role_arn(td.task_role_arn)
        .set_execution_role_arn(td.execution_role_arn)
        .set_network_mode(td.network_mode)
        .set_container_definitions(Some(containers))
        .set_volumes(td.volumes)
        .set_placement_constraints(td.placement_constraints)
        .set_requires_compatibilities(td.requires_compatibilities)
        .set_cpu(td.cpu)
        .set_memory(td.memory)
        .set_pid_mode(td.pid_mode)
        .set_ipc_mode(td.ipc_mode)
        .set_proxy_configuration(td.proxy_configuration)
        .set_ephemeral_storage(td.ephemeral_storage)
        .set_runtime_platform(td.runtime_platform)
        .set_tags((!tags.is_empty()).then_some(tags))
        .send()
        .await
        .ctx(|| {
            format!(
                "registering a new revision of {}",
                short_revision(task_definition)
            )
        })?;
    out.task_definition
        .and_then(|t| t.task_definition_arn)
        .context("RegisterTaskDefinition returned no ARN")
}

/// Points `service` at `task_definition`, starting a deployment.
pub async fn update_service(
    client: &Client,
    cluster: &str,
    service: &str,
    task_definition: &str,
) -> anyhow::Result<()> {
    client
        .update_service()
        .cluster(cluster)
        .service(service)
        .task_definition(task_definition)
        .send()
        .await
        .ctx(|| {
            format!(
                "updating ECS service {service:?} to {}",
                short_revision(task_definition)
            )
        })?;
    Ok(())
}

/// Sets the desired task count of `service` (rollback scales a stable colour back up).
pub async fn set_desired(
    client: &Client,
    cluster: &str,
    service: &str,
    desired: i32,
) -> anyhow::Result<()> {
    client
        .update_service()
        .cluster(cluster)
        .service(service)
        .desired_count(desired)
        .send()
        .await
        .ctx(|| format!("scaling ECS service {service:?} to {desired} tasks"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::PortMapping;

    fn container(name: &str, port: Option<i32>) -> ContainerDefinition {
        let mut c = ContainerDefinition::builder().name(name).image("x");
        if let Some(port) = port {
            c = c.port_mappings(PortMapping::builder().container_port(port).build());
        }
        c.build()
    }

    /// Terraform's task definition: the collector sidecar first or second, `chat` serving 8080.
    #[test]
    fn deploy_picks_the_container_serving_the_target_group() {
        let sidecar_first = [
            container("aws-otel-collector", None),
            container("chat", Some(8080)),
        ];
        assert_eq!(
            pick_container(&sidecar_first, None, Some(("chat", 8080))),
            Ok(1)
        );
        // Renamed in the task definition but still serving the port.
        assert_eq!(
            pick_container(&sidecar_first, None, Some(("web", 8080))),
            Ok(1)
        );
        assert_eq!(
            pick_container(
                &sidecar_first,
                Some("aws-otel-collector"),
                Some(("chat", 8080))
            ),
            Ok(0)
        );
        assert!(pick_container(&sidecar_first, None, None).is_err());
        assert_eq!(pick_container(&sidecar_first[1..], None, None), Ok(0));
    }

    fn service(td: &str, rollout: &str) -> Service {
        Service {
            name: "chat-green".into(),
            desired: 1,
            running: 1,
            pending: 0,
            task_definition: td.into(),
            revision: short_revision(td),
            images: vec![],
            deployments: 2,
            rollout_state: Some(rollout.into()),
        }
    }

    #[test]
    fn a_failed_or_rolled_back_rollout_is_a_failure_at_once() {
        let new = "arn:aws:ecs:us-east-1:1:task-definition/chat-green:3";
        let old = "arn:aws:ecs:us-east-1:1:task-definition/chat-green:2";
        assert_eq!(service(new, "IN_PROGRESS").rollout_failure(new), None);
        assert!(service(new, "FAILED").rollout_failure(new).is_some());
        // The circuit breaker's rollback deployment is the primary one, in progress.
        assert!(service(old, "IN_PROGRESS").rollout_failure(new).is_some());
    }

    #[test]
    fn short_revision_is_family_and_number() {
        assert_eq!(
            short_revision("arn:aws:ecs:us-east-1:123:task-definition/chat-blue:7"),
            "chat-blue:7"
        );
    }

    #[test]
    fn the_family_is_the_revision_without_its_number() {
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:123:task-definition/chat-blue:7"),
            "chat-blue"
        );
        assert_eq!(family_of("chat-green:12"), "chat-green");
        assert_eq!(family_of("chat-green"), "chat-green");
    }
}
