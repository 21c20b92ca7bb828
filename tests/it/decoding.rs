//! Request decoding as dockerd decodes it (`../shared/notes/docker-decoding.md`), attacked with raw HTTP by
//! tenant `alice` against tenant `bob` and the host: old API versions, start bodies, key spellings that Go's
//! `encoding/json` folds onto a field, fields given twice, wrong JSON types, `NetworkID`, network options,
//! malformed query parameters, form bodies and old-version defaults.
//!
//! Every attack is checked three ways: the gateway's answer (status, and a message naming the field), the
//! engine's state read directly (`engine_docker`, the admin's view: nothing of bob's and nothing of the host's
//! was reached), and the same request without the trick, which must work. When the gateway lets a trick
//! through, the engine check comes first where it can, so that a failure shows the hole itself (bob's volume
//! mounted, a host bind) rather than only a wrong status.
//!
//! Two deliberate departures from the plain form of the attacks, both to keep a gateway that still has the hole
//! from harming the shared test bed: the form-body prune carries the test's own label filter instead of an empty
//! one (an empty filter that slips past the tenant filter would prune every stopped container on the engine),
//! and a bridge name that a tenant must not set is a made-up interface name, except `lo` in the plain spelling
//! once the plain spelling has been shown refused (a forwarded `lo` would have dockerd adopt the host's loopback
//! as the bridge). One check goes beyond the letter of the brief: a tenant's container must get a private cgroup
//! namespace at every API version, 1.41 included, since on this cgroup v1 engine dockerd's own default is the
//! host's at every version (seen straight on the engine).

use serde_json::{json, Value};

use crate::support::auth::assert_error;
use crate::support::*;

/// dockerd's refusal of an API version below 1.24 (for the version in the path, 1.23).
const TOO_OLD_1_23: &str =
    "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version";

/// dockerd's refusal of a start body at API 1.24 and later.
const START_BODY: &str =
    "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24";

/// Long s (U+017F): Go's encoding/json reads it as `s` in a key.
const LONG_S: char = '\u{17F}';
/// Kelvin sign (U+212A): Go's encoding/json reads it as `k` in a key.
const KELVIN: char = '\u{212A}';

// ---------------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------------

/// `key` with every `s` (either case) replaced by the long s, as a key Go still reads as `key`.
fn long_s(key: &str) -> String {
    key.chars().map(|c| if c.eq_ignore_ascii_case(&'s') { LONG_S } else { c }).collect()
}

/// `key` with every `k` (either case) replaced by the Kelvin sign.
fn kelvin(key: &str) -> String {
    key.chars().map(|c| if c.eq_ignore_ascii_case(&'k') { KELVIN } else { c }).collect()
}

/// A JSON string literal.
fn js(s: &str) -> String {
    Value::from(s).to_string()
}

/// Percent-encodes `s` for a query or a form body.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST path` with `body`, JSON text sent exactly as given (keys in order, duplicates and escapes kept).
fn post_raw(http: &Http, path: &str, body: &str) -> Response {
    http.request("POST", path, &[("Content-Type", "application/json")], Some(body.as_bytes()))
}

/// `POST path` without a body.
fn post_empty(http: &Http, path: &str) -> Response {
    http.request("POST", path, &[], None)
}

/// `POST /containers/create?name=NAME` with the raw JSON `body`.
fn create(http: &Http, name: &str, body: &str) -> Response {
    post_raw(http, &format!("/containers/create?name={name}"), body)
}

/// The `Id` of a 201 answer to a create.
fn created_id(r: &Response, what: &str) -> String {
    assert_eq!(r.status, 201, "{what}: expected 201: {r}");
    r.json()["Id"].as_str().unwrap_or_else(|| panic!("{what}: no Id in {r}")).to_string()
}

/// Asserts a Docker JSON error with `status` whose message contains one of `needles`.
fn assert_refused(r: &Response, status: u16, needles: &[&str], what: &str) {
    assert_eq!(r.status, status, "{what}: expected HTTP {status} naming one of {needles:?}: {r}");
    let message = r.message();
    assert!(needles.iter().any(|n| message.contains(n)), "{what}: expected one of {needles:?} in the message: {r}");
}

/// Asserts a 4xx answer with a Docker JSON message: refused as the client's mistake, never a 5xx.
fn assert_client_error(r: &Response, what: &str) {
    assert!((400..500).contains(&r.status), "{what}: expected a 4xx refusal: {r}");
    assert!(!r.message().is_empty(), "{what}: a refusal without a message: {r}");
}

/// `docker inspect --format FORMAT REFERENCE` on the engine.
fn inspect(reference: &str, format: &str) -> String {
    engine_ok(&["inspect", "--format", format, reference])
}

/// True if the engine has an object of `kind` (`container`, `network`, `volume`) called `reference`.
fn exists(kind: &str, reference: &str) -> bool {
    engine_docker(&[kind, "inspect", reference]).success()
}

/// The ids (containers, networks) or names (volumes) of the engine's objects labelled with `tenant_id`.
fn labelled(kind: &str, tenant_id: &str) -> Vec<String> {
    let filter = format!("label={TENANT_LABEL}={tenant_id}");
    let out = match kind {
        "container" => engine_ok(&["ps", "-a", "-q", "--no-trunc", "--filter", &filter]),
        // A tenant's private default network (issue 12) is mtswarm's, made for the tenant's first container.
        "network" => {
            let ids = engine_ok(&["network", "ls", "-q", "--no-trunc", "--filter", &filter]);
            let own: Vec<String> = lines(&ids)
                .into_iter()
                .filter(|id| {
                    let format = "{{index .Labels \"mtswarm.default-network\"}}";
                    engine_ok(&["network", "inspect", "--format", format, id]).trim().is_empty()
                })
                .collect();
            own.join("\n")
        }
        _ => engine_ok(&["volume", "ls", "-q", "--filter", &filter]),
    };
    sorted_lines(&out)
}

/// The names of the volumes a container mounts, on the engine.
fn mounted_volumes(id: &str) -> Vec<String> {
    lines(&inspect(id, "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}}\n{{end}}{{end}}"))
}

