//! Resolving a tenant's references among its own objects, in Docker's order: full id, then name, then
//! unique id prefix. Another tenant's object is reported exactly as a missing one.

use http::StatusCode;
use serde_json::Value;

use super::lookup::Lookup;
use super::{names, SHARED_NETWORKS, TENANT_LABEL};
use crate::api::ApiError;
use crate::cluster::{EngineError, Node};

/// Looks up a tenant's objects on one node.
pub struct Resolver<'a, L: ?Sized = Node> {
    pub node: &'a L,
    pub tenant: &'a str,
}

/// The kinds of object a tenant's request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Container,
    Network,
    Volume,
    Exec,
}

/// Why a reference did not resolve. Callers branch on the kind; [`ApiError`] renders each as dockerd would.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// None of the tenant's objects (nor a shared network) goes by the reference. Another tenant's object is
    /// reported exactly so, in dockerd's words for a missing one.
    #[error("{}", not_found_message(*.object, .reference))]
    NotFound { object: Object, reference: String },
    /// An id prefix that fits several of the tenant's containers (dockerd's 400).
    #[error("Multiple IDs found with provided prefix: {prefix}")]
    Ambiguous { prefix: String },
    /// An id prefix that fits several of the networks the tenant may use (its own and the shared ones; dockerd's
    /// 400 for a network). Another tenant's networks are not counted: the engine would have told of them.
    #[error("network {prefix} is ambiguous ({count} matches found based on ID prefix)")]
    AmbiguousNetwork { prefix: String, count: usize },
    /// The host network, which no tenant may use (a host escape, 403).
    #[error("the host network is not available to tenants")]
    HostNetwork,
    /// The engine did not answer, or answered with an error of its own.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

fn not_found_message(object: Object, reference: &str) -> String {
    match object {
        Object::Container => format!("No such container: {reference}"),
        Object::Network => format!("network {reference} not found"),
        Object::Volume => format!("get {reference}: no such volume"),
        Object::Exec => format!("No such exec instance: {reference}"),
    }
}

impl ResolveError {
    fn not_found(object: Object, reference: &str) -> ResolveError {
        ResolveError::NotFound { object, reference: reference.to_string() }
    }

