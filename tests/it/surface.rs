//! The whole API 1.41 surface as real clients' own suites use it: swarm mode answered as by a dockerd in no
//! swarm, plugins (the engines' for the admin, none for a tenant), checkpoints and CORS preflights as an engine
//! without experimental mode answers them, BuildKit's session forwarded, legacy link removal (a name with a
//! slash), attach over a websocket, image operations over several nodes, errors that name what the user typed.

use std::io::Read;

use crate::support::cluster::*;
use crate::support::*;

const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

it_test!(features_that_are_off_answer_as_an_engine_without_them, |t, gw| {
    for http in [gw.tenant("alice").http(), gw.admin().http()] {
        let leave = http.request("POST", "/v1.41/swarm/leave?force=true", &[], None);
        assert_eq!((leave.status, leave.message().as_str()), (503, "This node is not part of a swarm"), "{leave}");
        for path in
            ["/v1.41/swarm", "/v1.41/nodes", "/v1.41/services", "/v1.41/tasks", "/v1.41/secrets", "/v1.41/configs"]
        {
            let r = http.get(path);
            assert_eq!((r.status, r.message().as_str()), (503, NOT_A_MANAGER), "{path}: {r}");
        }
        let checkpoints = http.get(&format!("/v1.41/containers/{}/checkpoints", t.name("none")));
        assert_eq!(checkpoints.status, 501, "{checkpoints}");
        assert!(checkpoints.message().contains("experimental mode"), "{checkpoints}");
        let options = http.request("OPTIONS", "/v1.41/containers/json", &[], None);
        assert_eq!(options.status, 200, "{options}");
        let plugins = http.get("/v1.41/plugins");
        assert_eq!((plugins.status, plugins.json()), (200, serde_json::json!([])), "{plugins}");
    }
    // BuildKit's session reaches the engine for whoever may build, with the engine's refusals.
    let admin = gw.admin().http();
    let none = admin.request("POST", "/v1.41/session", &[], None);
    assert_eq!((none.status, none.message().as_str()), (400, "no upgrade proto in request"), "{none}");
    let foo = admin.request("POST", "/v1.41/session", &[("Connection", "Upgrade"), ("Upgrade", "foo")], None);
    assert_eq!((foo.status, foo.message().as_str()), (400, "protocol foo not supported"), "{foo}");
    if direct() {
        return;
    }
    let alice = gw.tenant("alice").http();
    let session = alice.request("POST", "/v1.41/session", &[("Connection", "Upgrade"), ("Upgrade", "h2c")], None);
    assert_eq!(session.status, 403, "{session}");
    for (method, path) in [
        ("POST", "/v1.41/plugins/pull?remote=vieux/sshfs"),
        ("POST", "/v1.41/plugins/p/enable"),
        ("DELETE", "/v1.41/plugins/p"),
    ] {
        let r = alice.request(method, path, &[], None);
        assert_eq!(r.status, 403, "{method} {path}: {r}");
        assert!(r.message().contains("reserved to the admin tenant"), "{r}");
    }
    let inspect = alice.get("/v1.41/plugins/vieux/sshfs:latest/json");
    assert_eq!(
        (inspect.status, inspect.message().as_str()),
        (404, "plugin \"vieux/sshfs:latest\" not found"),
        "{inspect}"
    );
});

