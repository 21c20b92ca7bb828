//! Per-tenant caps on what one tenant may hold of mtswarm at once: requests in flight, and open streams and
//! hijacked sessions. Over a cap, the tenant gets 429 naming the limit; other tenants' counts are their own,
//! so they notice nothing. Also which calls to an engine are bounded in time.
//!
//! A stream's permit lives as long as the stream: it rides in the response body ([`crate::body::guarded`]) or, for a
//! hijacked session, in the connection's hijack slot until the session ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::{query, ApiError, ContainerOp, Endpoint, ExecOp, NetworkOp};

/// One tenant's share of mtswarm, taken by a request or a stream and given back when dropped.
pub type Permit = OwnedSemaphorePermit;

/// The caps and each tenant's counts.
pub struct TenantLimits {
    max_requests: usize,
    max_streams: usize,
    tenants: Mutex<HashMap<String, Arc<Counts>>>,
}

struct Counts {
    requests: Arc<Semaphore>,
    streams: Arc<Semaphore>,
}

impl TenantLimits {
    pub fn new(max_requests: usize, max_streams: usize) -> TenantLimits {
        TenantLimits { max_requests, max_streams, tenants: Mutex::new(HashMap::new()) }
    }

    fn counts(&self, tenant: &str) -> Arc<Counts> {
        let mut map = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(tenant.to_string())
            .or_insert_with(|| {
                Arc::new(Counts {
                    requests: Arc::new(Semaphore::new(self.max_requests)),
                    streams: Arc::new(Semaphore::new(self.max_streams)),
                })
            })
            .clone()
    }

    /// A request in flight, or 429 when the tenant has `--tenant-max-requests` already.
    pub fn request(&self, tenant: &str) -> Result<Permit, ApiError> {
        self.counts(tenant).requests.clone().try_acquire_owned().map_err(|_| {
            too_many(format!(
                "too many requests in flight for tenant {tenant}: the limit is {} (--tenant-max-requests); \
                 try again when some have ended",
                self.max_requests
            ))
        })
    }

    /// An open stream or hijacked session, or 429 when the tenant has `--tenant-max-streams` open already.
    pub fn stream(&self, tenant: &str) -> Result<Permit, ApiError> {
        self.counts(tenant).streams.clone().try_acquire_owned().map_err(|_| {
            too_many(format!(
                "too many open streams for tenant {tenant}: the limit is {} (--tenant-max-streams) for events, \
                 logs -f, stats, wait, attach and exec sessions together; close one and try again",
                self.max_streams
            ))
        })
    }
}

fn too_many(message: String) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
}

/// True for a request whose answer stays open as long as the client or the engine wants: it takes a stream
/// permit for its whole life.
pub fn opens_stream(endpoint: &Endpoint, query_string: Option<&str>) -> bool {
    let q = query::pairs(query_string);
    let on = |name: &str| query::bool_value(&q, name);
    match endpoint {
        Endpoint::Events => true,
        Endpoint::Container { op, .. } => match op {
            ContainerOp::Logs => on("follow"),
            // A stats request streams unless it says stream=0.
            ContainerOp::Stats => query::first(&q, "stream").is_none() || on("stream"),
            ContainerOp::Attach | ContainerOp::AttachWs | ContainerOp::Wait => true,
            _ => false,
        },
        Endpoint::Exec { op: ExecOp::Start, .. } => true,
        _ => false,
    }
}

