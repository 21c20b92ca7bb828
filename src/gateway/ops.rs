//! What the operations listener ([`crate::ops`]) asks of the gateway: each request counted as it finishes,
//! the gauges read from the cluster when scraped, and whether mtswarm can serve.

use http::Response;
use http_body::Body as _;

use super::{Gateway, RequestCtx};
use crate::body::{self, Body};
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
            match self.usage_of(None).await {
                Ok(mut all) => {
                    let quota = self.quota.as_ref();
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
