//! The HTTP routes of the public listener (health, version, sessions, history, rooms, the
//! WebSocket upgrade, the embedded web client) and of the admin listener (metrics).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fastwebsockets::upgrade::IncomingUpgrade;
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

use crate::auth::{self, Tokens};
use crate::http_error::ApiError;
use crate::hub::Hub;
use crate::protocol::{
    DEFAULT_HISTORY, ErrorCode, MAX_HISTORY_LIMIT, Refusal, User, validate_nickname, validate_room,
};
use crate::store::user_ids::UserIds;
use crate::store::{HistoryQuery, Store};
use crate::throttle::{self, Refused, Throttle};
use crate::uploads::Uploads;
use crate::uploads::routes::UploadState;
use crate::ws::Limits;

/// What every request handler shares.
pub struct AppState {
    pub hub: Arc<Hub>,
    /// The store, for the routes that read it directly (sessions, history, readiness).
    pub store: Arc<dyn Store>,
    /// New guests' ids, reserved from the store's counter a block at a time.
    pub user_ids: UserIds,
    pub tokens: Arc<Tokens>,
    /// Shared images: upload slots, checks, the embedded files.
    pub uploads: Arc<Uploads>,
    pub limits: Limits,
    /// New guests, per client address and per task.
    pub sessions: Throttle,
    /// History and room reads, per client address and per task.
    pub reads: Throttle,
    /// WebSocket upgrades, per client address.
    pub upgrades: Throttle,
    /// Upgrades beyond an address's budget, admitted on their guest's token.
    pub reconnects: throttle::Reconnects,
    /// Image upload slots, per guest (user id) and per task.
    pub upload_slots: Arc<Throttle<u64>>,
    /// Proxies in front that append to `X-Forwarded-For` (see [`throttle::client_ip`]).
    pub trusted_proxies: usize,
    /// Origins allowed to open a WebSocket; empty = the page's own host; `*` = any.
    pub allowed_origins: Vec<String>,
    /// The embedded web client of this build.
    pub web: crate::web::WebClient,
}

/// The public router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .route(
            "/api/session",
            post(session).layer(axum::extract::DefaultBodyLimit::max(
                crate::uploads::routes::MAX_JSON_BODY,
            )),
        )
        .route("/api/rooms/{room}", get(room_info))
        .route("/api/rooms/{room}/messages", get(history))
        .route("/ws", get(websocket))
        .route("/", get(index))
        .route("/room/{room}", get(index))
        .route("/assets/{build}/{*path}", get(asset))
        .fallback(static_file)
        .with_state(Arc::clone(&state))
        .merge(crate::uploads::routes::router(Arc::new(UploadState {
            uploads: Arc::clone(&state.uploads),
            tokens: Arc::clone(&state.tokens),
            slots: Arc::clone(&state.upload_slots),
            bodies: tokio::sync::Semaphore::new(crate::uploads::routes::MAX_UPLOAD_BODIES),
        })))
        .layer(axum::middleware::from_fn(trace_request))
}

/// One X-Ray span per request, continuing the ALB's `X-Amzn-Trace-Id`. Named by the route
/// template, never the path, so room ids stay out of span names. Health checks (the ALB's,
/// every few seconds per target) are not traced: they would be most of the traces and cost.
async fn trace_request(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    if matches!(route, "/healthz" | "/readyz") {
        return next.run(req).await;
    }
    // Fields are evaluated only when the span is enabled (traces exported).
    let span = tracing::info_span!(
        target: crate::telemetry::TARGET,
        "http.request",
        otel.name = format!("{} {route}", req.method()),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    if span.is_disabled() {
        return next.run(req).await;
    }
    crate::telemetry::continue_trace(&span, req.headers());
    let response = next.run(req).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// The admin router: metrics, never exposed through the load balancer.
pub fn admin_router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .with_state(hub)
}

fn bad_request(message: impl Into<String>) -> ApiError {
    Refusal::new(ErrorCode::BadRequest, message).into()
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let failing = crate::readiness::failing(&app.store, &app.hub).await;
    if failing.is_empty() {
        Json(json!({"status": "ok"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "failing": failing})),
        )
            .into_response()
    }
}

