//! Table tests of every request rewrite, over the map-backed engine ([`super::lookup::fake`]): a tenant's
//! request (method, path, query and body) in, and out the request the engine gets, or the error the tenant gets.
//! Bodies are read by the gateway's decoder first, so Go's key spellings (`Bindſ` with a long s, `LinKs` with a
//! Kelvin sign) reach tenancy as the fields they are.
//!
//! The engine holds alice's objects, bob's under the same names, and the operator's: every answer must name
//! only alice's, and bob's must answer exactly as absent ones.

use std::collections::HashSet;
use std::future::Future;

use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::lookup::fake::FakeEngine;
use super::{prepare, DefaultNetwork, DefaultNetworks};
use crate::api::decode::decode;
use crate::api::{ApiError, Endpoint, RequestBody};

/// A 64-digit id that starts with `head`.
fn id(head: &str) -> String {
    format!("{head:0<64}")
}

// Alice's containers share the prefix `aa`; bob's starts `aab`, alice's `aa1` and `aa2`.
fn web() -> String {
    id("aa1")
}
fn db() -> String {
    id("aa2")
}
fn bobs_web() -> String {
    id("aab")
}
fn operators() -> String {
    id("ff1")
}
fn back() -> String {
    id("cc1")
}
fn front() -> String {
    id("cc3")
}
fn bobs_back() -> String {
    id("cc2")
}
fn bridge() -> String {
    id("dd1")
}
fn none() -> String {
    id("dd2")
}
fn bobs_bridge() -> String {
    id("dd3")
}

/// One engine with what alice, bob and the operator hold.
fn engine() -> FakeEngine {
    FakeEngine::default()
        .container(&web(), "t5-alice-web", Some("alice"))
        .container(&db(), "t5-alice-db", Some("alice"))
        .container(&bobs_web(), "t3-bob-web", Some("bob"))
        .container(&operators(), "plain", None)
        .link("t5-alice-web", "database", &db())
        .network(&back(), "t5-alice-back", Some("alice"), false)
        .network(&front(), "t5-alice-front", Some("alice"), false)
        .network(&bobs_back(), "t3-bob-back", Some("bob"), false)
        .network(&bridge(), "bridge", None, false)
        .network(&none(), "none", None, false)
        .network(&id("dd4"), "host", None, false)
        .network(&bobs_bridge(), "t3-bob-bridge", Some("bob"), true)
        .volume("t5-alice-data", Some("alice"))
        .volume("t3-bob-data", Some("bob"))
        .volume("t5-alice-stolen", Some("bob"))
        .exec(&id("ee1"), &web())
        .exec(&id("ee2"), &bobs_web())
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(f)
}

/// What the engine is sent.
#[derive(Debug)]
struct Sent {
    path: String,
    query: Option<String>,
    doc: Option<Value>,
    own_containers: HashSet<String>,
}

/// Alice's request `"METHOD /path?query"` with `body`, as the gateway hands it to tenancy: classified, its body
/// decoded when the endpoint reads one.
fn send(engine: &FakeEngine, mode: DefaultNetwork, request: &str, body: &str) -> Result<Sent, ApiError> {
    let (method, target) = request.split_once(' ').expect("METHOD /path");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let method = Method::from_bytes(method.as_bytes()).expect("a method");
    let endpoint = Endpoint::classify(&method, path).expect("an endpoint");
    let mut doc = match endpoint.request_body() {
        // An empty body in these tables stands for `{}`: how an empty body itself is refused is the decoder's
        // (`api::decode`'s tests).
        RequestBody::Json(kind) => Some(decode(kind, if body.is_empty() { b"{}" } else { body.as_bytes() })?),
        _ => None,
    };
    let defaults = DefaultNetworks::new(mode);
    let plan = block_on(prepare(engine, &defaults, "alice", &endpoint, path, query, doc.as_mut()))?;
    if let Some(doc) = &doc {
        only_alices(doc);
    }
    plan.path.split('/').for_each(only_alices_in);
    for (_, value) in url::form_urlencoded::parse(plan.query.as_deref().unwrap_or_default().as_bytes()) {
        match serde_json::from_str::<Value>(&value) {
            Ok(v @ Value::Object(_)) => only_alices(&v),
            _ => only_alices_in(&value),
        }
    }
    Ok(Sent { path: plan.path, query: plan.query, doc, own_containers: plan.own_containers })
}

/// Nothing the engine gets names bob's or the operator's objects, engine-side.
fn only_alices(v: &Value) {
    match v {
        Value::String(s) => only_alices_in(s),
        Value::Array(list) => list.iter().for_each(only_alices),
        Value::Object(map) => {
            for (k, v) in map {
                only_alices_in(k);
                only_alices(v);
            }
        }
        _ => {}
    }
}

