//! What the server says never carries secrets or backend internals: a bad `CHAT_REDIS_URL`
//! is named without its password, and with Redis unreachable neither the client's error nor
//! the logs (at debug level) carry the URL, its password, the token secret or the backend's
//! own error text.

mod support;

use std::process::{Command, Stdio};

use serde_json::json;
use support::{free_port, get_json};

const PASSWORD: &str = "hunter2-do-not-print";

struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn a_bad_redis_url_is_named_without_its_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    for url in [
        format!("http://chat:{PASSWORD}@cache.internal:6379"),
        format!("redis//chat:{PASSWORD}@cache.internal:6379"),
    ] {
        let out = Command::new(support::bin())
            .env("CHAT_REDIS_URL", &url)
            .env("CHAT_DATA_DIR", dir.path())
            .env("CHAT_LISTEN", "127.0.0.1:0")
            .env("CHAT_ADMIN_LISTEN", "127.0.0.1:0")
            .output()
            .expect("run chat-server");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("CHAT_REDIS_URL"), "{stderr}");
        assert!(
            !stderr.contains(PASSWORD) && !stdout.contains(PASSWORD),
            "the password is echoed: {stderr}{stdout}"
        );
    }
}

#[tokio::test]
async fn with_backends_unreachable_errors_and_logs_carry_no_url_secret_or_backend_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("server.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let dead = free_port();
    let redis_url = format!("redis://chat:{PASSWORD}@127.0.0.1:{}", free_port());
    let secret = "token-secret-never-logged-0123";
    let log_file = std::fs::File::create(&logs).expect("log file");
    let child = Command::new(support::bin())
        .env("CHAT_LISTEN", &addr)
        .env("CHAT_ADMIN_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("CHAT_DYNAMODB_TABLE_PREFIX", "hygiene-")
        .env("CHAT_DYNAMODB_TIMEOUT_MS", "500")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{dead}"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("CHAT_REDIS_URL", &redis_url)
        .env("CHAT_TOKEN_SECRET", secret)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("clone"))
        .stderr(log_file)
        .spawn()
        .expect("spawn chat-server");
    // Killed however the test ends.
    let mut child = KillOnDrop(child);
    let base = format!("http://{addr}");
    support::eventually("the server answers /healthz", || async {
        reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/session"))
        .json(&json!({"nickname": "Eve"}))
        .send()
        .await
        .expect("POST /api/session");
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.expect("json");
    let (status, history) = get_json(&format!("{base}/api/rooms/lobby/messages")).await;
    assert_eq!(status, 503, "{history}");
    for err in [&body, &history] {
        assert_eq!(err["error"]["code"], "unavailable", "{err}");
        let message = err["error"]["message"].as_str().expect("message");
        for leak in [
            PASSWORD,
            "redis://",
            "127.0.0.1",
            &dead.to_string(),
            "os error",
            "dispatch",
            "refused",
        ] {
            assert!(!message.contains(leak), "the client is told {message:?}");
        }
    }
    // The fanout's failed connection attempts are logged (those lines are checked too).
    support::eventually("the log says Redis is unreachable", || async {
        std::fs::read_to_string(&logs).is_ok_and(|l| l.contains("Redis"))
    })
    .await;
    child.stop();
    let logged = std::fs::read_to_string(&logs).expect("read logs");
    for leak in [PASSWORD, secret, "redis://"] {
        assert!(
            !logged.contains(leak),
            "the log carries {leak:?}:\n{logged}"
        );
    }
}