async fn version(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let info = &app.hub.info;
    Json(json!({
        "version": info.version,
        "git_sha": info.git_sha,
        "built_at": info.built_at,
        "color": info.color,
        "task": info.task,
    }))
}

#[derive(Deserialize)]
struct SessionRequest {
    nickname: Option<String>,
    token: Option<String>,
}

/// Takes one request of `what` from the client's and the task's budgets of `throttle`.
fn admit(
    app: &AppState,
    throttle: &Throttle,
    peer: SocketAddr,
    headers: &HeaderMap,
    what: &str,
) -> Result<(), ApiError> {
    let client = throttle::client_ip(headers, peer.ip(), app.trusted_proxies);
    throttle.check(client).map_err(|refused| {
        let whose = match refused {
            Refused::Address => "from this address",
            Refused::Task => "on this server",
        };
        Refusal::new(
            ErrorCode::RateLimited,
            format!("too many {what} {whose}; retry in a few seconds"),
        )
        .into()
    })
}

/// Creates a guest (new id from the atomic counter) or renews one from a valid token. New
/// guests are rate-limited per client address and per task (each burns a counter value).
async fn session(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<SessionRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(req) = body.map_err(|e| {
        bad_request(format!(
            "body must be JSON {{\"nickname\"?, \"token\"?}}: {}",
            e.body_text()
        ))
    })?;
    let nickname = req.nickname.as_deref().map(validate_nickname).transpose()?;
    let known = req.token.as_deref().and_then(|t| app.tokens.verify(t));
    let user = match known {
        Some(user) => User {
            nickname: nickname.unwrap_or(user.nickname),
            ..user
        },
        None => {
            admit(&app, &app.sessions, peer, &headers, "new guests")?;
            let id = app.user_ids.next().await.map_err(Refusal::from)?;
            User {
                id,
                nickname: nickname.unwrap_or_else(|| auth::default_nickname(id)),
                avatar: auth::random_avatar().to_string(),
            }
        }
    };
    Ok(Json(json!({
        "token": app.tokens.issue(&user),
        "user": user,
        "expires_in_secs": app.tokens.ttl().as_secs(),
    })))
}

#[derive(Deserialize)]
struct HistoryParams {
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<usize>,
}

async fn history(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(room): Path<String>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    validate_room(&room)?;
    admit(&app, &app.reads, peer, &headers, "history reads")?;
    let Query(p) = params.map_err(|e| {
        bad_request(format!(
            "before, after and limit must be non-negative integers: {}",
            e.body_text()
        ))
    })?;
    let limit = p.limit.unwrap_or(DEFAULT_HISTORY);
    if !(1..=MAX_HISTORY_LIMIT).contains(&limit) {
        return Err(bad_request(format!(
            "limit must be 1-{MAX_HISTORY_LIMIT}, got {limit}"
        )));
    }
    let page = app
        .store
        .history(
            &room,
            HistoryQuery {
                before: p.before,
                after: p.after,
                limit,
            },
        )
        .await
        .map_err(Refusal::from)?;
    Ok(Json(
        json!({"messages": page.messages, "has_more": page.has_more}),
    ))
}

async fn room_info(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(room): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    admit(&app, &app.reads, peer, &headers, "history reads")?;
    let (last_seq, members) = app.hub.room_info(&room).await?;
    Ok(Json(
        json!({"room": room, "last_seq": last_seq, "online": members.len(), "members": members}),
    ))
}

