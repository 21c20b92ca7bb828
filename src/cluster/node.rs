//! One engine of the cluster: its address, its pooled connections, and what mtswarm last learned of it.

use std::sync::RwLock;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::connector::{EngineAddr, EngineConnector};
use crate::api::ApiVersion;
use crate::body::{self, Body};

/// Why a call to an engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No connection could be made: the engine is down or unreachable. Nothing reached it.
    #[error("engine {node} is unavailable: {cause}")]
    Unavailable { node: String, cause: String },
    /// The connection broke while the request or its answer was under way.
    #[error("engine {node} failed during the request: {cause}")]
    Broken { node: String, cause: String },
    /// The engine answered, with an error status or a body that is not what the API promises.
    #[error("engine {node} answered {status}: {message}")]
    Answer { node: String, status: StatusCode, message: String },
}

/// What mtswarm knows of an engine from its `/version` and `/info`.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    /// The engine's own `Name` (its host name); the address until the engine has answered.
    pub name: Option<String>,
    pub id: Option<String>,
    pub api_version: Option<ApiVersion>,
    pub min_api_version: Option<ApiVersion>,
    pub server_version: Option<String>,
    /// The error of the last refresh, if it failed.
    pub last_error: Option<String>,
    /// The engine's `/info`, shared: it is a few kilobytes and read on every `docker info`.
    pub info: Option<std::sync::Arc<serde_json::Value>>,
}

/// One engine. Requests to it share a keep-alive connection pool.
pub struct Node {
    pub addr: EngineAddr,
    client: Client<EngineConnector, Body>,
    facts: RwLock<NodeFacts>,
}

impl Node {
    pub fn new(addr: EngineAddr, connect_timeout: Duration) -> Node {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(EngineConnector::new(addr.clone(), connect_timeout));
        Node { addr, client, facts: RwLock::new(NodeFacts::default()) }
    }

    /// The engine's name once known, its address before.
    pub fn name(&self) -> String {
        self.read_facts().name.clone().unwrap_or_else(|| self.addr.to_string())
    }

    /// `name (address)` once the name is known, for messages.
    pub fn label(&self) -> String {
        match self.read_facts().name.clone() {
            Some(n) => format!("{n} ({})", self.addr),
            None => self.addr.to_string(),
        }
    }

    pub fn facts(&self) -> NodeFacts {
        self.read_facts().clone()
    }

    /// The engine's API versions, without copying the rest of the facts.
    pub fn api_versions(&self) -> (Option<ApiVersion>, Option<ApiVersion>) {
        let f = self.read_facts();
        (f.min_api_version.clone(), f.api_version.clone())
    }

    fn read_facts(&self) -> std::sync::RwLockReadGuard<'_, NodeFacts> {
        self.facts.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a request whose URI is a path and query; the node supplies scheme and authority.
    pub async fn send(&self, mut req: Request<Body>) -> Result<Response<Incoming>, EngineError> {
        let pq = req.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/").to_string();
        let authority = self.addr.authority();
        *req.uri_mut() = Uri::builder()
            .scheme("http")
            .authority(authority.as_str())
            .path_and_query(pq)
            .build()
            .map_err(|e| self.broken(e))?;
        if let Ok(v) = header::HeaderValue::from_str(&authority) {
            req.headers_mut().insert(header::HOST, v);
        }
        self.client.request(req).await.map_err(|e| {
            if e.is_connect() {
                EngineError::Unavailable { node: self.label(), cause: error_chain(&e) }
            } else {
                self.broken(e)
            }
        })
    }

    /// A control-plane GET answered with JSON (for `/version`, `/info` and the like).
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, EngineError> {
        let req = Request::get(path).body(body::empty()).map_err(|e| self.broken(e))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        let bytes: Bytes = resp.into_body().collect().await.map_err(|e| self.broken(e))?.to_bytes();
        if !status.is_success() {
            return Err(EngineError::Answer { node: self.name(), status, message: engine_message(&bytes) });
        }
        serde_json::from_slice(&bytes).map_err(|e| EngineError::Answer {
            node: self.name(),
            status,
            message: format!("not JSON: {e}"),
        })
    }

    /// Asks the engine who it is and which API versions it speaks; remembers the answer or the failure.
    pub async fn refresh(&self) -> Result<(), EngineError> {
        let result = async {
            let version = self.get_json("/version").await?;
            let info = self.get_json("/info").await?;
            Ok::<_, EngineError>((version, info))
        }
        .await;
        let mut facts = self.facts.write().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok((version, info)) => {
                let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                facts.api_version = s(&version, "ApiVersion").and_then(|v| ApiVersion::parse(&v));
                facts.min_api_version = s(&version, "MinAPIVersion").and_then(|v| ApiVersion::parse(&v));
                facts.server_version = s(&version, "Version");
                facts.name = s(&info, "Name");
                facts.id = s(&info, "ID");
                facts.info = Some(std::sync::Arc::new(info));
                facts.last_error = None;
                Ok(())
            }
            Err(e) => {
                facts.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn broken(&self, e: impl std::error::Error) -> EngineError {
        EngineError::Broken { node: self.label(), cause: error_chain(&e) }
    }
}

/// The `message` of a Docker-style error body, or the body itself.
pub fn engine_message(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).trim().to_string())
}

/// An error with its causes, `a: b: c`, deduplicated where a layer repeats its source.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        src = s.source();
    }
    out
}
