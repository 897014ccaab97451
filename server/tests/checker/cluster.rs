//! The system under test: moto (DynamoDB) and one redis-server, each task reaching both
//! through its own fault proxy, and the chat-server tasks as child processes that faults
//! kill, drain and restart. Clients find the live tasks through [`Cluster::urls`].

#![allow(dead_code)] // the checker and the delivery tests use different parts

use std::sync::Arc;

use faultproxy::{FaultProxy, Mode};
use parking_lot::RwLock;

use crate::moto::Moto;
use crate::support::{RedisServer, SECRET, ServerProcess, bin, get_json};

pub const PREFIX: &str = "checker-";
/// The checker's DynamoDB call timeout: below the 8 s of the latency faults, so some calls
/// time out.
pub const STORE_TIMEOUT_MS: u64 = 5_000;

/// How long a SIGTERMed task may take to drain and exit before it is SIGKILLed (ECS's
/// default `stopTimeout`).
pub const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Base HTTP URLs of the live tasks, by slot (`None` while a slot's task is down).
pub type Urls = Arc<RwLock<Vec<Option<String>>>>;

pub struct Cluster {
    pub moto: Moto,
    pub redis: RedisServer,
    /// Per task slot: its proxy to DynamoDB (HTTP, per operation) and to Redis (TCP).
    pub ddb: Vec<Arc<FaultProxy>>,
    pub rds: Vec<Arc<FaultProxy>>,
    tasks: Vec<Option<ServerProcess>>,
    /// `CHAT_DYNAMODB_TIMEOUT_MS` of every task.
    store_timeout_ms: u64,
    /// Restarts so far, for task ids.
    generation: u32,
    pub urls: Urls,
}

impl Cluster {
    /// `tasks` tasks, each with `CHAT_DYNAMODB_TIMEOUT_MS` = `store_timeout_ms`.
    pub async fn start(tasks: usize, store_timeout_ms: u64) -> Self {
        let moto = Moto::start().await;
        moto.create_tables(&bin(), PREFIX);
        let redis = RedisServer::start().await;
        let moto_addr = format!("127.0.0.1:{}", moto.port).parse().expect("addr");
        let redis_addr = format!("127.0.0.1:{}", redis.port).parse().expect("addr");
        let mut c = Cluster {
            moto,
            redis,
            ddb: Vec::new(),
            rds: Vec::new(),
            tasks: Vec::new(),
            store_timeout_ms,
            generation: 0,
            urls: Arc::default(),
        };
        for _ in 0..tasks {
            let ddb = FaultProxy::start(moto_addr, Mode::Http)
                .await
                .expect("proxy");
            let rds = FaultProxy::start(redis_addr, Mode::Tcp)
                .await
                .expect("proxy");
            c.ddb.push(Arc::new(ddb));
            c.rds.push(Arc::new(rds));
            c.tasks.push(None);
            c.urls.write().push(None);
        }
        for slot in 0..tasks {
            c.start_task(slot).await;
        }
        c
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Starts slot `slot`'s task (a new process on new ports) and waits until it is ready.
    pub async fn start_task(&mut self, slot: usize) {
        self.generation += 1;
        let mut env: Vec<(&str, String)> = self.moto.env();
        env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
        env.extend([
            ("AWS_ENDPOINT_URL", self.ddb[slot].http_url()),
            ("CHAT_DYNAMODB_TABLE_PREFIX", PREFIX.to_string()),
            ("CHAT_TOKEN_SECRET", SECRET.to_string()),
            ("CHAT_REDIS_URL", self.rds[slot].redis_url()),
            ("CHAT_TASK_ID", format!("t{slot}-{}", self.generation)),
            (
                "CHAT_DYNAMODB_TIMEOUT_MS",
                self.store_timeout_ms.to_string(),
            ),
            ("CHAT_DRAIN_SECS", "2".to_string()),
            ("CHAT_PRESENCE_TTL_SECS", "3".to_string()),
            ("CHAT_RATE_PER_SEC", "50".to_string()),
            ("CHAT_RATE_BURST", "100".to_string()),
        ]);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Every client comes from 127.0.0.1: `ServerProcess::start` sets the per-address and
        // per-task limits far above the checker's hundreds of clients (`LOOPBACK_CROWD`).
        let p = ServerProcess::start(&env).await;
        let base = p.url("");
        // Ready means the store and Redis answer (Redis may be restarting: do not wait on it).
        // Each probe is bounded (`get_json`), and so is the wait: a store held by a fault may
        // keep it degraded; the clients cope with a task that is not ready yet.
        let ready = format!("{base}/readyz");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let (status, body) = get_json(&ready).await;
            let only_redis = body["failing"]
                .as_array()
                .is_some_and(|f| f.iter().all(|x| x == "redis"));
            if status == 200 || only_redis {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.tasks[slot] = Some(p);
        self.urls.write()[slot] = Some(base);
    }

    /// SIGKILL: the task is gone at once, mid-write or mid-publish.
    pub fn kill_task(&mut self, slot: usize) {
        self.urls.write()[slot] = None;
        if let Some(mut p) = self.tasks[slot].take() {
            p.kill();
        }
    }

    /// SIGTERM: the task drains (`reconnect`, close 1012) and exits. As ECS does, a task
    /// still running [`STOP_TIMEOUT`] after its SIGTERM (its store calls failing under a
    /// fault, say) is then SIGKILLed; returns false when it had to be.
    pub async fn drain_task(&mut self, slot: usize) -> bool {
        self.urls.write()[slot] = None;
        let Some(mut p) = self.tasks[slot].take() else {
            return true;
        };
        p.terminate();
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while std::time::Instant::now() < deadline {
            if p.child.try_wait().expect("try_wait").is_some() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        p.kill();
        false
    }

    /// Every proxy back to passing traffic untouched.
    pub fn clear_faults(&self) {
        for p in self.ddb.iter().chain(&self.rds) {
            p.clear();
        }
    }

    /// Slot `slot`'s base URL (panics when it is down).
    pub fn url(&self, slot: usize) -> String {
        self.urls.read()[slot].clone().expect("the task is up")
    }

    /// A live task's base URL (for the final history read).
    pub fn any_url(&self) -> Option<String> {
        self.urls.read().iter().flatten().next().cloned()
    }
}
