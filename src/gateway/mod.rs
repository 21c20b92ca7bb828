//! The request pipeline: every request goes through the same phases, in this order, each a function.
//!
//! 1. `negotiate`: the API version prefix, refused as dockerd refuses it;
//! 2. `classify`: the closed [`Endpoint`] enum; an unknown endpoint stops here;
//! 3. `authenticate`: who is asking (every endpoint but `/_ping`), then policy (the tenancy and policy work
//!    adds its phases here);
//! 4. `route`: mtswarm itself, or the node chosen by the cluster;
//! 5. forward (streamed) or hijack, and relay the answer;
//! 6. `finish`: the headers every response carries, and one log line.
//!
//! **Architecture Invariant:** nothing is sent to an engine before phases 1 to 3 have passed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::{header, Method, Request, Response};
use hyper::body::Incoming;

use crate::api::ContainerOp;
use crate::api::{self, version, ApiError, ApiVersion, Endpoint};
use crate::auth::{Authenticator, Credentials, Identity};
use crate::body::{self, Body};
use crate::policy::{self, apifilter::ApiFilter, escape, escape::Deny, escape::EscapeRules};
use crate::policy::{flavors::Flavors, quota::Quota, quota::Usage, resources};

/// The operator's policy, as configured.
pub struct PolicyRules {
    pub escape: EscapeRules,
    pub apifilter: ApiFilter,
    /// SWARM_FLAVORS_ENFORCED: the flavors every container is made to fit.
    pub flavors: Option<Flavors>,
    /// SWARM_ENFORCE_QUOTA: each tenant's limits.
    pub quota: Option<Quota>,
    /// SWARM_TENANT_SUBNETS: where tenants' networks may take subnets.
    pub tenant_subnets: Vec<policy::networks::Cidr>,
    /// SWARM_TENANT_DEFAULT_NETWORK: whether each tenant's default network is its own.
    pub default_network: tenancy::DefaultNetwork,
}
use crate::api::DenyKind;
use crate::cluster::{Cluster, Node, Route};
use crate::proxy::{self, hijack};
use crate::tenancy;
use crate::tenant::{self, Scope, TenantId};

mod limits;
mod merge;
mod ops;
pub use limits::Limits;
pub use ops::PolicyFiles;
mod route;
pub mod system;

/// A request on its way to one or more nodes: what the phases before routing made of it.
pub(crate) struct Forward<'a> {
    pub endpoint: &'a Endpoint,
    /// Whom it acts for.
    pub scope: &'a Scope,
    pub parts: &'a http::request::Parts,
    /// The path without its version prefix.
    pub path: &'a str,
}

/// Shared by all requests.
pub struct Gateway {
    pub cluster: Arc<Cluster>,
    /// `None` when multi-tenancy is off: nobody is asked who they are.
    pub auth: Option<Authenticator>,
    /// Operator-facing warnings shown by `docker info`.
    warnings: Vec<String>,
    escape_rules: EscapeRules,
    /// The API filter, flavors and quota in force: replaced whole by a reload (SIGHUP), read once per request.
    live: std::sync::RwLock<Arc<LivePolicy>>,
    /// Where audit records go, if anywhere.
    audit: Option<crate::ops::audit::Audit>,
    tenant_subnets: Vec<policy::networks::Cidr>,
    /// The tenants' default networks, made on the node of their first use.
    default_networks: tenancy::DefaultNetworks,
    /// Serialises each tenant's requests that take resources, while a quota is enforced.
    quota_locks: tenancy::usage::TenantLocks,
    /// Each tenant's requests in flight and open streams, against `--tenant-max-requests/-streams`.
    tenant_limits: limits::TenantLimits,
    /// How long a request body read whole may take, and a streamed one may pause.
    body_timeout: std::time::Duration,
    /// How long an engine may take over a call that is not a stream.
    engine_timeout: std::time::Duration,
    next_id: AtomicU64,
}

/// The policy files' settings, swapped whole on reload so a request sees one consistent set.
pub(crate) struct LivePolicy {
    apifilter: ApiFilter,
    flavors: Option<Flavors>,
    quota: Option<Quota>,
}

/// The client's address (`IP:PORT`, or `unix` for the unix socket), put on each request of its connection.
#[derive(Debug, Clone)]
pub struct RemoteAddr(pub Arc<str>);

/// The common name of the client's verified TLS certificate, put on each request of its connection.
#[derive(Debug, Clone)]
pub struct PeerCn(pub Arc<str>);

