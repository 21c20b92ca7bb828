//! mtswarm: a multi-tenant Docker Engine API endpoint in front of a cluster of real Docker engines.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod body;
pub mod cluster;
pub mod config;
pub mod gateway;
pub mod proxy;
pub mod server;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use config::{Config, ListenAddr};
use server::Listener;

/// Binds every configured address. A stale unix socket file (nobody listening) is replaced.
pub async fn bind(config: &Config) -> anyhow::Result<Vec<Listener>> {
    use anyhow::Context;
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

/// Runs `manage` on listeners the caller bound, until `shutdown` completes.
pub async fn run(config: Config, listeners: Vec<Listener>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let cluster =
        Arc::new(cluster::Cluster::new(&config.discovery, config.engine_connect_timeout).map_err(anyhow::Error::msg)?);
    // Learn the engines' API versions before the first client negotiates; an engine that is down is
    // retried by the refresh loop and does not stop mtswarm from starting.
    let _ = tokio::time::timeout(Duration::from_secs(5), cluster.refresh()).await;
    let refresher = {
        let cluster = cluster.clone();
        let every = config.refresh_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                cluster.refresh().await;
            }
        })
    };
    let gateway = Arc::new(gateway::Gateway::new(cluster));
    server::run(gateway, listeners, shutdown).await;
    refresher.abort();
    Ok(())
}
