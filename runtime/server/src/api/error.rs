//! One error type for every handler, mapped to a status and StackStorm's
//! `{"faultstring": "..."}` body in one place.

use crate::{CancelError, ControlError, DispatchError, RequestError, RespondError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use squall_store::StoreError;

/// The error body, as StackStorm's API.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Fault {
    /// What went wrong.
    pub faultstring: String,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or refused by validation.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid API key, or a bad webhook signature.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: refused whoever asks (a browser-borne request: foreign `Host` header).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 409: the resource is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// 415: a state-changing request that is neither JSON nor carries a credential (what a
    /// cross-site form or `text/plain` POST looks like).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: the server's backlog is full (`[server] max_backlog`); sent with
    /// `Retry-After: 1`.
    #[error("{0}")]
    TooManyRequests(String),
    /// 413: the body is over `[server] max_body`.
    #[error("request body is larger than the {0} byte limit ([server] max_body)")]
    TooLarge(u64),
    /// 500: Squall failed (the store, ...). Retrying may help.
    #[error("{0}")]
    Internal(String),
    /// 503: the store is recovering from an I/O error; sent with `Retry-After: 1`.
    #[error("{0}")]
    Unavailable(String),
    /// 507: the disk is full; the write was refused (reads keep working).
    #[error("{0}")]
    InsufficientStorage(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "api request failed");
        }
        let mut response = (
            status,
            axum::Json(Fault {
                faultstring: self.to_string(),
            }),
        )
            .into_response();
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<crate::Overloaded> for ApiError {
    fn from(e: crate::Overloaded) -> Self {
        ApiError::TooManyRequests(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full(_) => ApiError::InsufficientStorage(e.to_string()),
            StoreError::TooDeep(_) => ApiError::BadRequest(e.to_string()),
            StoreError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::UnknownAction(_) => ApiError::NotFound(e.to_string()),
            RequestError::Disabled(_) | RequestError::Parameters(_) => {
                ApiError::BadRequest(e.to_string())
            }
            RequestError::Store(s) => s.into(),
        }
    }
}

impl From<crate::SensorWebhookError> for ApiError {
    fn from(e: crate::SensorWebhookError) -> Self {
        use crate::SensorWebhookError as E;
        match e {
            E::Disabled(_) => ApiError::NotFound(e.to_string()),
            E::NotRunning { .. } | E::Failed { .. } => ApiError::Internal(e.to_string()),
            E::Refused { .. } => ApiError::TooManyRequests(e.to_string()),
            E::Store(s) => s.into(),
        }
    }
}

impl From<DispatchError> for ApiError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::UnknownTrigger(_) => ApiError::NotFound(e.to_string()),
            DispatchError::InvalidPayload { .. } => ApiError::BadRequest(e.to_string()),
            DispatchError::Store(s) => s.into(),
        }
    }
}

impl From<CancelError> for ApiError {
    fn from(e: CancelError) -> Self {
        match e {
            CancelError::NotFound(_) => ApiError::NotFound(e.to_string()),
            CancelError::Completed { .. }
            | CancelError::Elsewhere { .. }
            | CancelError::Refused(_) => ApiError::Conflict(e.to_string()),
            CancelError::Store(s) => s.into(),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ControlError::WrongRunner { .. } => ApiError::BadRequest(e.to_string()),
            ControlError::Refused { .. } | ControlError::Unloaded { .. } => {
                ApiError::Conflict(e.to_string())
            }
            ControlError::Store(s) => s.into(),
        }
    }
}

impl From<RespondError> for ApiError {
    fn from(e: RespondError) -> Self {
        match e {
            RespondError::NotFound(_) => ApiError::NotFound(e.to_string()),
            RespondError::NotInquiry(_) | RespondError::Invalid(_) => {
                ApiError::BadRequest(e.to_string())
            }
            RespondError::Closed { .. } => ApiError::Conflict(e.to_string()),
            RespondError::Store(s) => s.into(),
        }
    }
}

/// The raw body, or 413 / 400.
///
/// # Errors
/// [`ApiError::TooLarge`] over `limit` bytes; [`ApiError::BadRequest`] if unreadable.
pub fn body(body: Result<Bytes, BytesRejection>, limit: u64) -> Result<Bytes, ApiError> {
    body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => ApiError::TooLarge(limit),
        other => ApiError::BadRequest(format!("cannot read request body: {other}")),
    })
}

/// The body as JSON of type `T`, nested at most `[server] max_json_depth` levels (see
/// [`squall_core::json::max_depth`]).
///
/// # Errors
/// [`ApiError::BadRequest`] naming the JSON error and its line and column, or the depth limit.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    squall_core::json::check_depth(bytes)
        .map_err(|e| ApiError::BadRequest(format!("request body refused: {e}")))?;
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))
}

/// Parses a path segment (a ref or an id).
///
/// # Errors
/// [`ApiError::BadRequest`] naming the value.
pub fn parse<T: std::str::FromStr>(text: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| ApiError::BadRequest(e.to_string()))
}
