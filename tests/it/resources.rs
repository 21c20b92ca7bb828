//! Networks, volumes, prunes (always filtered by the test's label: tests run in parallel), system df, info and
//! version through the gateway.

use crate::support::*;

fn networks_of(client: &Client, container: &str) -> Vec<String> {
    let out = client.ok(&[
        "inspect",
        "--format",
        "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}\n{{end}}",
        container,
    ]);
    lines(&out)
}

it_test!(network_create_ls_inspect_connect_disconnect_rm, |t, gw, alice| {
    let n = t.name("net");
    let c = t.name("member");

    let id = alice.ok(&["network", "create", &n]);
    assert_full_id(&id);
    let ls = alice.ok(&["network", "ls"]);
    assert!(ls.starts_with("NETWORK ID") && ls.contains(&n), "{ls}");
    assert_eq!(alice.ok(&["network", "ls", "--filter", &format!("name={n}"), "--format", "{{.Name}}"]), n);
    assert_eq!(alice.ok(&["network", "inspect", "--format", "{{.Name}} {{.Driver}}", &n]), format!("{n} bridge"));
    assert_eq!(alice.ok(&["network", "inspect", "--format", "{{.Id}}", &n]), id);

    // A running container on the default bridge (node0 has one), connected and disconnected.
    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    alice.ok(&["network", "connect", &n, &c]);
    assert!(networks_of(&alice, &c).contains(&n), "{:?}", networks_of(&alice, &c));
    let members = alice.ok(&["network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", &n]);
    assert_eq!(members, c);
    alice.ok(&["network", "disconnect", &n, &c]);
    assert!(!networks_of(&alice, &c).contains(&n));

    assert_eq!(alice.ok(&["network", "rm", &n]), n);
    let err = alice.fails(&["network", "inspect", &n]);
    assert!(err.contains("not found") || err.contains("No such"), "{err}");
});

it_test!(volume_create_ls_inspect_rm_and_shared_data, |t, gw, alice| {
    let v = t.name("vol");

    assert_eq!(alice.ok(&["volume", "create", &v]), v);
    let ls = alice.ok(&["volume", "ls"]);
    assert!(ls.starts_with("DRIVER") && ls.contains(&v), "{ls}");
    assert_eq!(alice.ok(&["volume", "ls", "--filter", &format!("name={v}"), "--format", "{{.Name}}"]), v);
    assert_eq!(alice.ok(&["volume", "inspect", "--format", "{{.Name}} {{.Driver}}", &v]), format!("{v} local"));

    let mount = format!("{v}:/data");
    alice.ok(&["run", "--rm", "-v", &mount, image(), "sh", "-c", "echo stored > /data/f"]);
    assert_eq!(alice.ok(&["run", "--rm", "-v", &mount, image(), "cat", "/data/f"]), "stored");

    assert_eq!(alice.ok(&["volume", "rm", &v]), v);
    let err = alice.fails(&["volume", "inspect", &v]);
    assert!(err.contains("no such volume") || err.contains("No such"), "{err}");
});

/// The ids or names a prune printed after its `Deleted ...:` heading, sorted.
fn pruned(out: &str) -> Vec<String> {
    let mut items: Vec<String> = lines(out)
        .into_iter()
        .skip_while(|l| !l.starts_with("Deleted"))
        .skip(1)
        .take_while(|l| !l.starts_with("Total reclaimed space"))
        .collect();
    items.sort();
    items
}

it_test!(container_prune_removes_only_the_labelled_containers, |t, gw, alice| {
    let label = t.label();

    let mut expected = Vec::new();
    for name in ["p1", "p2"] {
        let c = t.name(name);
        alice.ok(&["run", "--label", &label, "--name", &c, image(), "true"]);
        expected.push(alice.ok(&["inspect", "--format", "{{.Id}}", &c]));
    }
    expected.sort();
    let keep = t.name("keep");
    alice.ok(&["run", "--name", &keep, image(), "true"]);

    let out = alice.ok(&["container", "prune", "-f", "--filter", &format!("label={label}")]);
    assert_eq!(pruned(&out), expected, "{out}");
    let left = alice.ok(&["ps", "-a", "--filter", &format!("name={}", t.tag), "--format", "{{.Names}}"]);
    assert_eq!(left, keep);
});

