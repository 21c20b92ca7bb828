//! The endpoints mtswarm answers itself: `/_ping`, `/version` and `/info`, with mtswarm's own identity.
//! `/info` presents the cluster the way Swarm classic did, which the docker CLI still prints.

use http::{header, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::body::{self, Body};
use crate::cluster::Cluster;

/// mtswarm's version, as `/version` and `/info` report it.
pub const SERVER_VERSION: &str = concat!("mtswarm/", env!("CARGO_PKG_VERSION"));

/// `GET|HEAD /_ping`: the CLI negotiates from the headers, which the gateway adds to every response.
pub fn ping(method: &Method) -> Response<Body> {
    let head = method == Method::HEAD;
    let mut resp = Response::new(if head { body::empty() } else { body::full("OK") });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    h.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    h.insert("docker-experimental", header::HeaderValue::from_static("false"));
    // Only the legacy builder (`POST /build`) is served; BuildKit sessions are not.
    h.insert("builder-version", header::HeaderValue::from_static("1"));
    if head {
        h.insert(header::CONTENT_LENGTH, header::HeaderValue::from_static("0"));
    }
    resp
}

/// `GET /version`.
pub fn version(cluster: &Cluster) -> Response<Body> {
    let first = cluster.nodes().first().and_then(|n| n.facts().info);
    let kernel = first.as_ref().and_then(|i| i.get("KernelVersion").cloned()).unwrap_or(Value::from(""));
    let (api, min) = (cluster.max_api_version().to_string(), cluster.min_api_version().to_string());
    let v = json!({
        "Platform": { "Name": "mtswarm" },
        "Components": [{
            "Name": "mtswarm",
            "Version": env!("CARGO_PKG_VERSION"),
            "Details": {
                "ApiVersion": api, "MinAPIVersion": min, "Os": "linux", "Arch": go_arch(),
                "KernelVersion": kernel,
            }
        }],
        "Version": SERVER_VERSION,
        "ApiVersion": api,
        "MinAPIVersion": min,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    });
    json_response(StatusCode::OK, &v)
}

/// What a tenant's `docker info` counts: its own containers.
#[derive(Debug, Default, Clone, Copy)]
pub struct TenantView {
    pub containers: i64,
    pub running: i64,
    pub paused: i64,
    pub stopped: i64,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// `GET /info`: the first engine's description as the base (driver, runtimes, security options), with
/// the cluster's identity, sums and Swarm classic's `SystemStatus` over it.
///
/// `role` is Swarm classic's first lines: `Role` (`primary`, or `replica` with `Primary: ADDR`).
pub async fn info(
    cluster: &Cluster,
    role: Vec<[String; 2]>,
    warnings: &[String],
    tenant: Option<TenantView>,
) -> Response<Body> {
    cluster.refresh().await;
    let nodes = cluster.nodes();
    let mut base = nodes
        .iter()
        .find_map(|n| n.facts().info.map(|i| (*i).clone()))
        .unwrap_or_else(|| json!({ "OSType": "linux", "Architecture": std::env::consts::ARCH }));
    let mut sums = [0i64; 7];
    const SUMMED: [&str; 7] =
        ["Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images", "NCPU", "MemTotal"];
    let mut status: Vec<[String; 2]> = role;
    status.extend([
        pair("Strategy", &cluster.strategy().to_string()),
        pair("Filters", "health, constraint, affinity, port, dependency, image"),
        pair("Nodes", &nodes.len().to_string()),
    ]);
    let heading = status.len();
    for node in nodes {
        let facts = node.facts();
        let info = facts.info.as_deref().cloned().unwrap_or(Value::Null);
        let num = |k: &str| info.get(k).and_then(Value::as_i64).unwrap_or(0);
        for (i, k) in SUMMED.iter().enumerate() {
            sums[i] += num(k);
        }
        let healthy = !facts.unhealthy && facts.info.is_some();
        let held = node.holdings();
        let reserved_memory: i64 = held.containers.values().map(|c| c.memory).sum();
        let reserved_cpus: i64 = held.containers.values().map(|c| c.nano_cpus).sum();
        status.push(pair(&format!(" {}", node.name()), &node.addr.to_string()));
        status.push(pair("  └ ID", facts.id.as_deref().unwrap_or("")));
        status.push(pair("  └ Status", if healthy { "Healthy" } else { "Unhealthy" }));
        status.push(pair(
            "  └ Containers",
            &format!(
                "{} ({} Running, {} Paused, {} Stopped)",
                num("Containers"),
                num("ContainersRunning"),
                num("ContainersPaused"),
                num("ContainersStopped")
            ),
        ));
        status.push(pair("  └ Reserved CPUs", &format!("{} / {}", reserved_cpus as f64 / 1e9, num("NCPU"))));
        status.push(pair(
            "  └ Reserved Memory",
            &format!("{:.1} GiB / {:.1} GiB", reserved_memory as f64 / GIB, num("MemTotal") as f64 / GIB),
        ));
        status.push(pair("  └ Labels", &node_labels(&info)));
        status.push(pair("  └ Error", facts.last_error.as_deref().unwrap_or("(none)")));
        let updated = facts
            .updated_at
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok().map(|n| n.saturating_sub(d))
            })
            .map(|ago| format!("{} seconds ago", ago.as_secs()))
            .unwrap_or_else(|| "never".into());
        status.push(pair("  └ UpdatedAt", &updated));
        status.push(pair("  └ ServerVersion", facts.server_version.as_deref().unwrap_or("")));
    }
    if let Some(t) = tenant {
        sums[..4].copy_from_slice(&[t.containers, t.running, t.paused, t.stopped]);
        // The nodes' addresses and loads are the operator's business.
        status.truncate(heading);
    }
    if let Some(obj) = base.as_object_mut() {
        for (i, k) in SUMMED.iter().enumerate() {
            obj.insert(k.to_string(), Value::from(sums[i]));
        }
        obj.insert("ID".into(), Value::from(manager_id()));
        obj.insert("Name".into(), Value::from(hostname()));
        obj.insert("ServerVersion".into(), Value::from(SERVER_VERSION));
        obj.insert("SystemStatus".into(), json!(status));
        obj.insert("Labels".into(), json!([]));
        obj.insert("NEventsListener".into(), Value::from(0));
        let mut all: Vec<Value> = obj.get("Warnings").and_then(Value::as_array).cloned().unwrap_or_default();
        all.extend(warnings.iter().map(|w| Value::from(w.as_str())));
        obj.insert("Warnings".into(), Value::from(all));
        obj.insert("Swarm".into(), json!({ "LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "" }));
    }
    json_response(StatusCode::OK, &base)
}

pub fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut resp = Response::new(body::full(v.to_string() + "\n"));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    resp
}

fn pair(k: &str, v: &str) -> [String; 2] {
    [k.to_string(), v.to_string()]
}

/// Swarm classic's node labels: the engine's facts as `key=value`, then its own labels.
fn node_labels(info: &Value) -> String {
    let s = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut labels = vec![
        format!("kernelversion={}", s("KernelVersion")),
        format!("operatingsystem={}", s("OperatingSystem")),
        format!("ostype={}", s("OSType")),
        format!("storagedriver={}", s("Driver")),
    ];
    if let Some(own) = info.get("Labels").and_then(Value::as_array) {
        labels.extend(own.iter().filter_map(Value::as_str).map(str::to_string));
    }
    labels.join(", ")
}

/// Go's name for this architecture, which is what Docker clients expect.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "mtswarm".to_string())
}

/// A stable identity for this manager: the same host gives the same ID across restarts.
fn manager_id() -> String {
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in hostname().bytes().chain(*b"mtswarm") {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    let hex = format!("{h:016X}");
    hex.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(":")
}
