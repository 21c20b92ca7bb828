//! Hardening around the engines: mutual TLS to an engine run with `dockerd --tlsverify` (the test bed's
//! tlsnode), per-tenant caps on open streams, and tenants' pulls that cannot re-point the shared catalogue.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use crate::support::*;

/// The test bed's TLS engine and the files mtswarm needs for it, from the env file; `None` when the test bed
/// has no tls component (then the TLS test says so and passes, as the other optional components' tests do).
fn tls_engine() -> Option<(String, Vec<String>)> {
    let vars = testbed_env();
    let engine = vars.get("MTSWARM_TLS_ENGINE")?.to_string();
    let args = [
        ("--node-tlscacert", "MTSWARM_TLS_CA"),
        ("--node-tlscert", "MTSWARM_TLS_CERT"),
        ("--node-tlskey", "MTSWARM_TLS_KEY"),
    ]
    .iter()
    .flat_map(|(flag, var)| [flag.to_string(), vars.get(*var).cloned().unwrap_or_default()])
    .collect();
    Some((engine, args))
}

it_test!(run_exec_logs_and_cp_through_a_tls_engine, mtswarm_only("a TLS engine"), |t| {
    let Some((engine, args)) = tls_engine() else {
        eprintln!("skipped: the test bed has no tls component (scripts/testbed.sh up tls)");
        return;
    };
    let gw = Gateway::start(&t, GatewayOpts { engine: Some(engine.clone()), args, ..Default::default() });
    let alice = gw.tenant("alice");
    assert_eq!(alice.ok(&["run", "--rm", "--network", "none", image(), "echo", "over-tls"]), "over-tls");

    let c = t.name("tls");
    alice.ok(&["run", "-d", "--network", "none", "--name", &c, image(), "sleep", "300"]);
    let out = alice.pty(&["exec", "-it", &c, "sh"], "echo pty-$((20+22))\nexit\n");
    assert!(out.success() && out.stdout.contains("pty-42"), "{out}");
    // A piped exec ends when its input does: the half-close crosses the TLS connection.
    let out = alice.docker_stdin(&["exec", "-i", &c, "cat"], "piped\n");
    assert!(out.success() && out.stdout.trim() == "piped", "{out}");

    let l = t.name("tlslogs");
    alice.ok(&["run", "-d", "--network", "none", "--name", &l, image(), "sh", "-c", "echo one; sleep 1; echo two"]);
    assert_eq!(lines(&alice.ok(&["logs", "-f", &l])), ["one", "two"]);

    let src = t.path("up.txt");
    std::fs::write(&src, "copied over tls\n").unwrap();
    alice.ok(&["cp", &src.display().to_string(), &format!("{c}:/tmp/up.txt")]);
    let back = t.path("back.txt");
    alice.ok(&["cp", &format!("{c}:/tmp/up.txt"), &back.display().to_string()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "copied over tls\n");
    alice.ok(&["rm", "-f", &c, &l]);

    // Without the client certificate, the same engine is out of reach.
    let plain = Gateway::start(&t, GatewayOpts { engine: Some(engine), ..Default::default() });
    let err = plain.tenant("alice").fails(&["ps"]);
    assert!(!err.is_empty());
});

/// Opens `GET /events` as `tenant` on a raw connection and returns the status and the open connection.
fn open_events(gw: &Gateway<'_>, tenant: &str) -> (u16, BufReader<std::net::TcpStream>) {
    let addr = gw.host().strip_prefix("tcp://").expect("a TCP gateway").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let token = gw.tenant(tenant).token().to_string();
    let id = gw.tenant_id(tenant);
    write!(s, "GET /v1.41/events HTTP/1.1\r\nHost: mtswarm\r\nX-Auth-Token: {token}\r\nX-Auth-TenantId: {id}\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let code = status.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, r)
}

it_test!(
    a_tenant_over_its_stream_cap_gets_429_and_others_do_not_notice,
    mtswarm_only("mtswarm's limits"),
    gw = GatewayOpts { args: vec!["--tenant-max-streams".into(), "8".into()], ..Default::default() },
    |t, gw| {
        let mut open = Vec::new();
        let mut refused = Vec::new();
        for _ in 0..12 {
            let (code, mut conn) = open_events(&gw, "alice");
            match code {
                200 => open.push(conn),
                429 => {
                    let mut rest = String::new();
                    while conn.read_line(&mut rest).is_ok_and(|n| n > 0) && !rest.contains("}") {}
                    refused.push(rest);
                }
                other => panic!("GET /events answered {other}"),
            }
        }
        assert_eq!((open.len(), refused.len()), (8, 4), "{refused:?}");
        assert!(refused.iter().all(|m| m.contains("--tenant-max-streams")), "{refused:?}");
        // Another tenant's requests and streams, and alice's own ordinary requests, go on.
        let bob = gw.tenant("bob");
        bob.ok(&["ps"]);
        assert_eq!(open_events(&gw, "bob").0, 200);
        gw.tenant("alice").ok(&["ps"]);
        // A closed stream gives its permit back.
        drop(open.pop());
        poll("a stream permit given back", Duration::from_secs(20), || {
            (open_events(&gw, "alice").0 == 200).then_some(())
        });
    }
);

it_test!(
    a_pull_from_the_engine_hosts_loopback_is_refused_by_mtswarm,
    mtswarm_only("mtswarm's pull rules"),
    |t, gw, alice| {
        for reference in ["127.0.0.1:5999/team/app:1", "localhost:5999/x", "[::1]:5999/x:2", "169.254.169.254/x"] {
            let err = alice.fails(&["pull", reference]);
            // mtswarm's own refusal: the engine, which would say "connection refused", was never asked.
            assert!(err.contains("403") || err.contains("refused: a registry on a loopback"), "{reference}: {err}");
            assert!(err.contains("loopback, link-local or unspecified"), "{reference}: {err}");
        }
    }
);

// A search, a distribution inspect and a login make the engine contact a registry too: the same rule as a pull.
it_test!(
    searches_inspects_and_logins_do_not_reach_the_engine_hosts_own_registries,
    mtswarm_only("mtswarm's registry rules"),
    |t, gw| {
        let http = gw.tenant("alice").http();
        let refused = |r: &Response, what: &str| {
            assert_eq!(r.status, 403, "{what}: {r}");
            assert!(r.message().contains("loopback, link-local or unspecified"), "{what}: {r}");
        };
        refused(&http.get("/v1.41/images/search?term=127.0.0.1:5999/x"), "search on a loopback registry");
        refused(&http.get("/v1.41/images/search?term=localhost:5999/x"), "search on localhost");
        refused(
            &http.get("/v1.41/distribution/127.0.0.1:5999/x:1/json"),
            "distribution inspect on a loopback registry",
        );
        refused(&http.get("/v1.41/distribution/[::1]:5999/x/json"), "distribution inspect on ::1");
        for address in ["169.254.169.254", "http://127.0.0.1:5999/v2/", "localhost:5999"] {
            let r = http.post_json(
                "/v1.41/auth",
                &serde_json::json!({"username": "u", "password": "p", "serveraddress": address}),
            );
            refused(&r, &format!("login to {address}"));
        }
        // A search without a registry of the host's own is the engine's to answer (it cannot reach Docker Hub here:
        // anything but mtswarm's refusal).
        let r = http.get("/v1.41/images/search?term=busybox&limit=1");
        assert!(!r.message().contains("loopback, link-local or unspecified"), "{r}");
    }
);

/// Removes an image tag from the default engine when the test ends.
struct TagGuard(String);

impl Drop for TagGuard {
    fn drop(&mut self) {
        let _ = engine_docker(&["rmi", &self.0]);
    }
}

it_test!(a_tenants_pull_cannot_re_point_an_existing_tag, mtswarm_only("mtswarm's pull rules"), |t, gw, alice| {
    let repo = format!("team-{}", t.tag);
    let existing = format!("{repo}:1");
    engine_ok(&["tag", image(), &existing]);
    let _guard = TagGuard(existing.clone());
    let before = engine_ok(&["image", "inspect", "-f", "{{.Id}}", &existing]);

    let err = alice.fails(&["pull", &existing]);
    assert!(err.contains(&format!("the tag {existing}")) && err.contains("exists on this service"), "{err}");
    // Every tag of the repository (-a) is refused too, since one exists.
    let err = alice.fails(&["pull", "-a", &repo]);
    assert!(err.contains("exists on this service"), "{err}");
    assert_eq!(engine_ok(&["image", "inspect", "-f", "{{.Id}}", &existing]), before);

    // A new tag is not mtswarm's to refuse: the engine tries it (and, with no registry reachable, fails).
    let err = alice.fails(&["pull", &format!("{repo}:2")]);
    assert!(!err.contains("exists on this service") && !err.contains("is refused"), "{err}");
    // The admin may re-point a tag (here too the engine finds no registry).
    let err = gw.admin().fails(&["pull", &existing]);
    assert!(!err.contains("exists on this service"), "{err}");
});

it_test!(
    a_connection_whose_headers_never_complete_is_closed_after_the_header_timeout,
    mtswarm_only("the header timeout"),
    |t| {
        let gw = Gateway::start(
            &t,
            GatewayOpts { args: vec!["--header-timeout".into(), "1".into()], ..GatewayOpts::default() },
        );
        let addr = gw.host().strip_prefix("tcp://").expect("a TCP gateway").to_string();
        // Half a request: its headers never end. And a connection that sends nothing at all.
        let mut half = std::net::TcpStream::connect(&addr).unwrap();
        half.write_all(b"GET /_ping HTTP/1.1\r\nHost: mtswarm\r\nX-Slow: ").unwrap();
        let silent = std::net::TcpStream::connect(&addr).unwrap();
        for (what, mut s) in [("half-sent headers", half), ("no bytes", silent)] {
            // Far beyond the 1 s timeout: a read that ends with EOF (or a reset) is mtswarm closing the
            // connection; one that times out means it held the connection open.
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut buf = [0u8; 512];
            match std::io::Read::read(&mut s, &mut buf) {
                Ok(n) => assert!(
                    !String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
                    "{what}: mtswarm answered a request it never fully got"
                ),
                Err(e) => assert!(
                    !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
                    "{what}: the connection was still open after 30 s (header timeout 1 s)"
                ),
            }
        }
        // A whole request on a new connection is still answered.
        assert_eq!(Http::with_headers(gw.host(), &[]).get("/_ping").status, 200);
    }
);