// Legacy links live on the engine's default bridge; a tenant's default network is its own user-defined bridge
// (issue 12), where a link is an alias, unless the operator keeps the shared one.
it_test!(
    a_legacy_link_is_removed_by_its_full_name,
    gw = GatewayOpts { args: vec!["--tenant-default-network".into(), "shared".into()], ..Default::default() },
    |t, gw, alice| {
        let (db, web) = (t.name("db"), t.name("web"));
        alice.ok(&["run", "-d", "--name", &db, image(), "sleep", "300"]);
        alice.ok(&["run", "-d", "--name", &web, "--link", &format!("{db}:dbalias"), image(), "sleep", "300"]);
        let link = format!("/v1.41/containers/{web}/dbalias?link=1");
        let names = || alice.ok(&["ps", "-a", "--no-trunc", "--format", "{{.Names}}"]);
        let full = format!("{web}/dbalias");
        assert!(names().split(['\n', ',']).any(|n| n == full), "{}", names());
        if !direct() {
            // Another tenant names a link it does not own: as missing.
            let bob = gw.tenant("bob").http().request("DELETE", &link, &[], None);
            assert_eq!(bob.status, 404, "{bob}");
        }
        let removed = alice.http().request("DELETE", &link, &[], None);
        assert_eq!(removed.status, 204, "{removed}");
        // The link is gone, the containers stay.
        assert!(!names().split(['\n', ',']).any(|n| n == full), "{}", names());
        assert_eq!(alice.ok(&["inspect", "--format", "{{.State.Running}}", &web, &db]), "true\ntrue");
        alice.ok(&["rm", "-f", &web, &db]);
    }
);

it_test!(attach_over_a_websocket_completes_the_handshake, |t, gw, alice| {
    let c = t.name("ws");
    alice.ok(&["run", "--name", &c, image(), "echo", "hello over ws"]);
    let ws = alice.http().upgrade(
        "GET",
        &format!("/v1.41/containers/{c}/attach/ws?logs=1&stdout=1&stream=0"),
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Origin", "http://localhost"),
        ],
    );
    assert_eq!(ws.status, 101, "{:?}", ws.headers);
    let accept = ws.headers.iter().find(|(k, _)| k == "sec-websocket-accept").map(|(_, v)| v.as_str());
    // RFC 6455's example key and its accept value.
    assert_eq!(accept, Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{:?}", ws.headers);
    let mut conn = ws.conn;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20)));
    let mut out = ws.pending;
    let _ = conn.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).contains("hello over ws"), "{:?}", String::from_utf8_lossy(&out));
    alice.ok(&["rm", "-f", &c]);
});

it_test!(errors_name_the_container_as_the_user_named_it, |t, gw, alice| {
    let c = t.name("cp");
    alice.ok(&["create", "--name", &c, image(), "true"]);
    let dest = t.path("out");
    let err = alice.fails(&["cp", &format!("{c}:/no/such/file"), dest.to_str().unwrap()]);
    assert!(err.contains(&format!("in container {c}")), "{err}");
    alice.ok(&["rm", "-f", &c]);
});

