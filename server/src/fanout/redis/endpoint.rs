//! Where the fanout connects and with what: one Redis node (`redis://`, `rediss://`) or a
//! Redis Cluster such as ElastiCache in cluster mode (`redis+cluster://`,
//! `rediss+cluster://`, optionally several seed nodes separated by commas).
//!
//! On either, the fanout opens two connections: [`Commands`], which reconnects by itself
//! (on a cluster it also follows `MOVED`/`ASK` and refreshes the slot map), and a
//! [`Subscriber`], whose sharded messages arrive on a push channel and whose loss the link
//! task notices and repairs by opening a new one.

use std::time::Duration;

use ::redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use ::redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline,
    ProtocolVersion, PushInfo, RedisFuture, RedisResult, Value,
};
use futures_util::future::try_join_all;
use tokio::sync::mpsc;

/// Longest wait for one command; past it the call fails instead of holding up the caller.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest pause between command retries (reconnects, cluster redirections).
pub const RETRY_MAX: Duration = Duration::from_secs(2);

/// URL schemes naming a Redis Cluster, and the single-node scheme each stands for.
const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// Whether `url` names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`).
pub fn is_cluster_url(url: &str) -> bool {
    CLUSTER_SCHEMES.iter().any(|(c, _)| url.starts_with(c))
}

/// The connection settings of a single-node `url`, in the RESP3 protocol the fanout needs
/// (sharded messages arrive as pushes on a connection that also answers commands).
pub fn connection_info(url: &str) -> anyhow::Result<ConnectionInfo> {
    let info = url
        .into_connection_info()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(info.set_redis_settings(settings))
}

/// The seed nodes of a cluster URL: `redis+cluster://h1:p1,redis+cluster://h2:p2` (each a
/// full URL of the same scheme), as single-node URLs.
fn cluster_seeds(url: &str) -> anyhow::Result<Vec<String>> {
    let scheme = CLUSTER_SCHEMES
        .iter()
        .find(|(c, _)| url.starts_with(c))
        .ok_or_else(|| anyhow::anyhow!("not a cluster URL"))?;
    url.split(',')
        .map(|seed| {
            let rest = seed
                .trim()
                .strip_prefix(scheme.0)
                .ok_or_else(|| anyhow::anyhow!("every seed node must start with {}", scheme.0))?;
            Ok(format!("{}{rest}", scheme.1))
        })
        .collect()
}

/// A Redis deployment the fanout can connect to.
#[derive(Clone)]
pub enum Endpoint {
    /// Both boxed: either client is hundreds of bytes, and an endpoint is moved around.
    Single(Box<Client>),
    Cluster(Box<ClusterClient>),
}

impl Endpoint {
    /// The endpoint `url` names (nothing is connected yet).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if !is_cluster_url(url) {
            let client = Client::open(connection_info(url)?).map_err(|e| anyhow::anyhow!("{e}"))?;
            return Ok(Self::Single(Box::new(client)));
        }
        let seeds = cluster_seeds(url)?
            .iter()
            .map(|s| connection_info(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let client = ClusterClientBuilder::new(seeds)
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(COMMAND_TIMEOUT)
            .retries(3)
            .min_retry_wait(20)
            .max_retry_wait(u64::try_from(RETRY_MAX.as_millis()).unwrap_or(u64::MAX))
            .build()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self::Cluster(Box::new(client)))
    }

    /// A command connection that connects on first use and reconnects by itself.
    pub fn commands(&self) -> anyhow::Result<Commands> {
        Ok(match self {
            Self::Single(client) => Commands::Single(
                ConnectionManager::new_lazy_with_config(
                    (**client).clone(),
                    ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(COMMAND_TIMEOUT))
                        .set_number_of_retries(1)
                        .set_max_delay(RETRY_MAX),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            Self::Cluster(client) => Commands::Cluster(
                client.get_pending_async_connection_with_config(
                    ClusterConfig::new()
                        .set_connection_timeout(CONNECT_TIMEOUT)
                        .set_response_timeout(COMMAND_TIMEOUT),
                ),
            ),
        })
    }

    /// A new subscriber connection whose pushes (messages, and a disconnection notice when
    /// a node's connection drops) go to `pushes`.
    pub async fn subscriber(
        &self,
        pushes: mpsc::UnboundedSender<PushInfo>,
    ) -> RedisResult<Subscriber> {
        Ok(match self {
            Self::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_push_sender(pushes)
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(COMMAND_TIMEOUT));
                Subscriber::Single(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
            Self::Cluster(client) => Subscriber::Cluster(
                client
                    .get_async_connection_with_config(
                        ClusterConfig::new()
                            .set_push_sender(pushes)
                            .set_connection_timeout(CONNECT_TIMEOUT)
                            .set_response_timeout(COMMAND_TIMEOUT),
                    )
                    .await?,
            ),
        })
    }
}

