//! Observability: Prometheus metrics ([`metrics`]) and the audit log ([`audit`]). The listener that serves them
//! (`--metrics-addr`) is transport: [`crate::server::ops`].

pub mod audit;
pub mod metrics;
