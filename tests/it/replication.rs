//! Manager replicas over etcd (`manage --replication`), with two or three real managers of one cluster (node0 and
//! node1, registered under the test's own prefix of the test bed's etcd): one primary, replicas that forward to it
//! (runs, execs, streams), failover when the primary is killed or cut off, fencing, and quotas that stay exact
//! across managers. Every check of a placement or a count is made on the engines.

use std::process::Command;
use std::time::Duration;

use crate::support::cluster::containers_of;
use crate::support::managers::{failover_bound, Replicated, ELECTED};
use crate::support::*;

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

it_test!(a_replica_forwards_runs_execs_and_streams_to_the_primary, mtswarm_only("manager replication"), |t| {
    let cluster = Replicated::new(&t);
    let (a, b) = cluster.pair(&t, &[], &[]);
    // Swarm classic's leader key names the primary.
    assert_eq!(cluster.leader_key_value().as_deref(), Some(a.advertise.as_str()));

    let alice = b.gw.tenant("alice");
    let web = t.name("web");
    alice.ok(&["run", "-d", "--name", &web, image(), "sh", "-c", "echo first; sleep 2; echo second; sleep 300"]);
    assert_eq!(alice.ok(&["exec", &web, "echo", "hi"]).trim(), "hi");
    let piped = alice.docker_stdin(&["exec", "-i", &web, "cat"], "through the replica\n");
    assert_eq!((piped.code, piped.stdout.as_str()), (Some(0), "through the replica\n"), "{piped}");
    // A stream: the second line comes two seconds after the first, through both managers.
    let mut logs = alice.spawn(&["logs", "-f", &web]);
    logs.expect_line("the first line", Duration::from_secs(20), |l| l == "first");
    logs.expect_line("the second line", Duration::from_secs(20), |l| l == "second");
    logs.kill();

    // The primary knew who asked: on the engines, the container is alice's, and bob (through the same replica)
    // sees nothing of it.
    let placed = containers_of(&b.gw.tenant_id("alice"));
    assert_eq!(placed.len(), 1, "{placed:?}");
    assert!(placed[0].name.ends_with(&web), "{placed:?}");
    assert_eq!(b.gw.tenant("bob").ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(alice.ok(&["ps", "--format", "{{.Names}}"]).trim(), web);
});

it_test!(a_forged_replica_header_is_refused_and_never_trusted, mtswarm_only("manager replication"), |t| {
    let cluster = Replicated::new(&t);
    let a = cluster.first(&t, &[], &[]);
    a.wait_primary(ELECTED);
    let alice = a.gw.tenant("alice");
    let web = t.name("web");
    alice.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
    let (bob_token, bob_id) = (a.gw.token_of("bob"), a.gw.tenant_id("bob"));
    let bob = |extra: &[(&str, &str)]| {
        let mut headers = vec![("X-Auth-Token", bob_token.as_str()), ("X-Auth-TenantId", bob_id.as_str())];
        headers.extend_from_slice(extra);
        Http::with_headers(a.gw.host(), &headers).get("/v1.41/containers/json?all=1")
    };
    // A request that claims to come from a replica, with a key that is not the primary's: refused.
    let forged = bob(&[("X-Mtswarm-Replica-Key", &"0".repeat(64)), ("X-Mtswarm-Client-Addr", "10.0.0.1:1")]);
    assert_eq!(forged.status, 503, "{}", forged.text());
    assert!(forged.message().contains("another term"), "{}", forged.text());
    // Without a key the replication headers are dropped: bob is bob, and sees none of alice's containers.
    let plain = bob(&[("X-Mtswarm-Client-Cn", "alice")]);
    assert_eq!((plain.status, plain.json()), (200, serde_json::json!([])), "{}", plain.text());
    // The same request without the trick is served.
    assert_eq!(bob(&[]).status, 200);
    assert_eq!(alice.ok(&["ps", "-q"]).lines().count(), 1);
});

it_test!(a_replica_takes_over_when_the_primary_is_killed, mtswarm_only("manager replication"), |t| {
    let cluster = Replicated::new(&t);
    let mut a = cluster.first(&t, &[], &[]);
    a.wait_primary(ELECTED);
    let b = cluster.another(&a, &[], &[]);
    let c = cluster.another(&a, &[], &[]);
    b.wait_replica_of(&a, ELECTED);
    c.wait_replica_of(&a, ELECTED);
    let web = t.name("web");
    b.gw.tenant("alice").ok(&["run", "-d", "--name", &web, image(), "sh", "-c", "echo up; sleep 300"]);
    let mut logs = [&b, &c].map(|m| m.gw.tenant("alice").spawn(&["logs", "-f", &web]));
    for l in &mut logs {
        l.expect_line("the container's line", Duration::from_secs(20), |l| l == "up");
    }

    a.gw.kill();
    // One of the two replicas wins, and the other follows it.
    let (new, other) = poll("a new primary", failover_bound(), || {
        let roles = [b.role(), c.role()];
        let primary = |r: &Option<(String, Option<String>)>| r.as_ref().is_some_and(|(role, _)| role == "primary");
        match (primary(&roles[0]), primary(&roles[1])) {
            (true, false) => Some((&b, &c)),
            (false, true) => Some((&c, &b)),
            (true, true) => panic!("two primaries: {roles:?}"),
            _ => None,
        }
    });
    other.wait_replica_of(new, ELECTED);
    assert_eq!(cluster.leader_key_value().as_deref(), Some(new.advertise.as_str()));
    // The streams through the replicas to the dead primary ended; none hung.
    for l in logs {
        l.finish(Duration::from_secs(10));
    }

    // The new primary serves what the old one did, through either manager: the name is still taken (state comes
    // from the engines), and free again once the container is gone.
    let alice = other.gw.tenant("alice");
    let taken = alice.fails(&["run", "-d", "--name", &web, image(), "true"]);
    assert!(taken.contains("is already in use"), "{taken}");
    new.gw.tenant("alice").ok(&["rm", "-f", &web]);
    alice.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
    assert_eq!(containers_of(&b.gw.tenant_id("alice")).len(), 1);

    // The old primary, started again, is a replica of the new one, and serves through it.
    a.gw.restart();
    a.wait_replica_of(new, ELECTED);
    assert_eq!(a.gw.tenant("alice").ok(&["ps", "--format", "{{.Names}}"]).trim(), web);
});

it_test!(a_primary_cut_off_stops_admitting_before_another_is_elected, mtswarm_only("manager replication"), |t| {
    let cluster = Replicated::new(&t);
    let (a, b) = cluster.pair(&t, &[], &[]);
    let alice = b.gw.tenant("alice");
    let web = t.name("web");
    alice.ok(&["run", "-d", "--name", &web, image(), "sh", "-c", "echo up; sleep 300"]);
    let mut logs = alice.spawn(&["logs", "-f", &web]);
    logs.expect_line("the container's line", Duration::from_secs(20), |l| l == "up");

    // A frozen primary is a machine gone: its sockets stay open and nothing tells the others, but its lease stops
    // being renewed.
    signal(a.gw.pid(), "STOP");
    b.wait_primary(failover_bound());
    // The replica's stream to the old primary ends with the old primary's term (its socket is still open).
    logs.finish(Duration::from_secs(10));

    // Woken up, before it has heard from etcd, the old primary admits nothing on its own: its fence has passed.
    let before = a.gw.stderr_text().len();
    signal(a.gw.pid(), "CONT");
    let late = t.name("late");
    let create = serde_json::json!({"Image": image(), "Cmd": ["true"]});
    let resp = a.gw.tenant("alice").http().post_json(&format!("/v1.41/containers/create?name={late}"), &create);
    let log = a.gw.stderr_text()[before..].to_string();
    let served_here = log.lines().any(|l| {
        l.contains("path=/v1.41/containers/create") && l.contains("status=201") && !l.contains("node=\"primary ")
    });
    assert!(!served_here, "the old primary admitted a create after its lease ran out:\n{log}");
    match resp.status {
        503 => assert!(resp.message().contains("primary"), "{}", resp.text()),
        // Forwarded to the new primary, which admitted it.
        201 => assert!(log.contains(&format!("node=\"primary {}\"", b.advertise)), "{log}"),
        other => panic!("{other}: {}", resp.text()),
    }
    a.wait_replica_of(&b, ELECTED);
    // Now it forwards, and the create is admitted once, by the new primary.
    let again = a.gw.tenant("alice").ok(&["create", "--name", &t.name("again"), image(), "true"]);
    assert_eq!(again.trim().len(), 64, "{again}");
});

it_test!(quota_stays_exact_across_managers_and_a_failover, mtswarm_only("manager replication"), |t| {
    let quota = t.path("quota.json");
    std::fs::write(&quota, r#"{"Containers": 3}"#).expect("write quota.json");
    let env = [("SWARM_ENFORCE_QUOTA", "true"), ("SWARM_QUOTA_FILE", quota.to_str().unwrap())];
    let cluster = Replicated::new(&t);
    let mut a = cluster.first(&t, &[], &env);
    a.wait_primary(ELECTED);
    let b = cluster.another(&a, &[], &env);
    b.wait_replica_of(&a, ELECTED);
    let alice_id = a.gw.tenant_id("alice");

    // Eight creates at once, through both managers, for three places.
    let clients = [a.gw.tenant("alice"), b.gw.tenant("alice")];
    let created = |clients: &[Client], n: usize, tag: &str| -> (usize, Vec<String>) {
        let outs: Vec<Output> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let c = &clients[i % clients.len()];
                    let name = t.name(&format!("{tag}{i}"));
                    s.spawn(move || c.docker(&["create", "--name", &name, image(), "true"]))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a create thread")).collect()
        });
        let ok = outs.iter().filter(|o| o.success()).count();
        let refusals = outs.iter().filter(|o| !o.success()).map(|o| o.stderr.clone()).collect();
        (ok, refusals)
    };
    let (ok, refusals) = created(&clients, 8, "c");
    assert_eq!(ok, 3, "{refusals:?}");
    assert!(refusals.iter().all(|e| e.contains("quota exceeded: Containers")), "{refusals:?}");
    assert_eq!(containers_of(&alice_id).len(), 3);

    // After a failover, the new primary counts what the engines hold: one place freed, one create of four passes.
    a.gw.kill();
    b.wait_primary(failover_bound());
    let one = containers_of(&alice_id)[0].id.clone();
    b.gw.tenant("alice").ok(&["rm", &one]);
    let (ok, refusals) = created(&clients[1..], 4, "d");
    assert_eq!(ok, 1, "{refusals:?}");
    assert_eq!(containers_of(&alice_id).len(), 3);
});

