//! The one API error: an HTTP status and a message, rendered in Docker's shape `{"message": "..."}`.
//!
//! Every layer's error converts into [`ApiError`]; [`ApiError::into_response`] (with the bodies, in
//! [`crate::body`]) is the only place that renders and logs one. Client mistakes log at debug, mtswarm's and engines' failures at warn.

use http::StatusCode;

/// An error answered to the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status the client receives.
    pub status: StatusCode,
    /// The sentence the docker CLI prints after "Error response from daemon: ".
    pub message: String,
    /// Why policy refused the request, for the denial metric and the audit log; `None` for other errors.
    pub denial: Option<DenyKind>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), denial: None }
    }

    /// A refusal by policy, counted by its reason.
    pub fn denied(status: StatusCode, kind: DenyKind, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), denial: Some(kind) }
    }

    /// The reason this error is a denial, if it is one: set where it was made, or a 401 (authentication) or a
    /// 429 (a rate limit), which are denials whatever made them.
    pub fn denial_kind(&self) -> Option<DenyKind> {
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
}

/// Why a request was refused, for `mtswarm_denials_total{reason}` and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyKind {
    /// No or bad credentials (401).
    Auth,
    /// The operator's API filter, or the image catalogue's rules.
    ApiFilter,
    /// A host escape: bind mounts, privileges, host namespaces, network settings.
    Escape,
    Quota,
    Flavor,
    /// A tenancy refusal (403): another tenant's or a shared object.
    Isolation,
    /// A rate limit (429).
    Limit,
}

impl DenyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyKind::Auth => "auth",
            DenyKind::ApiFilter => "apifilter",
            DenyKind::Escape => "escape",
            DenyKind::Quota => "quota",
            DenyKind::Flavor => "flavor",
            DenyKind::Isolation => "isolation",
            DenyKind::Limit => "limit",
        }
    }
}
