//! What the operations listener ([`crate::ops`]) asks of the gateway: each request counted as it finishes,
//! the gauges read from the cluster when scraped, and whether mtswarm can serve.

use http::Response;
use http_body::Body as _;

use super::{Gateway, LivePolicy, RequestCtx};
use crate::api::Endpoint;
use crate::body::{self, Body};
use crate::ops::audit::{Audit, Record};
use crate::ops::metrics::{metrics, EndpointLabel, RequestLabels, StateLabel, StreamGuard, TenantLabel};

/// Counts a finished request (its headers are written; a streamed body is counted open until it ends).
pub(super) fn count(ctx: &RequestCtx, resp: Response<Body>) -> Response<Body> {
    let m = metrics();
    let endpoint = ctx.endpoint.as_ref().map_or("unknown", |e| e.command_name());
    let code = resp.status().as_u16();
    m.requests.get_or_create(&RequestLabels { endpoint, code }).inc();
    m.duration.get_or_create(&EndpointLabel { endpoint }).observe(ctx.started.elapsed().as_secs_f64());
    if let Some((kind, _)) = &ctx.denial {
        m.deny(*kind);
    }
    if let (Some(node), 502..=504) = (&ctx.node, code) {
        m.engine_error(node);
    }
    // An engine's answer of unknown length is a stream (logs -f, events, stats, export, pulls); hijacked
    // connections are counted by the server while it pumps them.
    let streamed = ctx.node.is_some()
        && resp.status().is_success()
        && resp.body().size_hint().exact().is_none()
        && !ctx.endpoint.as_ref().is_some_and(|e| e.answers_small_json());
    if streamed {
        let guard = StreamGuard::open();
        return resp.map(|b| body::guarded(b, guard));
    }
    resp
}

impl Gateway {
    /// Sets the gauges that are read from the cluster, then encodes every metric.
    pub async fn scrape(&self) -> String {
        let m = metrics();
        let nodes = self.cluster.nodes();
        let healthy = nodes.iter().filter(|n| n.healthy()).count();
        m.nodes.get_or_create(&StateLabel { state: "healthy" }).set(healthy as i64);
        m.nodes.get_or_create(&StateLabel { state: "unhealthy" }).set((nodes.len() - healthy) as i64);
        if self.auth.is_some() {
            match self.usage_of(&crate::tenant::Scope::Operator).await {
                Ok(mut all) => {
                    let live = self.live();
                    let quota = live.quota.as_ref();
                    for t in quota.iter().flat_map(|q| q.named_tenants()) {
                        all.entry(t.to_string()).or_default();
                    }
                    for f in
                        [&m.tenant_containers, &m.tenant_memory, &m.tenant_containers_limit, &m.tenant_memory_limit]
                    {
                        f.clear();
                    }
                    for (t, u) in &all {
                        let label = TenantLabel { tenant: t.clone() };
                        m.tenant_containers.get_or_create(&label).set(u.containers);
                        m.tenant_memory.get_or_create(&label).set(u.memory);
                        let limits = quota.map(|q| q.limits(t)).unwrap_or_default();
                        if let Some(c) = limits.containers {
                            m.tenant_containers_limit.get_or_create(&label).set(c as i64);
                        }
                        if let Some(mem) = limits.memory() {
                            m.tenant_memory_limit.get_or_create(&label).set(mem);
                        }
                    }
                }
                // The tenants' gauges keep their last values; the engines' errors are counted elsewhere.
                Err(e) => tracing::debug!(cause = %e.message, "tenants' usage not read for metrics"),
            }
        }
        m.encode()
    }

    /// `Ok` when mtswarm can serve: a healthy engine, and identities can be proven. Otherwise why not.
    pub async fn health(&self) -> Result<(), String> {
        let nodes = self.cluster.nodes();
        if !nodes.iter().any(|n| n.healthy()) {
            return Err(match nodes.len() {
                0 => "no engines: discovery lists none".to_string(),
                n => format!("no healthy engine: all {n} unavailable"),
            });
        }
        match &self.auth {
            Some(auth) => auth.health().await,
            None => Ok(()),
        }
    }
}