it_test!(volume_prune_removes_only_the_labelled_volumes, |t, gw, alice| {
    let label = t.label();

    let mut expected = Vec::new();
    for name in ["v1", "v2"] {
        let v = t.name(name);
        alice.ok(&["volume", "create", "--label", &label, &v]);
        expected.push(v);
    }
    let keep = t.name("keep");
    alice.ok(&["volume", "create", &keep]);

    let out = alice.ok(&["volume", "prune", "-f", "--filter", &format!("label={label}")]);
    assert_eq!(pruned(&out), expected, "{out}");
    let left = alice.ok(&["volume", "ls", "--filter", &format!("name={}", t.tag), "--format", "{{.Name}}"]);
    assert_eq!(left, keep);
});

it_test!(network_prune_removes_only_the_labelled_networks, |t, gw, alice| {
    let label = t.label();

    let n = t.name("n1");
    alice.ok(&["network", "create", "--label", &label, &n]);
    let keep = t.name("keep");
    alice.ok(&["network", "create", &keep]);

    let out = alice.ok(&["network", "prune", "-f", "--filter", &format!("label={label}")]);
    assert_eq!(pruned(&out), [n], "{out}");
    let left = alice.ok(&["network", "ls", "--filter", &format!("name={}", t.tag), "--format", "{{.Name}}"]);
    assert_eq!(left, keep);
});

it_test!(system_df, |t, gw, alice| {
    let df = alice.ok(&["system", "df"]);
    let rows = lines(&df);
    assert!(rows[0].starts_with("TYPE"), "{df}");
    for kind in ["Images", "Containers", "Local Volumes", "Build Cache"] {
        assert!(rows.iter().any(|r| r.starts_with(kind)), "no {kind} row: {df}");
    }
});

it_test!(info, |t, gw, alice| {
    assert_ne!(alice.ok(&["info", "--format", "{{.Name}}"]), "");
    let out = alice.docker(&["info"]);
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("Server:"), "{out}");
    assert!(!out.stderr.contains("ERROR"), "{out}");
    let info: serde_json::Value =
        serde_json::from_str(&alice.ok(&["info", "--format", "{{json .}}"])).expect("info as JSON");
    assert_eq!(info["OSType"], "linux");
});

it_test!(version, |t, gw, alice| {
    let out = alice.docker(&["version"]);
    assert!(out.success(), "{out}");
    let server = out.stdout.split_once("Server:").map(|(_, s)| s).unwrap_or_else(|| panic!("no server: {out}"));
    let api = server.lines().find(|l| l.trim().starts_with("API version:")).unwrap_or_default();
    assert!(api.contains("1.41"), "{out}");
    assert_eq!(alice.ok(&["version", "--format", "{{.Server.APIVersion}}"]), "1.41");
    assert_eq!(alice.ok(&["version", "--format", "{{.Client.APIVersion}}"]), "1.41");
});

// An engine refuses a second prune while one runs ("a prune operation is already running"): on a shared
// engine one tenant's prune must not fail because another tenant prunes. mtswarm waits its turn. Each prune
// here has containers to remove (which takes the engine a while) and all start at once, round after round.
it_test!(tenants_pruning_at_once_each_get_their_prune, |t| {
    let names = ["alice", "bob", "carol", "dave"];
    let gw = Gateway::start(&t, GatewayOpts { tenants: names.to_vec(), ..GatewayOpts::default() });
    let clients: Vec<_> = names.iter().map(|n| gw.tenant(n)).collect();
    let filters = format!("{{\"label\":[\"{}\"]}}", t.label());
    let path = format!(
        "/v1.41/containers/prune?filters={}",
        filters
            .replace('"', "%22")
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('[', "%5B")
            .replace(']', "%5D")
            .replace(':', "%3A")
            .replace('=', "%3D")
    );
    for round in 0..3 {
        for c in &clients {
            for _ in 0..4 {
                c.ok(&["create", "--label", &t.label(), image(), "true"]);
            }
        }
        let start = std::sync::Barrier::new(clients.len());
        std::thread::scope(|s| {
            let runs: Vec<_> = clients
                .iter()
                .map(|c| {
                    let (start, path) = (&start, &path);
                    s.spawn(move || {
                        let http = c.http();
                        start.wait();
                        http.request("POST", path, &[], None)
                    })
                })
                .collect();
            for (c, r) in clients.iter().zip(runs) {
                let resp = r.join().unwrap();
                assert_eq!(resp.status, 200, "round {round}, {}: {resp}", c.tenant_id);
                assert_eq!(resp.json()["ContainersDeleted"].as_array().map(Vec::len), Some(4), "{resp}");
            }
        });
    }
    for c in &clients {
        assert_eq!(c.ok(&["ps", "-aq"]), "", "{}'s containers were pruned", c.tenant_id);
    }
});
