//! Two chat-server tasks (`task-a`, `task-b`) on one redis-server and one DynamoDB (moto),
//! both ready: the smallest shape of a colour on AWS. Shared by the cross-task tests, which
//! declare `mod two_tasks;` beside `mod moto;` and `mod support;`.

use crate::moto::Moto;
use crate::support::{self, RedisServer, SECRET, ServerProcess, eventually, get_json};

/// The two tasks first: they stop before the backends they use.
pub struct TwoTasks {
    pub a: ServerProcess,
    pub b: ServerProcess,
    /// Held so that Redis and moto live as long as the tasks.
    #[allow(dead_code, reason = "held for its Drop; some tests reach into it")]
    pub redis: RedisServer,
    #[allow(dead_code, reason = "held for its Drop; some tests reach into it")]
    pub moto: Moto,
}

impl TwoTasks {
    /// Starts Redis, moto with the tables under `prefix`, then both tasks, and waits until
    /// each answers `/readyz` with 200.
    pub async fn start(prefix: &str) -> Self {
        let redis = RedisServer::start().await;
        let moto = Moto::start().await;
        moto.create_tables(&support::bin(), prefix);
        let mut tasks = Vec::new();
        for task in ["task-a", "task-b"] {
            let mut env: Vec<(&str, String)> = moto.env();
            env.extend([
                ("CHAT_DYNAMODB_TABLE_PREFIX", prefix.to_string()),
                ("CHAT_TOKEN_SECRET", SECRET.to_string()),
                ("CHAT_REDIS_URL", redis.url()),
                ("CHAT_TASK_ID", task.to_string()),
                ("CHAT_DYNAMODB_TIMEOUT_MS", "30000".to_string()),
            ]);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let task = ServerProcess::start(&env).await;
            let url = task.url("/readyz");
            eventually("the task is ready", || async {
                get_json(&url).await.0 == 200
            })
            .await;
            tasks.push(task);
        }
        let b = tasks.pop().expect("two tasks");
        let a = tasks.pop().expect("two tasks");
        Self { a, b, redis, moto }
    }
}
