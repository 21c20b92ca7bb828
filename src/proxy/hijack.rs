//! Hijacked connections: attach and exec start turn the HTTP connection into a raw two-way stream.
//!
//! The upstream upgrade is complete before the client gets its `101`, so no early output is lost.
//! Each direction is pumped on its own: the client's end of input (a half-close) is passed to the engine
//! as a write shutdown while the engine's output keeps flowing, which is how `echo x | docker exec -i c cat`
//! ends. When the engine's output ends the session is over.

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{relay_response, Hop};
use crate::api::ApiError;
use crate::body::{self, Body};

/// The engine's end of a hijacked stream.
pub type EngineStream = TokioIo<Upgraded>;

/// Forwards a request that the engine may answer by hijacking the connection. When it does, the engine's
/// stream is left in the connection's [`HijackSlot`] and the answer ends the HTTP exchange: `101` when the
/// client asked to upgrade, else dockerd's older form, `200` and the raw stream after the head.
pub async fn forward(node: &impl Hop, req: Request<Body>, path_and_query: String) -> Result<Response<Body>, ApiError> {
    forward_as(node, req, path_and_query, Some("tcp")).await
}

/// As [`forward`], asking the engine for `default_protocol` when the client names none (`None`: ask for none,
/// as BuildKit's `/session`, which the engine refuses without one).
pub async fn forward_as(
    node: &impl Hop,
    req: Request<Body>,
    path_and_query: String,
    default_protocol: Option<&'static str>,
) -> Result<Response<Body>, ApiError> {
    let client_protocol = req.headers().get(header::UPGRADE).cloned();
    let slot = req.extensions().get::<HijackSlot>().cloned();
    let (mut parts, body) = req.into_parts();

    // dockerd hijacks these endpoints with or without `Upgrade`; asking for it makes it answer 101,
    // which is what lets hyper hand the connection over.
    let protocol = client_protocol.clone().or(default_protocol.map(HeaderValue::from_static));
    let mut up = Request::builder().method(parts.method).uri(path_and_query);
    if let Some(h) = up.headers_mut() {
        node.strip(&mut parts.headers);
        *h = parts.headers;
        if let Some(protocol) = protocol {
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::UPGRADE, protocol);
        }
    }
    let up = up.body(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut resp = node.send(up).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Errors (no such container, a detached exec) are ordinary answers, bodies and all.
        return Ok(relay_response(resp));
    }
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    // A websocket's handshake is the engine's: the client checks the accept key it computed from its own.
    let handshake: Vec<_> = HANDSHAKE_HEADERS
        .iter()
        .filter_map(|name| resp.headers().get(name).map(|v| (name.clone(), v.clone())))
        .collect();
    let engine = hyper::upgrade::on(&mut resp)
        .await
        .map_err(|e| ApiError::bad_gateway(format!("{} did not hand over the stream: {e}", node.label())))?;
    let slot =
        slot.ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "this connection cannot be hijacked"))?;
    slot.put(TokioIo::new(engine));

    let mut out = Response::new(body::empty());
    if client_protocol.is_some() {
        *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    }
    let h = out.headers_mut();
    match client_protocol {
        Some(protocol) => {
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::UPGRADE, protocol);
        }
        // No keep-alive: the exchange ends here and the raw stream follows the head.
        None => {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    for (name, value) in handshake {
        h.insert(name, value);
    }
    // A websocket's 101 carries no content type (browsers and docker-py's client ignore one, but dockerd sends
    // none); every other hijack is Docker's raw stream.
    let websocket = h.get(header::UPGRADE).is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"websocket"));
    match content_type {
        Some(ct) => {
            h.insert(header::CONTENT_TYPE, ct);
        }
        None if websocket => {}
        None => {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.docker.raw-stream"));
        }
    }
    Ok(out)
}

/// The protocol to ask the upstream for when the client names none: dockerd hijacks attach and exec start with or
/// without `Upgrade`, and asking for `tcp` makes it answer 101; BuildKit's session names its own (h2c), and without
/// one the engine's refusal is the answer.
pub fn default_protocol(endpoint: &crate::api::Endpoint) -> Option<&'static str> {
    match endpoint {
        crate::api::Endpoint::Session | crate::api::Endpoint::Grpc => None,
        _ => Some("tcp"),
    }
}

