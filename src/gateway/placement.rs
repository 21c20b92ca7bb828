//! Placement in a cluster: the node of a new object (a container by the scheduler, under the cluster's lock and
//! with a reservation; a network or volume where its dependencies are), and names that must be free on every
//! node.

use std::collections::BTreeSet;
use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::Value;

use super::bodies::Upstream;
use super::route::{field, query_get, strings, Probe};
use super::{Forward, Gateway, RequestCtx};
use crate::api::{ApiError, ContainerOp, Endpoint};
use crate::body::Body;
use crate::cluster::{CachedContainer, Node};
use crate::scheduler;
use crate::tenancy;
use crate::tenant::{names, Scope};

impl Gateway {
    /// The node a new network or volume goes to: the one that already has that name (the engine then answers
    /// as it does for a duplicate), else the least loaded.
    pub(crate) async fn node_for_new_object(
        &self,
        req: &Forward<'_>,
        doc: Option<&Value>,
    ) -> Result<Arc<Node>, ApiError> {
        if !self.cluster.is_cluster() {
            return self.cluster.any_node();
        }
        let name = doc.and_then(|d| field(d, "Name")).and_then(Value::as_str).filter(|n| !n.is_empty());
        if let Some(name) = name {
            let probe = match req.endpoint {
                Endpoint::NetworkCreate => Probe::Network(name.to_string()),
                _ => Probe::Volume(name.to_string()),
            };
            if let Some(n) = self.find(&probe, req.scope).await? {
                return Ok(n);
            }
        }
        self.cluster.least_loaded()
    }

