//! Prometheus metrics, kept with the official `prometheus-client` crate and encoded by it.
//!
//! The metrics are one process-wide set ([`metrics`]): the request path, the auth cache, the engines' refresh
//! and the audit writer all count into it without being handed it, as `tracing` is used everywhere without
//! being handed a logger. Counting costs an atomic add (and a label lookup under a read lock); the gauges
//! that need reading the cluster (nodes, tenants) are set when scraped, never on the request path.
//!
//! Labels are few and bounded: command names, status codes, denial reasons, node addresses and tenants.
//! Containers, images and paths are never labels.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::api::DenyKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabel {
    pub file: &'static str,
    pub result: &'static str,
}

type HistogramFamily = Family<EndpointLabel, Histogram, fn() -> Histogram>;

/// Every metric mtswarm keeps.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: HistogramFamily,
    pub denials: Family<ReasonLabel, Counter>,
    pub nodes: Family<StateLabel, Gauge>,
    pub engine_errors: Family<NodeLabel, Counter>,
    /// Open hijacked connections and streamed responses.
    pub streams: Gauge,
    pub auth_cache: Family<ResultLabel, Counter>,
    pub tenant_containers: Family<TenantLabel, Gauge>,
    pub tenant_memory: Family<TenantLabel, Gauge>,
    pub tenant_containers_limit: Family<TenantLabel, Gauge>,
    pub tenant_memory_limit: Family<TenantLabel, Gauge>,
    /// Audit records lost (the writer fell behind) or not written (the file failed).
    pub audit_dropped: Counter,
    pub audit_errors: Counter,
    /// Each policy file's reloads on SIGHUP, by outcome.
    pub reloads: Family<FileLabel, Counter>,
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("mtswarm"),
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16))),
            denials: Family::default(),
            nodes: Family::default(),
            engine_errors: Family::default(),
            streams: Gauge::default(),
            auth_cache: Family::default(),
            tenant_containers: Family::default(),
            tenant_memory: Family::default(),
            tenant_containers_limit: Family::default(),
            tenant_memory_limit: Family::default(),
            audit_dropped: Counter::default(),
            audit_errors: Counter::default(),
            reloads: Family::default(),
        };
        let mut m = m;
        let r = &mut m.registry;
        // The crate adds `_total` to counters' names.
        r.register("requests", "Requests answered, by API filter command name and HTTP status", m.requests.clone());
        r.register("request_duration_seconds", "Time to the response's headers, by command name", m.duration.clone());
        r.register(
            "denials",
            "Requests refused by policy: auth, apifilter, escape, quota, flavor, isolation, limit",
            m.denials.clone(),
        );
        r.register("nodes", "Engines by state: healthy, unhealthy", m.nodes.clone());
        r.register("engine_errors", "Failed requests to and refreshes of each engine", m.engine_errors.clone());
        r.register("streams", "Open hijacked connections and streamed responses", m.streams.clone());
        r.register("auth_cache_requests", "Token validations by cache result: hit, miss", m.auth_cache.clone());
        r.register("tenant_containers", "Each tenant's containers", m.tenant_containers.clone());
        r.register("tenant_memory_bytes", "Each tenant's containers' memory limits", m.tenant_memory.clone());
        r.register(
            "tenant_containers_limit",
            "Each tenant's quota of containers (absent when none)",
            m.tenant_containers_limit.clone(),
        );
        r.register(
            "tenant_memory_limit_bytes",
            "Each tenant's memory quota (absent when none)",
            m.tenant_memory_limit.clone(),
        );
        r.register("audit_dropped", "Audit records lost because the writer fell behind", m.audit_dropped.clone());
        r.register(
            "audit_errors",
            "Audit records the file did not take (full disk, closed file)",
            m.audit_errors.clone(),
        );
        r.register("config_reloads", "Policy file reloads on SIGHUP, by file and result", m.reloads.clone());
        m
    }

    /// The text exposition (OpenMetrics, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn deny(&self, reason: DenyKind) {
        self.denials.get_or_create(&ReasonLabel { reason: reason.as_str() }).inc();
    }

    pub fn engine_error(&self, node: &str) {
        self.engine_errors.get_or_create(&NodeLabel { node: node.to_string() }).inc();
    }

    pub fn auth_cache(&self, hit: bool) {
        self.auth_cache.get_or_create(&ResultLabel { result: if hit { "hit" } else { "miss" } }).inc();
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// Counts a stream while it is open: made when it opens, dropped when it ends.
pub struct StreamGuard(());

impl StreamGuard {
    pub fn open() -> StreamGuard {
        metrics().streams.inc();
        StreamGuard(())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        metrics().streams.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_names_operators_graph() {
        let m = metrics();
        m.requests.get_or_create(&RequestLabels { endpoint: "containerscreate", code: 201 }).inc();
        m.duration.get_or_create(&EndpointLabel { endpoint: "containerscreate" }).observe(0.01);
        m.nodes.get_or_create(&StateLabel { state: "healthy" }).set(1);
        m.deny(DenyKind::Quota);
        let _open = StreamGuard::open();
        let text = m.encode();
        for want in [
            "mtswarm_requests_total{endpoint=\"containerscreate\",code=\"201\"}",
            "mtswarm_denials_total{reason=\"quota\"}",
            "# TYPE mtswarm_request_duration_seconds histogram",
            "mtswarm_streams ",
            "# TYPE mtswarm_nodes gauge",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }
}
