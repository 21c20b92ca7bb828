//! The admin's plugin changes in a cluster. As Swarm classic fanned plugin operations out, an install (pull,
//! create, upgrade) and a setting happen on every healthy node, so that a container placed on any node finds
//! the plugin; the client's body (privileges, settings, a plugin's tar) is copied to each node as it comes, not
//! read whole. Enable, disable and remove go to every node that has the plugin ([`super::fanout`]); a push goes
//! to one node that has it, since each holds the same plugin.
//!
//! One answer, as one engine gives it: a pull's, upgrade's or push's progress is one node's, forwarded as it
//! comes, while the others' are read beside it; if any other node fails, the stream ends with an error line
//! naming the node, which the CLI reports as the command's failure. A node that refuses at once (a bad
//! privilege list, a plugin that exists already) makes the answer that refusal. A setting or an upgrade skips
//! the nodes without the plugin (their 404), as a removal does.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use super::bodies::Upstream;
use super::{Forward, Gateway, RequestCtx};
use crate::api::{ApiError, Endpoint, PluginOp};
use crate::body::{self, Body, BoxError};
use crate::cluster::Node;
use crate::proxy;
use crate::tenant::encode;

/// How many chunks of the client's body may wait for the slowest node.
const TEE_DEPTH: usize = 8;

impl Gateway {
    /// A plugin pull, create, upgrade, push or setting in a cluster (the admin's: tenants were refused before).
    pub(super) async fn plugin_everywhere(
        &self,
        ctx: &mut RequestCtx,
        req: &Forward<'_>,
        upstream: Upstream,
    ) -> Result<Response<Body>, ApiError> {
        let healthy = self.cluster.healthy_nodes();
        if healthy.is_empty() {
            return Err(ApiError::unavailable("no node of the cluster is available"));
        }
        let nodes = match req.endpoint {
            Endpoint::Plugin { name, op: PluginOp::Push } => vec![self.node_with_plugin(&healthy, name).await?],
            _ => healthy,
        };
        // A setting or an upgrade changes the plugin where it is; an install must succeed everywhere.
        let skip_missing = matches!(req.endpoint, Endpoint::Plugin { op: PluginOp::Set | PluginOp::Upgrade, .. });
        let streams_progress = matches!(
            req.endpoint,
            Endpoint::PluginPull | Endpoint::Plugin { op: PluginOp::Upgrade | PluginOp::Push, .. }
        );
        ctx.set_node(format!("{} nodes", nodes.len()));
        let pq = self.upstream_path(ctx, req.path, req.parts.uri.query());
        let headers = proxy::copy_headers(&req.parts.headers);
        let bodies = tee(upstream, nodes.len());
        let sends = nodes.iter().zip(bodies).map(|(node, b)| {
            let mut up = Request::new(b);
            *up.method_mut() = req.parts.method.clone();
            *up.headers_mut() = headers.clone();
            let uri = pq.parse::<http::Uri>();
            let node = node.clone();
            let timeout = self.engine_timeout;
            async move {
                *up.uri_mut() = uri.map_err(|e| format!("{e}"))?;
                match tokio::time::timeout(timeout, node.send(up)).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("did not answer within {} s (--engine-timeout)", timeout.as_secs())),
                }
            }
        });
        let results = futures_util::future::join_all(sends).await;

        let mut done: Vec<(Arc<Node>, Response<hyper::body::Incoming>)> = Vec::new();
        let mut missing = None;
        for (node, r) in nodes.iter().zip(results) {
            match r {
                Ok(resp) if resp.status().is_success() => done.push((node.clone(), resp)),
                Ok(resp) if skip_missing && resp.status() == StatusCode::NOT_FOUND => {
                    missing.get_or_insert(resp);
                }
                // The first refusal is the answer, as one engine's would be.
                Ok(resp) => return Ok(proxy::relay_response(resp)),
                Err(e) => {
                    return Err(ApiError::bad_gateway(format!(
                        "node {} failed: {e} (the plugin may have changed on the other nodes)",
                        node.name()
                    )))
                }
            }
        }
        if done.is_empty() {
            return match missing {
                Some(resp) => Ok(proxy::relay_response(resp)),
                None => Err(ApiError::unavailable("no node answered")),
            };
        }
        let mut done = done.into_iter();
        let Some((_, first)) = done.next() else { return Err(ApiError::unavailable("no node answered")) };
        let others: Vec<_> = done.collect();
        if !streams_progress {
            // Small answers (a create's, a setting's): the first node's, once every node has answered.
            for (node, resp) in others {
                let bytes = body::collect_limited(resp.into_body(), proxy::answer_limit()).await.map_err(|e| {
                    ApiError::bad_gateway(format!("node {} failed during its answer: {e}", node.name()))
                })?;
                if let Some(e) = stream_error(&bytes) {
                    return Err(ApiError::bad_gateway(format!("node {}: {e}", node.name())));
                }
            }
            return Ok(proxy::relay_response(first));
        }
        let (parts, first_body) = first.into_parts();
        let verdict = async move {
            let reads = others.into_iter().map(|(node, resp)| async move {
                match body::collect_limited(resp.into_body(), proxy::answer_limit()).await {
                    Ok(bytes) => stream_error(&bytes).map(|e| format!("node {}: {e}", node.name())),
                    Err(e) => Some(format!("node {} failed during its answer: {e}", node.name())),
                }
            });
            let failures: Vec<String> = futures_util::future::join_all(reads).await.into_iter().flatten().collect();
            if failures.is_empty() {
                return None;
            }
            let message = failures.join("; ");
            let line = serde_json::json!({"errorDetail": {"message": message}, "error": message}).to_string() + "\n";
            Some(Ok::<_, BoxError>(Bytes::from(line)))
        };
        let stream = body::stream(first_body)
            .into_data_stream()
            .chain(futures_util::stream::once(verdict).filter_map(futures_util::future::ready));
        let mut resp = Response::from_parts(
            parts,
            http_body_util::StreamBody::new(stream.map(|r| r.map(http_body::Frame::data))).boxed_unsync(),
        );
        // The length was the first node's alone.
        resp.headers_mut().remove(header::CONTENT_LENGTH);
        Ok(resp)
    }

    /// The first node, in the cluster's order, that has the plugin; or one engine's 404.
    async fn node_with_plugin(&self, nodes: &[Arc<Node>], name: &str) -> Result<Arc<Node>, ApiError> {
        let path = format!("/plugins/{}/json", encode(name));
        for n in nodes {
            if n.get_json(&path).await.is_ok() {
                return Ok(n.clone());
            }
        }
        Err(ApiError::not_found(format!("plugin \"{name}\" not found")))
    }
}

