//! The live system behind the stack for the live-connections test: the chat store in DynamoDB
//! on its own moto served one request at a time (the same script as the server's tests: moto's
//! DynamoDB is not safe under concurrent transactions), a real redis-server, chat-server tasks
//! of each colour, and localalb in front of them following the listener in the stack's moto.
//! Every process is killed when dropped; every wait has a deadline.
//!
//! The chat-server and localalb binaries are the workspace's own, next to this test's build
//! directory (`cargo build -p chat-server -p localalb` first when running opsctl's tests alone).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::Duration;

use super::PREFIX;

/// moto's server application without threads (argv[1] = port), shared with the server's tests.
const SERIAL_MOTO: &str = include_str!("../../../server/tests/moto/serial_moto.py");
/// One token secret for both colours, as on AWS: a session from one is valid on the other.
const SECRET: &str = "live-connections-secret-0123456789abcdef";
/// Every client comes from 127.0.0.1, as a whole audience behind a venue's NAT. The new-guest
/// and history limits are raised: the test mints its 1,000 guests in seconds where an audience
/// arrives over the minutes before a talk (100 at once then 300 a minute per address, covered by
/// the server's tests), and its clients read history far more than a browser. The connection
/// limit per address stays as shipped: a planned move must not be refused by it.
const LOOPBACK_CROWD: &[(&str, &str)] = &[
    ("CHAT_SESSION_LIMIT_ADDR", "100000:10000"),
    ("CHAT_SESSION_LIMIT_TASK", "100000:10000"),
    ("CHAT_HISTORY_LIMIT_ADDR", "100000:10000"),
    ("CHAT_HISTORY_LIMIT_TASK", "100000:10000"),
];

pub use testkit::{Proc, sibling_bin};
use testkit::{free_port, wait_listening};

/// How long a child may take to listen on a loaded machine.
const START: Duration = Duration::from_secs(60);

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through ./scripts/test.sh \
             (or `source scripts/test-env.sh` first)"
        )
    })
}

/// DynamoDB for the chat store and opsctl's control items, on its own serial moto.
pub struct StoreMoto {
    _proc: Proc,
    pub endpoint: String,
}

impl StoreMoto {
    /// Starts it and creates the chat tables (`chat-server create-tables`, prefix [`PREFIX`]).
    pub fn start() -> StoreMoto {
        let python = Path::new(&env_var("MOTO_SERVER")).with_file_name("python");
        let port = free_port();
        let mut child = Command::new(&python)
            .args(["-c", SERIAL_MOTO, &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", python.display()));
        wait_listening(port, "moto (store)", &mut child, START);
        let moto = StoreMoto {
            _proc: Proc(child),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let out = Command::new(sibling_bin("chat-server"))
            .arg("create-tables")
            .env("CHAT_DYNAMODB_TABLE_PREFIX", PREFIX)
            .env("CHAT_DYNAMODB_TIMEOUT_MS", "30000")
            .envs(moto.env())
            .output()
            .expect("running create-tables");
        assert!(
            out.status.success(),
            "create-tables failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        moto
    }

    /// The environment a process needs to reach it with dummy credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.env_via(&self.endpoint)
    }

    /// The same, reaching it through `endpoint` (a proxy in front of it).
    pub fn env_via(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

/// A real redis-server without persistence.
pub struct Redis {
    _proc: Proc,
    pub url: String,
}

impl Redis {
    pub fn start() -> Redis {
        let port = free_port();
        let mut child = Command::new(env_var("REDIS_SERVER"))
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        wait_listening(port, "redis-server", &mut child, START);
        Redis {
            _proc: Proc(child),
            url: format!("redis://127.0.0.1:{port}"),
        }
    }
}

/// One chat-server task of a colour on the DynamoDB store and Redis, its log in `log`.
pub struct Task {
    _proc: Proc,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Task {
    /// Starts it on the store through `store_endpoint` and waits until `/readyz` answers 200
    /// (store and fanout reachable).
    pub async fn start(
        color: &str,
        store: &StoreMoto,
        store_endpoint: &str,
        redis: &Redis,
        logs: &Path,
    ) -> Task {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("address");
        let log = logs.join(format!("{color}.log"));
        let file = std::fs::File::create(&log).expect("task log file");
        let mut child = Command::new(sibling_bin("chat-server"))
            .env("CHAT_LISTEN", addr.to_string())
            .env("CHAT_ADMIN_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("CHAT_COLOR", color)
            .env("CHAT_TASK_ID", format!("{color}-1"))
            .env("CHAT_DYNAMODB_TABLE_PREFIX", PREFIX)
            // moto on a busy 2-core machine answers far slower than DynamoDB.
            .env("CHAT_DYNAMODB_TIMEOUT_MS", "10000")
            .env("CHAT_REDIS_URL", &redis.url)
            .env("CHAT_TOKEN_SECRET", SECRET)
            .env("CHAT_DRAIN_SECS", "2")
            .env("RUST_LOG", "warn,chat_server::rebalance=debug")
            .envs(store.env_via(store_endpoint))
            .envs(LOOPBACK_CROWD.iter().copied())
            .stdin(Stdio::null())
            // Its logs are JSON lines on stdout.
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("starting chat-server");
        wait_listening(addr.port(), "chat-server", &mut child, START);
        let task = Task {
            _proc: Proc(child),
            addr,
            log,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        let url = format!("http://{addr}/readyz");
        super::eventually(Duration::from_secs(60), "a ready chat-server", || async {
            matches!(http.get(&url).send().await, Ok(r) if r.status() == 200)
        })
        .await;
        task
    }

    /// The lines of its log that mention rebalancing.
    pub fn rebalance_log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("ebalanc") || l.contains("eartbeat"))
            .map(str::to_string)
            .collect()
    }
}

/// localalb following the stack's listener (in the stack's moto at `endpoint`).
pub struct LocalAlb {
    _proc: Proc,
    _stdout: BufReader<ChildStdout>,
    pub base: String,
}

impl LocalAlb {
    pub fn start(endpoint: &str) -> LocalAlb {
        let mut child = Command::new(sibling_bin("localalb"))
            .args([
                "--alb",
                super::ALB,
                "--listen",
                "127.0.0.1:0",
                "--refresh",
                "200ms",
            ])
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting localalb");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let proc = Proc(child);
        let mut line = String::new();
        stdout.read_line(&mut line).expect("localalb's first line");
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("localalb listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from localalb: {line:?}"))
            .parse()
            .expect("address");
        LocalAlb {
            _proc: proc,
            _stdout: stdout,
            base: format!("http://{addr}"),
        }
    }
}
