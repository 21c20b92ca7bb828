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

use super::usage::TenantLocks;
use super::{encode, names, TENANT_LABEL};
use crate::api::ApiError;
use crate::cluster::{EngineError, Node};
use crate::proxy::engine_error;

/// Marks a tenant's default network, which the tenant did not create: it counts in no quota and is not pruned.
pub const DEFAULT_NETWORK_LABEL: &str = "mtswarm.default-network";

/// The name under which a tenant sees its default network, as on a plain engine.
pub const NAME: &str = "bridge";

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
    pub async fn ensure(&self, node: &Node, tenant: &str) -> Result<String, ApiError> {
        let name = names::scope(tenant, NAME);
        if exists(node, tenant, &name).await? {
            return Ok(name);
        }
        let _lock = self.locks.lock(&format!("{}\n{tenant}", node.name())).await;
        if exists(node, tenant, &name).await? {
            return Ok(name);
        }
        let body = serde_json::json!({
            "Name": name,
            "Driver": "bridge",
            "CheckDuplicate": true,
            "Labels": {TENANT_LABEL: tenant, DEFAULT_NETWORK_LABEL: "true"},
        });
        let req = http::Request::post("/networks/create")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(crate::body::full(body.to_string()))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let resp = node.send(req).await.map_err(engine_error)?;
        let status = resp.status();
        let bytes = crate::body::collect_limited(resp.into_body(), 1 << 20)
            .await
            .map_err(|e| ApiError::bad_gateway(e.to_string()))?;
        // 409: another manager made it meanwhile; it must be the tenant's all the same.
        if !status.is_success() && status != StatusCode::CONFLICT {
            let message = crate::cluster::node::engine_message(&bytes);
            tracing::warn!(node = %node.name(), tenant, cause = %message, "a tenant's default network was not made");
            return Err(ApiError::new(
                status,
                format!("the default network could not be made: {}", names::unscope_text(tenant, &message)),
            ));
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
async fn exists(node: &Node, tenant: &str, name: &str) -> Result<bool, ApiError> {
    match node.get_json(&format!("/networks/{}", encode(name))).await {
        Ok(n) if n.get("Name").and_then(Value::as_str) == Some(name) => {
            let label = |k: &str| n.pointer("/Labels").and_then(|l| l.get(k)).and_then(Value::as_str);
            if label(TENANT_LABEL) == Some(tenant) && label(DEFAULT_NETWORK_LABEL).is_some() {
                Ok(true)
            } else {
                Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("network {name} on node {} is not the tenant's default network", node.name()),
                ))
            }
        }
        Ok(_) => Ok(false),
        Err(EngineError::Answer { status: StatusCode::NOT_FOUND, .. }) => Ok(false),
        Err(e) => Err(engine_error(e)),
    }
}

/// Whether an engine's network (inspect or list entry) is a tenant's default network.
pub fn is_default_network(n: &Value) -> bool {
    n.pointer("/Labels").and_then(|l| l.get(DEFAULT_NETWORK_LABEL)).is_some()
}

/// The names by which a create body asks for the engine's default network: dockerd reads an empty
/// `NetworkMode`, `default` and `bridge` as it, and an endpoint keyed `bridge` or `default` joins it.
pub fn is_default_name(name: &str) -> bool {
    matches!(name, "" | "default" | NAME)
}

/// Whether a create body (the decoder's canonical document) puts the container on the default network.
pub fn uses_default(doc: &Value) -> bool {
    let mode = doc.pointer("/HostConfig/NetworkMode").and_then(Value::as_str).unwrap_or_default();
    let endpoints = doc.pointer("/NetworkingConfig/EndpointsConfig").and_then(Value::as_object);
    is_default_name(mode) || endpoints.is_some_and(|eps| eps.keys().any(|k| is_default_name(k)))
}

/// Whether a create body may put the container on the default network: [`uses_default`], or a network named by
/// what may be an id (the engine's `bridge` has one too), which only resolving tells.
pub fn may_use_default(doc: &Value) -> bool {
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let mode = doc.pointer("/HostConfig/NetworkMode").and_then(Value::as_str).unwrap_or_default();
    let endpoints = doc.pointer("/NetworkingConfig/EndpointsConfig").and_then(Value::as_object);
    uses_default(doc) || hex(mode) || endpoints.is_some_and(|eps| eps.keys().any(|k| hex(k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_which_creates_use_the_default_network() {
        let check = |doc: Value, expected: bool| assert_eq!(uses_default(&doc), expected, "{doc}");
        check(json!({}), true);
        check(json!({"HostConfig": {}}), true);
        check(json!({"HostConfig": {"NetworkMode": "default"}}), true);
        check(json!({"HostConfig": {"NetworkMode": "bridge"}}), true);
        check(json!({"HostConfig": {"NetworkMode": "none"}}), false);
        check(json!({"HostConfig": {"NetworkMode": "back"}}), false);
        check(json!({"HostConfig": {"NetworkMode": "container:abc"}}), false);
        check(
            json!({"HostConfig": {"NetworkMode": "back"}, "NetworkingConfig": {"EndpointsConfig": {"back": {}}}}),
            false,
        );
        check(
            json!({"HostConfig": {"NetworkMode": "back"}, "NetworkingConfig": {"EndpointsConfig": {"bridge": {}}}}),
            true,
        );
        assert!(may_use_default(&json!({"HostConfig": {"NetworkMode": "0031906cb046"}})));
        assert!(!may_use_default(&json!({"HostConfig": {"NetworkMode": "back"}})));
        assert_eq!("shared".parse(), Ok(DefaultNetwork::Shared));
        assert_eq!("private".parse(), Ok(DefaultNetwork::Private));
        assert!("Shared".parse::<DefaultNetwork>().is_err());
    }
}