    /// A container create in a cluster: the scheduler chooses among the nodes, room is reserved there while the
    /// engine creates it, and a node found unavailable on the way is left for the next choice.
    pub(crate) async fn create_in_cluster(
        &self,
        ctx: &mut RequestCtx,
        req: &Forward<'_>,
        mut doc: Value,
        body: Upstream,
    ) -> Result<Response<Body>, ApiError> {
        let placement_err = |m: String| ApiError::bad_request(m);
        let before = req.scope.tenant_str().is_none().then(|| doc.clone());
        let mut placement = scheduler::placement_from_create(&mut doc).map_err(placement_err)?;
        // The operator's body goes as it came, unless the scheduler moved `-e constraint:` entries into labels.
        let body = match (before, body) {
            (Some(before), Upstream::Bytes(bytes)) if before == doc => Some(bytes),
            _ => None,
        };
        placement.colocate = self.dependencies(&doc, req.scope).await?;
        let (engine_name, _name_lock) = self.claim_name(req).await?;
        let reservation = CachedContainer {
            name: engine_name.clone().unwrap_or_default(),
            tenant: req.scope.tenant_str().map(str::to_string),
            image: placement.image.clone(),
            memory: placement.memory,
            nano_cpus: placement.nano_cpus,
            published: placement.ports.clone(),
            ..Default::default()
        };
        let attempts = self.cluster.nodes().len().max(1);
        let mut last = None;
        for _ in 0..attempts {
            let ticket = self.cluster.place(req.scope.tenant_str(), &placement, reservation.clone()).map_err(|e| {
                match e.missing_image {
                    // As one engine without the image: the client pulls it (on every node) and creates again.
                    Some(image) => ApiError::not_found(format!("No such image: {image}")),
                    None => ApiError::unavailable(e.message),
                }
            })?;
            let node = ticket.node.clone();
            let upstream = match &body {
                Some(bytes) => Upstream::Bytes(bytes.clone()),
                None => Upstream::Doc(doc.clone()),
            };
            match self.send_to(ctx, &node, req, upstream).await {
                Ok((resp, created)) => {
                    ticket.settle(created.as_deref());
                    return Ok(resp);
                }
                Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE && !node.healthy() => {
                    ticket.settle(None);
                    tracing::info!(node = %node.addr, "the chosen node is unavailable; placing the container again");
                    last = Some(e);
                }
                Err(e) => {
                    ticket.settle(None);
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ApiError::unavailable("no node could take the container")))
    }

    /// The engine-side name a create or a rename gives a container (its `name` query), checked free on every node
    /// and held until the engine has answered: one engine keeps names unique, the cluster does it across engines.
    pub(crate) async fn claim_name(
        &self,
        req: &Forward<'_>,
    ) -> Result<(Option<String>, Option<tokio::sync::OwnedMutexGuard<()>>), ApiError> {
        let Some(name) = query_get(req.parts.uri.query(), "name").map(|n| n.trim_start_matches('/').to_string()) else {
            return Ok((None, None));
        };
        let engine_name = match req.scope.tenant_str() {
            Some(t) => names::scope(t, &name),
            None => name.clone(),
        };
        let lock = self.quota_locks.lock(&format!("\0name\0{engine_name}")).await;
        self.check_name_is_free(&engine_name, &name).await.map_err(|mut e| {
            // dockerd's rename says what it was doing.
            if e.status == StatusCode::CONFLICT
                && matches!(req.endpoint, Endpoint::Container { op: ContainerOp::Rename, .. })
            {
                e.message = format!("Error when allocating new name: {}", e.message);
            }
            e
        })?;
        Ok((Some(engine_name), Some(lock)))
    }

    /// Refuses a name a container already has on any node, as dockerd refuses it on one.
    async fn check_name_is_free(&self, engine_name: &str, shown: &str) -> Result<(), ApiError> {
        let filters = serde_json::json!({"name": {format!("^/{}$", regex::escape(engine_name)): true}}).to_string();
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("all", "1")
            .append_pair("filters", &filters)
            .finish();
        let nodes = self.cluster.healthy_nodes();
        let lists = futures_util::future::join_all(nodes.iter().map(|n| {
            let path = format!("/containers/json?{q}");
            async move { n.get_json(&path).await }
        }))
        .await;
        let mut holder = None;
        for list in lists {
            let list = list.map_err(ApiError::from)?;
            if let Some(id) = list.as_array().and_then(|l| l.first()).and_then(|c| c.get("Id")).and_then(Value::as_str)
            {
                holder = Some(id.to_string());
            }
        }
        if holder.is_none() {
            holder =
                self.cluster.nodes().iter().filter(|n| !n.healthy()).find_map(|n| {
                    n.holdings().containers.values().find(|c| c.name == engine_name).map(|c| c.id.clone())
                });
        }
        match holder {
            Some(id) => Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "Conflict. The container name \"/{shown}\" is already in use by container \"{id}\". \
                     You have to remove (or rename) that container to be able to reuse that name."
                ),
            )),
            None => Ok(()),
        }
    }

    /// The nodes where the objects a create body depends on live: the containers it shares volumes, links or
    /// namespaces with, the networks it joins and the named volumes it mounts.
    async fn dependencies(&self, doc: &Value, scope: &Scope) -> Result<BTreeSet<String>, ApiError> {
        let mut probes = Vec::new();
        // The canonical document holds one HostConfig.
        if let Some(hc) = field(doc, "HostConfig") {
            for v in strings(hc, "VolumesFrom") {
                probes.push(Probe::Container(v.split(':').next().unwrap_or_default().to_string()));
            }
            for l in strings(hc, "Links") {
                probes.push(Probe::Container(
                    l.split(':').next().unwrap_or_default().trim_start_matches('/').to_string(),
                ));
            }
            for key in ["NetworkMode", "PidMode", "IpcMode", "Cgroup"] {
                let Some(mode) = field(hc, key).and_then(Value::as_str) else { continue };
                if let Some(c) = mode.strip_prefix("container:") {
                    probes.push(Probe::Container(c.to_string()));
                } else if key == "NetworkMode" && is_user_network(mode) {
                    probes.push(Probe::Network(mode.to_string()));
                }
            }
        }
        if let Some(eps) =
            field(doc, "NetworkingConfig").and_then(|n| field(n, "EndpointsConfig")).and_then(Value::as_object)
        {
            probes.extend(eps.keys().filter(|n| is_user_network(n)).map(|n| Probe::Network(n.clone())));
        }
        probes.extend(tenancy::named_volumes(doc).into_iter().map(Probe::Volume));
        let mut out = BTreeSet::new();
        for p in probes {
            if matches!(&p, Probe::Container(r) if r.is_empty()) {
                continue;
            }
            let found = match &p {
                // A missing container is the engine's 400 later, on the chosen node, as without a cluster.
                Probe::Container(_) => match self.locate(&p, scope).await {
                    Ok(n) => Some(n),
                    Err(e) if e.status == StatusCode::NOT_FOUND => None,
                    Err(e) => return Err(e),
                },
                // A network every node has (an overlay network) places nothing.
                Probe::Network(_) => {
                    let on = self.find_all(&p, scope).await?;
                    if on.len() == 1 {
                        on.into_iter().next()
                    } else {
                        None
                    }
                }
                _ => self.find(&p, scope).await?,
            };
            if let Some(n) = found {
                out.insert(n.name());
            }
        }
        Ok(out)
    }
}

/// A network a container joins by name that is not one of the engine's own.
fn is_user_network(name: &str) -> bool {
    !name.is_empty() && !["default", "bridge", "none", "host"].contains(&name) && !name.starts_with("container:")
}