/// The headers of an engine's `101` that complete a handshake the client checks.
const HANDSHAKE_HEADERS: &[header::HeaderName] =
    &[header::SEC_WEBSOCKET_ACCEPT, header::SEC_WEBSOCKET_PROTOCOL, header::SEC_WEBSOCKET_EXTENSIONS];

/// Copies both ways until the engine's output ends; the client's half-close becomes the engine's.
pub async fn pump<C, E>(client: C, engine: E)
where
    C: AsyncRead + AsyncWrite + Send,
    E: AsyncRead + AsyncWrite + Send,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut engine_r, mut engine_w) = tokio::io::split(engine);
    let to_engine = async {
        copy_until_eof(&mut client_r, &mut engine_w).await;
        let _ = engine_w.shutdown().await;
    };
    let to_client = async {
        copy_until_eof(&mut engine_r, &mut client_w).await;
        let _ = client_w.shutdown().await;
    };
    tokio::pin!(to_engine, to_client);
    tokio::select! {
        // The engine is done: nothing will read the client's input any more.
        _ = &mut to_client => {}
        // The client's input ended (a half-close, or it went away): keep delivering the output.
        _ = &mut to_engine => to_client.await,
    }
}

/// Copies until end of input. A read error counts as the end of that direction only (a TLS peer that
/// closes without close_notify is one); a write error ends it too. Each chunk is flushed at once:
/// interactive sessions must not wait for a buffer to fill.
async fn copy_until_eof<R, W>(r: &mut R, w: &mut W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if w.write_all(&buf[..n]).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
}

/// The engine's side of a hijacked stream, waiting for the client's side: the gateway leaves it in the
/// connection's request extensions, the server takes it once the client's side is upgraded.
#[derive(Clone, Default)]
pub struct HijackSlot(std::sync::Arc<std::sync::Mutex<Option<EngineStream>>>, HeldSlot, EndSlot);

/// What a hijacked session holds while it lasts (a tenant's stream permit).
type HeldSlot = std::sync::Arc<std::sync::Mutex<Option<Box<dyn Send>>>>;

/// What ends a hijacked session early, if anything: a replica's session with a primary that is no longer one.
pub type SessionEnd = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
type EndSlot = std::sync::Arc<std::sync::Mutex<Option<SessionEnd>>>;

impl HijackSlot {
    pub fn put(&self, engine: EngineStream) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(engine);
    }

    /// True once a hijack left the engine's stream here.
    pub fn holds_engine(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Keeps `held` until the hijacked session ends.
    pub fn hold(&self, held: impl Send + 'static) {
        *self.1.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(held));
    }

    pub(crate) fn take(&self) -> Option<EngineStream> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub(crate) fn take_held(&self) -> Option<Box<dyn Send>> {
        self.1.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Ends the session, both ways, when `end` completes.
    pub fn end_when(&self, end: impl std::future::Future<Output = ()> + Send + 'static) {
        *self.2.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::pin(end));
    }

    /// What ends the session early; a session without one ends only when its streams do.
    pub(crate) fn take_end(&self) -> SessionEnd {
        self.2.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_else(|| Box::pin(std::future::pending()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    // A protocol corner no engine can be made to show on demand: the two halves of a session ending in
    // either order. duplex pipes stand in for the two sockets.
    #[tokio::test]
    async fn half_close_reaches_the_engine_and_output_keeps_flowing() {
        let (client_side, mut client) = duplex(1024);
        let (engine_side, mut engine) = duplex(1024);
        let session = tokio::spawn(pump(client_side, engine_side));

        client.write_all(b"hello").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        engine.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello", "the engine sees the input, then its end");

        engine.write_all(b"output after EOF").await.unwrap();
        engine.shutdown().await.unwrap();
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"output after EOF");
        session.await.unwrap();
    }

    #[tokio::test]
    async fn engine_end_finishes_the_session() {
        let (client_side, mut client) = duplex(1024);
        let (engine_side, mut engine) = duplex(1024);
        let session = tokio::spawn(pump(client_side, engine_side));
        engine.write_all(b"bye").await.unwrap();
        engine.shutdown().await.unwrap();
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"bye");
        session.await.unwrap();
    }
}
