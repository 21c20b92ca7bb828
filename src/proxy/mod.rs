//! Forwarding: a classified, authorized request goes to the engine chosen by the cluster, and its answer
//! comes back, streamed both ways. Hijacked connections (attach, exec start) are in [`hijack`].
//!
//! **Architecture Invariant:** a stream is never read whole. Request bodies (build contexts, archives, image
//! tars) and response bodies (logs, events, stats, exports) pass through frame by frame; only an answer the
//! caller asks for whole ([`Relay::Whole`]: small JSON that mtswarm rewrites) is read, up to
//! `--engine-answer-limit`.

pub mod hijack;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;

use crate::api::{ApiError, ApiVersion};
use crate::body::{self, Body};
use crate::cluster::Node;

/// Headers that belong to one hop and are never copied across mtswarm.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Client headers that are mtswarm's own business: credentials never reach an engine.
pub const AUTH_HEADERS: [&str; 2] = ["x-auth-token", "x-auth-tenantid"];

/// Where a forwarded request goes: an engine, or, from a replica manager, the primary manager.
pub trait Hop: Sync {
    /// What to call it in messages: `engine node0 (tcp://...)`.
    fn label(&self) -> String;
    /// Takes off, in place, the client's headers it does not get: hop-by-hop ones; an engine gets no credentials.
    fn strip(&self, h: &mut HeaderMap) {
        strip_headers(h)
    }
    /// Sends a request whose URI is a path and query.
    fn send(
        &self,
        req: Request<Body>,
    ) -> impl std::future::Future<Output = Result<Response<Incoming>, ApiError>> + Send;
}

impl Hop for Node {
    fn label(&self) -> String {
        format!("engine {}", Node::label(self))
    }

    async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>, ApiError> {
        Node::send(self, req).await.map_err(ApiError::from)
    }
}

/// Copies end-to-end headers, dropping hop-by-hop ones, those named by `Connection`, and credentials.
pub fn copy_headers(from: &HeaderMap) -> HeaderMap {
    let mut out = from.clone();
    strip_headers(&mut out);
    out
}

/// Drops, in place, what [`copy_headers`] does not copy: hop-by-hop headers, those named by `Connection`, `Host`
/// and credentials. In place, because a forwarded request or answer owns its headers: no second map per hop.
pub fn strip_headers(h: &mut HeaderMap) {
    strip(h, true)
}

/// Drops, in place, hop-by-hop headers, those named by `Connection` and `Host`, but keeps credentials: what one
/// mtswarm passes to another.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    strip(h, false)
}

fn strip(h: &mut HeaderMap, drop_credentials: bool) {
    // Names listed in `Connection` are hop-by-hop too (rare: most clients send none, or `keep-alive`).
    if let Some(listed) = h.contains_key(header::CONNECTION).then(|| named_by_connection(h)) {
        for name in listed {
            h.remove(name.as_str());
        }
    }
    // One pass over the names, then a removal for each one found: most maps hold none but `Host`, and a
    // removal hashes and probes whether or not the name is there.
    let doomed = |name: &HeaderName| {
        HOP_BY_HOP.contains(name)
            || name == header::HOST
            || name == "keep-alive"
            || (drop_credentials && AUTH_HEADERS.contains(&name.as_str()))
    };
    let found: Vec<HeaderName> = h.keys().filter(|n| doomed(n)).cloned().collect();
    for name in found {
        h.remove(name);
    }
}

