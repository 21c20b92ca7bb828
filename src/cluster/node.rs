//! One engine of the cluster: its address, its pooled connections, and what mtswarm last learned of it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::connector::EngineAddr;
use super::pool::{Pool, PoolError};
use crate::api::{ApiError, ApiVersion};
use crate::body::{self, Body};
use crate::scheduler::{ImageView, PublishedPort};

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

/// A failure to reach an engine, as the client gets it.
impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Unavailable { .. } => ApiError::unavailable(e.to_string()),
            EngineError::Broken { .. } => ApiError::bad_gateway(e.to_string()),
            EngineError::Answer { status, message, .. } => ApiError::new(status, message),
        }
    }
}

/// `--engine-answer-limit`'s default: 8 MiB.
pub const DEFAULT_ANSWER_LIMIT: usize = 8 * 1024 * 1024;

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
    /// Refreshes failed in a row.
    pub failures: u32,
    /// True once the engine refused a connection or failed several refreshes in a row: it gets no new containers,
    /// and lists leave it out, until a refresh succeeds again.
    pub unhealthy: bool,
    /// When the facts were last refreshed successfully.
    pub updated_at: Option<std::time::SystemTime>,
    /// The engine's `/info`, shared: it is a few kilobytes and read on every `docker info`.
    pub info: Option<std::sync::Arc<serde_json::Value>>,
}

/// One container of a node, as the scheduler and the routing need it; from the engine's inspect.
#[derive(Debug, Clone, Default)]
pub struct CachedContainer {
    pub id: String,
    /// The engine-side name, without its leading `/`.
    pub name: String,
    /// The `mtswarm.tenant` label.
    pub tenant: Option<String>,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub memory: i64,
    pub nano_cpus: i64,
    pub published: Vec<PublishedPort>,
    /// Its list entry, prepared once per read of its inspect (all but the status text, which ages), in the
    /// engine's view and its owner's; `None` for a reservation.
    pub listed: Option<std::sync::Arc<super::listing::Prepared>>,
    /// When it was last read ([`Node::generation`]): a refresh that began earlier does not remove it.
    pub seen: u64,
}

/// What the node holds, as of its last refresh (plus what mtswarm placed there since).
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    pub containers: BTreeMap<String, CachedContainer>,
    pub images: Vec<ImageView>,
}

/// Container events that change nothing the registry keeps.
const IGNORED_ACTIONS: [&str; 10] =
    ["exec_", "attach", "detach", "resize", "top", "export", "commit", "copy", "archive-path", "extract-to-dir"];

/// How many refreshes in a row may fail (other than by a refused connection) before the node is unhealthy.
const FAILURES_BEFORE_UNHEALTHY: u32 = 3;

/// How mtswarm talks to every engine.
#[derive(Clone)]
pub struct EngineOptions {
    /// How long to wait for a connection (and its TLS handshake) before calling the engine unavailable.
    pub connect_timeout: Duration,
    /// Mutual TLS on every TCP connection, when configured.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The longest a control-plane call ([`Node::get_json`]) may take: an engine that hangs must not hold a
    /// request (or a tenant's quota lock) forever.
    pub call_timeout: Duration,
    /// The most of an answer mtswarm reads whole to parse it.
    pub answer_limit: usize,
}

impl EngineOptions {
    /// Plain connections and the defaults of `manage`, for tools and tests.
    pub fn plain(connect_timeout: Duration) -> EngineOptions {
        EngineOptions {
            connect_timeout,
            tls: None,
            call_timeout: Duration::from_secs(60),
            answer_limit: DEFAULT_ANSWER_LIMIT,
        }
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("tls", &self.tls.is_some())
            .field("call_timeout", &self.call_timeout)
            .field("answer_limit", &self.answer_limit)
            .finish()
    }
}