it_test!(replication_needs_etcd_and_an_advertised_address, mtswarm_only("manager replication"), |t| {
    let cluster = Replicated::new(&t);
    let refuse = |args: &[&str], expected: &str| {
        let mut all = vec!["manage", "-H", "tcp://127.0.0.1:0"];
        all.extend_from_slice(args);
        let out = crate::support::auth::mtswarm(&all, t.dir(), &[]);
        assert_eq!(out.code, Some(1), "{out}");
        assert!(out.stderr.contains(expected), "{expected:?} not in: {out}");
        assert!(!out.stdout.contains("listening on"), "{out}");
    };
    let discovery = cluster.discovery();
    refuse(
        &["--replication", "--advertise", "127.0.0.1:1", "nodes://127.0.0.1:23750"],
        "elects the primary manager through etcd",
    );
    refuse(&["--replication", &discovery], "--replication needs --advertise HOST:PORT");
    refuse(&["--replication", "--advertise", "unix:///x", &discovery], "--advertise unix:///x: expected HOST:PORT");
    refuse(&["--advertise", "127.0.0.1:1", &discovery], "go with --replication");
    refuse(&["--replication", "--advertise", "127.0.0.1:1", "--replication-ttl", "0", &discovery], "--replication-ttl");
    refuse(&["--replication", "--advertise", "127.0.0.1:1", "--tls", &discovery], "needs --tlsverify");
});

