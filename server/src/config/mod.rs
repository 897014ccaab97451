//! One `Config`, parsed from flags and their environment variables, and validated once at
//! start into the typed [`Settings`] the server runs with, before any port is bound. A bad
//! value exits 2 with a line naming the variable. This file holds the flags; `config/settings`
//! the typed settings, one part per subsystem, and the checks that make them. Every
//! subcommand validates the parts it uses.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::throttle::Rate;

mod settings;

pub use settings::{
    ConnectionSettings, DynamoSettings, HttpSettings, Listeners, RateLimits, RedisSettings,
    Settings, StoreSettings, TaskSettings, TokenSettings, UploadSettings,
};

/// A lean WebSocket chat server. With no configuration it runs a single-node chat on an
/// embedded on-disk store; with DynamoDB and Redis configured, many tasks act as one chat.
#[derive(Debug, Parser)]
#[command(name = "chat-server", version = crate::build_info::LONG_VERSION, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Create the DynamoDB tables exactly as the Terraform declares them (idempotent).
    CreateTables {
        /// Print the table schema as JSON instead of creating anything.
        #[arg(long)]
        print_schema: bool,
    },
    /// Print a moderator credential signed with this deployment's token secret
    /// (`CHAT_TOKEN_SECRET`, or the one in `CHAT_DATA_DIR`): open the web client with
    /// `#moderator=<credential>` to delete messages and mute users.
    ModeratorToken {
        /// The moderator's name, logged with each action (nickname rules: 2-15 characters).
        #[arg(long)]
        name: String,
        /// Seconds the credential is valid (at most 604800, 7 days).
        #[arg(long, default_value_t = 43_200)]
        ttl_secs: u64,
    },
    /// Exit 0 when the server's /healthz answers 200 (the container health check).
    Healthcheck {
        /// URL of the health endpoint.
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
}

