//! The engines behind mtswarm: discovery (which engines), the node registry (what each one is and holds), and
//! placement (which engine takes a new container).
//!
//! The registry is followed while mtswarm runs: a discovery that can change (a file, etcd) is re-read every
//! `discovery_interval`, and every node's facts, containers and images are refreshed every `refresh_interval`.
//! A node that refuses a connection, or fails several refreshes, is unhealthy: it gets no new containers and
//! lists leave it out, until a refresh succeeds again.
//!
//! **Architecture Invariant:** nodes are chosen here and in the gateway's routing phase only: [`Cluster::route`]
//! says how an endpoint is routed, [`Cluster::place`] runs the scheduler for a new container and reserves room
//! for it, so that parallel creates see each other's choices.

pub mod connector;
pub mod discovery;
pub mod etcd;
pub mod join;
pub mod listing;
pub mod node;
pub mod pool;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use crate::api::{ApiError, ApiVersion, Endpoint, ImageOp, NetworkOp, PluginOp};
use crate::scheduler::{self, ContainerView, NoNode, NodeView, Placement, Strategy};
use crate::tenant::names;
pub use connector::EngineAddr;
pub use discovery::{Discovery, DiscoveryError};
pub use node::{CachedContainer, EngineError, EngineOptions, Node};

/// The API version mtswarm speaks when no engine has told it its own yet.
pub const DEFAULT_API_VERSION: &str = "1.41";

/// How the gateway routes an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// mtswarm answers it itself.
    Local,
    /// The node that holds the object the request names.
    Object,
    /// A new container: the scheduler chooses.
    Create,
    /// A new network or volume: the least loaded node, unless one already holds that name.
    NewObject,
    /// Every healthy node, answers merged.
    FanOut,
    /// Every healthy node, each sent the request's body: a plugin installed, upgraded or set everywhere, as
    /// Swarm classic did (a push: one node that has it).
    Everywhere,
    /// Any healthy node (registry and build requests).
    Any,
}

/// How the cluster is set up.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub discovery: Discovery,
    /// How every node is reached.
    pub engine: EngineOptions,
    pub strategy: Strategy,
}

/// The registry of nodes.
pub struct Cluster {
    config: ClusterConfig,
    nodes: RwLock<Vec<Arc<Node>>>,
    /// Held while a placement is chosen and reserved, so that parallel creates see each other.
    placing: Mutex<()>,
    tickets: AtomicU64,
}

/// A reservation made by [`Cluster::place`]; settle it once the engine has answered.
pub struct Ticket {
    pub node: Arc<Node>,
    id: u64,
}

impl Ticket {
    /// Ends the reservation; `created` is the new container's id if the engine made it.
    pub fn settle(self, created: Option<&str>) {
        self.node.settle(self.id, created);
    }
}

impl Cluster {
    pub fn new(config: ClusterConfig) -> Cluster {
        let nodes = match config.discovery.static_engines() {
            Some(addrs) => addrs.into_iter().map(|a| Arc::new(Node::new(a, &config.engine))).collect::<Vec<_>>(),
            None => Vec::new(),
        };
        Cluster { config, nodes: RwLock::new(nodes), placing: Mutex::new(()), tickets: AtomicU64::new(1) }
    }

    /// Every node, in discovery order.
    pub fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The container list answered from the registry, within `bounds` and in `view`, when every node is healthy and follows its
    /// events; `None` sends the request to the engines.
    /// The answer is written straight from each container's prepared entry: no copy of the registry.
    pub fn list_containers(
        &self,
        query: Option<&str>,
        bounds: &listing::Bounds,
        view: listing::View<'_>,
    ) -> Option<String> {
        let q = listing::parse_query(query)?;
        let compiled = listing::compile(&q)?;
        let nodes = self.nodes();
        if nodes.is_empty() || !nodes.iter().all(|n| n.healthy() && n.synced()) {
            return None;
        }
        let mut chosen = Vec::new();
        for n in &nodes {
            n.with_containers(|held| {
                for c in held.values() {
                    let Some(listed) = &c.listed else { continue };
                    if listing::selected(listed, &q, &compiled) {
                        chosen.push(listed.clone());
                    }
                }
            });
        }
        Some(listing::answer(chosen, &q, bounds, view, std::time::SystemTime::now()))
    }

    /// Follows every node's events (the registry of a cluster answers lists itself).
    pub fn watch_all(&self) {
        for n in self.nodes() {
            n.watch();
        }
    }

    /// The nodes that answer.
    pub fn healthy_nodes(&self) -> Vec<Arc<Node>> {
        self.nodes().into_iter().filter(|n| n.healthy()).collect()
    }

