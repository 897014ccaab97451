//! The HTTP side of uploads: the slot, the PUT (embedded backend), the check, and serving the
//! stored images (embedded backend). Every call but the image GET is authenticated with the
//! guest token as `Authorization: Bearer …`. No body is read before the token (and for a PUT,
//! the slot and its announced size) is checked: a PUT's bytes are read into memory only
//! within [`MAX_UPLOAD_BODIES`] at once per task and [`UPLOAD_BODY_TIMEOUT`], and a JSON
//! body only up to [`MAX_JSON_BODY`].

use std::sync::Arc;

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

use super::Uploads;
use super::backend::{Backend, Fetched};
use super::sniff::{ImageKind, MAX_IMAGE_BYTES};
use crate::auth::Tokens;
use crate::http_error::ApiError;
use crate::protocol::{ErrorCode, Refusal, User};
use crate::throttle::{Refused, Throttle};

/// Upload bodies read at once on a task (each up to 5 MiB in memory until stored).
pub const MAX_UPLOAD_BODIES: usize = 6;
/// How long an upload's body may take to arrive whole.
pub const UPLOAD_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest JSON body of `POST /api/uploads` (and of `POST /api/session`).
pub const MAX_JSON_BODY: usize = 4096;

/// What the upload routes need.
pub struct UploadState {
    pub uploads: Arc<Uploads>,
    pub tokens: Arc<Tokens>,
    /// Upload slots per guest and per task (each slot may put up to 5 MiB into storage).
    pub slots: Arc<Throttle<u64>>,
    /// Permits for the upload bodies being read ([`MAX_UPLOAD_BODIES`]).
    pub bodies: Semaphore,
}

/// `/api/uploads…` and `/uploads/{name}`, ready to merge into the public router.
pub fn router(state: Arc<UploadState>) -> axum::Router {
    axum::Router::new()
        .route("/api/uploads", post(begin))
        .route("/api/uploads/{id}", axum::routing::put(receive))
        .route("/api/uploads/{id}/complete", post(complete))
        .route("/uploads/{name}", get(serve))
        .with_state(state)
}

#[derive(Deserialize)]
struct BeginBody {
    content_type: String,
    bytes: u64,
}

async fn begin(
    State(s): State<Arc<UploadState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<super::Slot>, ApiError> {
    let user = bearer(&s.tokens, &headers)?;
    s.slots.check(user.id).map_err(|refused| {
        let whose = match refused {
            Refused::Address => "from you",
            Refused::Task => "on this server",
        };
        Refusal::new(
            ErrorCode::RateLimited,
            format!("too many images {whose}; retry in a minute"),
        )
    })?;
    let shape = || {
        Refusal::new(
            ErrorCode::BadRequest,
            format!(
                "body must be {{\"content_type\":…,\"bytes\":…}} of at most {MAX_JSON_BODY} bytes"
            ),
        )
    };
    let bytes = axum::body::to_bytes(body, MAX_JSON_BODY)
        .await
        .map_err(|_| shape())?;
    let body: BeginBody = serde_json::from_slice(&bytes).map_err(|_| shape())?;
    Ok(Json(
        s.uploads
            .begin(&user, &body.content_type, body.bytes)
            .await?,
    ))
}

async fn receive(
    State(s): State<Arc<UploadState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let user = bearer(&s.tokens, &headers)?;
    let announced = s.uploads.announced(&user, &id)?;
    let too_large = || {
        Refusal::new(
            ErrorCode::TooLarge,
            format!("an image is at most {MAX_IMAGE_BYTES} bytes (5 MiB)"),
        )
    };
    if announced > MAX_IMAGE_BYTES {
        return Err(too_large().into());
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|l| l > MAX_IMAGE_BYTES) {
        return Err(too_large().into());
    }
    if let Some(length) = length
        && length != announced
    {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            format!("the upload has {length} bytes but {announced} were announced"),
        )
        .into());
    }
    let _permit = s.bodies.try_acquire().map_err(|_| {
        Refusal::new(
            ErrorCode::Unavailable,
            "too many uploads in progress on this server; retry in a few seconds",
        )
    })?;
    // One byte over what was announced is enough to refuse it.
    let limit = usize::try_from(announced)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let read = tokio::time::timeout(UPLOAD_BODY_TIMEOUT, axum::body::to_bytes(body, limit));
    let body = match read.await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) if announced == MAX_IMAGE_BYTES => return Err(too_large().into()),
        Ok(Err(_)) => {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!("the upload is not the {announced} bytes announced"),
            )
            .into());
        }
        Err(_) => {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!(
                    "the upload did not arrive within {} s",
                    UPLOAD_BODY_TIMEOUT.as_secs()
                ),
            )
            .into());
        }
    };
    s.uploads.receive(&user, &id, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn complete(
    State(s): State<Arc<UploadState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = bearer(&s.tokens, &headers)?;
    let offer = s.uploads.complete(&user, &id).await?;
    Ok(Json(json!({ "attachment": offer })))
}

/// A stored image (embedded backend), served so a browser can only ever show it as an image.
async fn serve(State(s): State<Arc<UploadState>>, Path(name): Path<String>) -> Response {
    let not_found =
        || ApiError::from(Refusal::new(ErrorCode::NotFound, "no such image")).into_response();
    if !matches!(s.uploads.backend, Backend::Embedded { .. }) {
        return not_found();
    }
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return not_found();
    };
    let Some(kind) = ImageKind::from_ext(ext) else {
        return not_found();
    };
    if stem.is_empty()
        || !stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return not_found();
    }
    match s.uploads.backend.get(&name).await {
        Ok(Fetched::Found(bytes)) => (
            [
                (header::CONTENT_TYPE, kind.mime()),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; sandbox",
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Fetched::Missing | Fetched::TooLarge(_)) => not_found(),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "Reading a stored image failed");
            ApiError::from(Refusal::new(
                ErrorCode::Unavailable,
                "the image cannot be read now",
            ))
            .into_response()
        }
    }
}

/// The guest a request's `Authorization: Bearer <token>` names.
fn bearer(tokens: &Tokens, headers: &HeaderMap) -> Result<User, Refusal> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| tokens.verify(t.trim()))
        .ok_or_else(|| {
            Refusal::new(
                ErrorCode::Unauthorized,
                "send the guest token as Authorization: Bearer <token>",
            )
        })
}
