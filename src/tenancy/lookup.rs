//! The seam between tenancy and the engines: the few reads (and the two creates) that resolving a tenant's
//! references needs, and nothing else. [`crate::cluster::Node`] implements it by asking its engine; the unit
//! tests implement it with a map-backed fake ([`fake::FakeEngine`]) that answers as dockerd does, so every
//! rewrite is table-tested without an engine.
//!
//! The methods return `impl Future + Send`, not `async fn`, so that the gateway's request futures stay `Send`
//! whatever implements the trait; an implementation may still write them as `async fn`.

use std::future::Future;
use std::sync::Arc;

use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::cluster::{EngineError, Node};
use crate::tenant::encode;

/// The engine reads and writes that resolving uses. An inspect answers `Ok(None)` where the engine answers 404.
pub trait Lookup: Sync {
    /// The node's name, for messages and for the lock that makes one default network per tenant and node.
    fn node_name(&self) -> String;

    /// `GET /containers/{reference}/json`: a full id, a name or a unique id prefix, among all containers.
    fn inspect_container(&self, reference: &str) -> impl Future<Output = Result<Option<Value>, EngineError>> + Send;

    /// `GET /containers/json?all=1&filters={"label":{"<label>":true}}`: every container with the label
    /// (`key=value`), in the list's shape (`Id`, `Names`, `Labels`).
    fn list_containers(&self, label: &str) -> impl Future<Output = Result<Vec<Value>, EngineError>> + Send;

    /// `GET /networks/{reference}`: a full id, a name or a unique id prefix, among all networks.
    fn inspect_network(&self, reference: &str) -> impl Future<Output = Result<Option<Value>, EngineError>> + Send;

    /// `GET /networks?filters={"label":{"<label>":true}}`: every network with the label (`key=value`).
    fn list_networks(&self, label: &str) -> impl Future<Output = Result<Vec<Value>, EngineError>> + Send;

    /// `GET /volumes/{name}`.
    fn inspect_volume(&self, name: &str) -> impl Future<Output = Result<Option<Value>, EngineError>> + Send;

    /// `GET /exec/{id}/json`.
    fn inspect_exec(&self, id: &str) -> impl Future<Output = Result<Option<Value>, EngineError>> + Send;

    /// `POST /volumes/create` with `body`; an error status is [`EngineError::Answer`].
    fn create_volume(&self, body: Value) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// `POST /networks/create` with `body`; an error status (409 for a duplicate name) is [`EngineError::Answer`].
    fn create_network(&self, body: Value) -> impl Future<Output = Result<(), EngineError>> + Send;
}

impl Lookup for Node {
    fn node_name(&self) -> String {
        self.name()
    }

    async fn inspect_container(&self, reference: &str) -> Result<Option<Value>, EngineError> {
        inspect(self, &format!("/containers/{}/json", encode(reference))).await
    }

