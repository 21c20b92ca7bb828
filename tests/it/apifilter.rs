//! The API filter (`SWARM_APIFILTER_FILE`): a disabled command is refused to tenants with dockerd's error shape,
//! everything else and the admin tenant are untouched, and a bad file stops start-up.

use crate::support::auth::mtswarm;
use crate::support::{it_test, Gateway, GatewayOpts};

it_test!(disabled_commands_are_refused_to_tenants_only, mtswarm_only("the API filter"), |t| {
    let file = t.dir().join("apifilter.json");
    std::fs::write(&file, r#"{"disableapi": ["networkslist", "containerpause", "containersps"]}"#).unwrap();
    let gw = Gateway::start(
        &t,
        GatewayOpts {
            env: vec![("SWARM_APIFILTER_FILE".into(), file.display().to_string())],
            ..GatewayOpts::default()
        },
    );
    let alice = gw.tenant("alice");
    let err = alice.fails(&["network", "ls"]);
    assert!(err.contains("networkslist is disabled on this service"), "{err}");

    let name = t.name("filtered");
    alice.ok(&["run", "-d", "--name", &name, "busybox:latest", "sleep", "60"]);
    let err = alice.fails(&["pause", &name]);
    assert!(err.contains("containerpause is disabled on this service"), "{err}");
    // Only the named commands: the neighbours work.
    alice.ok(&["ps", "-q"]);
    alice.ok(&["stop", "-t", "0", &name]);
    let status = alice.ok(&["inspect", "-f", "{{.State.Status}}", &name]);
    assert_eq!(status, "exited");

    // The admin tenant is not filtered.
    let admin = gw.admin();
    let list = admin.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(list.lines().any(|l| l == "bridge"), "{list}");
});

it_test!(an_unknown_command_name_stops_start_up, |t| {
    let file = t.dir().join("apifilter.json");
    std::fs::write(&file, r#"{"disableapi": ["networkslist", "containerz"]}"#).unwrap();
    let tokens = t.dir().join("tokens.json");
    std::fs::write(&tokens, r#"{"tokens": [{"tenant": "a", "token": "x"}]}"#).unwrap();
    let path = file.display().to_string();
    let tokens = tokens.display().to_string();
    let out = mtswarm(
        &["manage", "-H", "tcp://127.0.0.1:0"],
        t.dir(),
        &[("SWARM_APIFILTER_FILE", &path), ("SWARM_TOKENS_FILE", &tokens)],
    );
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("\"containerz\" is not a command name"), "{out}");
    assert!(!out.stdout.contains("listening"), "it must not start serving: {out}");

    // `apifilter names` lists the 2016 names and those for the endpoints 2016 did not know.
    let out = mtswarm(&["apifilter", "names"], t.dir(), &[]);
    assert_eq!(out.code, Some(0), "{out}");
    for name in ["containerscreate", "networkslist", "volumedelete", "containerrename", "build", "commit"] {
        assert!(out.stdout.lines().any(|l| l.starts_with(&format!("{name} "))), "{name} missing: {out}");
    }
});

it_test!(every_command_name_refuses_its_own_endpoint, mtswarm_only("the API filter"), |t| {
    // The names as the operator reads them: `mtswarm apifilter names`.
    let listing = mtswarm(&["apifilter", "names"], t.dir(), &[]);
    assert_eq!(listing.code, Some(0), "{listing}");
    let commands: Vec<(String, String, String)> = listing
        .stdout
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (name, method, path) = (f.next()?, f.next()?, f.next()?);
            (method != "-").then(|| (name.to_string(), method.to_string(), path.to_string()))
        })
        .collect();
    assert!(commands.len() > 60, "{listing}");
    let names: Vec<&str> = commands.iter().map(|(n, _, _)| n.as_str()).collect();
    let file = t.dir().join("apifilter.json");
    std::fs::write(&file, serde_json::json!({ "disableapi": names }).to_string()).unwrap();
    let gw = Gateway::start(
        &t,
        GatewayOpts {
            env: vec![("SWARM_APIFILTER_FILE".into(), file.display().to_string())],
            ..GatewayOpts::default()
        },
    );
    let http = gw.tenant("alice").http();
    for (name, method, path) in &commands {
        let path = path.replace("{id}", "x").replace("{name}", "x");
        let resp = http.request(method, &path, &[("Content-Type", "application/json")], Some(b"{}"));
        assert_eq!(resp.status, 403, "{method} {path}: {resp}");
        if method != "HEAD" {
            assert_eq!(resp.message(), format!("{name} is disabled on this service"), "{method} {path}");
        }
    }
    // The admin is not filtered.
    let resp = gw.admin().http().get("/containers/json");
    assert_eq!(resp.status, 200, "{resp}");
});
