//! The command line as clap types: global discovery flags (each with its `OPSCTL_*`
//! variable) and one struct per subcommand. Parsing validates weights and durations, so a
//! usage error exits 2 before any AWS call.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::weights::{Color, Weights};

/// Blue/green traffic control for chat-server on AWS.
///
/// Finds the load balancer by name, its listener by port, and the blue and green target
/// groups and ECS services by their `Color` tag. AWS credentials and region come from the
/// standard chain (AWS_PROFILE, AWS_REGION, ...); AWS_ENDPOINT_URL points it at a local
/// AWS-compatible endpoint.
///
/// Weight changes take a lease in the connections table (--table-prefix): one change at a
/// time; `rollback` and `shift --force` take it over, and the change they displaced stops.
///
/// Exit status: 0 done, 1 stopped (a check failed, refused, superseded by another change,
/// lease lost or busy, live connections did not follow in time), 2 usage or setup error
/// (bad flags, resources not found, an AWS error that changed nothing), 3 an AWS error
/// mid-shift after which the starting weights were restored, 4 an AWS error after which
/// they could not be restored.
#[derive(Debug, Parser)]
#[command(version, about, long_about, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "\
Examples:
  export OPSCTL_ALB=chat-alb OPSCTL_CLUSTER=chat OPSCTL_TABLE_PREFIX=chat-
  opsctl status
  opsctl deploy --color green --image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/chat:1.4.0
  opsctl shift 90/10
  opsctl shift green --step 25 --interval 30s --alarm chat-5xx
  opsctl shift 50/50 --rebalance=10s
  opsctl rollback
  opsctl undo";

/// Where the resources are and how to print; shared by every subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Resources and output")]
pub struct Global {
    /// Name of the application load balancer.
    #[arg(long, env = "OPSCTL_ALB", global = true)]
    pub alb: Option<String>,
    /// ECS cluster holding the blue and green services.
    #[arg(long, env = "OPSCTL_CLUSTER", global = true)]
    pub cluster: Option<String>,
    /// Port of the weighted listener.
    #[arg(
        long,
        env = "OPSCTL_LISTENER_PORT",
        default_value_t = 80,
        global = true
    )]
    pub listener_port: i32,
    /// DynamoDB table prefix; when set, live connections per colour are counted from
    /// `{prefix}connections`.
    #[arg(long, env = "OPSCTL_TABLE_PREFIX", global = true)]
    pub table_prefix: Option<String>,
    /// Print the result as JSON on stdout instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Weights, target health, ECS services and live connections per colour.
    Status,
    /// Per-target health of a colour (default: every colour with weight > 0); exit 1 if any
    /// target is not healthy or a colour has none.
    Health(HealthArgs),
    /// Set the listener's weights, at once or in steps, checking health and alarms first.
    Shift(ShiftArgs),
    /// Everything back on the stable colour (the one that had 100% before this rollout):
    /// scales it up if it was scaled to 0, waits for its tasks, sets 100% and moves every
    /// live connection over. Takes over from any change in progress.
    Rollback(RollbackArgs),
    /// Undo the last weight change: restore the weights in force before it (kept as a
    /// listener tag).
    Undo(UndoArgs),
    /// Register a new task-definition revision with IMAGE for a colour's service, update
    /// the service and wait until it is steady.
    Deploy(DeployArgs),
    /// `status`, redrawn every interval, for a projector. Ctrl-C stops it.
    Watch(WatchArgs),
    /// Print a shell completion script, e.g. `opsctl completions bash > /etc/bash_completion.d/opsctl`.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Colour to check; default every colour with weight > 0.
    #[arg(long, value_enum)]
    pub color: Option<Color>,
}

/// Gates every weight change passes unless `--force`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// CloudWatch alarm that must not be in ALARM before and during the change (repeatable).
    #[arg(long = "alarm", value_name = "NAME")]
    pub alarms: Vec<String>,
    /// Skip the checks (healthy targets, ECS running >= desired, alarms).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ShiftArgs {
    /// Target weights: `B/G` in percent (B+G = 100), or `blue` (= 100/0) / `green` (= 0/100).
    #[arg(value_name = "WEIGHTS")]
    pub weights: Weights,
    /// Move in steps of at most this many percent, checking before each step.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub step: Option<u8>,
    /// Pause between steps (e.g. 30s, 2m); the checks keep running during it.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    #[command(flatten)]
    pub gates: GateArgs,
    /// Show the plan and run the checks, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also move live connections: tasks shed their colour's excess with `reconnect`
    /// (reason `rebalance`) spread over WINDOW; exit 0 once each colour holds its share.
    #[arg(long, value_name = "WINDOW", num_args = 0..=1, require_equals = true,
          default_missing_value = "5s", value_parser = parse_duration)]
    pub rebalance: Option<Duration>,
    /// How long live connections may take to follow with --rebalance (exit 1 after).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub gates: GateArgs,
    /// Show what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Window over which tasks of the other colour send their connections over.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub window: Duration,
    /// Tasks to start when the stable colour's service is scaled to 0 (default: as many as
    /// the other colour runs, at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub tasks: Option<i32>,
    /// Give up (exit 1) when scaling up and moving connections take longer than this.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    #[command(flatten)]
    pub gates: GateArgs,
    /// Show what would be restored, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The colour whose service gets the new image.
    #[arg(long, value_enum)]
    pub color: Color,
    /// Container image URI for the new revision.
    #[arg(long, value_name = "URI")]
    pub image: String,
    /// Container to change; by default the one the service's target group sends traffic to
    /// (Terraform's `chat`, not the collector sidecar), or the only one.
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Give up waiting for a steady state after this long (exit 1).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Time between service polls while waiting.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between redraws.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Stop after this many redraws (default: until interrupted).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `30s`, `100ms`, `2m`, or `0`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 30s or 2m: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert!(parse_duration("soon").is_err());
    }
}
