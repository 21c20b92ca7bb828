//! Flavors and quotas (SWARM_FLAVORS_ENFORCED, SWARM_ENFORCE_QUOTA) through the real docker CLI: what a tenant
//! gets, what it is refused and with which message, and that usage comes from the engines (a restart of mtswarm
//! or a removal behind its back changes nothing that should not change).

use std::sync::Arc;

use serde_json::json;

use crate::support::auth::mtswarm;
use crate::support::{engine_ok, image, it_test, Client, Gateway, GatewayOpts, Test};

const MB: i64 = 1024 * 1024;
const SEED_FLAVORS: &str = r#"{"default": {"Memory": 64}, "medium": {"Memory": 128}, "large": {"Memory": 256}}"#;

/// A gateway with the given flavors and quota files (either may be absent).
fn policy_gateway<'t>(t: &'t Test, flavors: Option<&str>, quota: Option<&str>) -> Gateway<'t> {
    let mut env = Vec::new();
    if let Some(text) = flavors {
        let path = t.path("flavors.json");
        std::fs::write(&path, text).unwrap();
        env.push(("SWARM_FLAVORS_ENFORCED".to_string(), "true".to_string()));
        env.push(("SWARM_FLAVORS_FILE".to_string(), path.display().to_string()));
    }
    if let Some(text) = quota {
        let path = t.path("quota.json");
        std::fs::write(&path, text).unwrap();
        env.push(("SWARM_ENFORCE_QUOTA".to_string(), "true".to_string()));
        env.push(("SWARM_QUOTA_FILE".to_string(), path.display().to_string()));
    }
    Gateway::start(t, GatewayOpts { env, ..GatewayOpts::default() })
}

fn limits(c: &Client, name: &str) -> (i64, i64, i64) {
    let out =
        c.ok(&["inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}}", name]);
    let v: Vec<i64> = out.split_whitespace().map(|n| n.parse().unwrap()).collect();
    (v[0], v[1], v[2])
}

fn usage(c: &Client) -> serde_json::Value {
    let resp = c.http().get("/mtswarm/v1/usage");
    assert_eq!(resp.status, 200, "{resp}");
    resp.json()
}

it_test!(every_container_fits_a_flavor, mtswarm_only("flavors and quotas"), |t| {
    let gw = policy_gateway(&t, Some(SEED_FLAVORS), None);
    let alice = gw.tenant("alice");
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[image(), "sleep", "60"]);
        alice.ok(&args);
    };
    run("odd", &["-m", "100m"]);
    assert_eq!(limits(&alice, "odd"), (64 * MB, 64 * MB, 0), "a memory that is no flavor gets the default");
    run("medium", &["-m", "128m"]);
    assert_eq!(limits(&alice, "medium"), (128 * MB, 128 * MB, 0));
    run("plain", &[]);
    assert_eq!(limits(&alice, "plain"), (64 * MB, 64 * MB, 0), "no memory gets the default");
    run("swap", &["-m", "128m", "--memory-swap", "1g"]);
    assert_eq!(limits(&alice, "swap"), (128 * MB, 128 * MB, 0), "--memory-swap cannot widen a flavor");
    run("unlimited-swap", &["-m", "256m", "--memory-swap", "-1"]);
    assert_eq!(limits(&alice, "unlimited-swap"), (256 * MB, 256 * MB, 0));
    run("named", &["--label", "mtswarm.flavor=large"]);
    assert_eq!(limits(&alice, "named"), (256 * MB, 256 * MB, 0), "a create may name its flavor");
    let err = alice.fails(&["run", "-d", "--label", "mtswarm.flavor=huge", image(), "true"]);
    assert!(
        err.contains("there is no flavor \"huge\"; flavors: default (64 MB), medium (128 MB), large (256 MB)"),
        "{err}"
    );

    // `docker update` moves between flavors only.
    let err = alice.fails(&["update", "-m", "200m", "plain"]);
    assert!(err.contains("memory 200 MB is not a flavor of this service"), "{err}");
    let err = alice.fails(&["update", "--memory-swap", "-1", "plain"]);
    assert!(err.contains("resources change by flavor"), "{err}");
    assert_eq!(limits(&alice, "plain"), (64 * MB, 64 * MB, 0), "a refused update changes nothing");
    alice.ok(&["update", "-m", "256m", "plain"]);
    assert_eq!(limits(&alice, "plain"), (256 * MB, 256 * MB, 0));
    alice.ok(&["update", "--restart", "on-failure", "plain"]);

    // The admin tenant is not limited.
    let admin = gw.admin();
    let name = t.name("admin-free");
    admin.ok(&["run", "-d", "--name", &name, "-m", "100m", image(), "sleep", "60"]);
    assert_eq!(limits(&admin, &name), (100 * MB, 200 * MB, 0));
});

