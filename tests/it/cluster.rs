//! The cluster: mtswarm in front of the three engines of the test bed (node0, node1, node2), as Docker Swarm
//! classic was, driven through the real docker CLI and raw HTTP.
//!
//! Where a container landed is asked of the engines themselves (`support::cluster::placement`), never of mtswarm.
//! Every test but the overlay one holds `cluster_lock` (they share node1 and node2, and one stops node2: see
//! `support::cluster::CLUSTER`) and counts only its own tenants' containers: the other tests run meanwhile and
//! put theirs on node0. Containers that should spread or pack carry a memory reservation (`-m`) large enough to
//! outweigh whatever the other tests leave on node0.
//!
//! All of this is mtswarm's own behaviour: in direct mode (`MTSWARM_IT_DIRECT=1`) every test returns at once.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::time::Duration;

use serde_json::json;

use crate::support::cluster::*;
use crate::support::*;

/// `docker run -d EXTRA... busybox sleep 600` as `c`; returns the printed id.
fn run(c: &Client, extra: &[&str]) -> String {
    let out = try_run(c, extra);
    assert!(out.success(), "expected success: {out}");
    out.stdout.trim().to_string()
}

/// `docker run -d EXTRA... busybox sleep 600` as `c`, whatever it answers.
fn try_run(c: &Client, extra: &[&str]) -> Output {
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image(), "sleep", "600"]);
    c.docker(&args)
}

/// `docker run -d EXTRA... busybox sh -c SCRIPT` as `c`, whatever it answers.
fn try_run_sh(c: &Client, extra: &[&str], script: &str) -> Output {
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image(), "sh", "-c", script]);
    c.docker(&args)
}

/// The placement map for counts given in the engines' order (node0, node1, node2).
fn counts(n: [usize; 3]) -> BTreeMap<String, usize> {
    engines().iter().zip(n).map(|(e, n)| (e.name.clone(), n)).collect()
}

/// `-e constraint:node==NAME`'s value.
fn on(node: &str) -> String {
    format!("constraint:node=={node}")
}

/// A container's labels and env, as the tenant inspects them.
fn labels_and_env(c: &Client, container: &str) -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
    let out = c.ok(&["inspect", "--format", "{{json .Config.Labels}}\t{{json .Config.Env}}", container]);
    let (labels, env) = out.split_once('\t').unwrap_or_else(|| panic!("unexpected inspect output {out:?}"));
    let labels: serde_json::Value = serde_json::from_str(labels).expect("labels as JSON");
    // The test image (an import of a rootfs) has no Env of its own: a container without any has `null`.
    let env: Option<Vec<String>> = serde_json::from_str(env).expect("env as JSON");
    (labels.as_object().cloned().unwrap_or_default(), env.unwrap_or_default())
}

