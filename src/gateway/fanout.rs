//! Fan-out in a cluster: a list, a prune or a stream asked of every healthy node and the answers merged into one
//! (`before`/`since` bounds and the tenant's container filters resolved across the nodes; event streams follow
//! nodes that join later).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use serde_json::Value;

use super::route::{query_has, Probe, PruneWait};
use super::send::tenant_view;
use super::{merge, Forward, Gateway, RequestCtx};
use crate::api::{ApiError, Endpoint};
use crate::body::{self, Body};
use crate::cluster::{listing, EngineError, Node};
use crate::proxy;
use crate::tenancy::{self, Resolver};
use crate::tenant::{self, encode, names, Scope, TenantId};

/// How often an open event stream looks for nodes that joined the cluster after it was opened.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// How long a node may take to answer its part of a list before it is left out.
const FAN_OUT_TIMEOUT: Duration = Duration::from_secs(10);

impl Gateway {
    /// Takes a container list's `before` and `since` filters out of its query and resolves the containers they
    /// name across the cluster, among the tenant's own: each engine knows only its own containers.
    async fn list_bounds(
        &self,
        query: Option<String>,
        scope: &Scope,
    ) -> Result<(Option<String>, listing::Bounds), ApiError> {
        let mut q = tenancy::Query::parse(query.as_deref());
        let mut f = q.filters()?;
        let (before, since) = (f.remove("before"), f.remove("since"));
        if before.is_none() && since.is_none() {
            return Ok((query, listing::Bounds::default()));
        }
        q.set_filters(&f);
        let mut bounds = listing::Bounds::default();
        for (values, slot) in [(before, &mut bounds.before), (since, &mut bounds.since)] {
            if let Some(reference) = values.and_then(|v| v.into_iter().next()) {
                *slot = Some(self.creation_of(&reference, scope).await?);
            }
        }
        Ok((q.encode(), bounds))
    }

    /// A tenant's `container` filters of an event stream name its containers on any node. Tenancy resolved them
    /// on one node, and left a reference it did not find there as an engine-side name, which fits a name but no
    /// id or id prefix: the id of the container it names elsewhere is added.
    async fn event_containers(&self, query: Option<String>, tenant: &TenantId) -> Result<Option<String>, ApiError> {
        let scope = Scope::Tenant(tenant.clone());
        let mut q = tenancy::Query::parse(query.as_deref());
        let mut f = q.filters()?;
        let Some(values) = f.get_mut("container") else { return Ok(query) };
        let mut ids = Vec::new();
        for v in values.iter() {
            let Some(reference) = names::unscope(tenant, v) else { continue };
            // As on an engine, a reference that names nothing filters everything out: it is no error.
            let Ok(Some(node)) = self.find(&Probe::Container(reference.to_string()), &scope).await else {
                continue;
            };
            if let Ok(c) = (Resolver { node: &node, tenant }).container(&reference).await {
                ids.push(c.id);
            }
        }
        if ids.is_empty() {
            return Ok(query);
        }
        values.extend(ids);
        q.set_filters(&f);
        Ok(q.encode())
    }

    /// When the container a reference names was created (ns since the epoch), and its id.
    async fn creation_of(&self, reference: &str, scope: &Scope) -> Result<(i128, String), ApiError> {
        let tenant = scope.tenant_str();
        let node = self.locate(&Probe::Container(reference.to_string()), scope).await?;
        let id = match tenant {
            Some(t) => Resolver { node: &node, tenant: t }.container(reference).await?.id,
            None => reference.trim_start_matches('/').to_string(),
        };
        let inspect = node.get_json(&format!("/containers/{}/json", encode(&id))).await.map_err(ApiError::from)?;
        let created = listing::created_nanos(&inspect).ok_or_else(|| {
            ApiError::bad_gateway(format!("node {} gave no creation time for {reference}", node.name()))
        })?;
        let id = inspect.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
        Ok((created, id))
    }

