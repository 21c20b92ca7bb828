//! Observability: Prometheus metrics ([`metrics`]), the audit log ([`audit`]) and each request's log line
//! ([`log`]). The listener that serves metrics (`--metrics-addr`) is transport: [`crate::server::ops`].

pub mod audit;
pub mod log;
pub mod metrics;
