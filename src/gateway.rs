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

/// The operator's policy, as configured.
pub struct PolicyRules {
    pub escape: EscapeRules,
    pub apifilter: ApiFilter,
}
use crate::cluster::{Cluster, Target};
use crate::proxy::{self, hijack};

/// Shared by all requests.
pub struct Gateway {
    pub cluster: Arc<Cluster>,
    /// `None` when multi-tenancy is off: nobody is asked who they are.
    pub auth: Option<Authenticator>,
    /// Operator-facing warnings shown by `docker info`.
    warnings: Vec<String>,
    escape_rules: EscapeRules,
    apifilter: ApiFilter,
    next_id: AtomicU64,
}

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
}

impl Gateway {
    pub fn new(cluster: Arc<Cluster>, auth: Option<Authenticator>, rules: PolicyRules) -> Gateway {
        let PolicyRules { escape: escape_rules, apifilter } = rules;
        let mut warnings = Vec::new();
        match &auth {
            None => warnings.push("WARNING: SWARM_MULTI_TENANT=false: no authentication and no tenancy".to_string()),
            Some(a) if matches!(a.backend(), crate::auth::Backend::TrustHeader) => warnings
                .push("WARNING: SWARM_AUTH_BACKEND=None: X-Auth-TenantId is trusted without any token".to_string()),
            Some(_) => {}
        }
        Gateway { cluster, auth, warnings, escape_rules, apifilter, next_id: AtomicU64::new(1) }
    }

    /// Serves one request; never fails, errors become Docker-style responses.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let mut ctx = RequestCtx {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            version: None,
            endpoint: None,
            identity: None,
            node: None,
            started: Instant::now(),
        };
        let resp = match self.pipeline(&mut ctx, req).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        };
        self.finish(&ctx, resp)
    }

    async fn pipeline(&self, ctx: &mut RequestCtx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let path = self.negotiate(ctx, req.uri().path())?;
        let endpoint = classify(&ctx.method, &path)?;
        ctx.endpoint = Some(endpoint.clone());
        ctx.identity = self.authenticate(&endpoint, &req).await?;
        let req = self.policy(ctx, &endpoint, req).await?;
        match self.cluster.route(&endpoint)? {
            Target::Local => Ok(self.answer_locally(&endpoint, &ctx.method).await),
            Target::Node(node) => {
                ctx.node = Some(node.name());
                let pq = proxy::upstream_path(
                    ctx.version.as_ref(),
                    &self.cluster.max_api_version(),
                    &path,
                    req.uri().query(),
                );
                if endpoint.may_hijack() {
                    hijack::forward(&node, req, pq).await
                } else {
                    let relay = if endpoint.answers_small_json() { proxy::Relay::Whole } else { proxy::Relay::Stream };
                    proxy::forward(&node, req, pq, relay).await
                }
            }
        }
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

    /// The operator's rules for tenants (the admin tenant and multi-tenancy off are not limited). A body
    /// that is checked is read whole, parsed, checked, and the checked document is what is forwarded:
    /// never the client's bytes, which a JSON decoder other than ours might read differently.
    async fn policy(
        &self,
        ctx: &RequestCtx,
        endpoint: &Endpoint,
        req: Request<Incoming>,
    ) -> Result<Request<Body>, ApiError> {
        let restricted = ctx.identity.as_ref().is_some_and(|i| !i.admin);
        if !restricted {
            return Ok(req.map(body::stream));
        }
        self.apifilter.check(endpoint).map_err(forbidden)?;
        policy::images::check_endpoint(endpoint, req.uri().query()).map_err(forbidden)?;
        let rules = self.escape_rules;
        let check: fn(&serde_json::Value, &EscapeRules) -> Result<(), Deny> = match endpoint {
            // Until tenancy knows which containers a tenant owns, `container:` references name none.
            Endpoint::ContainerCreate => |b, r| escape::check_create(b, r, &|_: &str| false),
            Endpoint::Container { op: ContainerOp::Update, .. } => escape::check_update,
            Endpoint::Container { op: ContainerOp::ExecCreate, .. } => |b, _| escape::check_exec(b),
            Endpoint::VolumeCreate => |b, _| escape::check_volume_create(b),
            _ => return Ok(req.map(body::stream)),
        };
        let (mut parts, incoming) = req.into_parts();
        let bytes = body::collect_limited(incoming, JSON_BODY_LIMIT)
            .await
            .map_err(|e| ApiError::bad_request(format!("the request body could not be read: {e}")))?;
        let doc: serde_json::Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))?
        };
        check(&doc, &rules).map_err(forbidden)?;
        let checked = serde_json::to_vec(&doc).map_err(|e| ApiError::bad_request(e.to_string()))?;
        parts.headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(checked.len()));
        parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        parts.headers.remove(header::TRANSFER_ENCODING);
        Ok(Request::from_parts(parts, body::full(checked)))
    }

    async fn answer_locally(&self, endpoint: &Endpoint, method: &Method) -> Response<Body> {
        match endpoint {
            Endpoint::Ping => api::system::ping(method),
            Endpoint::Version => api::system::version(&self.cluster),
            Endpoint::Info => api::system::info(&self.cluster, &self.warnings).await,
            other => ApiError::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("mtswarm cannot answer {} itself", other.command_name()),
            )
            .into_response(),
        }
    }

    /// The headers dockerd puts on every response, and the request's log line.
    fn finish(&self, ctx: &RequestCtx, mut resp: Response<Body>) -> Response<Body> {
        let h = resp.headers_mut();
        h.insert("api-version", proxy::header_value(self.cluster.max_api_version().as_str()));
        h.insert("ostype", header::HeaderValue::from_static("linux"));
        h.insert(header::SERVER, header::HeaderValue::from_static(api::system::SERVER_VERSION));
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
        resp
    }
}

/// The most a JSON request body that policy reads may be.
const JSON_BODY_LIMIT: usize = 4 * 1024 * 1024;

fn forbidden(d: Deny) -> ApiError {
    ApiError::new(http::StatusCode::FORBIDDEN, d.message())
}

fn classify(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    Endpoint::classify(method, path).ok_or_else(|| not_found(method, path))
}

fn not_found(method: &Method, path: &str) -> ApiError {
    ApiError::not_found(format!("page not found: mtswarm does not serve {method} {path}"))
}
