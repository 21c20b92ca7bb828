//! Rewriting request bodies into engine-side references, and engine answers into the tenant's view.

use std::collections::{BTreeSet, HashSet};

use bytes::Bytes;
use http::{header, Response, StatusCode};
use serde_json::{Map, Value};

use super::lookup::Lookup;
use super::resolve::{ResolveError, Resolver};
use super::{names, Answer, SHARED_NETWORKS, TENANT_LABEL};
use crate::api::ApiError;
use crate::body::{self, Body};
use crate::tenant::view;

/// The key of a field in a canonical document ([`crate::api::decode`]): Docker's spelling, present at most once.
fn key_of(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.contains_key(key).then(|| key.to_string())
}

fn field_mut<'a>(obj: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Value> {
    obj.get_mut(key)
}

fn forbidden(msg: impl Into<String>) -> ApiError {
    ApiError::denied(StatusCode::FORBIDDEN, crate::api::DenyKind::Isolation, msg)
}

/// Adds the tenant's label; a client may not set it.
fn label_for(tenant: &str, obj: &mut Map<String, Value>) -> Result<(), ApiError> {
    let k = key_of(obj, "Labels").unwrap_or_else(|| "Labels".to_string());
    let labels = obj.entry(k).or_insert_with(|| Value::Object(Map::new()));
    if labels.is_null() {
        *labels = Value::Object(Map::new());
    }
    let labels = labels.as_object_mut().ok_or_else(|| ApiError::bad_request("Labels must be an object"))?;
    refuse_tenant_label(labels)?;
    labels.insert(TENANT_LABEL.to_string(), Value::from(tenant));
    Ok(())
}

/// Only mtswarm sets the ownership label and the mark of a tenant's private default network (which no quota
/// counts and no prune removes), in any case, so no look-alike of them can be made either.
fn refuse_tenant_label(labels: &Map<String, Value>) -> Result<(), ApiError> {
    for reserved in [TENANT_LABEL, crate::tenant::DEFAULT_NETWORK_LABEL] {
        if labels.keys().any(|k| k.eq_ignore_ascii_case(reserved)) {
            return Err(forbidden(format!("the label {reserved} is set by mtswarm and may not be given")));
        }
    }
    Ok(())
}

fn object(doc: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    doc.as_object_mut().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))
}

/// `POST /containers/create`: label, named volumes, and every container and network reference. `name` is
/// the container's name as the tenant knows it: on the tenant's own networks it is also a DNS alias, so
/// containers find each other by the names their tenant gave them. `own_bridge` is the engine-side name of the
/// tenant's default network, when the container goes there instead of the engine's `bridge`.
pub async fn container_create<L: Lookup + ?Sized>(
    r: &Resolver<'_, L>,
    name: &str,
    doc: &mut Value,
    own: &mut HashSet<String>,
    own_bridge: Option<&str>,
) -> Result<(), ApiError> {
    let obj = object(doc)?;
    label_for(r.tenant, obj)?;
    // The decoder has folded the pre-1.2x top-level layout into the one HostConfig.
    let mut mode_network = None;
    let mut links = Vec::new();
    if own_bridge.is_some() && obj.get("HostConfig").is_none_or(Value::is_null) {
        obj.insert("HostConfig".into(), Value::Object(Map::new()));
    }
    if let Some(hc) = field_mut(obj, "HostConfig").and_then(Value::as_object_mut) {
        rewrite_host_config(r, hc, own).await?;
        if let Some(bridge) = own_bridge {
            let mode = hc.get("NetworkMode").and_then(Value::as_str).unwrap_or_default();
            if crate::tenant::is_default_name(mode) {
                hc.insert("NetworkMode".into(), Value::from(bridge));
            }
            links = hc.get("Links").and_then(Value::as_array).cloned().unwrap_or_default();
        }
        mode_network = field_mut(hc, "NetworkMode").and_then(|m| m.as_str()).map(str::to_string);
    }
    let nc_key = key_of(obj, "NetworkingConfig").unwrap_or_else(|| "NetworkingConfig".into());
    let nc = obj.entry(nc_key).or_insert_with(|| Value::Object(Map::new()));
    if nc.is_null() {
        *nc = Value::Object(Map::new());
    }
    let Some(nc) = nc.as_object_mut() else { return Err(ApiError::bad_request("NetworkingConfig must be an object")) };
    let eps_key = key_of(nc, "EndpointsConfig").unwrap_or_else(|| "EndpointsConfig".into());
    let eps = nc.entry(eps_key).or_insert_with(|| Value::Object(Map::new()));
    if eps.is_null() {
        *eps = Value::Object(Map::new());
    }
    let Some(eps) = eps.as_object_mut() else { return Err(ApiError::bad_request("EndpointsConfig must be an object")) };
    let old = std::mem::take(eps);
    for (net, mut settings) in old {
        // The engine's bridge, however named (its id too), is the tenant's own one.
        let resolved = match (own_bridge, network_mode_target(r, &net).await?) {
            (Some(bridge), n) if crate::tenant::is_default_name(&net) || n == crate::tenant::DEFAULT_NETWORK => {
                bridge.to_string()
            }
            (_, n) => n,
        };
        endpoint_settings(r, &net, &resolved, &mut settings, "NetworkingConfig.EndpointsConfig.").await?;
        eps.insert(resolved, settings);
    }
    // The network the container starts on, when only NetworkMode names it.
    if let Some(m) = mode_network.filter(|m| m.starts_with(&names::prefix(r.tenant))) {
        eps.entry(m).or_insert_with(|| Value::Object(Map::new()));
    }
    // dockerd makes the legacy links of HostConfig only on its default bridge; on a user-defined network a
    // link is the endpoint's (a name the container resolves), so `--link` keeps working on the tenant's own.
    if let Some(settings) = own_bridge.and_then(|b| eps.get_mut(b)).filter(|_| !links.is_empty()) {
        add_links(settings, &links)?;
    }
    for (net, settings) in eps.iter_mut() {
        if net.starts_with(&names::prefix(r.tenant)) {
            add_alias(settings, name)?;
        }
    }
    if eps.is_empty() {
        obj.remove(&key_of(obj, "NetworkingConfig").unwrap_or_default());
    }
    Ok(())
}