    /// True unless the discovery is one engine URL: objects must then be looked for among the nodes and new
    /// containers placed by the scheduler, even while only one node is left.
    pub fn is_cluster(&self) -> bool {
        !matches!(self.config.discovery, Discovery::Engine(_))
    }

    pub fn strategy(&self) -> Strategy {
        self.config.strategy
    }

    /// Re-reads a discovery that can change and adds and removes nodes; new nodes are refreshed at once.
    pub async fn follow_discovery(&self) {
        if !self.config.discovery.follows() {
            return;
        }
        let addrs = match self.config.discovery.engines().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(cause = %e, "discovery failed; keeping the nodes known");
                return;
            }
        };
        let mut added = Vec::new();
        {
            let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
            let before = nodes.len();
            nodes.retain(|n| {
                let keep = addrs.contains(&n.addr);
                if !keep {
                    tracing::info!(node = %n.addr, "node left the cluster");
                    n.stop_watching();
                }
                keep
            });
            let removed = before - nodes.len();
            let mut next: Vec<Arc<Node>> = Vec::with_capacity(addrs.len());
            for a in &addrs {
                match nodes.iter().find(|n| &n.addr == a) {
                    Some(n) => next.push(n.clone()),
                    None => {
                        let n = Arc::new(Node::new(a.clone(), &self.config.engine));
                        tracing::info!(node = %a, "node joined the cluster");
                        added.push(n.clone());
                        next.push(n);
                    }
                }
            }
            if removed > 0 || !added.is_empty() {
                *nodes = next;
            }
        }
        let refreshes = added.iter().map(|n| refresh_node(n));
        futures_util::future::join_all(refreshes).await;
        for n in &added {
            n.watch();
        }
    }

    /// Refreshes every node's facts at once; failures are remembered on the node and logged.
    pub async fn refresh(&self) {
        let nodes = self.nodes();
        let all = nodes.iter().map(|n| async move {
            if let Err(e) = n.refresh().await {
                tracing::debug!(node = %n.addr, cause = %e, "engine refresh failed");
            }
        });
        futures_util::future::join_all(all).await;
    }

    /// Refreshes every node's facts, containers and images.
    pub async fn refresh_all(&self) {
        let nodes = self.nodes();
        futures_util::future::join_all(nodes.iter().map(|n| refresh_node(n))).await;
    }

    /// The highest API version every engine speaks: what mtswarm advertises and accepts.
    pub fn max_api_version(&self) -> ApiVersion {
        self.nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|n| n.api_versions().1)
            .min()
            .unwrap_or_else(|| ApiVersion::parse(DEFAULT_API_VERSION).expect("a valid constant"))
    }

    /// The lowest API version every engine accepts.
    pub fn min_api_version(&self) -> ApiVersion {
        let nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner());
        nodes.iter().filter_map(|n| n.api_versions().0).fold(ApiVersion::min(), Ord::max)
    }

    /// How an endpoint is routed.
    pub fn route(&self, endpoint: &Endpoint) -> Route {
        use Endpoint as E;
        match endpoint {
            // Swarm mode, checkpoints (experimental) and CORS preflights are answered as one engine answers them.
            E::Ping | E::Version | E::Info | E::Usage | E::Options | E::SwarmMode(_) | E::Checkpoint { .. } => {
                Route::Local
            }
            // The plugins of every node; one that changes a plugin does so wherever the plugin is.
            E::PluginList
            | E::Plugin { op: PluginOp::Inspect | PluginOp::Delete | PluginOp::Enable | PluginOp::Disable, .. } => {
                Route::FanOut
            }
            E::PluginPull
            | E::PluginCreate
            | E::Plugin { op: PluginOp::Upgrade | PluginOp::Push | PluginOp::Set, .. } => Route::Everywhere,
            // A BuildKit session goes where builds go (`any_node` is the same node for both).
            E::PluginPrivileges | E::Session | E::Grpc => Route::Any,
            E::Events
            | E::SystemDf
            | E::ContainerList
            | E::ContainerPrune
            | E::NetworkList
            | E::NetworkPrune
            | E::VolumeList
            | E::VolumePrune
            | E::ImageList
            | E::ImagePrune
            | E::BuildPrune
            | E::ImageCreate => Route::FanOut,
            E::Image { op: ImageOp::Delete | ImageOp::Tag, .. } => Route::FanOut,
            E::ContainerCreate => Route::Create,
            E::NetworkCreate | E::VolumeCreate => Route::NewObject,
            E::Container { .. } | E::Exec { .. } | E::Volume { .. } | E::Commit => Route::Object,
            E::Network {
                op: NetworkOp::Inspect | NetworkOp::Delete | NetworkOp::Connect | NetworkOp::Disconnect,
                ..
            } => Route::Object,
            E::Image { .. } | E::ImagesSave => Route::Object,
            E::Auth | E::ImageSearch | E::DistributionInspect { .. } | E::ImageLoad | E::Build | E::BuildCancel => {
                Route::Any
            }
        }
    }

    /// The first healthy node, for requests any node can answer.
    pub fn any_node(&self) -> Result<Arc<Node>, ApiError> {
        let nodes = self.nodes();
        nodes
            .iter()
            .find(|n| n.healthy())
            .or(nodes.first())
            .cloned()
            .ok_or_else(|| ApiError::unavailable("mtswarm has no engine to send the request to"))
    }

    /// Chooses the node for a new container and reserves room there, as `reservation` describes it. `tenant` is
    /// who asks (`None`: the admin or no tenancy), for the names affinities see.
    pub fn place(
        &self,
        tenant: Option<&str>,
        placement: &Placement,
        reservation: CachedContainer,
    ) -> Result<Ticket, NoNode> {
        let _placing = self.placing.lock().unwrap_or_else(|e| e.into_inner());
        let nodes = self.nodes();
        let views: Vec<NodeView> = nodes.iter().map(|n| view(n, tenant)).collect();
        let seed = self.tickets.fetch_add(1, Ordering::Relaxed) ^ random_seed();
        let chosen = scheduler::schedule(&views, placement, self.config.strategy, seed)?;
        let node = nodes[chosen].clone();
        let id = self.tickets.fetch_add(1, Ordering::Relaxed);
        node.reserve(id, reservation);
        Ok(Ticket { node, id })
    }

    /// The least loaded healthy node, for a new network or volume.
    pub fn least_loaded(&self) -> Result<Arc<Node>, ApiError> {
        let nodes = self.nodes();
        let views: Vec<NodeView> = nodes.iter().map(|n| view(n, None)).collect();
        let p = Placement::default();
        match scheduler::schedule(&views, &p, Strategy::Spread, 0) {
            Ok(i) => Ok(nodes[i].clone()),
            Err(e) => Err(ApiError::unavailable(e.message)),
        }
    }

    /// The node whose cached holdings have a container that `matches`, among the unhealthy ones: a request for
    /// it gets a clear error naming the node rather than "no such container".
    pub fn unavailable_holder(&self, matches: impl Fn(&CachedContainer) -> bool) -> Option<Arc<Node>> {
        self.nodes().into_iter().filter(|n| !n.healthy()).find(|n| n.holdings().containers.values().any(&matches))
    }
}

