//! Learning early that ECS is stopping this task. When the service scheduler stops a task
//! behind a load balancer it first deregisters it (the task is DEACTIVATING, its desired
//! status already STOPPED) and sends SIGTERM only once the target group's deregistration
//! delay is over — and at that moment the ALB closes the task's connections. A drain that
//! waited for SIGTERM would reach no one. The ECS agent exposes the task's `DesiredStatus`
//! at `${ECS_CONTAINER_METADATA_URI_V4}/task` (task metadata endpoint v4); polling it every
//! second lets the spread drain start at the beginning of the deregistration delay.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The variable the ECS agent injects into every container.
pub const METADATA_ENV: &str = "ECS_CONTAINER_METADATA_URI_V4";
/// Time between polls.
const POLL: Duration = Duration::from_secs(1);
/// Largest metadata answer read.
const MAX_BODY: usize = 256 * 1024;

/// Resolves once the task metadata says the task is being stopped; never resolves when
/// there is no metadata endpoint (not on ECS) or it is not a plain `http://` URL.
pub async fn stopping() {
    let Some(base) = std::env::var(METADATA_ENV).ok().filter(|v| !v.is_empty()) else {
        return std::future::pending().await;
    };
    let Some((authority, path)) = split(&base) else {
        tracing::warn!(url = %base, "Task metadata URL is not http://host/path; not watching it");
        return std::future::pending().await;
    };
    let path = format!("{}/task", path.trim_end_matches('/'));
    let mut failures = 0u32;
    loop {
        match tokio::time::timeout(Duration::from_secs(2), get(&authority, &path)).await {
            Ok(Ok(body)) => {
                failures = 0;
                if let Some(status) = desired_status(&body)
                    && status == "STOPPED"
                {
                    tracing::info!(
                        "ECS is stopping this task (task metadata DesiredStatus STOPPED)"
                    );
                    return;
                }
            }
            Ok(Err(e)) => {
                failures += 1;
                if failures == 3 {
                    tracing::warn!(error = %e, "Reading the task metadata failed");
                }
            }
            Err(_) => failures += 1,
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn split(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, String::from("/")), |(a, p)| (a, format!("/{p}")));
    (!authority.is_empty()).then(|| (authority.to_string(), path))
}

/// The task's `DesiredStatus` in a `/task` answer.
pub fn desired_status(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("DesiredStatus")?.as_str().map(str::to_string)
}

/// `GET path` over HTTP/1.0 (the agent's endpoint is plain HTTP on a link-local address).
async fn get(authority: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind};
    let mut stream = TcpStream::connect(authority).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    (&mut stream)
        .take(MAX_BODY as u64)
        .read_to_end(&mut buf)
        .await?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| Error::new(ErrorKind::InvalidData, "no HTTP header end"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(Error::other(format!("task metadata answered {status}")));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_desired_status() {
        let body = r#"{"Cluster":"chat","TaskARN":"arn:x","DesiredStatus":"STOPPED","KnownStatus":"RUNNING"}"#;
        assert_eq!(desired_status(body).as_deref(), Some("STOPPED"));
        assert_eq!(desired_status("{}"), None);
        assert_eq!(desired_status("not json"), None);
    }

    #[test]
    fn splits_the_metadata_url() {
        assert_eq!(
            split("http://169.254.170.2/v4/abc"),
            Some(("169.254.170.2".into(), "/v4/abc".into()))
        );
        assert_eq!(split("https://x/y"), None);
    }
}
