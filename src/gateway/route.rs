//! The routing phase in a cluster of several nodes: finding the node that holds an object (here), placing a new
//! one ([`super::placement`]), and fanning lists and streams out to every node ([`super::fanout`]).
//!
//! With one node every request goes to it and nothing here asks the engines anything more, so a single-engine
//! mtswarm costs no extra round trip.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::Value;

use super::{Forward, Gateway};
use crate::api::{ApiError, Endpoint, NetworkOp};
use crate::cluster::{EngineError, Node};
use crate::tenancy::{resolve, ResolveError, Resolver};
use crate::tenant::{encode, names, Scope};

/// An object a request names, to be found among the nodes.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    Container(String),
    Exec(String),
    Network(String),
    Volume(String),
    Image(String),
}

impl Probe {
    /// Docker's answer when the object exists nowhere.
    fn missing(&self) -> ApiError {
        match self {
            Probe::Container(r) => ApiError::not_found(format!("No such container: {r}")),
            Probe::Exec(r) => ApiError::not_found(format!("No such exec instance: {r}")),
            Probe::Network(r) => ApiError::not_found(format!("network {r} not found")),
            Probe::Volume(r) => ApiError::not_found(format!("get {r}: no such volume")),
            Probe::Image(r) => ApiError::not_found(format!("No such image: {r}")),
        }
    }
}

/// True for the endpoints whose body the cluster reads to route them (placement, the container a network
/// connect names, the name of a new network or volume).
pub(crate) fn placement_reads_body(endpoint: &Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::ContainerCreate
            | Endpoint::NetworkCreate
            | Endpoint::VolumeCreate
            | Endpoint::Network { op: NetworkOp::Connect | NetworkOp::Disconnect, .. }
    )
}

pub(crate) fn query_has(query: Option<&str>, key: &str) -> bool {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, v)| k == key && !v.is_empty())
}

pub(crate) fn query_get(query: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

impl Gateway {
    /// The node holding the object, among the healthy ones; `None` if no node has it. With one node, that node
    /// (it answers for itself).
    pub(crate) async fn find(&self, probe: &Probe, scope: &Scope) -> Result<Option<Arc<Node>>, ApiError> {
        Ok(self.find_all(probe, scope).await?.into_iter().next())
    }

    /// Every healthy node that holds the object (a multi-host network is on all of them).
    ///
    /// Each node says how its object matched the reference, and the best match across the cluster wins, in
    /// dockerd's order: a full id, then a name, then an id prefix. So `b` names the container called `b` even
    /// where another node holds a container whose id starts with `b`, and a prefix that fits containers on two
    /// nodes is as ambiguous as one that fits two on one engine.
    pub(crate) async fn find_all(&self, probe: &Probe, scope: &Scope) -> Result<Vec<Arc<Node>>, ApiError> {
        let nodes = self.cluster.healthy_nodes();
        let answers = futures_util::future::join_all(nodes.iter().map(|n| probe_one(n, probe, scope))).await;
        let mut matches = Vec::new();
        let mut failure = None;
        let mut ambiguous = None;
        for (node, answer) in nodes.iter().zip(answers) {
            match answer {
                Ok(Some(m)) => matches.push((m, node.clone())),
                Ok(None) => {}
                Err(e @ ResolveError::Ambiguous { .. }) => {
                    ambiguous.get_or_insert(ApiError::from(e));
                }
                Err(e) => match ApiError::from(e) {
                    e if e.status == StatusCode::SERVICE_UNAVAILABLE || e.status == StatusCode::BAD_GATEWAY => {
                        failure.get_or_insert(e);
                    }
                    e => return Err(e),
                },
            }
        }
        let best = matches.iter().map(|(m, _)| *m).min();
        let found: Vec<Arc<Node>> = matches.into_iter().filter(|(m, _)| Some(*m) == best).map(|(_, n)| n).collect();
        if best.is_none_or(|m| m == Match::Prefix) {
            if let Some(e) = ambiguous {
                return Err(e);
            }
            if found.len() > 1 {
                if let Probe::Container(r) = probe {
                    return Err(resolve::ambiguous(r));
                }
            }
        }
        match (found.is_empty(), failure) {
            (true, Some(e)) => Err(e),
            _ => Ok(found),
        }
    }

    /// The node holding the object, or the error a client gets: Docker's "no such" answer, or, for a container
    /// last seen on a node that is now unavailable, an error naming that node.
    pub(crate) async fn locate(&self, probe: &Probe, scope: &Scope) -> Result<Arc<Node>, ApiError> {
        let tenant = scope.tenant_str();
        if !self.cluster.is_cluster() {
            return self.cluster.any_node();
        }
        if let Some(n) = self.find(probe, scope).await? {
            return Ok(n);
        }
        if let Probe::Container(r) = probe {
            let r = r.trim_start_matches('/');
            let scoped = tenant.map(|t| names::scope(t, r));
            let holder = self.cluster.unavailable_holder(|c| {
                let mine = tenant.is_none_or(|t| c.tenant.as_deref() == Some(t));
                let by_name = c.name == scoped.as_deref().unwrap_or(r);
                mine && (by_name || (!r.is_empty() && c.id.starts_with(r)))
            });
            if let Some(n) = holder {
                let cause = n.facts().last_error.unwrap_or_default();
                return Err(ApiError::unavailable(format!(
                    "container {r} is on node {}, which is unavailable: {cause}",
                    n.name()
                )));
            }
        }
        Err(probe.missing())
    }

    /// The node an object request goes to.
    pub(crate) async fn locate_for(&self, req: &Forward<'_>, doc: Option<&Value>) -> Result<Arc<Node>, ApiError> {
        if !self.cluster.is_cluster() {
            return self.cluster.any_node();
        }
        let query = req.parts.uri.query();
        let probe = match req.endpoint {
            // A legacy link `parent/alias` is removed where its parent is.
            Endpoint::Container { id, .. } => {
                let id = id.trim_start_matches('/');
                Probe::Container(id.split_once('/').map_or(id, |(parent, _)| parent).to_string())
            }
            Endpoint::Exec { id, .. } => Probe::Exec(id.clone()),
            Endpoint::Volume { name, .. } => Probe::Volume(name.clone()),
            Endpoint::Network { op: NetworkOp::Connect | NetworkOp::Disconnect, id } => {
                // The container's node: a network a container joins must be where the container is.
                match doc.and_then(|d| field(d, "Container")).and_then(Value::as_str) {
                    Some(c) => Probe::Container(c.to_string()),
                    None => Probe::Network(id.clone()),
                }
            }
            Endpoint::Network { id, .. } => Probe::Network(id.clone()),
            Endpoint::Image { name, .. } => Probe::Image(name.clone()),
            Endpoint::ImagesSave => match query_get(query, "names") {
                Some(n) => Probe::Image(n),
                None => return self.cluster.any_node(),
            },
            Endpoint::Commit => match query_get(query, "container") {
                Some(c) => Probe::Container(c),
                None => return self.cluster.any_node(),
            },
            _ => return self.cluster.any_node(),
        };
        self.locate(&probe, req.scope).await
    }
}

/// An engine runs one prune of a kind at a time and refuses the next with 409 "a prune operation is already
/// running". On a shared engine that would make one tenant's prune fail because another tenant prunes: mtswarm
/// waits its turn instead, for a while.
pub(crate) struct PruneWait {
    deadline: tokio::time::Instant,
}

impl PruneWait {
    const PATIENCE: Duration = Duration::from_secs(30);

    pub(crate) fn new() -> PruneWait {
        PruneWait { deadline: tokio::time::Instant::now() + PruneWait::PATIENCE }
    }

    /// True (after a pause) if the answer says another prune is running and there is time to try again.
    pub(crate) async fn again(&self, status: StatusCode, body: &[u8]) -> bool {
        let busy = status == StatusCode::CONFLICT
            && crate::cluster::node::engine_message(body).contains("a prune operation is already running");
        if !busy || tokio::time::Instant::now() >= self.deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        true
    }
}

/// How an object matched the reference that names it, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    Id,
    Name,
    Prefix,
}

