//! The routing phase in a cluster of several nodes: finding the node that holds an object, placing a new
//! container with the scheduler, and fanning lists and streams out to every node.
//!
//! With one node every request goes to it and nothing here asks the engines anything more, so a single-engine
//! mtswarm costs no extra round trip.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use serde_json::Value;

use super::bodies::Upstream;
use super::send::tenant_view;
use super::{merge, Forward, Gateway, RequestCtx};
use crate::api::{ApiError, Endpoint, NetworkOp};
use crate::body::{self, Body};
use crate::cluster::{listing, CachedContainer, EngineError, Node};
use crate::proxy;
use crate::scheduler;
use crate::tenancy::{self, resolve, ResolveError, Resolver};
use crate::tenant::{self, encode, names, Scope, TenantId};

/// How often an open event stream looks for nodes that joined the cluster after it was opened.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// How long a node may take to answer its part of a list before it is left out.
const FAN_OUT_TIMEOUT: Duration = Duration::from_secs(10);

/// An object a request names, to be found among the nodes.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    Container(String),
    Exec(String),
    Network(String),
    Volume(String),
    Image(String),
}

impl Probe {
    /// Docker's answer when the object exists nowhere.
    fn missing(&self) -> ApiError {
        match self {
            Probe::Container(r) => ApiError::not_found(format!("No such container: {r}")),
            Probe::Exec(r) => ApiError::not_found(format!("No such exec instance: {r}")),
            Probe::Network(r) => ApiError::not_found(format!("network {r} not found")),
            Probe::Volume(r) => ApiError::not_found(format!("get {r}: no such volume")),
            Probe::Image(r) => ApiError::not_found(format!("No such image: {r}")),
        }
    }
}

/// True for the endpoints whose body the cluster reads to route them (placement, the container a network
/// connect names, the name of a new network or volume).
pub(crate) fn placement_reads_body(endpoint: &Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::ContainerCreate
            | Endpoint::NetworkCreate
            | Endpoint::VolumeCreate
            | Endpoint::Network { op: NetworkOp::Connect | NetworkOp::Disconnect, .. }
    )
}

pub(crate) fn query_has(query: Option<&str>, key: &str) -> bool {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, v)| k == key && !v.is_empty())
}

