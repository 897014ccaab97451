//! A real moto server (the AWS APIs, DynamoDB included) for one test: started on a free
//! loopback port, stopped when dropped. Shared by the DynamoDB test files (`mod moto;`).
//!
//! moto is started from its own venv's Python, serving ONE request at a time. `moto_server`
//! itself serves requests on threads, and its DynamoDB is not thread-safe: two concurrent
//! `TransactWriteItems` can both pass the same condition, and a cancelled one restores a
//! snapshot of the whole table taken before a concurrent commit, losing it. Real DynamoDB
//! checks conditions atomically; served serially, moto does too.

#![allow(dead_code)] // each test file uses a different part

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;
use chat_server::store::dynamodb;

pub const REGION: &str = "us-east-1";
/// Store-call timeout for clients of moto (see [`Moto::client`]).
pub const MOTO_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Moto {
    child: Option<Child>,
    pub port: u16,
}

/// moto's server application, run by werkzeug without threads (argv[1] = port; the script is
/// `serial_moto.py`, also used by opsctl's live-connections test). Its listen
/// backlog is raised from werkzeug's 128: with hundreds of callers a full backlog drops
/// handshakes, the kernel then delivers a request only at a retransmission tens of seconds
/// later, and the serial server waits on that one connection while everyone else times out.
/// For the same reason a connection that sends nothing for 5 s is dropped: one stalled
/// caller never holds up all the others.
const SERIAL_MOTO: &str = include_str!("serial_moto.py");

/// The Python of the venv that holds `moto_server` (from `MOTO_SERVER`).
fn moto_python() -> std::path::PathBuf {
    let server = std::env::var("MOTO_SERVER").unwrap_or_else(|_| {
        panic!(
            "MOTO_SERVER is not set: run the tests through ./scripts/test.sh \
             (or `source scripts/test-env.sh` first)"
        )
    });
    let python = std::path::Path::new(&server).with_file_name("python");
    assert!(
        python.exists(),
        "{} not found next to MOTO_SERVER={server}",
        python.display()
    );
    python
}

use testkit::free_port;

impl Moto {
    /// Starts moto on a free port and waits until it answers.
    pub async fn start() -> Moto {
        for _ in 0..5 {
            let mut moto = Moto {
                child: None,
                port: free_port(),
            };
            if moto.spawn().await {
                return moto;
            }
        }
        panic!("moto_server did not start on any of 5 free ports");
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a child process needs to reach this moto with dummy credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// A DynamoDB client with the server's own settings, pointed here; with a long timeout,
    /// as moto on a busy 2-core machine answers far slower than DynamoDB.
    /// Runs `chat-server create-tables` (the binary at `bin`) against this moto with table
    /// `prefix`; asserts it succeeds and returns what it printed.
    pub fn create_tables(&self, bin: &std::path::Path, prefix: &str) -> String {
        let out = Command::new(bin)
            .arg("create-tables")
            .env("CHAT_DYNAMODB_TABLE_PREFIX", prefix)
            // moto on a busy 2-core machine is far slower than DynamoDB.
            .env("CHAT_DYNAMODB_TIMEOUT_MS", "30000")
            .envs(self.env())
            .output()
            .expect("running create-tables");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "create-tables failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub async fn client(&self) -> Client {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await;
        dynamodb::client(&sdk, MOTO_TIMEOUT)
    }

    /// Kills moto (its state is lost, like a DynamoDB endpoint going away).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a fresh moto on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.spawn().await {
            assert!(
                Instant::now() < deadline,
                "moto_server did not restart on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Spawns moto on `self.port`; false when it exited before answering (port taken).
    async fn spawn(&mut self) -> bool {
        let child = Command::new(moto_python())
            .args(["-c", SERIAL_MOTO, &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning moto_server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().expect("polling moto_server").is_some()
            {
                self.child = None;
                return false;
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {} within 60 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
