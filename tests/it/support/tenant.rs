//! What mtswarm makes of a tenant's objects on the engine, for the tests that look behind its back: the owner
//! label and the engine-side names.

use super::{engine_ok, Client};

/// The label mtswarm puts on every object it creates for a tenant, with the tenant id as its value.
pub const TENANT_LABEL: &str = "mtswarm.tenant";

/// `t<len>-<tenant id>-`: the engine-side prefix of a tenant's names.
pub fn scope_prefix(tenant_id: &str) -> String {
    format!("t{}-{tenant_id}-", tenant_id.len())
}

/// The engine-side name of a tenant's object `name`: `t<len>-<tenant id>-<name>`.
pub fn scoped(tenant_id: &str, name: &str) -> String {
    format!("{}{name}", scope_prefix(tenant_id))
}

/// The tenant label of a container, network or volume (`kind`) on the default engine.
pub fn engine_owner(kind: &str, reference: &str) -> String {
    let labels = if kind == "container" { ".Config.Labels" } else { ".Labels" };
    engine_ok(&[kind, "inspect", "--format", &format!("{{{{index {labels} \"{TENANT_LABEL}\"}}}}"), reference])
}

impl Client {
    /// `t<len>-<tenant id>-`: the engine-side prefix of this tenant's names.
    pub fn scope_prefix(&self) -> String {
        scope_prefix(&self.tenant_id)
    }

    /// The engine-side name of this tenant's object `name`.
    pub fn scoped(&self, name: &str) -> String {
        scoped(&self.tenant_id, name)
    }
}