/// Writes the audit record of a request that changes something (any method but GET and HEAD) or was refused.
pub(super) fn audit(audit: &Audit, ctx: &RequestCtx, status: http::StatusCode) {
    let changes = ctx.method != http::Method::GET && ctx.method != http::Method::HEAD;
    if !changes && ctx.denial.is_none() {
        return;
    }
    let object = match &ctx.endpoint {
        Some(Endpoint::Container { id, .. } | Endpoint::Exec { id, .. } | Endpoint::Network { id, .. }) => {
            Some(id.clone())
        }
        Some(Endpoint::Image { name, .. } | Endpoint::Volume { name, .. }) => Some(name.clone()),
        // A create names its object in the query (`docker create --name`, `docker pull IMAGE`, `build -t`).
        Some(_) => crate::api::query::pairs(ctx.query.as_deref())
            .into_iter()
            .find(|(k, _)| matches!(k.as_str(), "name" | "fromImage" | "t" | "repo" | "container"))
            .map(|(_, v)| v),
        None => None,
    };
    audit.record(Record {
        request_id: ctx.id,
        tenant: ctx.identity.as_ref().map(|i| i.tenant.to_string()),
        remote: ctx.remote.as_deref().map(str::to_string),
        method: ctx.method.to_string(),
        path: ctx.path.clone(),
        endpoint: ctx.endpoint.as_ref().map(|e| e.command_name()),
        object,
        node: ctx.node.clone(),
        denied: ctx.denial.as_ref().map(|(k, m)| (k.as_str(), m.clone())),
        status: status.as_u16(),
        duration_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
    });
}

/// The policy files, as given at start-up, read again by a reload.
#[derive(Debug, Clone, Default)]
pub struct PolicyFiles {
    /// The API filter's file, and whether it must exist (it was named, not the default).
    pub apifilter: Option<(std::path::PathBuf, bool)>,
    /// The flavors' file, when flavors are enforced.
    pub flavors: Option<std::path::PathBuf>,
    /// The quota's file, when a quota is enforced.
    pub quota: Option<std::path::PathBuf>,
    /// `--tls-cn-tenants`.
    pub cn_tenants: Option<std::path::PathBuf>,
}

impl Gateway {
    /// SIGHUP: reads the policy files again. A file that does not load keeps its old settings, says why in the
    /// log and counts in `mtswarm_config_reloads_total{result="error"}`. Requests in flight, open streams and
    /// hijacked sessions keep what they started with; the next request sees the new settings.
    pub fn reload(&self, files: &PolicyFiles) {
        let m = metrics();
        let outcome = |file: &'static str, result: Result<(), String>| {
            let ok = result.is_ok();
            match result {
                Ok(()) => tracing::info!(file, "reloaded"),
                Err(e) => tracing::warn!(file, cause = %e, "not reloaded: the previous settings stay in force"),
            }
            m.reloads
                .get_or_create(&crate::ops::metrics::FileLabel { file, result: if ok { "ok" } else { "error" } })
                .inc();
        };
        let old = self.live();
        let mut apifilter = old.apifilter.clone();
        let mut flavors = old.flavors.clone();
        let mut quota = old.quota.clone();
        if let Some((path, required)) = &files.apifilter {
            let r = crate::policy::apifilter::ApiFilter::load(path, *required);
            outcome("apifilter", r.map(|f| apifilter = f));
        }
        if let Some(path) = &files.flavors {
            let r = crate::policy::flavors::Flavors::load(path);
            outcome("flavors", r.map(|f| flavors = Some(f)));
        }
        if let Some(path) = &files.quota {
            let r = crate::policy::quota::Quota::load(path);
            outcome("quota", r.map(|q| quota = Some(q)));
        }
        if let (Some(path), Some(auth)) = (&files.cn_tenants, &self.auth) {
            let r = crate::tls::load_cn_tenants(path);
            outcome("tls-cn-tenants", r.map(|map| auth.set_cn_tenants(map)));
        }
        *self.live.write().unwrap_or_else(|e| e.into_inner()) =
            std::sync::Arc::new(LivePolicy { apifilter, flavors, quota });
        if let Some(a) = &self.audit {
            a.reopen();
        }
    }
}
