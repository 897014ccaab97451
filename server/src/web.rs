//! The embedded web client as chat-server serves it. The page (`/`, `/room/{room}`) links its
//! files under this build's versioned path `/assets/<colour>-<build>/…` and carries
//! `Content-Security-Policy: frame-ancestors 'self' <CHAT_FRAME_ANCESTORS>`; the files there are
//! immutable (CloudFront caches them, the ALB routes each colour's prefix to that colour), so a
//! page and its scripts always come from one build. The same files stay at their plain paths
//! (`/app.js`, `/js/…`) for pages served elsewhere.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::build_info;

/// The web client, embedded in the binary (read from disk in debug builds).
#[derive(rust_embed::Embed)]
#[folder = "../frontend/"]
#[exclude = "tests/*"]
#[exclude = "*/node_modules/*"]
struct Frontend;

/// Path prefix of the versioned files (terraform/modules/alb and cdn use the same).
pub const ASSETS_PREFIX: &str = "/assets";
/// Loaded by the page at its plain path on purpose: deployments replace it to point the client
/// at another API host, so it is never versioned or cached.
const UNVERSIONED: &[&str] = &["config.js"];

/// The page and its headers, prepared once at start.
pub struct WebClient {
    build_id: String,
    page: Bytes,
    csp: HeaderValue,
}

impl WebClient {
    /// `frame_ancestors`: origins allowed to embed the page besides its own (validated by config).
    pub fn new(color: &str, frame_ancestors: &[String]) -> anyhow::Result<WebClient> {
        let build_id = build_info::asset_build_id(color);
        let index = Frontend::get("index.html")
            .ok_or_else(|| anyhow::anyhow!("the embedded web client has no index.html"))?;
        let index = std::str::from_utf8(&index.data)
            .map_err(|e| anyhow::anyhow!("index.html is not UTF-8: {e}"))?;
        let page = Bytes::from(versioned_links(index, &build_id));
        let csp = HeaderValue::from_str(&frame_ancestors_policy(frame_ancestors))
            .map_err(|e| anyhow::anyhow!("CHAT_FRAME_ANCESTORS makes an invalid header: {e}"))?;
        Ok(WebClient {
            build_id,
            page,
            csp,
        })
    }

    /// This build's prefix, e.g. `/assets/green-0123abcd4567`.
    pub fn assets_base(&self) -> String {
        format!("{ASSETS_PREFIX}/{}", self.build_id)
    }

    /// The page: never cached (it names the build), framable by the configured origins only.
    pub fn page(&self) -> Response {
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (header::CONTENT_SECURITY_POLICY, self.csp.clone()),
            ],
            Body::from(self.page.clone()),
        )
            .into_response()
    }

    /// A file of this build: cached for a year. `None` for another build's path (the ALB sends
    /// each colour's prefix to that colour, so this is a task of another build during a rolling
    /// deploy: the caller answers 404 and says not to cache it) or a missing file.
    pub fn asset(&self, build: &str, path: &str) -> Option<Response> {
        if build != self.build_id {
            return None;
        }
        file(path, "public, max-age=31536000, immutable")
    }
}

/// A file at its plain path (`/app.js`): revalidated after five minutes. `None` when missing.
pub fn plain_file(path: &str) -> Option<Response> {
    let cache = if path.ends_with(".html") || UNVERSIONED.contains(&path) {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    file(path, cache)
}

fn file(path: &str, cache: &'static str) -> Option<Response> {
    let found = Frontend::get(path)?;
    let mime = found.metadata.mimetype().to_string();
    Some(
        (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, cache.to_string()),
            ],
            Body::from(found.data.into_owned()),
        )
            .into_response(),
    )
}

/// `frame-ancestors 'self' <origins>`: the value chat-server and CloudFront both send.
pub fn frame_ancestors_policy(origins: &[String]) -> String {
    let mut value = String::from("frame-ancestors 'self'");
    for origin in origins {
        value.push(' ');
        value.push_str(origin);
    }
    value
}

/// index.html with each `href="/x"` / `src="/x"` naming an embedded file (except the
/// unversioned ones) rewritten to `<prefix>/<build>/x`.
fn versioned_links(index: &str, build_id: &str) -> String {
    let mut out = String::with_capacity(index.len() + 256);
    let mut rest = index;
    while let Some(value_start) = ["href=\"", "src=\""]
        .iter()
        .filter_map(|p| rest.find(p).map(|i| i + p.len()))
        .min()
    {
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        let end = rest.find('"').unwrap_or(rest.len());
        let link = &rest[..end];
        match link.strip_prefix('/') {
            Some(path) if !UNVERSIONED.contains(&path) && Frontend::get(path).is_some() => {
                out.push_str(&format!("{ASSETS_PREFIX}/{build_id}/{path}"));
            }
            _ => out.push_str(link),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_point_at_the_build_except_config() {
        let page = versioned_links(
            r##"<link href="/style.css"><script src="/config.js"></script><script src="/app.js"></script><a href="#x">"##,
            "green-abc",
        );
        assert_eq!(
            page,
            r##"<link href="/assets/green-abc/style.css"><script src="/config.js"></script><script src="/assets/green-abc/app.js"></script><a href="#x">"##
        );
    }

    #[test]
    fn policy_lists_self_then_the_origins() {
        assert_eq!(frame_ancestors_policy(&[]), "frame-ancestors 'self'");
        assert_eq!(
            frame_ancestors_policy(&[
                "https://conf.example.com".into(),
                "https://*.example.org".into()
            ]),
            "frame-ancestors 'self' https://conf.example.com https://*.example.org"
        );
    }
}
