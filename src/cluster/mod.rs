//! The engines behind mtswarm: discovery (which engines), the node registry (what each one is), and
//! routing (which engine a request goes to).
//!
//! **Architecture Invariant:** every request that reaches an engine was sent to a node chosen by
//! [`Cluster::route`]. No other code picks a node, so the cluster work (several engines, scheduling,
//! fan-out lists) changes this module and not the request pipeline.

pub mod connector;
pub mod discovery;
pub mod etcd;
pub mod join;
pub mod node;

use std::sync::Arc;
use std::time::Duration;

use crate::api::{ApiError, ApiVersion, Endpoint};
pub use connector::EngineAddr;
pub use discovery::{Discovery, DiscoveryError};
pub use node::{EngineError, Node};

/// The API version mtswarm speaks when no engine has told it its own yet.
pub const DEFAULT_API_VERSION: &str = "1.41";

/// Where a classified request is sent.
pub enum Target {
    /// mtswarm answers it itself.
    Local,
    /// One engine answers it.
    Node(Arc<Node>),
}

/// The registry of nodes.
pub struct Cluster {
    nodes: Vec<Arc<Node>>,
}

impl Cluster {
    pub fn new(discovery: &Discovery, connect_timeout: Duration) -> Result<Cluster, String> {
        // The cluster registry that follows a file or etcd (through `Discovery::engines`) replaces this.
        let addrs = discovery.static_engines().ok_or_else(|| {
            format!(
                "{discovery}: file:// and etcd:// discovery are not wired into the cluster yet; \
                 give the engine URL or nodes://HOST:PORT"
            )
        })?;
        if addrs.len() != 1 {
            return Err(format!(
                "{} engines were given; this version of mtswarm fronts exactly one engine",
                addrs.len()
            ));
        }
        let nodes = addrs.into_iter().map(|a| Arc::new(Node::new(a, connect_timeout))).collect();
        Ok(Cluster { nodes })
    }

    pub fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }

    /// Refreshes every node's facts at once; failures are remembered on the node and logged.
    pub async fn refresh(&self) {
        let all = self.nodes.iter().map(|n| async move {
            if let Err(e) = n.refresh().await {
                tracing::warn!(node = %n.addr, cause = %e, "engine refresh failed");
            }
        });
        futures_util::future::join_all(all).await;
    }

    /// The highest API version every engine speaks: what mtswarm advertises and accepts.
    pub fn max_api_version(&self) -> ApiVersion {
        self.nodes
            .iter()
            .filter_map(|n| n.api_versions().1)
            .min()
            .unwrap_or_else(|| ApiVersion::parse(DEFAULT_API_VERSION).expect("a valid constant"))
    }

    /// The lowest API version every engine accepts.
    pub fn min_api_version(&self) -> ApiVersion {
        let floor = ApiVersion::parse(ApiVersion::MIN).expect("a valid constant");
        self.nodes.iter().filter_map(|n| n.api_versions().0).max().unwrap_or(floor.clone()).max(floor)
    }

    /// Chooses where a request goes. With one engine every object lives on it; the cluster work
    /// replaces this with lookups in the node registry and the scheduler.
    pub fn route(&self, endpoint: &Endpoint) -> Result<Target, ApiError> {
        if matches!(endpoint, Endpoint::Ping | Endpoint::Version | Endpoint::Info) {
            return Ok(Target::Local);
        }
        self.nodes
            .first()
            .cloned()
            .map(Target::Node)
            .ok_or_else(|| ApiError::unavailable("mtswarm has no engine to send the request to"))
    }
}