fn named_by_connection(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The path and query to send to the engine. The client's version prefix is kept as is (semantics
/// change between versions); an unversioned path gets the version mtswarm advertises, which every
/// engine of the cluster speaks, where the engine would otherwise read it as its own newest.
pub fn upstream_path(version: Option<&ApiVersion>, advertised: &ApiVersion, path: &str, query: Option<&str>) -> String {
    let v = version.unwrap_or(advertised);
    match query {
        Some(q) => format!("/v{v}{path}?{q}"),
        None => format!("/v{v}{path}"),
    }
}

/// The most a small JSON answer may be before it is refused rather than held (a list of thousands of
/// containers is a few megabytes). Set once at start-up from `--engine-answer-limit`
/// ([`set_answer_limit`]); read wherever an answer is read whole, so that answers mtswarm parses cannot
/// run it out of memory (a container with a huge `changes` list, asked for in parallel).
pub static SMALL_ANSWER_LIMIT: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(crate::cluster::node::DEFAULT_ANSWER_LIMIT);

/// Sets the most of an answer that is read whole (once, at start-up).
pub fn set_answer_limit(bytes: usize) {
    SMALL_ANSWER_LIMIT.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// The most of an answer that is read whole.
pub fn answer_limit() -> usize {
    SMALL_ANSWER_LIMIT.load(std::sync::atomic::Ordering::Relaxed)
}

/// How an answer comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// Streamed as it arrives.
    Stream,
    /// Read whole and sent in one piece with its length: fewer writes for small JSON answers.
    Whole,
}

/// Forwards an ordinary (not hijacked) request and relays the answer back.
pub async fn forward(
    node: &impl Hop,
    req: Request<Body>,
    path_and_query: String,
    relay: Relay,
) -> Result<Response<Body>, ApiError> {
    let (mut parts, body) = req.into_parts();
    node.strip(&mut parts.headers);
    let mut up = Request::new(body);
    *up.method_mut() = parts.method;
    *up.uri_mut() = path_and_query.parse().map_err(|e: http::uri::InvalidUri| ApiError::bad_request(e.to_string()))?;
    *up.headers_mut() = parts.headers;
    let resp = node.send(up).await?;
    match relay {
        Relay::Stream => Ok(relay_response(resp)),
        Relay::Whole => {
            let (mut parts, incoming) = resp.into_parts();
            let body = read_whole_or_stream(node, incoming, answer_limit()).await?;
            let mut out = Response::new(body);
            *out.status_mut() = parts.status;
            strip_headers(&mut parts.headers);
            parts.headers.remove(header::SERVER);
            parts.headers.remove(header::CONTENT_LENGTH);
            *out.headers_mut() = parts.headers;
            Ok(out)
        }
    }
}

/// Reads an answer whole when it fits in `limit` (one write with its length); a larger one is streamed on,
/// its first part from memory, so that no answer is held whole past the limit. Whoever must parse it
/// (a tenant's view) refuses it then, with a message.
async fn read_whole_or_stream(node: &impl Hop, mut incoming: Incoming, limit: usize) -> Result<Body, ApiError> {
    use futures_util::StreamExt;
    use http_body_util::BodyExt;
    let mut buf = bytes::BytesMut::new();
    let failed = |e: hyper::Error| ApiError::bad_gateway(format!("{} failed during the answer: {e}", node.label()));
    while let Some(frame) = incoming.frame().await {
        let Ok(data) = frame.map_err(failed)?.into_data() else { continue };
        if buf.len() + data.len() > limit {
            let head = [buf.freeze(), data].map(|b| Ok::<_, body::BoxError>(hyper::body::Frame::data(b)));
            let rest = http_body_util::BodyStream::new(incoming).map(|r| r.map_err(body::BoxError::from));
            let stream = futures_util::stream::iter(head).chain(rest);
            return Ok(http_body_util::StreamBody::new(stream).boxed_unsync());
        }
        buf.extend_from_slice(&data);
    }
    Ok(body::full(buf.freeze()))
}

/// Turns an engine's response into mtswarm's, streaming the body.
pub fn relay_response(resp: Response<Incoming>) -> Response<Body> {
    let (mut parts, incoming) = resp.into_parts();
    let mut out = Response::new(body::stream_coalesced(incoming));
    *out.status_mut() = parts.status;
    strip_headers(&mut parts.headers);
    parts.headers.remove(header::SERVER);
    *out.headers_mut() = parts.headers;
    out
}

pub fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_hop_by_hop_and_credentials() {
        let mut h = HeaderMap::new();
        h.insert("x-auth-token", HeaderValue::from_static("secret"));
        h.insert("X-Auth-TenantId", HeaderValue::from_static("alice"));
        h.insert("connection", HeaderValue::from_static("Upgrade, X-Custom"));
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert("upgrade", HeaderValue::from_static("tcp"));
        h.insert("host", HeaderValue::from_static("example"));
        h.insert("x-registry-auth", HeaderValue::from_static("e30="));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let out = copy_headers(&h);
        let mut names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["content-type", "x-registry-auth"]);
    }

    #[test]
    fn drops_every_value_of_every_hop_by_hop_header_and_keeps_credentials_between_managers() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic eA=="),
            ("proxy-authenticate", "Basic"),
            ("trailer", "x"),
            ("x-auth-token", "secret"),
            ("x-auth-token", "second"),
            ("x-registry-config", "e30="),
            ("accept", "a"),
            ("accept", "b"),
        ] {
            h.append(name, HeaderValue::from_static(value));
        }
        let mut between = h.clone();
        strip_hop_by_hop(&mut between);
        let kept = |m: &HeaderMap| {
            let mut v: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap())).collect();
            v.sort();
            v
        };
        assert_eq!(
            kept(&between),
            ["accept: a", "accept: b", "x-auth-token: second", "x-auth-token: secret", "x-registry-config: e30="]
        );
        strip_headers(&mut h);
        assert_eq!(kept(&h), ["accept: a", "accept: b", "x-registry-config: e30="]);
    }

    #[test]
    fn keeps_client_version() {
        let adv = ApiVersion::parse("1.41").unwrap();
        let v = ApiVersion::parse("1.40").unwrap();
        assert_eq!(upstream_path(Some(&v), &adv, "/containers/json", Some("all=1")), "/v1.40/containers/json?all=1");
        assert_eq!(upstream_path(None, &adv, "/info", None), "/v1.41/info");
    }
}
