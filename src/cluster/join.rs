//! `mtswarm join`: registers one engine in etcd discovery and keeps it registered, as Swarm classic's
//! `swarm join` did. The key `/<prefix>/docker/swarm/nodes/<host:port>` holds `<host:port>` and hangs on a
//! lease of `--ttl` seconds that is renewed every `--heartbeat` seconds. If join dies, the key goes when the
//! lease runs out; if join is stopped (SIGTERM, ctrl-c), it deletes the key so that the engine leaves at once.
//!
//! join never gives up while it runs: an etcd that is down or has lost the lease (a restart without its
//! data) costs one log line per heartbeat, and the registration is made again as soon as etcd answers.

use std::future::Future;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use super::connector::EngineAddr;
use super::discovery::{etcd_node_key, Discovery, DiscoveryError};
use super::etcd::{Etcd, EtcdError, Lease};

/// The longest one etcd request may take; shorter when the heartbeat is, so that a hung etcd cannot
/// make join miss renewals.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// `join` as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct RawJoin {
    /// The engine's Docker API address as managers reach it: HOST:PORT, e.g. 10.0.0.5:2375.
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: String,
    /// Seconds between renewals of the registration.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub heartbeat: u64,
    /// Seconds the registration outlives its last renewal: how long a dead engine stays listed.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub ttl: u64,
    /// Where to register: etcd://HOST:PORT[,HOST:PORT]/PREFIX.
    #[arg(value_name = "DISCOVERY")]
    pub discovery: String,
    /// With --node-tlscert and --node-tlskey: the engine is checked over mutual TLS, as managers reach it.
    #[arg(long = "node-tlscacert", env = "SWARM_NODE_TLSCACERT")]
    pub node_tlscacert: Option<String>,
    #[arg(long = "node-tlscert", env = "SWARM_NODE_TLSCERT")]
    pub node_tlscert: Option<String>,
    #[arg(long = "node-tlskey", env = "SWARM_NODE_TLSKEY")]
    pub node_tlskey: Option<String>,
}

/// The checked configuration of `join`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinConfig {
    /// `host:port` as registered (an IPv6 host in brackets): the key's last segment and its value.
    pub advertise: String,
    /// The etcd client endpoints, `host:port`.
    pub endpoints: Vec<String>,
    /// The etcd prefix, without leading or trailing slashes.
    pub prefix: String,
    pub heartbeat: Duration,
    pub ttl: Duration,
    /// How the engine is checked before it is registered: over mutual TLS when given.
    pub node_tls: Option<crate::tls::NodeTlsConfig>,
}

/// Why `join` cannot start, or did not leave cleanly.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The DISCOVERY argument does not parse.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The discovery is not etcd: a file or a list is the operator's to edit, there is nothing to register in.
    #[error(
        "{url}: mtswarm join registers engines in etcd (etcd://HOST:PORT/PREFIX) only; \
         with this discovery, add the engine's address to it yourself"
    )]
    NotEtcd { url: String },
    /// `--advertise` is not a TCP `HOST:PORT`.
    #[error("--advertise {value}: {reason}")]
    Advertise { value: String, reason: String },
    /// `--heartbeat` and `--ttl` do not give a registration that outlives the time between renewals.
    #[error("{0}")]
    Timing(String),
    /// On leaving, the key could not be deleted: the engine stays listed until its lease runs out. (The
    /// message carries the cause, so that one log line says it all; it is not also a `source`.)
    #[error("could not delete {key} on leaving, so it stays listed for up to {} s more: {cause}", ttl.as_secs())]
    Leave { key: String, ttl: Duration, cause: EtcdError },
}