/// Adds a DNS alias to an endpoint's settings.
fn add_alias(settings: &mut Value, alias: &str) -> Result<(), ApiError> {
    if settings.is_null() {
        *settings = Value::Object(Map::new());
    }
    let s = settings.as_object_mut().ok_or_else(|| ApiError::bad_request("endpoint settings must be an object"))?;
    let k = key_of(s, "Aliases").unwrap_or_else(|| "Aliases".into());
    let aliases = s.entry(k).or_insert_with(|| Value::Array(Vec::new()));
    if aliases.is_null() {
        *aliases = Value::Array(Vec::new());
    }
    let list = aliases.as_array_mut().ok_or_else(|| ApiError::bad_request("Aliases must be a list"))?;
    if !list.iter().any(|a| a.as_str() == Some(alias)) {
        list.push(Value::from(alias));
    }
    Ok(())
}

/// Adds links (already engine-side, `container:alias`) to an endpoint's settings.
fn add_links(settings: &mut Value, links: &[Value]) -> Result<(), ApiError> {
    if settings.is_null() {
        *settings = Value::Object(Map::new());
    }
    let s = settings.as_object_mut().ok_or_else(|| ApiError::bad_request("endpoint settings must be an object"))?;
    let list = s.entry("Links").or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    let list = list.as_array_mut().ok_or_else(|| ApiError::bad_request("Links must be a list"))?;
    // As a client writes them (`db:alias`), once each.
    let mut all: Vec<Value> = Vec::new();
    for l in list.iter().chain(links) {
        let l = l.as_str().map(|s| Value::from(s.trim_start_matches('/'))).unwrap_or_else(|| l.clone());
        if !all.contains(&l) {
            all.push(l);
        }
    }
    *list = all;
    Ok(())
}

