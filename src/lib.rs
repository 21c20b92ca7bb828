//! mtswarm: a multi-tenant Docker Engine API endpoint in front of a cluster of real Docker engines.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod auth;
pub mod body;
pub mod cluster;
pub mod config;
pub mod gateway;
pub mod ops;
pub mod policy;
pub mod proxy;
pub mod random;
pub mod replication;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod tenancy;
pub mod tenant;
pub mod tls;
pub mod usage_cli;

#[cfg(test)]
mod layers;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use std::time::Duration;

use config::{Config, ListenAddr};
use server::Listener;

/// Binds every configured address. A stale unix socket file (nobody listening) is replaced.
pub async fn bind(config: &Config) -> anyhow::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for addr in &config.listen {
        match addr {
            ListenAddr::Tcp(a) => {
                let l =
                    tokio::net::TcpListener::bind(a).await.with_context(|| format!("cannot listen on tcp://{a}"))?;
                out.push(Listener::Tcp(l));
            }
            ListenAddr::Unix(p) => {
                if p.exists() && std::os::unix::net::UnixStream::connect(p).is_err() {
                    let _ = std::fs::remove_file(p);
                }
                let l = tokio::net::UnixListener::bind(p)
                    .with_context(|| format!("cannot listen on unix://{}", p.display()))?;
                out.push(Listener::Unix(l, p.clone()));
            }
        }
    }
    Ok(out)
}

/// A `manage` ready to serve: every file read and checked, so start-up errors come before listening.
pub struct Manager {
    config: Config,
    gateway: Arc<gateway::Gateway>,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The `--metrics-addr` listener, bound by the caller.
    ops: Option<tokio::net::TcpListener>,
    /// `--replication`: the election this manager takes part in.
    replication: Option<Arc<replication::Replication>>,
}

impl Manager {
    pub fn new(config: Config) -> anyhow::Result<Manager> {
        let node_tls = match &config.node_tls {
            Some(t) => Some(tls::client_config(t).map_err(anyhow::Error::msg)?),
            None => None,
        };
        proxy::set_answer_limit(config.limits.engine_answer_limit);
        // Before any engine client: each keeps a connection pool per serving thread.
        runtime::configure(config.threads);
        let cluster = cluster::Cluster::new(cluster::ClusterConfig {
            discovery: config.discovery.clone(),
            engine: cluster::EngineOptions {
                connect_timeout: config.engine_connect_timeout,
                tls: node_tls,
                call_timeout: config.limits.engine_timeout,
                // mtswarm's own reads (whole engines' lists for the registry) may be larger than a tenant's answer.
                answer_limit: config.limits.engine_answer_limit.saturating_mul(4),
            },
            strategy: config.strategy,
        });
        let mut auth = authenticator(&config.auth)?;
        let tls = match &config.tls {
            Some(t) => Some(tls::server_config(t).map_err(anyhow::Error::msg)?),
            None => None,
        };
        if let Some(path) = &config.tls_cn_tenants {
            if config.tls.as_ref().is_none_or(|t| t.client_ca.is_none()) {
                anyhow::bail!("--tls-cn-tenants needs --tlsverify: only verified certificates may stand for a tenant");
            }
            let map = tls::load_cn_tenants(path).map_err(anyhow::Error::msg)?;
            auth = auth.map(|a| a.with_cn_tenants(map));
        }
        let rules = gateway::PolicyRules {
            escape: policy::escape::EscapeRules { network_authorization: config.network_authorization },
            apifilter: config.apifilter.clone(),
            flavors: config.flavors.clone(),
            quota: config.quota.clone(),
            tenant_subnets: config.tenant_subnets.clone(),
            default_network: config.tenant_default_network,
        };
        if auth.is_some() && config.tenant_default_network == tenancy::DefaultNetwork::Shared {
            tracing::warn!(
                "--tenant-default-network shared: tenants' containers share each engine's default bridge and \
                 reach each other there unless the engines run with --icc=false"
            );
        }
        if auth.is_none() && (!rules.apifilter.is_empty() || rules.flavors.is_some() || rules.quota.is_some()) {
            tracing::warn!(
                "the API filter, flavors and quotas apply to tenants; with SWARM_MULTI_TENANT=false none applies"
            );
        }
        if let Some(f) = &rules.flavors {
            let names: Vec<String> = f.list().iter().map(|f| f.describe()).collect();
            tracing::info!(flavors = %names.join(", "), "flavors enforced");
        }
        if rules.quota.is_some() {
            tracing::info!("quota enforced");
        }
        let audit = match &config.audit_log {
            Some(target) => Some(ops::audit::Audit::open(target.clone()).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let replication = match &config.replication {
            None => None,
            Some(r) => {
                // Managers reach each other as their clients do, over mutual TLS when TLS is on: each shows its own
                // certificate, and checks the primary's against --tlscacert.
                let peer_tls = match &config.tls {
                    Some(t) => {
                        let ca = t.client_ca.clone().context("--replication with --tls needs --tlsverify")?;
                        let files = tls::NodeTlsConfig { ca, cert: t.cert.clone(), key: t.key.clone() };
                        Some(tls::client_config(&files).map_err(|e| anyhow::anyhow!("--replication over TLS: {e}"))?)
                    }
                    None => None,
                };
                tracing::info!(advertise = %r.advertise, ttl_s = r.ttl.as_secs_f64(), "replication: one of several managers");
                Some(Arc::new(replication::Replication::new(r.clone(), peer_tls, config.engine_connect_timeout)))
            }
        };
        let gateway = Arc::new(
            gateway::Gateway::new(Arc::new(cluster), auth, rules)
                .with_limits(config.limits.clone())
                .with_audit(audit)
                .with_replication(replication.clone()),
        );
        Ok(Manager { config, gateway, tls, ops: None, replication })
    }

    /// Serves metrics and health on this listener (see [`server::ops::bind`]).
    pub fn with_ops(mut self, listener: Option<tokio::net::TcpListener>) -> Manager {
        self.ops = listener;
        self
    }

    /// Serves on listeners the caller bound, until `shutdown` completes.
    pub async fn run(self, listeners: Vec<Listener>, shutdown: impl Future<Output = ()>) {
        let ops = self.ops.map(|l| tokio::spawn(server::ops::serve(l, self.gateway.clone())));
        let reloader = {
            let (gateway, files) = (self.gateway.clone(), self.config.policy_files.clone());
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reading the policy files again and reopening the audit log");
                    gateway.reload(&files);
                }
            })
        };
        let cluster = self.gateway.cluster.clone();
        // Learn the nodes and their API versions before the first client negotiates; an engine that is down is
        // retried by the refresh loop and does not stop mtswarm from starting.
        let first = async {
            cluster.follow_discovery().await;
            cluster.refresh_all().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), first).await;
        if cluster.is_cluster() {
            cluster.watch_all();
        }
        let refresher = {
            let (cluster, every) = (cluster.clone(), self.config.refresh_interval);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    cluster.refresh_all().await;
                }
            })
        };
        let follower = {
            let every = self.config.discovery_interval;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    cluster.follow_discovery().await;
                }
            })
        };
        // The election runs until the server has drained: a primary steps down (revokes its lease) only once
        // nothing it admitted is still in flight.
        let (stop_election, election_stops) = tokio::sync::oneshot::channel::<()>();
        let election = self.replication.map(|r| {
            tokio::spawn(r.run(async move {
                let _ = election_stops.await;
            }))
        });
        server::run(self.gateway, listeners, self.tls, shutdown).await;
        let _ = stop_election.send(());
        if let Some(election) = election {
            let _ = tokio::time::timeout(Duration::from_secs(5), election).await;
        }
        refresher.abort();
        follower.abort();
        reloader.abort();
        if let Some(ops) = ops {
            ops.abort();
        }
    }
}

