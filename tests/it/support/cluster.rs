//! What the cluster tests (`cluster.rs`) share beyond `support`: the three engines of the test bed by name, one
//! lock that runs the cluster tests one at a time, where a tenant's containers, volumes and networks landed (asked
//! of every engine directly, never of mtswarm), `mtswarm join` processes, and an engine stopped for the length of
//! a test.
//!
//! The cluster tests share node1 and node2 (the other tests use node0 only), and one of them stops node2, so they
//! hold [`cluster_lock`] from before their `Test` is created until after it has cleaned up (see `CLUSTER` for
//! which tests and why). Other tests run at the
//! same time and put their own containers on node0: everything here counts only one tenant's objects, by the
//! label `mtswarm.tenant=<tenant id>` that mtswarm puts on everything a tenant creates.

use std::collections::BTreeMap;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// The labels a create's `constraint:` and `affinity:` env entries are moved into, as Swarm classic did.
pub const CONSTRAINTS_LABEL: &str = "com.docker.swarm.constraints";
pub const AFFINITIES_LABEL: &str = "com.docker.swarm.affinities";

/// How long a change of the cluster (a node joining, leaving, failing or coming back) may take to show.
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------------------
// The engines
// ---------------------------------------------------------------------------------------------------------

/// One engine of the test bed.
#[derive(Debug, Clone)]
pub struct Engine {
    /// N in nodeN and MTSWARM_ENGINE{N}.
    pub n: u32,
    /// Its `docker info` Name: what constraints and messages call it.
    pub name: String,
    /// `127.0.0.1:2375N`: what the discovery forms list.
    pub addr: String,
}

impl Engine {
    /// `tcp://127.0.0.1:2375N`, for the docker CLI.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// The docker CLI straight against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        engine_docker_at(&self.url(), args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// True when the engine accepts a TCP connection.
    pub fn up(&self) -> bool {
        let addr: SocketAddr = self.addr.parse().expect("an engine address is ip:port");
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    }
}

/// node0, node1 and node2, from the test bed's env file (`MTSWARM_ENGINE{N}_TCP`, `MTSWARM_ENGINE{N}_NAME`),
/// falling back to the test bed's fixed addresses.
pub fn engines() -> &'static [Engine] {
    static ENGINES: OnceLock<Vec<Engine>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let vars = testbed_env();
        (0..3)
            .map(|n| {
                let url = vars
                    .get(&format!("MTSWARM_ENGINE{n}_TCP"))
                    .cloned()
                    .unwrap_or_else(|| format!("tcp://127.0.0.1:2375{n}"));
                Engine {
                    n,
                    name: vars.get(&format!("MTSWARM_ENGINE{n}_NAME")).cloned().unwrap_or_else(|| format!("node{n}")),
                    addr: url.trim_start_matches("tcp://").trim_end_matches('/').to_string(),
                }
            })
            .collect()
    })
}

/// The engine called `name`.
pub fn engine(name: &str) -> &'static Engine {
    engines().iter().find(|e| e.name == name).unwrap_or_else(|| panic!("the test bed has no engine {name}"))
}

/// `nodes://127.0.0.1:23750,127.0.0.1:23751,127.0.0.1:23752`: the whole test bed as mtswarm's discovery.
pub fn nodes_discovery() -> String {
    let addrs: Vec<&str> = engines().iter().map(|e| e.addr.as_str()).collect();
    format!("nodes://{}", addrs.join(","))
}

// ---------------------------------------------------------------------------------------------------------
// One cluster test at a time
// ---------------------------------------------------------------------------------------------------------

/// The one lock of the cluster tests: every test in front of node1 and node2 takes it (`lock(cluster_lock)` in
/// `it_test!`), so that only one of them runs at a time. They are the tests of `cluster.rs` but the overlay one
/// (which runs on the overlay engines, ovnode1 and ovnode2, and has them to itself) and
/// `surface::image_operations_over_the_nodes_answer_as_one_engine`. Why:
/// - `cluster::a_failed_node_is_left_out_until_it_comes_back` stops node2 for a while: any other test on node2
///   would fail meanwhile;
/// - the scheduling tests (spread, binpack, constraints, affinities) place by what the nodes have reserved, and
///   `info_shows_the_cluster...` counts what is on them: another test's containers on node1 or node2 would move
///   their placements and counts;
/// - `etcd_discovery_with_mtswarm_join` and `file_discovery_follows_the_file` make node1 and node2 join and
///   leave a cluster of their own.
///
/// The other tests use node0 only and run meanwhile: the cluster tests count only their own tenants' objects,
/// and outweigh what others leave on node0 with memory reservations (`-m`).
static CLUSTER: Mutex<()> = Mutex::new(());

