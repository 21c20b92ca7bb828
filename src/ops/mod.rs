//! Observability: Prometheus metrics ([`metrics`]), the audit log ([`audit`]) and the log's writer
//! ([`logwriter`]). The listener that serves them (`--metrics-addr`) is transport: [`crate::server::ops`].

pub mod audit;
pub mod logwriter;
pub mod metrics;
