//! The body phase: how a request's body travels. A tenant's JSON body is decoded once, as dockerd decodes it
//! ([`crate::api::decode`]), into the document every later phase reads and the engine gets; everything else is
//! streamed or dropped, per [`crate::api::RequestBody`].

use hyper::body::Incoming;

use super::{route, Gateway};
use crate::api::{self, ApiError, Endpoint};
use crate::body;

impl Gateway {
    /// The body phase: a tenant's JSON body is decoded once, as dockerd decodes it ([`api::decode`]), into the
    /// document every later phase reads and the engine gets; a tenant's request whose endpoint reads no body sends
    /// none. The operator's body goes to the engine as it came; in a cluster, a create's is also decoded for the
    /// scheduler (a body that does not decode is placed without its facts, and the engine judges it).
    pub(super) async fn body_phase(
        &self,
        endpoint: &Endpoint,
        tenant: bool,
        multi: bool,
        incoming: Incoming,
    ) -> Result<(Option<serde_json::Value>, Upstream), ApiError> {
        use api::decode::decode;
        match (endpoint.request_body(), tenant) {
            (api::RequestBody::Json(kind), true) => {
                let bytes = read_body(incoming, self.body_timeout).await?;
                Ok((Some(decode(kind, &bytes)?), Upstream::Empty))
            }
            (api::RequestBody::Json(kind), false) if multi && route::placement_reads_body(endpoint) => {
                let bytes = read_body(incoming, self.body_timeout).await?;
                Ok((decode(kind, &bytes).ok(), Upstream::Bytes(bytes)))
            }
            (api::RequestBody::MustBeEmpty, true) => {
                let bytes = read_body(incoming, self.body_timeout).await?;
                let text = String::from_utf8_lossy(&bytes);
                if !matches!(text.trim(), "" | "{}" | "null") {
                    return Err(ApiError::bad_request(START_BODY));
                }
                Ok((None, Upstream::Empty))
            }
            (api::RequestBody::None, true) => Ok((None, Upstream::Empty)),
            _ => Ok((None, Upstream::Stream(incoming))),
        }
    }
}

/// What a request sends to the engine as its body.
pub(crate) enum Upstream {
    /// A tenant's decoded (and then checked and rewritten) document, written anew.
    Doc(serde_json::Value),
    /// The client's bytes as they came, read whole (the operator's body, read for placement).
    Bytes(bytes::Bytes),
    /// The client's body, streamed.
    Stream(Incoming),
    /// Nothing.
    Empty,
}

/// Reads a request body whole, up to what a JSON body may be, within `--body-timeout`: a client that
/// sends its body slowly must not hold a request (and the tenant's share of mtswarm) forever.
async fn read_body(incoming: Incoming, timeout: std::time::Duration) -> Result<bytes::Bytes, ApiError> {
    match tokio::time::timeout(timeout, body::collect_limited(incoming, JSON_BODY_LIMIT)).await {
        Ok(r) => r.map_err(|e| ApiError::bad_request(format!("the request body could not be read: {e}"))),
        Err(_) => Err(ApiError::new(
            http::StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {} s (--body-timeout)", timeout.as_secs_f32()),
        )),
    }
}

/// dockerd's refusal of a start body since API 1.24 (below it, the body replaced the container's HostConfig).
const START_BODY: &str =
    "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24";

/// The most a JSON request body that policy reads may be.
const JSON_BODY_LIMIT: usize = 4 * 1024 * 1024;