/// The command connection: one multiplexed node connection or a cluster connection. A
/// pipeline sent on it must stay within one room (one cluster slot).
#[derive(Clone)]
pub enum Commands {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The subscriber connection of the link task.
pub enum Subscriber {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Subscriber {
    /// `SSUBSCRIBE` (or with `subscribe` false, `SUNSUBSCRIBE`) to each channel: one channel
    /// per command, so each command stays within one cluster slot; on a cluster each is
    /// routed to the shard that owns the channel's slot.
    pub async fn apply(&mut self, channels: &[String], subscribe: bool) -> RedisResult<()> {
        if channels.is_empty() {
            return Ok(());
        }
        match self {
            Self::Single(conn) => {
                let name = if subscribe {
                    "SSUBSCRIBE"
                } else {
                    "SUNSUBSCRIBE"
                };
                let mut pipe = ::redis::pipe();
                for ch in channels {
                    pipe.cmd(name).arg(ch).ignore();
                }
                pipe.exec_async(conn).await
            }
            Self::Cluster(conn) => {
                try_join_all(channels.iter().map(|ch| {
                    let mut conn = conn.clone();
                    async move {
                        if subscribe {
                            conn.ssubscribe(ch).await
                        } else {
                            conn.sunsubscribe(ch).await
                        }
                    }
                }))
                .await?;
                Ok(())
            }
        }
    }

    /// `PING` (on a cluster, every primary): fails when a link died without a word.
    pub async fn ping(&mut self) -> RedisResult<()> {
        match self {
            Self::Single(conn) => ::redis::cmd("PING").exec_async(conn).await,
            Self::Cluster(conn) => ::redis::cmd("PING").exec_async(conn).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_are_told_apart_and_split_into_seed_nodes() {
        assert!(is_cluster_url("redis+cluster://127.0.0.1:7000"));
        assert!(is_cluster_url(
            "rediss+cluster://cfg.example.cache.amazonaws.com:6379"
        ));
        assert!(!is_cluster_url("redis://127.0.0.1:6379"));
        assert!(!is_cluster_url("rediss://h:6379"));
        assert_eq!(
            cluster_seeds("redis+cluster://a:1,redis+cluster://b:2").expect("seeds"),
            ["redis://a:1", "redis://b:2"]
        );
        assert_eq!(
            cluster_seeds("rediss+cluster://u:p@cfg:6379").expect("seeds"),
            ["rediss://u:p@cfg:6379"]
        );
        let err = cluster_seeds("redis+cluster://a:1,redis://b:2").expect_err("mixed schemes");
        assert!(err.to_string().contains("redis+cluster://"), "{err}");
    }

    #[test]
    fn a_cluster_endpoint_parses_without_connecting() {
        assert!(matches!(
            Endpoint::parse("redis+cluster://127.0.0.1:1,redis+cluster://127.0.0.1:2"),
            Ok(Endpoint::Cluster(_))
        ));
        assert!(matches!(
            Endpoint::parse("redis://127.0.0.1:1"),
            Ok(Endpoint::Single(_))
        ));
    }
}