fn query_get(query: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

impl Gateway {
    /// The node holding the object, among the healthy ones; `None` if no node has it. With one node, that node
    /// (it answers for itself).
    pub(crate) async fn find(&self, probe: &Probe, scope: &Scope) -> Result<Option<Arc<Node>>, ApiError> {
        Ok(self.find_all(probe, scope).await?.into_iter().next())
    }

    /// Every healthy node that holds the object (a multi-host network is on all of them).
    ///
    /// Each node says how its object matched the reference, and the best match across the cluster wins, in
    /// dockerd's order: a full id, then a name, then an id prefix. So `b` names the container called `b` even
    /// where another node holds a container whose id starts with `b`, and a prefix that fits containers on two
    /// nodes is as ambiguous as one that fits two on one engine.
    async fn find_all(&self, probe: &Probe, scope: &Scope) -> Result<Vec<Arc<Node>>, ApiError> {
        let nodes = self.cluster.healthy_nodes();
        let answers = futures_util::future::join_all(nodes.iter().map(|n| probe_one(n, probe, scope))).await;
        let mut matches = Vec::new();
        let mut failure = None;
        let mut ambiguous = None;
        for (node, answer) in nodes.iter().zip(answers) {
            match answer {
                Ok(Some(m)) => matches.push((m, node.clone())),
                Ok(None) => {}
                Err(e @ ResolveError::Ambiguous { .. }) => {
                    ambiguous.get_or_insert(ApiError::from(e));
                }
                Err(e) => match ApiError::from(e) {
                    e if e.status == StatusCode::SERVICE_UNAVAILABLE || e.status == StatusCode::BAD_GATEWAY => {
                        failure.get_or_insert(e);
                    }
                    e => return Err(e),
                },
            }
        }
        let best = matches.iter().map(|(m, _)| *m).min();
        let found: Vec<Arc<Node>> = matches.into_iter().filter(|(m, _)| Some(*m) == best).map(|(_, n)| n).collect();
        if best.is_none_or(|m| m == Match::Prefix) {
            if let Some(e) = ambiguous {
                return Err(e);
            }
            if found.len() > 1 {
                if let Probe::Container(r) = probe {
                    return Err(resolve::ambiguous(r));
                }
            }
        }
        match (found.is_empty(), failure) {
            (true, Some(e)) => Err(e),
            _ => Ok(found),
        }
    }

    /// The node holding the object, or the error a client gets: Docker's "no such" answer, or, for a container
    /// last seen on a node that is now unavailable, an error naming that node.
    pub(crate) async fn locate(&self, probe: &Probe, scope: &Scope) -> Result<Arc<Node>, ApiError> {
        let tenant = scope.tenant_str();
        if !self.cluster.is_cluster() {
            return self.cluster.any_node();
        }
        if let Some(n) = self.find(probe, scope).await? {
            return Ok(n);
        }
        if let Probe::Container(r) = probe {
            let r = r.trim_start_matches('/');
            let scoped = tenant.map(|t| names::scope(t, r));
            let holder = self.cluster.unavailable_holder(|c| {
                let mine = tenant.is_none_or(|t| c.tenant.as_deref() == Some(t));
                let by_name = c.name == scoped.as_deref().unwrap_or(r);
                mine && (by_name || (!r.is_empty() && c.id.starts_with(r)))
            });
            if let Some(n) = holder {
                let cause = n.facts().last_error.unwrap_or_default();
                return Err(ApiError::unavailable(format!(
                    "container {r} is on node {}, which is unavailable: {cause}",
                    n.name()
                )));
            }
        }
        Err(probe.missing())
    }

    /// The node an object request goes to.
    pub(crate) async fn locate_for(&self, req: &Forward<'_>, doc: Option<&Value>) -> Result<Arc<Node>, ApiError> {
        if !self.cluster.is_cluster() {
            return self.cluster.any_node();
        }
        let query = req.parts.uri.query();
        let probe = match req.endpoint {
            // A legacy link `parent/alias` is removed where its parent is.
            Endpoint::Container { id, .. } => {
                let id = id.trim_start_matches('/');
                Probe::Container(id.split_once('/').map_or(id, |(parent, _)| parent).to_string())
            }
            Endpoint::Exec { id, .. } => Probe::Exec(id.clone()),
            Endpoint::Volume { name, .. } => Probe::Volume(name.clone()),
            Endpoint::Network { op: NetworkOp::Connect | NetworkOp::Disconnect, id } => {
                // The container's node: a network a container joins must be where the container is.
                match doc.and_then(|d| field(d, "Container")).and_then(Value::as_str) {
                    Some(c) => Probe::Container(c.to_string()),
                    None => Probe::Network(id.clone()),
                }
            }
            Endpoint::Network { id, .. } => Probe::Network(id.clone()),
            Endpoint::Image { name, .. } => Probe::Image(name.clone()),
            Endpoint::ImagesSave => match query_get(query, "names") {
                Some(n) => Probe::Image(n),
                None => return self.cluster.any_node(),
            },
            Endpoint::Commit => match query_get(query, "container") {
                Some(c) => Probe::Container(c),
                None => return self.cluster.any_node(),
            },
            _ => return self.cluster.any_node(),
        };
        self.locate(&probe, req.scope).await
    }

    /// The node a new network or volume goes to: the one that already has that name (the engine then answers
    /// as it does for a duplicate), else the least loaded.
    pub(crate) async fn node_for_new_object(
        &self,
        req: &Forward<'_>,
        doc: Option<&Value>,
    ) -> Result<Arc<Node>, ApiError> {
        if !self.cluster.is_cluster() {
            return self.cluster.any_node();
        }
        let name = doc.and_then(|d| field(d, "Name")).and_then(Value::as_str).filter(|n| !n.is_empty());
        if let Some(name) = name {
            let probe = match req.endpoint {
                Endpoint::NetworkCreate => Probe::Network(name.to_string()),
                _ => Probe::Volume(name.to_string()),
            };
            if let Some(n) = self.find(&probe, req.scope).await? {
                return Ok(n);
            }
        }
        self.cluster.least_loaded()
    }

    /// A container create in a cluster: the scheduler chooses among the nodes, room is reserved there while the
    /// engine creates it, and a node found unavailable on the way is left for the next choice.
    pub(crate) async fn create_in_cluster(
        &self,
        ctx: &mut RequestCtx,
        req: &Forward<'_>,
        mut doc: Value,
        body: Upstream,
    ) -> Result<Response<Body>, ApiError> {
        let placement_err = |m: String| ApiError::bad_request(m);
        let before = req.scope.tenant_str().is_none().then(|| doc.clone());
        let mut placement = scheduler::placement_from_create(&mut doc).map_err(placement_err)?;
        // The operator's body goes as it came, unless the scheduler moved `-e constraint:` entries into labels.
        let body = match (before, body) {
            (Some(before), Upstream::Bytes(bytes)) if before == doc => Some(bytes),
            _ => None,
        };
        placement.colocate = self.dependencies(&doc, req.scope).await?;
        let (engine_name, _name_lock) = self.claim_name(req).await?;
        let reservation = CachedContainer {
            name: engine_name.clone().unwrap_or_default(),
            tenant: req.scope.tenant_str().map(str::to_string),
            image: placement.image.clone(),
            memory: placement.memory,
            nano_cpus: placement.nano_cpus,
            published: placement.ports.clone(),
            ..Default::default()
        };
        let attempts = self.cluster.nodes().len().max(1);
        let mut last = None;
        for _ in 0..attempts {
            let ticket = self
                .cluster
                .place(req.scope.tenant_str(), &placement, reservation.clone())
                .map_err(|e| ApiError::unavailable(e.message))?;
            let node = ticket.node.clone();
            let upstream = match &body {
                Some(bytes) => Upstream::Bytes(bytes.clone()),
                None => Upstream::Doc(doc.clone()),
            };
            match self.send_to(ctx, &node, req, upstream).await {
                Ok((resp, created)) => {
                    ticket.settle(created.as_deref());
                    return Ok(resp);
                }
                Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE && !node.healthy() => {
                    ticket.settle(None);
                    tracing::info!(node = %node.addr, "the chosen node is unavailable; placing the container again");
                    last = Some(e);
                }
                Err(e) => {
                    ticket.settle(None);
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ApiError::unavailable("no node could take the container")))
    }

    /// The engine-side name a create or a rename gives a container (its `name` query), checked free on every node
    /// and held until the engine has answered: one engine keeps names unique, the cluster does it across engines.
    pub(crate) async fn claim_name(
        &self,
        req: &Forward<'_>,
    ) -> Result<(Option<String>, Option<tokio::sync::OwnedMutexGuard<()>>), ApiError> {
        let Some(name) = query_get(req.parts.uri.query(), "name").map(|n| n.trim_start_matches('/').to_string()) else {
            return Ok((None, None));
        };
        let engine_name = match req.scope.tenant_str() {
            Some(t) => names::scope(t, &name),
            None => name.clone(),
        };
        let lock = self.quota_locks.lock(&format!("\0name\0{engine_name}")).await;
        self.check_name_is_free(&engine_name, &name).await?;
        Ok((Some(engine_name), Some(lock)))
    }

    /// Refuses a name a container already has on any node, as dockerd refuses it on one.
    async fn check_name_is_free(&self, engine_name: &str, shown: &str) -> Result<(), ApiError> {
        let filters = serde_json::json!({"name": {format!("^/{}$", regex::escape(engine_name)): true}}).to_string();
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("all", "1")
            .append_pair("filters", &filters)
            .finish();
        let nodes = self.cluster.healthy_nodes();
        let lists = futures_util::future::join_all(nodes.iter().map(|n| {
            let path = format!("/containers/json?{q}");
            async move { n.get_json(&path).await }
        }))
        .await;
        let mut holder = None;
        for list in lists {
            let list = list.map_err(ApiError::from)?;
            if let Some(id) = list.as_array().and_then(|l| l.first()).and_then(|c| c.get("Id")).and_then(Value::as_str)
            {
                holder = Some(id.to_string());
            }
        }
        if holder.is_none() {
            holder =
                self.cluster.nodes().iter().filter(|n| !n.healthy()).find_map(|n| {
                    n.holdings().containers.values().find(|c| c.name == engine_name).map(|c| c.id.clone())
                });
        }
        match holder {
            Some(id) => Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "Conflict. The container name \"/{shown}\" is already in use by container \"{id}\". \
                     You have to remove (or rename) that container to be able to reuse that name."
                ),
            )),
            None => Ok(()),
        }
    }

    /// The nodes where the objects a create body depends on live: the containers it shares volumes, links or
    /// namespaces with, the networks it joins and the named volumes it mounts.
    async fn dependencies(&self, doc: &Value, scope: &Scope) -> Result<BTreeSet<String>, ApiError> {
        let mut probes = Vec::new();
        // The canonical document holds one HostConfig.
        if let Some(hc) = field(doc, "HostConfig") {
            for v in strings(hc, "VolumesFrom") {
                probes.push(Probe::Container(v.split(':').next().unwrap_or_default().to_string()));
            }
            for l in strings(hc, "Links") {
                probes.push(Probe::Container(
                    l.split(':').next().unwrap_or_default().trim_start_matches('/').to_string(),
                ));
            }
            for key in ["NetworkMode", "PidMode", "IpcMode", "Cgroup"] {
                let Some(mode) = field(hc, key).and_then(Value::as_str) else { continue };
                if let Some(c) = mode.strip_prefix("container:") {
                    probes.push(Probe::Container(c.to_string()));
                } else if key == "NetworkMode" && is_user_network(mode) {
                    probes.push(Probe::Network(mode.to_string()));
                }
            }
        }
        if let Some(eps) =
            field(doc, "NetworkingConfig").and_then(|n| field(n, "EndpointsConfig")).and_then(Value::as_object)
        {
            probes.extend(eps.keys().filter(|n| is_user_network(n)).map(|n| Probe::Network(n.clone())));
        }
        probes.extend(tenancy::named_volumes(doc).into_iter().map(Probe::Volume));
        let mut out = BTreeSet::new();
        for p in probes {
            if matches!(&p, Probe::Container(r) if r.is_empty()) {
                continue;
            }
            let found = match &p {
                // A missing container is the engine's 400 later, on the chosen node, as without a cluster.
                Probe::Container(_) => match self.locate(&p, scope).await {
                    Ok(n) => Some(n),
                    Err(e) if e.status == StatusCode::NOT_FOUND => None,
                    Err(e) => return Err(e),
                },
                // A network every node has (an overlay network) places nothing.
                Probe::Network(_) => {
                    let on = self.find_all(&p, scope).await?;
                    if on.len() == 1 {
                        on.into_iter().next()
                    } else {
                        None
                    }
                }
                _ => self.find(&p, scope).await?,
            };
            if let Some(n) = found {
                out.insert(n.name());
            }
        }
        Ok(out)
    }

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
        ctx.node = Some(format!("{} nodes", nodes.len()));
        tracing::Span::current().record("node", ctx.node.as_deref());
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
                ctx.node = Some("registry".into());
                tracing::Span::current().record("node", "registry");
                return Ok(plain(StatusCode::OK, Bytes::from(list)).map(body::full));
            }
        }
        if !bounds.is_empty() {
            // The engines list all that `limit` would (stopped containers too); the bounds and the limit are
            // applied to the merged list.
            query = without_limit(query);
        }
        let pq = proxy::upstream_path(ctx.version.as_ref(), &self.cluster.max_api_version(), &path, query.as_deref());
        let headers = proxy::copy_headers(&req.parts.headers);
        let send = |node: Arc<Node>| {
            let mut up = Request::new(body::empty());
            *up.method_mut() = req.parts.method.clone();
            *up.headers_mut() = headers.clone();
            up.headers_mut().remove(header::CONTENT_LENGTH);
            let pq = pq.clone();
            async move {
                *up.uri_mut() =
                    pq.parse().map_err(|e| EngineError::Broken { node: node.name(), cause: format!("{e}") })?;
                node.send(up).await
            }
        };
        if matches!(req.endpoint, Endpoint::Events) {
            let opened = futures_util::future::join_all(nodes.iter().map(|n| send(n.clone()))).await;
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
            // A stream that runs on (no `until`) also takes the nodes that join the cluster, or come back, later.
            let later = (!query_has(query.as_deref(), "until"))
                .then(|| self.follow_new_nodes(following, pq.clone(), headers.clone()));
            let mut resp = Response::new(body::merge_lines(bodies, later));
            resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
            add_warnings(&mut resp, &warnings);
            return Ok(match req.scope.tenant_str() {
                Some(t) => resp.map(|b| tenancy::events::filter_stream(t.to_string(), b, crate::tenant::view::event)),
                None => resp,
            });
        }
        let send = &send;
        let calls = nodes.iter().map(|n| async move {
            let waiting = PruneWait::new();
            loop {
                let resp = tokio::time::timeout(FAN_OUT_TIMEOUT, send(n.clone()))
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
        for (node, r) in nodes.iter().zip(results) {
            match r {
                Ok((status, bytes)) if status.is_success() => answers.push(bytes),
                Ok((status, bytes)) => refusals.push((status, bytes)),
                Err(e) => warnings.push(format!("node {} left out: {e}", node.name())),
            }
        }
        // Image removal and tagging, and plugin changes, succeed where the object is; elsewhere the engine's 404
        // is no failure.
        let tolerant = matches!(req.endpoint, Endpoint::Image { .. } | Endpoint::Plugin { .. });
        if answers.is_empty() || (!tolerant && !refusals.is_empty()) {
            if let Some((status, bytes)) = refusals.into_iter().next() {
                let resp = plain(status, bytes);
                return Ok(match req.scope.tenant_str() {
                    Some(t) => tenant_view(t, &answer, resp.map(body::full)).await,
                    None => resp.map(body::full),
                });
            }
            return Err(ApiError::unavailable(format!("no node answered: {}", warnings.join("; "))));
        }
        let merged =
            merge::merge(req.endpoint, req.parts.uri.query(), &bounds, answers).map_err(ApiError::bad_gateway)?;
        let mut resp = plain(StatusCode::OK, merged).map(body::full);
        if matches!(req.endpoint, Endpoint::Image { op: crate::api::ImageOp::Tag, .. }) {
            *resp.status_mut() = StatusCode::CREATED;
        }
        add_warnings(&mut resp, &warnings);
        Ok(match req.scope.tenant_str() {
            Some(t) => tenant_view(t, &answer, resp).await,
            None => resp,
        })
    }
}

/// An engine runs one prune of a kind at a time and refuses the next with 409 "a prune operation is already
/// running". On a shared engine that would make one tenant's prune fail because another tenant prunes: mtswarm
/// waits its turn instead, for a while.
pub(crate) struct PruneWait {
    deadline: tokio::time::Instant,
}

impl PruneWait {
    const PATIENCE: Duration = Duration::from_secs(30);

    pub(crate) fn new() -> PruneWait {
        PruneWait { deadline: tokio::time::Instant::now() + PruneWait::PATIENCE }
    }

    /// True (after a pause) if the answer says another prune is running and there is time to try again.
    pub(crate) async fn again(&self, status: StatusCode, body: &[u8]) -> bool {
        let busy = status == StatusCode::CONFLICT
            && crate::cluster::node::engine_message(body).contains("a prune operation is already running");
        if !busy || tokio::time::Instant::now() >= self.deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        true
    }
}

/// How an object matched the reference that names it, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    Id,
    Name,
    Prefix,
}