fn only_alices_in(s: &str) {
    let foreign = [bobs_web(), operators(), bobs_back(), bobs_bridge()];
    // A name with alice's prefix is hers by construction, whatever follows it.
    for part in s.split([':', '/']).filter(|p| !p.starts_with("t5-alice-")) {
        assert!(!part.starts_with("t3-bob-") && part != "plain", "{s} names an object that is not alice's");
        assert!(!foreign.iter().any(|f| part.contains(f.as_str())), "{s} names an object that is not alice's");
    }
}

/// What a case expects: what the engine is sent, or the status and message the tenant gets.
type Expected<T> = Result<T, (StatusCode, String)>;

/// A request, its body, and what it should come to.
type Case<'a, T> = (&'a str, &'a str, Expected<T>);

/// The path and query the engine is sent.
type Target = (String, Option<String>);

/// An error as the tenant gets it.
fn err(status: u16, message: &str) -> Expected<Value> {
    Err((StatusCode::from_u16(status).expect("a status"), message.to_string()))
}

/// Runs a table of `(request, body, expected body out or error)` on a fresh engine each.
fn check_bodies(mode: DefaultNetwork, table: &[Case<Value>]) {
    for (request, body, expected) in table {
        let got = send(&engine(), mode, request, body).map(|s| s.doc.unwrap_or(Value::Null));
        let got = got.map_err(|e| (e.status, e.message));
        assert_eq!(&got, expected, "{request} {body}");
    }
}

/// Alice's labels on what she creates.
fn owned(extra: Value) -> Value {
    let mut labels = json!({"mtswarm.tenant": "alice"});
    if let (Some(l), Some(extra)) = (labels.as_object_mut(), extra.as_object()) {
        l.extend(extra.clone());
    }
    labels
}

/// A create body out on alice's own default network, as container `web`.
fn on_own_bridge(host_config: Value) -> Value {
    let mut hc = host_config;
    hc["NetworkMode"] = json!("t5-alice-bridge");
    json!({
        "Image": "busybox",
        "Labels": owned(json!({})),
        "HostConfig": hc,
        "NetworkingConfig": {"EndpointsConfig": {"t5-alice-bridge": {"Aliases": ["web"]}}},
    })
}

const CREATE: &str = "POST /containers/create?name=web";

#[test]
fn container_create_scopes_volumes_binds_and_mounts() {
    check_bodies(
        DefaultNetwork::Private,
        &[
            // A named volume is the tenant's; a host path is left for the escape checks; a new name is made.
            (
                CREATE,
                r#"{"Image":"busybox","HostConfig":{"Binds":["data:/d","/etc:/host:ro","new:/n:ro"]}}"#,
                Ok(on_own_bridge(json!({"Binds": ["t5-alice-data:/d", "/etc:/host:ro", "t5-alice-new:/n:ro"]}))),
            ),
            // Go's decoder reads `HoſtConfig` and `Bindſ` (long s) as HostConfig and Binds.
            (
                CREATE,
                "{\"Image\":\"busybox\",\"Ho\u{17F}tConfig\":{\"Bind\u{17F}\":[\"data:/d\"]}}",
                Ok(on_own_bridge(json!({"Binds": ["t5-alice-data:/d"]}))),
            ),
            // The pre-1.2x layout: Binds at the top level are the HostConfig's.
            (CREATE, r#"{"Image":"busybox","Binds":["data:/d"]}"#, Ok(on_own_bridge(json!({"Binds": ["t5-alice-data:/d"]})))),
            // Bob's volume, named engine-side, is a name like any other: alice's own volume of that name.
            (
                CREATE,
                r#"{"Image":"busybox","HostConfig":{"Binds":["t3-bob-data:/d"]}}"#,
                Ok(on_own_bridge(json!({"Binds": ["t5-alice-t3-bob-data:/d"]}))),
            ),
            // A volume that has alice's engine-side name but is bob's is not hers to mount, nor to take over.
            (
                CREATE,
                r#"{"Image":"busybox","HostConfig":{"Binds":["stolen:/d"]}}"#,
                err(404, "get stolen: no such volume"),
            ),
            (
                CREATE,
                r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"data","Target":"/d"},
                    {"Type":"bind","Source":"/etc","Target":"/e"},{"Type":"tmpfs","Target":"/t"}]}}"#,
                Ok(on_own_bridge(json!({"Mounts": [
                    {"Type": "volume", "Source": "t5-alice-data", "Target": "/d"},
                    {"Type": "bind", "Source": "/etc", "Target": "/e"},
                    {"Type": "tmpfs", "Target": "/t"},
                ]}))),
            ),
            (
                CREATE,
                "{\"Image\":\"busybox\",\"HostConfig\":{\"Mount\u{17F}\":[{\"type\":\"volume\",\"\u{17F}ource\":\"data\",\"Target\":\"/d\"}]}}",
                Ok(on_own_bridge(json!({"Mounts": [{"Type": "volume", "Source": "t5-alice-data", "Target": "/d"}]}))),
            ),
            (
                CREATE,
                r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/d",
                    "VolumeOptions":{"Labels":{"mtswarm.tenant":"bob"}}}]}}"#,
                err(403, "the label mtswarm.tenant is set by mtswarm and may not be given"),
            ),
            // A field given twice, in any spelling, is refused by the decoder.
            (
                CREATE,
                "{\"Image\":\"busybox\",\"HostConfig\":{\"Binds\":[\"data:/d\"],\"bind\u{17F}\":[\"/:/host\"]}}",
                err(400, "invalid request body: HostConfig.Binds: is given more than once (as \"Binds\" and \"bind\u{17F}\")"),
            ),
            (
                CREATE,
                r#"{"Image":"busybox","Labels":{"mtswarm.tenant":"bob"}}"#,
                err(403, "the label mtswarm.tenant is set by mtswarm and may not be given"),
            ),
        ],
    );
    // The volume a bind names is made for alice, with her label.
    let e = engine();
    send(&e, DefaultNetwork::Private, CREATE, r#"{"HostConfig":{"Binds":["new:/n"]}}"#).unwrap();
    assert!(e.volume_names().contains(&"t5-alice-new".to_string()));
}

