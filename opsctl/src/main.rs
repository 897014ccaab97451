//! opsctl: the operator's CLI for blue/green traffic control of chat-server on AWS.
//!
//! It moves the ALB listener's weights between the blue and green target groups, checks
//! target health, ECS task counts and CloudWatch alarms before each move, rolls back, and
//! deploys a new image to one colour. Everything is found from the load balancer name, the
//! listener port, the ECS cluster and `Color` tags.
//!
//! Layout (the one map, checked by `testkit::house`):
//! - [`cli`]: clap types; validation of weights and durations at parse time (exit 2).
//! - [`weights`]: colours, weights, step plans, the tag form (pure, unit-tested).
//! - [`context`]: global flags + AWS clients + output settings for one run.
//! - [`aws`]: one module per AWS service: `aws/elbv2` (finding the topology) with
//!   `aws/elbv2/listener` (weights, tags, target health), `aws/ecs`, `aws/cloudwatch`,
//!   `aws/dynamodb` (connection counts), `aws/control` (the rollout items, encoded by
//!   `chat_contract`).
//! - [`gates`]: the checks a weight change must pass (target health, task readiness, alarms).
//! - [`lease`]: one weight change at a time; the emergency paths take it over.
//! - [`traffic`]: the one place weights are written (steps, restore, before -> after).
//! - [`converge`]: waiting for live connections to follow the weights.
//! - [`output`]: the output settings and drawing; `output/reports` (status, health) and
//!   `output/changes` (weight changes, deploys).
//! - [`cmd`]: one module per subcommand: `cmd/status`, `cmd/health`, `cmd/shift`,
//!   `cmd/rollback`, `cmd/undo`, `cmd/deploy`, `cmd/watch`, `cmd/completions`.
//!
//! Exit status: 0 done, 1 stopped (a check failed, refused, superseded, lease lost or busy,
//! connections did not follow), 2 usage or setup error or an AWS error that changed nothing
//! (`main` prints the error chain with `{:#}`), 3 an AWS error mid-shift after which the
//! starting weights were restored, 4 an AWS error after which they could not be.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod aws;
mod cli;
mod cmd;
mod context;
mod converge;
mod gates;
mod lease;
mod output;
mod traffic;
mod weights;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::Context;

/// Exit status of a failed check (unhealthy, alarm, refused, not steady in time).
pub const CHECK_FAILED: u8 = 1;
/// Exit status of a usage or setup error, or an AWS error that changed nothing.
pub const USAGE_ERROR: u8 = 2;
/// Exit status of an AWS error mid-change after which the starting weights were restored.
pub const ERROR_RESTORED: u8 = 3;
/// Exit status of an AWS error after which the starting weights could not be restored.
pub const FAILED: u8 = 4;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // `opsctl status | head -1` is not an error.
            let broken_pipe = err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("opsctl: {err:#}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Completions(args) = &cli.command {
        return cmd::completions::run(args);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let ctx = Context::new(cli.global).await?;
        match &cli.command {
            Command::Status => cmd::status::run(&ctx).await,
            Command::Health(args) => cmd::health::run(&ctx, args).await,
            Command::Shift(args) => cmd::shift::run(&ctx, args).await,
            Command::Rollback(args) => cmd::rollback::run(&ctx, args).await,
            Command::Undo(args) => cmd::undo::run(&ctx, args).await,
            Command::Deploy(args) => cmd::deploy::run(&ctx, args).await,
            Command::Watch(args) => cmd::watch::run(&ctx, args).await,
            Command::Completions(args) => cmd::completions::run(args),
        }
    })
}

#[cfg(test)]
mod house {
    #[test]
    fn the_crate_keeps_the_house_rules() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let problems = testkit::house::problems(&src, "main.rs");
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
