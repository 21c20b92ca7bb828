//! Sending a request to one node: the tenant's plan (references resolved to its own objects, the escape checks
//! on what they resolved to), the body the engine gets, the forward or hijack with its deadline, and the tenant's
//! view of the answer.

use std::sync::Arc;

use http::{header, Request, Response};

use super::bodies::Upstream;
use super::{escape_check, forbidden, limits, route, Forward, Gateway, RequestCtx};
use crate::api::{ApiError, ContainerOp, DenyKind, Endpoint};
use crate::body::{self, Body};
use crate::cluster::Node;
use crate::proxy::{self, hijack};
use crate::tenancy;
use crate::tenant::{self, Scope};

impl Gateway {
    /// Sends a request to one node: the tenant's scoping, the escape checks on resolved references, the
    /// forward or hijack, and the tenant's view of the answer. Returns the id of a container it created.
    pub(super) async fn send_to(
        &self,
        ctx: &mut RequestCtx,
        node: &Arc<Node>,
        req: &Forward<'_>,
        upstream: Upstream,
    ) -> Result<(Response<Body>, Option<String>), ApiError> {
        // Admitted at arrival, but a request may have waited since (for its tenant's quota lock, a name claim):
        // it reaches the engine only while this manager is still the primary within its fence.
        self.still_primary()?;
        let (mut doc, pass) = match upstream {
            Upstream::Doc(doc) => (Some(doc), Upstream::Empty),
            other => (None, other),
        };
        let endpoint = req.endpoint;
        ctx.set_node(node.name());
        if let (Some(t), Endpoint::Container { id, op: ContainerOp::Inspect }) = (req.scope.tenant_str(), endpoint) {
            if let Some(resp) = self.inspect_in_one_call(ctx, node, req, t, id).await? {
                return Ok((resp, None));
            }
        }
        let mut query = req.parts.uri.query().map(str::to_string);
        let mut path = req.path.to_string();
        let mut answer = tenant::Answer::Pass;
        if let Some(t) = req.scope.tenant_str() {
            let plan =
                tenancy::prepare(node, &self.default_networks, t, endpoint, &path, query.as_deref(), doc.as_mut())
                    .await?;
            // Then `container:` references, now resolved to the tenant's own containers' ids.
            if let (Some(check), Some(doc)) = (escape_check(endpoint), doc.as_ref()) {
                let own = |r: &str| plan.own_containers.contains(r);
                check(doc, &self.escape_rules, &own).map_err(forbidden(DenyKind::Escape))?;
            }
            (path, query, answer) = (plan.path, plan.query, plan.answer);
        }
        let (headers, body) = upstream_body(req, req.parts.headers.clone(), doc, pass)?;
        let pq = self.upstream_path(ctx, &path, query.as_deref());
        let upstream = upstream_request(req, headers, body);
        if endpoint.may_hijack() {
            let resp = hijack::forward_as(node.as_ref(), upstream, pq, hijack::default_protocol(endpoint)).await?;
            return match req.scope.tenant_str() {
                Some(t) if !resp.status().is_success() && !resp.status().is_informational() => {
                    Ok((tenant_view(t, &answer, resp).await, None))
                }
                _ => Ok((resp, None)),
            };
        }
        let relay = if endpoint.answers_small_json() { proxy::Relay::Whole } else { proxy::Relay::Stream };
        let mut resp = self.relay(node, req, upstream, pq, relay).await?;
        // The new container's id, for the cluster's reservation (the node's events then keep its record).
        let mut created = None;
        if resp.status().is_success() && matches!(endpoint, Endpoint::ContainerCreate) && self.cluster.is_cluster() {
            let (parts, b) = resp.into_parts();
            let bytes = body::collect_boxed(b, proxy::answer_limit())
                .await
                .map_err(|e| ApiError::bad_gateway(format!("the engine's answer could not be read: {e}")))?;
            created = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("Id").and_then(|i| i.as_str()).map(str::to_string));
            resp = Response::from_parts(parts, body::full(bytes));
        }
        // The registry answers the cluster's container lists: a change the client made shows in the next list
        // it asks for, not only once the node's event has come.
        if resp.status().is_success() && self.cluster.is_cluster() && changes_a_listing(endpoint) {
            if let Some(id) = path.split('/').nth(2) {
                node.reread(id).await;
            }
        }
        let resp = tenant_answer(req.scope, &answer, relay, resp).await;
        Ok((resp, created))
    }

    /// A tenant's inspect of a container by its full id or its name, in one call to the engine: the engine's
    /// answer to the inspect sent under the engine-side reference that resolving would try first carries the
    /// owner's label, so it both resolves the reference and is the answer. `None` when it is not the tenant's
    /// container (or not found, or the engine failed): the request is then resolved as any other, from the
    /// start, so that an id prefix, another tenant's container and every error answer exactly as before.
    async fn inspect_in_one_call(
        &self,
        ctx: &RequestCtx,
        node: &Arc<Node>,
        req: &Forward<'_>,
        tenant: &str,
        reference: &str,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let Some(engine_ref) = tenancy::resolve::direct_references(tenant, reference).next() else {
            return Ok(None);
        };
        let path = format!("/containers/{}/json", crate::tenant::encode(&engine_ref));
        let pq = self.upstream_path(ctx, &path, req.parts.uri.query());
        let (headers, body) = upstream_body(req, req.parts.headers.clone(), None, Upstream::Empty)?;
        let upstream = upstream_request(req, headers, body);
        let resp = self.relay(node, req, upstream, pq, proxy::Relay::Whole).await?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        let (parts, b) = resp.into_parts();
        let Ok(bytes) = body::collect_boxed(b, proxy::answer_limit()).await else { return Ok(None) };
        Ok(crate::tenant::view::own_container(tenant, &bytes).map(|shown| {
            let mut resp = Response::from_parts(parts, body::full(shown));
            resp.headers_mut().remove(header::CONTENT_LENGTH);
            resp
        }))
    }

    /// Forwards the request and relays the answer. A prune waits its turn while the engine prunes for someone
    /// else; an answer that is not a stream must come whole within `--engine-timeout`.
    async fn relay(
        &self,
        node: &Arc<Node>,
        req: &Forward<'_>,
        upstream: Request<Body>,
        pq: String,
        relay: proxy::Relay,
    ) -> Result<Response<Body>, ApiError> {
        let endpoint = req.endpoint;
        let is_prune = matches!(
            endpoint,
            Endpoint::ContainerPrune
                | Endpoint::VolumePrune
                | Endpoint::NetworkPrune
                | Endpoint::ImagePrune
                | Endpoint::BuildPrune
        );
        let resp = if is_prune {
            // A prune has no body to replay: it waits its turn if the engine is pruning for someone else.
            let (parts, _) = upstream.into_parts();
            let waiting = route::PruneWait::new();
            loop {
                let mut again = Request::new(body::empty());
                *again.method_mut() = parts.method.clone();
                *again.headers_mut() = parts.headers.clone();
                let resp = proxy::forward(node.as_ref(), again, pq.clone(), proxy::Relay::Whole).await?;
                let (rparts, b) = resp.into_parts();
                let bytes = body::collect_boxed(b, proxy::answer_limit())
                    .await
                    .map_err(|e| ApiError::bad_gateway(format!("the engine's answer could not be read: {e}")))?;
                if waiting.again(rparts.status, &bytes).await {
                    continue;
                }
                break Response::from_parts(rparts, body::full(bytes));
            }
        } else {
            match limits::engine_deadline(endpoint, req.parts.uri.query(), self.engine_timeout) {
                // The whole answer within the deadline, so that a hung engine releases the request (and the
                // tenant's quota lock) with a 504.
                Some(deadline) => {
                    let call = async {
                        let resp = proxy::forward(node.as_ref(), upstream, pq, relay).await?;
                        let (parts, b) = resp.into_parts();
                        if relay == proxy::Relay::Whole {
                            return Ok::<_, ApiError>(Response::from_parts(parts, b));
                        }
                        let bytes = body::collect_boxed(b, proxy::answer_limit()).await.map_err(|e| {
                            ApiError::bad_gateway(format!("the engine's answer could not be read: {e}"))
                        })?;
                        Ok(Response::from_parts(parts, body::full(bytes)))
                    };
                    tokio::time::timeout(deadline, call).await.map_err(|_| {
                        ApiError::new(
                            http::StatusCode::GATEWAY_TIMEOUT,
                            format!(
                                "engine {} did not answer within {} s (--engine-timeout)",
                                node.name(),
                                deadline.as_secs()
                            ),
                        )
                    })??
                }
                None => proxy::forward(node.as_ref(), upstream, pq, relay).await?,
            }
        };
        Ok(resp)
    }
}

