//! A real local Redis Cluster for one test: 3 shards of a primary and one replica each, six
//! `redis-server` processes in cluster mode on free loopback ports, joined by
//! `redis-cli --cluster create … --cluster-replicas 1`. A short `cluster-node-timeout` lets
//! a replica take over within a few seconds of its primary's death. Killed when dropped.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the cluster may take to form or to fail over on a busy machine.
pub const CLUSTER_WAIT: Duration = Duration::from_secs(30);
/// Milliseconds after which an unreachable node is failed over.
const NODE_TIMEOUT_MS: &str = "1000";

fn binary(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through ./scripts/test.sh (or `source scripts/test-env.sh` first)")
    })
}

/// One redis-server of the cluster.
pub struct Node {
    pub port: u16,
    child: Option<Child>,
}

pub struct Shards {
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

// Each node's cluster-bus port is a second free port (`--cluster-port`), not port + 10000.
use testkit::free_port;

impl Shards {
    /// Starts six nodes, creates the cluster and waits until every node serves all slots.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_port();
            let bus = free_port().to_string();
            let p = port.to_string();
            let child = Command::new(binary("REDIS_SERVER"))
                .args(["--port", &p, "--cluster-port", &bus, "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    NODE_TIMEOUT_MS,
                    // A replica always stands for election, however long ago it last heard its
                    // primary (on a loaded machine that can look "too stale" and stall the
                    // failover forever).
                    "--cluster-replica-validity-factor",
                    "0",
                ])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawning redis-server (installed by scripts/test-env.sh)");
            nodes.push(Node {
                port,
                child: Some(child),
            });
        }
        let mut s = Self { nodes, _dir: dir };
        for i in 0..s.nodes.len() {
            let port = s.nodes[i].port;
            let deadline = Instant::now() + CLUSTER_WAIT;
            while s.query::<String>(port, &["PING"]).await.is_err() {
                if let Some(Ok(Some(status))) = s.nodes[i].child.as_mut().map(Child::try_wait) {
                    panic!("redis-server on {port} exited ({status}) before answering");
                }
                assert!(
                    Instant::now() < deadline,
                    "redis-server on {port} did not start"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let addrs: Vec<String> = s
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new(binary("REDIS_CLI"))
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("running redis-cli (installed by scripts/test-env.sh)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        s.wait_ok().await;
        s
    }

    /// Waits until every live node says the cluster is ok and agrees on 3 primaries.
    pub async fn wait_ok(&self) {
        let deadline = Instant::now() + CLUSTER_WAIT;
        loop {
            let mut ok = true;
            for n in self.nodes.iter().filter(|n| n.child.is_some()) {
                let info = self
                    .query::<String>(n.port, &["CLUSTER", "INFO"])
                    .await
                    .unwrap_or_default();
                ok &= info.contains("cluster_state:ok") && info.contains("cluster_size:3");
            }
            if ok && self.primaries().await.len() == 3 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not become ok"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `redis+cluster://` URLs of every node, comma-separated (the seed list).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis+cluster://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One command on one node.
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        port: u16,
        args: &[&str],
    ) -> redis::RedisResult<T> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
        let mut conn = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timeout")))??;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut conn).await
    }

    /// A live node's port (for questions about the cluster).
    fn any_live(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.child.is_some())
            .expect("a live node")
            .port
    }

    /// The hash slot of `key`.
    pub async fn slot(&self, key: &str) -> u16 {
        self.query(self.any_live(), &["CLUSTER", "KEYSLOT", key])
            .await
            .expect("CLUSTER KEYSLOT")
    }

    /// Live primaries by port: the slot ranges each serves, as a live node sees them.
    pub async fn primaries(&self) -> BTreeMap<u16, Vec<(u16, u16)>> {
        let nodes: String = self
            .query(self.any_live(), &["CLUSTER", "NODES"])
            .await
            .unwrap_or_default();
        let mut out = BTreeMap::new();
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let Some(port) = f[1]
                .split('@')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse::<u16>().ok())
            else {
                continue;
            };
            let ranges = f[8..]
                .iter()
                .filter(|r| !r.starts_with('['))
                .filter_map(|r| match r.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => r.parse().ok().map(|s| (s, s)),
                })
                .collect();
            out.insert(port, ranges);
        }
        out.retain(|_, r: &mut Vec<(u16, u16)>| !r.is_empty());
        out
    }

    /// The port of the primary serving `key`'s slot.
    pub async fn primary_of(&self, key: &str) -> u16 {
        self.primary_of_opt(key)
            .await
            .expect("a primary serves every slot")
    }

    /// SIGKILL the node on `port`: gone at once, like a crashed ElastiCache node.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of the cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until a primary other than `dead` serves `key`'s slot and the cluster is ok.
    pub async fn wait_failover(&self, key: &str, dead: u16) -> u16 {
        let deadline = Instant::now() + CLUSTER_WAIT;
        // Redis promotes the replica by itself: the other primaries see the dead one fail
        // after the node timeout and vote for its replica. Nothing here helps it along.
        loop {
            let now = self.primary_of_opt(key).await;
            if let Some(p) = now.filter(|p| *p != dead) {
                self.wait_ok().await;
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "no replica took over from {dead}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn primary_of_opt(&self, key: &str) -> Option<u16> {
        let slot = self.slot(key).await;
        self.primaries()
            .await
            .into_iter()
            .find(|(_, ranges)| ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .map(|(port, _)| port)
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut child) = n.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
