//! The tenant's view of an engine's answers: its own objects only, under its names, without mtswarm's labels.
//! Pure functions over the engine's JSON, table-tested below.

use bytes::Bytes;
use serde_json::Value;

use super::{names, sparse, Answer, DEFAULT_NETWORK, DEFAULT_NETWORK_LABEL, SHARED_NETWORKS, TENANT_LABEL};

/// The body of an engine's answer, read whole, as the tenant sees it (`success`: the status was 2xx).
pub fn answer(tenant: &str, answer: &Answer, success: bool, bytes: Bytes) -> Bytes {
    if !success {
        // Engines name objects in their errors ("The container name "/t5-alice-web" is already in use"), and
        // name a container by the reference they were sent, which is its id: the tenant reads what it typed.
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if let Answer::Named { engine, user } = answer {
            text = text.replace(engine.as_str(), &json_escaped(user));
        }
        return Bytes::from(names::unscope_text(tenant, &text));
    }
    if let Answer::ContainerInspect = answer {
        if let Some((layout, mut v)) = sparse::read(&bytes, CONTAINER_FIELDS) {
            return inspect_shown(tenant, &layout, &mut v, bytes.len());
        }
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut v) => {
            document(tenant, answer, &mut v);
            Bytes::from(v.to_string() + "\n")
        }
        Err(_) => bytes,
    }
}

/// A container's inspect, as its owner sees it; `None` when it is not `tenant`'s (the engine's answer to a reference
/// sent as the tenant gave it, before it was resolved: the label decides, as when resolving).
pub fn own_container(tenant: &str, bytes: &[u8]) -> Option<Bytes> {
    let (layout, mut v) = sparse::read(bytes, CONTAINER_FIELDS)?;
    if super::container_owner(&v) != Some(tenant) {
        return None;
    }
    Some(inspect_shown(tenant, &layout, &mut v, bytes.len()))
}

/// A container's inspect, read sparsely, as the tenant sees it.
fn inspect_shown(tenant: &str, layout: &sparse::Layout<'_>, v: &mut Value, size: usize) -> Bytes {
    container(tenant, v);
    let mut out = Vec::with_capacity(size + 1);
    layout.write(v, &mut out);
    out.push(b'\n');
    Bytes::from(out)
}