/// The engine-side names of the networks a container is attached to (running or not).
fn networks_of(id: &str) -> Vec<String> {
    sorted_lines(&inspect(id, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}\n{{end}}"))
}

/// The ids of the containers with an endpoint on a network, on the engine.
fn members(network: &str) -> Vec<String> {
    sorted_lines(&engine_ok(&[
        "network",
        "inspect",
        "--format",
        "{{range $k, $v := .Containers}}{{$k}}\n{{end}}",
        network,
    ]))
}

/// Starts a container through the gateway and waits for it to end; returns its output, read on the engine.
fn run_through(http: &Http, id: &str) -> String {
    let r = post_empty(http, &format!("/containers/{id}/start"));
    assert_eq!(r.status, 204, "starting {id}: {r}");
    let r = post_empty(http, &format!("/containers/{id}/wait"));
    assert_eq!(r.status, 200, "waiting for {id}: {r}");
    let out = engine_docker(&["logs", id]);
    format!("{}{}", out.stdout, out.stderr)
}

/// Asserts that every volume `id` mounts is labelled with `tenant_id` and none is `victim`.
fn assert_mounts_only_own(id: &str, tenant_id: &str, victim: &str, what: &str) {
    let mounted = mounted_volumes(id);
    assert!(!mounted.iter().any(|v| v == victim), "{what}: the container mounts the other tenant's {victim}");
    for v in &mounted {
        assert_eq!(engine_owner("volume", v), tenant_id, "{what}: the container mounts {v}, a volume not its tenant's");
    }
}

/// A container that bob runs with a volume holding a secret.
struct Victim {
    /// Bob's volume, engine-side name.
    volume: String,
    /// Bob's running container that mounts the volume.
    container: String,
    /// Its engine-side name, without the slash.
    container_name: String,
    secret: String,
}

impl Victim {
    fn new(t: &Test, bob: &Client) -> Victim {
        let (data, holder) = (t.name("bob-data"), t.name("bob-holder"));
        let secret = format!("secret-of-bob-{}", t.tag);
        bob.ok(&["volume", "create", &data]);
        bob.ok(&[
            "run",
            "--rm",
            "-v",
            &format!("{data}:/d"),
            image(),
            "sh",
            "-c",
            &format!("echo {secret} > /d/secret"),
        ]);
        let container = bob.ok(&["run", "-d", "--name", &holder, "-v", &format!("{data}:/d"), image(), "sleep", "300"]);
        let victim = Victim { volume: bob.scoped(&data), container, container_name: bob.scoped(&holder), secret };
        assert_eq!(engine_owner("volume", &victim.volume), bob.tenant_id, "setup: bob's volume");
        victim.assert_untouched("setup");
        victim
    }

    /// Bob's data as the engine holds it: the secret is there, unchanged.
    fn assert_untouched(&self, what: &str) {
        let now = engine_ok(&["exec", &self.container, "cat", "/d/secret"]);
        assert_eq!(now, self.secret, "{what}: bob's volume {} was changed", self.volume);
    }

    /// No container of `tenant_id` mounts bob's volume, on the engine.
    fn assert_not_mounted_by(&self, tenant_id: &str, what: &str) {
        let found = engine_ok(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("volume={}", self.volume),
            "--filter",
            &format!("label={TENANT_LABEL}={tenant_id}"),
        ]);
        assert_eq!(found, "", "{what}: a container of {tenant_id} mounts bob's volume {}", self.volume);
    }
}

/// The probe that a container of alice's runs: it shows what its /d holds, and tries to overwrite it.
fn probe_cmd() -> Value {
    json!(["sh", "-c", "cat /d/secret 2>/dev/null; echo alice-was-here > /d/secret 2>/dev/null; true"])
}

// ---------------------------------------------------------------------------------------------------------
// 1, 2: versions and start bodies
// ---------------------------------------------------------------------------------------------------------

/// The escape that a HostConfig in a start body would be.
fn escape_start_body() -> String {
    json!({"Binds": ["/:/host"], "PidMode": "host", "CapAdd": ["SYS_ADMIN"]}).to_string()
}

/// Asserts on the engine that a container is not running and has none of the escape's host settings.
fn assert_not_started_with_escape(id: &str, what: &str) {
    let state = inspect(
        id,
        "{{.State.Running}}|{{json .HostConfig.Binds}}|{{.HostConfig.PidMode}}|{{json .HostConfig.CapAdd}}",
    );
    let parts: Vec<&str> = state.split('|').collect();
    assert_eq!(parts.len(), 4, "{state}");
    assert!(matches!(parts[1], "null" | "[]"), "{what}: the container got host binds {} ({state})", parts[1]);
    assert_ne!(parts[2], "host", "{what}: the container got the host's pid namespace ({state})");
    assert!(!parts[3].contains("SYS_ADMIN"), "{what}: the container got CAP_SYS_ADMIN ({state})");
    assert_eq!(parts[0], "false", "{what}: the container was started ({state})");
}

it_test!(api_versions_below_1_24_are_refused_for_everyone, mtswarm_only("mtswarm's minimum API version"), |t, gw| {
    let http = gw.tenant("alice").http();
    let id = created_id(
        &create(&http, &t.name("c"), &json!({"Image": image(), "Cmd": ["sleep", "300"]}).to_string()),
        "create",
    );

    let r = post_raw(&http, &format!("/v1.23/containers/{id}/start"), &escape_start_body());
    assert_not_started_with_escape(&id, "a start at /v1.23 with a HostConfig body");
    assert_error(&r, 400, TOO_OLD_1_23);
    assert_eq!(r.message(), TOO_OLD_1_23, "{r}");

    let r = post_raw(&http, &format!("/v1.23/containers/{id}/copy"), &json!({"Resource": "/etc/hostname"}).to_string());
    assert_error(&r, 400, TOO_OLD_1_23);
    let r = http.get("/v1.23/containers/json");
    assert_error(&r, 400, TOO_OLD_1_23);
    let r = gw.admin().http().get("/v1.23/containers/json");
    assert_error(&r, 400, TOO_OLD_1_23);
    assert_not_started_with_escape(&id, "the /v1.23 requests");

    // 1.24 works, the start included, and brings no host settings.
    let r = http.get("/v1.24/containers/json");
    assert_eq!(r.status, 200, "{r}");
    assert!(r.json().is_array(), "{r}");
    let r = post_empty(&http, &format!("/v1.24/containers/{id}/start"));
    assert_eq!(r.status, 204, "{r}");
    assert_eq!(inspect(&id, "{{.State.Running}}|{{json .HostConfig.Binds}}|{{.HostConfig.PidMode}}"), "true|null|");
});

it_test!(a_start_body_is_refused_at_api_1_24_and_later, mtswarm_only("start bodies"), |t, gw| {
    let http = gw.tenant("alice").http();
    let id = created_id(
        &create(&http, &t.name("c"), &json!({"Image": image(), "Cmd": ["sleep", "300"]}).to_string()),
        "create",
    );

    for path in [
        format!("/v1.41/containers/{id}/start"),
        format!("/v1.24/containers/{id}/start"),
        format!("/containers/{id}/start"),
    ] {
        let r = post_raw(&http, &path, &escape_start_body());
        assert_not_started_with_escape(&id, &format!("POST {path} with a HostConfig body"));
        assert_error(&r, 400, START_BODY);
    }

    let r = post_empty(&http, &format!("/v1.41/containers/{id}/start"));
    assert_eq!(r.status, 204, "{r}");
    assert_eq!(inspect(&id, "{{.State.Running}}|{{json .HostConfig.Binds}}|{{.HostConfig.PidMode}}"), "true|null|");
});

// ---------------------------------------------------------------------------------------------------------
// 3: key spellings that Go folds onto a field
// ---------------------------------------------------------------------------------------------------------