/// The settings of one endpoint, on the network that resolved to the engine-side `resolved`; `at` and `key` name
/// them in errors in the tenant's words (`NetworkingConfig.EndpointsConfig.` and the key as the tenant wrote it,
/// or `EndpointConfig` in a connect, never the engine-side name). dockerd attaches to the network `NetworkID` names instead of the key's, for a user-defined
/// network: it must be the tenant's too, and is sent as its engine id. The endpoint id is the engine's to set,
/// and driver options reach the network driver: neither is the tenant's.
async fn endpoint_settings<L: Lookup + ?Sized>(
    r: &Resolver<'_, L>,
    key: &str,
    resolved: &str,
    settings: &mut Value,
    at: &str,
) -> Result<(), ApiError> {
    let Some(s) = settings.as_object_mut() else { return Ok(()) };
    if let Some(links) = field_mut(s, "Links") {
        rewrite_links(r, links, Links::OnNetwork).await?;
    }
    s.remove("EndpointID");
    if s.get("DriverOpts").and_then(Value::as_object).is_some_and(|o| !o.is_empty()) {
        return Err(forbidden(format!("{at}{key}.DriverOpts: endpoint driver options are not available to tenants")));
    }
    s.remove("DriverOpts");
    let Some(id) = s.remove("NetworkID") else { return Ok(()) };
    let id = id.as_str().unwrap_or_default();
    let user_defined = !(resolved.is_empty()
        || resolved == "default"
        || resolved == "host"
        || SHARED_NETWORKS.contains(&resolved)
        || resolved.starts_with("container:"));
    if id.is_empty() || !user_defined {
        // dockerd reads NetworkID only for a user-defined network.
        return Ok(());
    }
    let n = r.network(id).await.map_err(|e| match e {
        ResolveError::NotFound { .. } => ApiError::bad_request(format!("{at}{key}.NetworkID: network {id} not found")),
        e => ApiError::from(e),
    })?;
    if n.shared {
        return Err(ApiError::bad_request(format!(
            "{at}{key}.NetworkID: {id} is a pre-defined network; name it as the key instead"
        )));
    }
    s.insert("NetworkID".into(), Value::from(n.id));
    Ok(())
}

/// A container named in a create body. dockerd answers a missing one with 400 (404 would make the docker
/// CLI think the image is missing and try to pull it).
async fn referenced<L: Lookup + ?Sized>(
    r: &Resolver<'_, L>,
    reference: &str,
    context: &str,
) -> Result<super::resolve::OwnContainer, ApiError> {
    r.container(reference).await.map_err(|e| match e {
        ResolveError::NotFound { .. } => ApiError::bad_request(format!("{context}{e}")),
        e => ApiError::from(e),
    })
}

/// The volume a bind names, `name:/path[:mode]`, unless it binds a host path.
fn bind_volume(bind: &str) -> Option<&str> {
    let (name, _) = bind.split_once(':')?;
    names::valid_name(name).then_some(name)
}

/// The volume a mount of `Type` `volume` names.
fn mount_volume(m: &Map<String, Value>) -> Option<&str> {
    let field = |k: &str| key_of(m, k).and_then(|k| m.get(&k)).and_then(Value::as_str);
    if field("Type") != Some("volume") {
        return None;
    }
    field("Source").filter(|s| names::valid_name(s))
}

/// The named volumes a create body uses, as the tenant names them.
pub fn named_volumes(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(hc) = doc.get("HostConfig").and_then(Value::as_object) else { return out };
    let list = |k: &str| hc.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    out.extend(list("Binds").iter().filter_map(Value::as_str).filter_map(bind_volume).map(str::to_string));
    out.extend(list("Mounts").iter().filter_map(Value::as_object).filter_map(mount_volume).map(str::to_string));
    out
}