/// What one request has learned about itself as it moves through the phases.
#[derive(Debug)]
pub struct RequestCtx {
    /// Counts requests since start, for correlating log lines.
    pub id: u64,
    pub method: Method,
    pub path: String,
    /// The version the client asked for in its path, if it did.
    pub version: Option<ApiVersion>,
    pub endpoint: Option<Endpoint>,
    /// Who is asking, once authenticated.
    pub identity: Option<Identity>,
    /// The node that served it, for the log line.
    pub node: Option<String>,
    pub started: Instant,
    /// The tenant's request permit, held until the answer's head is out.
    pub request_permit: Option<limits::Permit>,
    /// The tenant's stream permit, handed to the answer's body or the hijacked session.
    pub stream_permit: Option<limits::Permit>,
    /// Why policy refused it, and the message the client got.
    pub denial: Option<(DenyKind, String)>,
    /// The client's address, for the audit log.
    pub remote: Option<Arc<str>>,
    /// The query, for the audit log's object of a create (`?name=`).
    pub query: Option<String>,
}

impl Gateway {
    pub fn new(cluster: Arc<Cluster>, auth: Option<Authenticator>, rules: PolicyRules) -> Gateway {
        let PolicyRules { escape: escape_rules, apifilter, flavors, quota, tenant_subnets, default_network } = rules;
        let mut warnings = Vec::new();
        match &auth {
            None => warnings.push("WARNING: SWARM_MULTI_TENANT=false: no authentication and no tenancy".to_string()),
            Some(a) if matches!(a.backend(), crate::auth::Backend::TrustHeader) => warnings
                .push("WARNING: SWARM_AUTH_BACKEND=None: X-Auth-TenantId is trusted without any token".to_string()),
            Some(_) => {}
        }
        Gateway {
            cluster,
            auth,
            warnings,
            escape_rules,
            live: std::sync::RwLock::new(Arc::new(LivePolicy { apifilter, flavors, quota })),
            audit: None,
            tenant_subnets,
            default_networks: tenancy::DefaultNetworks::new(default_network),
            quota_locks: Default::default(),
            tenant_limits: limits::TenantLimits::new(
                Limits::default().tenant_max_requests,
                Limits::default().tenant_max_streams,
            ),
            body_timeout: Limits::default().body_timeout,
            engine_timeout: Limits::default().engine_timeout,
            next_id: AtomicU64::new(1),
        }
    }

    /// The limits of `--tenant-max-requests`, `--tenant-max-streams`, `--body-timeout` and `--engine-timeout`.
    pub fn with_limits(mut self, l: Limits) -> Gateway {
        self.tenant_limits = limits::TenantLimits::new(l.tenant_max_requests, l.tenant_max_streams);
        self.body_timeout = l.body_timeout;
        self.engine_timeout = l.engine_timeout;
        self
    }

    /// Writes an audit record of every change and every denial.
    pub fn with_audit(mut self, audit: Option<crate::ops::audit::Audit>) -> Gateway {
        self.audit = audit;
        self
    }

