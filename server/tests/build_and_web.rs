//! Build identity and the per-build web client over real HTTP: `--version`, `/version`,
//! `welcome` and the `chat_build_info` metric name the same commit and build time; the page
//! links this build's versioned files, which are served immutable, while another build's path is
//! 404 and never cached; the page (and only the page) carries the configured frame-ancestors.

mod support;

use serde_json::json;
use support::{Client, TestServer, bin, session};

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.expect("GET")
}

#[tokio::test]
async fn build_identity_is_the_same_everywhere() {
    let s = TestServer::start(&[]).await;
    let version: serde_json::Value = get(&s.url("/version")).await.json().await.expect("json");
    let sha = version["git_sha"].as_str().expect("git_sha").to_string();
    let built = version["built_at"].as_str().expect("built_at").to_string();
    assert_eq!(sha, env!("CHAT_BUILD_GIT_SHA"));
    assert_eq!(built, env!("CHAT_BUILD_TIME"));
    assert!(
        sha == "unknown" || (sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit())),
        "{sha}"
    );
    assert!(built.ends_with('Z') && built.len() == 20, "{built}");

    let out = std::process::Command::new(bin())
        .arg("--version")
        .output()
        .expect("--version");
    let line = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        line.trim(),
        format!(
            "chat-server {} (git {sha}, built {built})",
            env!("CARGO_PKG_VERSION")
        )
    );

    let tok = session(&s.url(""), json!({"nickname": "Al"})).await;
    let mut c = Client::hello(&s.ws_url(), tok["token"].as_str().expect("token")).await;
    let welcome = c.recv_type("welcome").await;
    assert_eq!(welcome["server"]["git_sha"], sha.as_str());
    assert_eq!(welcome["server"]["built_at"], built.as_str());

    let metrics = get(&format!("http://{}/metrics", s.admin))
        .await
        .text()
        .await
        .expect("text");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("chat_build_info{"))
        .unwrap_or_else(|| panic!("no chat_build_info in:\n{metrics}"));
    assert!(line.ends_with(" 1"), "{line}");
    for label in [
        format!("git_sha=\"{sha}\""),
        format!("built_at=\"{built}\""),
        format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(line.contains(&label), "{line} lacks {label}");
    }
    s.stop().await;
}

#[tokio::test]
async fn the_page_links_this_builds_files_and_they_are_immutable() {
    let s = TestServer::start(&[]).await;
    let page = get(&s.url("/room/lobby")).await;
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let html = page.text().await.expect("html");
    let short = &env!("CHAT_BUILD_GIT_SHA")[..env!("CHAT_BUILD_GIT_SHA").len().min(12)];
    let base = format!("/assets/blue-{short}/");
    for file in ["app.js", "style.css"] {
        assert!(
            html.contains(&format!("\"{base}{file}\"")),
            "page does not link {base}{file}:\n{html}"
        );
    }
    assert!(
        html.contains("src=\"/config.js\""),
        "config.js stays unversioned (deployments replace it)"
    );

    // The page's module imports its siblings relatively: they resolve under the same prefix.
    for file in ["app.js", "style.css", "js/endpoints.js"] {
        let res = get(&s.url(&format!("{base}{file}"))).await;
        assert_eq!(res.status(), 200, "{base}{file}");
        assert_eq!(
            res.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
    }
    let js = get(&s.url(&format!("{base}app.js"))).await;
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );

    // Another build's (or colour's) path: not this task's files, and never cached.
    for other in [
        "/assets/green-0123456789ab/app.js",
        "/assets/blue-000000000000/app.js",
    ] {
        let res = get(&s.url(other)).await;
        assert_eq!(res.status(), 404, "{other}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{other}");
    }
    // Plain paths keep working for pages served elsewhere.
    assert_eq!(get(&s.url("/app.js")).await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn frame_ancestors_are_sent_on_the_page_only() {
    let s = TestServer::start(&[
        "--frame-ancestors",
        "https://conf.example.com,https://*.example.org",
    ])
    .await;
    for path in ["/", "/room/keynote"] {
        let res = get(&s.url(path)).await;
        assert_eq!(
            res.headers()["content-security-policy"],
            "frame-ancestors 'self' https://conf.example.com https://*.example.org",
            "{path}"
        );
        assert!(res.headers().get("x-frame-options").is_none());
    }
    for path in ["/version", "/healthz"] {
        assert!(
            get(&s.url(path))
                .await
                .headers()
                .get("content-security-policy")
                .is_none(),
            "{path}"
        );
    }
    s.stop().await;

    let s = TestServer::start(&[]).await;
    assert_eq!(
        get(&s.url("/room/x")).await.headers()["content-security-policy"],
        "frame-ancestors 'self'"
    );
    s.stop().await;
}