/// Text as it may stand inside a JSON string.
fn json_escaped(text: &str) -> String {
    let quoted = Value::from(text).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

fn unscope_value(tenant: &str, v: &mut Value) {
    if let Some(s) = v.as_str() {
        if let Some(u) = names::unscope(tenant, s) {
            *v = Value::from(u.into_owned());
        }
    }
}

fn unscope_keys(tenant: &str, v: Option<&mut Value>) {
    if let Some(Value::Object(map)) = v {
        let old = std::mem::take(map);
        for (k, val) in old {
            let k = names::unscope(tenant, &k).map(|c| c.into_owned()).unwrap_or(k);
            map.insert(k, val);
        }
    }
}

/// The ownership label and the private network's mark are mtswarm's bookkeeping: a tenant sees the labels it gave,
/// as on its own engine.
fn hide_owner(labels: Option<&mut Value>) {
    if let Some(Value::Object(labels)) = labels {
        labels.remove(TENANT_LABEL);
        labels.remove(DEFAULT_NETWORK_LABEL);
    }
}

/// Every member of a container (an inspect, or a list entry) that [`container`] reads or writes: an inspect is read
/// only so far ([`sparse`]), so a change to `container` that touches another member must name it here too.
const CONTAINER_FIELDS: &[sparse::Path] = &[
    &["Name"],
    &["Names"],
    &["Labels"],
    &["Mounts"],
    &["Config", "Labels"],
    &["HostConfig", "Links"],
    &["HostConfig", "Binds"],
    &["HostConfig", "NetworkMode"],
    &["NetworkSettings", "Networks"],
];

/// The names a container shows: its own, its links, its networks and its volumes; its labels without the owner's.
/// It reads and writes only the members [`CONTAINER_FIELDS`] names.
pub fn container(tenant: &str, c: &mut Value) {
    hide_owner(super::at_mut(c, &["Config", "Labels"]));
    hide_owner(c.get_mut("Labels"));
    if let Some(n) = c.get_mut("Name") {
        unscope_value(tenant, n);
    }
    if let Some(Value::Array(list)) = c.get_mut("Names") {
        for n in list.iter_mut() {
            if let Some(s) = n.as_str() {
                *n = Value::from(names::unscope_path(tenant, s));
            }
        }
    }
    own_bridge_links(tenant, c);
    if let Some(Value::Array(links)) = super::at_mut(c, &["HostConfig", "Links"]) {
        for l in links.iter_mut() {
            if let Some(s) = l.as_str() {
                *l = Value::from(names::unscope_path(tenant, s));
            }
        }
    }
    if let Some(Value::Array(binds)) = super::at_mut(c, &["HostConfig", "Binds"]) {
        for b in binds.iter_mut() {
            if let Some(s) = b.as_str() {
                *b = Value::from(names::unscope_path(tenant, s));
            }
        }
    }
    if let Some(mode) = super::at_mut(c, &["HostConfig", "NetworkMode"]) {
        unscope_value(tenant, mode);
    }
    unscope_keys(tenant, super::at_mut(c, &["NetworkSettings", "Networks"]));
    // A link on a user-defined network (the tenant's `bridge` too) is the endpoint's: `t5-alice-db:db`.
    if let Some(Value::Object(eps)) = super::at_mut(c, &["NetworkSettings", "Networks"]) {
        for links in eps.values_mut().filter_map(|ep| ep.get_mut("Links")).filter_map(Value::as_array_mut) {
            for l in links.iter_mut() {
                if let Some(s) = l.as_str() {
                    *l = Value::from(names::unscope_path(tenant, s));
                }
            }
        }
    }
    if let Some(Value::Array(mounts)) = c.get_mut("Mounts") {
        for m in mounts.iter_mut() {
            let engine_name = m.get("Name").and_then(Value::as_str).unwrap_or_default().to_string();
            if let Some(source) = m.get_mut("Source") {
                volume_path(tenant, &engine_name, source);
            }
            if let Some(n) = m.get_mut("Name") {
                unscope_value(tenant, n);
            }
        }
    }
}

/// dockerd keeps a link on a user-defined network in the endpoint (`t5-alice-db:db`), not in HostConfig: a
/// container on the tenant's own bridge shows its links in HostConfig as the engine's bridge shows them
/// (`/t5-alice-db:/t5-alice-web/db`, unscoped after), since the tenant asked for them there.
fn own_bridge_links(tenant: &str, c: &mut Value) {
    if super::at(c, &["HostConfig", "Links"]).is_some_and(|l| !l.is_null()) {
        return;
    }
    let bridge = names::scope(tenant, DEFAULT_NETWORK);
    let Some(links) = super::at(c, &["NetworkSettings", "Networks", &bridge, "Links"])
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    else {
        return;
    };
    let me = c.get("Name").and_then(Value::as_str).unwrap_or_default().trim_start_matches('/').to_string();
    let shown: Vec<Value> = links
        .iter()
        .filter_map(Value::as_str)
        .map(|l| {
            let (target, alias) = l.split_once(':').unwrap_or((l, l));
            Value::from(format!("/{}:/{me}/{alias}", target.trim_start_matches('/')))
        })
        .collect();
    if let Some(Value::Object(hc)) = c.get_mut("HostConfig") {
        hc.insert("Links".into(), Value::Array(shown));
    }
}

fn owned(tenant: &str, v: &Value) -> bool {
    v.get("Labels").and_then(|l| l.get(TENANT_LABEL)).and_then(Value::as_str) == Some(tenant)
}

pub fn document(tenant: &str, answer: &Answer, v: &mut Value) {
    match answer {
        Answer::Pass | Answer::Named { .. } | Answer::Events => {}
        Answer::Stats => {
            if let Some(n) = v.get("name").and_then(Value::as_str).map(|n| names::unscope_path(tenant, n)) {
                v["name"] = Value::from(n);
            }
        }
        Answer::ContainerInspect => container(tenant, v),
        Answer::ContainerList { names: filters } => {
            let regexes: Vec<regex::Regex> = filters.iter().filter_map(|f| regex::Regex::new(f).ok()).collect();
            if let Value::Array(list) = v {
                for c in list.iter_mut() {
                    container(tenant, c);
                }
                // Docker's name filter is a regular expression matched against each name, here the tenant's.
                list.retain(|c| {
                    regexes.is_empty()
                        || c.get("Names").and_then(Value::as_array).is_some_and(|ns| {
                            ns.iter().filter_map(Value::as_str).any(|n| regexes.iter().any(|r| r.is_match(n)))
                        })
                });
            }
        }
        Answer::NetworkInspect => network(tenant, v),
        Answer::NetworkList => {
            if let Value::Array(list) = v {
                // The tenant's own default network is its `bridge` (one, where several nodes list theirs); the
                // engine's stands in for it until the tenant has one.
                let own_bridge = list.iter().any(|n| owned(tenant, n) && super::is_default_network(n));
                let mut bridges = 0;
                list.retain(|n| {
                    let name = n.get("Name").and_then(Value::as_str).unwrap_or_default();
                    if owned(tenant, n) && super::is_default_network(n) {
                        bridges += 1;
                        return bridges == 1;
                    }
                    owned(tenant, n) || (SHARED_NETWORKS.contains(&name) && !(own_bridge && name == DEFAULT_NETWORK))
                });
                for n in list.iter_mut() {
                    network(tenant, n);
                }
            }
        }
        Answer::VolumeInspect => volume(tenant, v),
        Answer::VolumeList => {
            if let Some(Value::Array(list)) = v.get_mut("Volumes") {
                own_volumes(tenant, list);
            }
        }
        Answer::Prune => {
            for key in ["VolumesDeleted", "NetworksDeleted"] {
                if let Some(Value::Array(list)) = v.get_mut(key) {
                    for n in list.iter_mut() {
                        unscope_value(tenant, n);
                    }
                }
            }
        }
        Answer::SystemDf => {
            if let Some(Value::Array(list)) = v.get_mut("Containers") {
                list.retain(|c| owned(tenant, c));
                for c in list.iter_mut() {
                    container(tenant, c);
                }
            }
            if let Some(Value::Array(list)) = v.get_mut("Volumes") {
                own_volumes(tenant, list);
            }
            // Other tenants' containers use the shared images: their counts are not this tenant's business.
            if let Some(Value::Array(list)) = v.get_mut("Images") {
                for i in list.iter_mut() {
                    if let Some(c) = i.get_mut("Containers") {
                        *c = Value::from(-1);
                    }
                }
            }
            if let Some(b) = v.get_mut("BuildCache") {
                *b = Value::Array(Vec::new());
            }
        }
    }
}

fn volume(tenant: &str, vol: &mut Value) {
    hide_owner(vol.get_mut("Labels"));
    let engine_name = vol.get("Name").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(m) = vol.get_mut("Mountpoint") {
        volume_path(tenant, &engine_name, m);
    }
    if let Some(n) = vol.get_mut("Name") {
        unscope_value(tenant, n);
    }
}

/// A local volume's path on the engine host holds its name (`/var/lib/docker/volumes/t5-alice-data/_data`): the
/// tenant reads the name it gave there, as on its own engine (the path is for reading; binds are refused).
fn volume_path(tenant: &str, engine_name: &str, path: &mut Value) {
    let (Some(p), Some(user)) = (path.as_str(), names::unscope(tenant, engine_name)) else { return };
    let segment = format!("/{engine_name}/");
    if let Some(at) = p.rfind(&segment) {
        let shown = format!("{}/{user}/{}", &p[..at], &p[at + segment.len()..]);
        *path = Value::from(shown);
    }
}

/// Keeps the tenant's volumes of a list, under the tenant's names.
fn own_volumes(tenant: &str, list: &mut Vec<Value>) {
    list.retain(|vol| owned(tenant, vol));
    list.iter_mut().for_each(|vol| volume(tenant, vol));
}

/// A network's name, and only the tenant's containers on it (the shared `bridge` holds everybody's).
fn network(tenant: &str, n: &mut Value) {
    hide_owner(n.get_mut("Labels"));
    if let Some(name) = n.get_mut("Name") {
        unscope_value(tenant, name);
    }
    if let Some(Value::Object(cs)) = n.get_mut("Containers") {
        let prefix = names::prefix(tenant);
        cs.retain(|_, c| c.get("Name").and_then(Value::as_str).is_some_and(|name| name.starts_with(&prefix)));
        for c in cs.values_mut() {
            if let Some(name) = c.get_mut("Name") {
                unscope_value(tenant, name);
            }
        }
    }
}

/// The tenant's view of one event, or `None` when it is not the tenant's to see.
pub fn event(tenant: &str, mut e: Value) -> Option<Value> {
    let kind = e.get("Type").and_then(Value::as_str).unwrap_or_default().to_string();
    match kind.as_str() {
        "container" => {
            let attrs = super::at_mut(&mut e, &["Actor", "Attributes"])?.as_object_mut()?;
            if attrs.get(TENANT_LABEL).and_then(Value::as_str) != Some(tenant) {
                return None;
            }
            // A container's event carries its labels: the ownership label is mtswarm's, as in inspect.
            attrs.remove(TENANT_LABEL);
            if let Some(n) = attrs.get("name").and_then(Value::as_str).and_then(|n| names::unscope(tenant, n)) {
                let n = n.into_owned();
                attrs.insert("name".into(), Value::from(n));
            }
        }
        "network" => {
            let attrs = super::at_mut(&mut e, &["Actor", "Attributes"])?.as_object_mut()?;
            let n = attrs.get("name").and_then(Value::as_str).and_then(|n| names::unscope(tenant, n))?.into_owned();
            // The tenant's default network is made and removed behind its back, as if it always were there.
            let action = e.get("Action").and_then(Value::as_str).unwrap_or_default();
            if n == DEFAULT_NETWORK && matches!(action, "create" | "destroy") {
                return None;
            }
            let attrs = super::at_mut(&mut e, &["Actor", "Attributes"])?.as_object_mut()?;
            attrs.insert("name".into(), Value::from(n));
        }
        "volume" => {
            let id = super::at(&e, &["Actor", "ID"])
                .and_then(Value::as_str)
                .and_then(|n| names::unscope(tenant, n))?
                .into_owned();
            if let Some(actor) = e.get_mut("Actor").and_then(Value::as_object_mut) {
                actor.insert("ID".into(), Value::from(id.clone()));
            }
            if let Some(obj) = e.as_object_mut() {
                if obj.contains_key("id") {
                    obj.insert("id".into(), Value::from(id));
                }
            }
        }
        // Image, daemon, plugin and builder events tell of the shared catalogue and the host.
        _ => return None,
    }
    Some(e)
}

/// The tenant's view of one stats sample: the container's name as the tenant knows it.
pub fn stats(tenant: &str, mut s: Value) -> Option<Value> {
    if let Some(n) = s.get("name").and_then(Value::as_str).map(|n| names::unscope_path(tenant, n)) {
        s["name"] = Value::from(n);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(answer: Answer, input: Value, expected: Value) {
        let bytes = Bytes::from(serde_json::to_vec(&input).unwrap());
        let mut v = input;
        document("alice", &answer, &mut v);
        assert_eq!(v, expected);
        // What the client gets: an inspect read sparsely is the same document.
        let shown: Value = serde_json::from_slice(&super::answer("alice", &answer, true, bytes)).unwrap();
        assert_eq!(shown, expected);
    }

    /// A real engine's inspect (dockerd 20.10) of alice's `fxweb`: on her private `bridge` and on `fxnet`, linked
    /// to `fxdb` as `db`, with her volume `fxvol` and a label of her own.
    const INSPECT_WEB: &[u8] = include_bytes!("testdata/inspect-web.json");

    #[test]
    fn an_inspect_read_sparsely_is_shown_as_the_whole_answer_would_be() {
        let mut whole: Value = serde_json::from_slice(INSPECT_WEB).unwrap();
        document("alice", &Answer::ContainerInspect, &mut whole);
        let shown = super::answer("alice", &Answer::ContainerInspect, true, Bytes::from_static(INSPECT_WEB));
        assert!(shown.ends_with(b"}\n"));
        let shown: Value = serde_json::from_slice(&shown).unwrap();
        assert_eq!(shown, whole);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&shown), keys(&whole));
        assert_eq!(shown["Name"], "/fxweb");
        assert_eq!(shown["Config"]["Labels"], json!({"app": "web"}));
        assert_eq!(shown["HostConfig"]["Links"], json!(["/fxdb:/fxweb/db"]));
        assert_eq!(keys(&shown["NetworkSettings"]["Networks"]), ["bridge", "fxnet"]);
        assert_eq!(shown["Mounts"][0]["Name"], "fxvol");
        assert_eq!(shown["Mounts"][0]["Source"], "/var/lib/docker/volumes/fxvol/_data");
        // What the view does not touch is the engine's, byte for byte.
        let engine: Value = serde_json::from_slice(INSPECT_WEB).unwrap();
        for key in ["Id", "State", "GraphDriver", "Config"] {
            if key == "Config" {
                assert_eq!(shown[key]["Env"], engine[key]["Env"]);
            } else {
                assert_eq!(shown[key], engine[key]);
            }
        }
        // Another tenant's container is not shown at all, and alice's is shown to alice only.
        assert!(own_container("bob", INSPECT_WEB).is_none());
        assert_eq!(serde_json::from_slice::<Value>(&own_container("alice", INSPECT_WEB).unwrap()).unwrap(), whole);
    }

    #[test]
    fn shows_the_tenants_names() {
        check(
            Answer::ContainerInspect,
            json!({"Name": "/t5-alice-web", "HostConfig": {"Links": ["/t5-alice-db:/t5-alice-web/db"], "NetworkMode": "t5-alice-back",
                   "Binds": ["t5-alice-data:/d"]}, "Config": {"Labels": {"mtswarm.tenant": "alice", "app": "web"}},
                   "NetworkSettings": {"Networks": {"t5-alice-back": {"Links": ["t5-alice-up:bar"]}, "bridge": {}}}, "Mounts": [{"Name": "t5-alice-data", "Source": "/var/lib/docker/volumes/t5-alice-data/_data"}]}),
            json!({"Name": "/web", "HostConfig": {"Links": ["/db:/web/db"], "NetworkMode": "back", "Binds": ["data:/d"]},
                   "Config": {"Labels": {"app": "web"}},
                   "NetworkSettings": {"Networks": {"back": {"Links": ["up:bar"]}, "bridge": {}}}, "Mounts": [{"Name": "data", "Source": "/var/lib/docker/volumes/data/_data"}]}),
        );
    }

    #[test]
    fn shows_links_on_the_tenants_bridge_where_the_engines_bridge_shows_them() {
        check(
            Answer::ContainerInspect,
            json!({"Name": "/t5-alice-web", "HostConfig": {"Links": null},
                   "NetworkSettings": {"Networks": {"t5-alice-bridge": {"Links": ["t5-alice-db:database"]}}}}),
            json!({"Name": "/web", "HostConfig": {"Links": ["/db:/web/database"]},
                   "NetworkSettings": {"Networks": {"bridge": {"Links": ["db:database"]}}}}),
        );
    }

    #[test]
    fn lists_only_what_the_tenant_owns_and_filters_names_as_it_knows_them() {
        check(
            Answer::ContainerList { names: vec!["^/web$".into()] },
            json!([{"Names": ["/t5-alice-web"]}, {"Names": ["/t5-alice-webby"]}]),
            json!([{"Names": ["/web"]}]),
        );
        check(
            Answer::NetworkList,
            json!([{"Name": "bridge", "Labels": {}}, {"Name": "host", "Labels": {}}, {"Name": "t3-bob-back", "Labels": {"mtswarm.tenant": "bob"}},
                   {"Name": "t5-alice-back", "Labels": {"mtswarm.tenant": "alice"}}]),
            // The ownership label is mtswarm's: the tenant sees the labels it gave.
            json!([{"Name": "bridge", "Labels": {}}, {"Name": "back", "Labels": {}}]),
        );
        // With a default network of its own, the tenant's `bridge` is that one, once.
        let own = |id: &str| json!({"Name": "t5-alice-bridge", "Id": id, "Labels": {"mtswarm.tenant": "alice", "mtswarm.default-network": "true"}});
        let shown = |id: &str| json!({"Name": "bridge", "Id": id, "Labels": {}});
        check(
            Answer::NetworkList,
            json!([{"Name": "bridge", "Id": "e", "Labels": {}}, {"Name": "none", "Labels": {}}, own("1"), own("2"),
                   {"Name": "t3-bob-bridge", "Labels": {"mtswarm.tenant": "bob", "mtswarm.default-network": "true"}}]),
            json!([{"Name": "none", "Labels": {}}, shown("1")]),
        );
        check(
            Answer::NetworkInspect,
            json!({"Name": "bridge", "Containers": {"1": {"Name": "t5-alice-web"}, "2": {"Name": "t3-bob-web"}}}),
            json!({"Name": "bridge", "Containers": {"1": {"Name": "web"}}}),
        );
        // Without a default network of its own, the tenant sees the engine's; another tenant's is not its own.
        check(
            Answer::NetworkList,
            json!([{"Name": "bridge", "Id": "e", "Labels": {}},
                   {"Name": "t3-bob-bridge", "Id": "b", "Labels": {"mtswarm.tenant": "bob", "mtswarm.default-network": "true"}},
                   {"Name": "t5-alice-bridge", "Id": "x", "Labels": {"mtswarm.tenant": "bob", "mtswarm.default-network": "true"}}]),
            json!([{"Name": "bridge", "Id": "e", "Labels": {}}]),
        );
        check(
            Answer::NetworkInspect,
            json!({"Name": "t5-alice-bridge", "Labels": {"mtswarm.tenant": "alice", "mtswarm.default-network": "true", "a": "b"},
                   "Containers": {"1": {"Name": "t5-alice-web"}}}),
            json!({"Name": "bridge", "Labels": {"a": "b"}, "Containers": {"1": {"Name": "web"}}}),
        );
        check(
            Answer::VolumeList,
            json!({"Volumes": [{"Name": "t5-alice-data", "Labels": {"mtswarm.tenant": "alice"}},
                               {"Name": "t5-alice-x", "Labels": {"mtswarm.tenant": "bob"}}, {"Name": "plain", "Labels": null}],
                   "Warnings": null}),
            json!({"Volumes": [{"Name": "data", "Labels": {}}], "Warnings": null}),
        );
        check(
            Answer::VolumeInspect,
            json!({"Name": "t5-alice-data", "Labels": {"mtswarm.tenant": "alice", "a": "b"},
                   "Mountpoint": "/var/lib/docker/volumes/t5-alice-data/_data"}),
            json!({"Name": "data", "Labels": {"a": "b"}, "Mountpoint": "/var/lib/docker/volumes/data/_data"}),
        );
    }

    #[test]
    fn shows_prunes_usage_and_stats_under_the_tenants_names() {
        check(
            Answer::Prune,
            json!({"VolumesDeleted": ["t5-alice-data"], "NetworksDeleted": ["t5-alice-back"], "SpaceReclaimed": 3}),
            json!({"VolumesDeleted": ["data"], "NetworksDeleted": ["back"], "SpaceReclaimed": 3}),
        );
        check(
            Answer::SystemDf,
            json!({"Containers": [{"Names": ["/t5-alice-web"], "Labels": {"mtswarm.tenant": "alice"}},
                                  {"Names": ["/t3-bob-web"], "Labels": {"mtswarm.tenant": "bob"}}],
                   "Volumes": [{"Name": "t3-bob-data", "Labels": {"mtswarm.tenant": "bob"}}],
                   "Images": [{"Id": "i", "Containers": 7}], "BuildCache": [{"ID": "b"}]}),
            // Other tenants' containers use the shared images: their number is not the tenant's business.
            json!({"Containers": [{"Names": ["/web"], "Labels": {}}], "Volumes": [],
                   "Images": [{"Id": "i", "Containers": -1}], "BuildCache": []}),
        );
        check(Answer::Stats, json!({"name": "/t5-alice-web", "id": "c1"}), json!({"name": "/web", "id": "c1"}));
        assert_eq!(stats("alice", json!({"name": "/t5-alice-web"})), Some(json!({"name": "/web"})));
    }

    #[test]
    fn error_answers_name_objects_as_the_tenant_did() {
        let named = Answer::Named { engine: "aa11".into(), user: "we\"b".into() };
        let body = Bytes::from(r#"{"message":"cannot kill aa11: container /t5-alice-web is not running"}"#);
        assert_eq!(
            answer("alice", &named, false, body),
            Bytes::from(r#"{"message":"cannot kill we\"b: container /web is not running"}"#)
        );
        // Only the tenant's own prefix is removed.
        let body = Bytes::from(r#"{"message":"t3-bob-web"}"#);
        assert_eq!(answer("alice", &Answer::Pass, false, body.clone()), body);
    }

    fn check_event(ev: Value, expected: Option<Value>) {
        assert_eq!(event("alice", ev), expected);
    }

    #[test]
    fn shows_only_the_tenants_events_under_its_names() {
        check_event(
            json!({"Type": "container", "Action": "start", "Actor": {"ID": "c1", "Attributes": {"mtswarm.tenant": "alice", "name": "t5-alice-web"}}}),
            // The ownership label is mtswarm's: the tenant sees the labels it gave.
            Some(json!({"Type": "container", "Action": "start", "Actor": {"ID": "c1", "Attributes": {"name": "web"}}})),
        );
        check_event(
            json!({"Type": "container", "Actor": {"ID": "c2", "Attributes": {"mtswarm.tenant": "bob", "name": "t3-bob-web"}}}),
            None,
        );
        check_event(json!({"Type": "container", "Actor": {"ID": "c3", "Attributes": {"name": "plain"}}}), None);
        check_event(
            json!({"Type": "network", "Actor": {"ID": "n1", "Attributes": {"name": "t5-alice-back", "type": "bridge"}}}),
            Some(json!({"Type": "network", "Actor": {"ID": "n1", "Attributes": {"name": "back", "type": "bridge"}}})),
        );
        check_event(
            json!({"Type": "network", "Actor": {"ID": "n2", "Attributes": {"name": "bridge", "container": "c2"}}}),
            None,
        );
        // The tenant's own default network is its `bridge`; it is never seen made or removed.
        check_event(
            json!({"Type": "network", "Action": "connect", "Actor": {"ID": "n3", "Attributes": {"name": "t5-alice-bridge", "container": "c1"}}}),
            Some(
                json!({"Type": "network", "Action": "connect", "Actor": {"ID": "n3", "Attributes": {"name": "bridge", "container": "c1"}}}),
            ),
        );
        check_event(
            json!({"Type": "network", "Action": "create", "Actor": {"ID": "n3", "Attributes": {"name": "t5-alice-bridge", "type": "bridge"}}}),
            None,
        );
        check_event(
            json!({"Type": "volume", "Actor": {"ID": "t5-alice-data", "Attributes": {"driver": "local"}}}),
            Some(json!({"Type": "volume", "Actor": {"ID": "data", "Attributes": {"driver": "local"}}})),
        );
        check_event(json!({"Type": "image", "Actor": {"ID": "busybox"}}), None);
        // Another tenant's networks and volumes, its default network too, and a tenant whose id alice's extends.
        for name in ["t3-bob-back", "t3-bob-bridge", "t4-alic-back", "bridge"] {
            check_event(
                json!({"Type": "network", "Action": "connect", "Actor": {"ID": "n4", "Attributes": {"name": name, "container": "c2"}}}),
                None,
            );
        }
        check_event(
            json!({"Type": "volume", "Action": "mount", "Actor": {"ID": "t3-bob-data", "Attributes": {}}}),
            None,
        );
        check_event(json!({"Type": "daemon", "Action": "reload", "Actor": {"ID": "engine"}}), None);
        // A volume event's legacy `id` is unscoped too.
        check_event(
            json!({"Type": "volume", "id": "t5-alice-data", "Actor": {"ID": "t5-alice-data", "Attributes": {}}}),
            Some(json!({"Type": "volume", "id": "data", "Actor": {"ID": "data", "Attributes": {}}})),
        );
        // A container event without attributes is nobody's.
        check_event(json!({"Type": "container", "Action": "start", "Actor": {"ID": "c4"}}), None);
    }
}