/// How long the engine may take over a call that is not a stream, head and body: `None` for streams,
/// transfers (archives, exports, pulls, builds) and hijacks, which last as long as they must. A stop or
/// restart also gets the seconds it asks the engine to wait.
pub fn engine_deadline(endpoint: &Endpoint, query_string: Option<&str>, base: Duration) -> Option<Duration> {
    let bounded = endpoint.answers_small_json()
        || matches!(
            endpoint,
            Endpoint::Container {
                op: ContainerOp::Start
                    | ContainerOp::Stop
                    | ContainerOp::Restart
                    | ContainerOp::Kill
                    | ContainerOp::Pause
                    | ContainerOp::Unpause
                    | ContainerOp::Rename
                    | ContainerOp::Resize
                    | ContainerOp::Delete
                    | ContainerOp::ArchiveStat,
                ..
            } | Endpoint::Exec { op: ExecOp::Resize, .. }
                | Endpoint::Network { op: NetworkOp::Connect | NetworkOp::Disconnect, .. }
        );
    if !bounded || opens_stream(endpoint, query_string) {
        return None;
    }
    let grace = match endpoint {
        Endpoint::Container { op: ContainerOp::Stop | ContainerOp::Restart, .. } => query::pairs(query_string)
            .iter()
            .find(|(k, _)| k == "t")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(10),
        _ => 0,
    };
    Some(base + Duration::from_secs(grace.min(86400)))
}

/// How much one tenant may ask of mtswarm at once, and how long a request may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Requests of one tenant in flight at once.
    pub tenant_max_requests: usize,
    /// Streams and hijacked sessions of one tenant open at once.
    pub tenant_max_streams: usize,
    /// How long a request body may take to arrive (between frames, for a streamed one).
    pub body_timeout: std::time::Duration,
    /// How long an engine may take to answer a call that is not a stream.
    pub engine_timeout: std::time::Duration,
    /// The most of an engine's answer read whole.
    pub engine_answer_limit: usize,
    /// How long a client connection may wait with a request's headers incomplete: counted from the moment mtswarm
    /// waits for a request (the connection opened, or the previous answer went out), so it also ends idle
    /// keep-alive connections. Connections whose headers never complete are closed, not held.
    pub header_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            tenant_max_requests: 256,
            tenant_max_streams: 64,
            body_timeout: std::time::Duration::from_secs(30),
            engine_timeout: std::time::Duration::from_secs(60),
            engine_answer_limit: crate::cluster::node::DEFAULT_ANSWER_LIMIT,
            header_timeout: std::time::Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn check(method: &str, path_query: &str, expected: (bool, Option<u64>)) {
        let (path, q) = path_query.split_once('?').map_or((path_query, None), |(p, q)| (p, Some(q)));
        let ep = Endpoint::classify(&method.parse::<Method>().unwrap(), path).unwrap();
        let got = (opens_stream(&ep, q), engine_deadline(&ep, q, Duration::from_secs(60)).map(|d| d.as_secs()));
        assert_eq!(got, expected, "{method} {path_query}");
    }

    #[test]
    fn knows_streams_and_deadlines() {
        check("GET", "/events", (true, None));
        check("GET", "/containers/c/logs?follow=1", (true, None));
        check("GET", "/containers/c/logs", (false, None));
        check("GET", "/containers/c/stats", (true, None));
        check("GET", "/containers/c/stats?stream=0", (false, None));
        check("POST", "/containers/c/attach?stream=1", (true, None));
        check("POST", "/exec/e/start", (true, None));
        check("POST", "/containers/c/wait", (true, None));
        check("GET", "/containers/c/json", (false, Some(60)));
        check("GET", "/containers/c/changes", (false, Some(60)));
        check("POST", "/containers/c/stop?t=30", (false, Some(90)));
        check("POST", "/containers/c/restart", (false, Some(70)));
        check("GET", "/containers/c/archive?path=/", (false, None));
        check("POST", "/images/create?fromImage=x", (false, None));
    }

    #[test]
    fn caps_each_tenant_on_its_own() {
        let l = TenantLimits::new(2, 1);
        let a = l.stream("a").unwrap();
        assert_eq!(l.stream("a").unwrap_err().status, StatusCode::TOO_MANY_REQUESTS);
        let _b = l.stream("b").unwrap();
        drop(a);
        let _a = l.stream("a").unwrap();
        let _r = (l.request("a").unwrap(), l.request("a").unwrap());
        assert!(l.request("a").unwrap_err().message.contains("--tenant-max-requests"));
    }
}