/// The request an engine gets: the client's method and version, `headers` and `body`; the connection's hijack slot
/// and TLS peer travel in the extensions.
fn upstream_request(req: &Forward<'_>, headers: http::HeaderMap, body: Body) -> Request<Body> {
    let mut upstream = Request::new(body);
    *upstream.method_mut() = req.parts.method.clone();
    *upstream.uri_mut() = req.parts.uri.clone();
    *upstream.version_mut() = req.parts.version;
    *upstream.headers_mut() = headers;
    *upstream.extensions_mut() = req.parts.extensions.clone();
    upstream
}

/// The body the engine gets, and the headers that describe it: the checked and rewritten document, the client's
/// bytes, its stream, or nothing.
fn upstream_body(
    req: &Forward<'_>,
    mut headers: http::HeaderMap,
    doc: Option<serde_json::Value>,
    pass: Upstream,
) -> Result<(http::HeaderMap, Body), ApiError> {
    let whole = |headers: &mut http::HeaderMap, bytes: bytes::Bytes| {
        headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(bytes.len()));
        headers.remove(header::TRANSFER_ENCODING);
        body::full(bytes)
    };
    let body = match (doc, pass) {
        // The checked and rewritten document is what the engine gets, never the client's bytes.
        (Some(doc), _) => {
            let bytes = serde_json::to_vec(&doc).map_err(|e| ApiError::bad_request(e.to_string()))?;
            headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
            whole(&mut headers, bytes.into())
        }
        (None, Upstream::Bytes(bytes)) => whole(&mut headers, bytes),
        (None, Upstream::Stream(incoming)) => {
            // dockerd reads a form-encoded POST body as query values: a tenant's stream is a tar to the engine.
            if req.scope.tenant_str().is_some() {
                headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/x-tar"));
            }
            body::stream(incoming)
        }
        (None, Upstream::Doc(_) | Upstream::Empty) => {
            for h in [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::CONTENT_TYPE] {
                headers.remove(h);
            }
            body::empty()
        }
    };
    Ok((headers, body))
}