impl JoinConfig {
    pub fn from_raw(raw: &RawJoin) -> Result<JoinConfig, JoinError> {
        let (endpoints, prefix) = match Discovery::parse(&raw.discovery)? {
            Discovery::Etcd { endpoints, prefix } => (endpoints, prefix),
            other => return Err(JoinError::NotEtcd { url: other.to_string() }),
        };
        let advertise_error = |reason: String| JoinError::Advertise { value: raw.advertise.clone(), reason };
        let advertise = match EngineAddr::parse(&raw.advertise).map_err(advertise_error)? {
            EngineAddr::Tcp { port: 0, .. } => return Err(advertise_error("port 0 is not a port".to_string())),
            a @ EngineAddr::Tcp { .. } => a.authority(),
            EngineAddr::Unix(_) => {
                return Err(advertise_error("managers reach engines over TCP: give HOST:PORT".to_string()))
            }
        };
        if raw.heartbeat == 0 {
            return Err(JoinError::Timing("--heartbeat 0: give at least one second".to_string()));
        }
        if raw.ttl <= raw.heartbeat {
            return Err(JoinError::Timing(format!(
                "--ttl {} must be more than --heartbeat {}, or the registration lapses between renewals",
                raw.ttl, raw.heartbeat
            )));
        }
        let node_tls = match (&raw.node_tlscacert, &raw.node_tlscert, &raw.node_tlskey) {
            (None, None, None) => None,
            (Some(ca), Some(cert), Some(key)) => {
                Some(crate::tls::NodeTlsConfig { ca: ca.into(), cert: cert.into(), key: key.into() })
            }
            _ => {
                return Err(JoinError::Timing(
                    "--node-tlscacert, --node-tlscert and --node-tlskey are given together".to_string(),
                ))
            }
        };
        Ok(JoinConfig {
            node_tls,
            advertise,
            endpoints,
            prefix,
            heartbeat: Duration::from_secs(raw.heartbeat),
            ttl: Duration::from_secs(raw.ttl),
        })
    }

    /// The key this engine registers under.
    pub fn key(&self) -> String {
        etcd_node_key(&self.prefix, &self.advertise)
    }

    fn url(&self) -> String {
        Discovery::Etcd { endpoints: self.endpoints.clone(), prefix: self.prefix.clone() }.to_string()
    }
}

/// Registers, renews every heartbeat until `shutdown` completes, then deletes the key. Failures while
/// running are logged and retried; only a failed delete on leaving is returned.
pub async fn run(config: JoinConfig, shutdown: impl Future<Output = ()>) -> Result<(), JoinError> {
    let etcd = Etcd::new(config.endpoints.clone(), config.heartbeat.min(MAX_REQUEST_TIMEOUT));
    let key = config.key();
    tracing::info!(
        etcd = %config.url(),
        %key,
        heartbeat = config.heartbeat.as_secs(),
        ttl = config.ttl.as_secs(),
        "joining"
    );
    check_engine(&config).await;
    let mut registration = Registration { etcd: &etcd, config: &config, key: &key, lease: None };
    let mut ticks = tokio::time::interval(config.heartbeat);
    // After a stall (a suspended host), renew once and keep the rhythm, rather than renew in a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticks.tick() => {}
        }
        // A renewal cut short by the shutdown is harmless: the delete below follows it, and a put that
        // etcd applies after the delete only leaves the key until its lease runs out.
        tokio::select! {
            _ = &mut shutdown => break,
            _ = registration.renew() => {}
        }
    }
    match etcd.delete(key.as_bytes()).await {
        Ok(existed) => {
            tracing::info!(%key, existed, "left: the key is deleted");
            Ok(())
        }
        Err(cause) => Err(JoinError::Leave { key, ttl: config.ttl, cause }),
    }
}

/// Asks the engine who it is, as managers will reach it (over mutual TLS with `--node-tls*`), and says
/// what it found; an engine that does not answer yet is registered all the same, as managers retry it.
async fn check_engine(config: &JoinConfig) {
    let tls = match config.node_tls.as_ref().map(crate::tls::client_config) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return tracing::warn!(cause = %e, "cannot check the engine"),
    };
    let Ok(addr) = EngineAddr::parse(&config.advertise) else { return };
    let opts = crate::cluster::EngineOptions { tls, ..crate::cluster::EngineOptions::plain(Duration::from_secs(5)) };
    let node = crate::cluster::Node::new(addr, &opts);
    match node.get_json("/version").await {
        Ok(v) => tracing::info!(
            engine = %config.advertise,
            version = v.get("Version").and_then(|v| v.as_str()).unwrap_or("?"),
            tls = config.node_tls.is_some(),
            "the engine answers"
        ),
        Err(e) => tracing::warn!(engine = %config.advertise, cause = %e, "the engine does not answer (yet)"),
    }
}

/// The registration as join knows it: the lease that holds the key, once granted.
struct Registration<'a> {
    etcd: &'a Etcd,
    config: &'a JoinConfig,
    key: &'a str,
    lease: Option<i64>,
}