/// The JSON array of strings in label `key`, as Swarm classic keeps scheduling expressions.
fn label_list(labels: &serde_json::Map<String, serde_json::Value>, key: &str) -> Vec<String> {
    let text = labels.get(key).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("no label {key} in {labels:?}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("label {key}={text:?} is not a JSON array of strings: {e}"))
}

// ---------------------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------------------

it_test!(
    spread_puts_six_containers_two_on_each_node,
    mtswarm_only("scheduling"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice| {
        for _ in 0..6 {
            run(&alice, &["-m", "4g"]);
        }
        assert_eq!(placement(&alice.tenant_id), counts([2, 2, 2]), "spread is the default strategy\n{}", gw.stderr());
    }
);

it_test!(
    binpack_fills_one_node_before_the_next,
    mtswarm_only("scheduling"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&["--strategy", "binpack"]),
    |t, gw, alice| {
        // 9 GiB each: two fit in a node's ~23.5 GiB, a third does not.
        for i in 1..=4 {
            run(&alice, &["-m", "9g"]);
            let p = placement(&alice.tenant_id);
            assert!(p.values().all(|&n| n <= 2), "a node holds more than 2 containers of 9 GiB: {p:?}");
            if i == 2 {
                assert_eq!(shape(&p), [2, 0, 0], "the first two were not packed on one node: {p:?}\n{}", gw.stderr());
            }
        }
        let p = placement(&alice.tenant_id);
        assert_eq!(shape(&p), [2, 2, 0], "four containers of 9 GiB: {p:?}\n{}", gw.stderr());
    }
);

// ---------------------------------------------------------------------------------------------------------
// Constraints and affinities
// ---------------------------------------------------------------------------------------------------------

it_test!(
    constraints_choose_the_nodes,
    mtswarm_only("scheduling"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice| {
        // Each create reserves 1 GiB, so that spread alone would use every node, node0 included.
        let table: &[(&[&str], &[&str])] = &[
            (&["-e", "constraint:node==node2"], &["node2"]),
            (&["-e", "constraint:zone==z1"], &["node1"]),
            (&["-e", "constraint:node!=node0"], &["node1", "node2"]),
            (&["-e", "constraint:node==/node[12]/"], &["node1", "node2"]),
            (&["--label", r#"com.docker.swarm.constraints=["node==node1"]"#], &["node1"]),
        ];
        for (extra, allowed) in table {
            for _ in 0..3 {
                let mut args = vec!["-m", "1g"];
                args.extend_from_slice(extra);
                let id = run(&alice, &args);
                let node = node_of(&alice.tenant_id, &id);
                assert!(
                    allowed.contains(&node.as_str()),
                    "`docker run {args:?}` landed on {node}, not on one of {allowed:?}"
                );
            }
        }

        // The env entry is moved into Swarm classic's label; the container keeps its rule, not the variable.
        let id = run(&alice, &["--name", "moved", "-e", "constraint:node==node2", "-e", "KEPT=1"]);
        assert_eq!(node_of(&alice.tenant_id, &id), "node2");
        let (labels, env) = labels_and_env(&alice, "moved");
        assert_eq!(label_list(&labels, CONSTRAINTS_LABEL), ["node==node2"], "{labels:?}");
        assert!(!env.iter().any(|e| e.starts_with("constraint:")), "the constraint is still in Env: {env:?}");
        assert!(env.iter().any(|e| e == "KEPT=1"), "the other env entries must stay: {env:?}");
    }
);

it_test!(
    a_constraint_no_node_matches_fails_the_create,
    mtswarm_only("scheduling"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice| {
        let err = alice.fails(&["run", "-d", "-e", "constraint:node==node9", image(), "sleep", "600"]);
        assert!(err.contains("node==node9") && err.contains("no node"), "{err}");

        let r = alice.http().post_json(
            "/containers/create",
            &json!({"Image": image(), "Cmd": ["true"], "Env": ["constraint:node==node9"]}),
        );
        assert_eq!(r.status, 503, "{r}");
        assert!(r.message().contains("node==node9"), "{r}");
        assert!(containers_of(&alice.tenant_id).is_empty(), "a refused create left a container behind");
    }
);

it_test!(
    a_soft_constraint_no_node_matches_is_dropped,
    mtswarm_only("scheduling"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice| {
        let id = run(&alice, &["-e", "constraint:node==~node9"]);
        let c = placed(&alice.tenant_id, &id);
        assert_eq!(c.state, "running", "{c:?}");
    }
);

it_test!(
    affinities_follow_the_tenants_own_containers,
    mtswarm_only("scheduling"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice, bob| {
        let mut with_web = vec![];

        run(&alice, &["--name", "web", "-e", &on("node1")]);
        for _ in 0..3 {
            let id = run(&alice, &["-m", "1g", "-e", "affinity:container==web"]);
            assert_eq!(node_of(&alice.tenant_id, &id), "node1", "affinity:container==web");
            with_web.push(id);
        }
        for _ in 0..3 {
            let id = run(&alice, &["-m", "1g", "-e", "affinity:container!=web"]);
            assert_ne!(node_of(&alice.tenant_id, &id), "node1", "affinity:container!=web");
        }
        let (labels, env) = labels_and_env(&alice, &with_web[0]);
        assert_eq!(label_list(&labels, AFFINITIES_LABEL), ["container==web"], "{labels:?}");
        assert!(!env.iter().any(|e| e.starts_with("affinity:")), "the affinity is still in Env: {env:?}");

        // Another tenant's web is not there for bob: nothing matches...
        let err = bob.fails(&["run", "-d", "-e", "affinity:container==web", image(), "sleep", "600"]);
        assert!(err.contains("affinity"), "{err}");
        assert!(containers_of(&bob.tenant_id).is_empty());
        // ... until bob has a web of his own, which his containers follow.
        run(&bob, &["--name", "web", "-e", &on("node2")]);
        for _ in 0..2 {
            let id = run(&bob, &["-m", "1g", "-e", "affinity:container==web"]);
            assert_eq!(node_of(&bob.tenant_id, &id), "node2", "bob's affinity:container==web");
        }
    }
);

it_test!(
    published_ports_never_share_a_node,
    mtswarm_only("scheduling"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice, bob| {
        // The test bed's engines share the host's network namespace, so a port bound on two of them collides on the
        // host: on no network the binding is the scheduler's to count, and no engine's to make. (Before each tenant
        // had a bridge of its own, node1 and node2 gave a default-network container no network at all.)
        let ports = ["--network", "none", "-p", "18080:80"];
        run(&alice, &ports);
        run(&alice, &ports);
        run(&bob, &ports);
        assert_eq!(
            placement_of(&[&alice.tenant_id, &bob.tenant_id]),
            counts([1, 1, 1]),
            "host port 18080 published twice on one node\n{}",
            gw.stderr()
        );
        let err = alice.fails(&["run", "-d", "--network", "none", "-p", "18080:80", image(), "sleep", "600"]);
        assert!(err.contains("18080"), "{err}");
        assert_eq!(containers_of(&alice.tenant_id).len(), 2, "the refused create left a container behind");
    }
);

// ---------------------------------------------------------------------------------------------------------
// Dependencies
// ---------------------------------------------------------------------------------------------------------

it_test!(
    containers_follow_the_container_they_depend_on,
    mtswarm_only("scheduling"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice| {
        run(&alice, &["--name", "db", "-v", "/data", "-e", &on("node2")]);
        // Each dependent reserves 1 GiB: spread alone would move them off node2.
        let forms: &[&[&str]] = &[&["--volumes-from", "db"], &["--link", "db:db"], &["--network", "container:db"]];
        for form in forms {
            for _ in 0..2 {
                let mut args = vec!["-m", "1g"];
                args.extend_from_slice(form);
                let id = run(&alice, &args);
                assert_eq!(node_of(&alice.tenant_id, &id), "node2", "`docker run {args:?}` did not follow db");
            }
        }
    }
);

it_test!(
    containers_follow_their_volume_and_network,
    mtswarm_only("scheduling"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice| {
        // Not a one-letter name: the CLI reads `-v v:/data` as a Windows drive path, hence an anonymous volume.
        assert_eq!(alice.ok(&["volume", "create", "data"]), "data");
        let holding = nodes_holding("volume", &alice.tenant_id, "data");
        assert_eq!(holding.len(), 1, "volume data is on {holding:?}, not on one node");
        for _ in 0..3 {
            let id = run(&alice, &["-m", "1g", "-v", "data:/data"]);
            assert_eq!(node_of(&alice.tenant_id, &id), holding[0], "a container using volume data");
        }

        alice.ok(&["network", "create", "net"]);
        let holding = nodes_holding("network", &alice.tenant_id, "net");
        assert_eq!(holding.len(), 1, "network net is on {holding:?}, not on one node");
        for _ in 0..3 {
            let id = run(&alice, &["-m", "1g", "--network", "net"]);
            assert_eq!(node_of(&alice.tenant_id, &id), holding[0], "a container on network net");
        }
    }
);

// ---------------------------------------------------------------------------------------------------------
// Names and lists across the nodes
// ---------------------------------------------------------------------------------------------------------

// A reference means what it means to dockerd, across the nodes: a name beats an id prefix that another node's
// container happens to start with, a prefix that fits containers on two nodes is ambiguous, and a longer one
// is not.
it_test!(
    references_resolve_across_the_nodes_in_dockers_order,
    mtswarm_only("cluster-wide references"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice| {
        let create = |name: &str, node: &str| alice.ok(&["create", "--name", name, "-e", &on(node), image(), "true"]);
        let x = create("x", "node0");
        let first = &x[..1];
        // A container on node2 whose id starts as x's does (1 in 16 per try).
        let mut y = None;
        for i in 0..200 {
            let id = create(&format!("y{i}"), "node2");
            if id.starts_with(first) {
                y = Some(id);
                break;
            }
            alice.ok(&["rm", &id]);
        }
        let y = y.expect("a container on node2 with x's first id digit within 200 tries");
        assert_eq!((node_of(&alice.tenant_id, &x), node_of(&alice.tenant_id, &y)), ("node0".into(), "node2".into()));

        let err = alice.fails(&["inspect", first]);
        assert!(err.contains(&format!("Multiple IDs found with provided prefix: {first}")), "{err}");
        let err = gw.admin().fails(&["inspect", "--type", "container", first]);
        assert!(
            err.contains(&format!("Multiple IDs found with provided prefix: {first}")),
            "the admin's prefix is as ambiguous: {err}"
        );
        assert_eq!(alice.ok(&["inspect", "--format", "{{.Name}}", &x[..12]]), "/x", "a longer prefix is unique");
        assert_eq!(alice.ok(&["inspect", "--format", "{{.Name}}", &x]), "/x");

        // Now a container on node1 is called what both ids start with: the name wins.
        let named = create(first, "node1");
        assert_eq!(alice.ok(&["inspect", "--format", "{{.Id}}", first]), named);
        alice.ok(&["start", first]);
        alice.ok(&["rm", "-f", first]);
        let y_name = alice.ok(&["inspect", "--format", "{{.Name}}", &y]);
        let mut left: Vec<String> =
            alice.ok(&["ps", "-a", "--format", "{{.Names}}"]).lines().map(String::from).collect();
        left.sort();
        let mut expected = vec!["x".to_string(), y_name.trim_start_matches('/').to_string()];
        expected.sort();
        assert_eq!(left, expected, "only the container named {first} went");
    }
);

it_test!(
    names_are_unique_per_tenant_across_the_cluster,
    mtswarm_only("cluster-wide names"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice, bob| {
        let web = |c: &Client, node: &str, word: &str| -> Output {
            try_run_sh(c, &["--name", "web", "-e", &on(node)], &format!("echo {word}; sleep 600"))
        };

        let out = web(&alice, "node1", "alice-web");
        assert!(out.success(), "{out}");
        let alice_id = out.stdout.trim().to_string();
        let out = web(&alice, "node2", "alice-again");
        assert!(!out.success(), "a second web of alice's was created on another node: {out}");
        assert!(out.stderr.contains("is already in use"), "{out}");
        assert_eq!(containers_of(&alice.tenant_id).len(), 1, "the refused create left a container behind");
        // A rename takes a name too: not one that alice's container on another node has.
        let other = try_run(&alice, &["--name", "other", "-e", &on("node2")]);
        assert!(other.success(), "{other}");
        let err = alice.fails(&["rename", "other", "web"]);
        assert!(err.contains("is already in use"), "{err}");
        alice.ok(&["rm", "-f", "other"]);

        let out = web(&bob, "node2", "bob-web");
        assert!(out.success(), "bob may have a web too: {out}");
        let bob_id = out.stdout.trim().to_string();

        for (c, id, node, word) in [(&alice, &alice_id, "node1", "alice-web"), (&bob, &bob_id, "node2", "bob-web")] {
            assert_eq!(node_of(&c.tenant_id, id), node);
            assert_eq!(c.ok(&["ps", "-a", "--format", "{{.Names}}"]), "web");
            assert_eq!(c.ok(&["inspect", "--format", "{{.Id}}", "web"]), placed(&c.tenant_id, id).id);
            poll(&format!("{word} in the logs of web"), CHANGE_TIMEOUT, || {
                c.ok(&["logs", "web"]).contains(word).then_some(())
            });
            // A container's hostname is its short id: the exec ran in this tenant's web.
            assert_eq!(c.ok(&["exec", "web", "hostname"]), id[..12]);
        }

        alice.ok(&["stop", "-t", "1", "web"]);
        assert_eq!(placed(&alice.tenant_id, &alice_id).state, "exited");
        assert_eq!(placed(&bob.tenant_id, &bob_id).state, "running", "alice's stop reached bob's web");
        alice.ok(&["rm", "web"]);
        assert!(containers_of(&alice.tenant_id).is_empty());
        assert_eq!(placed(&bob.tenant_id, &bob_id).state, "running", "alice's rm reached bob's web");
        bob.ok(&["stop", "-t", "1", "web"]);
        bob.ok(&["rm", "web"]);
        assert!(containers_of(&bob.tenant_id).is_empty());
    }
);

it_test!(
    lists_fan_out_to_every_node,
    mtswarm_only("cluster lists"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice, bob| {
        // One container and one volume on each node.
        for (i, e) in engines().iter().enumerate() {
            run(&alice, &["--name", &format!("c{i}"), "-v", &format!("v{i}:/data"), "-e", &on(&e.name)]);
            assert_eq!(nodes_holding("volume", &alice.tenant_id, &format!("v{i}")), std::slice::from_ref(&e.name));
        }
        assert_eq!(placement(&alice.tenant_id), counts([1, 1, 1]));
        for i in 0..3 {
            alice.ok(&["network", "create", &format!("n{i}")]);
        }

        assert_eq!(sorted_lines(&alice.ok(&["ps", "-a", "--format", "{{.Names}}"])), ["c0", "c1", "c2"]);
        assert_eq!(sorted_lines(&alice.ok(&["volume", "ls", "--format", "{{.Name}}"])), ["v0", "v1", "v2"]);
        let networks = lines(&alice.ok(&["network", "ls", "--format", "{{.Name}}"]));
        for n in ["n0", "n1", "n2"] {
            assert_eq!(networks.iter().filter(|l| *l == n).count(), 1, "network {n} in {networks:?}");
        }
        // Every node has the image; it is listed once.
        let images = lines(&alice.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
        assert_eq!(images.iter().filter(|l| *l == image()).count(), 1, "{} in {images:?}", image());

        // Fanning out does not mix the tenants.
        assert_eq!(bob.ok(&["ps", "-a", "--format", "{{.Names}}"]), "");
        assert_eq!(bob.ok(&["volume", "ls", "--format", "{{.Name}}"]), "");
    }
);

// `docker ps --filter before=/since=` and `docker ps -l` over the whole cluster, as one engine answers them
// for its own containers: the container named may be on any node, and bounds every node's list. The registry
// answers one form; a filter only the engines know (`ancestor`) sends the other to them.
it_test!(
    before_since_and_the_last_container_span_the_nodes,
    mtswarm_only("cluster lists"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice, bob| {
        // p0 on node0, p1 on node1, p2 on node2, a second apart (engine lists have whole seconds), only created.
        for (i, e) in engines().iter().enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(1100));
            }
            alice.ok(&["create", "--name", &format!("p{i}"), "-e", &on(&e.name), image(), "true"]);
        }
        assert_eq!(placement(&alice.tenant_id), counts([1, 1, 1]));
        bob.ok(&["create", "--name", "p1", "-e", &on("node0"), image(), "true"]);

        let ps = |extra: &[&str]| {
            let mut args = vec!["ps", "--format", "{{.Names}}"];
            args.extend_from_slice(extra);
            lines(&alice.ok(&args))
        };
        let ancestor = format!("ancestor={}", image());
        for engines_answer in [false, true] {
            let with = |extra: &[&str]| {
                let mut a = extra.to_vec();
                if engines_answer {
                    a.extend_from_slice(&["--filter", &ancestor]);
                }
                ps(&a)
            };
            let how = if engines_answer { "from the engines" } else { "from the registry" };
            assert_eq!(with(&["-a", "--filter", "before=p2"]), ["p1", "p0"], "{how}");
            assert_eq!(with(&["-a", "--filter", "since=p0"]), ["p2", "p1"], "{how}");
            assert_eq!(with(&["-a", "--filter", "since=p0", "--filter", "before=p2"]), ["p1"], "{how}");
            assert_eq!(with(&["-a", "-n", "1", "--filter", "before=p2"]), ["p1"], "{how}");
            assert_eq!(with(&["-l"]), ["p2"], "the last one, though it never ran ({how})");
            assert_eq!(with(&["-n", "2"]), ["p2", "p1"], "{how}");
            // Without -a, only running containers are listed, as by dockerd.
            assert_eq!(with(&["--filter", "since=p0"]), Vec::<String>::new(), "{how}");
        }
        // The container named is one of the tenant's own: bob's p1 bounds bob's list, and names none of alice's.
        assert_eq!(
            lines(&bob.ok(&["ps", "-a", "--format", "{{.Names}}", "--filter", "before=p1"])),
            Vec::<String>::new()
        );
        let p0_id = alice.ok(&["inspect", "--format", "{{.Id}}", "p0"]);
        let err = bob.fails(&["ps", "-a", "--filter", &format!("since={p0_id}")]);
        assert!(err.contains("No such container"), "alice's container bounds bob's list: {err}");
        let err = alice.fails(&["ps", "-a", "--filter", "before=nosuch"]);
        assert!(err.contains("No such container: nosuch"), "{err}");
    }
);

// `docker events --filter container=X` finds X on whichever node holds it, by name, id or id prefix.
it_test!(
    an_event_filter_names_a_container_on_any_node,
    mtswarm_only("cluster events"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice| {
        let since = timestamp(Duration::from_secs(1), false);
        // On node2: the tenancy layer looks on the first node (node0) and does not find it there.
        let id = alice.ok(&["create", "--name", "w", "-e", &on("node2"), image(), "true"]);
        assert_eq!(node_of(&alice.tenant_id, &id), "node2");
        alice.ok(&["start", "-a", "w"]);
        let until = timestamp(Duration::from_secs(1), true);
        for reference in [id.as_str(), &id[..12], "w"] {
            let filter = format!("container={reference}");
            let out = alice.ok(&[
                "events",
                "--since",
                &since,
                "--until",
                &until,
                "--filter",
                &filter,
                "--format",
                "{{.Action}}",
            ]);
            assert_subsequence(&lines(&out), &["create", "start", "die"]);
        }
    }
);

it_test!(
    info_shows_the_cluster_to_the_admin_and_a_tenant_its_own_counts,
    mtswarm_only("cluster info"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&["--refresh-interval", "1"]),
    |t, gw, alice, admin| {
        run(&alice, &["-e", &on("node1")]);
        run(&alice, &["-e", &on("node2")]);
        alice.ok(&["create", "-e", &on("node0"), image(), "true"]);

        let text = admin.ok(&["info"]);
        assert!(text.contains("Nodes: 3"), "{text}");
        for e in engines() {
            assert!(text.contains(&e.name), "{} is not in the admin's docker info:\n{text}", e.name);
        }
        // The admin sees the containers of every node. Other tests create and remove containers on node0 all the
        // while: poll until mtswarm's count lies between the engines' sums read just before and just after it.
        let engines_total = || -> i64 {
            engines()
                .iter()
                .map(|e| {
                    let out = e.docker(&["info", "--format", "{{.Containers}}"]);
                    assert!(out.success(), "{out}");
                    out.stdout.trim().parse::<i64>().expect("a number of containers")
                })
                .sum()
        };
        let mut seen = vec![];
        poll("the admin's Containers to be the engines' total", CHANGE_TIMEOUT, || {
            let before = engines_total();
            let total: i64 = admin.ok(&["info", "--format", "{{.Containers}}"]).parse().expect("a number");
            let after = engines_total();
            seen.push((before, total, after));
            (before.min(after) <= total && total <= before.max(after)).then_some(())
        });

        // A tenant sees its own containers, on every node, and no node's address.
        let text = alice.ok(&["info"]);
        assert!(!text.contains("127.0.0.1:2375"), "a tenant's docker info shows node addresses:\n{text}");
        let format = "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}";
        assert_eq!(alice.ok(&["info", "--format", format]), "3 2 0 1");
    }
);

// ---------------------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------------------

/// Polls until `docker run -d -e constraint:node==NODE` succeeds as `c`; returns the node it landed on.
fn wait_until_schedulable(c: &Client, node: &str) -> String {
    let id = poll(&format!("{node} to take containers"), CHANGE_TIMEOUT, || {
        let out = try_run(c, &["-e", &on(node)]);
        out.success().then(|| out.stdout.trim().to_string())
    });
    node_of(&c.tenant_id, &id)
}

/// Polls until `docker run -d -e constraint:node==NODE` fails as `c` (the node has left); returns stderr.
/// Waits until a create for `node` is refused. A create that raced the node's leaving may have been placed there
/// and then lost it (its wait answers "No such container"): that is the node leaving too, so it is asked again.
fn wait_until_gone(c: &Client, node: &str) -> String {
    poll(&format!("{node} to leave the cluster"), CHANGE_TIMEOUT, || {
        let out = try_run(c, &["-e", &on(node)]);
        (!out.success() && !out.stderr.contains("No such container")).then_some(out.stderr)
    })
}

it_test!(file_discovery_follows_the_file, mtswarm_only("discovery"), lock(cluster_lock), |t| {
    let [n0, n1, n2] = [&engines()[0], &engines()[1], &engines()[2]];
    // node0 and node1 as a range (they are neighbours on one host), with a comment.
    let (host, p0) = n0.addr.rsplit_once(':').unwrap();
    let (_, p1) = n1.addr.rsplit_once(':').unwrap();
    let first = format!("# the test bed, without node2\n{host}:[{p0}:{p1}]\n");
    let file = t.path("cluster.txt");
    fs::write(&file, &first).unwrap();
    let gw = discovery_gateway(&t, &format!("file://{}", file.display()), &[]);
    let alice = gw.tenant("alice");
    let admin = gw.admin();
    // An event stream opened now also follows the node that joins later.
    let mut events = alice.spawn(&[
        "events",
        "--filter",
        "type=container",
        "--filter",
        "event=create",
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);

    assert!(admin.ok(&["info"]).contains("Nodes: 2"), "{}", admin.ok(&["info"]));
    assert_eq!(wait_until_schedulable(&alice, "node1"), "node1");
    let err = alice.fails(&["run", "-d", "-e", &on("node2"), image(), "sleep", "600"]);
    assert!(err.contains("no node"), "node2 is not in the file yet: {err}");

    let mut f = fs::OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all(format!("{}\n", n2.addr).as_bytes()).unwrap();
    drop(f);
    assert_eq!(wait_until_schedulable(&alice, "node2"), "node2", "{}", gw.stderr());
    run(&alice, &["--name", "late", "-e", &on("node2")]);
    events.expect_line(
        "the create of `late` on node2, which joined after the stream opened",
        Duration::from_secs(15),
        |l| l == "late",
    );
    events.kill();

    fs::write(&file, &first).unwrap();
    let err = wait_until_gone(&alice, "node2");
    assert!(err.contains("no node"), "{err}");
    assert_eq!(wait_until_schedulable(&alice, "node0"), "node0", "node0 stays");
});

it_test!(etcd_discovery_with_mtswarm_join, mtswarm_only("discovery"), lock(cluster_lock), |t| {
    let discovery = format!("etcd://{}/{}", testbed().etcd_addr(), t.tag);
    let mut join1 = Join::start(&t, &engine("node1").addr, &discovery);
    let mut join2 = Join::start(&t, &engine("node2").addr, &discovery);
    let gw = discovery_gateway(&t, &discovery, &[]);
    let alice = gw.tenant("alice");

    assert_eq!(wait_until_schedulable(&alice, "node1"), "node1", "{}", join1.log());
    assert_eq!(wait_until_schedulable(&alice, "node2"), "node2", "{}", join2.log());
    let err = alice.fails(&["run", "-d", "-e", &on("node0"), image(), "sleep", "600"]);
    assert!(err.contains("no node"), "node0 never joined: {err}");

    // SIGTERM: the join deregisters and ends; node2 leaves at once (within the discovery interval).
    join2.signal("TERM");
    join2.wait(CHANGE_TIMEOUT);
    wait_until_gone(&alice, "node2");
    assert_eq!(wait_until_schedulable(&alice, "node1"), "node1", "node1 stays");

    // SIGKILL: the registration is left to expire after its TTL (3 s).
    join1.signal("KILL");
    join1.wait(CHANGE_TIMEOUT);
    wait_until_gone(&alice, "node1");
});

// ---------------------------------------------------------------------------------------------------------
// Node failure
// ---------------------------------------------------------------------------------------------------------

it_test!(
    a_failed_node_is_left_out_until_it_comes_back,
    mtswarm_only("node failure"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&["--refresh-interval", "1"]),
    |t, gw, alice| {
        let sh = |name: &str, node: &str| {
            let out = try_run_sh(&alice, &["--name", name, "-e", &on(node)], &format!("echo from-{name}; sleep 600"));
            assert!(out.success(), "{out}");
            out.stdout.trim().to_string()
        };
        let one = sh("one", "node1");
        let two = sh("two", "node2");
        assert_eq!(node_of(&alice.tenant_id, &one), "node1");
        assert_eq!(node_of(&alice.tenant_id, &two), "node2");

        // Declared after the gateway: it drops first, so node2 is up again before the cleanup.
        let mut stopped = StoppedEngine::stop(2);

        assert_eq!(alice.ok(&["ps", "-a", "--format", "{{.Names}}"]), "one", "ps without the failed node");
        let r = alice.http().get("/containers/json?all=1");
        assert_eq!(r.status, 200, "{r}");
        let warning = r.header("warning").unwrap_or_else(|| panic!("no Warning header naming node2: {r}"));
        assert!(warning.contains("node2"), "{r}");
        let names: Vec<String> = r.json().as_array().unwrap().iter().map(|c| c["Names"][0].to_string()).collect();
        assert_eq!(names, [r#""/one""#], "{r}");

        let assert_unavailable = || {
            let err = alice.fails(&["inspect", "two"]);
            assert!(err.contains("node2") && err.contains("unavailable"), "{err}");
        };
        assert_unavailable();

        // The first create may still have been sent to node2 before a refresh (every second) saw it fail; after
        // that, every create goes to node0 or node1.
        let first = poll("a create that avoids the failed node2", CHANGE_TIMEOUT, || {
            let out = try_run(&alice, &["-m", "1g"]);
            out.success().then(|| out.stdout.trim().to_string())
        });
        let mut new = vec![first];
        for _ in 0..3 {
            new.push(run(&alice, &["-m", "1g"]));
        }
        for id in &new {
            let node = node_of(&alice.tenant_id, id);
            assert!(node == "node0" || node == "node1", "a create landed on {node}");
        }
        assert_unavailable();
        assert_eq!(alice.ok(&["exec", "one", "echo", "alive"]), "alive");
        assert!(alice.ok(&["logs", "one"]).contains("from-one"));

        stopped.start();
        poll("node2's container to answer inspect again", CHANGE_TIMEOUT, || {
            alice.docker(&["inspect", "--format", "{{.Id}}", "two"]).success().then_some(())
        });
        let ps = sorted_lines(&alice.ok(&["ps", "-a", "--format", "{{.Names}}"]));
        assert!(ps.contains(&"one".to_string()) && ps.contains(&"two".to_string()), "{ps:?}");
        assert_eq!(wait_until_schedulable(&alice, "node2"), "node2");
    }
);

/// The engines' own lists of a tenant's containers, by id, asked of each engine directly.
fn engines_list(tenant_id: &str) -> BTreeMap<String, serde_json::Value> {
    let filters = json!({"label": [format!("{TENANT_LABEL}={tenant_id}")]}).to_string();
    let mut out = BTreeMap::new();
    for e in engines() {
        let http = crate::support::Http::with_headers(&e.url(), &[]);
        let resp = http.get(&format!("/v1.41/containers/json?all=1&filters={}", url_encode(&filters)));
        assert_eq!(resp.status, 200, "{resp}");
        for c in resp.json().as_array().unwrap() {
            out.insert(c["Id"].as_str().unwrap().to_string(), c.clone());
        }
    }
    out
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

it_test!(
    the_registry_lists_containers_as_the_engines_do_and_follows_their_events,
    mtswarm_only("the cluster registry"),
    lock(cluster_lock),
    gw = GatewayOpts::cluster(&[]),
    |t, gw, alice, admin| {
        // Containers in every state, on every node: running with a port and a volume, created, exited with a code,
        // paused, and one whose command has an argument with a space.
        run(&alice, &["--name", "up", "-p", "18282:80", "-v", "data:/data", "-e", &on("node0")]);
        alice.ok(&["create", "--name", "created", "-e", &on("node1"), image(), "true"]);
        let out = alice.docker(&["run", "--name", "exited", "-e", &on("node2"), image(), "sh", "-c", "exit 3"]);
        assert_eq!(out.code, Some(3), "{out}");
        run(&alice, &["--name", "paused", "-e", &on("node1")]);
        alice.ok(&["pause", "paused"]);

        // The admin's list through mtswarm against the engines' own lists: the same entries, field by field;
        // the status text is the same but for the seconds that pass between the two reads.
        let filters = json!({"label": [format!("{TENANT_LABEL}={}", alice.tenant_id)]}).to_string();
        let path = format!("/v1.41/containers/json?all=1&filters={}", url_encode(&filters));
        let direct = engines_list(&alice.tenant_id);
        let resp = admin.http().get(&path);
        assert_eq!(resp.status, 200, "{resp}");
        let listed = resp.json();
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 4, "{listed:?}");
        for c in listed {
            let id = c["Id"].as_str().unwrap();
            let want = direct.get(id).unwrap_or_else(|| panic!("{id} is on no engine"));
            for (field, value) in want.as_object().unwrap() {
                if field == "Status" {
                    let word = |v: &serde_json::Value| v.as_str().unwrap().split(' ').next().unwrap().to_string();
                    assert_eq!(word(&c[field]), word(value), "{id} Status: {} against {}", c[field], value);
                    continue;
                }
                assert_eq!(&c[field], value, "{id} {field}");
            }
            assert_eq!(c.as_object().unwrap().len(), want.as_object().unwrap().len(), "{c} against {want}");
        }
        let created: Vec<i64> = listed.iter().map(|c| c["Created"].as_i64().unwrap()).collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");
        assert!(gw.stderr().contains("node=\"registry\""), "the list came from the registry:\n{}", gw.stderr());
        // The tenant's view of the same list: its names, its filters.
        assert_eq!(
            sorted_lines(&alice.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"])),
            ["created created", "exited exited", "paused paused", "up running"]
        );
        let exited = alice.ok(&["ps", "--filter", "status=exited", "--format", "{{.Names}} {{.Status}}"]);
        assert!(exited.starts_with("exited Exited (3) ") && exited.ends_with(" ago"), "{exited}");

        // Changes made behind mtswarm's back, directly on an engine, show within the time an event takes.
        let up = alice.ok(&["inspect", "-f", "{{.Id}}", "up"]);
        assert!(engine("node0").docker(&["rm", "-f", &up]).success());
        poll("the removed container to leave the list", CHANGE_TIMEOUT, || {
            (!alice.ok(&["ps", "-a", "--format", "{{.Names}}"]).lines().any(|l| l == "up")).then_some(())
        });
        let label = format!("{TENANT_LABEL}={}", alice.tenant_id);
        let name = scoped(&alice.tenant_id, "direct");
        assert!(engine("node2").docker(&["create", "--name", &name, "--label", &label, image(), "true"]).success());
        poll("the container made on the engine to show", CHANGE_TIMEOUT, || {
            alice.ok(&["ps", "-a", "--format", "{{.Names}}"]).lines().any(|l| l == "direct").then_some(())
        });
    }
);

/// The overlay engines of the test bed (`scripts/testbed.sh up overlay`): ovnode1 and ovnode2, each in its own
/// network namespace, sharing a cluster store.
fn overlay_nodes() -> Vec<String> {
    let nodes = testbed_env()
        .get("MTSWARM_OVERLAY_NODES")
        .unwrap_or_else(|| panic!("no MTSWARM_OVERLAY_NODES: the test needs `scripts/testbed.sh up overlay`"));
    nodes.split(',').map(str::to_string).collect()
}

/// Removes what a tenant made on the overlay engines, whatever the test's outcome (the harness's cleanup knows
/// only node0 to node2).
struct OverlayCleanup(Vec<String>, String);

impl Drop for OverlayCleanup {
    fn drop(&mut self) {
        let label = format!("label={TENANT_LABEL}={}", self.1);
        for node in &self.0 {
            let url = format!("tcp://{node}");
            if let Ok(out) = engine_docker_at(&url, &["ps", "-aq", "--filter", &label]) {
                for id in out.stdout.split_whitespace() {
                    let _ = engine_docker_at(&url, &["rm", "-f", id]);
                }
            }
            if let Ok(out) = engine_docker_at(&url, &["network", "ls", "-q", "--filter", &label]) {
                for id in out.stdout.split_whitespace() {
                    let _ = engine_docker_at(&url, &["network", "rm", id]);
                }
            }
        }
    }
}

it_test!(
    an_overlay_network_spans_the_nodes_of_a_cluster_store,
    mtswarm_only("overlay networks across the cluster"),
    |t| {
        let nodes = overlay_nodes();
        let gw = discovery_gateway(&t, &format!("nodes://{}", nodes.join(",")), &[]);
        let (alice, bob) = (gw.tenant("alice"), gw.tenant("bob"));
        let _cleanup =
            (OverlayCleanup(nodes.clone(), alice.tenant_id.clone()), OverlayCleanup(nodes, bob.tenant_id.clone()));
        alice.ok(&["network", "create", "-d", "overlay", "mesh"]);
        // One network, on every node: listed once, and it places nothing.
        assert_eq!(
            lines(&alice.ok(&["network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}}"])),
            ["mesh"]
        );
        alice.ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "mesh",
            "-e",
            "constraint:node==ovnode1",
            image(),
            "sleep",
            "600",
        ]);
        // The engines learn each other's containers on the network by gossip, within moments: a name unknown at first
        // is asked again, for up to 30 s.
        let out = alice.docker(&[
            "run",
            "--rm",
            "--network",
            "mesh",
            "-e",
            "constraint:node==ovnode2",
            image(),
            "sh",
            "-c",
            "hostname; i=0; until ping -c 2 -W 5 web; do i=$((i + 1)); [ $i -lt 30 ] || exit 1; sleep 1; done",
        ]);
        assert!(out.success(), "a container on ovnode2 reaches web on ovnode1 by name: {out}");
        assert!(out.stdout.contains("2 packets received"), "{out}");
        let label = format!("label={TENANT_LABEL}={}", alice.tenant_id);
        let on_first = engine_docker_at(&format!("tcp://{}", overlay_nodes()[0]), &["ps", "-q", "--filter", &label]);
        assert_eq!(on_first.map(|o| o.stdout.trim().lines().count()).ok(), Some(1), "web runs on ovnode1");
        // Another tenant neither sees nor joins it.
        assert_eq!(bob.ok(&["network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}}"]), "");
        let err = bob.fails(&["run", "--rm", "--network", "mesh", image(), "true"]);
        assert!(err.contains("not found"), "{err}");
    }
);

it_test!(quota_and_usage_count_every_node, mtswarm_only("quota across the cluster"), lock(cluster_lock), |t| {
    let quota = t.path("quota.json");
    fs::write(&quota, r#"{"Containers": 2, "Memory": 300}"#).unwrap();
    let gw = Gateway::start(
        &t,
        GatewayOpts {
            engine: Some(nodes_discovery()),
            env: vec![
                ("SWARM_ENFORCE_QUOTA".into(), "true".into()),
                ("SWARM_QUOTA_FILE".into(), quota.display().to_string()),
            ],
            ..GatewayOpts::default()
        },
    );
    let alice = gw.tenant("alice");
    run(&alice, &["--name", "a", "-m", "100m", "-e", &on("node1")]);
    run(&alice, &["--name", "b", "-m", "100m", "-e", &on("node2")]);
    assert_eq!(placement(&alice.tenant_id), counts([0, 1, 1]));
    let err = try_run(&alice, &["--name", "c", "-m", "100m", "-e", &on("node0")]);
    assert!(err.stderr.contains("quota exceeded: Containers: 2 in use, 1 requested, limit 2"), "{err}");
    let usage = alice.http().get("/mtswarm/v1/usage").json();
    assert_eq!(
        (usage["Usage"]["Containers"].as_i64(), usage["Usage"]["Memory"].as_i64()),
        (Some(2), Some(200)),
        "{usage}"
    );
    alice.ok(&["rm", "-f", "b"]);
    run(&alice, &["--name", "c", "-m", "100m", "-e", &on("node0")]);
    assert_eq!(placement(&alice.tenant_id), counts([1, 1, 0]));
});
