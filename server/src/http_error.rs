//! The JSON error answer of every HTTP route: `{"error":{"code","message"}}` with the status
//! its code calls for. Its own module so that route modules (`http`, `uploads::routes`) share
//! it without importing each other.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::protocol::{ErrorCode, Refusal};

/// An error answer: `{"error":{"code","message"}}` with a status.
pub struct ApiError(StatusCode, Refusal);

impl From<Refusal> for ApiError {
    fn from(e: Refusal) -> Self {
        let status = match e.code {
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError(status, e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.1.code, "message": self.1.message}});
        (self.0, Json(body)).into_response()
    }
}
