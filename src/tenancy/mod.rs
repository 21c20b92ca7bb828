//! Tenancy: each tenant sees and touches only what it owns, under its own names.
//!
//! Ownership is the label `mtswarm.tenant` on every container, network and volume a tenant creates, so the
//! engines hold it and nothing is lost when mtswarm restarts. Names are scoped engine-side ([`names`]). For a
//! tenant's request, [`prepare`] resolves every reference (path, query, body) among the tenant's own objects
//! and rewrites it to engine-side names and ids; [`rewrite_answer`] and [`events`] turn the engine's answer
//! back into the tenant's view. Another tenant's object answers exactly as an absent one. Resolving reads the
//! engine only through [`Lookup`], so the rewrites are table-tested over a fake engine (`rewrite_tests`).
//!
//! **Architecture Invariant:** a tenant's request reaches an engine only with references that resolved to
//! objects labelled with that tenant, or to the shared `none` network (and the engine's `bridge`, unless each
//! tenant has its own, [`bridge`]) and the image catalogue.

pub mod bridge;
pub mod events;
pub mod lookup;
pub mod resolve;
mod rewrite;
#[cfg(test)]
mod rewrite_tests;
pub mod usage;

use std::collections::{BTreeSet, HashSet};

use http::StatusCode;
use serde_json::Value;

use crate::api::{ApiError, ContainerOp, Endpoint, ExecOp, NetworkOp, VolumeOp};
use crate::tenant::{encode, names, Answer, SHARED_NETWORKS, TENANT_LABEL};
pub use bridge::{DefaultNetwork, DefaultNetworks};
pub use lookup::Lookup;
pub use resolve::{own_containers, ResolveError, Resolver};
pub use rewrite::{named_volumes, rewrite_answer};

/// A tenant's request, rewritten for the engine.
#[derive(Debug)]
pub struct Plan {
    /// The path without its version prefix, with references replaced by engine-side ids and names.
    pub path: String,
    pub query: Option<String>,
    pub answer: Answer,
    /// Ids of the tenant's containers that the body refers to (`container:` modes), for the escape checks.
    pub own_containers: HashSet<String>,
}