    /// An engine's answer to a reference (the operator's, sent as given): dockerd's answer to a container id
    /// prefix that fits several is the one error resolving tells apart, and only its words tell it.
    pub fn from_engine(e: EngineError) -> ResolveError {
        const AMBIGUOUS: &str = "multiple ids found with provided prefix: ";
        if let EngineError::Answer { status: StatusCode::BAD_REQUEST, message, .. } = &e {
            if message.len() > AMBIGUOUS.len() && message.is_char_boundary(AMBIGUOUS.len()) {
                let (head, prefix) = message.split_at(AMBIGUOUS.len());
                if head.eq_ignore_ascii_case(AMBIGUOUS) {
                    return ResolveError::Ambiguous { prefix: prefix.to_string() };
                }
            }
        }
        ResolveError::Engine(e)
    }
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> ApiError {
        match e {
            ResolveError::NotFound { .. } => ApiError::not_found(e.to_string()),
            ResolveError::Ambiguous { .. } | ResolveError::AmbiguousNetwork { .. } => {
                ApiError::bad_request(e.to_string())
            }
            ResolveError::HostNetwork => {
                ApiError::denied(StatusCode::FORBIDDEN, crate::api::DenyKind::Escape, e.to_string())
            }
            ResolveError::Engine(e) => ApiError::from(e),
        }
    }
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

impl<L: Lookup + ?Sized> Resolver<'_, L> {
    pub async fn container(&self, reference: &str) -> Result<OwnContainer, ResolveError> {
        let reference = reference.trim_start_matches('/');
        let missing = || ResolveError::not_found(Object::Container, reference);
        if reference.is_empty() {
            return Err(missing());
        }
        for engine_ref in direct_references(self.tenant, reference) {
            if let Some(c) = self.inspect_container(&engine_ref).await? {
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
                return Err(ResolveError::Ambiguous { prefix: reference.to_string() });
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
    pub async fn link(&self, reference: &str) -> Result<(OwnContainer, String), ResolveError> {
        let reference = reference.trim_start_matches('/');
        let missing = || ResolveError::not_found(Object::Container, reference);
        let Some((parent, alias)) = reference.rsplit_once('/') else { return Err(missing()) };
        let parent = self.container(parent).await.map_err(|_| missing())?;
        let full = format!("{}/{alias}", parent.engine_name.trim_start_matches('/'));
        if self.inspect_container(&full).await?.is_none() {
            return Err(missing());
        }
        Ok((parent, alias.to_string()))
    }

    async fn inspect_container(&self, engine_ref: &str) -> Result<Option<OwnContainer>, ResolveError> {
        let Some(c) = self.node.inspect_container(engine_ref).await? else {
            return Ok(None);
        };
        if crate::tenant::container_owner(&c) != Some(self.tenant) {
            return Ok(None);
        }
        let id = c.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
        let engine_name = c.get("Name").and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(Some(OwnContainer { id, engine_name }))
    }

    pub async fn network(&self, reference: &str) -> Result<UsableNetwork, ResolveError> {
        if reference == "host" {
            return Err(ResolveError::HostNetwork);
        }
        // dockerd's order: a full id, then a name (the tenant's own, then a shared network's: the tenant's
        // `bridge` is its own default network), then an id prefix, matched below among what the tenant may use
        // only: the engine would match it among every tenant's networks, and its "ambiguous" would count them.
        let mut candidates = Vec::new();
        if is_hex(reference) && reference.len() == 64 {
            candidates.push(reference.to_string());
        }
        if names::valid_name(reference) {
            candidates.push(names::scope(self.tenant, reference));
        }
        if SHARED_NETWORKS.contains(&reference) {
            candidates.push(reference.to_string());
        }
        for c in candidates {
            let Some(n) = self.node.inspect_network(&c).await? else { continue };
            if let Some(usable) = self.usable(&n) {
                return Ok(usable);
            }
        }
        if is_hex(reference) && reference.len() < 64 {
            let mut usable = self.node.list_networks(&format!("{TENANT_LABEL}={}", self.tenant)).await?;
            for shared in SHARED_NETWORKS {
                usable.extend(self.node.inspect_network(shared).await?);
            }
            let mut matches = usable
                .iter()
                .filter(|n| n.get("Id").and_then(Value::as_str).is_some_and(|id| id.starts_with(reference)))
                .filter_map(|n| self.usable(n));
            let first = matches.next();
            let more = matches.count();
            if more > 0 {
                return Err(ResolveError::AmbiguousNetwork { prefix: reference.to_string(), count: more + 1 });
            }
            if let Some(n) = first {
                return Ok(n);
            }
        }
        Err(ResolveError::not_found(Object::Network, reference))
    }

    /// The network as the tenant may use it: its own, or a shared one.
    fn usable(&self, n: &Value) -> Option<UsableNetwork> {
        let name = n.get("Name").and_then(Value::as_str).unwrap_or_default().to_string();
        let id = n.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
        let shared = SHARED_NETWORKS.contains(&name.as_str());
        if !shared && label(n, "/Labels") != Some(self.tenant) {
            return None;
        }
        let default = !shared && crate::tenant::is_default_network(n);
        Some(UsableNetwork { id, name, shared, default })
    }

    /// The engine-side name of the tenant's volume.
    pub async fn volume(&self, name: &str) -> Result<String, ResolveError> {
        let scoped = names::scope(self.tenant, name);
        match self.node.inspect_volume(&scoped).await? {
            Some(v) if label(&v, "/Labels") == Some(self.tenant) => Ok(scoped),
            _ => Err(ResolveError::not_found(Object::Volume, name)),
        }
    }

    /// Checks that an exec instance runs in one of the tenant's containers.
    pub async fn exec(&self, id: &str) -> Result<(), ResolveError> {
        let missing = || ResolveError::not_found(Object::Exec, id);
        let Some(e) = self.node.inspect_exec(id).await? else { return Err(missing()) };
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
        self.node.create_volume(body).await?;
        // Another request may have made it first; either way it must be the tenant's.
        Ok(self.volume(name).await?)
    }
}

/// The tenant's containers, as `GET /containers/json?all=1` lists them.
pub async fn own_containers<L: Lookup + ?Sized>(node: &L, tenant: &str) -> Result<Vec<Value>, EngineError> {
    node.list_containers(&format!("{TENANT_LABEL}={tenant}")).await
}

/// dockerd's answer to an id prefix that fits several containers.
pub fn ambiguous(prefix: &str) -> ApiError {
    ResolveError::Ambiguous { prefix: prefix.to_string() }.into()
}

/// What the engine is asked, in turn, before id prefixes are matched: the full id, then the tenant's name for the
/// container (as the engine knows it). Either answers for itself whether the container is the tenant's (its
/// label), so a tenant's inspect sends the first one as its own request ([`crate::tenant::view::own_container`]).
pub fn direct_references(tenant: &str, reference: &str) -> impl Iterator<Item = String> {
    let reference = reference.trim_start_matches('/');
    let id = (is_hex(reference) && reference.len() == 64).then(|| reference.to_string());
    let name = names::valid_name(reference).then(|| names::scope(tenant, reference));
    id.into_iter().chain(name)
}

fn label<'v>(obj: &'v Value, labels_at: &str) -> Option<&'v str> {
    obj.pointer(labels_at)?.get(TENANT_LABEL)?.as_str()
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_errors_answer_as_dockerd() {
        let check = |e: ResolveError, status: u16, message: &str| {
            let e = ApiError::from(e);
            assert_eq!((e.status.as_u16(), e.message.as_str()), (status, message));
        };
        let missing = |object, reference: &str| ResolveError::not_found(object, reference);
        check(missing(Object::Container, "web"), 404, "No such container: web");
        check(missing(Object::Network, "back"), 404, "network back not found");
        check(missing(Object::Volume, "data"), 404, "get data: no such volume");
        check(missing(Object::Exec, "e1"), 404, "No such exec instance: e1");
        check(ResolveError::Ambiguous { prefix: "ab".into() }, 400, "Multiple IDs found with provided prefix: ab");
        check(ResolveError::HostNetwork, 403, "the host network is not available to tenants");
        assert_eq!(ApiError::from(ResolveError::HostNetwork).denial, Some(crate::api::DenyKind::Escape));
        // An engine's answer is classified once, by dockerd's words; anything else stays the engine's.
        let answer = |status: StatusCode, message: &str| EngineError::Answer {
            node: "n1".into(),
            status,
            message: message.into(),
        };
        let e =
            ResolveError::from_engine(answer(StatusCode::BAD_REQUEST, "Multiple IDs found with provided prefix: ab"));
        assert!(matches!(&e, ResolveError::Ambiguous { prefix } if prefix == "ab"), "{e:?}");
        let e = ResolveError::from_engine(answer(
            StatusCode::BAD_REQUEST,
            "network c is ambiguous (2 matches found based on ID prefix)",
        ));
        assert!(matches!(e, ResolveError::Engine(_)));
        check(e, 400, "network c is ambiguous (2 matches found based on ID prefix)");
        let e = ResolveError::from_engine(EngineError::Unavailable { node: "n1".into(), cause: "refused".into() });
        check(e, 503, "engine n1 is unavailable: refused");
    }

    #[test]
    fn a_network_id_prefix_is_matched_among_what_the_tenant_may_use_only() {
        use super::super::lookup::fake::FakeEngine;
        let engine = FakeEngine::default()
            .network(&format!("cc11{}", "0".repeat(60)), "t5-alice-back", Some("alice"), false)
            .network(&format!("cc22{}", "0".repeat(60)), "t3-bob-one", Some("bob"), false)
            .network(&format!("cc33{}", "0".repeat(60)), "t3-bob-two", Some("bob"), false)
            .network(&format!("dd44{}", "0".repeat(60)), "t3-bob-three", Some("bob"), false)
            .network(&format!("ee55{}", "0".repeat(60)), "bridge", None, false);
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let resolve = |tenant: &str, reference: &str| {
            let r = Resolver { node: &engine, tenant };
            rt.block_on(r.network(reference)).map(|n| n.name).map_err(|e| ApiError::from(e).message)
        };
        // The engine would say "ambiguous (3 matches ...)", telling alice of bob's networks: she gets hers.
        assert_eq!(resolve("alice", "cc"), Ok("t5-alice-back".to_string()));
        assert_eq!(resolve("bob", "cc"), Err("network cc is ambiguous (2 matches found based on ID prefix)".into()));
        // Another tenant's network by its prefix is missing, as on an engine without it; shared ones are usable.
        assert_eq!(resolve("alice", "dd4"), Err("network dd4 not found".into()));
        assert_eq!(resolve("alice", "ee5"), Ok("bridge".to_string()));
        assert_eq!(
            resolve("alice", &format!("cc22{}", "0".repeat(60))),
            Err(format!("network cc22{} not found", "0".repeat(60)))
        );
    }

    #[test]
    fn a_network_full_id_wins_over_a_network_named_by_it() {
        use super::super::lookup::fake::FakeEngine;
        let id = format!("ab12{}", "0".repeat(60));
        // moby's TestDockerNetworkDeletePreferID: a network named by another's full id, one by its prefix.
        let engine = FakeEngine::default()
            .network(&id, "t5-alice-test", Some("alice"), false)
            .network(&format!("cd34{}", "0".repeat(60)), &format!("t5-alice-{id}"), Some("alice"), false)
            .network(&format!("ef56{}", "0".repeat(60)), &format!("t5-alice-{}", &id[..12]), Some("alice"), false);
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let resolve = |reference: &str| {
            let r = Resolver { node: &engine, tenant: "alice" };
            rt.block_on(r.network(reference)).map(|n| n.name).map_err(|e| ApiError::from(e).message)
        };
        assert_eq!(resolve(&id), Ok("t5-alice-test".to_string()));
        assert_eq!(resolve(&id[..12]), Ok(format!("t5-alice-{}", &id[..12])));
        assert_eq!(resolve("ab1"), Ok("t5-alice-test".to_string()));
    }
}