/// Whether a browser page from `origin` may open a WebSocket here.
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        // Not a browser: origin checks protect browsers' ambient credentials only.
        return true;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    if !allowed.is_empty() {
        return false;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

async fn websocket(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    held: Option<axum::Extension<crate::listen::Held>>,
    headers: HeaderMap,
    upgrade: Result<IncomingUpgrade, StatusCode>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|_| {
        bad_request("/ws needs a WebSocket upgrade (Sec-WebSocket-Key, Sec-WebSocket-Version: 13)")
    })?;
    if !origin_allowed(&app.allowed_origins, &headers) {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            "this Origin may not open a WebSocket here (CHAT_ALLOWED_ORIGINS)",
        )
        .into());
    }
    if app.hub.is_draining() {
        return Err(
            Refusal::new(ErrorCode::Unavailable, "this task is draining; reconnect").into(),
        );
    }
    // Beyond the address's budget a connection is admitted on its guest's token (a venue's
    // audience reconnecting at once after a drain or a rebalance): see `throttle::Reconnects`.
    let probation = match admit(&app, &app.upgrades, peer, &headers, "new connections") {
        Ok(()) => None,
        Err(refused) => {
            let client = throttle::client_ip(&headers, peer.ip(), app.trusted_proxies);
            Some(app.reconnects.probation(client).ok_or(refused)?)
        }
    };
    let (response, fut) = upgrade
        .upgrade()
        .map_err(|e| bad_request(format!("WebSocket upgrade failed: {e}")))?;
    // The connection's span is a child of the upgrade request's (the current span).
    let span = tracing::info_span!(target: crate::telemetry::TARGET, "ws.connection");
    let serve = crate::ws::serve(
        Arc::clone(&app.hub),
        Arc::clone(&app.tokens),
        app.limits,
        probation,
        fut,
    );
    // The socket keeps its place under the listener's connection caps until it closes.
    app.hub.spawn_connection(
        async move {
            serve.await;
            drop(held);
        }
        .instrument(span),
    );
    Ok(response.into_response())
}

async fn index(State(app): State<Arc<AppState>>) -> Response {
    app.web.page()
}

/// This build's web-client files: `/assets/<colour>-<build>/<path>`. Another build's path (a
/// task of the other build during a rolling deploy) is 404 and must not be cached.
async fn asset(
    State(app): State<Arc<AppState>>,
    Path((build, path)): Path<(String, String)>,
) -> Response {
    app.web.asset(&build, &path).unwrap_or_else(|| {
        let mut response = no_file(&format!("assets/{build}/{path}"));
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        response
    })
}

fn no_file(path: &str) -> Response {
    ApiError::from(Refusal::new(
        ErrorCode::NotFound,
        format!("no file /{path}"),
    ))
    .into_response()
}

async fn static_file(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") {
        return ApiError::from(Refusal::new(
            ErrorCode::NotFound,
            format!("no route {}", uri.path()),
        ))
        .into_response();
    }
    crate::web::plain_file(path).unwrap_or_else(|| no_file(path))
}

async fn render_metrics(State(hub): State<Arc<Hub>>) -> Response {
    // States are read at scrape time so a scrape never shows a stale link or drain state.
    let metrics = &hub.metrics;
    metrics
        .fanout_link_up
        .set(i64::from(hub.fanout().is_ready()));
    metrics.draining.set(i64::from(hub.is_draining()));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: &str, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, origin.parse().unwrap());
        h.insert(header::HOST, host.parse().unwrap());
        h
    }

    #[test]
    fn origin_rules() {
        assert!(origin_allowed(
            &[],
            &headers("http://chat.example:8080", "chat.example:8080")
        ));
        assert!(!origin_allowed(
            &[],
            &headers("http://evil.example", "chat.example")
        ));
        assert!(origin_allowed(
            &["*".into()],
            &headers("http://evil.example", "chat.example")
        ));
        assert!(origin_allowed(
            &["https://blog.example".into()],
            &headers("https://blog.example", "chat.example")
        ));
        assert!(!origin_allowed(
            &["https://blog.example".into()],
            &headers("https://evil.example", "chat.example")
        ));
        assert!(origin_allowed(&[], &HeaderMap::new()));
    }
}
