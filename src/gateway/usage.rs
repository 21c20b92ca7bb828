//! `GET /mtswarm/v1/usage` and the usage quota checks read: each tenant's containers, memory, CPUs, volumes and
//! networks, from the engines (labels and limits), with what an unavailable node held when last seen.

use std::collections::BTreeMap;

use super::Gateway;
use crate::api::ApiError;
use crate::policy::{quota::Usage, resources};
use crate::tenancy;
use crate::tenant::Scope;

impl Gateway {
    /// Usage read from the healthy nodes, plus the containers an unavailable node held when last seen: a node
    /// that is down still holds them, and gets them back when it returns.
    pub(super) async fn usage_of(&self, scope: &Scope) -> Result<BTreeMap<String, Usage>, ApiError> {
        let tenant = scope.tenant_str();
        let mut all = tenancy::usage::usage(&self.cluster.healthy_nodes(), tenant).await?;
        for node in self.cluster.nodes().iter().filter(|n| !n.healthy()) {
            for c in node.holdings().containers.into_values() {
                let Some(t) = c.tenant.filter(|t| tenant.is_none_or(|want| want == t)) else { continue };
                let u = all.entry(t).or_default();
                u.containers += 1;
                u.memory += c.memory;
                u.nano_cpus += c.nano_cpus;
            }
        }
        Ok(all)
    }

    /// `GET /mtswarm/v1/usage`: a tenant's own usage against its limits, or every tenant's (`tenant` is `None`
    /// for the admin).
    pub(super) async fn usage_answer(&self, scope: &Scope) -> Result<serde_json::Value, ApiError> {
        let tenant = scope.tenant_str();
        let live = self.live();
        let mut all = self.usage_of(scope).await?;
        if tenant.is_none() {
            for t in live.quota.iter().flat_map(|q| q.named_tenants()) {
                all.entry(t.to_string()).or_default();
            }
        }
        let entry = |t: &str, u: &Usage| {
            let l = live.quota.as_ref().map(|q| q.limits(t)).unwrap_or_default();
            serde_json::json!({
                "Tenant": t,
                "Usage": {
                    "Memory": mb(u.memory),
                    "CPUs": u.nano_cpus as f64 / resources::NANO,
                    "Containers": u.containers,
                    "Volumes": u.volumes,
                    "Networks": u.networks,
                },
                "Limits": {
                    "Memory": l.memory_mb,
                    "CPUs": l.cpus,
                    "Containers": l.containers,
                    "Volumes": l.volumes,
                    "Networks": l.networks,
                },
            })
        };
        Ok(match tenant {
            Some(t) => entry(t, all.get(t).unwrap_or(&Usage::default())),
            None => serde_json::json!({
                "QuotaEnforced": live.quota.is_some(),
                "Tenants": all.iter().map(|(t, u)| entry(t, u)).collect::<Vec<_>>(),
            }),
        })
    }
}

/// Bytes as a number of MB, whole when it is whole.
fn mb(bytes: i64) -> serde_json::Value {
    if bytes % resources::MB == 0 {
        serde_json::Value::from(bytes / resources::MB)
    } else {
        serde_json::Value::from((bytes as f64 / resources::MB as f64 * 100.0).round() / 100.0)
    }
}