/// Refreshes one node: facts first (they decide health), then what it holds.
async fn refresh_node(n: &Node) {
    n.close_idle();
    match n.refresh().await {
        Ok(()) => {
            if let Err(e) = n.refresh_holdings().await {
                tracing::debug!(node = %n.addr, cause = %e, "engine refresh of containers failed");
            }
        }
        Err(e) => tracing::debug!(node = %n.addr, cause = %e, "engine refresh failed"),
    }
}

/// A node as the scheduler sees it, with the container names `tenant` knows.
fn view(n: &Node, tenant: Option<&str>) -> NodeView {
    let facts = n.facts();
    let info = facts.info.as_deref().cloned().unwrap_or(Value::Null);
    let s = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut labels: BTreeMap<String, String> = info
        .get("Labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str()?.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let name = facts.name.clone().unwrap_or_else(|| n.addr.to_string());
    labels.insert("node".into(), name.clone());
    labels.insert("storagedriver".into(), s("Driver"));
    labels.insert("kernelversion".into(), s("KernelVersion"));
    labels.insert("operatingsystem".into(), s("OperatingSystem"));
    let holdings = n.holdings();
    let containers = holdings
        .containers
        .values()
        .map(|c| {
            let names = match tenant {
                None => vec![c.name.clone()],
                Some(t) if c.tenant.as_deref() == Some(t) => {
                    names::unscope(t, &c.name).map(|n| vec![n.into_owned()]).unwrap_or_default()
                }
                Some(_) => Vec::new(),
            };
            ContainerView {
                id: c.id.clone(),
                names,
                image: c.image.clone(),
                labels: c.labels.clone(),
                memory: c.memory,
                nano_cpus: c.nano_cpus,
                published: c.published.clone(),
            }
        })
        .collect();
    NodeView {
        name,
        id: facts.id.clone().unwrap_or_default(),
        addr: n.addr.to_string(),
        healthy: !facts.unhealthy && facts.info.is_some(),
        labels,
        total_memory: info.get("MemTotal").and_then(Value::as_i64).unwrap_or(0),
        total_cpus: info.get("NCPU").and_then(Value::as_i64).unwrap_or(0),
        containers,
        images: holdings.images,
    }
}

fn random_seed() -> u64 {
    crate::random::bytes::<8>().map(u64::from_le_bytes).unwrap_or(0)
}
