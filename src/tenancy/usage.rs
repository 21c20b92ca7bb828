//! What each tenant holds, derived from the engines each time it is asked: the containers, volumes and networks
//! labelled with the tenant, and the containers' limits as the engine applied them. Nothing is kept in mtswarm,
//! so a restart forgets nothing and an object removed directly on an engine stops counting at once.
//!
//! [`TenantLocks`] serialises one tenant's resource-taking requests: the check of a request and the engine's
//! answer to it happen under the tenant's lock, so concurrent creates of one tenant cannot overshoot its quota
//! (each is checked against what the engines hold after the previous one).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::TENANT_LABEL;
use crate::api::ApiError;
use crate::cluster::{EngineError, Node};
use crate::policy::quota::Usage;
use crate::policy::resources;

/// Every tenant's usage, over `nodes`; `tenant` limits it to one tenant.
pub async fn usage(nodes: &[Arc<Node>], tenant: Option<&str>) -> Result<BTreeMap<String, Usage>, ApiError> {
    let label = match tenant {
        Some(t) => format!("{TENANT_LABEL}={t}"),
        None => TENANT_LABEL.to_string(),
    };
    let per_node = futures_util::future::join_all(nodes.iter().map(|n| node_usage(n, &label))).await;
    let mut out = BTreeMap::new();
    for result in per_node {
        for (t, u) in result? {
            out.entry(t).or_insert_with(Usage::default).add(&u);
        }
    }
    if let Some(t) = tenant {
        out.entry(t.to_string()).or_default();
    }
    Ok(out)
}

async fn node_usage(node: &Node, label: &str) -> Result<BTreeMap<String, Usage>, ApiError> {
    let filters = serde_json::json!({"label": {label: true}}).to_string();
    let q = |extra: &[(&str, &str)]| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        s.append_pair("filters", &filters).finish()
    };
    let (containers, volumes, networks) = futures_util::future::join3(
        node.get_json(&format!("/containers/json?{}", q(&[("all", "1")]))),
        node.get_json(&format!("/volumes?{}", q(&[]))),
        node.get_json(&format!("/networks?{}", q(&[]))),
    )
    .await;
    let mut out: BTreeMap<String, Usage> = BTreeMap::new();
    let containers = containers.map_err(ApiError::from)?;
    let inspects = containers.as_array().into_iter().flatten().filter_map(|c| {
        let id = c.get("Id")?.as_str()?.to_string();
        let tenant = c.pointer("/Labels")?.get(TENANT_LABEL)?.as_str()?.to_string();
        Some(async move {
            match node.get_json(&format!("/containers/{id}/json")).await {
                Ok(c) => Ok(Some((tenant, resources::of_inspect(&c)))),
                // Removed since it was listed: it no longer counts.
                Err(EngineError::Answer { status: http::StatusCode::NOT_FOUND, .. }) => Ok(None),
                Err(e) => Err(ApiError::from(e)),
            }
        })
    });
    for r in futures_util::future::join_all(inspects).await {
        let Some((tenant, limits)) = r? else { continue };
        let u = out.entry(tenant).or_default();
        u.containers += 1;
        u.memory += limits.memory.max(0);
        u.nano_cpus += limits.nano_cpus.max(0);
    }
    let volumes = volumes.map_err(ApiError::from)?;
    for v in volumes.get("Volumes").and_then(Value::as_array).into_iter().flatten() {
        if let Some(t) = v.pointer("/Labels").and_then(|l| l.get(TENANT_LABEL)).and_then(Value::as_str) {
            out.entry(t.to_string()).or_default().volumes += 1;
        }
    }
    let networks = networks.map_err(ApiError::from)?;
    // A tenant's default network is not one it made: it counts in no quota.
    for n in networks.as_array().into_iter().flatten().filter(|n| !crate::tenant::is_default_network(n)) {
        if let Some(t) = n.pointer("/Labels").and_then(|l| l.get(TENANT_LABEL)).and_then(Value::as_str) {
            out.entry(t.to_string()).or_default().networks += 1;
        }
    }
    Ok(out)
}

/// One lock per tenant, made when first needed and dropped when nobody holds or waits for it.
#[derive(Default)]
pub struct TenantLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl TenantLocks {
    pub async fn lock(&self, tenant: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|t, l| t == tenant || Arc::strong_count(l) > 1);
            map.entry(tenant.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}