    /// The policy in force now.
    fn live(&self) -> Arc<LivePolicy> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serves one request; never fails, errors become Docker-style responses.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let ctx = RequestCtx {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            version: None,
            endpoint: None,
            identity: None,
            node: None,
            started: Instant::now(),
            request_permit: None,
            stream_permit: None,
            denial: None,
            remote: req.extensions().get::<RemoteAddr>().map(|r| r.0.clone()),
            // Only the audit log reads it (a create's `?name=`).
            query: self.audit.as_ref().and(req.uri().query()).map(str::to_string),
        };
        // Every line logged while the request is served carries who and what it is; the phases fill in the
        // fields as they learn them (`Span::current().record`).
        let span = tracing::info_span!(
            "request",
            id = ctx.id,
            endpoint = tracing::field::Empty,
            tenant = tracing::field::Empty,
            node = tracing::field::Empty
        );
        tracing::Instrument::instrument(self.serve(ctx, req), span).await
    }

    async fn serve(&self, mut ctx: RequestCtx, req: Request<Incoming>) -> Response<Body> {
        let slot = req.extensions().get::<crate::proxy::hijack::HijackSlot>().cloned();
        let mut resp = match self.pipeline(&mut ctx, req).await {
            Ok(resp) => resp,
            Err(e) => {
                ctx.denial = e.denial_kind().map(|k| (k, e.message.clone()));
                e.into_response()
            }
        };
        // A stream's permit lasts as long as the stream: the hijacked session, or the answer's body.
        if let Some(permit) = ctx.stream_permit.take() {
            match slot.filter(|s| s.holds_engine()) {
                Some(slot) => slot.hold(permit),
                None => resp = resp.map(|b| limits::HeldBody::wrap(b, permit)),
            }
        }
        self.finish(&ctx, resp)
    }

    async fn pipeline(&self, ctx: &mut RequestCtx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let path = self.negotiate(ctx, req.uri().path())?;
        let endpoint = classify(&ctx.method, &path)?;
        tracing::Span::current().record("endpoint", endpoint.command_name());
        ctx.endpoint = Some(endpoint.clone());
        ctx.identity = self.authenticate(&endpoint, &req).await?;
        if let Some(id) = &ctx.identity {
            tracing::Span::current().record("tenant", id.tenant.as_str());
        }
        if let Some(id) = &ctx.identity {
            ctx.request_permit = Some(self.tenant_limits.request(&id.tenant)?);
            if limits::opens_stream(&endpoint, req.uri().query()) {
                ctx.stream_permit = Some(self.tenant_limits.stream(&id.tenant)?);
            }
        }
        if req.uri().query().is_some() {
            api::query::check(&endpoint, &api::query::pairs(req.uri().query()))?;
        }
        // A tenant other than the admin is limited by policy and scoped by tenancy.
        let scope = match &ctx.identity {
            Some(i) if !i.admin => Scope::Tenant(i.tenant.clone()),
            _ => Scope::Operator,
        };
        let tenant = scope.tenant();
        if tenant.is_some() {
            self.live().apifilter.check(&endpoint).map_err(forbidden(DenyKind::ApiFilter))?;
            policy::images::check_endpoint(&endpoint, req.uri().query()).map_err(forbidden(DenyKind::ApiFilter))?;
            if let Endpoint::Container { op: ContainerOp::Top, .. } = &endpoint {
                let pairs = api::query::pairs(req.uri().query());
                escape::check_top_args(api::query::first(&pairs, "ps_args").unwrap_or_default())
                    .map_err(forbidden(DenyKind::Escape))?;
            }
            if matches!(endpoint, Endpoint::ImageCreate) {
                if let Some(pull) = policy::images::pull_of(req.uri().query()).map_err(forbidden(DenyKind::Escape))? {
                    self.pull_phase(&pull).await?;
                }
            }
            let searched = match &endpoint {
                Endpoint::ImageSearch => api::query::first(&api::query::pairs(req.uri().query()), "term")
                    .and_then(policy::images::registry_of_reference)
                    .map(|r| (r.to_string(), "term")),
                Endpoint::DistributionInspect { name } => {
                    policy::images::registry_of_reference(name).map(|r| (r.to_string(), "name"))
                }
                _ => None,
            };
            if let Some((registry, field)) = searched {
                self.registry_phase(&registry, field).await?;
            }
            match policy::plugins::for_tenant(&endpoint).map_err(forbidden(DenyKind::ApiFilter))? {
                policy::plugins::TenantPlugins::NoneListed => {
                    return Ok(system::json_response(http::StatusCode::OK, &serde_json::json!([])));
                }
                policy::plugins::TenantPlugins::Missing(name) => {
                    return Err(ApiError::not_found(policy::plugins::missing_message(&name)));
                }
                policy::plugins::TenantPlugins::NotPlugins => {}
            }
        }
        let mut route = self.cluster.route(&endpoint);
        if route == Route::Local {
            let query = api::query::pairs(req.uri().query());
            return Ok(self.answer_locally(&endpoint, &ctx.method, &query, &scope).await);
        }
        // An import carries its image in the body, which can go to one node only.
        if matches!(endpoint, Endpoint::ImageCreate) && route::query_has(req.uri().query(), "fromSrc") {
            route = Route::Any;
        }
        let (parts, incoming) = req.into_parts();
        let multi = self.cluster.is_cluster();
        let (mut doc, body) = self.body_phase(&endpoint, tenant.is_some(), multi, incoming).await?;

        // The tenant's quota lock, held until the engine has answered (this function returns): the tenant's
        // next request that takes resources is checked against the result.
        let mut _quota_lock = None;
        if let Some(t) = &tenant {
            // First everything but ownership, before tenancy acts (it may create the tenant's named volumes):
            // a refused request must leave nothing behind.
            if let (Some(check), Some(doc)) = (escape_check(&endpoint), doc.as_ref()) {
                check(doc, &self.escape_rules, &|_: &str| true).map_err(forbidden(DenyKind::Escape))?;
            }
            if let (Endpoint::ContainerCreate, Some(doc)) = (&endpoint, doc.as_mut()) {
                escape::pin_private_cgroupns(doc);
            }
            let login = doc.as_ref().filter(|_| matches!(endpoint, Endpoint::Auth));
            if let Some(address) = login.and_then(|d| d.get("serveraddress")).and_then(|a| a.as_str()) {
                if let Some(registry) = policy::images::registry_of_address(address) {
                    self.registry_phase(registry, "serveraddress").await?;
                }
            }
            if let (Endpoint::NetworkCreate, Some(doc)) = (&endpoint, doc.as_ref()) {
                let rules = policy::networks::NetworkRules {
                    tenant_subnets: self.tenant_subnets.clone(),
                    overlay: self.cluster.healthy_nodes().iter().any(|n| n.has_cluster_store()),
                };
                policy::networks::check_create(doc, &rules).map_err(forbidden(DenyKind::Escape))?;
            }
            _quota_lock = self.resources_phase(t, &endpoint, doc.as_mut()).await?;
        }
        let req = Forward { endpoint: &endpoint, scope: &scope, parts: &parts, path: &path };
        match route {
            Route::Local => unreachable!("answered above"),
            Route::FanOut if multi => self.fan_out(ctx, &req).await,
            Route::Create if multi => {
                self.create_in_cluster(ctx, &req, doc.unwrap_or_else(|| serde_json::json!({})), body).await
            }
            _ => {
                let node = match route {
                    Route::Object => self.locate_for(&req, doc.as_ref()).await?,
                    Route::NewObject => self.node_for_new_object(&req, doc.as_ref()).await?,
                    _ => self.cluster.any_node()?,
                };
                // A rename, like a create, takes a name that must be free on every node, not only on this one.
                let _name_lock = match endpoint {
                    Endpoint::Container { op: ContainerOp::Rename, .. } if multi => self.claim_name(&req).await?.1,
                    _ => None,
                };
                let upstream = match (doc, tenant.is_some()) {
                    (Some(doc), true) => Upstream::Doc(doc),
                    _ => body,
                };
                let (resp, _) = self.send_to(ctx, &node, &req, upstream).await?;
                Ok(resp)
            }
        }
    }

    /// A tenant's pull: its registry must not resolve to the engine host's own addresses, and it may not
    /// change a tag that exists on any node (the catalogue is shared).
    async fn pull_phase(&self, pull: &policy::images::Pull) -> Result<(), ApiError> {
        if let Some(registry) = &pull.registry {
            self.registry_phase(registry, "fromImage").await?;
        }
        let (path, what) = match (&pull.tag, pull.all_tags) {
            (Some(tag), _) => {
                let r = format!("{}:{tag}", pull.name);
                (format!("/images/{r}/json"), format!("the tag {r}"))
            }
            (None, true) => {
                let filters = serde_json::json!({ "reference": [&pull.name] }).to_string();
                (format!("/images/json?filters={}", tenant::encode(&filters)), format!("every tag of {}", pull.name))
            }
            // A pull by digest writes no tag.
            (None, false) => return Ok(()),
        };
        let nodes = self.cluster.healthy_nodes();
        let answers = futures_util::future::join_all(nodes.iter().map(|n| n.get_json(&path))).await;
        for answer in answers {
            match answer {
                Ok(v) if v.as_array().is_some_and(|a| a.is_empty()) => {}
                Ok(_) => return Err(forbidden(DenyKind::Isolation)(policy::images::existing_tag(&what))),
                Err(crate::cluster::EngineError::Answer { status: http::StatusCode::NOT_FOUND, .. }) => {}
                Err(e) => return Err(ApiError::from(e)),
            }
        }
        Ok(())
    }

    /// A registry a tenant's request makes the engine contact (a pull, a search, a distribution inspect, a login)
    /// may not be the engine host's own: not a loopback, link-local or unspecified address, nor a name that
    /// resolves to one.
    async fn registry_phase(&self, registry: &str, field: &str) -> Result<(), ApiError> {
        let deny = |reason: String| forbidden(DenyKind::Escape)(Deny { field: field.to_string(), reason });
        policy::images::check_registry(registry).map_err(|d| deny(d.reason))?;
        let host = policy::images::registry_host(registry);
        if host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(());
        }
        let lookup = tokio::net::lookup_host((host.to_string(), 443));
        if let Ok(Ok(addrs)) = tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
            if let Some(a) = addrs.map(|a| a.ip()).find(policy::images::forbidden_registry_address) {
                return Err(deny(format!(
                    "the registry {registry} is refused: it resolves to {a}, a loopback, link-local or unspecified \
                     address (the engine host's own)"
                )));
            }
        }
        Ok(())
    }

    /// The body phase: a tenant's JSON body is decoded once, as dockerd decodes it ([`api::decode`]), into the
    /// document every later phase reads and the engine gets; a tenant's request whose endpoint reads no body sends
    /// none. The operator's body goes to the engine as it came; in a cluster, a create's is also decoded for the
    /// scheduler (a body that does not decode is placed without its facts, and the engine judges it).
    async fn body_phase(
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

    /// Sends a request to one node: the tenant's scoping, the escape checks on resolved references, the
    /// forward or hijack, and the tenant's view of the answer. Returns the id of a container it created.
    async fn send_to(
        &self,
        ctx: &mut RequestCtx,
        node: &Arc<Node>,
        req: &Forward<'_>,
        upstream: Upstream,
    ) -> Result<(Response<Body>, Option<String>), ApiError> {
        let (mut doc, pass) = match upstream {
            Upstream::Doc(doc) => (Some(doc), Upstream::Empty),
            other => (None, other),
        };
        let endpoint = req.endpoint;
        ctx.node = Some(node.name());
        tracing::Span::current().record("node", ctx.node.as_deref());
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
        let mut headers = req.parts.headers.clone();
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
        let pq = proxy::upstream_path(ctx.version.as_ref(), &self.cluster.max_api_version(), &path, query.as_deref());
        let mut upstream = Request::new(body);
        *upstream.method_mut() = req.parts.method.clone();
        *upstream.uri_mut() = req.parts.uri.clone();
        *upstream.version_mut() = req.parts.version;
        *upstream.headers_mut() = headers;
        // The connection's hijack slot and TLS peer travel in the extensions.
        *upstream.extensions_mut() = req.parts.extensions.clone();
        if endpoint.may_hijack() {
            // BuildKit's session names its own protocol (h2c); without one the engine's refusal is the answer.
            let default_protocol = match endpoint {
                Endpoint::Session | Endpoint::Grpc => None,
                _ => Some("tcp"),
            };
            let resp = hijack::forward_as(node, upstream, pq, default_protocol).await?;
            return match req.scope.tenant_str() {
                Some(t) if !resp.status().is_success() && !resp.status().is_informational() => {
                    Ok((tenant_view(t, &answer, resp).await, None))
                }
                _ => Ok((resp, None)),
            };
        }
        let relay = if endpoint.answers_small_json() { proxy::Relay::Whole } else { proxy::Relay::Stream };
        let is_prune = matches!(
            endpoint,
            Endpoint::ContainerPrune
                | Endpoint::VolumePrune
                | Endpoint::NetworkPrune
                | Endpoint::ImagePrune
                | Endpoint::BuildPrune
        );
        let mut resp = if is_prune {
            // A prune has no body to replay: it waits its turn if the engine is pruning for someone else.
            let (parts, _) = upstream.into_parts();
            let waiting = route::PruneWait::new();
            loop {
                let mut again = Request::new(body::empty());
                *again.method_mut() = parts.method.clone();
                *again.headers_mut() = parts.headers.clone();
                let resp = proxy::forward(node, again, pq.clone(), proxy::Relay::Whole).await?;
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
                        let resp = proxy::forward(node, upstream, pq, relay).await?;
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
                None => proxy::forward(node, upstream, pq, relay).await?,
            }
        };
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
        let tenant = req.scope.tenant_str();
        if tenant.is_some() && matches!(answer, tenant::Answer::Events | tenant::Answer::Stats) {
            // The body is rewritten line by line: its length changes.
            resp.headers_mut().remove(header::CONTENT_LENGTH);
        }
        let resp = match tenant {
            Some(t) if matches!(answer, tenant::Answer::Events) && resp.status().is_success() => {
                resp.map(|b| tenancy::events::filter_stream(t.to_string(), b, crate::tenant::view::event))
            }
            Some(t) if matches!(answer, tenant::Answer::Stats) && resp.status().is_success() => {
                resp.map(|b| tenancy::events::filter_stream(t.to_string(), b, crate::tenant::view::stats))
            }
            Some(t) if relay == proxy::Relay::Whole || !resp.status().is_success() => {
                tenant_view(t, &answer, resp).await
            }
            _ => resp,
        };
        Ok((resp, created))
    }

    /// Flavors, then quota, for a tenant's request that takes resources. With a quota, returns the tenant's
    /// lock: the caller holds it until the engine has answered.
    async fn resources_phase(
        &self,
        tenant: &TenantId,
        endpoint: &Endpoint,
        doc: Option<&mut serde_json::Value>,
    ) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>, ApiError> {
        let Some(doc) = doc else { return Ok(None) };
        let scope = Scope::Tenant(tenant.clone());
        let live = self.live();
        let limits = live.quota.as_ref().map(|q| q.limits(tenant));
        match endpoint {
            Endpoint::ContainerCreate => {
                let mut r = resources::read_create(doc).map_err(forbidden(DenyKind::Quota))?;
                if let Some(f) = &live.flavors {
                    let named = doc
                        .pointer(&format!("/Labels/{}", policy::flavors::FLAVOR_LABEL.replace('/', "~1")))
                        .and_then(|v| v.as_str());
                    f.for_create(&r, named).map_err(forbidden(DenyKind::Flavor))?.apply(&mut r);
                }
                if let Some(l) = &limits {
                    required_limits(l, &r, "HostConfig.")?;
                    r.pin_swap();
                }
                if live.flavors.is_some() || limits.is_some() {
                    resources::write_create(doc, &r).map_err(forbidden(DenyKind::Quota))?;
                }
                let Some(limits) = limits else { return Ok(None) };
                let lock = self.quota_locks.lock(tenant).await;
                let mut new_volumes = 0;
                for v in tenancy::named_volumes(doc) {
                    if self.find(&route::Probe::Volume(v), &scope).await?.is_none() {
                        new_volumes += 1;
                    }
                }
                let request = Usage {
                    memory: r.memory.max(0),
                    nano_cpus: r.nano_cpus.max(0),
                    containers: 1,
                    volumes: new_volumes,
                    networks: 0,
                };
                self.check_quota(tenant, &limits, &request).await?;
                Ok(Some(lock))
            }
            Endpoint::Container { id, op: ContainerOp::Update } => {
                let mut r = resources::read_update(doc).map_err(forbidden(DenyKind::Quota))?;
                let mut changed = false;
                if let Some(f) = &live.flavors {
                    if let Some(f) = f.for_update(&r).map_err(forbidden(DenyKind::Flavor))? {
                        f.apply(&mut r);
                        changed = true;
                    }
                }
                let Some(limits) = limits else {
                    if changed {
                        resources::write_update(doc, &r).map_err(forbidden(DenyKind::Flavor))?;
                    }
                    return Ok(None);
                };
                if r.memory < 0 || r.nano_cpus < 0 || (r.memory == 0 && r.memory_swap != 0) {
                    return Err(forbidden(DenyKind::Quota)(Deny::at(
                        "Memory",
                        "limits are changed by giving the new memory limit (-m), and swap follows it on this service",
                    )));
                }
                if limits.cpus.is_some() && r.uses_cpu_quota() {
                    return Err(forbidden(DenyKind::Quota)(Deny::at(
                        "CpuQuota",
                        "CPUs are limited with --cpus on this service",
                    )));
                }
                r.pin_swap();
                resources::write_update(doc, &r).map_err(forbidden(DenyKind::Quota))?;
                if r.memory == 0 && r.nano_cpus == 0 {
                    return Ok(None);
                }
                let lock = self.quota_locks.lock(tenant).await;
                let node = self.locate(&route::Probe::Container(id.clone()), &scope).await?;
                let c = tenancy::Resolver { node: &node, tenant }.container(id).await?;
                let current = node
                    .get_json(&format!("/containers/{}/json", c.id))
                    .await
                    .map(|c| resources::of_inspect(&c))
                    .map_err(ApiError::from)?;
                let changed = |new: i64, old: i64| if new > 0 { new - old.max(0) } else { 0 };
                let request = Usage {
                    memory: changed(r.memory, current.memory),
                    nano_cpus: changed(r.nano_cpus, current.nano_cpus),
                    ..Default::default()
                };
                self.check_quota(tenant, &limits, &request).await?;
                Ok(Some(lock))
            }
            Endpoint::VolumeCreate | Endpoint::NetworkCreate => {
                let Some(limits) = limits else { return Ok(None) };
                let lock = self.quota_locks.lock(tenant).await;
                let mut request = Usage::default();
                if matches!(endpoint, Endpoint::NetworkCreate) {
                    request.networks = 1;
                } else {
                    // Creating a volume that exists answers the existing one: nothing is added.
                    let name = doc.get("Name").and_then(|n| n.as_str()).filter(|n| !n.is_empty());
                    let exists = match name {
                        Some(n) => self.find(&route::Probe::Volume(n.to_string()), &scope).await?.is_some(),
                        None => false,
                    };
                    request.volumes = i64::from(!exists);
                }
                self.check_quota(tenant, &limits, &request).await?;
                Ok(Some(lock))
            }
            _ => Ok(None),
        }
    }

    async fn check_quota(
        &self,
        tenant: &TenantId,
        limits: &policy::quota::Limits,
        request: &Usage,
    ) -> Result<(), ApiError> {
        let usage = self.usage_of(&Scope::Tenant(tenant.clone())).await?;
        let usage = usage.get(tenant.as_str()).copied().unwrap_or_default();
        limits.check(&usage, request).map_err(forbidden(DenyKind::Quota))
    }

    /// Usage read from the healthy nodes, plus the containers an unavailable node held when last seen: a node
    /// that is down still holds them, and gets them back when it returns.
    async fn usage_of(&self, scope: &Scope) -> Result<std::collections::BTreeMap<String, Usage>, ApiError> {
        let tenant = scope.tenant_str();
        let mut all = tenancy::usage::usage(&self.cluster.healthy_nodes(), tenant).await?;
        for node in self.cluster.nodes().iter().filter(|n| !n.healthy()) {
            for c in node.holdings().containers.into_values() {
                let Some(t) = c.tenant.filter(|t| tenant.is_none_or(|want| want == t)) else { continue };
                let u = all.entry(t).or_default();
                u.containers += 1;
                u.memory += c.memory;
                u.nano_cpus += c.nano_cpus;
            }
        }
        Ok(all)
    }

    /// `GET /mtswarm/v1/usage`: a tenant's own usage against its limits, or every tenant's (`tenant` is `None`
    /// for the admin).
    async fn usage_answer(&self, scope: &Scope) -> Result<serde_json::Value, ApiError> {
        let tenant = scope.tenant_str();
        let live = self.live();
        let mut all = self.usage_of(scope).await?;
        if tenant.is_none() {
            for t in live.quota.iter().flat_map(|q| q.named_tenants()) {
                all.entry(t.to_string()).or_default();
            }
        }
        let entry = |t: &str, u: &Usage| {
            let l = live.quota.as_ref().map(|q| q.limits(t)).unwrap_or_default();
            serde_json::json!({
                "Tenant": t,
                "Usage": {
                    "Memory": mb(u.memory),
                    "CPUs": u.nano_cpus as f64 / resources::NANO,
                    "Containers": u.containers,
                    "Volumes": u.volumes,
                    "Networks": u.networks,
                },
                "Limits": {
                    "Memory": l.memory_mb,
                    "CPUs": l.cpus,
                    "Containers": l.containers,
                    "Volumes": l.volumes,
                    "Networks": l.networks,
                },
            })
        };
        Ok(match tenant {
            Some(t) => entry(t, all.get(t).unwrap_or(&Usage::default())),
            None => serde_json::json!({
                "QuotaEnforced": live.quota.is_some(),
                "Tenants": all.iter().map(|(t, u)| entry(t, u)).collect::<Vec<_>>(),
            }),
        })
    }

    /// Strips and checks the version prefix, returning the path without it.
    fn negotiate(&self, ctx: &mut RequestCtx, raw: &str) -> Result<String, ApiError> {
        let (requested, path) = version::split_version(raw);
        if let Some(v) = requested {
            let v = ApiVersion::parse(v).ok_or_else(|| not_found(&ctx.method, raw))?;
            version::check(&v, &self.cluster.min_api_version(), &self.cluster.max_api_version())
                .map_err(ApiError::bad_request)?;
            ctx.version = Some(v);
        }
        Ok(path.to_string())
    }

    /// Proves who is asking. `/_ping` is open to all, as clients negotiate before anything else.
    async fn authenticate(&self, endpoint: &Endpoint, req: &Request<Incoming>) -> Result<Option<Identity>, ApiError> {
        let Some(auth) = &self.auth else { return Ok(None) };
        if matches!(endpoint, Endpoint::Ping) {
            return Ok(None);
        }
        let header =
            |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        let cert_cn = req.extensions().get::<PeerCn>().map(|c| &*c.0);
        let creds = Credentials { token: header("x-auth-token"), tenant: header("x-auth-tenantid"), cert_cn };
        Ok(Some(auth.authenticate(creds).await?))
    }

    async fn answer_locally(
        &self,
        endpoint: &Endpoint,
        method: &Method,
        query: &[(String, String)],
        scope: &Scope,
    ) -> Response<Body> {
        let tenant = scope.tenant_str();
        match endpoint {
            // dockerd answers every OPTIONS request 200 with no body (a CORS preflight).
            Endpoint::Options => Response::new(body::empty()),
            Endpoint::SwarmMode(op) => api::off::swarm(*op, query).into_response(),
            Endpoint::Checkpoint { .. } => api::off::checkpoint().into_response(),
            Endpoint::Ping => system::ping(method),
            Endpoint::Version => system::version(&self.cluster),
            Endpoint::Info => {
                // A tenant counts its own containers and is not shown the nodes' addresses.
                let view = match tenant {
                    None => None,
                    Some(t) => match self.tenant_counts(t).await {
                        Ok(v) => Some(v),
                        Err(e) => return e.into_response(),
                    },
                };
                system::info(&self.cluster, &self.warnings, view).await
            }
            Endpoint::Usage => match self.usage_answer(scope).await {
                Ok(v) => system::json_response(http::StatusCode::OK, &v),
                Err(e) => e.into_response(),
            },
            other => ApiError::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("mtswarm cannot answer {} itself", other.command_name()),
            )
            .into_response(),
        }
    }

    async fn tenant_counts(&self, tenant: &str) -> Result<system::TenantView, ApiError> {
        let mut view = system::TenantView::default();
        for node in self.cluster.healthy_nodes() {
            for c in tenancy::own_containers(&node, tenant).await? {
                view.containers += 1;
                match c.get("State").and_then(|s| s.as_str()) {
                    Some("running") => view.running += 1,
                    Some("paused") => view.paused += 1,
                    _ => view.stopped += 1,
                }
            }
        }
        Ok(view)
    }

    /// The headers dockerd puts on every response, and the request's log line.
    fn finish(&self, ctx: &RequestCtx, mut resp: Response<Body>) -> Response<Body> {
        let h = resp.headers_mut();
        h.insert("api-version", proxy::header_value(self.cluster.max_api_version().as_str()));
        h.insert("ostype", header::HeaderValue::from_static("linux"));
        h.insert(header::SERVER, header::HeaderValue::from_static(system::SERVER_VERSION));
        tracing::info!(
            id = ctx.id,
            method = %ctx.method,
            path = %ctx.path,
            status = resp.status().as_u16(),
            duration_ms = ctx.started.elapsed().as_secs_f64() * 1000.0,
            node = ctx.node.as_deref().unwrap_or("-"),
            tenant = ctx.identity.as_ref().map(|i| i.tenant.as_str()).unwrap_or("-"),
            "request"
        );
        if let Some(audit) = &self.audit {
            ops::audit(audit, ctx, resp.status());
        }
        ops::count(ctx, resp)
    }
}

