//! Discovery against the real test bed: the real `mtswarm join` registering in the test bed's etcd
//! (`scripts/testbed.sh up etcd`), listed by `Discovery::engines` as the cluster will list it, and a discovery
//! file that changes under it. Each test works under its own etcd prefix, deleted when the test ends.

use std::fs;
use std::future::Future;
use std::time::{Duration, Instant};

use mtswarm::cluster::etcd::Etcd;
use mtswarm::cluster::{Discovery, DiscoveryError};

use crate::support::auth::mtswarm;
use crate::support::{it_test, poll, testbed, Spawned, Test};

/// The TTL the tests' joins register with; short, so the expiry test is quick.
const TTL: u64 = 4;

/// Runs one discovery call to its end: the tests are plain threads, the library is async.
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime").block_on(future)
}

/// The engines that `discovery` lists now, as `tcp://host:port` strings.
fn engines(discovery: &Discovery) -> Result<Vec<String>, DiscoveryError> {
    Ok(block_on(discovery.engines())?.iter().map(ToString::to_string).collect())
}

/// A test's own prefix in the test bed's etcd; everything under it is deleted when the test ends.
struct Prefix {
    endpoint: String,
    prefix: String,
}

impl Prefix {
    fn new(test: &Test) -> Prefix {
        let endpoint = testbed().etcd_addr().to_string();
        Prefix { endpoint, prefix: format!("mtswarm-test-{}", test.tag) }
    }

    /// `etcd://HOST:PORT/PREFIX`, what `join` and `manage` take.
    fn url(&self) -> String {
        format!("etcd://{}/{}", self.endpoint, self.prefix)
    }

    fn discovery(&self) -> Discovery {
        Discovery::parse(&self.url()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn etcd(&self) -> Etcd {
        Etcd::new(vec![self.endpoint.clone()], Duration::from_secs(5))
    }

    /// Starts `mtswarm join` advertising `advertise`, renewing every second.
    fn join(&self, advertise: &str) -> Spawned {
        let ttl = TTL.to_string();
        Spawned::mtswarm(&["join", "--advertise", advertise, "--heartbeat", "1", "--ttl", &ttl, &self.url()])
    }

    /// Waits until the engines listed are exactly `expected`.
    fn wait_for(&self, what: &str, timeout: Duration, expected: &[&str]) {
        let discovery = self.discovery();
        poll(what, timeout, || engines(&discovery).ok().filter(|list| list == expected).map(drop));
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let all = format!("/{}/", self.prefix);
        if let Err(e) = block_on(self.etcd().delete_prefix(all.as_bytes())) {
            eprintln!("cleanup: cannot delete etcd prefix {all}: {e}");
        }
    }
}

it_test!(join_registers_and_leaves_at_once_on_sigterm, |test| {
    let prefix = Prefix::new(&test);
    let join = prefix.join("10.255.0.1:2375");
    prefix.wait_for("join to register", Duration::from_secs(10), &["tcp://10.255.0.1:2375"]);
    // The key is Swarm classic's, with the address as its value.
    let kvs = block_on(prefix.etcd().range_prefix(format!("/{}/", prefix.prefix).as_bytes())).expect("list etcd");
    let kvs: Vec<(String, String)> = kvs
        .iter()
        .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), String::from_utf8_lossy(&kv.value).into_owned()))
        .collect();
    let key = format!("/{}/docker/swarm/nodes/10.255.0.1:2375", prefix.prefix);
    assert_eq!(kvs, [(key, "10.255.0.1:2375".to_string())]);

    join.terminate();
    let out = join.finish(Duration::from_secs(15));
    assert_eq!(out.code, Some(0), "{out}");
    // Gone at once, not when the lease runs out.
    assert_eq!(engines(&prefix.discovery()).expect("list etcd"), Vec::<String>::new(), "{out}");
});

it_test!(a_killed_join_leaves_when_its_ttl_runs_out, |test| {
    let prefix = Prefix::new(&test);
    let mut join = prefix.join("10.255.0.2:2375");
    prefix.wait_for("join to register", Duration::from_secs(10), &["tcp://10.255.0.2:2375"]);

    join.kill();
    let killed = Instant::now();
    // The lease was renewed less than a heartbeat ago: the engine is still listed.
    assert_eq!(engines(&prefix.discovery()).expect("list etcd"), ["tcp://10.255.0.2:2375"]);
    prefix.wait_for("the registration to expire", Duration::from_secs(TTL + 10), &[]);
    let after = killed.elapsed();
    assert!(after >= Duration::from_secs(TTL - 2), "the key went {after:?} after the kill, before its TTL of {TTL} s");
});

