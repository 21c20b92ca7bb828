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
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
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