/// Create bodies that mount the volume `vol` at /d: (what, the body with a folded spelling, the plain body).
fn volume_bodies(vol: &str) -> Vec<(&'static str, String, String)> {
    let bind = format!("{vol}:/d");
    let plain_binds = json!({"Image": image(), "Cmd": probe_cmd(), "HostConfig": {"Binds": [&bind]}}).to_string();
    let mount = |source_key: &str| json!({"Type": "volume", source_key: vol, "Target": "/d"});
    let plain_mounts =
        json!({"Image": image(), "Cmd": probe_cmd(), "HostConfig": {"Mounts": [mount("Source")]}}).to_string();
    let with_key = |outer: &str, inner: &str, value: Value| {
        let mut hc = serde_json::Map::new();
        hc.insert(inner.to_string(), value);
        let mut body = serde_json::Map::new();
        body.insert("Image".into(), image().into());
        body.insert("Cmd".into(), probe_cmd());
        body.insert(outer.to_string(), Value::Object(hc));
        Value::Object(body).to_string()
    };
    vec![
        ("Bind\u{17F} in HostConfig", with_key("HostConfig", &long_s("Binds"), json!([&bind])), plain_binds.clone()),
        ("Ho\u{17F}tConfig", with_key(&long_s("HostConfig"), "Binds", json!([&bind])), plain_binds.clone()),
        (
            "Bind\\u017f, a JSON escape",
            with_key("HostConfig", "BINDS_KEY", json!([&bind])).replace("BINDS_KEY", "Bind\\u017f"),
            plain_binds.clone(),
        ),
        ("BINDS", with_key("HostConfig", "BINDS", json!([&bind])), plain_binds.clone()),
        (
            "Mount\u{17F} with \u{17F}ource",
            with_key("HostConfig", &long_s("Mounts"), json!([mount(&long_s("source"))])),
            plain_mounts.clone(),
        ),
        ("\u{17F}ource in a mount", with_key("HostConfig", "Mounts", json!([mount("\u{17F}ource")])), plain_mounts),
        (
            "Binds at the top level",
            json!({"Image": image(), "Cmd": probe_cmd(), "Binds": [&bind]}).to_string(),
            plain_binds,
        ),
    ]
}

it_test!(
    folded_key_spellings_do_not_mount_another_tenants_volume,
    mtswarm_only("tenant isolation"),
    |t, gw, alice, bob| {
        let http = alice.http();
        let victim = Victim::new(&t, &bob);

        for (i, (what, trick, plain)) in volume_bodies(&victim.volume).into_iter().enumerate() {
            let mut statuses = Vec::new();
            for (variant, body) in [("trick", &trick), ("plain", &plain)] {
                let what = format!("{what} ({variant}) naming bob's volume");
                let name = t.name(&format!("v{i}-{variant}"));
                let r = create(&http, &name, body);
                if r.status == 201 {
                    let id = created_id(&r, &what);
                    assert_mounts_only_own(&id, &alice.tenant_id, &victim.volume, &what);
                    let seen = run_through(&http, &id);
                    assert!(!seen.contains(&victim.secret), "{what}: alice's container read bob's secret: {seen:?}");
                } else {
                    assert_client_error(&r, &what);
                    assert!(!exists("container", &alice.scoped(&name)) && !exists("container", &name), "{what}: {r}");
                }
                victim.assert_untouched(&what);
                victim.assert_not_mounted_by(&alice.tenant_id, &what);
                statuses.push(r.status);
            }
            assert_eq!(statuses[0], statuses[1], "{what}: the folded spelling is not answered as the plain one");
        }

        // Without the trick, alice's own volume: every spelling mounts alice's own engine-side volume.
        let own = t.name("alice-data");
        for (i, (what, trick, plain)) in volume_bodies(&own).into_iter().enumerate() {
            for (variant, body) in [("trick", &trick), ("plain", &plain)] {
                let what = format!("{what} ({variant}) naming alice's own volume");
                let id = created_id(&create(&http, &t.name(&format!("own{i}-{variant}")), body), &what);
                assert_eq!(mounted_volumes(&id), [alice.scoped(&own)], "{what}: not alice's own volume mounted");
            }
        }
        assert_eq!(engine_owner("volume", &alice.scoped(&own)), alice.tenant_id);
        assert!(!exists("volume", &own), "a spelling made the unscoped volume {own} on the engine");
        victim.assert_untouched("the end");
        victim.assert_not_mounted_by(&alice.tenant_id, "the end");
    }
);

it_test!(
    folded_key_spellings_do_not_reach_another_tenants_container,
    mtswarm_only("tenant isolation"),
    |t, gw, alice, bob| {
        let http = alice.http();
        let victim = Victim::new(&t, &bob);

        let body = |key: &str, value: Value| {
            let mut hc = serde_json::Map::new();
            hc.insert(key.to_string(), value);
            json!({"Image": image(), "Cmd": ["sleep", "300"], "HostConfig": Value::Object(hc)}).to_string()
        };
        let (name, id) = (&victim.container_name, &victim.container);
        let cases = [
            (
                "Volume\u{17F}From, bob's engine-side name",
                body(&long_s("VolumesFrom"), json!([name])),
                body("VolumesFrom", json!([name])),
            ),
            (
                "Volume\u{17F}From, bob's id",
                body(&long_s("VolumesFrom"), json!([id])),
                body("VolumesFrom", json!([id])),
            ),
            (
                "volumesfrom, bob's engine-side name",
                body("volumesfrom", json!([name])),
                body("VolumesFrom", json!([name])),
            ),
            (
                "Lin\u{212A}s, bob's engine-side name",
                body(&kelvin("Links"), json!([format!("{name}:x")])),
                body("Links", json!([format!("{name}:x")])),
            ),
            (
                "Lin\u{212A}s, bob's id",
                body(&kelvin("Links"), json!([format!("{id}:x")])),
                body("Links", json!([format!("{id}:x")])),
            ),
        ];
        for (i, (what, trick, plain)) in cases.iter().enumerate() {
            let mut statuses = Vec::new();
            for (variant, body) in [("trick", trick), ("plain", plain)] {
                let what = format!("{what} ({variant})");
                let cname = t.name(&format!("c{i}-{variant}"));
                let r = create(&http, &cname, body);
                if r.status == 201 {
                    let created = created_id(&r, &what);
                    assert_mounts_only_own(&created, &alice.tenant_id, &victim.volume, &what);
                    let links = inspect(&created, "{{json .HostConfig.Links}}");
                    assert!(
                        !links.contains(name.as_str()) && !links.contains(id.as_str()),
                        "{what}: alice's container is linked to bob's: {links}"
                    );
                }
                assert_client_error(&r, &what);
                assert!(
                    r.message().to_lowercase().contains("no such container"),
                    "{what}: expected bob's container to be unknown to alice: {r}"
                );
                statuses.push(r.status);
            }
            assert_eq!(statuses[0], statuses[1], "{what}: the folded spelling is not answered as the plain one");
        }
        victim.assert_untouched("the attempts");
        victim.assert_not_mounted_by(&alice.tenant_id, "the attempts");
        assert_eq!(labelled("container", &alice.tenant_id), Vec::<String>::new(), "an attempt created a container");

        // Without the trick: alice's own container, in either spelling.
        let (src, data) = (t.name("alice-src"), t.name("alice-data"));
        alice.ok(&["run", "-d", "--name", &src, "-v", &format!("{data}:/d"), image(), "sleep", "300"]);
        for (i, key) in ["VolumesFrom".to_string(), long_s("VolumesFrom")].iter().enumerate() {
            let what = format!("{key} naming alice's own container");
            let created = created_id(&create(&http, &t.name(&format!("from{i}")), &body(key, json!([&src]))), &what);
            assert_eq!(mounted_volumes(&created), [alice.scoped(&data)], "{what}");
        }
        for (i, key) in ["Links".to_string(), kelvin("Links")].iter().enumerate() {
            let what = format!("{key} naming alice's own container");
            let created = created_id(
                &create(&http, &t.name(&format!("link{i}")), &body(key, json!([format!("{src}:x")]))),
                &what,
            );
            // On the tenant's private bridge (a user-defined network, issue 12) a link is the endpoint's.
            let links = inspect(&created, "{{json .HostConfig.Links}} {{json .NetworkSettings.Networks}}");
            assert!(
                links.contains(&format!("{}:", alice.scoped(&src))),
                "{what}: not linked to alice's container: {links}"
            );
        }
    }
);