it_test!(
    image_operations_over_the_nodes_answer_as_one_engine,
    mtswarm_only("a cluster"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, admin| {
        let tag = format!("{}-tagged:v1", t.tag);
        admin.ok(&["tag", image(), &tag]);
        for e in engines() {
            let has = e.docker(&["image", "inspect", "--format", "{{.Id}}", &tag]);
            assert!(has.success(), "{} lacks {tag}: {}", e.name, has.stderr);
        }
        assert!(admin.ok(&["history", &tag]).starts_with("IMAGE"));
        let saved = t.path("saved.tar");
        admin.ok(&["save", "-o", saved.to_str().unwrap(), &tag]);
        let removed = admin.ok(&["rmi", &tag]);
        assert_eq!(lines(&removed), [format!("Untagged: {tag}")], "{removed}");
        for e in engines() {
            assert!(!e.docker(&["image", "inspect", &tag]).success(), "{} still has {tag}", e.name);
        }
    }
);

it_test!(a_tenant_sees_its_own_labels_and_links_ahead_of_their_containers, |t, gw, alice| {
    let net = t.name("net");
    alice.ok(&["network", "create", "--label", "team=a", &net]);
    assert_eq!(alice.ok(&["network", "inspect", "--format", "{{json .Labels}}", &net]), r#"{"team":"a"}"#);
    let vol = t.name("vol");
    alice.ok(&["volume", "create", "--label", "team=a", &vol]);
    assert_eq!(alice.ok(&["volume", "inspect", "--format", "{{json .Labels}}", &vol]), r#"{"team":"a"}"#);
    // A link on a user-defined network may name a container that does not exist yet, as on an engine.
    let c = t.name("c");
    alice.ok(&[
        "create",
        "--name",
        &c,
        "--network",
        &net,
        "--link",
        &format!("{}:up", t.name("later")),
        "--label",
        "team=a",
        image(),
        "true",
    ]);
    assert_eq!(alice.ok(&["inspect", "--format", "{{json .Config.Labels}}", &c]), r#"{"team":"a"}"#);
    alice.ok(&["rm", "-f", &c]);
    alice.ok(&["network", "rm", &net]);
    alice.ok(&["volume", "rm", &vol]);
});

/// A plugin's directory as `docker plugin create` takes it: `config.json` and a rootfs whose entrypoint listens on
/// the plugin's socket (dockerd enables a plugin only once something listens there). No registry can be reached,
/// and busybox listens on no unix socket: the listener is mtswarm itself, with the libraries it links.
fn plugin_dir(t: &Test) -> std::path::PathBuf {
    let dir = t.path("plugin");
    let rootfs = dir.join("rootfs");
    for d in ["bin", "tmp", "run/docker/plugins"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("the plugin's rootfs");
    }
    let mtswarm = env!("CARGO_BIN_EXE_mtswarm");
    let stripped = rootfs.join("bin/mtswarm");
    let strip = std::process::Command::new("strip").arg("-o").arg(&stripped).arg(mtswarm).status();
    if !strip.is_ok_and(|s| s.success()) {
        std::fs::copy(mtswarm, &stripped).expect("mtswarm in the plugin");
    }
    let ldd = std::process::Command::new("ldd").arg(mtswarm).output().expect("ldd");
    for lib in String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
        let to = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().expect("a folder")).expect("the library's folder");
        std::fs::copy(lib, &to).unwrap_or_else(|e| panic!("{lib}: {e}"));
    }
    let config = serde_json::json!({
        "Description": "mtswarm's test plugin",
        "Documentation": "https://example.invalid",
        "Entrypoint": ["/bin/mtswarm", "manage", "-H", "unix:///run/docker/plugins/p.sock", "unix:///nowhere.sock"],
        "Env": [{"Name": "SWARM_MULTI_TENANT", "Settable": ["value"], "Value": "false"},
                {"Name": "MODE", "Settable": ["value"], "Value": "a"}],
        "Interface": {"Socket": "p.sock", "Types": ["docker.mtswarmtest/1.0"]},
        "Network": {"Type": "none"},
        "WorkDir": "/tmp"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config.json");
    dir
}

/// Removes a plugin from every engine at the end of a test (the test's cleanup knows no plugins).
struct PluginGuard(String);

impl Drop for PluginGuard {
    fn drop(&mut self) {
        for e in engines() {
            let _ = engine_docker_at(&e.url(), &["plugin", "rm", "-f", &self.0]);
        }
    }
}

it_test!(
    the_admins_plugin_changes_reach_every_node,
    mtswarm_only("a cluster"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, admin| {
        let name = format!("{}-plugin:latest", t.tag.to_ascii_lowercase());
        let _guard = PluginGuard(name.clone());
        let dir = plugin_dir(&t);
        let on_each = |format: &str| -> Vec<String> {
            engines()
                .iter()
                .map(|e| {
                    let out = e.docker(&["plugin", "inspect", "--format", format, &name]);
                    if out.success() {
                        out.stdout.trim().to_string()
                    } else {
                        format!("missing on {}", e.name)
                    }
                })
                .collect()
        };
        // Created on every node, from one upload.
        admin.ok(&["plugin", "create", &name, dir.to_str().unwrap()]);
        assert_eq!(on_each("{{.Enabled}}"), ["false"; 3]);
        // Listed once, as one engine lists it.
        assert_eq!(
            lines(&admin.ok(&["plugin", "ls", "--format", "{{.Name}} {{.Enabled}}"])),
            [format!("{name} false")]
        );
        admin.ok(&["plugin", "set", &name, "MODE=b"]);
        assert_eq!(on_each("{{json .Settings.Env}}"), [r#"["SWARM_MULTI_TENANT=false","MODE=b"]"#; 3]);
        admin.ok(&["plugin", "enable", &name]);
        assert_eq!(on_each("{{.Enabled}}"), ["true"; 3]);
        // A setting of an enabled plugin is refused by each engine: the refusal is the answer.
        let refused = admin.fails(&["plugin", "set", &name, "MODE=c"]);
        assert!(refused.contains("cannot set on an active plugin"), "{refused}");
        admin.ok(&["plugin", "disable", &name]);
        assert_eq!(on_each("{{.Enabled}}"), ["false"; 3]);
        // A node that lacks it is skipped, as an image removal skips it.
        assert!(engines()[2].docker(&["plugin", "rm", &name]).success());
        admin.ok(&["plugin", "set", &name, "MODE=d"]);
        admin.ok(&["plugin", "rm", &name]);
        assert_eq!(
            on_each("{{.Enabled}}"),
            engines().iter().map(|e| format!("missing on {}", e.name)).collect::<Vec<_>>()
        );
        let gone = admin.fails(&["plugin", "inspect", &name]);
        assert!(gone.contains("not found"), "{gone}");
        // A pull every node refuses (no registry here) answers as one engine refuses it, and installs nothing.
        let pull = format!("/v1.41/plugins/pull?remote=127.0.0.1:1/nothing:latest&name={name}");
        let r = admin.http().request("POST", &pull, &[("Content-Type", "application/json")], Some(b"[]"));
        crate::support::auth::assert_error(&r, 500, "error resolving plugin reference");
        assert_eq!(
            on_each("{{.Enabled}}"),
            engines().iter().map(|e| format!("missing on {}", e.name)).collect::<Vec<_>>()
        );
    }
);

it_test!(
    the_cli_over_the_nodes_reads_as_over_one_engine,
    mtswarm_only("a cluster"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice, admin| {
        // bench/cli.sh's differences. An image no node has is `No such image`, as one engine says, so the CLI
        // pulls it (here no registry answers) instead of failing at once.
        let missing = format!("{}-nothing:v1", t.tag.to_ascii_lowercase());
        for client in [&alice, &admin] {
            let out = client.fails(&["run", "--rm", &missing, "true"]);
            assert!(out.contains(&format!("Unable to find image '{missing}' locally")), "{out}");
        }
        // A rename to a name in use says what it was doing, as dockerd does.
        let (a, b) = (t.name("a"), t.name("b"));
        alice.ok(&["run", "-d", "--name", &a, image(), "sleep", "300"]);
        let b_id = alice.ok(&["run", "-d", "--name", &b, image(), "sleep", "300"]);
        let out = alice.fails(&["rename", &a, &b]);
        assert!(
            out.contains(&format!(
                "Error when allocating new name: Conflict. The container name \"/{b}\" is already in use by container \"{b_id}\""
            )),
            "{out}"
        );
        // The cluster's list shows a change at once, as one engine's does (the registry read events only).
        let a2 = t.name("a2");
        alice.ok(&["rename", &a, &a2]);
        assert_eq!(alice.ok(&["ps", "--filter", &format!("name={a}"), "--format", "{{.Names}}"]), a2);
        alice.ok(&["pause", &a2]);
        assert!(alice.ok(&["ps", "--filter", &format!("name={a2}"), "--format", "{{.Status}}"]).ends_with("(Paused)"));
        alice.ok(&["unpause", &a2]);
        // dockerd names a running container it will not remove by its id, whatever the user typed.
        let out = alice.fails(&["rm", &b]);
        assert!(out.contains(&format!("You cannot remove a running container {b_id}.")), "{out}");
    }
);