impl Match {
    /// How `reference` named the object with this id and (engine-side) name.
    fn of(reference: &str, id: &str, name: &str) -> Match {
        if id == reference {
            Match::Id
        } else if name.trim_start_matches('/') == reference {
            Match::Name
        } else {
            Match::Prefix
        }
    }
}

/// Whether a probe finds the object on `node`, and how: among the tenant's own objects, or any object for the
/// admin.
async fn probe_one(node: &Node, probe: &Probe, scope: &Scope) -> Result<Option<Match>, ResolveError> {
    let tenant = scope.tenant_str();
    let found = |r: Result<Match, ResolveError>| match r {
        Ok(m) => Ok(Some(m)),
        Err(ResolveError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    };
    if let Some(t) = tenant {
        let r = Resolver { node, tenant: t };
        return match probe {
            Probe::Container(c) => {
                let c = c.trim_start_matches('/');
                let scoped = names::scope(t, c);
                found(r.container(c).await.map(|o| {
                    if o.id == c {
                        Match::Id
                    } else if o.engine_name.trim_start_matches('/') == scoped {
                        Match::Name
                    } else {
                        Match::Prefix
                    }
                }))
            }
            Probe::Exec(e) => found(r.exec(e).await.map(|_| Match::Id)),
            Probe::Network(n) => found(r.network(n).await.map(|u| {
                if u.name == names::scope(t, n) || (u.shared && u.name == *n) {
                    Match::Name
                } else {
                    Match::of(n, &u.id, "")
                }
            })),
            Probe::Volume(v) => found(r.volume(v).await.map(|_| Match::Name)),
            Probe::Image(i) => inspect_match(node, &format!("/images/{}/json", encode(i)), i).await,
        };
    }
    let (path, reference) = match probe {
        Probe::Container(c) => {
            let c = c.trim_start_matches('/');
            (format!("/containers/{}/json", encode(c)), c)
        }
        Probe::Exec(e) => (format!("/exec/{}/json", encode(e)), e.as_str()),
        Probe::Network(n) => (format!("/networks/{}", encode(n)), n.as_str()),
        Probe::Volume(v) => (format!("/volumes/{}", encode(v)), v.as_str()),
        Probe::Image(i) => (format!("/images/{}/json", encode(i)), i.as_str()),
    };
    inspect_match(node, &path, reference).await
}

/// Inspects an object on the node and says how the reference matched it.
async fn inspect_match(node: &Node, path: &str, reference: &str) -> Result<Option<Match>, ResolveError> {
    match node.get_json(path).await {
        Ok(v) => {
            let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
            let id = text("Id").trim_start_matches("sha256:");
            let name = if v.get("Name").is_some() { text("Name") } else { reference };
            Ok(Some(if id == reference.trim_start_matches("sha256:") {
                Match::Id
            } else {
                Match::of(reference, id, name)
            }))
        }
        Err(EngineError::Answer { status: StatusCode::NOT_FOUND, .. }) => Ok(None),
        Err(e) => Err(ResolveError::from_engine(e)),
    }
}

/// A field of a canonical document ([`crate::api::decode`]).
pub(crate) fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|v| !v.is_null())
}

pub(crate) fn strings(v: &Value, name: &str) -> Vec<String> {
    field(v, name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}
