//! The HTTP side of uploads: the slot, the PUT (embedded backend), the check, and serving the
//! stored images (embedded backend). Every call but the image GET is authenticated with the
//! guest token as `Authorization: Bearer …`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::Uploads;
use super::backend::{Backend, Fetched};
use super::sniff::{ImageKind, MAX_IMAGE_BYTES};
use crate::auth::Tokens;
use crate::http_error::ApiError;
use crate::protocol::{ErrorCode, Refusal, User};

/// What the upload routes need.
pub struct UploadState {
    pub uploads: Arc<Uploads>,
    pub tokens: Arc<Tokens>,
}

/// `/api/uploads…` and `/uploads/{name}`, ready to merge into the public router.
pub fn router(state: Arc<UploadState>) -> axum::Router {
    axum::Router::new()
        .route("/api/uploads", post(begin))
        .route(
            "/api/uploads/{id}",
            axum::routing::put(receive).layer(DefaultBodyLimit::max(MAX_IMAGE_BYTES as usize)),
        )
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
    body: Result<Json<BeginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<super::Slot>, ApiError> {
    let user = bearer(&s.tokens, &headers)?;
    let Json(body) = body.map_err(|e| {
        Refusal::new(
            ErrorCode::BadRequest,
            format!(
                "body must be {{\"content_type\":…,\"bytes\":…}}: {}",
                e.body_text()
            ),
        )
    })?;
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
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let user = bearer(&s.tokens, &headers)?;
    let body = body.map_err(|e| {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::TooLarge
        } else {
            ErrorCode::BadRequest
        };
        Refusal::new(
            code,
            format!("an image is at most {MAX_IMAGE_BYTES} bytes (5 MiB)"),
        )
    })?;
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