/// The escape check for a tenant's request body, if the endpoint has one.
type EscapeCheck = fn(&serde_json::Value, &EscapeRules, &dyn escape::OwnContainers) -> Result<(), Deny>;

fn escape_check(endpoint: &Endpoint) -> Option<EscapeCheck> {
    match endpoint {
        Endpoint::ContainerCreate => Some(escape::check_create),
        Endpoint::Container { op: ContainerOp::Update, .. } => Some(|b, r, _| escape::check_update(b, r)),
        Endpoint::Container { op: ContainerOp::ExecCreate, .. } => Some(|b, _, _| escape::check_exec(b)),
        Endpoint::VolumeCreate => Some(|b, _, _| escape::check_volume_create(b)),
        _ => None,
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

/// The engine's answer as the tenant sees it: read whole (it is small JSON or an error) and rewritten.
async fn tenant_view(tenant: &str, answer: &tenant::Answer, resp: Response<Body>) -> Response<Body> {
    let (parts, b) = resp.into_parts();
    match body::collect_boxed(b, proxy::answer_limit()).await {
        Ok(bytes) => tenancy::rewrite_answer(tenant, answer, Response::from_parts(parts, bytes)),
        Err(e) => ApiError::bad_gateway(format!("the engine's answer could not be read: {e}")).into_response(),
    }
}

/// With a quota on a resource, a container must have a limit on it: no escape by omission.
fn required_limits(l: &policy::quota::Limits, r: &resources::Resources, at: &str) -> Result<(), ApiError> {
    if let Some(m) = l.memory_mb {
        if r.memory_limit().is_none() {
            return Err(forbidden(DenyKind::Quota)(Deny::at(
                format!("{at}Memory"),
                format!("a memory limit is required: this service limits each tenant's memory ({m} MB); give -m"),
            )));
        }
    }
    if l.cpus.is_some() {
        if r.uses_cpu_quota() {
            return Err(forbidden(DenyKind::Quota)(Deny::at(
                format!("{at}CpuQuota"),
                "CPUs are limited with --cpus on this service",
            )));
        }
        if r.nano_cpus <= 0 {
            return Err(forbidden(DenyKind::Quota)(Deny::at(
                format!("{at}NanoCpus"),
                "a CPU limit is required: this service limits each tenant's CPUs; give --cpus",
            )));
        }
    }
    Ok(())
}

/// Bytes as a number of MB, whole when it is whole.
fn mb(bytes: i64) -> serde_json::Value {
    if bytes % resources::MB == 0 {
        serde_json::Value::from(bytes / resources::MB)
    } else {
        serde_json::Value::from((bytes as f64 / resources::MB as f64 * 100.0).round() / 100.0)
    }
}

/// The most a JSON request body that policy reads may be.
const JSON_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// A policy refusal, counted by its reason.
fn forbidden(kind: DenyKind) -> impl Fn(Deny) -> ApiError {
    move |d| ApiError::denied(http::StatusCode::FORBIDDEN, kind, d.message())
}

fn classify(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    Endpoint::classify(method, path).ok_or_else(|| not_found(method, path))
}

fn not_found(method: &Method, path: &str) -> ApiError {
    ApiError::not_found(format!("page not found: mtswarm does not serve {method} {path}"))
}
