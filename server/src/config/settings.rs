//! The typed settings, one part per subsystem, and the checks that make each from the flags.
//! [`Config::validate`] makes the whole [`Settings`] the server runs with; a subcommand
//! that needs only a part validates only that part ([`Config::dynamodb_settings`] for
//! `create-tables`, [`Config::token_settings`] for `moderator-token`).

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use super::{Config, ConfigError, is_frame_ancestor, redact_url};
use crate::conn::QueueLimits;
use crate::fanout::redis::RedisUrl;
use crate::throttle::Rate;

/// What [`Config::validate`] proved: the settings the server runs with, each part in the
/// types its subsystem uses. Only [`Config::validate`] makes one.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Listeners,
    pub task: TaskSettings,
    pub store: StoreSettings,
    /// Redis for cross-task fanout and presence instead of the in-process fanout.
    pub redis: Option<RedisSettings>,
    pub tokens: TokenSettings,
    pub http: HttpSettings,
    pub connections: ConnectionSettings,
    pub limits: RateLimits,
    /// Where shared images are kept.
    pub uploads: UploadSettings,
}

/// The two listeners.
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    pub public: SocketAddr,
    /// Metrics and admin; never exposed through the load balancer.
    pub admin: SocketAddr,
}

/// Who this task is.
#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// Deployment colour shown to clients and operators (1-32 characters).
    pub color: String,
    pub id: String,
}

/// Where messages are kept.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Embedded store location, and where a generated token secret is kept.
    pub data_dir: PathBuf,
    /// DynamoDB instead of the embedded store.
    pub dynamodb: Option<DynamoSettings>,
}

/// The DynamoDB store's settings.
#[derive(Debug, Clone)]
pub struct DynamoSettings {
    pub table_prefix: String,
    /// How long one call may take, SDK retries included.
    pub timeout: Duration,
}

/// The Redis fanout's settings.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// One node or a cluster, parsed once here.
    pub url: RedisUrl,
    /// How long a task's presence outlives its last heartbeat.
    pub presence_ttl: Duration,
}

/// Guest tokens.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// The signing secret; `None`: the one kept in the data dir (generated on first start).
    pub secret: Option<String>,
    pub ttl: Duration,
    /// The previous secret and how long from start its tokens verify.
    pub previous: Option<(String, Duration)>,
}

/// What the HTTP side accepts.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub allowed_origins: Vec<String>,
    /// Origins allowed to frame the page besides its own (CSP frame-ancestors).
    pub frame_ancestors: Vec<String>,
    /// Proxies in front of the task that append to X-Forwarded-For.
    pub trusted_proxies: usize,
}

/// One WebSocket connection's bounds.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// Frames per second a connection may send, sustained, and in a burst above it.
    pub rate_per_sec: NonZeroU32,
    pub rate_burst: NonZeroU32,
    /// Frames and bytes a connection's outbound queue holds.
    pub outbound_queue: QueueLimits,
    /// Interval of the server's pings (three of silence end a connection).
    pub ping_interval: Duration,
    /// Window over which a drain spreads its 1012 closes.
    pub drain: Duration,
}

/// The HTTP rate limits, per client address and per task.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    pub session_addr: Rate,
    pub session_task: Rate,
    pub history_addr: Rate,
    pub history_task: Rate,
    pub connect_addr: Rate,
    pub upload_user: Rate,
    pub upload_task: Rate,
}

/// Where shared images are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadSettings {
    /// Files under this directory, served by chat-server at `/uploads/`.
    Embedded { dir: PathBuf },
    /// An S3 bucket; objects `{prefix}{name}` served at `{public_base}{name}`.
    S3 {
        bucket: String,
        prefix: String,
        public_base: String,
    },
}

fn secret_long_enough(var: &'static str, secret: &str) -> Result<(), ConfigError> {
    if secret.len() < 16 {
        return Err(ConfigError::new(var, "must be at least 16 characters"));
    }
    Ok(())
}