/// The tenant's view of the engine's answer: event and stats streams filtered line by line, small answers and
/// errors read whole and rewritten; the operator's answer as it is.
async fn tenant_answer(
    scope: &Scope,
    answer: &tenant::Answer,
    relay: proxy::Relay,
    mut resp: Response<Body>,
) -> Response<Body> {
    let tenant = scope.tenant_str();
    if tenant.is_some() && matches!(answer, tenant::Answer::Events | tenant::Answer::Stats) {
        // The body is rewritten line by line: its length changes.
        resp.headers_mut().remove(header::CONTENT_LENGTH);
    }
    match tenant {
        Some(t) if matches!(answer, tenant::Answer::Events) && resp.status().is_success() => {
            resp.map(|b| tenancy::events::filter_stream(t.to_string(), b, crate::tenant::view::event))
        }
        Some(t) if matches!(answer, tenant::Answer::Stats) && resp.status().is_success() => {
            resp.map(|b| tenancy::events::filter_stream(t.to_string(), b, crate::tenant::view::stats))
        }
        Some(t) if relay == proxy::Relay::Whole || !resp.status().is_success() => tenant_view(t, answer, resp).await,
        _ => resp,
    }
}

/// The engine's answer as the tenant sees it: read whole (it is small JSON or an error) and rewritten.
pub(super) async fn tenant_view(tenant: &str, answer: &tenant::Answer, resp: Response<Body>) -> Response<Body> {
    let (parts, b) = resp.into_parts();
    match body::collect_boxed(b, proxy::answer_limit()).await {
        Ok(bytes) => tenancy::rewrite_answer(tenant, answer, Response::from_parts(parts, bytes)),
        Err(e) => ApiError::bad_gateway(format!("the engine's answer could not be read: {e}")).into_response(),
    }
}

/// A container change that a container list shows (its name, state or resources).
fn changes_a_listing(endpoint: &Endpoint) -> bool {
    use crate::api::ContainerOp as Op;
    matches!(
        endpoint,
        Endpoint::Container {
            op: Op::Rename | Op::Start | Op::Stop | Op::Restart | Op::Kill | Op::Pause | Op::Unpause | Op::Update,
            ..
        }
    )
}