impl Registration<'_> {
    /// One heartbeat: renew the lease, or (when there is none, or etcd lost it) register again.
    async fn renew(&mut self) {
        if let Some(lease) = self.lease {
            match self.etcd.keepalive(lease).await {
                Ok(Some(_)) => {
                    tracing::debug!(key = self.key, lease, "renewed");
                    return;
                }
                Ok(None) => {
                    // The key went with the lease. etcd restarted without its data, or join could not renew
                    // for a whole TTL.
                    tracing::warn!(key = self.key, lease, "the lease is gone, and the key with it; registering again");
                    self.lease = None;
                }
                Err(e) => {
                    // The lease may well be alive still: try it again at the next heartbeat.
                    tracing::warn!(key = self.key, lease, cause = %e, "cannot renew the registration");
                    return;
                }
            }
        }
        match self.register().await {
            Ok(lease) => {
                tracing::info!(key = self.key, lease = lease.id, ttl = lease.ttl.as_secs(), "registered");
                self.lease = Some(lease.id);
            }
            Err(e) => tracing::warn!(key = self.key, cause = %e, "cannot register; trying again at the next heartbeat"),
        }
    }

    /// A new lease, and the key put on it. A lease granted for a put that then fails is left to expire.
    async fn register(&self) -> Result<Lease, EtcdError> {
        let lease = self.etcd.grant(self.config.ttl).await?;
        self.etcd.put(self.key.as_bytes(), self.config.advertise.as_bytes(), Some(lease.id)).await?;
        Ok(lease)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected` is the registration's key, heartbeat and TTL, or (starting with `error: `) a part of the
    /// error.
    fn check(args: (&str, u64, u64, &str), expected: &str) {
        let (advertise, heartbeat, ttl, discovery) = args;
        let raw = RawJoin {
            advertise: advertise.into(),
            heartbeat,
            ttl,
            discovery: discovery.into(),
            node_tlscacert: None,
            node_tlscert: None,
            node_tlskey: None,
        };
        let got = match JoinConfig::from_raw(&raw) {
            Ok(c) => format!(
                "{} = {} every {} s, ttl {} s, via {:?}",
                c.key(),
                c.advertise,
                c.heartbeat.as_secs(),
                c.ttl.as_secs(),
                c.endpoints
            ),
            Err(e) => format!("error: {e}"),
        };
        if let Some(part) = expected.strip_prefix("error: ") {
            assert!(got.starts_with("error: ") && got.contains(part), "{args:?}\n  got: {got}\n want: {expected}");
        } else {
            assert_eq!(got, expected, "{args:?}");
        }
    }

    #[test]
    fn checks_join_arguments() {
        check(
            ("10.0.0.5:2375", 20, 60, "etcd://127.0.0.1:2379/mtswarm"),
            r#"/mtswarm/docker/swarm/nodes/10.0.0.5:2375 = 10.0.0.5:2375 every 20 s, ttl 60 s, via ["127.0.0.1:2379"]"#,
        );
        check(
            ("tcp://[::1]:2375", 1, 3, "etcd://a:1,b:2/x/y/"),
            r#"/x/y/docker/swarm/nodes/[::1]:2375 = [::1]:2375 every 1 s, ttl 3 s, via ["a:1", "b:2"]"#,
        );
        check(
            ("h:2375", 20, 60, "etcd://e:2379"),
            r#"/docker/swarm/nodes/h:2375 = h:2375 every 20 s, ttl 60 s, via ["e:2379"]"#,
        );
        check(("h:2375", 20, 60, "file:///etc/engines"), "error: file:///etc/engines: mtswarm join registers");
        check(("h:2375", 20, 60, "nodes://a:1"), "error: nodes://a:1: mtswarm join registers engines in etcd");
        check(("h:2375", 20, 60, "consul://c:8500/p"), "error: consul://c:8500/p: consul:// discovery is not");
        check(("h:2375", 20, 60, "etcd:///p"), "error: etcd:///p: etcd:// needs at least one endpoint");
        check(("h", 20, 60, "etcd://e:2379/p"), "error: --advertise h: h: an engine address is");
        check(("h:0", 20, 60, "etcd://e:2379/p"), "error: --advertise h:0: port 0");
        check(("unix:///run/docker.sock", 20, 60, "etcd://e:2379/p"), "error: --advertise unix:///run/docker.sock: ");
        check(("h:2375", 0, 60, "etcd://e:2379/p"), "error: --heartbeat 0");
        check(("h:2375", 20, 20, "etcd://e:2379/p"), "error: --ttl 20 must be more than --heartbeat 20");
    }
}