async fn rewrite_host_config<L: Lookup + ?Sized>(
    r: &Resolver<'_, L>,
    hc: &mut Map<String, Value>,
    own: &mut HashSet<String>,
) -> Result<(), ApiError> {
    if let Some(Value::Array(binds)) = field_mut(hc, "Binds") {
        for b in binds.iter_mut() {
            let Some(s) = b.as_str() else { continue };
            // A named volume is the tenant's (created for it if missing). Host paths are left for the escape
            // checks to refuse.
            if let Some(name) = bind_volume(s) {
                let mut parts: Vec<String> = s.split(':').map(str::to_string).collect();
                parts[0] = r.ensure_volume(name).await?;
                *b = Value::from(parts.join(":"));
            }
        }
    }
    if let Some(Value::Array(mounts)) = field_mut(hc, "Mounts") {
        for m in mounts.iter_mut() {
            let Some(m) = m.as_object_mut() else { continue };
            if let Some(labels) = m.get("VolumeOptions").and_then(|o| o.get("Labels")).and_then(Value::as_object) {
                refuse_tenant_label(labels)?;
            }
            let Some(name) = mount_volume(m).map(str::to_string) else { continue };
            if let Some(src) = field_mut(m, "Source") {
                *src = Value::from(r.ensure_volume(&name).await?);
            }
        }
    }
    if let Some(Value::Array(from)) = field_mut(hc, "VolumesFrom") {
        for v in from.iter_mut() {
            let Some(s) = v.as_str() else { continue };
            let (name, mode) = match s.split_once(':') {
                Some((n, m)) => (n, Some(m)),
                None => (s, None),
            };
            let c = referenced(r, name, "").await?;
            *v = Value::from(match mode {
                Some(m) => format!("{}:{m}", c.id),
                None => c.id,
            });
        }
    }
    // On a user-defined network dockerd makes HostConfig's links the network's (a target may come later).
    let mode = field_mut(hc, "NetworkMode").and_then(|m| m.as_str()).unwrap_or_default().to_string();
    let user_defined = !(mode.is_empty()
        || mode == "default"
        || mode == "host"
        || mode == "none"
        || SHARED_NETWORKS.contains(&mode.as_str())
        || mode.starts_with("container:"));
    if let Some(links) = field_mut(hc, "Links") {
        rewrite_links(r, links, if user_defined { Links::OnNetwork } else { Links::Legacy }).await?;
    }
    for key in ["PidMode", "IpcMode", "Cgroup"] {
        if let Some(v) = field_mut(hc, key) {
            if let Some(target) = v.as_str().and_then(|s| s.strip_prefix("container:")).map(str::to_string) {
                let c = referenced(r, &target, "").await?;
                *v = Value::from(format!("container:{}", c.id));
                own.insert(c.id);
            }
        }
    }
    if let Some(v) = field_mut(hc, "NetworkMode") {
        if let Some(mode) = v.as_str().map(str::to_string) {
            if let Some(target) = mode.strip_prefix("container:") {
                let c = referenced(r, target, "").await?;
                *v = Value::from(format!("container:{}", c.id));
                own.insert(c.id);
            } else {
                *v = Value::from(network_mode_target(r, &mode).await?);
            }
        }
    }
    Ok(())
}

/// A network named in a create: Docker's own modes stay (host is for the escape checks to refuse), a
/// network name becomes the tenant's engine-side one.
async fn network_mode_target<L: Lookup + ?Sized>(r: &Resolver<'_, L>, mode: &str) -> Result<String, ApiError> {
    if mode.is_empty() || mode == "default" || mode == "host" || SHARED_NETWORKS.contains(&mode) {
        return Ok(mode.to_string());
    }
    match r.network(mode).await {
        Ok(n) => Ok(n.name),
        // As dockerd: the create succeeds and the start says the network is not found (in the tenant's words).
        Err(ResolveError::NotFound { .. }) => Ok(names::scope(r.tenant, mode)),
        Err(e) => Err(e.into()),
    }
}

/// Where links are given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Links {
    /// `HostConfig.Links`: the container must exist (dockerd: "could not get container for ...").
    Legacy,
    /// An endpoint's links on a user-defined network: names the network's DNS resolves once such a container
    /// joins, which need not exist yet (dockerd accepts them). Only the tenant's containers can join its networks.
    OnNetwork,
}

/// `name:alias` links name the tenant's containers.
async fn rewrite_links<L: Lookup + ?Sized>(
    r: &Resolver<'_, L>,
    links: &mut Value,
    kind: Links,
) -> Result<(), ApiError> {
    let Value::Array(list) = links else { return Ok(()) };
    for l in list.iter_mut() {
        let Some(s) = l.as_str() else { continue };
        let (name, alias) = match s.split_once(':') {
            Some((n, a)) => (n.to_string(), a.to_string()),
            None => (s.to_string(), s.trim_start_matches('/').to_string()),
        };
        let bare = name.trim_start_matches('/');
        let target = match kind {
            Links::OnNetwork => match r.container(&name).await {
                Ok(c) => c.engine_name,
                Err(ResolveError::NotFound { .. }) if names::valid_name(bare) => names::scope(r.tenant, bare),
                Err(e) => return Err(e.into()),
            },
            Links::Legacy => referenced(r, &name, &format!("could not get container for {name}: ")).await?.engine_name,
        };
        *l = Value::from(format!("{target}:{alias}"));
    }
    Ok(())
}