it_test!(host_paths_are_refused_in_every_spelling, mtswarm_only("the host-escape rules"), |t, gw, alice| {
    let http = alice.http();

    let hc = |key: &str, value: Value| {
        let mut hc = serde_json::Map::new();
        hc.insert(key.to_string(), value);
        json!({"Image": image(), "Cmd": ["true"], "HostConfig": Value::Object(hc)}).to_string()
    };
    let bind_mount = |source_key: &str| json!([{"Type": "bind", source_key: "/", "Target": "/host"}]);
    let mut outer = serde_json::Map::new();
    outer.insert("Image".into(), image().into());
    outer.insert(long_s("HostConfig"), json!({"Binds": ["/:/host"]}));
    let cases = [
        ("HostConfig.Binds", hc("Binds", json!(["/:/host"])), "Binds"),
        ("Bind\u{17F}", hc(&long_s("Binds"), json!(["/:/host"])), "Binds"),
        ("Bind\\u017f", hc("BINDS_KEY", json!(["/:/host"])).replace("BINDS_KEY", "Bind\\u017f"), "Binds"),
        ("Ho\u{17F}tConfig", Value::Object(outer).to_string(), "Binds"),
        ("top-level Binds", json!({"Image": image(), "Binds": ["/:/host"]}).to_string(), "Binds"),
        ("top-level Bind\u{17F}", json!({"Image": image(), "Bind\u{17F}": ["/etc:/host"]}).to_string(), "Binds"),
        ("Mount\u{17F}", hc(&long_s("Mounts"), bind_mount(&long_s("Source"))), "Mounts"),
        ("\u{17F}ource in a bind mount", hc("Mounts", bind_mount("\u{17F}ource")), "Mounts"),
    ];
    for (i, (what, body, field)) in cases.iter().enumerate() {
        let name = t.name(&format!("host{i}"));
        let r = create(&http, &name, body);
        assert!(
            !exists("container", &alice.scoped(&name)) && !exists("container", &name),
            "{what}: a container with a host path was created on the engine: {r}"
        );
        assert_refused(&r, 403, &[field], what);
    }
    assert_eq!(labelled("container", &alice.tenant_id), Vec::<String>::new());

    // Without the trick: a named volume of alice's own.
    let data = t.name("data");
    let id = created_id(&create(&http, &t.name("vol"), &hc("Binds", json!([format!("{data}:/d")]))), "a named volume");
    assert_eq!(mounted_volumes(&id), [alice.scoped(&data)]);
    assert_eq!(inspect(&id, "{{json .HostConfig.Binds}}"), json!([format!("{}:/d", alice.scoped(&data))]).to_string());
});

// ---------------------------------------------------------------------------------------------------------
// 4: a field given twice
// ---------------------------------------------------------------------------------------------------------