    /// The event streams of the nodes that are not in `following` when they become available, opened with the
    /// same path and headers, as long as the client listens; a node is followed once.
    fn follow_new_nodes(
        &self,
        mut following: BTreeSet<String>,
        path_and_query: String,
        headers: http::HeaderMap,
    ) -> tokio::sync::mpsc::Receiver<Body> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let cluster = self.cluster.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tick.tick() => {}
                }
                for node in cluster.healthy_nodes() {
                    if following.contains(&node.name()) {
                        continue;
                    }
                    let mut up = Request::new(body::empty());
                    *up.headers_mut() = headers.clone();
                    up.headers_mut().remove(header::CONTENT_LENGTH);
                    let Ok(uri) = path_and_query.parse() else { return };
                    *up.uri_mut() = uri;
                    match node.send(up).await {
                        Ok(resp) if resp.status().is_success() => {
                            following.insert(node.name());
                            tracing::info!(node = %node.name(), "an open event stream follows a node that joined");
                            if tx.send(body::stream(resp.into_body())).await.is_err() {
                                return;
                            }
                        }
                        Ok(resp) => tracing::debug!(node = %node.name(), status = %resp.status(), "events refused"),
                        Err(e) => tracing::debug!(node = %node.name(), cause = %e, "events not opened"),
                    }
                }
            }
        });
        rx
    }

    /// One warning per unhealthy node, which lists leave out.
    fn unavailable_warnings(&self) -> Vec<String> {
        self.cluster
            .nodes()
            .iter()
            .filter(|n| !n.healthy())
            .map(|n| format!("node {} left out: it is unavailable", n.name()))
            .collect()
    }

    /// A list, a prune or a stream asked of every healthy node, the answers merged into one.
    pub(crate) async fn fan_out(&self, ctx: &mut RequestCtx, req: &Forward<'_>) -> Result<Response<Body>, ApiError> {
        let nodes = self.cluster.healthy_nodes();
        let Some(first) = nodes.first().cloned() else {
            return Err(ApiError::unavailable("no node of the cluster is available"));
        };
        let mut path = req.path.to_string();
        let mut query = req.parts.uri.query().map(str::to_string);
        let mut answer = tenant::Answer::Pass;
        let mut bounds = listing::Bounds::default();
        if matches!(req.endpoint, Endpoint::ContainerList) {
            (query, bounds) = self.list_bounds(query, req.scope).await?;
        }
        if let Some(t) = req.scope.tenant() {
            let plan = tenancy::prepare(&first, &self.default_networks, t, req.endpoint, &path, query.as_deref(), None)
                .await?;
            (path, query, answer) = (plan.path, plan.query, plan.answer);
            if matches!(req.endpoint, Endpoint::Events) {
                query = self.event_containers(query, t).await?;
            }
        }
        ctx.set_node(format!("{} nodes", nodes.len()));
        if matches!(req.endpoint, Endpoint::ContainerList) {
            // Swarm classic's way: the registry follows every engine's events, so it answers for them. A tenant's
            // query selects its own containers (tenancy added the label filter), so the owner's view is theirs.
            let names: Vec<regex::Regex> = match &answer {
                tenant::Answer::ContainerList { names } => {
                    names.iter().filter_map(|n| regex::Regex::new(n).ok()).collect()
                }
                _ => Vec::new(),
            };
            let view = match req.scope.tenant_str() {
                Some(_) => listing::View::Owner(&names),
                None => listing::View::Engine,
            };
            if let Some(list) = self.cluster.list_containers(query.as_deref(), &bounds, view) {
                ctx.set_node("registry".into());
                return Ok(plain(StatusCode::OK, Bytes::from(list)).map(body::full));
            }
        }
        if !bounds.is_empty() {
            // The engines list all that `limit` would (stopped containers too); the bounds and the limit are
            // applied to the merged list.
            query = without_limit(query);
        }
        let pq = self.upstream_path(ctx, &path, query.as_deref());
        let headers = proxy::copy_headers(&req.parts.headers);
        if matches!(req.endpoint, Endpoint::Events) {
            let follow = !query_has(query.as_deref(), "until");
            return self.fan_out_events(&nodes, req, pq, headers, follow).await;
        }
        self.fan_out_answers(&nodes, req, &pq, &headers, &answer, &bounds).await
    }

    /// An event stream of every node, merged line by line; one that runs on (`follow`: no `until`) also takes the
    /// nodes that join the cluster, or come back, later.
    async fn fan_out_events(
        &self,
        nodes: &[Arc<Node>],
        req: &Forward<'_>,
        pq: String,
        headers: http::HeaderMap,
        follow: bool,
    ) -> Result<Response<Body>, ApiError> {
        let opened = futures_util::future::join_all(nodes.iter().map(|n| to_node(n.clone(), req, &headers, &pq))).await;
        let mut bodies = Vec::new();
        let mut following = BTreeSet::new();
        let mut warnings = self.unavailable_warnings();
        for (node, r) in nodes.iter().zip(opened) {
            match r {
                Ok(resp) if resp.status().is_success() => {
                    bodies.push(body::stream(resp.into_body()));
                    following.insert(node.name());
                }
                Ok(resp) => return Ok(proxy::relay_response(resp)),
                Err(e) => warnings.push(format!("node {} left out: {e}", node.name())),
            }
        }
        let later = follow.then(|| self.follow_new_nodes(following, pq.clone(), headers.clone()));
        let mut resp = Response::new(body::merge_lines(bodies, later));
        resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        add_warnings(&mut resp, &warnings);
        Ok(match req.scope.tenant_str() {
            Some(t) => resp.map(|b| tenancy::events::filter_stream(t.to_string(), b, crate::tenant::view::event)),
            None => resp,
        })
    }

    /// A list, a prune or an image or plugin change asked of every node, each answer read whole (a node that takes
    /// longer than `FAN_OUT_TIMEOUT` is left out, with a warning) and the answers merged into one.
    async fn fan_out_answers(
        &self,
        nodes: &[Arc<Node>],
        req: &Forward<'_>,
        pq: &str,
        headers: &http::HeaderMap,
        answer: &tenant::Answer,
        bounds: &listing::Bounds,
    ) -> Result<Response<Body>, ApiError> {
        let calls = nodes.iter().map(|n| async move {
            let waiting = PruneWait::new();
            loop {
                let resp = tokio::time::timeout(FAN_OUT_TIMEOUT, to_node(n.clone(), req, headers, pq))
                    .await
                    .map_err(|_| format!("did not answer within {}s", FAN_OUT_TIMEOUT.as_secs()))?
                    .map_err(|e| e.to_string())?;
                let status = resp.status();
                let bytes = body::collect_limited(resp.into_body(), proxy::answer_limit())
                    .await
                    .map_err(|e| format!("failed during its answer: {e}"))?;
                if waiting.again(status, &bytes).await {
                    continue;
                }
                return Ok::<_, String>((status, bytes));
            }
        });
        let results = futures_util::future::join_all(calls).await;
        let mut answers: Vec<Bytes> = Vec::new();
        let mut refusals: Vec<(StatusCode, Bytes)> = Vec::new();
        let mut warnings = self.unavailable_warnings();
        // A plugin enabled, disabled or removed must be so on every node that has it.
        let plugin_change = matches!(req.endpoint, Endpoint::Plugin { op, .. } if *op != crate::api::PluginOp::Inspect);
        for (node, r) in nodes.iter().zip(results) {
            match r {
                Ok((status, bytes)) if status.is_success() => answers.push(bytes),
                Ok((status, bytes)) => refusals.push((status, bytes)),
                Err(e) if plugin_change => {
                    return Err(ApiError::bad_gateway(format!(
                        "node {} failed: {e} (the plugin may have changed on the other nodes)",
                        node.name()
                    )))
                }
                Err(e) => warnings.push(format!("node {} left out: {e}", node.name())),
            }
        }
        // Image removal and tagging, and plugin changes, succeed where the object is; elsewhere the engine's 404
        // is no failure. Any other refusal of a plugin change is the answer.
        let tolerant = matches!(req.endpoint, Endpoint::Image { .. } | Endpoint::Plugin { .. });
        let refused = plugin_change && refusals.iter().any(|(s, _)| *s != StatusCode::NOT_FOUND);
        if refused {
            refusals.retain(|(s, _)| *s != StatusCode::NOT_FOUND);
        }
        if answers.is_empty() || refused || (!tolerant && !refusals.is_empty()) {
            if let Some((status, bytes)) = refusals.into_iter().next() {
                let resp = plain(status, bytes);
                return Ok(match req.scope.tenant_str() {
                    Some(t) => tenant_view(t, answer, resp.map(body::full)).await,
                    None => resp.map(body::full),
                });
            }
            return Err(ApiError::unavailable(format!("no node answered: {}", warnings.join("; "))));
        }
        let merged =
            merge::merge(req.endpoint, req.parts.uri.query(), bounds, answers).map_err(ApiError::bad_gateway)?;
        let mut resp = plain(StatusCode::OK, merged).map(body::full);
        if matches!(req.endpoint, Endpoint::Image { op: crate::api::ImageOp::Tag, .. }) {
            *resp.status_mut() = StatusCode::CREATED;
        }
        add_warnings(&mut resp, &warnings);
        Ok(match req.scope.tenant_str() {
            Some(t) => tenant_view(t, answer, resp).await,
            None => resp,
        })
    }
}