/// One engine. Requests to it share a keep-alive connection pool.
pub struct Node {
    pub addr: EngineAddr,
    /// Keep-alive connections, apart for each serving thread: a request borrows one its own thread drives.
    pool: Pool,
    call_timeout: Duration,
    answer_limit: usize,
    facts: RwLock<NodeFacts>,
    holdings: RwLock<Holdings>,
    /// Containers placed here whose create has not been answered yet, by placement ticket.
    pending: Mutex<BTreeMap<u64, CachedContainer>>,
    /// Counts reads of containers, so a refresh knows which entries are newer than its list.
    generation: std::sync::atomic::AtomicU64,
    /// True while the node's event stream is open and its holdings were read after it opened: they then
    /// follow the engine within the time an event takes to arrive.
    synced: std::sync::atomic::AtomicBool,
    /// The task that follows the node's events.
    watcher: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Node {
    pub fn new(addr: EngineAddr, opts: &EngineOptions) -> Node {
        if opts.tls.is_none() && !addr.is_local() {
            tracing::warn!(
                node = %addr,
                "engine reached over plain TCP on a non-loopback address: anyone who reaches it, its own \
                 containers included, owns the host; run it with --tlsverify and give mtswarm --node-tlscacert, \
                 --node-tlscert and --node-tlskey"
            );
        }
        Node {
            pool: Pool::new(&addr, opts.connect_timeout, opts.tls.clone()),
            addr,
            call_timeout: opts.call_timeout,
            answer_limit: opts.answer_limit,
            facts: RwLock::new(NodeFacts::default()),
            holdings: RwLock::new(Holdings::default()),
            pending: Mutex::new(BTreeMap::new()),
            generation: Default::default(),
            synced: Default::default(),
            watcher: Mutex::new(None),
        }
    }

    /// Whether the node may get new containers and is asked in lists.
    pub fn healthy(&self) -> bool {
        !self.read_facts().unhealthy
    }

    /// Marks the node unhealthy at once: it refused a connection. The next successful refresh brings it back.
    pub fn mark_unavailable(&self, why: &str) {
        let mut f = self.facts.write().unwrap_or_else(|e| e.into_inner());
        if !f.unhealthy {
            tracing::warn!(node = %self.addr, cause = %why, "engine unavailable: no new containers until it answers");
        }
        f.unhealthy = true;
        f.last_error = Some(why.to_string());
    }

    /// What the node holds, with the containers placed there and not yet answered.
    pub fn holdings(&self) -> Holdings {
        let mut h = self.holdings.read().unwrap_or_else(|e| e.into_inner()).clone();
        for (ticket, c) in self.pending.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            h.containers.insert(format!("pending-{ticket}"), c.clone());
        }
        h
    }

    /// Reads the containers the node held at its last read, without copying them.
    pub fn with_containers<T>(&self, f: impl FnOnce(&BTreeMap<String, CachedContainer>) -> T) -> T {
        f(&self.holdings.read().unwrap_or_else(|e| e.into_inner()).containers)
    }

