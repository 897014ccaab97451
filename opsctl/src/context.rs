//! What every AWS-facing command starts from: the validated global flags, the AWS clients
//! and the output settings, with helpers that turn a missing flag into a usage error
//! naming the flag and its variable.

use anyhow::anyhow;

use crate::aws::Clients;
use crate::aws::ecs::{self, Service};
use crate::aws::elbv2::{self, Topology};
use crate::cli::Global;
use crate::output::Output;
use crate::weights::Color;
use std::collections::BTreeMap;

pub struct Context {
    pub clients: Clients,
    pub global: Global,
    pub out: Output,
}

impl Context {
    pub async fn new(global: Global) -> anyhow::Result<Context> {
        let out = Output::new(global.json);
        let clients = Clients::load().await?;
        Ok(Context {
            clients,
            global,
            out,
        })
    }

    pub fn alb(&self) -> anyhow::Result<&str> {
        self.global
            .alb
            .as_deref()
            .ok_or_else(|| anyhow!("no load balancer named: pass --alb NAME or set OPSCTL_ALB"))
    }

    pub fn cluster(&self) -> anyhow::Result<&str> {
        self.global.cluster.as_deref().ok_or_else(|| {
            anyhow!("no ECS cluster named: pass --cluster NAME or set OPSCTL_CLUSTER")
        })
    }

    /// The table holding the lease, the control record and the fleet heartbeats (the
    /// connections table): weight changes need it.
    pub fn lease_table(&self) -> anyhow::Result<String> {
        self.global
            .table_prefix
            .as_deref()
            .map(crate::aws::dynamodb::connections_table)
            .ok_or_else(|| {
                anyhow!(
                    "weight changes take a lease in the connections table: pass --table-prefix PREFIX or set OPSCTL_TABLE_PREFIX (Terraform output opsctl_environment)"
                )
            })
    }

    /// Load balancer, listener, target groups and current weights.
    pub async fn topology(&self) -> anyhow::Result<Topology> {
        elbv2::discover(&self.clients.elb, self.alb()?, self.global.listener_port).await
    }

    /// The blue and green ECS services.
    pub async fn services(&self) -> anyhow::Result<BTreeMap<Color, Service>> {
        ecs::services_by_color(&self.clients.ecs, self.cluster()?).await
    }
}
