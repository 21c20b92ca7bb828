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

fn ops_gateway<'t>(t: &'t Test, mut opts: GatewayOpts) -> Gateway<'t> {
    opts.args.extend(["--metrics-addr".to_string(), "127.0.0.1:0".to_string()]);
    Gateway::start(t, opts)
}

#[test]
fn counters_move_for_a_run_a_denial_and_a_401() {
    if direct() {
        return; // The metrics are mtswarm's.
    }
    let t = Test::new();
    let filter = t.path("apifilter.json");
    std::fs::write(&filter, r#"{"disableapi": ["networkslist"]}"#).unwrap();
    let gw = ops_gateway(
        &t,
        GatewayOpts {
            env: vec![("SWARM_APIFILTER_FILE".into(), filter.display().to_string())],
            tenants: vec!["alice"],
            ..GatewayOpts::default()
        },
    );
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
}

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

#[test]
fn healthz_follows_the_only_engine() {
    if direct() {
        return; // Health is mtswarm's.
    }
    let t = Test::new();
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
}