    /// Reserves room for a container about to be created here.
    pub fn reserve(&self, ticket: u64, c: CachedContainer) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(ticket, c);
    }

    /// Ends a reservation: with the container's id once the engine created it, which then counts as held.
    pub fn settle(&self, ticket: u64, created: Option<&str>) {
        let c = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&ticket);
        if let (Some(mut c), Some(id)) = (c, created) {
            c.id = id.to_string();
            c.seen = self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
            // The create event may have been read already: its inspect is worth more than the reservation.
            self.holdings.write().unwrap_or_else(|e| e.into_inner()).containers.entry(c.id.clone()).or_insert(c);
        }
    }

    /// Forgets a container removed through mtswarm, so its reservations end before the next refresh.
    pub fn forget(&self, id: &str) {
        self.holdings.write().unwrap_or_else(|e| e.into_inner()).containers.remove(id);
    }

    /// Re-reads one container (after an event about it); a container that is gone is forgotten.
    pub async fn reread(&self, id: &str) {
        match self.get_json(&format!("/containers/{id}/json")).await {
            Ok(c) => {
                let mut c = cached_container(&c);
                c.seen = self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
                self.holdings.write().unwrap_or_else(|e| e.into_inner()).containers.insert(c.id.clone(), c);
            }
            Err(EngineError::Answer { status: StatusCode::NOT_FOUND, .. }) => self.forget(id),
            Err(e) => tracing::debug!(node = %self.addr, cause = %e, "engine: a container could not be read"),
        }
    }

    /// True while the node's holdings follow its event stream.
    pub fn synced(&self) -> bool {
        self.synced.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Follows the node's container events until the task is aborted: each event re-reads its container, so
    /// what the node holds is current within the time an event takes to arrive. The stream is opened before
    /// the holdings are read, so no change falls between the two; a broken stream is opened again.
    pub fn watch(self: &Arc<Self>) {
        let mut slot = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return;
        }
        let node = self.clone();
        let task = tokio::spawn(async move {
            loop {
                node.follow_events().await;
                node.synced.store(false, std::sync::atomic::Ordering::Release);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        *slot = Some(task.abort_handle());
    }

    /// Stops following the node's events (the node left the cluster).
    pub fn stop_watching(&self) {
        if let Some(task) = self.watcher.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
        self.synced.store(false, std::sync::atomic::Ordering::Release);
    }

    async fn follow_events(&self) {
        let filters = r#"{"type":{"container":true,"network":true,"image":true}}"#;
        let path = format!("/events?filters={}", crate::tenant::encode(filters));
        let Ok(req) = Request::get(path).body(body::empty()) else { return };
        let resp = match self.send(req).await {
            Ok(r) if r.status().is_success() => r,
            _ => return,
        };
        if self.refresh_holdings().await.is_err() {
            return;
        }
        self.synced.store(true, std::sync::atomic::Ordering::Release);
        let mut incoming = resp.into_body();
        let mut buf = bytes::BytesMut::new();
        loop {
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line = buf.split_to(i + 1);
                if let Ok(e) = serde_json::from_slice::<serde_json::Value>(&line) {
                    self.on_event(&e).await;
                }
            }
            match incoming.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        buf.extend_from_slice(&d);
                    }
                }
                _ => return,
            }
        }
    }

    async fn on_event(&self, e: &serde_json::Value) {
        let s = |p: &str| e.pointer(p).and_then(serde_json::Value::as_str).unwrap_or_default();
        let (kind, action) = (s("/Type"), s("/Action"));
        match kind {
            "container" => {
                let id = s("/Actor/ID");
                if action == "destroy" {
                    self.forget(id);
                } else if !IGNORED_ACTIONS.iter().any(|a| action.starts_with(a)) {
                    self.reread(id).await;
                }
            }
            // A pull, load, tag or removal changes which images the node has (the scheduler's image filter).
            "image" => {
                if let Ok(images) = self.get_json("/images/json").await {
                    self.holdings.write().unwrap_or_else(|e| e.into_inner()).images = image_views(&images);
                }
            }
            "network" if action == "connect" || action == "disconnect" => {
                let id = s("/Actor/Attributes/container");
                if !id.is_empty() {
                    self.reread(id).await;
                }
            }
            _ => {}
        }
    }

    /// Re-reads the node's containers and images, to catch what events did not say (the first time, and
    /// after a stream broke). Containers already known keep what their last read said; new ones are
    /// inspected; those the engine no longer lists are dropped unless read since this refresh began.
    pub async fn refresh_holdings(&self) -> Result<(), EngineError> {
        let began = self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
        let (list, images) =
            futures_util::future::join(self.get_json("/containers/json?all=1"), self.get_json("/images/json")).await;
        let list = list?;
        let images = images?;
        let present: std::collections::BTreeSet<String> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("Id").and_then(serde_json::Value::as_str).map(str::to_string))
            .collect();
        let unknown: Vec<String> = {
            let held = self.holdings.read().unwrap_or_else(|e| e.into_inner());
            present.iter().filter(|id| !held.containers.contains_key(*id)).cloned().collect()
        };
        let mut found = Vec::new();
        for chunk in unknown.chunks(32) {
            let inspects = chunk.iter().map(|id| self.get_json_owned(format!("/containers/{id}/json")));
            for c in futures_util::future::join_all(inspects).await.into_iter().flatten() {
                let mut c = cached_container(&c);
                c.seen = began;
                found.push(c);
            }
        }
        let images = image_views(&images);
        let mut held = self.holdings.write().unwrap_or_else(|e| e.into_inner());
        held.containers.retain(|id, c| present.contains(id) || c.seen > began);
        for c in found {
            held.containers.entry(c.id.clone()).or_insert(c);
        }
        held.images = images;
        Ok(())
    }

    async fn get_json_owned(&self, path: String) -> Result<serde_json::Value, EngineError> {
        self.get_json(&path).await
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

    /// Whether the engine has a cluster store (its `/info` names one), so its overlay networks span engines.
    pub fn has_cluster_store(&self) -> bool {
        let f = self.read_facts();
        f.info
            .as_ref()
            .and_then(|i| i.get("ClusterStore"))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|s| !s.is_empty())
    }

    /// The engine's API versions, without copying the rest of the facts.
    pub fn api_versions(&self) -> (Option<ApiVersion>, Option<ApiVersion>) {
        let f = self.read_facts();
        (f.min_api_version.clone(), f.api_version.clone())
    }

    fn read_facts(&self) -> std::sync::RwLockReadGuard<'_, NodeFacts> {
        self.facts.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a request whose URI is a path and query; the node's pool supplies `Host` and a connection.
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>, EngineError> {
        self.pool.send(req).await.map_err(|e| match e {
            PoolError::Connect(cause) => {
                self.mark_unavailable(&cause);
                EngineError::Unavailable { node: self.name(), cause }
            }
            PoolError::Broken(cause) => EngineError::Broken { node: self.label(), cause },
        })
    }

    /// Closes the connections idle for too long (a refresh does it, as requests only look at the newest).
    pub fn close_idle(&self) {
        self.pool.sweep();
    }

    /// A control-plane GET answered with JSON (for `/version`, `/info` and the like).
    /// It takes at most the call timeout, and reads at most the answer limit.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, EngineError> {
        let call = async {
            let req = Request::get(path).body(body::empty()).map_err(|e| self.broken(e))?;
            let resp = self.send(req).await?;
            let status = resp.status();
            let limited = http_body_util::Limited::new(resp.into_body(), self.answer_limit);
            let bytes: Bytes = limited.collect().await.map_err(|e| self.broken_by(&*e))?.to_bytes();
            Ok::<_, EngineError>((status, bytes))
        };
        let (status, bytes) = match tokio::time::timeout(self.call_timeout, call).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(EngineError::Broken {
                    node: self.label(),
                    cause: format!("no answer to GET {path} within {} s", self.call_timeout.as_secs_f32()),
                })
            }
        };
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
                if facts.unhealthy {
                    tracing::info!(node = %self.addr, "engine answers again: healthy");
                }
                facts.unhealthy = false;
                facts.failures = 0;
                facts.updated_at = Some(std::time::SystemTime::now());
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
                let name = facts.name.clone().unwrap_or_else(|| self.addr.to_string());
                crate::ops::metrics::metrics().engine_error(&name);
                facts.last_error = Some(e.to_string());
                facts.failures += 1;
                if matches!(e, EngineError::Unavailable { .. }) || facts.failures >= FAILURES_BEFORE_UNHEALTHY {
                    facts.unhealthy = true;
                }
                Err(e)
            }
        }
    }

    fn broken(&self, e: impl std::error::Error) -> EngineError {
        EngineError::Broken { node: self.label(), cause: error_chain(&e) }
    }

    fn broken_by(&self, e: &(dyn std::error::Error + Send + Sync)) -> EngineError {
        EngineError::Broken { node: self.label(), cause: error_chain(e) }
    }
}