/// Takes the cluster tests' lock (a test that failed while holding it does not stop the others), and makes sure
/// node1 and node2 are up: a test that stops one restarts it in a drop guard, but a run killed midway cannot.
/// Take it before `Test::new()`, so that it is released after the test's cleanup.
pub fn cluster_lock() -> MutexGuard<'static, ()> {
    let guard = CLUSTER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for e in &engines()[1..] {
        if !e.up() {
            eprintln!("{} was down before the test: starting it", e.name);
            testbed_script(&["engine-start", &e.n.to_string()]);
        }
    }
    guard
}

impl GatewayOpts {
    /// mtswarm in front of the three engines (`nodes://`), with more `manage` flags.
    pub fn cluster(args: &[&str]) -> GatewayOpts {
        GatewayOpts::discovery(&nodes_discovery(), args)
    }

    /// mtswarm with the given discovery URL and `manage` flags, tenants alice and bob.
    pub fn discovery(discovery: &str, args: &[&str]) -> GatewayOpts {
        GatewayOpts {
            engine: Some(discovery.to_string()),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..GatewayOpts::default()
        }
    }
}

/// mtswarm in front of the three engines (`nodes://`), with more `manage` flags.
pub fn cluster_gateway<'t>(t: &'t Test, args: &[&str]) -> Gateway<'t> {
    Gateway::start(t, GatewayOpts::cluster(args))
}

/// mtswarm with the given discovery URL and `manage` flags, tenants alice and bob.
pub fn discovery_gateway<'t>(t: &'t Test, discovery: &str, args: &[&str]) -> Gateway<'t> {
    Gateway::start(t, GatewayOpts::discovery(discovery, args))
}

// ---------------------------------------------------------------------------------------------------------
// Where things landed, asked of the engines
// ---------------------------------------------------------------------------------------------------------

/// One container of a tenant, as an engine holds it.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The engine's name.
    pub node: String,
    /// The full id.
    pub id: String,
    /// The engine-side name, without the leading slash.
    pub name: String,
    /// `running`, `exited`, `created`, ...
    pub state: String,
}

/// Every container labelled with `tenant_id`, on every engine that answers (one that is down holds nothing
/// that can be listed).
pub fn containers_of(tenant_id: &str) -> Vec<Placed> {
    let filter = format!("label={TENANT_LABEL}={tenant_id}");
    let mut all = Vec::new();
    for e in engines() {
        let out =
            e.docker(&["ps", "-a", "--no-trunc", "--filter", &filter, "--format", "{{.ID}}\t{{.Names}}\t{{.State}}"]);
        if !out.success() {
            assert!(!e.up(), "listing the containers of {tenant_id} on {} failed: {out}", e.name);
            continue;
        }
        for line in lines(&out.stdout) {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 3, "unexpected ps line {line:?} from {}", e.name);
            all.push(Placed { node: e.name.clone(), id: f[0].into(), name: f[1].into(), state: f[2].into() });
        }
    }
    all
}

/// How many of the tenant's containers each engine holds; every engine is in the map, with 0 if need be.
pub fn placement(tenant_id: &str) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = engines().iter().map(|e| (e.name.clone(), 0)).collect();
    for c in containers_of(tenant_id) {
        *counts.entry(c.node).or_default() += 1;
    }
    counts
}

/// The same as `placement`, for several tenants together.
pub fn placement_of(tenant_ids: &[&str]) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = engines().iter().map(|e| (e.name.clone(), 0)).collect();
    for id in tenant_ids {
        for (node, n) in placement(id) {
            *counts.entry(node).or_default() += n;
        }
    }
    counts
}

/// The counts of `placement`, largest first: the shape of a placement whatever the nodes' order.
pub fn shape(p: &BTreeMap<String, usize>) -> Vec<usize> {
    let mut v: Vec<usize> = p.values().copied().collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    v
}

/// The engine container `id` (as `docker run -d` printed it: the full id or a prefix) of tenant `tenant_id` is
/// on; fails the test unless exactly one engine holds it.
pub fn node_of(tenant_id: &str, id: &str) -> String {
    let found: Vec<Placed> = containers_of(tenant_id).into_iter().filter(|c| c.id.starts_with(id)).collect();
    assert_eq!(found.len(), 1, "expected container {id} of {tenant_id} on exactly one engine; found {found:?}");
    found[0].node.clone()
}