/// Rewrites a tenant's request. `doc` is the request's JSON body, read by the gateway for the endpoints
/// whose body names objects (the decoder's canonical document, [`crate::api::decode`]). A create or connect that
/// asks for the default network gets the tenant's own one on `node`, made there if need be (`defaults`).
pub async fn prepare<L: Lookup + ?Sized>(
    node: &L,
    defaults: &DefaultNetworks,
    tenant: &str,
    endpoint: &Endpoint,
    path: &str,
    query: Option<&str>,
    doc: Option<&mut Value>,
) -> Result<Plan, ApiError> {
    use Endpoint as E;
    let r = Resolver { node, tenant };
    let mut plan = Plan {
        path: path.to_string(),
        query: query.map(str::to_string),
        answer: Answer::Pass,
        own_containers: HashSet::new(),
    };
    let mut q = Query::parse(query);
    match endpoint {
        E::Ping | E::Version | E::Info | E::Usage | E::Auth => {}
        // Answered by mtswarm, or the operator's alone (policy refuses them to tenants before this phase).
        E::Options
        | E::SwarmMode(_)
        | E::PluginList
        | E::PluginPrivileges
        | E::PluginPull
        | E::PluginCreate
        | E::Plugin { .. }
        | E::Session
        | E::Grpc
        | E::Checkpoint { .. } => {}
        E::Events => {
            let mut f = q.filters()?;
            if let Some(values) = f.get_mut("container") {
                let mut resolved = BTreeSet::new();
                for v in values.iter() {
                    // An unknown container filters everything out, as on an engine where it does not exist.
                    resolved.insert(r.container(v).await.map(|c| c.id).unwrap_or_else(|_| names::scope(tenant, v)));
                }
                *values = resolved;
            }
            for key in ["network", "volume"] {
                if let Some(values) = f.get_mut(key) {
                    *values = values.iter().map(|v| names::scope(tenant, v)).collect();
                }
            }
            q.set_filters(&f);
            plan.answer = Answer::Events;
        }
        E::SystemDf => plan.answer = Answer::SystemDf,
        E::ContainerList => {
            let mut f = q.filters()?;
            let names = f.remove("name").map(|v| v.into_iter().collect()).unwrap_or_default();
            // Filters that name other objects name the tenant's.
            for key in ["before", "since"] {
                if let Some(values) = f.get_mut(key) {
                    let mut resolved = BTreeSet::new();
                    for v in values.iter() {
                        resolved.insert(r.container(v).await?.id);
                    }
                    *values = resolved;
                }
            }
            if let Some(values) = f.get_mut("volume") {
                *values = values
                    .iter()
                    .map(|v| if v.starts_with('/') { v.clone() } else { names::scope(tenant, v) })
                    .collect();
            }
            if let Some(values) = f.get_mut("network") {
                *values = values
                    .iter()
                    .flat_map(|v| match v.as_str() {
                        // The tenant's `bridge` is its own network, or the engine's for its older containers.
                        crate::tenant::DEFAULT_NETWORK => vec![v.clone(), names::scope(tenant, v)],
                        _ if SHARED_NETWORKS.contains(&v.as_str()) => vec![v.clone()],
                        _ => vec![names::scope(tenant, v)],
                    })
                    .collect();
            }
            f.entry("label".into()).or_default().insert(format!("{TENANT_LABEL}={tenant}"));
            q.set_filters(&f);
            // dockerd 20.10 still reads the pre-filter `before` and `since` parameters: they name containers too.
            for key in ["before", "since"] {
                if let Some(v) = q.get(key).filter(|v| !v.is_empty()) {
                    q.set(key, &r.container(&v).await?.id);
                }
            }
            plan.answer = Answer::ContainerList { names };
        }
        E::ContainerCreate => {
            let name = match q.get("name") {
                Some(n) => {
                    let n = n.trim_start_matches('/').to_string();
                    if !names::valid_name(&n) {
                        return Err(ApiError::bad_request(format!(
                            "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                        )));
                    }
                    n
                }
                None => names::generated_name().map_err(no_randomness)?,
            };
            q.set("name", &names::scope(tenant, &name));
            if let Some(doc) = doc {
                let own_bridge = match defaults.private() && crate::tenant::may_use_default(doc) {
                    true => Some(defaults.ensure(node, tenant).await?),
                    false => None,
                };
                rewrite::container_create(&r, &name, doc, &mut plan.own_containers, own_bridge.as_deref()).await?;
            }
        }
        E::ContainerPrune | E::VolumePrune | E::NetworkPrune => {
            let mut f = q.filters()?;
            f.entry("label".into()).or_default().insert(format!("{TENANT_LABEL}={tenant}"));
            if matches!(endpoint, E::NetworkPrune) {
                // The tenant's default network is pre-defined to the tenant, as the engine's bridge is.
                f.entry("label!".into()).or_default().insert(crate::tenant::DEFAULT_NETWORK_LABEL.to_string());
            }
            q.set_filters(&f);
            plan.answer = Answer::Prune;
        }
        // Removing a legacy link: `parent/alias`, where the parent and the container the alias names are the
        // tenant's; the engine knows the link as `/<parent's engine-side name>/alias`.
        E::Container { id, op: ContainerOp::Delete } if id.trim_start_matches('/').contains('/') => {
            let (parent, alias) = r.link(id).await?;
            plan.path =
                format!("/containers/{}/{}", encode(parent.engine_name.trim_start_matches('/')), encode(&alias));
            plan.answer = Answer::Named { engine: parent.id, user: id.clone() };
        }
        E::Container { id, op } => {
            let c = r.container(id).await?;
            plan.path = replace_segment(path, 2, &c.id);
            // dockerd names the container by the reference it was given in some errors (`Could not find the file
            // /x in container web`), by its id in others: a removal's are all of the second kind
            // (`You cannot remove a running container <id>`).
            if *op != ContainerOp::Delete {
                plan.answer = Answer::Named { engine: c.id.clone(), user: id.clone() };
            }
            match op {
                ContainerOp::Rename => {
                    let new = q.get("name").unwrap_or_default().trim_start_matches('/').to_string();
                    if !names::valid_name(&new) {
                        return Err(ApiError::bad_request(format!(
                            "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                        )));
                    }
                    q.set("name", &names::scope(tenant, &new));
                }
                ContainerOp::Inspect => plan.answer = Answer::ContainerInspect,
                ContainerOp::Stats => plan.answer = Answer::Stats,
                _ => {}
            }
        }
        E::Exec { id, op } => {
            r.exec(id).await?;
            let _: &ExecOp = op;
        }
        E::ImageList
        | E::ImageCreate
        | E::ImageSearch
        | E::ImagePrune
        | E::ImagesSave
        | E::ImageLoad
        | E::Image { .. }
        | E::DistributionInspect { .. }
        | E::Build
        | E::BuildPrune
        | E::BuildCancel => {}
        // Committing names a container; the image side is the admin's (policy refuses it to tenants).
        E::Commit => {
            if let Some(c) = q.get("container") {
                let c = r.container(&c).await?;
                q.set("container", &c.id);
            }
        }
        E::NetworkList => plan.answer = Answer::NetworkList,
        E::NetworkCreate => {
            if let Some(doc) = doc {
                rewrite::network_create(tenant, doc)?;
            }
        }
        E::Network { id, op } => {
            let mut n = r.network(id).await?;
            if (n.shared || n.default) && matches!(op, NetworkOp::Delete) {
                let shown = if n.default { crate::tenant::DEFAULT_NETWORK } else { n.name.as_str() };
                return Err(ApiError::denied(
                    StatusCode::FORBIDDEN,
                    crate::api::DenyKind::Isolation,
                    format!("{shown} is a pre-defined network and cannot be removed"),
                ));
            }
            if n.shared
                && n.name == crate::tenant::DEFAULT_NETWORK
                && defaults.private()
                && matches!(op, NetworkOp::Connect)
            {
                // Joining `bridge` joins the tenant's own, never the engine's.
                defaults.ensure(node, tenant).await?;
                n = r.network(crate::tenant::DEFAULT_NETWORK).await?;
            }
            plan.path = replace_segment(path, 2, &n.id);
            match op {
                NetworkOp::Inspect => plan.answer = Answer::NetworkInspect,
                NetworkOp::Connect | NetworkOp::Disconnect => {
                    if let Some(doc) = doc {
                        rewrite::network_attach(&r, &n, doc, matches!(op, NetworkOp::Connect) && !n.shared).await?;
                    }
                }
                NetworkOp::Delete => {}
            }
        }
        E::VolumeList => {
            let mut f = q.filters()?;
            f.entry("label".into()).or_default().insert(format!("{TENANT_LABEL}={tenant}"));
            q.set_filters(&f);
            plan.answer = Answer::VolumeList;
        }
        E::VolumeCreate => {
            if let Some(doc) = doc {
                rewrite::volume_create(tenant, doc)?;
            }
            plan.answer = Answer::VolumeInspect;
        }
        E::Volume { name, op } => {
            let scoped = r.volume(name).await?;
            plan.path = replace_segment(path, 2, &scoped);
            if matches!(op, VolumeOp::Inspect) {
                plan.answer = Answer::VolumeInspect;
            }
        }
    }
    plan.query = q.encode();
    Ok(plan)
}

fn no_randomness(e: std::io::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("mtswarm could not make up a name: {e}"))
}

/// Replaces the `index`th segment of `/a/b/c` (1-based) with a percent-encoded value.
fn replace_segment(path: &str, index: usize, value: &str) -> String {
    let mut parts: Vec<String> = path.split('/').map(str::to_string).collect();
    if let Some(p) = parts.get_mut(index) {
        *p = encode(value);
    }
    parts.join("/")
}

/// A query string as ordered pairs, so that what is not rewritten is passed on as it came.
pub(crate) struct Query(Vec<(String, String)>);

pub(crate) use crate::api::query::Filters;

impl Query {
    pub(crate) fn parse(q: Option<&str>) -> Query {
        Query(crate::api::query::pairs(q))
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// Removes a key; returns its (first) value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<String> {
        let value = self.get(key);
        self.0.retain(|(k, _)| k != key);
        value
    }

    pub(crate) fn set(&mut self, key: &str, value: &str) {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_string(), value.to_string()));
    }

    pub(crate) fn filters(&self) -> Result<Filters, ApiError> {
        crate::api::query::parse_filters(&self.get("filters").unwrap_or_default())
    }

    pub(crate) fn set_filters(&mut self, f: &Filters) {
        let v: serde_json::Map<String, Value> = f
            .iter()
            .map(|(k, vals)| (k.clone(), Value::Object(vals.iter().map(|v| (v.clone(), Value::Bool(true))).collect())))
            .collect();
        self.set("filters", &Value::Object(v).to_string());
    }

    pub(crate) fn encode(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            s.append_pair(k, v);
        }
        Some(s.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_the_tenant_filter_with_the_clients() {
        let mut q = Query::parse(Some(r#"all=1&filters=%7B%22label%22%3A%7B%22mtswarm.tenant%3Dbob%22%3Atrue%7D%7D"#));
        let mut f = q.filters().unwrap();
        f.entry("label".into()).or_default().insert("mtswarm.tenant=alice".into());
        q.set_filters(&f);
        let back = Query::parse(q.encode().as_deref()).filters().unwrap();
        let labels: Vec<&str> = back["label"].iter().map(String::as_str).collect();
        // Both stay: label filters are ANDed, so the client's cannot widen the tenant's.
        assert_eq!(labels, ["mtswarm.tenant=alice", "mtswarm.tenant=bob"]);
        assert_eq!(Query::parse(q.encode().as_deref()).get("all").as_deref(), Some("1"));
    }

    #[test]
    fn reads_both_filter_shapes() {
        let q = Query::parse(Some("filters=%7B%22name%22%3A%5B%22web%22%5D%7D"));
        assert_eq!(q.filters().unwrap()["name"].iter().next().map(String::as_str), Some("web"));
        assert!(Query::parse(Some("filters=nonsense")).filters().is_err());
    }

    #[test]
    fn replaces_path_segments() {
        assert_eq!(replace_segment("/containers/web/json", 2, "abc"), "/containers/abc/json");
        assert_eq!(replace_segment("/volumes/data", 2, "t5-alice-data"), "/volumes/t5-alice-data");
    }
}