    async fn list_containers(&self, label: &str) -> Result<Vec<Value>, EngineError> {
        let filters = serde_json::json!({"label": {label: true}}).to_string();
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("all", "1")
            .append_pair("filters", &filters)
            .finish();
        let v = self.get_json(&format!("/containers/json?{q}")).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    async fn inspect_network(&self, reference: &str) -> Result<Option<Value>, EngineError> {
        inspect(self, &format!("/networks/{}", encode(reference))).await
    }

    async fn list_networks(&self, label: &str) -> Result<Vec<Value>, EngineError> {
        let filters = serde_json::json!({"label": {label: true}}).to_string();
        let v = self.get_json(&format!("/networks?filters={}", encode(&filters))).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    async fn inspect_volume(&self, name: &str) -> Result<Option<Value>, EngineError> {
        inspect(self, &format!("/volumes/{}", encode(name))).await
    }

    async fn inspect_exec(&self, id: &str) -> Result<Option<Value>, EngineError> {
        inspect(self, &format!("/exec/{}/json", encode(id))).await
    }

    async fn create_volume(&self, body: Value) -> Result<(), EngineError> {
        post(self, "/volumes/create", body).await
    }

    async fn create_network(&self, body: Value) -> Result<(), EngineError> {
        post(self, "/networks/create", body).await
    }
}

/// The gateway holds its nodes in `Arc`s.
impl<L: Lookup + Send + ?Sized> Lookup for Arc<L> {
    fn node_name(&self) -> String {
        (**self).node_name()
    }

    fn inspect_container(&self, reference: &str) -> impl Future<Output = Result<Option<Value>, EngineError>> + Send {
        (**self).inspect_container(reference)
    }

    fn list_containers(&self, label: &str) -> impl Future<Output = Result<Vec<Value>, EngineError>> + Send {
        (**self).list_containers(label)
    }

    fn inspect_network(&self, reference: &str) -> impl Future<Output = Result<Option<Value>, EngineError>> + Send {
        (**self).inspect_network(reference)
    }

    fn list_networks(&self, label: &str) -> impl Future<Output = Result<Vec<Value>, EngineError>> + Send {
        (**self).list_networks(label)
    }

    fn inspect_volume(&self, name: &str) -> impl Future<Output = Result<Option<Value>, EngineError>> + Send {
        (**self).inspect_volume(name)
    }

    fn inspect_exec(&self, id: &str) -> impl Future<Output = Result<Option<Value>, EngineError>> + Send {
        (**self).inspect_exec(id)
    }

    fn create_volume(&self, body: Value) -> impl Future<Output = Result<(), EngineError>> + Send {
        (**self).create_volume(body)
    }

    fn create_network(&self, body: Value) -> impl Future<Output = Result<(), EngineError>> + Send {
        (**self).create_network(body)
    }
}

/// A GET that answers `None` for 404.
async fn inspect(node: &Node, path: &str) -> Result<Option<Value>, EngineError> {
    match node.get_json(path).await {
        Ok(v) => Ok(Some(v)),
        Err(EngineError::Answer { status: StatusCode::NOT_FOUND, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A POST of a JSON body whose answer only matters by its status (and its message, for an error).
async fn post(node: &Node, path: &str, body: Value) -> Result<(), EngineError> {
    let broken = |cause: String| EngineError::Broken { node: node.label(), cause };
    let req = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(crate::body::full(body.to_string()))
        .map_err(|e| broken(e.to_string()))?;
    let resp = node.send(req).await?;
    let status = resp.status();
    let limited = http_body_util::Limited::new(resp.into_body(), 1 << 20);
    let bytes = limited.collect().await.map_err(|e| broken(e.to_string()))?.to_bytes();
    if status.is_success() {
        Ok(())
    } else {
        Err(EngineError::Answer { node: node.name(), status, message: crate::cluster::node::engine_message(&bytes) })
    }
}

#[cfg(test)]
pub mod fake {
    //! A map-backed engine for unit tests. It answers as dockerd 20.10 does where that matters to resolving: a
    //! container or a network is found by its full id, then its name, then a unique id prefix (an ambiguous
    //! prefix is a 400, as dockerd's), a volume by its name and an exec instance by its id; anything else is
    //! absent (404). It knows nothing of tenants: the labels it holds are what tenancy must check.

    use std::sync::Mutex;

    use http::StatusCode;
    use serde_json::{json, Value};

    use super::Lookup;
    use crate::cluster::EngineError;
    use crate::tenant::TENANT_LABEL;

    /// Containers (in inspect's shape), networks, volumes and exec instances, by insertion order.
    #[derive(Default)]
    pub struct FakeEngine {
        containers: Vec<Value>,
        /// Behind a lock: tenancy makes a tenant's default network on first use.
        networks: Mutex<Vec<Value>>,
        volumes: Mutex<Vec<Value>>,
        execs: Vec<Value>,
        /// Legacy links, by their full name (`parent/alias`, engine-side) and the id of the container linked.
        links: Vec<(String, String)>,
    }

    impl FakeEngine {
        /// A container named `name` engine-side (without the `/`), owned by `tenant` unless `None`.
        pub fn container(mut self, id: &str, name: &str, tenant: Option<&str>) -> FakeEngine {
            self.containers.push(json!({"Id": id, "Name": format!("/{name}"), "Config": {"Labels": labels(tenant)}}));
            self
        }

        /// A network named `name` engine-side, owned by `tenant` unless `None`; `default`: a tenant's default one.
        pub fn network(self, id: &str, name: &str, tenant: Option<&str>, default: bool) -> FakeEngine {
            let mut l = labels(tenant);
            if default {
                l[crate::tenant::DEFAULT_NETWORK_LABEL] = json!("true");
            }
            self.networks.lock().unwrap().push(json!({"Id": id, "Name": name, "Labels": l}));
            self
        }

        pub fn volume(self, name: &str, tenant: Option<&str>) -> FakeEngine {
            self.volumes.lock().unwrap().push(json!({"Name": name, "Labels": labels(tenant)}));
            self
        }

        /// An exec instance in the container `container` (an id).
        pub fn exec(mut self, id: &str, container: &str) -> FakeEngine {
            self.execs.push(json!({"ID": id, "ContainerID": container}));
            self
        }

        /// A legacy link: dockerd knows the linked container under `parent/alias` too.
        pub fn link(mut self, parent: &str, alias: &str, target: &str) -> FakeEngine {
            self.links.push((format!("{parent}/{alias}"), target.to_string()));
            self
        }

        /// The names of the networks and volumes now on the engine.
        pub fn network_names(&self) -> Vec<String> {
            self.networks.lock().unwrap().iter().map(|n| text(n, "Name").to_string()).collect()
        }

        pub fn volume_names(&self) -> Vec<String> {
            self.volumes.lock().unwrap().iter().map(|v| text(v, "Name").to_string()).collect()
        }
    }

    fn labels(tenant: Option<&str>) -> Value {
        match tenant {
            Some(t) => json!({TENANT_LABEL: t}),
            None => json!({}),
        }
    }

    fn text<'v>(v: &'v Value, key: &str) -> &'v str {
        v.get(key).and_then(Value::as_str).unwrap_or_default()
    }

    /// dockerd's order: full id, name, unique id prefix.
    fn find(all: &[Value], reference: &str, name_of: impl Fn(&Value) -> &str) -> Result<Option<Value>, EngineError> {
        if let Some(v) = all.iter().find(|v| text(v, "Id") == reference) {
            return Ok(Some(v.clone()));
        }
        if let Some(v) = all.iter().find(|v| name_of(v) == reference) {
            return Ok(Some(v.clone()));
        }
        let by_prefix: Vec<&Value> = all.iter().filter(|v| text(v, "Id").starts_with(reference)).collect();
        match by_prefix.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some((*one).clone())),
            _ => Err(EngineError::Answer {
                node: "fake".into(),
                status: StatusCode::BAD_REQUEST,
                message: format!("Multiple IDs found with provided prefix: {reference}"),
            }),
        }
    }

    fn answer(status: StatusCode, message: String) -> EngineError {
        EngineError::Answer { node: "fake".into(), status, message }
    }

    impl Lookup for FakeEngine {
        fn node_name(&self) -> String {
            "fake".into()
        }

        async fn inspect_container(&self, reference: &str) -> Result<Option<Value>, EngineError> {
            if reference.is_empty() {
                return Ok(None);
            }
            let reference = reference.trim_start_matches('/');
            if let Some((_, id)) = self.links.iter().find(|(name, _)| name == reference) {
                return Ok(self.containers.iter().find(|c| text(c, "Id") == id).cloned());
            }
            find(&self.containers, reference, |c| text(c, "Name").trim_start_matches('/'))
        }

        async fn list_containers(&self, label: &str) -> Result<Vec<Value>, EngineError> {
            let (key, value) = label.split_once('=').unwrap_or((label, ""));
            Ok(self
                .containers
                .iter()
                .filter(|c| c.pointer("/Config/Labels").and_then(|l| l.get(key)).and_then(Value::as_str) == Some(value))
                .map(|c| json!({"Id": c["Id"], "Names": [c["Name"]], "Labels": c["Config"]["Labels"]}))
                .collect())
        }

        async fn inspect_network(&self, reference: &str) -> Result<Option<Value>, EngineError> {
            if reference.is_empty() {
                return Ok(None);
            }
            let networks = self.networks.lock().unwrap().clone();
            find(&networks, reference, |n| text(n, "Name")).map_err(|_| {
                // dockerd's words for a network prefix that fits several.
                let n = networks.iter().filter(|n| text(n, "Id").starts_with(reference)).count();
                answer(
                    StatusCode::BAD_REQUEST,
                    format!("network {reference} is ambiguous ({n} matches found based on ID prefix)"),
                )
            })
        }

        async fn list_networks(&self, label: &str) -> Result<Vec<Value>, EngineError> {
            let (key, value) = label.split_once('=').unwrap_or((label, ""));
            let networks = self.networks.lock().unwrap().clone();
            Ok(networks
                .into_iter()
                .filter(|n| n.pointer("/Labels").and_then(|l| l.get(key)).and_then(Value::as_str) == Some(value))
                .collect())
        }

        async fn inspect_volume(&self, name: &str) -> Result<Option<Value>, EngineError> {
            Ok(self.volumes.lock().unwrap().iter().find(|v| text(v, "Name") == name).cloned())
        }

        async fn inspect_exec(&self, id: &str) -> Result<Option<Value>, EngineError> {
            Ok(self.execs.iter().find(|e| text(e, "ID") == id).cloned())
        }

        async fn create_volume(&self, body: Value) -> Result<(), EngineError> {
            let mut volumes = self.volumes.lock().unwrap();
            // dockerd answers a volume that exists with that volume.
            if !volumes.iter().any(|v| v["Name"] == body["Name"]) {
                volumes.push(json!({"Name": body["Name"], "Labels": body["Labels"]}));
            }
            Ok(())
        }

        async fn create_network(&self, body: Value) -> Result<(), EngineError> {
            let mut networks = self.networks.lock().unwrap();
            if networks.iter().any(|n| n["Name"] == body["Name"]) {
                let name = text(&body, "Name");
                return Err(answer(StatusCode::CONFLICT, format!("network with name {name} already exists")));
            }
            let id = format!("{:064x}", 0xbb00 + networks.len());
            networks.push(json!({"Id": id, "Name": body["Name"], "Labels": body["Labels"]}));
            Ok(())
        }
    }
}
