//! Operations: Prometheus metrics and health on `--metrics-addr`, the audit log (`--audit-log`), and reload of
//! the policy files on SIGHUP.

use std::time::Duration;

use crate::support::*;

const WAIT: Duration = Duration::from_secs(30);

/// The value of one sample of the exposition (`name{labels}` as written), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

fn scrape(gw: &Gateway) -> String {
    let r = gw.ops().get("/metrics");
    assert_eq!(r.status, 200, "{r}");
    r.text()
}

/// Writes the test's API filter file (`SWARM_APIFILTER_FILE`) with `text`; returns its path and the env entry that
/// names it.
fn api_filter(t: &Test, text: &str) -> (std::path::PathBuf, (String, String)) {
    let path = t.path("apifilter.json");
    std::fs::write(&path, text).unwrap();
    let env = ("SWARM_APIFILTER_FILE".to_string(), path.display().to_string());
    (path, env)
}

fn ops_gateway<'t>(t: &'t Test, mut opts: GatewayOpts) -> Gateway<'t> {
    opts.args.extend(["--metrics-addr".to_string(), "127.0.0.1:0".to_string()]);
    Gateway::start(t, opts)
}

it_test!(counters_move_for_a_run_a_denial_and_a_401, mtswarm_only("the metrics"), |t| {
    let (_, filter) = api_filter(&t, r#"{"disableapi": ["networkslist"]}"#);
    let gw = ops_gateway(&t, GatewayOpts { env: vec![filter], tenants: vec!["alice"], ..GatewayOpts::default() });
    let alice = gw.tenant("alice");
    let c = t.name("counted");
    alice.ok(&["run", "--name", &c, "-m", "64m", image(), "echo", "hi"]);
    alice.fails(&["network", "ls"]);
    let anonymous = Http::with_headers(gw.host(), &[]);
    assert_eq!(anonymous.get("/containers/json").status, 401);

    let text = scrape(&gw);
    let at_least = |series: &str, n: f64| {
        let v = sample(&text, series).unwrap_or_else(|| panic!("{series} missing from\n{text}"));
        assert!(v >= n, "{series} = {v}, expected at least {n}\n{text}");
    };
    at_least(r#"mtswarm_requests_total{endpoint="containerscreate",code="201"}"#, 1.0);
    at_least(r#"mtswarm_requests_total{endpoint="containerstart",code="204"}"#, 1.0);
    at_least(r#"mtswarm_requests_total{endpoint="networkslist",code="403"}"#, 1.0);
    at_least(r#"mtswarm_requests_total{endpoint="containersjson",code="401"}"#, 1.0);
    at_least(r#"mtswarm_request_duration_seconds_count{endpoint="containerscreate"}"#, 1.0);
    at_least(r#"mtswarm_denials_total{reason="apifilter"}"#, 1.0);
    at_least(r#"mtswarm_denials_total{reason="auth"}"#, 1.0);
    at_least(r#"mtswarm_nodes{state="healthy"}"#, 1.0);
    assert_eq!(sample(&text, r#"mtswarm_nodes{state="unhealthy"}"#), Some(0.0), "{text}");
    // The run's container, stopped, with its memory limit.
    let tenant = gw.tenant_id("alice");
    at_least(&format!("mtswarm_tenant_containers{{tenant=\"{tenant}\"}}"), 1.0);
    at_least(&format!("mtswarm_tenant_memory_bytes{{tenant=\"{tenant}\"}}"), 64.0 * 1024.0 * 1024.0);
    assert!(text.contains("mtswarm_streams "), "{text}");
    // No object is a label.
    assert!(!text.contains(&c), "a container name is a label:\n{text}");
});

/// A unix socket in front of the test bed's engine that the test can take away and bring back, to show an
/// engine stopping without stopping the engine the other tests share. Stopping removes the socket and cuts
/// every open connection, as a dead dockerd would.
struct Forwarder {
    path: std::path::PathBuf,
    upstream: String,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Forwarder {
    fn start(path: std::path::PathBuf, upstream: &str) -> Forwarder {
        let mut f =
            Forwarder { path, upstream: upstream.to_string(), conns: Default::default(), stop: Default::default() };
        f.open();
        f
    }

    fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn open(&mut self) {
        use std::sync::atomic::Ordering;
        let _ = std::fs::remove_file(&self.path);
        let listener = std::os::unix::net::UnixListener::bind(&self.path).expect("bind the forwarder");
        self.stop = Default::default();
        let (stop, conns, upstream) = (self.stop.clone(), self.conns.clone(), self.upstream.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if let Ok(c) = client.try_clone() {
                    conns.lock().unwrap().push(c);
                }
                let upstream = upstream.clone();
                std::thread::spawn(move || pipe(client, &upstream));
            }
        });
    }

    /// The engine goes away: no new connections, and the open ones are cut.
    fn close(&mut self) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::os::unix::net::UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.close();
    }
}

/// Copies both ways between a client and a new connection to `upstream` (unix:// or tcp://).
fn pipe(client: std::os::unix::net::UnixStream, upstream: &str) {
    use std::io::{Read, Write};
    fn both<A, B>(a: A, a2: A, b: B, b2: B, shut_a: fn(&A), shut_b: fn(&B))
    where
        A: Read + Write + Send + 'static,
        B: Read + Write + Send + 'static,
    {
        let up = std::thread::spawn(move || {
            let (mut a2, mut b2) = (a2, b2);
            let _ = std::io::copy(&mut a2, &mut b2);
            shut_b(&b2);
        });
        let (mut a, mut b) = (a, b);
        let _ = std::io::copy(&mut b, &mut a);
        shut_a(&a);
        let _ = up.join();
        let _ = a.flush();
    }
    let shut_unix = |s: &std::os::unix::net::UnixStream| {
        let _ = s.shutdown(std::net::Shutdown::Write);
    };
    let Ok(client2) = client.try_clone() else { return };
    if let Some(path) = upstream.strip_prefix("unix://") {
        let Ok(engine) = std::os::unix::net::UnixStream::connect(path) else { return };
        let Ok(engine2) = engine.try_clone() else { return };
        both(client, client2, engine, engine2, shut_unix, shut_unix);
    } else {
        let addr = upstream.trim_start_matches("tcp://");
        let Ok(engine) = std::net::TcpStream::connect(addr) else { return };
        let Ok(engine2) = engine.try_clone() else { return };
        let shut_tcp = |s: &std::net::TcpStream| {
            let _ = s.shutdown(std::net::Shutdown::Write);
        };
        both(client, client2, engine, engine2, shut_unix, shut_tcp);
    }
}

it_test!(healthz_follows_the_only_engine, mtswarm_only("health"), |t| {
    let mut engine = Forwarder::start(t.path("engine.sock"), &testbed().engine0);
    let gw = ops_gateway(
        &t,
        GatewayOpts {
            engine: Some(engine.url()),
            tenants: vec!["alice"],
            args: vec!["--refresh-interval".into(), "0.3".into()],
            ..GatewayOpts::default()
        },
    );
    let health = || gw.ops().get("/healthz");
    poll("healthz 200 with the engine up", WAIT, || (health().status == 200).then_some(()));
    gw.tenant("alice").ok(&["ps"]);

    engine.close();
    let down = poll("healthz 503 once the engine is gone", WAIT, || Some(health()).filter(|r| r.status == 503));
    assert!(down.json()["reason"].as_str().is_some_and(|r| r.contains("no healthy engine")), "{down}");
    let text = scrape(&gw);
    assert_eq!(sample(&text, r#"mtswarm_nodes{state="unhealthy"}"#), Some(1.0), "{text}");

    engine.open();
    poll("healthz 200 once the engine is back", WAIT, || (health().status == 200).then_some(()));
    gw.tenant("alice").ok(&["ps"]);
});

/// The audit log's records, one JSON object a line.
fn audit_records(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"))).collect()
}

it_test!(the_audit_log_has_the_create_the_denial_and_the_401_and_no_token, mtswarm_only("the audit log"), |t| {
    let (_, filter) = api_filter(&t, r#"{"disableapi": ["networkslist"]}"#);
    let log = t.path("audit.log");
    let gw = Gateway::start(
        &t,
        GatewayOpts {
            env: vec![filter, ("SWARM_AUDIT_LOG".into(), log.display().to_string())],
            tenants: vec!["alice"],
            ..GatewayOpts::default()
        },
    );
    let alice = gw.tenant("alice");
    let c = t.name("audited");
    alice.ok(&["create", "--name", &c, image(), "true"]);
    alice.ok(&["ps", "-a"]);
    alice.fails(&["network", "ls"]);
    let wrong = "not-a-token-0123456789abcdef";
    let r = Http::with_headers(gw.host(), &[("X-Auth-Token", wrong), ("X-Registry-Auth", "cGFzc3dvcmQ=")]).request(
        "POST",
        "/containers/create",
        &[("Content-Type", "application/json")],
        Some(b"{}"),
    );
    assert_eq!(r.status, 401, "{r}");

    let tenant = gw.tenant_id("alice");
    let records = poll("the 401's record", WAIT, || {
        let all = audit_records(&log);
        all.iter().any(|r| r["status"] == 401).then_some(all)
    });
    let create = records
        .iter()
        .find(|r| r["endpoint"] == "containerscreate" && r["status"] == 201)
        .unwrap_or_else(|| panic!("no create in {records:#?}"));
    assert_eq!(create["tenant"], tenant.as_str());
    assert_eq!(create["object"], c.as_str());
    assert_eq!(create["decision"], "allowed");
    assert_eq!(create["method"], "POST");
    assert!(create["remote"].as_str().is_some_and(|r| r.starts_with("127.0.0.1:")), "{create}");
    assert!(create["node"].is_string() && create["request_id"].is_u64(), "{create}");
    let time = create["time"].as_str().unwrap_or_default();
    assert!(time.len() == 24 && time.ends_with('Z') && time.as_bytes()[19] == b'.', "{time}");

    let denial =
        records.iter().find(|r| r["endpoint"] == "networkslist").unwrap_or_else(|| panic!("no denial in {records:#?}"));
    assert_eq!(denial["decision"], "denied");
    assert_eq!(denial["status"], 403);
    assert!(denial["reason"].as_str().is_some_and(|m| m.contains("networkslist is disabled")), "{denial}");

    let unauth = records.iter().find(|r| r["status"] == 401).unwrap();
    assert_eq!(unauth["tenant"], serde_json::Value::Null, "{unauth}");
    assert_eq!(unauth["decision"], "denied");
    assert!(unauth["reason"].as_str().is_some_and(|m| m.contains("authentication failed")), "{unauth}");

    // Reads are not audited; no secret is written anywhere.
    assert!(!records.iter().any(|r| r["endpoint"] == "containersjson"), "{records:#?}");
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [alice.token(), wrong, "cGFzc3dvcmQ="] {
        assert!(!text.contains(secret), "a secret is in the audit log:\n{text}");
    }
});

fn hup(gw: &Gateway) {
    let out = std::process::Command::new("kill").args(["-HUP", &gw.pid().to_string()]).output().expect("run kill");
    assert!(out.status.success(), "kill -HUP: {out:?}");
}

it_test!(sighup_reloads_the_api_filter_and_open_streams_keep_going, mtswarm_only("reload on SIGHUP"), |t| {
    let (filter, env) = api_filter(&t, r#"{"disableapi": []}"#);
    let gw = ops_gateway(&t, GatewayOpts { env: vec![env], tenants: vec!["alice"], ..GatewayOpts::default() });
    let alice = gw.tenant("alice");
    let c = t.name("ticker");
    alice.run_detached_sh(&c, "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done");
    let mut follow = alice.spawn(&["logs", "-f", &c]);
    follow.expect_line("a first tick", WAIT, |l| l.starts_with("tick"));

    std::fs::write(&filter, r#"{"disableapi": ["containerlogs"]}"#).unwrap();
    hup(&gw);
    let err = poll("logs refused after the reload", WAIT, || {
        let out = alice.docker(&["logs", &c]);
        (!out.success()).then_some(out.stderr)
    });
    assert!(err.contains("containerlogs is disabled"), "{err}");
    // The stream opened before goes on.
    let seen = follow.seen.len();
    follow.expect_line("more ticks after the reload", WAIT, |l| l.starts_with("tick"));
    assert!(follow.seen.len() > seen);

    // A broken file keeps the filter in force, and says so.
    std::fs::write(&filter, r#"{"disableapi": ["containerz"]"#).unwrap();
    hup(&gw);
    poll("the failed reload counted", WAIT, || {
        sample(&scrape(&gw), r#"mtswarm_config_reloads_total{file="apifilter",result="error"}"#).filter(|v| *v >= 1.0)
    });
    assert!(gw.stderr().contains("not reloaded"), "{}", gw.stderr());
    assert!(!alice.docker(&["logs", &c]).success());
    alice.ok(&["rm", "-f", &c]);
});
