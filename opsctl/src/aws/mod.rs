//! The AWS side: one module per service opsctl talks to, and the clients built once from the
//! standard configuration chain (AWS_PROFILE, AWS_REGION, credentials, AWS_ENDPOINT_URL).
//!
//! Layout:
//! - `elbv2`: load balancer, listener, weights, listener tags, target health.
//! - `ecs`: blue/green services, task definitions, deployments.
//! - `cloudwatch`: alarm states for the shift gates.
//! - `dynamodb`: live connections per colour (connection records).
//! - `control`: the lease, the control record tasks watch, the fleet heartbeats.

pub mod cloudwatch;
pub mod control;
pub mod dynamodb;
pub mod ecs;
pub mod elbv2;

use std::error::Error;
use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

/// One client per service, sharing one resolved configuration.
pub struct Clients {
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Clients {
    /// Loads the standard chain; every call is bounded so a dead endpoint cannot hang a demo.
    pub async fn load() -> anyhow::Result<Clients> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(20))
            .operation_timeout(Duration::from_secs(60))
            .build();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .load()
            .await;
        if config.region().is_none() {
            bail!(
                "no AWS region configured: set AWS_REGION or a region in the AWS_PROFILE profile"
            );
        }
        Ok(Clients {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            ecs: aws_sdk_ecs::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
        })
    }
}

/// An SDK error as one readable chain: the SDK's own `Display` says only "service error",
/// its context display includes the service's code and message.
pub(crate) fn sdk_error<E: Error + Send + Sync + 'static>(err: E) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext(&err)
    )
}

/// Adds `what` as context to an SDK result.
pub(crate) trait SdkContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E: Error + Send + Sync + 'static> SdkContext<T> for Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(sdk_error).with_context(what)
    }
}