/// Everything the server reads from its environment.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Public HTTP + WebSocket address.
    #[arg(long, env = "CHAT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Metrics/admin address; never exposed through the load balancer.
    #[arg(long, env = "CHAT_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,

    /// Embedded store location (used only without DynamoDB).
    #[arg(long, env = "CHAT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Use DynamoDB with tables `{prefix}messages`, `{prefix}connections`, `{prefix}user-counter`.
    #[arg(long, env = "CHAT_DYNAMODB_TABLE_PREFIX")]
    pub dynamodb_table_prefix: Option<String>,

    /// Milliseconds one DynamoDB call may take, SDK retries included, before it fails
    /// (`send` then answers `unavailable`).
    #[arg(long, env = "CHAT_DYNAMODB_TIMEOUT_MS", default_value_t = 3000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub dynamodb_timeout_ms: u64,

    /// Use Redis for cross-task fanout and presence (`redis://` or `rediss://`; a Redis
    /// Cluster, e.g. ElastiCache in cluster mode: `redis+cluster://` or `rediss+cluster://`).
    #[arg(long, env = "CHAT_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Seconds a task's Redis presence outlives its last heartbeat (beats every third of it):
    /// a task that dies without a word drops out of every room within this time.
    #[arg(long, env = "CHAT_PRESENCE_TTL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=60))]
    pub presence_ttl_secs: u64,

    /// Deployment colour shown to clients and operators.
    #[arg(long, env = "CHAT_COLOR", default_value = "local")]
    pub color: String,

    /// HMAC key for guest tokens; required with DynamoDB, generated into the data dir otherwise.
    #[arg(long, env = "CHAT_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,

    /// Comma-separated Origins allowed to open a WebSocket; `*` allows any. Default: same host.
    #[arg(long, env = "CHAT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Comma-separated origins allowed to embed the page (`/`, `/room/{room}`) in a frame besides
    /// its own, e.g. `https://conf.example.com,https://*.example.org`: sent as
    /// `Content-Security-Policy: frame-ancestors 'self' …`. Default: none.
    #[arg(long, env = "CHAT_FRAME_ANCESTORS", value_delimiter = ',')]
    pub frame_ancestors: Vec<String>,

    /// Seconds over which a draining task spreads its 1012 closes.
    #[arg(long, env = "CHAT_DRAIN_SECS", default_value_t = 10)]
    pub drain_secs: u64,

    /// Task id shown in /version and used for presence; default: host name and process id.
    #[arg(long, env = "CHAT_TASK_ID")]
    pub task_id: Option<String>,

    /// Frames per second a connection may send, sustained.
    #[arg(long, env = "CHAT_RATE_PER_SEC", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_per_sec: u32,

    /// Frames a connection may send in a burst above the sustained rate.
    #[arg(long, env = "CHAT_RATE_BURST", default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_burst: u32,

    /// Frames a connection's outbound queue holds before the client counts as too slow (closed 1008).
    #[arg(long, env = "CHAT_OUTBOUND_QUEUE", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(8..))]
    pub outbound_queue: u32,

    /// S3 bucket for shared images (browsers upload to it through presigned URLs); unset =
    /// files under `{CHAT_DATA_DIR}/uploads`, served by chat-server.
    #[arg(long, env = "CHAT_UPLOADS_BUCKET")]
    pub uploads_bucket: Option<String>,

    /// Key prefix of images in the bucket.
    #[arg(long, env = "CHAT_UPLOADS_PREFIX", default_value = "uploads/")]
    pub uploads_prefix: String,

    /// Public URL the bucket's images are served from, ending at the prefix (e.g.
    /// `https://d123.cloudfront.net/uploads/`); required with `CHAT_UPLOADS_BUCKET`.
    #[arg(long, env = "CHAT_UPLOADS_PUBLIC_URL")]
    pub uploads_public_url: Option<String>,

    /// Bytes a connection's outbound queue holds before the client counts as too slow (closed
    /// 1008); at least twice the largest `joined` frame.
    #[arg(long, env = "CHAT_OUTBOUND_QUEUE_BYTES", default_value_t = 4 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(2 * crate::protocol::MAX_JOIN_BYTES as u64..))]
    pub outbound_queue_bytes: u64,

    /// Seconds between the server's pings; a connection silent (not even a pong) for three
    /// intervals is closed 1008.
    #[arg(long, env = "CHAT_PING_INTERVAL_SECS", default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub ping_interval_secs: u64,

    /// Seconds a guest token is valid; the web client renews it at half its life.
    #[arg(long, env = "CHAT_TOKEN_TTL_SECS", default_value_t = 12 * 3600, value_parser = clap::value_parser!(u64).range(2..=30 * 24 * 3600))]
    pub token_ttl_secs: u64,

    /// The secret being rotated out: tokens it signed still verify for the overlap.
    #[arg(long, env = "CHAT_TOKEN_SECRET_PREVIOUS", hide_env_values = true)]
    pub token_secret_previous: Option<String>,

    /// Seconds from the task's start during which CHAT_TOKEN_SECRET_PREVIOUS tokens verify;
    /// default: the token TTL (every old token has expired by then).
    #[arg(long, env = "CHAT_TOKEN_PREVIOUS_OVERLAP_SECS")]
    pub token_previous_overlap_secs: Option<u64>,

    /// Proxies in front of the task that append to X-Forwarded-For (0: none, the peer address
    /// is the client, as on the single-node default; 1: the ALB; 2: CloudFront then the ALB).
    /// Terraform sets it for what it deploys.
    #[arg(long, env = "CHAT_TRUSTED_PROXIES", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub trusted_proxies: u8,

    /// New guests (`POST /api/session` without a valid token) per client address:
    /// `PER_MINUTE:BURST`.
    #[arg(long, env = "CHAT_SESSION_LIMIT_ADDR", default_value = "300:100", value_parser = parse_rate)]
    pub session_limit_addr: Rate,

    /// New guests per task, all addresses together: `PER_MINUTE:BURST`.
    #[arg(long, env = "CHAT_SESSION_LIMIT_TASK", default_value = "3000:300", value_parser = parse_rate)]
    pub session_limit_task: Rate,

    /// History and room reads over HTTP per client address: `PER_MINUTE:BURST`.
    #[arg(long, env = "CHAT_HISTORY_LIMIT_ADDR", default_value = "600:100", value_parser = parse_rate)]
    pub history_limit_addr: Rate,

    /// WebSocket connections opened per client address: `PER_MINUTE:BURST`.
    #[arg(long, env = "CHAT_CONNECT_LIMIT_ADDR", default_value = "600:200", value_parser = parse_rate)]
    pub connect_limit_addr: Rate,

    /// History and room reads over HTTP per task: `PER_MINUTE:BURST`.
    #[arg(long, env = "CHAT_HISTORY_LIMIT_TASK", default_value = "6000:600", value_parser = parse_rate)]
    pub history_limit_task: Rate,

    /// Image upload slots (`POST /api/uploads`) per guest: `PER_MINUTE:BURST`.
    #[arg(long, env = "CHAT_UPLOAD_LIMIT_USER", default_value = "20:10", value_parser = parse_rate)]
    pub upload_limit_user: Rate,

    /// Image upload slots per task, all guests together (each up to 5 MiB of storage):
    /// `PER_MINUTE:BURST`.
    #[arg(long, env = "CHAT_UPLOAD_LIMIT_TASK", default_value = "120:30", value_parser = parse_rate)]
    pub upload_limit_task: Rate,
}