it_test!(
    over_tls_a_replica_keeps_the_clients_certificate_and_nobody_can_claim_one,
    mtswarm_only("manager replication"),
    |t| {
        use crate::support::tls::{curl_get, tlsverify_args, Ca, Usage};
        let ca = Ca::new(t.dir(), "pki");
        let manager = ca.issue("manager", "mtswarm-manager", Usage::Manager);
        let alice_cert = ca.issue("alice", "alice-cert", Usage::Client);
        let admin_cert = ca.issue("admin", "admin-cert", Usage::Client);
        let mallory = ca.issue("mallory", "mallory-cert", Usage::Client);
        let cluster = Replicated::new(&t);
        let (alice_id, admin_id) = (format!("{}-alice", t.tag), format!("{}-admin", t.tag));
        let map = t.path("cn-tenants.json");
        std::fs::write(&map, serde_json::json!({"alice-cert": alice_id, "admin-cert": admin_id}).to_string())
            .expect("write the CN map");
        let mut args = tlsverify_args(ca.cert(), &manager);
        args.extend(["--tls-cn-tenants".to_string(), map.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let role = |m: &crate::support::managers::Manager| {
            let info = curl_get(m.gw.host(), "/info", ca.cert(), Some(&admin_cert), &[]);
            let v: serde_json::Value = serde_json::from_str(&info.body).unwrap_or_default();
            let status = v["SystemStatus"].as_array().cloned().unwrap_or_default();
            let field = |n: &str| status.iter().find(|p| p[0] == n).and_then(|p| p[1].as_str()).map(str::to_string);
            (field("Role"), field("Primary"))
        };
        let a = cluster.first(&t, &args, &[]);
        poll("the first manager to be primary", ELECTED, || (role(&a).0.as_deref() == Some("primary")).then_some(()));
        let b = cluster.another(&a, &args, &[]);
        poll("the second to be a replica of the first", ELECTED, || {
            (role(&b) == (Some("replica".into()), Some(a.advertise.clone()))).then_some(())
        });

        // Alice, known by her certificate only, through the replica: the primary acts for her.
        let alice = b.gw.client_with("alice-cert", None, None).tls_verify(ca.cert(), Some(&alice_cert));
        let web = t.name("web");
        alice.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
        let placed = containers_of(&alice_id);
        assert_eq!(placed.len(), 1, "{placed:?}");
        assert_eq!(alice.ok(&["ps", "--format", "{{.Names}}"]).trim(), web);

        // Mallory claims alice's certificate name: to the primary with a made-up key, refused; without a key, the
        // claim is dropped and mallory's own certificate (which names no tenant) is what counts; through the replica,
        // the replica puts the name it verified in place of the claim.
        let claim = ("X-Mtswarm-Client-Cn", "alice-cert");
        let forged_key = "f".repeat(64);
        let to_primary = curl_get(
            a.gw.host(),
            "/containers/json",
            ca.cert(),
            Some(&mallory),
            &[claim, ("X-Mtswarm-Replica-Key", &forged_key)],
        );
        assert_eq!(to_primary.status, 503, "{} {}", to_primary.body, to_primary.stderr);
        for host in [a.gw.host(), b.gw.host()] {
            let answer = curl_get(host, "/containers/json", ca.cert(), Some(&mallory), &[claim]);
            assert_eq!(answer.status, 401, "{host}: {}", answer.body);
            assert!(!answer.body.contains(&web), "{host}: {}", answer.body);
        }
        // The same request with alice's own certificate is served, through either manager.
        for host in [a.gw.host(), b.gw.host()] {
            let answer = curl_get(host, "/containers/json", ca.cert(), Some(&alice_cert), &[]);
            assert_eq!(answer.status, 200, "{host}: {}", answer.body);
            assert!(answer.body.contains(&web), "{host}: {}", answer.body);
        }
    }
);