impl Match {
    /// How `reference` named the object with this id and (engine-side) name.
    fn of(reference: &str, id: &str, name: &str) -> Match {
        if id == reference {
            Match::Id
        } else if name.trim_start_matches('/') == reference {
            Match::Name
        } else {
            Match::Prefix
        }
    }
}

/// Whether a probe finds the object on `node`, and how: among the tenant's own objects, or any object for the
/// admin.
async fn probe_one(node: &Node, probe: &Probe, scope: &Scope) -> Result<Option<Match>, ResolveError> {
    let tenant = scope.tenant_str();
    let found = |r: Result<Match, ResolveError>| match r {
        Ok(m) => Ok(Some(m)),
        Err(ResolveError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    };
    if let Some(t) = tenant {
        let r = Resolver { node, tenant: t };
        return match probe {
            Probe::Container(c) => {
                let c = c.trim_start_matches('/');
                let scoped = names::scope(t, c);
                found(r.container(c).await.map(|o| {
                    if o.id == c {
                        Match::Id
                    } else if o.engine_name.trim_start_matches('/') == scoped {
                        Match::Name
                    } else {
                        Match::Prefix
                    }
                }))
            }
            Probe::Exec(e) => found(r.exec(e).await.map(|_| Match::Id)),
            Probe::Network(n) => found(r.network(n).await.map(|u| {
                if u.name == names::scope(t, n) || (u.shared && u.name == *n) {
                    Match::Name
                } else {
                    Match::of(n, &u.id, "")
                }
            })),
            Probe::Volume(v) => found(r.volume(v).await.map(|_| Match::Name)),
            Probe::Image(i) => inspect_match(node, &format!("/images/{}/json", encode(i)), i).await,
        };
    }
    let (path, reference) = match probe {
        Probe::Container(c) => {
            let c = c.trim_start_matches('/');
            (format!("/containers/{}/json", encode(c)), c)
        }
        Probe::Exec(e) => (format!("/exec/{}/json", encode(e)), e.as_str()),
        Probe::Network(n) => (format!("/networks/{}", encode(n)), n.as_str()),
        Probe::Volume(v) => (format!("/volumes/{}", encode(v)), v.as_str()),
        Probe::Image(i) => (format!("/images/{}/json", encode(i)), i.as_str()),
    };
    inspect_match(node, &path, reference).await
}

/// Inspects an object on the node and says how the reference matched it.
async fn inspect_match(node: &Node, path: &str, reference: &str) -> Result<Option<Match>, ResolveError> {
    match node.get_json(path).await {
        Ok(v) => {
            let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
            let id = text("Id").trim_start_matches("sha256:");
            let name = if v.get("Name").is_some() { text("Name") } else { reference };
            Ok(Some(if id == reference.trim_start_matches("sha256:") {
                Match::Id
            } else {
                Match::of(reference, id, name)
            }))
        }
        Err(EngineError::Answer { status: StatusCode::NOT_FOUND, .. }) => Ok(None),
        Err(e) => Err(ResolveError::from_engine(e)),
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

/// A network a container joins by name that is not one of the engine's own.
fn is_user_network(name: &str) -> bool {
    !name.is_empty() && !["default", "bridge", "none", "host"].contains(&name) && !name.starts_with("container:")
}

/// A field of a canonical document ([`crate::api::decode`]).
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|v| !v.is_null())
}

fn strings(v: &Value, name: &str) -> Vec<String> {
    field(v, name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
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
