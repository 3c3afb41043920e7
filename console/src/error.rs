//! API errors: a status, a stable code and a one-line message, as JSON
//! `{"error": {"code": ..., "message": ...}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use libos_kernel::{KernelError, StoreError};
use serde_json::json;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// One line for people.
    pub message: String,
}

impl ApiError {
    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code: "bad_request", message: message.into() }
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: message.into() }
    }

    /// 500 `internal`: the handler itself failed (a bug, not the request).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "internal", message: message.into() }
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "this request needs the server's token in an `Authorization: Bearer` header".into(),
        }
    }

    /// 403 `forbidden_host`.
    pub fn forbidden_host(host: &str) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden_host",
            message: format!("host `{host}` is not this loopback server (use localhost or 127.0.0.1)"),
        }
    }
}

impl From<KernelError> for ApiError {
    fn from(e: KernelError) -> ApiError {
        let message = e.to_string().lines().next().unwrap_or_default().to_string();
        let (status, code) = match &e {
            KernelError::NoSuchProcess(_)
            | KernelError::NoSuchRequest(_)
            | KernelError::NoSuchObject(_)
            | KernelError::NoSuchGrant(_)
            | KernelError::NoSuchImage(_) => (StatusCode::NOT_FOUND, "not_found"),
            KernelError::Transition(_) | KernelError::Stale { .. } | KernelError::Refused(_) => {
                (StatusCode::CONFLICT, "conflict")
            }
            KernelError::Invalid(_) | KernelError::BadToolName(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            KernelError::Store(StoreError::Busy) => (StatusCode::SERVICE_UNAVAILABLE, "store_busy"),
            KernelError::Store(StoreError::Unreachable(_) | StoreError::CommitUnknown(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unreachable")
            }
            KernelError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
        };
        ApiError { status, code, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response()
    }
}