/// The one container of tenant `tenant_id` with id `id` (as `node_of`).
pub fn placed(tenant_id: &str, id: &str) -> Placed {
    let found: Vec<Placed> = containers_of(tenant_id).into_iter().filter(|c| c.id.starts_with(id)).collect();
    assert_eq!(found.len(), 1, "expected container {id} of {tenant_id} on exactly one engine; found {found:?}");
    found[0].clone()
}

/// The engines that hold the tenant's volume (`kind` "volume") or network (`kind` "network") `name`.
pub fn nodes_holding(kind: &str, tenant_id: &str, name: &str) -> Vec<String> {
    let filter = format!("label={TENANT_LABEL}={tenant_id}");
    let want = scoped(tenant_id, name);
    let mut holding = Vec::new();
    for e in engines() {
        let out = e.docker(&[kind, "ls", "--filter", &filter, "--format", "{{.Name}}"]);
        assert!(out.success(), "listing the {kind}s of {tenant_id} on {} failed: {out}", e.name);
        if lines(&out.stdout).contains(&want) {
            holding.push(e.name.clone());
        }
    }
    holding
}

// ---------------------------------------------------------------------------------------------------------
// `mtswarm join`
// ---------------------------------------------------------------------------------------------------------

/// A running `mtswarm join --advertise ADDR --heartbeat 1 --ttl 3 DISCOVERY`, killed on drop.
pub struct Join {
    child: Child,
    desc: String,
    stderr_path: std::path::PathBuf,
}

impl Join {
    /// Starts the join of the engine at `addr` to `discovery`; its stderr goes to the test's directory.
    pub fn start(t: &Test, addr: &str, discovery: &str) -> Join {
        let stderr_path = t.path(&format!("join-{}.stderr", addr.replace([':', '.'], "-")));
        let stderr = fs::File::create(&stderr_path).expect("create the join's stderr file");
        let args = ["join", "--advertise", addr, "--heartbeat", "1", "--ttl", "3", discovery];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtswarm"));
        for (key, _) in std::env::vars() {
            if key.starts_with("SWARM_") {
                cmd.env_remove(key);
            }
        }
        cmd.args(args).current_dir(t.dir()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        let desc = format!("mtswarm {}", args.join(" "));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn `{desc}`: {e}"));
        Join { child, desc, stderr_path }
    }

    /// Sends `signal` ("TERM", "KILL") to the process.
    pub fn signal(&mut self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} `{}` failed", self.desc);
    }

    /// Waits for the process to end (failing the test after `timeout`).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the join") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "`{}` still runs {timeout:?} after a signal:\n{}",
                self.desc,
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What it printed on stderr so far.
    pub fn log(&self) -> String {
        format!("----- {} -----\n{}", self.desc, fs::read_to_string(&self.stderr_path).unwrap_or_default())
    }
}

impl Drop for Join {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("{}", self.log());
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// An engine stopped for a while
// ---------------------------------------------------------------------------------------------------------

/// Engine nodeN stopped (`scripts/testbed.sh engine-stop N`); started again by [`StoppedEngine::start`] or, if
/// the test fails first, on drop. Declare it after the `Test` and the gateway: it drops before them, so the
/// test's cleanup finds the engine up.
pub struct StoppedEngine {
    n: u32,
    stopped: bool,
}

impl StoppedEngine {
    /// Stops nodeN. Never node0: every other test runs on it.
    pub fn stop(n: u32) -> StoppedEngine {
        assert!(n == 1 || n == 2, "only node1 or node2 may be stopped, not node{n}");
        testbed_script(&["engine-stop", &n.to_string()]);
        StoppedEngine { n, stopped: true }
    }

    /// Starts the engine again (the script waits until it answers).
    pub fn start(&mut self) {
        if self.stopped {
            self.stopped = false;
            testbed_script(&["engine-start", &self.n.to_string()]);
        }
    }
}

impl Drop for StoppedEngine {
    fn drop(&mut self) {
        if self.stopped {
            self.stopped = false;
            if let Err(e) = try_testbed_script(&["engine-start", &self.n.to_string()]) {
                eprintln!("could not start node{} again: {e}", self.n);
            }
        }
    }
}