/// Runs `manage` on listeners the caller bound, until `shutdown` completes.
pub async fn run(config: Config, listeners: Vec<Listener>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    Manager::new(config)?.run(listeners, shutdown).await;
    Ok(())
}

/// Builds the authenticator the configuration asks for; `None` when multi-tenancy is off.
pub fn authenticator(cfg: &config::AuthConfig) -> anyhow::Result<Option<auth::Authenticator>> {
    use config::AuthBackendConfig as B;
    if !cfg.multi_tenant {
        tracing::warn!("SWARM_MULTI_TENANT=false: no authentication and no tenancy; every client sees everything");
        return Ok(None);
    }
    let backend = match &cfg.backend {
        B::TokenFile(path) => {
            let file = auth::tokenfile::TokenFile::load(path).map_err(anyhow::Error::msg)?;
            tracing::info!(file = %path.display(), "authenticating with the token file");
            auth::Backend::TokenFile(file)
        }
        B::Keystone { keystone, members_tenant, given_url, legacy_v2 } => {
            if *legacy_v2 {
                tracing::warn!(
                    given = %given_url, using = %keystone.url,
                    "Keystone removed its v2.0 API in 2018 (Queens); using the same server's v3 API"
                );
            }
            tracing::info!(url = %keystone.url, service_account = keystone.service.is_some(), "authenticating with Keystone");
            auth::Backend::Keystone {
                client: Box::new(auth::keystone::Keystone::new(keystone.clone())),
                members_tenant: members_tenant.clone(),
            }
        }
        B::TrustHeader => {
            tracing::warn!(
                "SWARM_AUTH_BACKEND=None: X-Auth-TenantId is trusted without any token; anyone can act as any tenant"
            );
            auth::Backend::TrustHeader
        }
    };
    Ok(Some(auth::Authenticator::new(backend, cfg.admin_tenant.clone(), cfg.cache_ttl)))
}