/// A list query without its `limit`, which then asks for every container (dockerd's `limit` lists stopped ones too).
fn without_limit(query: Option<String>) -> Option<String> {
    let mut q = tenancy::Query::parse(query.as_deref());
    if q.remove("limit").is_some_and(|l| l.parse::<i64>().is_ok_and(|l| l > 0)) {
        q.set("all", "1");
    }
    q.encode()
}

fn plain(status: StatusCode, bytes: Bytes) -> Response<Bytes> {
    let mut resp = Response::new(bytes);
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    resp
}

/// `Warning: 199 mtswarm "node node2 left out: ..."`, one per node left out of a list.
fn add_warnings(resp: &mut Response<Body>, warnings: &[String]) {
    for w in warnings {
        let text = w.replace(['"', '\\', '\r', '\n'], " ");
        if let Ok(v) = header::HeaderValue::from_str(&format!("199 mtswarm \"{text}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
}

/// The request of a fan-out as one node gets it: no body.
fn to_node(
    node: Arc<Node>,
    req: &Forward<'_>,
    headers: &http::HeaderMap,
    pq: &str,
) -> impl std::future::Future<Output = Result<Response<hyper::body::Incoming>, EngineError>> + Send + 'static {
    let mut up = Request::new(body::empty());
    *up.method_mut() = req.parts.method.clone();
    *up.headers_mut() = headers.clone();
    up.headers_mut().remove(header::CONTENT_LENGTH);
    let uri = pq.parse::<http::Uri>();
    async move {
        *up.uri_mut() = uri.map_err(|e| EngineError::Broken { node: node.name(), cause: format!("{e}") })?;
        node.send(up).await
    }
}
