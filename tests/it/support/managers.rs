//! What the replication tests (`replication.rs`) share beyond `support`: several `mtswarm manage --replication` of
//! one cluster. The cluster is node0 and node1, registered under the test's own etcd prefix in the test bed's etcd
//! (deleted when the test ends); each manager listens on a port of its own that it advertises, and says what it is
//! in `docker info`'s `SystemStatus` (`Role`, and `Primary` on a replica).

use std::net::TcpListener;
use std::time::Duration;

use mtswarm::cluster::etcd::Etcd;

use super::cluster::engine;
use super::*;

/// The replication TTL of the tests: short, so that a failover takes seconds.
pub const TTL: u64 = 3;

/// How long a manager may take to start and learn the election's outcome.
pub const ELECTED: Duration = Duration::from_secs(15);

/// How long a failover may take: Swarm classic's bound, the TTL, plus a few seconds for the replica to notice and
/// for etcd to expire the lease (it checks leases every half second).
pub fn failover_bound() -> Duration {
    Duration::from_secs(TTL + 5)
}

/// The test's etcd prefix, with node0 and node1 registered as `mtswarm join` would register them.
pub struct Replicated {
    prefix: String,
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime").block_on(future)
}

fn etcd() -> Etcd {
    Etcd::new(vec![testbed().etcd_addr().to_string()], Duration::from_secs(5))
}

impl Replicated {
    pub fn new(test: &Test) -> Replicated {
        let prefix = format!("mtswarm-test-{}", test.tag);
        for name in ["node0", "node1"] {
            let addr = &engine(name).addr;
            let key = format!("/{prefix}/docker/swarm/nodes/{addr}");
            block_on(etcd().put(key.as_bytes(), addr.as_bytes(), None)).expect("register an engine in etcd");
        }
        Replicated { prefix }
    }

    /// `etcd://HOST:PORT/PREFIX`: every manager's DISCOVERY.
    pub fn discovery(&self) -> String {
        format!("etcd://{}/{}", testbed().etcd_addr(), self.prefix)
    }

    /// The leader key's value, as etcd holds it now (Swarm classic's key).
    pub fn leader_key_value(&self) -> Option<String> {
        let key = format!("/{}/docker/swarm/leader", self.prefix);
        let kvs = block_on(etcd().range_prefix(key.as_bytes())).expect("read etcd");
        kvs.into_iter().find(|kv| kv.key == key.as_bytes()).map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
    }

    /// `GatewayOpts` of one more manager on a port of its own: `--replication --advertise 127.0.0.1:PORT`,
    /// listening there too, with `args` and `env` added.
    pub fn opts(&self, args: &[&str], env: &[(&str, &str)]) -> (GatewayOpts, String) {
        let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
        let advertise = format!("127.0.0.1:{port}");
        let ttl = TTL.to_string();
        let mut all: Vec<String> = ["-H", &format!("tcp://{advertise}"), "--replication", "--advertise", &advertise]
            .iter()
            .map(|s| s.to_string())
            .collect();
        all.extend(["--replication-ttl".to_string(), ttl]);
        all.extend(args.iter().map(|s| s.to_string()));
        let opts = GatewayOpts {
            engine: Some(self.discovery()),
            args: all,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..GatewayOpts::default()
        };
        (opts, advertise)
    }

    /// The first manager, with tenants alice and bob and an admin.
    pub fn first<'t>(&self, t: &'t Test, args: &[&str], env: &[(&str, &str)]) -> Manager<'t> {
        let (opts, advertise) = self.opts(args, env);
        Manager { gw: Gateway::start(t, opts), advertise }
    }

    /// A primary (the first manager, once elected) and a replica of it, each with `args` and `env`.
    pub fn pair<'t>(&self, t: &'t Test, args: &[&str], env: &[(&str, &str)]) -> (Manager<'t>, Manager<'t>) {
        let a = self.first(t, args, env);
        a.wait_primary(ELECTED);
        let b = self.another(&a, args, env);
        b.wait_replica_of(&a, ELECTED);
        (a, b)
    }

    /// One more manager of the same cluster, with the same tenants and tokens as `of`.
    pub fn another<'t>(&self, of: &Manager<'t>, args: &[&str], env: &[(&str, &str)]) -> Manager<'t> {
        let (opts, advertise) = self.opts(args, env);
        Manager { gw: of.gw.sibling(opts), advertise }
    }
}

impl Drop for Replicated {
    fn drop(&mut self) {
        let all = format!("/{}/", self.prefix);
        if let Err(e) = block_on(etcd().delete_prefix(all.as_bytes())) {
            eprintln!("cleanup: cannot delete etcd prefix {all}: {e}");
        }
    }
}

/// One manager of a replicated cluster.
pub struct Manager<'t> {
    pub gw: Gateway<'t>,
    /// `127.0.0.1:PORT`, as it advertises itself.
    pub advertise: String,
}

impl Manager<'_> {
    /// `Role` and `Primary` of the admin's `GET /info` (`None` while the manager does not answer).
    pub fn role(&self) -> Option<(String, Option<String>)> {
        let resp = std::panic::catch_unwind(|| self.gw.admin().http().get("/info")).ok()?;
        if resp.status != 200 {
            return None;
        }
        let status = resp.json()["SystemStatus"].as_array().cloned().unwrap_or_default();
        let field =
            |name: &str| status.iter().find(|p| p[0] == name).and_then(|p| p[1].as_str()).map(|s| s.trim().to_string());
        Some((field("Role")?, field("Primary")))
    }

    /// Waits until the manager says it is primary.
    pub fn wait_primary(&self, timeout: Duration) {
        poll(&format!("{} to be primary", self.advertise), timeout, || {
            self.role().filter(|(role, _)| role == "primary").map(drop)
        });
    }

    /// Waits until the manager says it is a replica of `primary`.
    pub fn wait_replica_of(&self, primary: &Manager, timeout: Duration) {
        let what = format!("{} to be a replica of {}", self.advertise, primary.advertise);
        poll(&what, timeout, || {
            self.role().filter(|(role, p)| role == "replica" && p.as_deref() == Some(&primary.advertise)).map(drop)
        });
    }
}