/// `PER_MINUTE:BURST`, both at least 1.
fn parse_rate(s: &str) -> Result<Rate, String> {
    let bad = || format!("{s:?} is not PER_MINUTE:BURST (e.g. 30:10)");
    let (per_minute, burst) = s.split_once(':').ok_or_else(bad)?;
    let n = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(bad)
    };
    Ok(Rate {
        per_minute: n(per_minute)?,
        burst: n(burst)?,
    })
}

/// `url` with any password (and user) replaced, fit for an error message or a log; a
/// cluster's comma-separated seed list has each of its URLs redacted.
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL we can take apart: say nothing of it.
        return "(not shown)".into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => format!("{scheme}://{rest}"),
    }
}

/// A configuration value that cannot work, named by its variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// `http(s)://host[:port]`, the host lowercase letters, digits, dots and hyphens, optionally
/// `*.`-prefixed: what a CSP source may be without letting a value add a directive (the same
/// rule as Terraform's `frame_ancestors` validation).
fn is_frame_ancestor(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let rest = rest.strip_prefix("*.").unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod frame_ancestor_tests {
    use super::is_frame_ancestor;

    #[test]
    fn origins_pass_and_directives_do_not() {
        for ok in [
            "https://conf.example.com",
            "http://127.0.0.1:8080",
            "https://*.example.org",
        ] {
            assert!(is_frame_ancestor(ok), "{ok}");
        }
        for bad in [
            "conf.example.com",
            "https://x.example; script-src *",
            "https://x.example/path",
            "'none'",
            "javascript:alert(1)",
            "https://",
            "https://X.example",
            "https://x.example:123456",
        ] {
            assert!(!is_frame_ancestor(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_named_without_their_credentials() {
        assert_eq!(
            redact_url("redis://chat:hunter2@cache.internal:6379/0"),
            "redis://***@cache.internal:6379/0"
        );
        assert_eq!(
            redact_url("rediss://:hunter2@cache.internal"),
            "rediss://***@cache.internal"
        );
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(
            redact_url("redis+cluster://:pw1@a:7000,redis+cluster://:pw2@b:7001"),
            "redis+cluster://***@a:7000,redis+cluster://***@b:7001"
        );
        assert_eq!(redact_url("chat:hunter2@cache"), "(not shown)");
    }

    #[test]
    fn rates_parse_as_per_minute_and_burst() {
        let r = parse_rate("30:10").unwrap();
        assert_eq!((r.per_minute.get(), r.burst.get()), (30, 10));
        for bad in ["30", "0:10", "30:0", "a:b", ""] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
