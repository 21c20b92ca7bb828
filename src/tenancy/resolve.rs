//! Resolving a tenant's references among its own objects, in Docker's order: full id, then name, then
//! unique id prefix. Another tenant's object is reported exactly as a missing one.

use http::StatusCode;
use serde_json::Value;

use super::{encode, names, SHARED_NETWORKS, TENANT_LABEL};
use crate::api::ApiError;
use crate::cluster::{EngineError, Node};

/// Looks up a tenant's objects on one node.
pub struct Resolver<'a> {
    pub node: &'a Node,
    pub tenant: &'a str,
}

/// A container the tenant owns.
#[derive(Debug, Clone)]
pub struct OwnContainer {
    pub id: String,
    /// The engine-side name, with its leading `/`.
    pub engine_name: String,
}

/// A network the tenant may use.
#[derive(Debug, Clone)]
pub struct UsableNetwork {
    pub id: String,
    /// The engine-side name.
    pub name: String,
    /// `bridge` or `none`: shared by all, owned by none.
    pub shared: bool,
    /// The tenant's own default network, which it sees as `bridge` ([`super::bridge`]).
    pub default: bool,
}

impl Resolver<'_> {
    pub async fn container(&self, reference: &str) -> Result<OwnContainer, ApiError> {
        let reference = reference.trim_start_matches('/');
        let missing = || ApiError::not_found(format!("No such container: {reference}"));
        if reference.is_empty() {
            return Err(missing());
        }
        if is_hex(reference) && reference.len() == 64 {
            if let Some(c) = self.inspect_container(reference).await? {
                return Ok(c);
            }
        }
        if names::valid_name(reference) {
            if let Some(c) = self.inspect_container(&names::scope(self.tenant, reference)).await? {
                return Ok(c);
            }
        }
        if is_hex(reference) && reference.len() < 64 {
            let mut matches = own_containers(self.node, self.tenant)
                .await?
                .into_iter()
                .filter(|c| c.get("Id").and_then(Value::as_str).is_some_and(|id| id.starts_with(reference)));
            let first = matches.next();
            if matches.next().is_some() {
                return Err(ambiguous(reference));
            }
            if let Some(c) = first {
                let id = c.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
                let engine_name = c.pointer("/Names/0").and_then(Value::as_str).unwrap_or_default().to_string();
                return Ok(OwnContainer { id, engine_name });
            }
        }
        Err(missing())
    }

    /// A legacy link `parent/alias`: the tenant's parent container, and the alias, which must name one of the
    /// tenant's containers too (dockerd finds the linked container under the link's full name).
    pub async fn link(&self, reference: &str) -> Result<(OwnContainer, String), ApiError> {
        let reference = reference.trim_start_matches('/');
        let missing = || ApiError::not_found(format!("No such container: {reference}"));
        let Some((parent, alias)) = reference.rsplit_once('/') else { return Err(missing()) };
        let parent = self.container(parent).await.map_err(|_| missing())?;
        let full = format!("{}/{alias}", parent.engine_name.trim_start_matches('/'));
        if self.inspect_container(&full).await?.is_none() {
            return Err(missing());
        }
        Ok((parent, alias.to_string()))
    }

    async fn inspect_container(&self, engine_ref: &str) -> Result<Option<OwnContainer>, ApiError> {
        let Some(c) = self.get(&format!("/containers/{}/json", encode(engine_ref))).await? else {
            return Ok(None);
        };
        if label(&c, "/Config/Labels") != Some(self.tenant) {
            return Ok(None);
        }
        let id = c.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
        let engine_name = c.get("Name").and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(Some(OwnContainer { id, engine_name }))
    }

    pub async fn network(&self, reference: &str) -> Result<UsableNetwork, ApiError> {
        let missing = || ApiError::not_found(format!("network {reference} not found"));
        if reference == "host" {
            return Err(ApiError::denied(
                StatusCode::FORBIDDEN,
                crate::api::DenyKind::Escape,
                "the host network is not available to tenants",
            ));
        }
        let mut candidates = Vec::new();
        if names::valid_name(reference) {
            candidates.push(names::scope(self.tenant, reference));
        }
        if SHARED_NETWORKS.contains(&reference) || is_hex(reference) {
            candidates.push(reference.to_string());
        }
        for c in candidates {
            let Some(n) = self.get(&format!("/networks/{}", encode(&c))).await? else { continue };
            let name = n.get("Name").and_then(Value::as_str).unwrap_or_default().to_string();
            let id = n.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
            let shared = SHARED_NETWORKS.contains(&name.as_str());
            // A bare id prefix must name the tenant's network or a shared one; the engine matched it among all.
            if shared || label(&n, "/Labels") == Some(self.tenant) {
                let default = !shared && crate::tenant::is_default_network(&n);
                return Ok(UsableNetwork { id, name, shared, default });
            }
        }
        Err(missing())
    }

    /// The engine-side name of the tenant's volume.
    pub async fn volume(&self, name: &str) -> Result<String, ApiError> {
        let scoped = names::scope(self.tenant, name);
        match self.get(&format!("/volumes/{}", encode(&scoped))).await? {
            Some(v) if label(&v, "/Labels") == Some(self.tenant) => Ok(scoped),
            _ => Err(ApiError::not_found(format!("get {name}: no such volume"))),
        }
    }

    /// Checks that an exec instance runs in one of the tenant's containers.
    pub async fn exec(&self, id: &str) -> Result<(), ApiError> {
        let missing = || ApiError::not_found(format!("No such exec instance: {id}"));
        let Some(e) = self.get(&format!("/exec/{}/json", encode(id))).await? else { return Err(missing()) };
        let container = e.get("ContainerID").and_then(Value::as_str).unwrap_or_default();
        if container.is_empty() || self.inspect_container(container).await?.is_none() {
            return Err(missing());
        }
        Ok(())
    }

    /// Makes sure the tenant's named volume exists, creating it with the tenant's label, as the engine would
    /// create it implicitly (without one). Returns the engine-side name.
    pub async fn ensure_volume(&self, name: &str) -> Result<String, ApiError> {
        if let Ok(scoped) = self.volume(name).await {
            return Ok(scoped);
        }
        let scoped = names::scope(self.tenant, name);
        let body = serde_json::json!({"Name": scoped, "Labels": {TENANT_LABEL: self.tenant}});
        let req = http::Request::post("/volumes/create")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(crate::body::full(body.to_string()))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let resp = self.node.send(req).await.map_err(ApiError::from)?;
        let status = resp.status();
        let bytes = crate::body::collect_limited(resp.into_body(), 1 << 20)
            .await
            .map_err(|e| ApiError::bad_gateway(e.to_string()))?;
        if !status.is_success() {
            return Err(ApiError::new(status, crate::cluster::node::engine_message(&bytes)));
        }
        // Another request may have made it first; either way it must be the tenant's.
        self.volume(name).await
    }

    /// A GET that answers `None` for 404.
    async fn get(&self, path: &str) -> Result<Option<Value>, ApiError> {
        match self.node.get_json(path).await {
            Ok(v) => Ok(Some(v)),
            Err(EngineError::Answer { status: StatusCode::NOT_FOUND, .. }) => Ok(None),
            Err(e) => Err(ApiError::from(e)),
        }
    }
}

/// The tenant's containers, as `GET /containers/json?all=1` lists them.
pub async fn own_containers(node: &Node, tenant: &str) -> Result<Vec<Value>, ApiError> {
    let filters = serde_json::json!({"label": {format!("{TENANT_LABEL}={tenant}"): true}}).to_string();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("all", "1")
        .append_pair("filters", &filters)
        .finish();
    let v = node.get_json(&format!("/containers/json?{q}")).await.map_err(ApiError::from)?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// dockerd's answer to an id prefix that fits several containers.
pub fn ambiguous(prefix: &str) -> ApiError {
    ApiError::bad_request(format!("Multiple IDs found with provided prefix: {prefix}"))
}

/// Whether an error is dockerd's (or [`ambiguous`]'s) answer to an id prefix that fits several containers.
pub fn is_ambiguous(e: &ApiError) -> bool {
    e.status == StatusCode::BAD_REQUEST && e.message.to_ascii_lowercase().starts_with("multiple ids found")
}

fn label<'v>(obj: &'v Value, labels_at: &str) -> Option<&'v str> {
    obj.pointer(labels_at)?.get(TENANT_LABEL)?.as_str()
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}