it_test!(join_registers_again_when_its_lease_is_lost, |test| {
    let prefix = Prefix::new(&test);
    let _join = prefix.join("10.255.0.3:2375");
    prefix.wait_for("join to register", Duration::from_secs(10), &["tcp://10.255.0.3:2375"]);

    // Revoking the lease is what an etcd restarted without its data does to join: lease and key are gone.
    let etcd = prefix.etcd();
    let dir = format!("/{}/", prefix.prefix);
    let lease = block_on(etcd.range_prefix(dir.as_bytes())).expect("list etcd")[0].lease;
    assert_ne!(lease, 0, "the key hangs on a lease");
    block_on(etcd.revoke(lease)).expect("revoke the lease");
    assert_eq!(engines(&prefix.discovery()).expect("list etcd"), Vec::<String>::new());

    prefix.wait_for("join to register again", Duration::from_secs(10), &["tcp://10.255.0.3:2375"]);
    let again = block_on(etcd.range_prefix(dir.as_bytes())).expect("list etcd")[0].lease;
    assert!(again != 0 && again != lease, "a new lease: {again} (was {lease})");
});

it_test!(join_takes_etcd_discovery_only, |test| {
    for discovery in ["file:///etc/engines", "nodes://a:1,b:2", "tcp://127.0.0.1:2375"] {
        let out = mtswarm(&["join", "--advertise", "10.255.0.4:2375", discovery], test.dir(), &[]);
        assert_eq!(out.code, Some(1), "{out}");
        assert!(out.stderr.contains("mtswarm join registers engines in etcd"), "{out}");
    }
    let out = mtswarm(
        &["join", "--advertise", "10.255.0.4:2375", "--ttl", "5", "--heartbeat", "5", "etcd://h:1/p"],
        test.dir(),
        &[],
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("--ttl 5 must be more than --heartbeat 5"), "{out}");
});

#[test]
fn an_unreachable_etcd_is_an_error_naming_it() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let url = format!("etcd://127.0.0.1:{port}/p");
    let err = engines(&Discovery::parse(&url).expect("a valid URL")).expect_err("nothing listens").to_string();
    let want = format!("{url}: no etcd endpoint answered /v3/kv/range: 127.0.0.1:{port}: ");
    assert!(err.starts_with(&want), "{err}");
}

#[test]
fn a_hung_etcd_is_an_error_within_the_timeout() {
    // A fake, because the shared etcd cannot be made to hang: a socket that the kernel accepts connections
    // on (into its backlog) and that never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("etcd://{}/p", hung.local_addr().expect("its address"));
    let started = Instant::now();
    let err = engines(&Discovery::parse(&url).expect("a valid URL")).expect_err("no answer").to_string();
    assert!(err.contains("no answer within 3 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

it_test!(file_discovery_reads_the_file_at_each_call, |test| {
    let path = test.path("engines");
    let discovery = Discovery::parse(&format!("file://{}", path.display())).expect("a valid URL");
    assert!(discovery.follows());

    let err = engines(&discovery).expect_err("the file is not there yet").to_string();
    assert!(err.contains(&format!("cannot read the discovery file {}", path.display())), "{err}");

    fs::write(&path, "# the lab\n10.0.0.[10:11]:2375\n10.0.0.20:2375  # the new one\n").expect("write");
    assert_eq!(
        engines(&discovery).expect("read the file"),
        ["tcp://10.0.0.10:2375", "tcp://10.0.0.11:2375", "tcp://10.0.0.20:2375"]
    );

    fs::write(&path, "10.0.0.20:2375\n10.0.0.11:2375\n").expect("rewrite");
    assert_eq!(engines(&discovery).expect("read the file"), ["tcp://10.0.0.20:2375", "tcp://10.0.0.11:2375"]);

    fs::write(&path, "10.0.0.20:2375\n10.0.0.[12:11]:2375\n").expect("rewrite");
    let err = engines(&discovery).expect_err("a bad range").to_string();
    assert!(err.starts_with(&format!("{}:2: 10.0.0.[12:11]:2375: [12:11] goes down", path.display())), "{err}");

    fs::write(&path, "").expect("empty");
    assert_eq!(engines(&discovery).expect("read the file"), Vec::<String>::new());
});