/// The client's body, copied to `n` bodies as it comes (the slowest node sets the pace; one that stops reading is
/// left alone). The admin's body is a stream; anything else sends nothing.
fn tee(upstream: Upstream, n: usize) -> Vec<Body> {
    let (txs, rxs): (Vec<_>, Vec<_>) =
        (0..n).map(|_| tokio::sync::mpsc::channel::<Result<Bytes, BoxError>>(TEE_DEPTH)).unzip();
    tokio::spawn(async move {
        let mut incoming = match upstream {
            Upstream::Stream(incoming) => incoming,
            Upstream::Bytes(b) => {
                for tx in &txs {
                    let _ = tx.send(Ok(b.clone())).await;
                }
                return;
            }
            Upstream::Doc(_) | Upstream::Empty => return,
        };
        while let Some(frame) = incoming.frame().await {
            match frame {
                Ok(f) => {
                    let Ok(data) = f.into_data() else { continue };
                    for tx in &txs {
                        let _ = tx.send(Ok(data.clone())).await;
                    }
                }
                Err(e) => {
                    for tx in &txs {
                        let _ = tx.send(Err(format!("the client's body failed: {e}").into())).await;
                    }
                    return;
                }
            }
        }
    });
    rxs.into_iter()
        .map(|rx| {
            let chunks = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
            http_body_util::StreamBody::new(chunks.map(|r| r.map(http_body::Frame::data))).boxed_unsync()
        })
        .collect()
}

/// The first error a progress stream (JSON messages, one a line) reports.
fn stream_error(bytes: &[u8]) -> Option<String> {
    bytes
        .split(|c| *c == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .find_map(|m| m.get("error").and_then(Value::as_str).map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::stream_error;

    #[test]
    fn finds_the_error_of_a_progress_stream() {
        let ok = b"{\"status\":\"Downloading\"}\n{\"status\":\"Installed plugin x\"}\n";
        assert_eq!(stream_error(ok), None);
        let failed = b"{\"status\":\"Downloading\"}\n{\"errorDetail\":{\"message\":\"denied\"},\"error\":\"denied\"}\n";
        assert_eq!(stream_error(failed).as_deref(), Some("denied"));
        assert_eq!(stream_error(b""), None);
    }
}