it_test!(flavors_with_cpus, mtswarm_only("flavors and quotas"), |t| {
    let gw = policy_gateway(
        &t,
        Some(r#"{"default": {"Memory": 64, "CPUs": 0.5}, "big": {"Memory": 128, "CPUs": 1}}"#),
        None,
    );
    let alice = gw.tenant("alice");
    alice.ok(&["create", "--name", "small", "--cpus", "2", image(), "true"]);
    assert_eq!(limits(&alice, "small"), (64 * MB, 64 * MB, 500_000_000));
    alice.ok(&["create", "--name", "big", "-m", "128m", "--cpus", "1", image(), "true"]);
    assert_eq!(limits(&alice, "big"), (128 * MB, 128 * MB, 1_000_000_000));
    alice.ok(&["create", "--name", "quota", "--cpu-quota", "400000", image(), "true"]);
    let q = alice.ok(&["inspect", "-f", "{{.HostConfig.CpuQuota}} {{.HostConfig.NanoCpus}}", "quota"]);
    assert_eq!(q, "0 500000000", "a CPU quota cannot go around the flavor's CPUs");
    let err = alice.fails(&["update", "--cpus", "2", "small"]);
    assert!(err.contains("resources change by flavor"), "{err}");
    alice.ok(&["update", "-m", "128m", "small"]);
    assert_eq!(limits(&alice, "small"), (128 * MB, 128 * MB, 1_000_000_000));
});

it_test!(the_memory_quota_counts_every_container_from_the_engines, mtswarm_only("flavors and quotas"), |t| {
    let mut gw = policy_gateway(&t, Some(SEED_FLAVORS), Some(r#"{"Memory": 300}"#));
    let alice = gw.tenant("alice");
    for i in 1..=3 {
        alice.ok(&["run", "-d", "--name", &format!("c{i}"), image(), "sleep", "120"]);
    }
    // A stopped container can be started at any moment: it counts.
    alice.ok(&["create", "--name", "c4", image(), "true"]);
    let err = alice.fails(&["run", "-d", "--name", "c5", image(), "sleep", "120"]);
    assert!(err.contains("quota exceeded: Memory: 256 MB in use, 64 MB requested, limit 300 MB"), "{err}");
    let resp = alice.http().post_json("/containers/create?name=c5", &json!({"Image": image()}));
    assert_eq!(resp.status, 403, "{resp}");
    assert_eq!(resp.message(), "quota exceeded: Memory: 256 MB in use, 64 MB requested, limit 300 MB");
    assert!(alice.fails(&["inspect", "c5"]).contains("No such"), "a refused create leaves nothing");
    // Another tenant has its own quota.
    let bob = gw.tenant("bob");
    bob.ok(&["run", "-d", "--name", "c1", image(), "sleep", "120"]);
    // So does an update.
    let err = alice.fails(&["update", "-m", "128m", "c1"]);
    assert!(err.contains("quota exceeded: Memory: 256 MB in use, 64 MB requested, limit 300 MB"), "{err}");

    let u = usage(&alice);
    assert_eq!(u["Tenant"], alice.tenant_id.as_str());
    assert_eq!(u["Usage"]["Memory"], 256, "{u}");
    assert_eq!(u["Usage"]["Containers"], 4, "{u}");
    assert_eq!(u["Limits"]["Memory"], 300, "{u}");
    let table =
        mtswarm(&["usage", "-H", alice.host(), "--config", &alice.config_dir().display().to_string()], t.dir(), &[]);
    assert_eq!(table.code, Some(0), "{table}");
    let row = table.stdout.lines().find(|l| l.starts_with(&alice.tenant_id)).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("256 / 300"), "{table}");
    assert!(!table.stdout.contains(&bob.tenant_id), "a tenant sees only its own usage: {table}");
    let admin = gw.admin();
    let all = usage(&admin);
    let tenants: Vec<&str> = all["Tenants"].as_array().unwrap().iter().map(|e| e["Tenant"].as_str().unwrap()).collect();
    assert!(tenants.contains(&alice.tenant_id.as_str()) && tenants.contains(&bob.tenant_id.as_str()), "{all}");

    // Restarting mtswarm forgets nothing: usage lives on the engines.
    gw.restart();
    let alice = gw.tenant("alice");
    assert_eq!(usage(&alice)["Usage"], u["Usage"]);
    assert!(alice.fails(&["run", "-d", image(), "true"]).contains("quota exceeded"));

    // Removing one lets the next in, through mtswarm or directly on the engine.
    alice.ok(&["rm", "-f", "c1"]);
    alice.ok(&["run", "-d", "--name", "c5", image(), "sleep", "120"]);
    let id = alice.ok(&["inspect", "-f", "{{.Id}}", "c2"]);
    engine_ok(&["rm", "-f", &id]);
    assert_eq!(usage(&alice)["Usage"]["Memory"], 192);
    alice.ok(&["run", "-d", "--name", "c6", image(), "sleep", "120"]);

    // The admin tenant is not limited.
    let admin = gw.admin();
    let name = t.name("admin-big");
    admin.ok(&["run", "-d", "--name", &name, "-m", "1g", image(), "sleep", "60"]);
});

it_test!(without_flavors_a_memory_quota_needs_a_memory_limit, mtswarm_only("flavors and quotas"), |t| {
    let gw = policy_gateway(&t, None, Some(r#"{"Memory": 300}"#));
    let alice = gw.tenant("alice");
    let err = alice.fails(&["run", "-d", image(), "sleep", "60"]);
    assert!(err.contains("a memory limit is required"), "{err}");
    let resp = alice.http().post_json("/containers/create", &json!({"Image": image(), "HostConfig": {"Memory": -1}}));
    assert_eq!(resp.status, 403, "{resp}");
    alice.ok(&["run", "-d", "--name", "a", "-m", "200m", "--memory-swap", "-1", image(), "sleep", "60"]);
    assert_eq!(limits(&alice, "a"), (200 * MB, 200 * MB, 0), "swap is pinned to the limit");
    let err = alice.fails(&["update", "-m", "400m", "a"]);
    assert!(err.contains("quota exceeded: Memory: 200 MB in use, 200 MB requested, limit 300 MB"), "{err}");
    alice.ok(&["update", "-m", "300m", "a"]);
    assert_eq!(limits(&alice, "a"), (300 * MB, 300 * MB, 0));
    let err = alice.fails(&["run", "-d", "-m", "6m", image(), "sleep", "60"]);
    assert!(err.contains("quota exceeded: Memory: 300 MB in use, 6 MB requested, limit 300 MB"), "{err}");
});

it_test!(parallel_creates_at_the_edge_never_overshoot, mtswarm_only("flavors and quotas"), |t| {
    let gw = policy_gateway(&t, None, Some(r#"{"Memory": 300}"#));
    let alice = Arc::new(gw.tenant("alice"));
    alice.ok(&["create", "--name", "first", "-m", "64m", image(), "true"]);
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let alice = alice.clone();
            std::thread::spawn(move || {
                let body = json!({"Image": image(), "HostConfig": {"Memory": 64 * MB}});
                alice.http().post_json(&format!("/containers/create?name=p{i}"), &body)
            })
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    let created = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 3, "64 MB in use, 300 MB quota: 3 more fit");
    for r in answers.iter().filter(|r| r.status != 201) {
        assert_eq!(r.status, 403, "{r}");
        assert!(r.message().starts_with("quota exceeded: Memory: 256 MB in use, 64 MB requested"), "{r}");
    }
    let u = usage(&alice);
    assert_eq!((u["Usage"]["Memory"].as_i64(), u["Usage"]["Containers"].as_i64()), (Some(256), Some(4)), "{u}");
});

it_test!(containers_cpus_volumes_and_networks_per_tenant, mtswarm_only("flavors and quotas"), |t| {
    let bob_id = format!("{}-bob", t.tag);
    let quota = json!({
        "default": {"Containers": 2, "Volumes": 1, "Networks": 1, "CPUs": 1},
        "tenants": {bob_id.clone(): {"Containers": 3}}
    });
    let gw = policy_gateway(&t, None, Some(&quota.to_string()));
    let (alice, bob) = (gw.tenant("alice"), gw.tenant("bob"));
    assert_eq!(bob.tenant_id, bob_id);
    let err = alice.fails(&["create", image(), "true"]);
    assert!(err.contains("a CPU limit is required"), "{err}");
    let err = alice.fails(&["create", "--cpu-quota", "50000", image(), "true"]);
    assert!(err.contains("CPUs are limited with --cpus"), "{err}");
    alice.ok(&["create", "--name", "a1", "--cpus", "0.5", "-v", "data:/data", image(), "true"]);
    let err = alice.fails(&["create", "--name", "a2", "--cpus", "0.75", image(), "true"]);
    assert!(err.contains("quota exceeded: CPUs: 0.5 CPUs in use, 0.75 CPUs requested, limit 1 CPUs"), "{err}");
    let err = alice.fails(&["create", "--name", "a2", "--cpus", "0.25", "-v", "more:/data", image(), "true"]);
    assert!(err.contains("quota exceeded: Volumes: 1 in use, 1 requested, limit 1"), "{err}");
    assert!(!alice.ok(&["volume", "ls", "-q"]).contains("more"), "a refused create leaves no volume behind");
    // An existing volume is no new one.
    alice.ok(&["create", "--name", "a2", "--cpus", "0.25", "-v", "data:/data", image(), "true"]);
    let err = alice.fails(&["create", "--cpus", "0.1", image(), "true"]);
    assert!(err.contains("quota exceeded: Containers: 2 in use, 1 requested, limit 2"), "{err}");
    let err = alice.fails(&["volume", "create", "other"]);
    assert!(err.contains("quota exceeded: Volumes: 1 in use, 1 requested, limit 1"), "{err}");
    alice.ok(&["volume", "create", "data"]);
    alice.ok(&["network", "create", "n1"]);
    let err = alice.fails(&["network", "create", "n2"]);
    assert!(err.contains("quota exceeded: Networks: 1 in use, 1 requested, limit 1"), "{err}");
    // bob's own override, the default for the rest.
    for i in 0..3 {
        bob.ok(&["create", "--name", &format!("b{i}"), "--cpus", "0.25", image(), "true"]);
    }
    let err = bob.fails(&["create", "--cpus", "0.1", image(), "true"]);
    assert!(err.contains("quota exceeded: Containers: 3 in use, 1 requested, limit 3"), "{err}");
    let u = usage(&bob);
    assert_eq!(u["Usage"]["CPUs"], 0.75, "{u}");
    assert_eq!(u["Limits"]["Containers"], 3, "{u}");
    assert_eq!(u["Limits"]["Volumes"], 1, "{u}");
});

it_test!(policy_files_with_mistakes_stop_start_up, |t| {
    let tokens = t.path("tokens.json");
    std::fs::write(&tokens, r#"{"tokens": [{"tenant": "a", "token": "x"}]}"#).unwrap();
    let tokens = tokens.display().to_string();
    let cases = [
        (
            "SWARM_FLAVORS",
            r#"{"default": {"Memroy": 64}}"#,
            "flavor \"default\": unknown field `Memroy`, expected `Memory` or `CPUs`",
        ),
        ("SWARM_FLAVORS", r#"{"small": {"Memory": 64}}"#, "there is no \"default\" flavor"),
        (
            "SWARM_QUOTA",
            r#"{"Memroy": 300}"#,
            "unknown field `Memroy`, expected one of `Memory`, `CPUs`, `Containers`, `Volumes`, `Networks`",
        ),
        (
            "SWARM_QUOTA",
            r#"{"default": {"Memory": 300}, "tenant": {}}"#,
            "unknown field `tenant`, expected `default` or `tenants`",
        ),
        ("SWARM_QUOTA", "", "quota file"),
    ];
    for (kind, text, expected) in cases {
        let file = t.path(&format!("{kind}.json"));
        std::fs::write(&file, text).unwrap();
        let path = file.display().to_string();
        let (switch, file_var) = match kind {
            "SWARM_FLAVORS" => ("SWARM_FLAVORS_ENFORCED", "SWARM_FLAVORS_FILE"),
            _ => ("SWARM_ENFORCE_QUOTA", "SWARM_QUOTA_FILE"),
        };
        let out = mtswarm(
            &["manage", "-H", "tcp://127.0.0.1:0"],
            t.dir(),
            &[(switch, "true"), (file_var, &path), ("SWARM_TOKENS_FILE", &tokens)],
        );
        assert_ne!(out.code, Some(0), "{out}");
        assert!(out.stderr.contains(expected), "{kind} {text}: {out}");
        assert!(out.stderr.contains(&path), "the message names the file: {out}");
        assert!(!out.stdout.contains("listening"), "it must not start serving: {out}");
    }
    // Enforced without a file: an error, not a silent no-op.
    let out = mtswarm(
        &["manage", "-H", "tcp://127.0.0.1:0"],
        t.dir(),
        &[("SWARM_ENFORCE_QUOTA", "true"), ("SWARM_TOKENS_FILE", &tokens)],
    );
    assert!(out.stderr.contains("quota file quota.json: No such file"), "{out}");
});