impl Config {
    /// Checks what clap cannot (relations between values, URL shapes) and returns the typed
    /// settings.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let store = StoreSettings {
            data_dir: self.data_dir.clone(),
            dynamodb: self.dynamodb_settings()?,
        };
        let tokens = self.token_settings()?;
        if store.dynamodb.is_some() && tokens.secret.is_none() {
            return Err(ConfigError::new(
                "CHAT_TOKEN_SECRET",
                "required when CHAT_DYNAMODB_TABLE_PREFIX is set (every task must share it)",
            ));
        }
        Ok(Settings {
            listen: Listeners {
                public: self.listen,
                admin: self.admin_listen,
            },
            redis: self.redis_settings()?,
            http: self.http_settings()?,
            task: self.task_settings()?,
            uploads: self.upload_settings()?,
            connections: self.connection_settings()?,
            limits: RateLimits {
                session_addr: self.session_limit_addr,
                session_task: self.session_limit_task,
                history_addr: self.history_limit_addr,
                history_task: self.history_limit_task,
                connect_addr: self.connect_limit_addr,
                upload_user: self.upload_limit_user,
                upload_task: self.upload_limit_task,
            },
            store,
            tokens,
        })
    }

    /// The DynamoDB store, when a table prefix is set (`create-tables` needs one).
    pub fn dynamodb_settings(&self) -> Result<Option<DynamoSettings>, ConfigError> {
        let Some(prefix) = &self.dynamodb_table_prefix else {
            return Ok(None);
        };
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(ConfigError::new(
                "CHAT_DYNAMODB_TABLE_PREFIX",
                format!("{prefix:?} must be non-empty and use only A-Z a-z 0-9 _ - ."),
            ));
        }
        Ok(Some(DynamoSettings {
            table_prefix: prefix.clone(),
            timeout: Duration::from_millis(self.dynamodb_timeout_ms),
        }))
    }

    /// The guest tokens' secrets and lifetimes (`moderator-token` signs with them).
    pub fn token_settings(&self) -> Result<TokenSettings, ConfigError> {
        if let Some(secret) = &self.token_secret {
            secret_long_enough("CHAT_TOKEN_SECRET", secret)?;
        }
        if let Some(previous) = &self.token_secret_previous {
            secret_long_enough("CHAT_TOKEN_SECRET_PREVIOUS", previous)?;
            if self.token_secret.is_none() {
                return Err(ConfigError::new(
                    "CHAT_TOKEN_SECRET_PREVIOUS",
                    "needs CHAT_TOKEN_SECRET (the new secret) as well",
                ));
            }
        }
        Ok(TokenSettings {
            secret: self.token_secret.clone(),
            ttl: Duration::from_secs(self.token_ttl_secs),
            previous: self.token_secret_previous.clone().map(|secret| {
                let overlap = self
                    .token_previous_overlap_secs
                    .unwrap_or(self.token_ttl_secs);
                (secret, Duration::from_secs(overlap))
            }),
        })
    }

    /// The Redis fanout, its URL parsed once (named without its password when it is bad).
    fn redis_settings(&self) -> Result<Option<RedisSettings>, ConfigError> {
        let Some(url) = &self.redis_url else {
            return Ok(None);
        };
        let scheme_ok = url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("redis+unix://")
            || url.starts_with("unix://")
            || crate::fanout::redis::is_cluster_url(url);
        if !scheme_ok {
            return Err(ConfigError::new(
                "CHAT_REDIS_URL",
                format!(
                    "{} is not a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL",
                    redact_url(url)
                ),
            ));
        }
        let parsed = RedisUrl::parse(url).map_err(|e| {
            ConfigError::new(
                "CHAT_REDIS_URL",
                format!("{} is not a valid Redis URL: {e}", redact_url(url)),
            )
        })?;
        Ok(Some(RedisSettings {
            url: parsed,
            presence_ttl: Duration::from_secs(self.presence_ttl_secs),
        }))
    }

    fn http_settings(&self) -> Result<HttpSettings, ConfigError> {
        for origin in &self.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError::new(
                    "CHAT_ALLOWED_ORIGINS",
                    format!("{origin:?} is not `*` or an http(s):// origin"),
                ));
            }
        }
        if let Some(bad) = self.frame_ancestors.iter().find(|o| !is_frame_ancestor(o)) {
            return Err(ConfigError::new(
                "CHAT_FRAME_ANCESTORS",
                format!(
                    "{bad:?} is not an origin like https://conf.example.com or https://*.example.com"
                ),
            ));
        }
        Ok(HttpSettings {
            allowed_origins: self.allowed_origins.clone(),
            frame_ancestors: self.frame_ancestors.clone(),
            trusted_proxies: usize::from(self.trusted_proxies),
        })
    }

    fn task_settings(&self) -> Result<TaskSettings, ConfigError> {
        if self.color.is_empty() || self.color.len() > 32 {
            return Err(ConfigError::new("CHAT_COLOR", "must be 1-32 characters"));
        }
        Ok(TaskSettings {
            color: self.color.clone(),
            id: self.task_id(),
        })
    }

    fn connection_settings(&self) -> Result<ConnectionSettings, ConfigError> {
        let non_zero = |var: &'static str, v: u32| {
            NonZeroU32::new(v).ok_or_else(|| ConfigError::new(var, "must be at least 1"))
        };
        Ok(ConnectionSettings {
            rate_per_sec: non_zero("CHAT_RATE_PER_SEC", self.rate_per_sec)?,
            rate_burst: non_zero("CHAT_RATE_BURST", self.rate_burst)?,
            outbound_queue: QueueLimits {
                frames: NonZeroUsize::new(self.outbound_queue as usize)
                    .ok_or_else(|| ConfigError::new("CHAT_OUTBOUND_QUEUE", "must be at least 1"))?
                    .get(),
                bytes: usize::try_from(self.outbound_queue_bytes).unwrap_or(usize::MAX),
            },
            ping_interval: Duration::from_secs(self.ping_interval_secs),
            drain: Duration::from_secs(self.drain_secs),
        })
    }

    fn upload_settings(&self) -> Result<UploadSettings, ConfigError> {
        let Some(bucket) = self.uploads_bucket.clone() else {
            return Ok(UploadSettings::Embedded {
                dir: self.data_dir.join("uploads"),
            });
        };
        if bucket.is_empty() {
            return Err(ConfigError::new("CHAT_UPLOADS_BUCKET", "must not be empty"));
        }
        let prefix = &self.uploads_prefix;
        if !prefix.is_empty()
            && (!prefix.ends_with('/')
                || !prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c)))
        {
            return Err(ConfigError::new(
                "CHAT_UPLOADS_PREFIX",
                format!("{prefix:?} must end with / and use only A-Z a-z 0-9 _ - . /"),
            ));
        }
        let public = self.uploads_public_url.clone().ok_or_else(|| {
            ConfigError::new(
                "CHAT_UPLOADS_PUBLIC_URL",
                "required with CHAT_UPLOADS_BUCKET (the URL its images are served from)",
            )
        })?;
        if !(public.starts_with("https://") || public.starts_with("http://")) {
            return Err(ConfigError::new(
                "CHAT_UPLOADS_PUBLIC_URL",
                format!("{public:?} is not an http(s):// URL"),
            ));
        }
        let public_base = if public.ends_with('/') {
            public
        } else {
            format!("{public}/")
        };
        Ok(UploadSettings::S3 {
            bucket,
            prefix: prefix.clone(),
            public_base,
        })
    }

    /// The task id from config, or `host-pid`.
    fn task_id(&self) -> String {
        self.task_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                })
                .unwrap_or_else(|| "host".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::Cli;
    use super::*;

    const SECRET: &str = "0123456789abcdef-secret";

    /// The config from these flags alone (no subcommand).
    fn config(flags: &[&str]) -> Config {
        let mut args = vec!["chat-server"];
        args.extend_from_slice(flags);
        Cli::try_parse_from(args).expect("flags parse").config
    }

    /// The variable a refusal names, and its message.
    fn refused(flags: &[&str]) -> (&'static str, String) {
        let e = config(flags).validate().expect_err("refused");
        (e.var, e.message)
    }

    #[test]
    fn the_defaults_make_a_single_node_chat() {
        let s = config(&["--task-id", "t1"]).validate().expect("valid");
        assert!(s.store.dynamodb.is_none() && s.redis.is_none());
        assert_eq!(s.task.id, "t1");
        assert_eq!(s.task.color, "local");
        assert_eq!(s.connections.ping_interval, Duration::from_secs(25));
        assert_eq!(s.connections.drain, Duration::from_secs(10));
        assert_eq!(
            s.uploads,
            UploadSettings::Embedded {
                dir: PathBuf::from("./data/uploads")
            }
        );
        assert_eq!(s.limits.session_addr.per_minute.get(), 300);
    }

    #[test]
    fn dynamodb_needs_a_shared_secret_and_a_clean_prefix() {
        assert_eq!(
            refused(&["--dynamodb-table-prefix", "chat-"]).0,
            "CHAT_TOKEN_SECRET"
        );
        assert_eq!(
            refused(&[
                "--dynamodb-table-prefix",
                "bad prefix",
                "--token-secret",
                SECRET
            ])
            .0,
            "CHAT_DYNAMODB_TABLE_PREFIX"
        );
        let s = config(&["--dynamodb-table-prefix", "chat-", "--token-secret", SECRET])
            .validate()
            .expect("valid");
        let dynamo = s.store.dynamodb.expect("dynamodb");
        assert_eq!(dynamo.table_prefix, "chat-");
        assert_eq!(dynamo.timeout, Duration::from_millis(3000));
    }

    #[test]
    fn token_secrets_are_long_and_the_previous_needs_the_new() {
        assert_eq!(refused(&["--token-secret", "short"]).0, "CHAT_TOKEN_SECRET");
        assert_eq!(
            refused(&["--token-secret-previous", SECRET]),
            (
                "CHAT_TOKEN_SECRET_PREVIOUS",
                "needs CHAT_TOKEN_SECRET (the new secret) as well".to_string()
            )
        );
        let s = config(&[
            "--token-secret",
            SECRET,
            "--token-secret-previous",
            "fedcba9876543210-old",
            "--token-ttl-secs",
            "600",
        ])
        .validate()
        .expect("valid");
        assert_eq!(
            s.tokens.previous.map(|(_, overlap)| overlap),
            Some(Duration::from_secs(600)),
            "the overlap defaults to the token life"
        );
    }

    #[test]
    fn a_bad_redis_url_is_refused_without_its_password() {
        let (var, message) = refused(&["--redis-url", "http://user:hunter2@cache:6379"]);
        assert_eq!(var, "CHAT_REDIS_URL");
        assert!(!message.contains("hunter2"), "{message}");
        let s = config(&["--redis-url", "redis://:hunter2@127.0.0.1:6379"])
            .validate()
            .expect("valid");
        let redis = s.redis.expect("redis");
        assert!(!format!("{redis:?}").contains("hunter2"), "{redis:?}");
        assert_eq!(redis.presence_ttl, Duration::from_secs(30));
    }

    #[test]
    fn origins_colours_and_uploads_are_checked() {
        assert_eq!(
            refused(&["--allowed-origins", "example.com"]).0,
            "CHAT_ALLOWED_ORIGINS"
        );
        assert_eq!(
            refused(&["--frame-ancestors", "https://x.example; script-src *"]).0,
            "CHAT_FRAME_ANCESTORS"
        );
        assert_eq!(refused(&["--color", ""]).0, "CHAT_COLOR");
        assert_eq!(
            refused(&["--uploads-bucket", "images"]).0,
            "CHAT_UPLOADS_PUBLIC_URL"
        );
        assert_eq!(
            refused(&[
                "--uploads-bucket",
                "images",
                "--uploads-public-url",
                "https://cdn.example/u",
                "--uploads-prefix",
                "no-slash",
            ])
            .0,
            "CHAT_UPLOADS_PREFIX"
        );
        let s = config(&[
            "--uploads-bucket",
            "images",
            "--uploads-public-url",
            "https://cdn.example/u",
        ])
        .validate()
        .expect("valid");
        assert_eq!(
            s.uploads,
            UploadSettings::S3 {
                bucket: "images".into(),
                prefix: "uploads/".into(),
                public_base: "https://cdn.example/u/".into(),
            }
        );
    }

    #[test]
    fn a_subcommand_checks_only_its_part() {
        // create-tables needs no token secret, only a clean prefix.
        let c = config(&["--dynamodb-table-prefix", "chat-"]);
        assert!(c.dynamodb_settings().expect("valid").is_some());
        assert!(c.validate().is_err(), "serving needs the secret too");
        // moderator-token checks the secrets.
        assert_eq!(
            config(&["--token-secret", "short"])
                .token_settings()
                .expect_err("short")
                .var,
            "CHAT_TOKEN_SECRET"
        );
    }
}
