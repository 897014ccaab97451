//! Images end to end against real servers: the embedded store (a chat-server in this process,
//! files under its data dir) and S3 (a chat-server process on a real moto server, with
//! presigned uploads). Every refusal names its rule and keeps nothing.

mod moto;
mod support;

use aws_sdk_s3::config::{Credentials, Region};
use moto::Moto;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Client, ServerProcess, TestServer, session};

/// A real `w` × `h` PNG (signature, IHDR, an IDAT of stored-deflate zeros, IEND). The CRCs
/// are not checked by the server, which reads only type and size.
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut b = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    b.extend_from_slice(b"IHDR");
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(b"IEND");
    b.extend_from_slice(&[0xae, 0x42, 0x60, 0x82]);
    b
}

const GIF_1X1: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn new(base: &str, nickname: &str) -> Api {
        let s = session(base, json!({"nickname": nickname})).await;
        Api {
            base: base.to_string(),
            token: s["token"].as_str().expect("token").to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn begin(&self, content_type: &str, bytes: u64) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/api/uploads", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"content_type": content_type, "bytes": bytes}))
            .send()
            .await
            .expect("POST /api/uploads");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    /// PUTs `body` where the slot says (chat-server or a presigned S3 URL).
    async fn put(&self, slot: &Value, body: Vec<u8>) -> StatusCode {
        let url = slot["upload"]["url"].as_str().expect("upload url");
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        };
        let mut req = self.http.put(&url).body(body);
        for (k, v) in slot["upload"]["headers"].as_object().expect("headers") {
            req = req.header(k.as_str(), v.as_str().expect("header value"));
        }
        if url.starts_with(&self.base) {
            req = req.bearer_auth(&self.token);
        }
        req.send().await.expect("PUT upload").status()
    }

    async fn complete(&self, id: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/api/uploads/{id}/complete", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("POST complete");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    /// The three steps; the `complete` answer.
    async fn upload(&self, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let (status, slot) = self.begin(content_type, body.len() as u64).await;
        assert_eq!(status, 200, "{slot}");
        let put = self.put(&slot, body).await;
        assert!(put.is_success(), "PUT answered {put}");
        self.complete(slot["id"].as_str().expect("id")).await
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn an_image_is_uploaded_checked_sent_and_served_embedded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path(), &[]).await;
    let base = server.url("");
    let alice = Api::new(&base, "Alice").await;
    let bytes = png(640, 360);
    let (status, done) = alice.upload("image/png", bytes.clone()).await;
    assert_eq!(status, 200, "{done}");
    let att = &done["attachment"];
    assert_eq!(att["content_type"], "image/png");
    assert_eq!(
        (att["width"].as_u64(), att["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(att["bytes"].as_u64(), Some(bytes.len() as u64));
    let url = att["url"].as_str().expect("url").to_string();
    assert!(
        url.starts_with("/uploads/") && url.ends_with(".png"),
        "{url}"
    );

    // Kept under the data dir, served as an image and nothing else.
    let name = url.trim_start_matches("/uploads/");
    assert_eq!(
        std::fs::read(dir.path().join("uploads").join(name)).ok(),
        Some(bytes.clone())
    );
    let served = reqwest::get(server.url(&url)).await.expect("GET image");
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert_eq!(served.bytes().await.expect("body").to_vec(), bytes);

    // Sent with no text; everyone (and history) gets the facts, never the token.
    let mut a = Client::with_token(&server.ws_url(), &alice.token).await;
    let mut b = Client::connect(&base, &server.ws_url(), "Bob").await;
    a.join("pics").await;
    b.join("pics").await;
    let token = att["token"].as_str().expect("token");
    a.send(json!({"type": "send", "room": "pics", "client_msg_id": "img-1", "attachment": token}))
        .await;
    a.recv_type("ack").await;
    let m = b.recv_type("message").await;
    assert_eq!(m["text"], "");
    let want = json!({"url": url, "content_type": "image/png", "width": 640, "height": 360, "bytes": bytes.len()});
    assert_eq!(m["attachment"], want);
    let (_, page) = support::get_json(&server.url("/api/rooms/pics/messages")).await;
    assert_eq!(page["messages"][0]["attachment"], want);

    // Bob cannot send Alice's attachment, nor a forged one; text alone still needs text.
    for (id, bad) in [
        ("b-1", token.to_string()),
        ("b-2", format!("{token}x")),
        ("b-3", "x".repeat(2000)),
    ] {
        b.send(json!({"type": "send", "room": "pics", "client_msg_id": id, "attachment": bad}))
            .await;
        let e = b.recv_type("error").await;
        assert_eq!(
            (e["code"].as_str(), e["client_msg_id"].as_str()),
            (Some("bad_request"), Some(id)),
            "{e}"
        );
    }
    b.send(json!({"type": "send", "room": "pics", "client_msg_id": "b-4", "text": " "}))
        .await;
    assert_eq!(b.recv_type("error").await["code"], "bad_request");
    let (_, page) = support::get_json(&server.url("/api/rooms/pics/messages")).await;
    assert_eq!(
        page["messages"].as_array().map(Vec::len),
        Some(1),
        "nothing else stored"
    );
    server.stop().await;
}

#[tokio::test]
async fn uploads_that_break_a_rule_are_refused_and_nothing_is_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start_in(dir.path(), &[]).await;
    let base = server.url("");
    let alice = Api::new(&base, "Alice").await;
    let bob = Api::new(&base, "Bob").await;

    // Without a token.
    let r = reqwest::Client::new()
        .post(server.url("/api/uploads"))
        .json(&json!({"content_type": "image/png", "bytes": 10}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 401);
    // Declared type and size.
    let (s, v) = alice.begin("image/svg+xml", 10).await;
    assert_eq!((s.as_u16(), code(&v)), (415, "unsupported_type"), "{v}");
    let (s, v) = alice.begin("image/png", 5 * 1024 * 1024 + 1).await;
    assert_eq!((s.as_u16(), code(&v)), (413, "too_large"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("5242880"),
        "{v}"
    );
    let (s, v) = alice.begin("image/png", 0).await;
    assert_eq!((s.as_u16(), code(&v)), (400, "bad_request"), "{v}");

    // HTML declared as PNG, a GIF declared as PNG, a size that differs from the slot.
    for body in [
        b"<html><script>alert(1)</script></html>".to_vec(),
        GIF_1X1.to_vec(),
    ] {
        let (_, slot) = alice.begin("image/png", body.len() as u64).await;
        assert_eq!(
            alice.put(&slot, body).await.as_u16(),
            415,
            "unsupported_type"
        );
        let (s, v) = alice.complete(slot["id"].as_str().expect("id")).await;
        assert_eq!(
            (s.as_u16(), code(&v)),
            (404, "not_found"),
            "nothing stored: {v}"
        );
    }
    let (_, slot) = alice.begin("image/png", 999).await;
    assert_eq!(alice.put(&slot, png(2, 2)).await.as_u16(), 400);
    // A body over 5 MiB is cut off by the limit, whatever was announced.
    let (_, slot) = alice.begin("image/png", 5 * 1024 * 1024).await;
    assert_eq!(
        alice
            .put(&slot, vec![0; 5 * 1024 * 1024 + 1])
            .await
            .as_u16(),
        413
    );
    // Someone else's slot, a forged id.
    let (_, slot) = alice.begin("image/png", 60).await;
    let id = slot["id"].as_str().expect("id");
    let (s, v) = bob.complete(id).await;
    assert_eq!((s.as_u16(), code(&v)), (403, "forbidden"), "{v}");
    let (s, v) = alice.complete(&format!("{id}x")).await;
    assert_eq!((s.as_u16(), code(&v)), (404, "not_found"), "{v}");
    let (s, v) = alice.complete(id).await;
    assert_eq!(
        (s.as_u16(), code(&v)),
        (404, "not_found"),
        "not yet uploaded: {v}"
    );

    let kept: Vec<_> = std::fs::read_dir(dir.path().join("uploads"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(kept.is_empty(), "refused uploads left files: {kept:?}");
    // A stored image's name cannot climb out of the uploads directory.
    let r = reqwest::get(server.url("/uploads/..%2Ftoken-secret"))
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn on_s3_the_browser_uploads_through_a_presigned_url_and_bad_objects_are_deleted() {
    let moto = Moto::start().await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new(moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket("chat-uploads")
        .send()
        .await
        .expect("create bucket");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env: Vec<(&str, String)> = moto.env();
    env.extend([
        ("CHAT_DATA_DIR", dir.path().display().to_string()),
        ("CHAT_TOKEN_SECRET", support::SECRET.to_string()),
        ("CHAT_UPLOADS_BUCKET", "chat-uploads".to_string()),
        (
            "CHAT_UPLOADS_PUBLIC_URL",
            "https://cdn.example.test/uploads".to_string(),
        ),
    ]);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = ServerProcess::start(&env_refs).await;
    let base = server.url("");
    let alice = Api::new(&base, "Alice").await;

    // The slot is a presigned PUT straight to the bucket, never through chat-server.
    let bytes = png(300, 200);
    let (_, slot) = alice.begin("image/png", bytes.len() as u64).await;
    let target = slot["upload"]["url"].as_str().expect("url");
    assert!(target.starts_with(&moto.endpoint()), "{target}");
    assert!(target.contains("X-Amz-Signature="), "{target}");
    // A browser sends only the slot's headers and its Origin: a checksum signed into the URL
    // (what the SDK's default checksum setting, which the server ships, did in some releases)
    // is one it never sends, and S3 answers BadDigest (aws-sdk-rust#1240).
    let query = target
        .split_once('?')
        .map_or("", |(_, q)| q)
        .to_ascii_lowercase();
    assert!(
        !query.contains("x-amz-checksum") && !query.contains("x-amz-sdk-checksum-algorithm"),
        "the presigned PUT signs a checksum a browser does not send: {target}"
    );
    let browser_put = reqwest::Client::new()
        .put(target)
        .header(
            "content-type",
            slot["upload"]["headers"]["content-type"]
                .as_str()
                .expect("type"),
        )
        .header(
            "cache-control",
            slot["upload"]["headers"]["cache-control"]
                .as_str()
                .expect("cache-control"),
        )
        .header("origin", "https://chat.example.test")
        .body(bytes.clone())
        .send()
        .await
        .expect("browser PUT");
    assert!(
        browser_put.status().is_success(),
        "{}: {}",
        browser_put.status(),
        browser_put.text().await.unwrap_or_default()
    );
    let (s, done) = alice.complete(slot["id"].as_str().expect("id")).await;
    assert_eq!(s, 200, "{done}");
    let url = done["attachment"]["url"].as_str().expect("url");
    let name = url
        .strip_prefix("https://cdn.example.test/uploads/")
        .expect("public URL");
    // The checked bytes cannot be replaced through the same URL (issue 26): other bytes of
    // the same length and type, with the headers the slot named, are refused.
    let mut other = bytes.clone();
    let last = other.len() - 20;
    other[last] ^= 0xff;
    let again = alice.put(&slot, other).await;
    assert_eq!(again.as_u16(), 412, "a second PUT to the presigned URL");
    assert_eq!(
        (
            done["attachment"]["width"].as_u64(),
            done["attachment"]["height"].as_u64()
        ),
        (Some(300), Some(200))
    );
    let object = s3
        .get_object()
        .bucket("chat-uploads")
        .key(format!("uploads/{name}"))
        .send()
        .await
        .expect("object");
    assert_eq!(object.content_type(), Some("image/png"));
    assert_eq!(
        object
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec(),
        bytes
    );

    // An HTML file put under a PNG slot: refused at complete, and the object is gone.
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    let (_, slot) = alice.begin("image/png", html.len() as u64).await;
    assert!(
        alice.put(&slot, html).await.is_success(),
        "S3 takes any bytes"
    );
    let (s, v) = alice.complete(slot["id"].as_str().expect("id")).await;
    assert_eq!((s.as_u16(), code(&v)), (415, "unsupported_type"), "{v}");
    let listed = s3
        .list_objects_v2()
        .bucket("chat-uploads")
        .send()
        .await
        .expect("list");
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys,
        vec![format!("uploads/{name}").as_str()],
        "only the good image is kept"
    );

    // The attachment is sent and stored with the CDN URL.
    let mut a = Client::with_token(&server.ws_url(), &alice.token).await;
    a.join("pics").await;
    a.send(json!({"type": "send", "room": "pics", "client_msg_id": "s3-1", "text": "the stage", "attachment": done["attachment"]["token"]}))
        .await;
    let m = a.recv_type("message").await;
    assert_eq!(m["attachment"]["url"], url);
    assert_eq!(m["text"], "the stage");
}

/// Each slot may put 5 MiB into storage: slots are limited per guest and per task, with a
/// clear 429 naming whose budget ran out, and one guest's loop leaves others their own.
#[tokio::test]
async fn upload_slots_are_limited_per_guest_and_per_task() {
    let s = TestServer::start(&["--upload-limit-user", "1:3", "--upload-limit-task", "1:5"]).await;
    let base = s.url("");
    let loop_guest = Api::new(&base, "Looper").await;
    for i in 0..3 {
        let (status, _) = loop_guest.begin("image/png", 1000).await;
        assert_eq!(status, StatusCode::OK, "slot {i} within the guest's burst");
    }
    let (status, body) = loop_guest.begin("image/png", 1000).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("from you"),
        "{body}"
    );
    // Another guest has their own budget, until the task's runs out (5 in all).
    let other = Api::new(&base, "Other").await;
    for i in 0..2 {
        let (status, _) = other.begin("image/png", 1000).await;
        assert_eq!(status, StatusCode::OK, "the other guest's slot {i}");
    }
    let (status, body) = other.begin("image/png", 1000).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("on this server"),
        "{body}"
    );
    s.stop().await;
}
