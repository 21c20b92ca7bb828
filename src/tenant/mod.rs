//! The tenant vocabulary, pure: the ownership label, engine-side names ([`names`]), which networks are shared,
//! how an engine's answer is shown to a tenant ([`Answer`], [`view`]), and who is asking ([`Scope`], [`TenantId`]).
//! It knows nothing of engines or HTTP; `tenancy` does the resolving, over a [`crate::tenancy::Lookup`].

pub mod names;
pub mod sparse;
pub mod view;

use serde_json::Value;

/// The label that says which tenant owns an object.
pub const TENANT_LABEL: &str = "mtswarm.tenant";

/// The tenant a container belongs to, from its inspect: its `mtswarm.tenant` label. Resolving a reference and a
/// tenant's inspect sent as it came both decide by it.
pub fn container_owner(inspect: &Value) -> Option<&str> {
    at(inspect, &["Config", "Labels"])?.get(TENANT_LABEL)?.as_str()
}

/// The value at a path of member names, `&["HostConfig", "Links"]`: [`Value::pointer`] without the two strings it
/// allocates for each step.
pub fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// [`at`], to change what is there.
pub fn at_mut<'v>(v: &'v mut Value, path: &[&str]) -> Option<&'v mut Value> {
    path.iter().try_fold(v, |v, k| v.get_mut(k))
}

/// What is escaped in a path segment: everything but the characters of names and ids.
pub const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// A name or id made safe for a path segment (or a query value).
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

/// Networks every tenant may use; they belong to no tenant. Where tenants have default networks of their own
/// ([`bridge`]), a tenant's `bridge` is its own network, and the engine's is only shown until it has one.
pub const SHARED_NETWORKS: [&str; 2] = ["bridge", "none"];

/// How the engine's answer is turned into the tenant's view.
#[derive(Debug, Clone)]
pub enum Answer {
    /// As it is, except that error messages lose the tenant's prefix.
    Pass,
    /// As it is, and error messages name the object as the tenant named it (`user`), not by the engine-side
    /// reference it was sent (`engine`, a container's id).
    Named {
        engine: String,
        user: String,
    },
    ContainerInspect,
    /// `name` filters are applied here, on the names the tenant knows.
    ContainerList {
        names: Vec<String>,
    },
    NetworkInspect,
    NetworkList,
    VolumeInspect,
    VolumeList,
    Prune,
    SystemDf,
    Events,
    /// A stream of stats samples (or one).
    Stats,
}

/// Marks a tenant's default network, which the tenant did not create: it counts in no quota and is not pruned.
pub const DEFAULT_NETWORK_LABEL: &str = "mtswarm.default-network";
/// The name under which a tenant sees its default network, as on a plain engine.
pub const DEFAULT_NETWORK: &str = "bridge";

/// Whether an engine's network (inspect or list entry) is a tenant's default network.
pub fn is_default_network(n: &Value) -> bool {
    at(n, &["Labels"]).and_then(|l| l.get(DEFAULT_NETWORK_LABEL)).is_some()
}

/// The names by which a create body asks for the engine's default network: dockerd reads an empty
/// `NetworkMode`, `default` and `bridge` as it, and an endpoint keyed `bridge` or `default` joins it.
pub fn is_default_name(name: &str) -> bool {
    matches!(name, "" | "default" | DEFAULT_NETWORK)
}

/// Whether a create body (the decoder's canonical document) puts the container on the default network.
pub fn uses_default(doc: &Value) -> bool {
    let mode = at(doc, &["HostConfig", "NetworkMode"]).and_then(Value::as_str).unwrap_or_default();
    let endpoints = at(doc, &["NetworkingConfig", "EndpointsConfig"]).and_then(Value::as_object);
    is_default_name(mode) || endpoints.is_some_and(|eps| eps.keys().any(|k| is_default_name(k)))
}

/// Whether a create body may put the container on the default network: [`uses_default`], or a network named by
/// what may be an id (the engine's `bridge` has one too), which only resolving tells.
pub fn may_use_default(doc: &Value) -> bool {
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let mode = at(doc, &["HostConfig", "NetworkMode"]).and_then(Value::as_str).unwrap_or_default();
    let endpoints = at(doc, &["NetworkingConfig", "EndpointsConfig"]).and_then(Value::as_object);
    uses_default(doc) || hex(mode) || endpoints.is_some_and(|eps| eps.keys().any(|k| hex(k)))
}

/// A tenant's id: 1 to 64 of `[A-Za-z0-9_.-]`, starting with a letter or digit. Keystone's ids (32 hex digits)
/// fit, and so does every id that can safely be part of an engine-side object name. Checked once, where an id
/// enters mtswarm (a token, a certificate's name, the configuration); every later use holds a `TenantId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// The id, if `s` is a valid one.
    pub fn new(s: impl Into<String>) -> Option<TenantId> {
        let s = s.into();
        TenantId::valid(&s).then_some(TenantId(s))
    }

    pub fn valid(s: &str) -> bool {
        (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
            && s.as_bytes()[0].is_ascii_alphanumeric()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for TenantId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for TenantId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whom a request acts for: the operator (the admin tenant, or everyone when multi-tenancy is off), who sees and
/// may do everything, or a tenant, scoped to its own objects and limited by policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Operator,
    Tenant(TenantId),
}

impl Scope {
    /// The tenant, unless the operator.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Scope::Operator => None,
            Scope::Tenant(t) => Some(t),
        }
    }

    /// The tenant's id as text, unless the operator.
    pub fn tenant_str(&self) -> Option<&str> {
        self.tenant().map(TenantId::as_str)
    }
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
    }
}
