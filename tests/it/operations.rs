//! Operations: Prometheus metrics and health on `--metrics-addr`, the audit log (`--audit-log`), and reload of
//! the policy files on SIGHUP.

use std::time::Duration;

use crate::support::*;

#[allow(dead_code)] // used by the streaming tests below
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
