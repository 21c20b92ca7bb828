//! Policy: the operator's rules about what a tenant may ask for (API filter, quota, flavors, host-escape denial).
//!
//! **Architecture Invariant:** policy is pure. No IO, no hyper, no tokio: every rule takes values (a request body,
//! a configuration snapshot, facts the caller resolved) and returns a decision. That makes each rule
//! table-testable and impossible to half-fail; the gateway does the IO and turns a refusal into a 403.

pub mod apifilter;
pub mod escape;
pub mod flavors;
pub mod images;
pub mod networks;
pub mod plugins;
pub mod quota;
pub mod resources;