/// `POST /networks/create`.
pub fn network_create(tenant: &str, doc: &mut Value) -> Result<(), ApiError> {
    let obj = object(doc)?;
    let name = field_mut(obj, "Name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
    if !names::valid_name(&name) {
        return Err(ApiError::bad_request(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    if SHARED_NETWORKS.contains(&name.as_str()) || name == "host" {
        return Err(forbidden(format!("{name} is a pre-defined network")));
    }
    let k = key_of(obj, "Name").unwrap_or_else(|| "Name".into());
    obj.insert(k, Value::from(names::scope(tenant, &name)));
    // Drivers, options and subnets are policy's (`policy::networks`), checked before this.
    label_for(tenant, obj)
}

/// `POST /volumes/create`: an unnamed volume gets a random name, as dockerd gives one.
pub fn volume_create(tenant: &str, doc: &mut Value) -> Result<(), ApiError> {
    let obj = object(doc)?;
    let name = field_mut(obj, "Name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
    let name = if name.is_empty() {
        let r: [u8; 32] = crate::random::bytes().map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("mtswarm could not make up a name: {e}"))
        })?;
        hex::encode(r)
    } else if names::valid_name(&name) {
        name
    } else {
        return Err(ApiError::bad_request(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
        )));
    };
    let k = key_of(obj, "Name").unwrap_or_else(|| "Name".into());
    obj.insert(k, Value::from(names::scope(tenant, &name)));
    label_for(tenant, obj)
}

/// `POST /networks/{id}/connect|disconnect`: the container is the tenant's. Connecting to one of the tenant's
/// networks adds the container's name as the tenant knows it as a DNS alias.
pub async fn network_attach<L: Lookup + ?Sized>(
    r: &Resolver<'_, L>,
    network: &super::resolve::UsableNetwork,
    doc: &mut Value,
    alias: bool,
) -> Result<(), ApiError> {
    let obj = object(doc)?;
    if let Some(settings) = obj.get_mut("EndpointConfig") {
        endpoint_settings(r, "EndpointConfig", &network.name, settings, "").await?;
        // dockerd's NetworkID must name the network of the path: attaching elsewhere is another request.
        if let Some(id) = settings.get("NetworkID").and_then(Value::as_str) {
            if id != network.id {
                return Err(ApiError::bad_request(format!(
                    "EndpointConfig.NetworkID: {id} is not the network {} of the request",
                    names::unscope(r.tenant, &network.name).unwrap_or(network.name.as_str().into())
                )));
            }
        }
    }
    let Some(c) = field_mut(obj, "Container") else { return Ok(()) };
    let reference = c.as_str().unwrap_or_default().to_string();
    let own = r.container(&reference).await?;
    *c = Value::from(own.id.clone());
    if alias {
        let name = names::unscope(r.tenant, &own.engine_name).map(|n| n.trim_start_matches('/').to_string());
        if let Some(name) = name {
            let k = key_of(obj, "EndpointConfig").unwrap_or_else(|| "EndpointConfig".into());
            add_alias(obj.entry(k).or_insert(Value::Null), &name)?;
        }
    }
    Ok(())
}

/// Turns an engine's answer (read whole) into the tenant's view.
pub fn rewrite_answer(tenant: &str, answer: &Answer, resp: Response<Bytes>) -> Response<Body> {
    let (mut parts, bytes) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let out = view::answer(tenant, answer, parts.status.is_success(), bytes);
    Response::from_parts(parts, body::full(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_client_cannot_set_the_tenant_label() {
        let mut doc = json!({"Name": "back", "Labels": {"MTSWARM.TENANT": "bob"}});
        assert_eq!(network_create("alice", &mut doc).unwrap_err().status, StatusCode::FORBIDDEN);
        // Nor the mark of the private default network, which no quota counts and no prune removes.
        let mut doc = json!({"Name": "free", "Labels": {"mtswarm.default-network": "true"}});
        assert_eq!(network_create("alice", &mut doc).unwrap_err().status, StatusCode::FORBIDDEN);
        let mut doc = json!({"Name": "back"});
        network_create("alice", &mut doc).unwrap();
        assert_eq!(doc, json!({"Name": "t5-alice-back", "Labels": {"mtswarm.tenant": "alice"}}));
        let mut doc = json!({"Name": "host"});
        assert!(network_create("alice", &mut doc).is_err());
        let mut doc = json!({});
        volume_create("alice", &mut doc).unwrap();
        assert!(doc["Name"].as_str().unwrap().starts_with("t5-alice-"));
    }
}
