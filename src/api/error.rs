//! The one API error: an HTTP status and a message, rendered in Docker's shape `{"message": "..."}`.
//!
//! Every layer's error converts into [`ApiError`]; [`ApiError::into_response`] is the only place that renders
//! and logs one. Client mistakes log at debug, mtswarm's and engines' failures at warn.

use http::{header, Response, StatusCode};

use crate::body::{self, Body};

/// An error answered to the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status the client receives.
    pub status: StatusCode,
    /// The sentence the docker CLI prints after "Error response from daemon: ".
    pub message: String,
    /// Why policy refused the request, for the denial metric and the audit log; `None` for other errors.
    pub denial: Option<crate::ops::metrics::DenyKind>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), denial: None }
    }

    /// A refusal by policy, counted by its reason.
    pub fn denied(status: StatusCode, kind: crate::ops::metrics::DenyKind, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), denial: Some(kind) }
    }

    /// The reason this error is a denial, if it is one: set where it was made, or a 401 (authentication) or a
    /// 429 (a rate limit), which are denials whatever made them.
    pub fn denial_kind(&self) -> Option<crate::ops::metrics::DenyKind> {
        use crate::ops::metrics::DenyKind;
        self.denial.or(match self.status {
            StatusCode::UNAUTHORIZED => Some(DenyKind::Auth),
            StatusCode::TOO_MANY_REQUESTS => Some(DenyKind::Limit),
            _ => None,
        })
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub fn bad_gateway(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_GATEWAY, message)
    }

    /// Renders the Docker-style body and logs the error once.
    pub fn into_response(self) -> Response<Body> {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), message = %self.message, "request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), message = %self.message, "request refused");
        }
        let body = serde_json::json!({ "message": self.message }).to_string() + "\n";
        let mut resp = Response::new(body::full(body));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        resp
    }
}
