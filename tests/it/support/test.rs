//! One test: a tag unique to it that every object name carries, a temporary directory, and a drop guard that
//! removes the test's containers, networks, volumes and images directly on the engines; and waiting for a
//! condition with a bound.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{engine_command, testbed, Gateway, GatewayOpts, TENANT_LABEL};

/// The label that tests put on objects they prune, so a prune only ever matches the test's own objects.
pub const TEST_LABEL_KEY: &str = "mtswarm.it";

/// One test's identity and drop guard. Declare it first in a test, so it drops last (after the gateway).
pub struct Test {
    /// Unique to this test in this run, e.g. `it-1f3a-7-ps-lists`. Every object name contains it.
    pub tag: String,
    dir: tempfile::TempDir,
    /// Tenant ids that gateways of this test were started with; cleanup removes objects labelled with them.
    tenants: Mutex<Vec<String>>,
}

impl Test {
    pub fn new() -> Test {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let thread = thread::current();
        let test_name = thread.name().unwrap_or("test");
        let short: String = test_name
            .rsplit("::")
            .next()
            .unwrap_or("test")
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(24)
            .collect();
        let tag = format!("it-{:x}-{n}-{}", std::process::id(), short.trim_end_matches('-'));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{tag}-"))
            .tempdir()
            .expect("create the test's temporary directory");
        Test { tag, dir, tenants: Mutex::new(Vec::new()) }
    }

    /// An object name unique to this test: `<tag>-<suffix>`.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.tag)
    }

    /// `mtswarm.it=<tag>`, the label value for `--label` and `--filter label=`.
    pub fn label(&self) -> String {
        format!("{TEST_LABEL_KEY}={}", self.tag)
    }

    /// The test's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path in the test's temporary directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A gateway with tenants `alice` and `bob` and an admin, in front of the default engine.
    pub fn gateway(&self) -> Gateway<'_> {
        Gateway::start(self, GatewayOpts::default())
    }

    pub(super) fn register_tenant(&self, id: &str) {
        self.tenants.lock().unwrap().push(id.to_string());
    }

    fn cleanup(&self) {
        let tenants = self.tenants.lock().map(|t| t.clone()).unwrap_or_default();
        let ours = |name: &str, tenant_label: &str| {
            name.contains(&self.tag) || (!tenant_label.is_empty() && tenants.iter().any(|t| t == tenant_label))
        };
        for engine in &testbed().engines {
            let list = |args: &[&str]| -> Option<Vec<Vec<String>>> {
                let out = engine_command(engine, args, None, &[], Duration::from_secs(30)).ok()?;
                if !out.success() {
                    return None;
                }
                Some(
                    out.stdout
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| l.split('\t').map(|f| f.trim().to_string()).collect())
                        .collect(),
                )
            };
            let remove = |args: &[&str], items: Vec<String>| {
                if items.is_empty() {
                    return;
                }
                let mut all: Vec<&str> = args.to_vec();
                all.extend(items.iter().map(String::as_str));
                let _ = engine_command(engine, &all, None, &[], Duration::from_secs(60));
            };
            let tenant_label = format!("{{{{.Label \"{TENANT_LABEL}\"}}}}");

            // Containers first: they hold networks, volumes and images.
            let format = format!("{{{{.ID}}}}\t{{{{.Names}}}}\t{tenant_label}");
            let Some(rows) = list(&["ps", "-a", "--no-trunc", "--format", &format]) else {
                // The engine is not up: nothing of ours can be on it.
                continue;
            };
            let ids = rows
                .iter()
                .filter(|r| r.len() >= 2 && ours(&r[1], r.get(2).map_or("", String::as_str)))
                .map(|r| r[0].clone())
                .collect();
            remove(&["rm", "-f", "-v"], ids);

            let format = format!("{{{{.ID}}}}\t{{{{.Name}}}}\t{tenant_label}");
            if let Some(rows) = list(&["network", "ls", "--no-trunc", "--format", &format]) {
                let ids = rows
                    .iter()
                    .filter(|r| r.len() >= 2 && ours(&r[1], r.get(2).map_or("", String::as_str)))
                    .map(|r| r[0].clone())
                    .collect();
                remove(&["network", "rm"], ids);
            }

            let format = format!("{{{{.Name}}}}\t{tenant_label}");
            if let Some(rows) = list(&["volume", "ls", "--format", &format]) {
                let names = rows
                    .iter()
                    .filter(|r| !r.is_empty() && ours(&r[0], r.get(1).map_or("", String::as_str)))
                    .map(|r| r[0].clone())
                    .collect();
                remove(&["volume", "rm", "-f"], names);
            }

            if let Some(rows) = list(&["images", "--format", "{{.Repository}}:{{.Tag}}"]) {
                let refs =
                    rows.iter().filter(|r| !r.is_empty() && r[0].contains(&self.tag)).map(|r| r[0].clone()).collect();
                remove(&["rmi", "-f"], refs);
            }
            let label = format!("label={}", self.label());
            if let Some(rows) = list(&["images", "-q", "--no-trunc", "--filter", &label]) {
                let ids = rows.iter().filter(|r| !r.is_empty()).map(|r| r[0].clone()).collect();
                remove(&["rmi", "-f"], ids);
            }
        }
    }
}

impl Drop for Test {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The current time as `docker events/logs --since` takes it: `seconds.nanoseconds` since the epoch.
pub fn timestamp(offset: Duration, later: bool) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let t = if later { now + offset } else { now - offset };
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// Polls `check` every 100 ms until it returns `Some`, or fails the test after `timeout` with `what`.
pub fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}