#[test]
fn container_create_names_only_the_tenants_containers() {
    check_bodies(
        DefaultNetwork::Private,
        &[
            // By name, by id prefix, with a mode kept.
            (
                CREATE,
                r#"{"Image":"busybox","HostConfig":{"VolumesFrom":["db:ro","aa1"]}}"#,
                Ok(on_own_bridge(json!({"VolumesFrom": [format!("{}:ro", db()), web()]}))),
            ),
            (
                CREATE,
                "{\"Image\":\"busybox\",\"HostConfig\":{\"Volume\u{17F}From\":[\"db\"]}}",
                Ok(on_own_bridge(json!({"VolumesFrom": [db()]}))),
            ),
            // Bob's container answers as absent, by his name, by its engine-side name, by id or prefix; so does
            // the operator's. In a create body dockerd answers that with 400 (404 would make the CLI pull).
            (CREATE, r#"{"HostConfig":{"VolumesFrom":["t3-bob-web"]}}"#, err(400, "No such container: t3-bob-web")),
            (CREATE, r#"{"HostConfig":{"VolumesFrom":["aab"]}}"#, err(400, "No such container: aab")),
            (
                CREATE,
                &format!(r#"{{"HostConfig":{{"VolumesFrom":["{}"]}}}}"#, bobs_web()),
                err(400, &format!("No such container: {}", bobs_web())),
            ),
            (CREATE, r#"{"HostConfig":{"VolumesFrom":["plain"]}}"#, err(400, "No such container: plain")),
            // `aa` fits both of alice's containers (and bob's, which does not count).
            (
                CREATE,
                r#"{"HostConfig":{"VolumesFrom":["aa"]}}"#,
                err(400, "Multiple IDs found with provided prefix: aa"),
            ),
            // Namespaces shared with one of the tenant's containers name it by id.
            (
                CREATE,
                r#"{"Image":"busybox","HostConfig":{"PidMode":"container:db","IpcMode":"container:aa1"}}"#,
                Ok(on_own_bridge(
                    json!({"PidMode": format!("container:{}", db()), "IpcMode": format!("container:{}", web())}),
                )),
            ),
            (CREATE, r#"{"HostConfig":{"PidMode":"container:t3-bob-web"}}"#, err(400, "No such container: t3-bob-web")),
        ],
    );
    let sent =
        send(&engine(), DefaultNetwork::Private, CREATE, r#"{"HostConfig":{"PidMode":"container:db"}}"#).unwrap();
    assert_eq!(sent.own_containers, HashSet::from([db()]), "the escape checks learn which containers are alice's");
    assert_eq!(sent.query.as_deref(), Some("name=t5-alice-web"));
}

#[test]
fn container_create_links() {
    check_bodies(
        DefaultNetwork::Private,
        &[
            // On the tenant's own bridge a legacy link is also the endpoint's, so that it works there.
            (
                CREATE,
                r#"{"Image":"busybox","HostConfig":{"Links":["db:database"]}}"#,
                Ok(json!({
                    "Image": "busybox",
                    "Labels": owned(json!({})),
                    "HostConfig": {"Links": ["/t5-alice-db:database"], "NetworkMode": "t5-alice-bridge"},
                    "NetworkingConfig": {"EndpointsConfig": {"t5-alice-bridge": {
                        "Aliases": ["web"], "Links": ["t5-alice-db:database"]}}},
                })),
            ),
            // `LinKs` with a Kelvin sign is Links to Go; a link without an alias is aliased by its name.
            (
                CREATE,
                "{\"HostConfig\":{\"NetworkMode\":\"back\",\"Lin\u{212A}s\":[\"db\"]}}",
                Ok(json!({
                    "Labels": owned(json!({})),
                    "HostConfig": {"Links": ["/t5-alice-db:db"], "NetworkMode": "t5-alice-back"},
                    "NetworkingConfig": {"EndpointsConfig": {"t5-alice-back": {"Aliases": ["web"]}}},
                })),
            ),
            // On a user-defined network a link may name a container that comes later (dockerd accepts it).
            (
                CREATE,
                r#"{"HostConfig":{"NetworkMode":"back","Links":["later:l"]}}"#,
                Ok(json!({
                    "Labels": owned(json!({})),
                    "HostConfig": {"Links": ["t5-alice-later:l"], "NetworkMode": "t5-alice-back"},
                    "NetworkingConfig": {"EndpointsConfig": {"t5-alice-back": {"Aliases": ["web"]}}},
                })),
            ),
            // On the default bridge the linked container must exist, and bob's does not, for alice.
            (
                CREATE,
                r#"{"HostConfig":{"Links":["t3-bob-web:x"]}}"#,
                err(400, "could not get container for t3-bob-web: No such container: t3-bob-web"),
            ),
            (
                CREATE,
                r#"{"HostConfig":{"Links":["aab:x"]}}"#,
                err(400, "could not get container for aab: No such container: aab"),
            ),
            // An endpoint's links are the tenant's names too.
            (
                CREATE,
                r#"{"HostConfig":{"NetworkMode":"back"},"NetworkingConfig":{"EndpointsConfig":{"back":{"Links":["db:d"]}}}}"#,
                Ok(json!({
                    "Labels": owned(json!({})),
                    "HostConfig": {"NetworkMode": "t5-alice-back"},
                    "NetworkingConfig": {"EndpointsConfig": {"t5-alice-back": {"Links": ["/t5-alice-db:d"], "Aliases": ["web"]}}},
                })),
            ),
        ],
    );
}

#[test]
fn container_create_network_modes() {
    let plain = |mode: &str| json!({"Labels": owned(json!({})), "HostConfig": {"NetworkMode": mode}});
    let on = |mode: &str, net: &str| {
        json!({"Labels": owned(json!({})), "HostConfig": {"NetworkMode": mode},
               "NetworkingConfig": {"EndpointsConfig": {net: {"Aliases": ["web"]}}}})
    };
    check_bodies(
        DefaultNetwork::Private,
        &[
            (CREATE, r#"{"HostConfig":{"NetworkMode":"back"}}"#, Ok(on("t5-alice-back", "t5-alice-back"))),
            // A network of the tenant's by id prefix is named engine-side.
            (CREATE, r#"{"HostConfig":{"NetworkMode":"cc1"}}"#, Ok(on("t5-alice-back", "t5-alice-back"))),
            // The default network, however asked for, is the tenant's own (the engine's bridge by its id too).
            (CREATE, r#"{"HostConfig":{"NetworkMode":"default"}}"#, Ok(on("t5-alice-bridge", "t5-alice-bridge"))),
            (CREATE, r#"{"HostConfig":{"NetworkMode":"bridge"}}"#, Ok(on("t5-alice-bridge", "t5-alice-bridge"))),
            (CREATE, r#"{"HostConfig":{"NetworkMode":"dd1"}}"#, Ok(on("t5-alice-bridge", "t5-alice-bridge"))),
            (CREATE, r#"{"HostConfig":{"NetworkMode":"none"}}"#, Ok(plain("none"))),
            // `host` is left for the escape checks, which refuse it after this phase.
            (CREATE, r#"{"HostConfig":{"NetworkMode":"host"}}"#, Ok(plain("host"))),
            (CREATE, r#"{"HostConfig":{"NetworkMode":"container:db"}}"#, Ok(plain(&format!("container:{}", db())))),
            (CREATE, r#"{"HostConfig":{"NetworkMode":"container:plain"}}"#, err(400, "No such container: plain")),
            // Another tenant's network, by its engine-side name or its id, is a name of alice's that does not
            // exist: the create succeeds and the start says the network is not found, as dockerd would.
            (
                CREATE,
                r#"{"HostConfig":{"NetworkMode":"t3-bob-back"}}"#,
                Ok(on("t5-alice-t3-bob-back", "t5-alice-t3-bob-back")),
            ),
            (
                CREATE,
                &format!(r#"{{"HostConfig":{{"NetworkMode":"{}"}}}}"#, bobs_back()),
                Ok(on(&format!("t5-alice-{}", bobs_back()), &format!("t5-alice-{}", bobs_back()))),
            ),
            // Nor is bob's default network alice's `bridge`.
            (CREATE, r#"{"HostConfig":{"NetworkMode":"dd3"}}"#, Ok(on("t5-alice-dd3", "t5-alice-dd3"))),
            // No body at all: the default network.
            (CREATE, "", Ok(on("t5-alice-bridge", "t5-alice-bridge"))),
        ],
    );
    // Where tenants share the engine's bridge, it is left as asked, and carries no alias (it is nobody's).
    check_bodies(
        DefaultNetwork::Shared,
        &[
            (CREATE, r#"{"HostConfig":{"NetworkMode":"bridge"}}"#, Ok(plain("bridge"))),
            (CREATE, r#"{"HostConfig":{}}"#, Ok(json!({"Labels": owned(json!({})), "HostConfig": {}}))),
            (CREATE, r#"{"HostConfig":{"NetworkMode":"dd1"}}"#, Ok(plain("bridge"))),
        ],
    );
    // The tenant's own bridge is made on first use, once, labelled as hers and as a default network.
    let e = engine();
    send(&e, DefaultNetwork::Private, CREATE, "{}").unwrap();
    send(&e, DefaultNetwork::Private, CREATE, "{}").unwrap();
    let bridges: Vec<String> = e.network_names().into_iter().filter(|n| n == "t5-alice-bridge").collect();
    assert_eq!(bridges.len(), 1);
    let e = engine();
    send(&e, DefaultNetwork::Private, CREATE, r#"{"HostConfig":{"NetworkMode":"back"}}"#).unwrap();
    assert!(!e.network_names().contains(&"t5-alice-bridge".to_string()), "made only where it is used");
    let e = engine();
    send(&e, DefaultNetwork::Shared, CREATE, "{}").unwrap();
    assert!(!e.network_names().contains(&"t5-alice-bridge".to_string()), "never where the bridge is shared");
    // A network under the default network's engine-side name that is not the tenant's default one (the
    // operator's doing) is refused rather than joined.
    let e = engine().network(&id("dd5"), "t5-alice-bridge", Some("alice"), false);
    let refused = send(&e, DefaultNetwork::Private, CREATE, "{}").unwrap_err();
    assert_eq!(
        (refused.status, refused.message.as_str()),
        (StatusCode::CONFLICT, "network t5-alice-bridge on node fake is not the tenant's default network")
    );
}

#[test]
fn container_create_endpoints() {
    let with = |mode: &str, eps: Value| json!({"Labels": owned(json!({})), "HostConfig": {"NetworkMode": mode}, "NetworkingConfig": {"EndpointsConfig": eps}});
    let body = |key: &str, settings: &str| {
        format!(
            r#"{{"HostConfig":{{"NetworkMode":"back"}},"NetworkingConfig":{{"EndpointsConfig":{{"{key}":{settings}}}}}}}"#
        )
    };
    check_bodies(
        DefaultNetwork::Private,
        &[
            // Keyed by name, with a NetworkID that names the same network by id prefix: sent as its full id.
            (
                CREATE,
                &body("back", r#"{"NetworkID":"cc1","Aliases":["w"]}"#),
                Ok(with("t5-alice-back", json!({"t5-alice-back": {"NetworkID": back(), "Aliases": ["w", "web"]}}))),
            ),
            // dockerd attaches where NetworkID says: it must be alice's too. Bob's answers as absent.
            (
                CREATE,
                &body("back", &format!(r#"{{"NetworkID":"{}"}}"#, bobs_back())),
                err(
                    400,
                    &format!("NetworkingConfig.EndpointsConfig.back.NetworkID: network {} not found", bobs_back()),
                ),
            ),
            (
                CREATE,
                &body("back", r#"{"NetworkID":"t3-bob-back"}"#),
                err(400, "NetworkingConfig.EndpointsConfig.back.NetworkID: network t3-bob-back not found"),
            ),
            (
                CREATE,
                &body("back", r#"{"NetworkID":"bridge"}"#),
                err(400, "NetworkingConfig.EndpointsConfig.back.NetworkID: bridge is a pre-defined network; name it as the key instead"),
            ),
            // dockerd reads NetworkID only for a user-defined network: on `none` it is dropped.
            (
                CREATE,
                r#"{"HostConfig":{"NetworkMode":"none"},"NetworkingConfig":{"EndpointsConfig":{"none":{"NetworkID":"t3-bob-back"}}}}"#,
                Ok(with("none", json!({"none": {}}))),
            ),
            // The endpoint id is the engine's to set; driver options reach the driver and are refused.
            (CREATE, &body("back", r#"{"EndpointID":"x"}"#), Ok(with("t5-alice-back", json!({"t5-alice-back": {"Aliases": ["web"]}})))),
            (
                CREATE,
                &body("back", r#"{"DriverOpts":{"a":"b"}}"#),
                err(403, "NetworkingConfig.EndpointsConfig.back.DriverOpts: endpoint driver options are not available to tenants"),
            ),
            // A key naming the default network is the tenant's own bridge.
            (
                CREATE,
                r#"{"NetworkingConfig":{"EndpointsConfig":{"bridge":{}}}}"#,
                Ok(with("t5-alice-bridge", json!({"t5-alice-bridge": {"Aliases": ["web"]}}))),
            ),
            // A key naming bob's network is alice's name for a network she does not have.
            (
                CREATE,
                r#"{"HostConfig":{"NetworkMode":"t3-bob-back"},"NetworkingConfig":{"EndpointsConfig":{"t3-bob-back":{}}}}"#,
                Ok(with("t5-alice-t3-bob-back", json!({"t5-alice-t3-bob-back": {"Aliases": ["web"]}}))),
            ),
        ],
    );
}

#[test]
fn network_connect_and_disconnect() {
    let table: &[Case<(String, Value)>] = &[
        (
            "POST /networks/back/connect",
            r#"{"Container":"web"}"#,
            Ok((
                format!("/networks/{}/connect", back()),
                json!({"Container": web(), "EndpointConfig": {"Aliases": ["web"]}}),
            )),
        ),
        // Any spelling of Container counts, and a prefix of the tenant's own names it.
        (
            "POST /networks/cc1/connect",
            "{\"CONTAINER\":\"aa2\",\"EndpointConfig\":{\"Aliases\":[\"d\"]}}",
            Ok((
                format!("/networks/{}/connect", back()),
                json!({"Container": db(), "EndpointConfig": {"Aliases": ["d", "db"]}}),
            )),
        ),
        (
            "POST /networks/back/connect",
            &format!(r#"{{"Container":"web","EndpointConfig":{{"NetworkID":"{}"}}}}"#, back()),
            Ok((
                format!("/networks/{}/connect", back()),
                json!({"Container": web(), "EndpointConfig": {"NetworkID": back(), "Aliases": ["web"]}}),
            )),
        ),
        // NetworkID must name the network of the path.
        (
            "POST /networks/back/connect",
            r#"{"Container":"web","EndpointConfig":{"NetworkID":"front"}}"#,
            Err((
                StatusCode::BAD_REQUEST,
                format!("EndpointConfig.NetworkID: {} is not the network back of the request", front()),
            )),
        ),
        (
            "POST /networks/back/connect",
            r#"{"Container":"web","EndpointConfig":{"NetworkID":"t3-bob-back"}}"#,
            Err((StatusCode::BAD_REQUEST, "EndpointConfig.NetworkID: network t3-bob-back not found".into())),
        ),
        (
            "POST /networks/back/connect",
            r#"{"Container":"web","EndpointConfig":{"DriverOpts":{"a":"b"}}}"#,
            Err((
                StatusCode::FORBIDDEN,
                "EndpointConfig.DriverOpts: endpoint driver options are not available to tenants".into(),
            )),
        ),
        // Bob's container and bob's network are absent.
        (
            "POST /networks/back/connect",
            r#"{"Container":"t3-bob-web"}"#,
            Err((StatusCode::NOT_FOUND, "No such container: t3-bob-web".into())),
        ),
        (
            "POST /networks/back/connect",
            r#"{"Container":"aab"}"#,
            Err((StatusCode::NOT_FOUND, "No such container: aab".into())),
        ),
        (
            "POST /networks/t3-bob-back/connect",
            r#"{"Container":"web"}"#,
            Err((StatusCode::NOT_FOUND, "network t3-bob-back not found".into())),
        ),
        (
            "POST /networks/cc2/connect",
            r#"{"Container":"web"}"#,
            Err((StatusCode::NOT_FOUND, "network cc2 not found".into())),
        ),
        (
            "POST /networks/host/connect",
            r#"{"Container":"web"}"#,
            Err((StatusCode::FORBIDDEN, "the host network is not available to tenants".into())),
        ),
        // Joining `bridge` joins the tenant's own, made for it (its id is the fake's first new one).
        (
            "POST /networks/bridge/connect",
            r#"{"Container":"web"}"#,
            Ok((
                format!("/networks/{}/connect", id_of_first_new_network()),
                json!({"Container": web(), "EndpointConfig": {"Aliases": ["web"]}}),
            )),
        ),
        // The shared `none` carries no alias.
        (
            "POST /networks/none/connect",
            r#"{"Container":"web"}"#,
            Ok((format!("/networks/{}/connect", none()), json!({"Container": web()}))),
        ),
        // A disconnect adds no alias.
        (
            "POST /networks/back/disconnect",
            "{\"Container\":\"web\",\"Force\":true}",
            Ok((format!("/networks/{}/disconnect", back()), json!({"Container": web(), "Force": true}))),
        ),
        (
            "POST /networks/back/disconnect",
            r#"{"Container":"t3-bob-web","Force":true}"#,
            Err((StatusCode::NOT_FOUND, "No such container: t3-bob-web".into())),
        ),
        (
            "POST /networks/back/connect",
            r#"{"Container":"web","container":"t3-bob-web"}"#,
            Err((
                StatusCode::BAD_REQUEST,
                "invalid request body: Container: is given more than once (as \"Container\" and \"container\")".into(),
            )),
        ),
    ];
    for (request, body, expected) in table {
        let got = send(&engine(), DefaultNetwork::Private, request, body)
            .map(|s| (s.path, s.doc.unwrap_or(Value::Null)))
            .map_err(|e| (e.status, e.message));
        assert_eq!(&got, expected, "{request} {body}");
    }
}

/// The id the fake gives the first network made on it.
fn id_of_first_new_network() -> String {
    let e = engine();
    let before = e.network_names().len();
    block_on(super::Lookup::create_network(&e, json!({"Name": "probe"}))).unwrap();
    let n = block_on(super::Lookup::inspect_network(&e, "probe")).unwrap().unwrap();
    assert_eq!(e.network_names().len(), before + 1);
    n["Id"].as_str().unwrap().to_string()
}

#[test]
fn network_and_volume_create() {
    let created = |name: &str, labels: Value| json!({"Name": name, "Labels": owned(labels)});
    check_bodies(
        DefaultNetwork::Private,
        &[
            ("POST /networks/create", r#"{"Name":"back2"}"#, Ok(created("t5-alice-back2", json!({})))),
            (
                "POST /networks/create",
                r#"{"Name":"back2","Labels":{"a":"b"},"Driver":"bridge"}"#,
                Ok(json!({"Name": "t5-alice-back2", "Labels": owned(json!({"a": "b"})), "Driver": "bridge"})),
            ),
            ("POST /networks/create", r#"{"Name":"bridge"}"#, err(403, "bridge is a pre-defined network")),
            ("POST /networks/create", r#"{"Name":"host"}"#, err(403, "host is a pre-defined network")),
            (
                "POST /networks/create",
                r#"{"Name":"a/b"}"#,
                err(400, "invalid network name \"a/b\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
            ),
            // The ownership label, in any case of any spelling of Labels, is mtswarm's.
            (
                "POST /networks/create",
                "{\"Name\":\"x\",\"label\u{17F}\":{\"MTSWARM.TENANT\":\"bob\"}}",
                err(403, "the label mtswarm.tenant is set by mtswarm and may not be given"),
            ),
            (
                "POST /networks/create",
                r#"{"Name":"x","Labels":{"mtswarm.default-network":"true"}}"#,
                err(403, "the label mtswarm.default-network is set by mtswarm and may not be given"),
            ),
            (
                "POST /networks/create",
                r#"{"Name":"x","name":"t3-bob-back"}"#,
                err(400, "invalid request body: Name: is given more than once (as \"Name\" and \"name\")"),
            ),
            ("POST /volumes/create", r#"{"Name":"data2"}"#, Ok(created("t5-alice-data2", json!({})))),
            (
                "POST /volumes/create",
                r#"{"Name":"data2","Labels":{"a":"b"},"Driver":"local"}"#,
                Ok(json!({"Name": "t5-alice-data2", "Labels": owned(json!({"a": "b"})), "Driver": "local"})),
            ),
            (
                "POST /volumes/create",
                "{\"Name\":\"x\",\"Label\u{17F}\":{\"mtswarm.tenant\":\"bob\"}}",
                err(403, "the label mtswarm.tenant is set by mtswarm and may not be given"),
            ),
            (
                "POST /volumes/create",
                r#"{"Name":"/etc"}"#,
                err(
                    400,
                    "create /etc: \"/etc\" includes invalid characters for a local volume name, only \
                     \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed",
                ),
            ),
        ],
    );
    // An unnamed volume gets a random name, the tenant's.
    let sent = send(&engine(), DefaultNetwork::Private, "POST /volumes/create", "").unwrap();
    let name = sent.doc.as_ref().and_then(|d| d["Name"].as_str()).unwrap().to_string();
    assert!(name.starts_with("t5-alice-") && name.len() == "t5-alice-".len() + 64, "{name}");
}

#[test]
fn paths_and_queries_name_the_tenants_objects() {
    let ok = |path: String, query: Option<&str>| Ok((path, query.map(str::to_string)));
    let no = |status: u16, message: &str| Err((StatusCode::from_u16(status).unwrap(), message.to_string()));
    let filters =
        |f: Value| url::form_urlencoded::Serializer::new(String::new()).append_pair("filters", &f.to_string()).finish();
    let table: Vec<(String, Expected<Target>)> = vec![
        ("GET /containers/web/json".into(), ok(format!("/containers/{}/json", web()), None)),
        ("GET /containers/aa1/json".into(), ok(format!("/containers/{}/json", web()), None)),
        (format!("GET /containers/{}/json", web()), ok(format!("/containers/{}/json", web()), None)),
        ("GET /containers/aa/json".into(), no(400, "Multiple IDs found with provided prefix: aa")),
        // Bob's container, and the operator's, are absent: by name, engine-side name, prefix or id.
        ("GET /containers/t3-bob-web/json".into(), no(404, "No such container: t3-bob-web")),
        ("GET /containers/aab/json".into(), no(404, "No such container: aab")),
        (format!("GET /containers/{}/json", bobs_web()), no(404, &format!("No such container: {}", bobs_web()))),
        ("GET /containers/plain/json".into(), no(404, "No such container: plain")),
        ("GET /containers/ghost/json".into(), no(404, "No such container: ghost")),
        (
            "POST /containers/web/rename?name=new".into(),
            ok(format!("/containers/{}/rename", web()), Some("name=t5-alice-new")),
        ),
        (
            "POST /containers/web/rename?name=a%2Fb".into(),
            no(400, "Invalid container name (a/b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        ),
        ("POST /containers/db/exec".into(), ok(format!("/containers/{}/exec", db()), None)),
        (
            "POST /containers/create?name=a%2Fb".into(),
            no(400, "Invalid container name (a/b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        ),
        // A legacy link is removed under the parent's engine-side name; it must link one of the tenant's.
        ("DELETE /containers/web/database".into(), ok("/containers/t5-alice-web/database".into(), None)),
        ("DELETE /containers/web/other".into(), no(404, "No such container: web/other")),
        ("DELETE /containers/t3-bob-web/database".into(), no(404, "No such container: t3-bob-web/database")),
        // Exec instances of the tenant's containers only.
        (format!("GET /exec/{}/json", id("ee1")), ok(format!("/exec/{}/json", id("ee1")), None)),
        (format!("POST /exec/{}/start", id("ee2")), no(404, &format!("No such exec instance: {}", id("ee2")))),
        ("GET /exec/nothing/json".into(), no(404, "No such exec instance: nothing")),
        ("POST /commit?container=aa2&repo=x".into(), ok("/commit".into(), Some(&format!("repo=x&container={}", db())))),
        ("POST /commit?container=t3-bob-web".into(), no(404, "No such container: t3-bob-web")),
        // Networks: own by name or prefix, shared by name; bob's absent, his default network too.
        ("GET /networks/back".into(), ok(format!("/networks/{}", back()), None)),
        ("GET /networks/cc3".into(), ok(format!("/networks/{}", front()), None)),
        ("GET /networks/none".into(), ok(format!("/networks/{}", none()), None)),
        ("GET /networks/t3-bob-back".into(), no(404, "network t3-bob-back not found")),
        ("GET /networks/dd3".into(), no(404, "network dd3 not found")),
        ("GET /networks/t3-bob-bridge".into(), no(404, "network t3-bob-bridge not found")),
        ("DELETE /networks/bridge".into(), no(403, "bridge is a pre-defined network and cannot be removed")),
        ("DELETE /networks/none".into(), no(403, "none is a pre-defined network and cannot be removed")),
        ("DELETE /networks/host".into(), no(403, "the host network is not available to tenants")),
        // Volumes by the tenant's name; bob's by his engine-side name is a name alice has no volume of.
        ("GET /volumes/data".into(), ok("/volumes/t5-alice-data".into(), None)),
        ("DELETE /volumes/data".into(), ok("/volumes/t5-alice-data".into(), None)),
        ("GET /volumes/t3-bob-data".into(), no(404, "get t3-bob-data: no such volume")),
        ("GET /volumes/stolen".into(), no(404, "get stolen: no such volume")),
        // Lists and prunes carry the tenant's label; filters that name objects name the tenant's.
        (
            format!(
                "GET /containers/json?all=1&{}",
                filters(
                    json!({"name": ["web"], "before": ["db"], "volume": ["data", "/host"], "network": ["back", "none", "bridge"]})
                )
            ),
            ok(
                "/containers/json".into(),
                Some(&format!(
                    "all=1&{}",
                    filters(json!({
                        "before": {db(): true},
                        "label": {"mtswarm.tenant=alice": true},
                        "network": {"bridge": true, "none": true, "t5-alice-back": true, "t5-alice-bridge": true},
                        "volume": {"/host": true, "t5-alice-data": true},
                    }))
                )),
            ),
        ),
        (
            format!("GET /containers/json?{}", filters(json!({"since": ["t3-bob-web"]}))),
            no(404, "No such container: t3-bob-web"),
        ),
        ("GET /containers/json?before=aab".into(), no(404, "No such container: aab")),
        (
            format!(
                "GET /events?{}",
                filters(json!({"container": ["web", "ghost"], "network": ["back"], "volume": ["data"]}))
            ),
            ok(
                "/events".into(),
                Some(&filters(json!({
                    "container": {web(): true, "t5-alice-ghost": true},
                    "network": {"t5-alice-back": true},
                    "volume": {"t5-alice-data": true},
                }))),
            ),
        ),
        (
            format!("GET /events?{}", filters(json!({"container": ["t3-bob-web"]}))),
            ok("/events".into(), Some(&filters(json!({"container": {"t5-alice-t3-bob-web": true}})))),
        ),
        (
            "POST /networks/prune".into(),
            ok(
                "/networks/prune".into(),
                Some(&filters(
                    json!({"label": {"mtswarm.tenant=alice": true}, "label!": {"mtswarm.default-network": true}}),
                )),
            ),
        ),
        (
            "POST /volumes/prune".into(),
            ok("/volumes/prune".into(), Some(&filters(json!({"label": {"mtswarm.tenant=alice": true}})))),
        ),
        (
            "GET /volumes".into(),
            ok("/volumes".into(), Some(&filters(json!({"label": {"mtswarm.tenant=alice": true}})))),
        ),
    ];
    for (request, expected) in &table {
        let got = send(&engine(), DefaultNetwork::Private, request, "")
            .map(|s| (s.path, s.query))
            .map_err(|e| (e.status, e.message));
        assert_eq!(&got, expected, "{request}");
    }
}
