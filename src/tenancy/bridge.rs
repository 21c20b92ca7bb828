//! Each tenant's own default network. On an engine's default `bridge` every container reaches every other (and
//! NET_RAW lets one spoof ARP there), so a tenant's container that asks for the default network is put on a
//! bridge network of the tenant's own on its node instead: engine-side `t<len>-<tenant>-bridge`, which every view
//! unscopes to `bridge`, made on first use. It carries the ownership label, and [`DEFAULT_NETWORK_LABEL`] so that
//! quota and prune leave it alone. Tenants cannot create a network named `bridge`, so the name is free.
//!
//! Separate bridges are isolated from each other only where dockerd manages iptables (its default): on an engine
//! run with `--iptables=false` the host forwards between them. The operator who runs engines with `--icc=false`
//! instead may keep the engine's bridge for everyone ([`DefaultNetwork::Shared`]).

use std::str::FromStr;

use http::StatusCode;
use serde_json::Value;

use super::lookup::Lookup;
use super::usage::TenantLocks;
use crate::api::ApiError;
use crate::cluster::EngineError;
use crate::tenant::{names, DEFAULT_NETWORK, DEFAULT_NETWORK_LABEL, TENANT_LABEL};

/// Where a tenant's container that asks for the default network goes (`--tenant-default-network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultNetwork {
    /// A bridge network of the tenant's own on each node.
    #[default]
    Private,
    /// The engine's default bridge, shared by all tenants (for engines run with `--icc=false`).
    Shared,
}

impl FromStr for DefaultNetwork {
    type Err = String;

    fn from_str(s: &str) -> Result<DefaultNetwork, String> {
        match s {
            "private" => Ok(DefaultNetwork::Private),
            "shared" => Ok(DefaultNetwork::Shared),
            _ => Err(format!("--tenant-default-network {s:?}: expected private or shared")),
        }
    }
}

/// The tenants' default networks: the operator's choice, and one lock per tenant and node so that parallel
/// creates of one tenant make one network (dockerd 20.10 checks a duplicate name apart from creating it).
#[derive(Default)]
pub struct DefaultNetworks {
    pub mode: DefaultNetwork,
    locks: TenantLocks,
}

impl DefaultNetworks {
    pub fn new(mode: DefaultNetwork) -> DefaultNetworks {
        DefaultNetworks { mode, locks: TenantLocks::default() }
    }

    pub fn private(&self) -> bool {
        self.mode == DefaultNetwork::Private
    }

    /// Makes sure the tenant's default network exists on `node`; returns its engine-side name.
    pub async fn ensure<L: Lookup + ?Sized>(&self, node: &L, tenant: &str) -> Result<String, ApiError> {
        let name = names::scope(tenant, DEFAULT_NETWORK);
        if exists(node, tenant, &name).await? {
            return Ok(name);
        }
        let _lock = self.locks.lock(&format!("{}\n{tenant}", node.node_name())).await;
        if exists(node, tenant, &name).await? {
            return Ok(name);
        }
        let body = serde_json::json!({
            "Name": name,
            "Driver": "bridge",
            "CheckDuplicate": true,
            "Labels": {TENANT_LABEL: tenant, DEFAULT_NETWORK_LABEL: "true"},
        });
        match node.create_network(body).await {
            Ok(()) => {}
            // 409: another manager made it meanwhile; it must be the tenant's all the same.
            Err(EngineError::Answer { status: StatusCode::CONFLICT, .. }) => {}
            Err(EngineError::Answer { status, message, .. }) => {
                tracing::warn!(node = %node.node_name(), tenant, cause = %message, "a tenant's default network was not made");
                return Err(ApiError::new(
                    status,
                    format!("the default network could not be made: {}", names::unscope_text(tenant, &message)),
                ));
            }
            Err(e) => return Err(ApiError::from(e)),
        }
        if exists(node, tenant, &name).await? {
            Ok(name)
        } else {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the default network could not be made"))
        }
    }
}

/// Whether the tenant's default network is on the node. A network of that name that is not the tenant's
/// default one (the admin's doing) is refused rather than joined.
async fn exists<L: Lookup + ?Sized>(node: &L, tenant: &str, name: &str) -> Result<bool, ApiError> {
    match node.inspect_network(name).await {
        Ok(Some(n)) if n.get("Name").and_then(Value::as_str) == Some(name) => {
            let label = |k: &str| n.pointer("/Labels").and_then(|l| l.get(k)).and_then(Value::as_str);
            if label(TENANT_LABEL) == Some(tenant) && label(DEFAULT_NETWORK_LABEL).is_some() {
                Ok(true)
            } else {
                Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("network {name} on node {} is not the tenant's default network", node.node_name()),
                ))
            }
        }
        Ok(_) => Ok(false),
        Err(e) => Err(ApiError::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_default_network_setting() {
        assert_eq!("shared".parse(), Ok(DefaultNetwork::Shared));
        assert_eq!("private".parse(), Ok(DefaultNetwork::Private));
        assert!("Shared".parse::<DefaultNetwork>().is_err());
    }
}
