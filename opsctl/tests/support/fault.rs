//! A fault-injecting HTTP proxy in front of moto: forwards every AWS call unchanged, except
//! the n-th call of a chosen API action, which it answers with a non-retryable
//! AccessDenied error. This is how the tests make "AWS fails mid-shift" happen for real.
//! It runs on its own thread and runtime, so it serves while a test blocks on opsctl.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

/// The proxy; `endpoint` is what opsctl's AWS_ENDPOINT_URL should be.
pub struct FaultProxy {
    pub endpoint: String,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

struct Rule {
    upstream: String,
    action: String,
    nth: usize,
    seen: Arc<Mutex<HashMap<String, usize>>>,
    http: reqwest::Client,
}

impl FaultProxy {
    /// Forwards to `upstream`, failing the `nth` (1-based) call of `action`
    /// (e.g. `ModifyListener`, `DescribeTargetHealth`, `PutItem`).
    pub fn start(upstream: &str, action: &str, nth: usize) -> FaultProxy {
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let rule = Arc::new(Rule {
            upstream: upstream.to_string(),
            action: action.to_string(),
            nth,
            seen: seen.clone(),
            http: reqwest::Client::new(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(
                    move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                        let rule = rule.clone();
                        async move { rule.handle(method, uri, headers, body).await }
                    },
                );
                let _ = axum::serve(listener, app).await;
            });
        });
        FaultProxy { endpoint, seen }
    }

    /// Calls per action so far (the live-connections test counts the store's load with a
    /// proxy that fails nothing).
    pub fn all_calls(&self) -> std::collections::BTreeMap<String, usize> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// How many calls of `action` went through the proxy (the failed one included).
    pub fn calls(&self, action: &str) -> usize {
        self.seen
            .lock()
            .expect("seen")
            .get(action)
            .copied()
            .unwrap_or(0)
    }
}

impl Rule {
    async fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let action = action_of(&headers, &body);
        let n = {
            let mut seen = self.seen.lock().expect("seen");
            let n = seen.entry(action.clone()).or_default();
            *n += 1;
            *n
        };
        let json = headers.contains_key("x-amz-target");
        if action == self.action && n == self.nth {
            return injected(json, &action);
        }
        let url = format!(
            "{}{}",
            self.upstream,
            uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let mut req = self.http.request(method, url).body(body);
        for (k, v) in &headers {
            if k != "host" && k != "content-length" {
                req = req.header(k, v);
            }
        }
        match req.send().await {
            Ok(resp) => {
                let mut out = Response::builder().status(resp.status());
                for (k, v) in resp.headers() {
                    if k != "content-length" && k != "transfer-encoding" {
                        out = out.header(k, v);
                    }
                }
                let bytes = resp.bytes().await.unwrap_or_default();
                out.body(Body::from(bytes)).expect("response")
            }
            Err(e) => Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(e.to_string()))
                .expect("response"),
        }
    }
}

/// The API action of a call: the `X-Amz-Target` suffix (JSON protocols) or the form's
/// `Action` parameter (Query protocols).
fn action_of(headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(t) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return t.rsplit('.').next().unwrap_or(t).to_string();
    }
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("")
        .to_string()
}

fn injected(json: bool, action: &str) -> Response {
    let message = format!("fault injected into {action} by the test proxy");
    let (content_type, body) = if json {
        (
            "application/x-amz-json-1.0",
            format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#AccessDeniedException","message":"{message}"}}"#
            ),
        )
    } else {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
            ),
        )
    };
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("response")
}
