//! The primary manager as a replica reaches it: a pooled HTTP/1.1 client to its `--advertise` address, over mutual
//! TLS when the managers serve TLS (the replica shows its own certificate and checks the primary's against
//! `--tlscacert`, with the advertised host as the name).

use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderMap;
use http::{Request, Response};
use hyper::body::Incoming;

use crate::api::ApiError;
use crate::body::Body;
use crate::cluster::connector::EngineAddr;
use crate::cluster::pool::{Pool, PoolError};

/// The primary manager, from a replica.
pub struct Peer {
    addr: EngineAddr,
    pool: Pool,
}

impl Peer {
    /// A client for the manager at `advertise` (`HOST:PORT`).
    pub fn new(
        advertise: &str,
        connect_timeout: Duration,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Peer, String> {
        let addr = match EngineAddr::parse(advertise)? {
            a @ EngineAddr::Tcp { .. } => a,
            EngineAddr::Unix(_) => return Err("managers reach each other over TCP".into()),
        };
        Ok(Peer { pool: Pool::new(&addr, connect_timeout, tls), addr })
    }

    /// `HOST:PORT`, as advertised.
    pub fn addr(&self) -> String {
        self.addr.authority()
    }
}

impl crate::proxy::Hop for Peer {
    fn label(&self) -> String {
        format!("the primary manager {}", self.addr.authority())
    }

    /// The request as the client sent it: end-to-end headers, credentials included (the primary authenticates).
    /// The replication headers are the replica's own (every client's came off on arrival), so a client's
    /// `Connection: x-mtswarm-...` cannot take them off as hop-by-hop.
    fn strip(&self, h: &mut HeaderMap) {
        let own = super::HEADERS.map(|name| h.get(name).cloned());
        crate::proxy::strip_hop_by_hop(h);
        for (name, value) in super::HEADERS.iter().zip(own) {
            if let Some(v) = value {
                h.insert(*name, v);
            }
        }
    }

    async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>, ApiError> {
        let authority = self.addr.authority();
        self.pool.send(req).await.map_err(|e| match e {
            PoolError::Connect(cause) => {
                ApiError::unavailable(format!("the primary manager {authority} is unavailable: {cause}"))
            }
            PoolError::Broken(cause) => {
                ApiError::bad_gateway(format!("the primary manager {authority} failed during the request: {cause}"))
            }
        })
    }
}