/// The images of `GET /images/json`, as the scheduler sees them.
fn image_views(list: &serde_json::Value) -> Vec<ImageView> {
    let strings = |i: &serde_json::Value, k: &str| -> Vec<String> {
        i.get(k)
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    list.as_array()
        .into_iter()
        .flatten()
        .map(|i| ImageView {
            id: i.get("Id").and_then(serde_json::Value::as_str).unwrap_or_default().to_string(),
            repo_tags: strings(i, "RepoTags"),
            repo_digests: strings(i, "RepoDigests"),
        })
        .collect()
}

/// A container as the scheduler sees it, from the engine's inspect.
pub fn cached_container(c: &serde_json::Value) -> CachedContainer {
    use serde_json::Value;
    let s = |p: &str| c.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    let n = |p: &str| c.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let labels: BTreeMap<String, String> = c
        .pointer("/Config/Labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    let owner = labels.get(crate::tenant::TENANT_LABEL);
    let view = |e: &mut Value| crate::tenant::view::container(owner.map(String::as_str).unwrap_or_default(), e);
    let owner_view: Option<&dyn Fn(&mut Value)> = if owner.is_some() { Some(&view) } else { None };
    let mut published = Vec::new();
    for at in ["/HostConfig", "/NetworkSettings"] {
        let key = if at == "/HostConfig" { "PortBindings" } else { "Ports" };
        if let Some(ports) = c.pointer(&format!("{at}/{key}")).filter(|p| p.is_object()) {
            let mut m = serde_json::Map::new();
            m.insert("PortBindings".into(), ports.clone());
            for p in crate::scheduler::port_bindings(&m, "").unwrap_or_default() {
                if !published.contains(&p) {
                    published.push(p);
                }
            }
        }
    }
    CachedContainer {
        listed: Some(std::sync::Arc::new(super::listing::Prepared::new(c, owner_view))),
        seen: 0,
        id: s("/Id"),
        name: s("/Name").trim_start_matches('/').to_string(),
        tenant: labels.get(crate::tenant::TENANT_LABEL).cloned(),
        image: s("/Config/Image"),
        labels,
        memory: n("/HostConfig/Memory").max(0),
        nano_cpus: n("/HostConfig/NanoCpus").max(0),
        published,
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
