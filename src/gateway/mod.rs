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
use crate::policy::{flavors::Flavors, quota::Quota};

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
use crate::cluster::{Cluster, Route};
use crate::proxy;
use crate::tenancy;
use crate::tenant::Scope;

mod admission;
mod bodies;
mod fanout;
mod limits;
mod merge;
mod ops;
mod placement;
mod plugins;
mod replica;
pub use limits::Limits;
pub use ops::PolicyFiles;
mod route;
mod send;
pub mod system;
mod usage;

use bodies::Upstream;

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
    /// How long a client connection may wait with a request's headers incomplete (read by the server).
    header_timeout: std::time::Duration,
    /// How long an engine may take over a call that is not a stream.
    engine_timeout: std::time::Duration,
    /// `--replication`: this manager's part in the managers' election.
    replication: Option<Arc<crate::replication::Replication>>,
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
    /// The version mtswarm advertises (the highest every engine speaks), read once per request.
    pub advertised: Option<ApiVersion>,
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
    /// True for a request a replica forwarded to this primary.
    pub via_replica: bool,
    /// The request span's fields, for the request's own line.
    pub span_fields: crate::ops::log::SpanFields,
}

impl RequestCtx {
    /// Names the node that serves the request, for the log line and the span.
    pub fn set_node(&mut self, node: String) {
        self.span_fields.record_in_span("node", Some(&node));
        self.node = Some(node);
    }
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
            header_timeout: Limits::default().header_timeout,
            engine_timeout: Limits::default().engine_timeout,
            replication: None,
            next_id: AtomicU64::new(1),
        }
    }

    /// The limits of `--tenant-max-requests`, `--tenant-max-streams`, `--body-timeout` and `--engine-timeout`.
    pub fn with_limits(mut self, l: Limits) -> Gateway {
        self.tenant_limits = limits::TenantLimits::new(l.tenant_max_requests, l.tenant_max_streams);
        self.body_timeout = l.body_timeout;
        self.header_timeout = l.header_timeout;
        self.engine_timeout = l.engine_timeout;
        self
    }

    /// Takes part in the managers' election: a replica forwards to the primary.
    pub fn with_replication(mut self, replication: Option<Arc<crate::replication::Replication>>) -> Gateway {
        self.replication = replication;
        self
    }

    /// Writes an audit record of every change and every denial.
    pub fn with_audit(mut self, audit: Option<crate::ops::audit::Audit>) -> Gateway {
        self.audit = audit;
        self
    }

    /// `--header-timeout`: how long a client connection may take to send a request's headers.
    pub fn header_timeout(&self) -> std::time::Duration {
        self.header_timeout
    }

    /// The policy in force now.
    fn live(&self) -> Arc<LivePolicy> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serves one request; never fails, errors become Docker-style responses.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ctx = RequestCtx {
            id,
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            version: None,
            advertised: None,
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
            via_replica: false,
            span_fields: crate::ops::log::SpanFields::new(id),
        };
        // Every line logged while the request is served carries who and what it is; the phases fill in the
        // fields as they learn them (`SpanFields::record_in_span`). Where the lines are plain text, the format
        // reads them from the request itself; elsewhere they are tracing's span's.
        if crate::ops::log::plain_stderr() {
            let fields = ctx.span_fields.clone();
            return crate::ops::log::InRequest::new(fields, self.serve(ctx, req)).await;
        }
        let span = tracing::info_span!(
            "request",
            id = ctx.id,
            endpoint = tracing::field::Empty,
            tenant = tracing::field::Empty,
            node = tracing::field::Empty
        );
        tracing::Instrument::instrument(self.serve(ctx, req), span).await
    }

    async fn serve(&self, mut ctx: RequestCtx, mut req: Request<Incoming>) -> Response<Body> {
        let slot = req.extensions().get::<crate::proxy::hijack::HijackSlot>().cloned();
        let served = match self.arrive(&mut ctx, &mut req) {
            Ok(()) => self.pipeline(&mut ctx, req).await,
            Err(e) => Err(e),
        };
        let mut resp = match served {
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
                None => resp = resp.map(|b| body::guarded(b, permit)),
            }
        }
        self.finish(&ctx, resp)
    }

    async fn pipeline(&self, ctx: &mut RequestCtx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let path = self.negotiate(ctx, req.uri().path())?;
        let endpoint = classify(&ctx.method, &path)?;
        ctx.span_fields.record_in_span("endpoint", Some(endpoint.command_name()));
        ctx.endpoint = Some(endpoint.clone());
        let req = match self.replicate(ctx, &endpoint, req).await? {
            Ok(forwarded) => return Ok(forwarded),
            Err(req) => req,
        };
        ctx.identity = self.authenticate(&endpoint, &req).await?;
        if let Some(id) = &ctx.identity {
            ctx.span_fields.record_in_span("tenant", Some(id.tenant.as_str()));
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
            if let Some(resp) = self.tenant_policy_phase(&endpoint, req.uri().query()).await? {
                return Ok(resp);
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
        let _quota_lock = match tenant {
            Some(t) => self.document_phase(t, &endpoint, doc.as_mut()).await?,
            None => None,
        };
        // Admitted when the head came; the fence is checked again now that the body is in and the quota counted.
        self.still_primary()?;
        let req = Forward { endpoint: &endpoint, scope: &scope, parts: &parts, path: &path };
        match route {
            Route::Local => unreachable!("answered above"),
            Route::FanOut if multi => self.fan_out(ctx, &req).await,
            Route::Everywhere if multi => self.plugin_everywhere(ctx, &req, body).await,
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

    /// Strips and checks the version prefix, returning the path without it.
    fn negotiate(&self, ctx: &mut RequestCtx, raw: &str) -> Result<String, ApiError> {
        let (requested, path) = version::split_version(raw);
        let advertised = ctx.advertised.insert(self.cluster.max_api_version());
        if let Some(v) = requested {
            // Most clients ask for the version mtswarm advertises: that one is parsed already.
            let v = match v == advertised.as_str() {
                true => advertised.clone(),
                false => ApiVersion::parse(v).ok_or_else(|| not_found(&ctx.method, raw))?,
            };
            version::check(&v, &self.cluster.min_api_version(), advertised).map_err(ApiError::bad_request)?;
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
                let role = match &self.replication {
                    Some(r) => r.status(),
                    None => vec![["Role".to_string(), "primary".to_string()]],
                };
                system::info(&self.cluster, role, &self.warnings, view).await
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

    /// The path and query an engine gets: the client's version prefix, or the one negotiated for this request.
    fn upstream_path(&self, ctx: &RequestCtx, path: &str, query: Option<&str>) -> String {
        let advertised = ctx.advertised.clone().unwrap_or_else(|| self.cluster.max_api_version());
        proxy::upstream_path(ctx.version.as_ref(), &advertised, path, query)
    }

    /// The headers dockerd puts on every response, and the request's log line.
    fn finish(&self, ctx: &RequestCtx, mut resp: Response<Body>) -> Response<Body> {
        let h = resp.headers_mut();
        let advertised = ctx.advertised.clone().unwrap_or_else(|| self.cluster.max_api_version());
        h.insert("api-version", proxy::header_value(advertised.as_str()));
        h.insert("ostype", header::HeaderValue::from_static("linux"));
        h.insert(header::SERVER, header::HeaderValue::from_static(system::SERVER_VERSION));
        let line = crate::ops::log::RequestLine {
            span: &ctx.span_fields,
            id: ctx.id,
            method: ctx.method.as_str(),
            path: &ctx.path,
            status: resp.status().as_u16(),
            duration_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
            node: ctx.node.as_deref().unwrap_or("-"),
            tenant: ctx.identity.as_ref().map(|i| i.tenant.as_str()).unwrap_or("-"),
        };
        line.log();
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