it_test!(a_field_given_twice_is_refused, mtswarm_only("tenant isolation"), |t, gw, alice, bob| {
    let http = alice.http();
    let bob_id = bob.tenant_id.clone();

    let (bvol, bnet, bc) = (t.name("bvol"), t.name("bnet"), t.name("bc"));
    bob.ok(&["volume", "create", &bvol]);
    let bnet_id = bob.ok(&["network", "create", &bnet]);
    let bc_id = bob.ok(&["run", "-d", "--name", &bc, image(), "sleep", "300"]);
    let (anet, ac) = (t.name("anet"), t.name("ac"));
    let anet_id = alice.ok(&["network", "create", &anet]);
    let ac_id = alice.ok(&["run", "-d", "--name", &ac, image(), "sleep", "300"]);
    let bob_volume = bob.scoped(&bvol);
    let bob_mountpoint = engine_ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", &bob_volume]);
    let bob_volumes = labelled("volume", &bob_id);
    let bob_networks = labelled("network", &bob_id);
    assert_eq!(bob_volumes, std::slice::from_ref(&bob_volume));
    assert_eq!(bob_networks, std::slice::from_ref(&bnet_id));
    let bob_unchanged = |what: &str| {
        assert_eq!(labelled("volume", &bob_id), bob_volumes, "{what}: a volume labelled bob's was made");
        assert_eq!(labelled("network", &bob_id), bob_networks, "{what}: a network labelled bob's was made");
        assert_eq!(engine_owner("volume", &bob_volume), bob_id, "{what}: bob's volume changed hands");
        let named = engine_ok(&["network", "ls", "--no-trunc", "--format", "{{.ID}} {{.Name}}"]);
        let same_name: Vec<&str> =
            named.lines().filter(|l| l.split(' ').nth(1) == Some(bob.scoped(&bnet).as_str())).collect();
        assert_eq!(same_name, [format!("{bnet_id} {}", bob.scoped(&bnet))], "{what}: a second network has bob's name");
        assert!(!networks_of(&bc_id).contains(&alice.scoped(&anet)), "{what}: bob's container is on alice's network");
        assert!(!members(&anet_id).contains(&bc_id), "{what}: bob's container is on alice's network");
    };

    let (v1, v2, v3, v4) = (t.name("v1"), t.name("v2"), t.name("v3"), t.name("v4"));
    let (n1, n2, n3) = (t.name("n1"), t.name("n2"), t.name("n3"));
    let cases: Vec<(&str, String, String, &[&str])> = vec![
        (
            "volume Labels and labels",
            "/volumes/create".into(),
            format!(r#"{{"Name":{},"Labels":{{}},"labels":{{"{TENANT_LABEL}":{}}}}}"#, js(&v1), js(&bob_id)),
            &["Labels"],
        ),
        (
            "volume Labels twice",
            "/volumes/create".into(),
            format!(r#"{{"Name":{},"Labels":{{}},"Labels":{{"{TENANT_LABEL}":{}}}}}"#, js(&v4), js(&bob_id)),
            &["Labels"],
        ),
        (
            "volume Name and name",
            "/volumes/create".into(),
            format!(r#"{{"Name":{},"name":{}}}"#, js(&v2), js(&bob_volume)),
            &["Name"],
        ),
        (
            "volume Name twice",
            "/volumes/create".into(),
            format!(r#"{{"Name":{},"Name":{}}}"#, js(&v3), js(&bob_volume)),
            &["Name"],
        ),
        (
            "network Labels and labels",
            "/networks/create".into(),
            format!(r#"{{"Name":{},"Labels":{{}},"labels":{{"{TENANT_LABEL}":{}}}}}"#, js(&n1), js(&bob_id)),
            &["Labels"],
        ),
        (
            "network Name and name",
            "/networks/create".into(),
            format!(r#"{{"Name":{},"name":{}}}"#, js(&n2), js(&bob.scoped(&bnet))),
            &["Name"],
        ),
        (
            "network Name and NAME",
            "/networks/create".into(),
            format!(r#"{{"Name":{},"NAME":{}}}"#, js(&n3), js(&bob.scoped(&bnet))),
            &["Name"],
        ),
        (
            "connect Container and container",
            format!("/networks/{anet}/connect"),
            format!(r#"{{"Container":{},"container":{}}}"#, js(&ac_id), js(&bc_id)),
            &["Container"],
        ),
        (
            "connect Container and CONTAINER, bob's engine-side name",
            format!("/networks/{anet}/connect"),
            format!(r#"{{"Container":{},"CONTAINER":{}}}"#, js(&ac), js(&bob.scoped(&bc))),
            &["Container"],
        ),
    ];
    for (what, path, body, field) in &cases {
        let r = post_raw(&http, path, body);
        bob_unchanged(what);
        assert!(!r.text().contains(&bob_mountpoint), "{what}: the answer shows bob's volume: {r}");
        assert_refused(&r, 400, field, what);
    }
    for v in [&v1, &v2, &v3, &v4] {
        assert!(!exists("volume", &alice.scoped(v)) && !exists("volume", v), "a refused volume create made {v}");
    }
    for n in [&n1, &n2, &n3] {
        assert!(!exists("network", &alice.scoped(n)) && !exists("network", n), "a refused network create made {n}");
    }
    // Only alice's private default network (issue 12).
    assert_eq!(networks_of(&ac_id), [alice.scoped("bridge")], "a refused connect attached alice's container");

    // Without the trick: one spelling each, with names of their own.
    let (v5, v6, n4, n5) = (t.name("v5"), t.name("v6"), t.name("n4"), t.name("n5"));
    let r = post_raw(&http, "/volumes/create", &json!({"Name": v5, "Labels": {"a": "1"}}).to_string());
    assert_eq!(r.status, 201, "{r}");
    assert_eq!(engine_owner("volume", &alice.scoped(&v5)), alice.tenant_id);
    assert_eq!(engine_ok(&["volume", "inspect", "--format", "{{index .Labels \"a\"}}", &alice.scoped(&v5)]), "1");
    let r = post_raw(&http, "/volumes/create", &json!({"name": v6}).to_string());
    assert_eq!(r.status, 201, "{r}");
    assert_eq!(engine_owner("volume", &alice.scoped(&v6)), alice.tenant_id);
    let r = post_raw(&http, "/networks/create", &json!({"Name": n4, "labels": {"a": "1"}}).to_string());
    assert_eq!(r.status, 201, "{r}");
    assert_eq!(engine_owner("network", &alice.scoped(&n4)), alice.tenant_id);
    let r = post_raw(&http, "/networks/create", &json!({"name": n5}).to_string());
    assert_eq!(r.status, 201, "{r}");
    assert_eq!(engine_owner("network", &alice.scoped(&n5)), alice.tenant_id);
    let r = post_raw(&http, &format!("/networks/{anet}/connect"), &json!({"container": ac_id}).to_string());
    assert_eq!(r.status, 200, "{r}");
    assert!(members(&anet_id).contains(&ac_id), "alice's own connect did not attach her container");
    bob_unchanged("the allowed requests");
});

// ---------------------------------------------------------------------------------------------------------
// 5: wrong JSON types
// ---------------------------------------------------------------------------------------------------------

it_test!(wrong_json_types_are_400_naming_the_field, mtswarm_only("body decoding"), |t, gw, alice| {
    let http = alice.http();

    let cases = [
        ("Binds a string", json!({"Image": image(), "HostConfig": {"Binds": "x:/d"}}), "HostConfig.Binds"),
        ("Shell a number", json!({"Image": image(), "Shell": 7}), "Shell"),
        ("Shell with a number", json!({"Image": image(), "Shell": ["sh", 1]}), "Shell"),
    ];
    for (i, (what, body, field)) in cases.iter().enumerate() {
        let name = t.name(&format!("bad{i}"));
        let r = create(&http, &name, &body.to_string());
        assert!(!exists("container", &alice.scoped(&name)), "{what}: created on the engine: {r}");
        assert_refused(&r, 400, &[field], what);
    }
    assert_eq!(labelled("container", &alice.tenant_id), Vec::<String>::new());

    // Unknown fields are dropped; the right types work.
    let data = t.name("data");
    let fine = [
        ("an unknown field", json!({"Image": image(), "Bogus": {"x": 1}})),
        ("Shell a list of strings", json!({"Image": image(), "Shell": ["/bin/sh", "-c"]})),
        ("Binds a list", json!({"Image": image(), "HostConfig": {"Binds": [format!("{data}:/d")]}})),
    ];
    for (i, (what, body)) in fine.iter().enumerate() {
        created_id(&create(&http, &t.name(&format!("fine{i}")), &body.to_string()), what);
    }
});

// ---------------------------------------------------------------------------------------------------------
// 6: NetworkID
// ---------------------------------------------------------------------------------------------------------

it_test!(a_network_id_does_not_reach_another_tenants_network, mtswarm_only("tenant isolation"), |t, gw, alice, bob| {
    let http = alice.http();
    let (anet, bnet) = (t.name("anet"), t.name("bnet"));
    let anet_id = alice.ok(&["network", "create", &anet]);
    let bnet_id = bob.ok(&["network", "create", &bnet]);
    let bob_c = bob.ok(&["run", "-d", "--network", &bnet, "--name", &t.name("bob-c"), image(), "sleep", "300"]);
    assert_eq!(members(&bnet_id), std::slice::from_ref(&bob_c));
    let bnet_untouched = |what: &str| {
        assert_eq!(
            members(&bnet_id),
            std::slice::from_ref(&bob_c),
            "{what}: a container of alice's joined bob's network"
        );
        for id in labelled("container", &alice.tenant_id) {
            assert!(!networks_of(&id).contains(&bob.scoped(&bnet)), "{what}: alice's {id} is on bob's network");
        }
    };
    let create_body = |network_id: Option<&str>| {
        let mut endpoint = json!({});
        if let Some(n) = network_id {
            endpoint["NetworkID"] = n.into();
        }
        json!({
            "Image": image(),
            "Cmd": ["sleep", "300"],
            "HostConfig": {"NetworkMode": anet},
            "NetworkingConfig": {"EndpointsConfig": {anet.clone(): endpoint}},
        })
        .to_string()
    };

    // Create: bob's network by id, id prefix and engine-side name.
    let bob_refs = [bnet_id.clone(), bnet_id[..12].to_string(), bob.scoped(&bnet)];
    for (i, reference) in bob_refs.iter().enumerate() {
        let what = format!("create with NetworkID {reference}");
        let r = create(&http, &t.name(&format!("c{i}")), &create_body(Some(reference)));
        if r.status == 201 {
            // Let the hole show: the network is joined at start.
            let id = created_id(&r, &what);
            let _ = post_empty(&http, &format!("/containers/{id}/start"));
        }
        bnet_untouched(&what);
        assert_client_error(&r, &what);
    }

    // Connect: alice's running container, bob's network by id.
    let ac = alice.ok(&["run", "-d", "--name", &t.name("ac"), image(), "sleep", "300"]);
    for reference in &bob_refs {
        let what = format!("connect with EndpointConfig.NetworkID {reference}");
        let body = json!({"Container": ac, "EndpointConfig": {"NetworkID": reference}}).to_string();
        let r = post_raw(&http, &format!("/networks/{anet}/connect"), &body);
        bnet_untouched(&what);
        assert_client_error(&r, &what);
    }
    // Only alice's private default network (issue 12), engine-side `t<len>-<alice>-bridge`.
    assert_eq!(networks_of(&ac), [alice.scoped("bridge")]);

    // Without the trick: anet's own id, or no NetworkID.
    for (i, network_id) in [Some(anet_id.as_str()), None].into_iter().enumerate() {
        let what = format!("create with NetworkID {network_id:?}");
        let id = created_id(&create(&http, &t.name(&format!("own{i}")), &create_body(network_id)), &what);
        let r = post_empty(&http, &format!("/containers/{id}/start"));
        assert_eq!(r.status, 204, "{what}: {r}");
        assert!(members(&anet_id).contains(&id), "{what}: not on alice's network");
        assert_eq!(networks_of(&id), [alice.scoped(&anet)], "{what}");
    }
    for (i, network_id) in [Some(anet_id.as_str()), None].into_iter().enumerate() {
        let what = format!("connect with NetworkID {network_id:?}");
        let c = alice.ok(&["run", "-d", "--name", &t.name(&format!("conn{i}")), image(), "sleep", "300"]);
        let mut body = json!({"Container": c, "EndpointConfig": {}});
        if let Some(n) = network_id {
            body["EndpointConfig"]["NetworkID"] = n.into();
        }
        let r = post_raw(&http, &format!("/networks/{anet}/connect"), &body.to_string());
        assert_eq!(r.status, 200, "{what}: {r}");
        assert!(members(&anet_id).contains(&c), "{what}: not on alice's network");
    }
    bnet_untouched("the allowed requests");
});

// ---------------------------------------------------------------------------------------------------------
// 7: network create
// ---------------------------------------------------------------------------------------------------------

/// The engine's networks labelled with `tenant_id`: (engine-side name, driver, options as JSON).
fn tenant_networks(tenant_id: &str) -> Vec<(String, String, String)> {
    labelled("network", tenant_id)
        .iter()
        .filter_map(|id| {
            let out = engine_docker(&["network", "inspect", "--format", "{{.Name}}|{{.Driver}}|{{json .Options}}", id]);
            let text = out.stdout.trim().to_string();
            let mut parts = text.splitn(3, '|');
            Some((parts.next()?.to_string(), parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

it_test!(network_options_that_reach_the_host_are_refused, mtswarm_only("the host-escape rules"), |t, gw, alice| {
    let http = alice.http();
    // Interface names of this test's own (at most 15 bytes), never the name of a host interface; one per case,
    // so that a case let through does not make the next one fail for a name already taken.
    let bridge = |c: char| format!("mtit{:x}{c}", std::process::id() % 0x1000_0000);
    const BRIDGE_NAME: &str = "com.docker.network.bridge.name";

    let net = |i: usize| t.name(&format!("n{i}"));
    let body = |i: usize, rest: &str| format!(r#"{{"Name":{}{}}}"#, js(&net(i)), rest);
    let bridge_opt = |c: char| format!(r#"{{"{BRIDGE_NAME}":{}}}"#, js(&bridge(c)));
    let cases: Vec<(String, u16, &[&str])> = vec![
        (body(0, &format!(r#","Options":{}"#, bridge_opt('a'))), 403, &[BRIDGE_NAME]),
        (body(1, &format!(r#","Option{LONG_S}":{}"#, bridge_opt('b'))), 403, &[BRIDGE_NAME]),
        (body(2, &format!(r#","options":{}"#, bridge_opt('c'))), 403, &[BRIDGE_NAME]),
        (body(3, &format!(r#","Options":{{}},"options":{}"#, bridge_opt('d'))), 400, &["Options"]),
        (body(4, r#","Driver":"macvlan""#), 403, &["Driver"]),
        (body(5, r#","Driver":"ipvlan""#), 403, &["Driver"]),
        (body(6, r#","Driver":"host""#), 403, &["Driver"]),
        (body(7, r#","Options":{"parent":"eth0"}"#), 403, &["parent"]),
        (body(8, r#","ConfigOnly":true"#), 403, &["ConfigOnly"]),
        (body(9, r#","Ingress":true"#), 403, &["Ingress"]),
        (body(10, r#","Scope":"swarm""#), 403, &["Scope"]),
        (body(11, r#","ConfigFrom":{"Network":"x"}"#), 403, &["ConfigFrom"]),
        (body(12, r#","IPAM":{"Config":[{"Subnet":"10.213.5.0/24"}]}"#), 403, &["IPAM", "Subnet"]),
        (body(13, &format!(r#","Driver":"bridge","Option{LONG_S}":{{"parent":"eth0"}}"#)), 403, &["parent"]),
    ];
    for (i, (body, status, needles)) in cases.iter().enumerate() {
        let r = post_raw(&http, "/networks/create", body);
        let made = engine_ok(&["network", "ls", "-q", "--filter", &format!("name={}", net(i))]);
        assert_eq!(made, "", "{body}: a refused network create reached the engine: {r}");
        assert_refused(&r, *status, needles, body);
    }
    // Every com.docker.network.bridge.* option is the host's business (issue 10), even one that only narrows.
    let r = post_raw(
        &http,
        "/networks/create",
        &body(19, r#","Options":{"com.docker.network.bridge.enable_icc":"false"}"#),
    );
    assert_refused(&r, 403, &["com.docker.network.bridge.enable_icc"], "bridge option enable_icc");
    // `lo` itself, now that a bridge name is shown refused in this spelling.
    let r = post_raw(&http, "/networks/create", &body(20, &format!(r#","Options":{{"{BRIDGE_NAME}":"lo"}}"#)));
    assert_refused(&r, 403, &[BRIDGE_NAME], "bridge name lo");
    for (name, driver, options) in tenant_networks(&alice.tenant_id) {
        assert!(!matches!(driver.as_str(), "macvlan" | "ipvlan" | "host"), "alice has a {driver} network {name}");
        assert!(!options.contains(BRIDGE_NAME), "alice's network {name} has the option {options}");
    }
    assert_eq!(labelled("network", &alice.tenant_id), Vec::<String>::new());

    // Allowed.
    for (i, rest) in [
        "",
        r#","Internal":true"#,
        r#","Attachable":true"#,
        r#","Labels":{"a":"b"}"#,
        r#","Driver":"bridge","Options":{"com.docker.network.driver.mtu":"1400"}"#,
    ]
    .iter()
    .enumerate()
    {
        let body = body(30 + i, rest);
        let r = post_raw(&http, "/networks/create", &body);
        assert_eq!(r.status, 201, "{body}: {r}");
        assert_eq!(engine_owner("network", &alice.scoped(&net(30 + i))), alice.tenant_id);
    }
});

it_test!(
    tenant_subnets_bound_a_tenants_ipam,
    mtswarm_only("the host-escape rules"),
    gw = GatewayOpts { args: vec!["--tenant-subnets".into(), "10.213.0.0/16".into()], ..Default::default() },
    |t, gw, alice| {
        let http = alice.http();
        // A /24 of this run's own inside the tenant range, apart from the 10.213.5.0/24 of the test above.
        let inside = format!("10.213.{}.0/24", 50 + std::process::id() % 150);

        for (i, subnet) in ["10.99.7.0/24", "10.213.0.0/15", "0.0.0.0/0"].iter().enumerate() {
            let name = t.name(&format!("out{i}"));
            let body = json!({"Name": name, "IPAM": {"Config": [{"Subnet": subnet}]}}).to_string();
            let r = post_raw(&http, "/networks/create", &body);
            let made = engine_ok(&["network", "ls", "-q", "--filter", &format!("name={name}")]);
            assert_eq!(made, "", "{body}: a subnet outside the tenant range reached the engine: {r}");
            assert_refused(&r, 403, &["IPAM", "Subnet"], &body);
        }

        let name = t.name("in");
        let body = json!({"Name": name, "IPAM": {"Config": [{"Subnet": inside}]}}).to_string();
        let r = post_raw(&http, "/networks/create", &body);
        assert_eq!(r.status, 201, "{body}: {r}");
        let engine_subnet = engine_ok(&[
            "network",
            "inspect",
            "--format",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            &alice.scoped(&name),
        ]);
        assert_eq!(engine_subnet, inside);
        assert_eq!(engine_owner("network", &alice.scoped(&name)), alice.tenant_id);
    }
);

// ---------------------------------------------------------------------------------------------------------
// 8, 9: query parameters and form bodies
// ---------------------------------------------------------------------------------------------------------

it_test!(malformed_query_parameters_are_400, mtswarm_only("query parsing"), |t, gw, alice| {
    let http = alice.http();
    let id = alice.ok(&["run", "-d", "--label", &t.label(), "--name", &t.name("c"), image(), "sleep", "300"]);

    let r = http.get("/containers/json?limit=null");
    assert_refused(&r, 400, &["limit", "null"], "limit=null");
    let r = http.get("/containers/json?filters=notjson");
    assert_refused(&r, 400, &["filter", "notjson"], "filters=notjson");
    let r = post_empty(&http, &format!("/containers/{id}/stop?t=abc"));
    assert_eq!(inspect(&id, "{{.State.Running}}"), "true", "stop?t=abc stopped the container");
    assert_refused(&r, 400, &["abc", "\"t\"", "t="], "stop?t=abc");

    // Valid ones.
    let r = http.get("/containers/json?limit=1");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.json().as_array().map(Vec::len), Some(1), "{r}");
    let filters = urlencode(&json!({"label": [t.label()]}).to_string());
    let r = http.get(&format!("/containers/json?filters={filters}"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.json()[0]["Id"], id, "{r}");
    let r = post_empty(&http, &format!("/containers/{id}/stop?t=1"));
    assert_eq!(r.status, 204, "{r}");
    assert_eq!(inspect(&id, "{{.State.Running}}"), "false");
});

/// `POST path` with an `application/x-www-form-urlencoded` body.
fn post_form(http: &Http, path: &str, form: &str) -> Response {
    http.request("POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], Some(form.as_bytes()))
}

it_test!(
    a_prune_with_a_form_body_removes_only_the_tenants_own_containers,
    mtswarm_only("tenant isolation"),
    |t, gw, alice, bob| {
        let http = alice.http();
        let label = t.label();

        // The form body's filters (this test's label only) take the place of the query's for dockerd; they must not
        // take the place of the tenant filter.
        let alice_dead = alice.ok(&["create", "--label", &label, "--name", &t.name("alice-dead"), image(), "true"]);
        let bob_dead = bob.ok(&["create", "--label", &label, "--name", &t.name("bob-dead"), image(), "true"]);
        let form = format!("filters={}", urlencode(&json!({"label": [label]}).to_string()));
        let client = alice.clone();
        let r = std::thread::spawn(move || post_form(&client.http(), "/containers/prune", &form))
            .join()
            .unwrap_or_else(|_| {
                panic!(
            "alice's prune with a form body got no answer (the read error is above); bob's container still there: {}",
            exists("container", &bob_dead)
        )
            });
        assert!(exists("container", &bob_dead), "alice's prune with a form body removed bob's container: {r}");
        assert_eq!(engine_owner("container", &bob_dead), bob.tenant_id);
        assert_eq!(r.status, 200, "{r}");
        assert!(!exists("container", &alice_dead), "alice's prune with a form body left her own container: {r}");
        assert!(!r.text().contains(&bob_dead), "the prune answer names bob's container: {r}");

        // Without the trick: the filters in the query.
        let alice_dead = alice.ok(&["create", "--label", &label, "--name", &t.name("alice-dead2"), image(), "true"]);
        let r = post_empty(
            &http,
            &format!("/containers/prune?filters={}", urlencode(&json!({"label": [label]}).to_string())),
        );
        assert_eq!(r.status, 200, "{r}");
        assert!(!exists("container", &alice_dead), "alice's prune left her own container: {r}");
        assert!(exists("container", &bob_dead), "alice's prune removed bob's container: {r}");
    }
);

it_test!(
    a_rename_with_a_form_body_stays_in_the_tenants_scope,
    mtswarm_only("tenant isolation"),
    |t, gw, alice, bob| {
        let http = alice.http();

        let c = alice.ok(&["create", "--name", &t.name("c"), image(), "true"]);
        let newname = t.name("newname");
        let bobs = bob.scoped(&t.name("x"));
        let r =
            post_form(&http, &format!("/containers/{c}/rename?name={newname}"), &format!("name={}", urlencode(&bobs)));
        let engine_name = inspect(&c, "{{.Name}}");
        assert!(
            !engine_name.starts_with(&format!("/{}", bob.scope_prefix())),
            "alice's container went into bob's scope as {engine_name}: {r}"
        );
        assert_eq!(engine_name, format!("/{}", alice.scoped(&newname)), "{r}");
        assert_eq!(engine_owner("container", &c), alice.tenant_id);
        assert!(!exists("container", &bobs), "a container is on the engine under bob's name {bobs}");

        // Without the trick.
        let other = t.name("other");
        let r = post_empty(&http, &format!("/containers/{c}/rename?name={other}"));
        assert_eq!(r.status, 204, "{r}");
        assert_eq!(inspect(&c, "{{.Name}}"), format!("/{}", alice.scoped(&other)));
    }
);

// ---------------------------------------------------------------------------------------------------------
// 10: old-version defaults
// ---------------------------------------------------------------------------------------------------------

it_test!(creates_at_old_api_versions_get_a_private_cgroup_namespace, mtswarm_only("old-version defaults"), |t, gw| {
    let http = gw.tenant("alice").http();
    // The premise: on a cgroup v1 engine dockerd gives a create without a CgroupnsMode the host's cgroup
    // namespace. Seen straight on this engine at /v1.40 and at /v1.41 alike (the daemon's default mode is `host`
    // on cgroup v1, and API versions below 1.41 ask for `host` besides), so every version is checked.
    assert_eq!(engine_ok(&["info", "--format", "{{.CgroupVersion}}"]), "1", "the premise needs a cgroup v1 engine");

    for version in ["1.40", "1.24", "1.41"] {
        let name = t.name(&format!("c{}", version.replace('.', "")));
        let body = json!({"Image": image(), "Cmd": ["sleep", "300"]}).to_string();
        let r = post_raw(&http, &format!("/v{version}/containers/create?name={name}"), &body);
        let id = created_id(&r, version);
        assert_eq!(inspect(&id, "{{.HostConfig.CgroupnsMode}}"), "private", "a create at /v{version}");
        let r = post_empty(&http, &format!("/v{version}/containers/{id}/start"));
        assert_eq!(r.status, 204, "{r}");
        assert_eq!(inspect(&id, "{{.State.Running}}|{{.HostConfig.CgroupnsMode}}"), "true|private");
    }
    // An explicit private mode is the tenant's to ask for at any version.
    let name = t.name("explicit");
    let body = json!({"Image": image(), "HostConfig": {"CgroupnsMode": "private"}}).to_string();
    let id = created_id(&post_raw(&http, &format!("/v1.40/containers/create?name={name}"), &body), "explicit");
    assert_eq!(inspect(&id, "{{.HostConfig.CgroupnsMode}}"), "private");
});

// ---------------------------------------------------------------------------------------------------------
// 11: query parameters that reach the host (found by the red team of this change)
// ---------------------------------------------------------------------------------------------------------

// `docker top`'s `ps_args` go to the host's `ps`: a format that renames a column to PID made dockerd's error
// quote a field of any host process, e.g. the cgroup path that holds another tenant's container id.
it_test!(
    top_arguments_cannot_read_the_hosts_or_another_tenants_processes,
    mtswarm_only("the ps_args rule"),
    |t, gw, alice, bob| {
        let mine = alice.ok(&["run", "-d", "--name", &t.name("top"), image(), "sleep", "301"]);
        let bobs = bob.ok(&["run", "-d", "--name", &t.name("secret"), image(), "sleep", "302"]);
        let pid = inspect(&bobs, "{{.State.Pid}}");
        let http = alice.http();
        for args in [
            format!("-ocgroup=PID -p{pid} --sort=pid"),
            "-oargs=PID -p1 --sort=pid".to_string(),
            "-eo args,pid".to_string(),
            format!("-ef -p {pid}"),
        ] {
            let r = http.get(&format!("/containers/{mine}/top?ps_args={}", urlencode(&args)));
            assert_refused(&r, 403, &["ps_args"], &args);
            assert!(!r.text().contains(&bobs), "{args}: bob's container id in the answer: {r}");
        }
        // The usual forms work and show alice's process only.
        for args in ["", "-ef", "aux", "-o pid,comm,args"] {
            let r = http.get(&format!("/containers/{mine}/top?ps_args={}", urlencode(args)));
            assert_eq!(r.status, 200, "{args:?}: {r}");
            let text = r.text();
            assert!(text.contains("sleep"), "{args:?}: {text}");
            assert!(!text.contains("sleep 302"), "{args:?}: bob's process shown: {text}");
        }
    }
);

// A port published on the engine host's `::1` bound beside a host service listening on `127.0.0.1` only, so the
// host's own clients of `localhost` could reach the tenant's container.
it_test!(ports_are_not_published_on_the_hosts_loopback, mtswarm_only("the published-port rule"), |t, gw, alice| {
    let http = alice.http();
    for (i, ip) in ["::1", "127.0.0.1", "::ffff:127.0.0.1", "169.254.10.10"].iter().enumerate() {
        let name = t.name(&format!("squat{i}"));
        let body = json!({"Image": image(), "Cmd": ["sleep", "300"], "ExposedPorts": {"80/tcp": {}},
                          "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": ip, "HostPort": ""}]}}});
        let r = create(&http, &name, &body.to_string());
        assert_refused(&r, 403, &["PortBindings"], ip);
        assert!(!exists("container", &alice.scoped(&name)), "{ip}: the container was created");
    }
    // The host's network addresses stay allowed.
    let name = t.name("published");
    let body = json!({"Image": image(), "Cmd": ["sleep", "300"], "ExposedPorts": {"80/tcp": {}},
                      "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": ""}]}}});
    created_id(&create(&http, &name, &body.to_string()), "a port on 0.0.0.0");
});

it_test!(malformed_and_empty_bodies_are_refused_in_dockerds_words, |t, gw, alice| {
    // moby's TestContainerInvalidJSON, TestNetworkInvalidJSON and TestVolumesInvalidJSON, for every endpoint they
    // name: dockerd 20.10 answers with Go's decoder's words, and clients' suites match them.
    let _ = &t;
    let http = alice.http();
    let json = [("Content-Type", "application/json")];
    for path in [
        "/v1.41/containers/foobar/exec",
        "/v1.41/exec/foobar/start",
        "/v1.41/networks/create",
        "/v1.41/networks/bridge/connect",
        "/v1.41/networks/bridge/disconnect",
        "/v1.41/volumes/create",
    ] {
        let r = http.request("POST", path, &json, Some(b"{invalid json"));
        assert_error(&r, 400, "invalid character 'i' looking for beginning of object key string");
        let r = http.request("POST", path, &json, Some(b""));
        assert_error(&r, 400, "got EOF while reading request body");
        let r = http.request("POST", path, &json, Some(b"{\"Name\":"));
        assert_error(&r, 400, "unexpected EOF");
    }
    let r = http.request("POST", "/v1.41/volumes/create", &json, Some(b"[1]"));
    assert_error(&r, 400, "json: cannot unmarshal array into Go value of type volume.VolumeCreateBody");
    // None of them made anything: an empty volume create made an anonymous volume of the tenant's before.
    if !direct() {
        assert_eq!(alice.ok(&["volume", "ls", "-q"]), "");
    }
});
