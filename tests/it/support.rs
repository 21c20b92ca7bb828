//! The harness of the integration tests: the test bed, a running `mtswarm`, docker CLI clients with their own
//! config directories, raw HTTP, a pty, and a cleanup guard per test.
//!
//! Every test owns a `Test`: a tag unique to the test (test name, pid, counter) that every object name carries,
//! a temporary directory, and a drop guard that removes the test's containers, networks, volumes and images
//! directly on the engines. Tests therefore run in parallel against the shared engines.
//!
//! `MTSWARM_IT_DIRECT=1` points the clients at the engine itself instead of mtswarm: the suite then validates
//! its own expectations against dockerd. Tests of what only mtswarm does return early in that mode.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The docker CLI 28.x. `/usr/bin/docker` is Debian's 20.10 client, which is not the one under test.
const DOCKER: &str = "/usr/local/bin/docker";

/// How long one docker CLI command may take before the test fails: a hang in the gateway must show as a
/// failure, never as a stuck CI.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// How long mtswarm may take to print its `listening on` lines.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// The label that tests put on objects they prune, so a prune only ever matches the test's own objects.
pub const TEST_LABEL_KEY: &str = "mtswarm.it";

/// The label the gateway will put on every object it creates for a tenant (later issues).
const TENANT_LABEL_KEY: &str = "mtswarm.tenant";

// ---------------------------------------------------------------------------------------------------------
// The test bed
// ---------------------------------------------------------------------------------------------------------

/// The engines and the image that `scripts/testbed.sh up` provides.
pub struct Testbed {
    /// URL of the default engine (the one with a bridge network), as the docker CLI takes it.
    pub engine0: String,
    /// Its loopback TCP URL, when the test bed has one.
    pub engine0_tcp: Option<String>,
    /// Every engine's URL, for cleanup.
    pub engines: Vec<String>,
    /// The test image, present on every engine.
    pub image: String,
    /// The etcd's client URL (`http://HOST:PORT`).
    pub etcd: String,
}

/// Reads the test bed's env file once (`MTSWARM_TESTBED_ENV`, default `/run/mtswarm-testbed/env`), falling back
/// to the local engine, `busybox:latest` and the test bed's etcd address.
pub fn testbed() -> &'static Testbed {
    static TESTBED: OnceLock<Testbed> = OnceLock::new();
    TESTBED.get_or_init(|| {
        let path = std::env::var("MTSWARM_TESTBED_ENV").unwrap_or_else(|_| "/run/mtswarm-testbed/env".to_string());
        let vars = fs::read_to_string(&path).map(|text| parse_env_file(&text)).unwrap_or_default();
        let engine0 = vars.get("MTSWARM_ENGINE0").cloned().unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let mut engines: Vec<(u32, String)> = vars
            .iter()
            .filter_map(|(key, value)| {
                let n = key.strip_prefix("MTSWARM_ENGINE")?.parse::<u32>().ok()?;
                Some((n, value.clone()))
            })
            .collect();
        engines.sort();
        let mut engines: Vec<String> = engines.into_iter().map(|(_, url)| url).collect();
        if !engines.contains(&engine0) {
            engines.insert(0, engine0.clone());
        }
        Testbed {
            engine0_tcp: vars.get("MTSWARM_ENGINE0_TCP").cloned(),
            engine0,
            engines,
            image: vars.get("MTSWARM_TEST_IMAGE").cloned().unwrap_or_else(|| "busybox:latest".to_string()),
            etcd: vars.get("MTSWARM_ETCD").cloned().unwrap_or_else(|| "http://127.0.0.1:23790".to_string()),
        }
    })
}

fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let value = value.trim().trim_matches('"').trim_matches('\'');
            Some((key.trim().to_string(), value.to_string()))
        })
        .collect()
}

/// The test image (`busybox:latest` unless the test bed says otherwise).
pub fn image() -> &'static str {
    &testbed().image
}

/// True when the suite runs against the engine directly (`MTSWARM_IT_DIRECT=1`).
pub fn direct() -> bool {
    std::env::var("MTSWARM_IT_DIRECT").is_ok_and(|v| v == "1")
}

/// Returns true (and says so) when a test of mtswarm's own behaviour must be skipped in direct mode.
pub fn skip_in_direct_mode(what: &str) -> bool {
    if direct() {
        eprintln!("skipped in direct mode: {what} is mtswarm's own behaviour, not the engine's");
    }
    direct()
}

// ---------------------------------------------------------------------------------------------------------
// One test: its tag, its directory, its cleanup
// ---------------------------------------------------------------------------------------------------------

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

    fn register_tenant(&self, id: &str) {
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
            let tenant_label = format!("{{{{.Label \"{TENANT_LABEL_KEY}\"}}}}");

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

// ---------------------------------------------------------------------------------------------------------
// The gateway
// ---------------------------------------------------------------------------------------------------------

/// How to start mtswarm.
pub struct GatewayOpts {
    /// The engine URL (DISCOVERY); `None` means the test bed's default engine.
    pub engine: Option<String>,
    /// Short tenant names; each gets the id `<tag>-<name>` and a token in the tokens file.
    pub tenants: Vec<&'static str>,
    /// Also listen on a unix socket in the test's directory.
    pub unix_listener: bool,
    /// More environment for mtswarm.
    pub env: Vec<(String, String)>,
    /// More command-line arguments for `mtswarm manage` (e.g. the TLS flags), before the engine URL.
    pub args: Vec<String>,
}

impl Default for GatewayOpts {
    fn default() -> Self {
        GatewayOpts {
            engine: None,
            tenants: vec!["alice", "bob"],
            unix_listener: false,
            env: Vec::new(),
            args: Vec::new(),
        }
    }
}

/// A tenant's identity as the gateway knows it.
#[derive(Clone)]
struct Tenant {
    name: String,
    id: String,
    token: String,
}

/// A running `mtswarm manage` (or, in direct mode, the engine itself). Killed and reaped on drop; its stderr
/// is printed when the test fails.
pub struct Gateway<'t> {
    test: &'t Test,
    child: Option<Child>,
    host: String,
    unix_host: Option<String>,
    /// `http://HOST:PORT` of the metrics and health listener, when started with `--metrics-addr`.
    ops_url: Option<String>,
    tenants: Vec<Tenant>,
    admin: Tenant,
    dir: PathBuf,
    stderr_path: PathBuf,
    /// How the process was started, for [`Gateway::restart`].
    launch: Option<Launch>,
}

/// What `mtswarm manage` is started with.
struct Launch {
    engine: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    unix_listener: bool,
    tokens_file: PathBuf,
}

impl<'t> Gateway<'t> {
    pub fn start(test: &'t Test, opts: GatewayOpts) -> Gateway<'t> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = test.path(&format!("gw{}", N.fetch_add(1, Ordering::SeqCst)));
        fs::create_dir_all(&dir).expect("create the gateway's directory");

        let tenant =
            |name: &str| Tenant { name: name.to_string(), id: format!("{}-{name}", test.tag), token: secret() };
        let admin = tenant("admin");
        let tenants: Vec<Tenant> = opts.tenants.iter().map(|n| tenant(n)).collect();
        let all: Vec<&Tenant> = tenants.iter().chain(std::iter::once(&admin)).collect();
        for t in &all {
            test.register_tenant(&t.id);
        }
        let tokens = serde_json::json!({
            "tokens": all.iter().map(|t| serde_json::json!({"tenant": t.id, "token": t.token})).collect::<Vec<_>>()
        });
        let tokens_file = dir.join("tokens.json");
        fs::write(&tokens_file, tokens.to_string()).expect("write tokens.json");

        let stderr_path = dir.join("mtswarm.stderr");
        let mut gw = Gateway {
            test,
            child: None,
            host: String::new(),
            unix_host: None,
            ops_url: None,
            tenants,
            admin,
            dir: dir.clone(),
            stderr_path: stderr_path.clone(),
            launch: None,
        };
        if direct() {
            let tb = testbed();
            gw.host = tb.engine0_tcp.clone().unwrap_or_else(|| tb.engine0.clone());
            if opts.unix_listener {
                gw.unix_host = Some(tb.engine0.clone()).filter(|h| h.starts_with("unix://"));
            }
            return gw;
        }

        gw.launch = Some(Launch {
            engine: opts.engine.unwrap_or_else(|| testbed().engine0.clone()),
            args: opts.args,
            env: opts.env,
            unix_listener: opts.unix_listener,
            tokens_file,
        });
        gw.spawn();
        gw
    }

    /// Stops mtswarm and starts it again with the same configuration (on new ports: take new clients).
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.host.clear();
        self.unix_host = None;
        self.spawn();
    }

    /// Starts the process and waits for its `listening on` lines.
    fn spawn(&mut self) {
        let gw = self;
        let launch = gw.launch.as_ref().expect("a gateway process to start");
        let dir = gw.dir.clone();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtswarm"));
        cmd.arg("manage").args(["-H", "tcp://127.0.0.1:0"]);
        let mut listeners = 1;
        if launch.unix_listener {
            cmd.args(["-H", &format!("unix://{}", dir.join("mtswarm.sock").display())]);
            listeners += 1;
        }
        if launch.args.iter().any(|a| a == "--metrics-addr") {
            listeners += 1;
        }
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&gw.stderr_path)
            .expect("open the gateway's stderr file");
        cmd.args(&launch.args)
            .arg(&launch.engine)
            .current_dir(&dir)
            .env("SWARM_TOKENS_FILE", &launch.tokens_file)
            .env("SWARM_ADMIN_TENANT_ID", &gw.admin.id)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn mtswarm");
        let stdout = child.stdout.take().unwrap();
        gw.child = Some(child);

        // Read stdout on a thread for the whole life of the process, so it never blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut seen = Vec::new();
        let mut found = 0;
        while found < listeners {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "mtswarm did not print its {listeners} `listening on` lines within {STARTUP_TIMEOUT:?}; \
                     stdout so far: {seen:?}\n{}",
                    gw.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "mtswarm exited before listening ({:?}); stdout: {seen:?}\n{}",
                    gw.child.as_mut().and_then(|c| c.wait().ok()),
                    gw.stderr()
                ),
            };
            if let Some(url) = line.strip_prefix("mtswarm: listening on ") {
                let url = url.trim().to_string();
                if url.starts_with("tcp://") {
                    gw.host = url;
                } else {
                    gw.unix_host = Some(url);
                }
                found += 1;
            } else if let Some(url) = line.strip_prefix("mtswarm: metrics and health on ") {
                gw.ops_url = Some(url.trim().to_string());
                found += 1;
            }
            seen.push(line);
        }
        assert!(!gw.host.is_empty(), "mtswarm printed no tcp listener: {seen:?}\n{}", gw.stderr());
    }

    /// `tcp://127.0.0.1:PORT` of mtswarm (in direct mode: the engine).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `unix:///...` of mtswarm's unix listener, when started with one.
    pub fn unix_host(&self) -> &str {
        self.unix_host.as_deref().expect("the gateway has no unix listener")
    }

    /// `http://HOST:PORT` of the metrics and health listener (started with `--metrics-addr`).
    pub fn ops_url(&self) -> &str {
        self.ops_url.as_deref().expect("the gateway was not started with --metrics-addr")
    }

    /// Raw HTTP to the metrics and health listener, without credentials (it asks for none).
    pub fn ops(&self) -> Http {
        let addr = self.ops_url().trim_start_matches("http://");
        Http { target: Target::Tcp(addr.to_string()), headers: Vec::new() }
    }

    /// The mtswarm process's id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running mtswarm process").id()
    }

    /// A docker client of tenant `name` (one of `GatewayOpts::tenants`).
    pub fn tenant(&self, name: &str) -> Client {
        let tenant = self
            .tenants
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("tenant {name} was not in GatewayOpts::tenants"))
            .clone();
        self.client(tenant)
    }

    /// The admin tenant's docker client.
    pub fn admin(&self) -> Client {
        self.client(self.admin.clone())
    }

    /// The tenant id of tenant `name`.
    pub fn tenant_id(&self, name: &str) -> String {
        format!("{}-{name}", self.test.tag)
    }

    fn client(&self, tenant: Tenant) -> Client {
        let config = self.dir.join(format!("config-{}", tenant.name));
        fs::create_dir_all(&config).expect("create a client config dir");
        let json = serde_json::json!({
            "HttpHeaders": {"X-Auth-Token": tenant.token, "X-Auth-TenantId": tenant.id}
        });
        fs::write(config.join("config.json"), json.to_string()).expect("write config.json");
        Client { host: self.host.clone(), config, tenant_id: tenant.id, token: tenant.token }
    }

    /// True while the mtswarm process runs (always true in direct mode).
    pub fn alive(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// mtswarm's stderr so far, framed for a failure message.
    pub fn stderr(&self) -> String {
        let text = fs::read_to_string(&self.stderr_path).unwrap_or_default();
        format!("----- mtswarm stderr ({}) -----\n{text}----- end of mtswarm stderr -----", self.host)
    }
}

impl Drop for Gateway<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let exited = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            if thread::panicking() || std::env::var_os("MTSWARM_IT_SHOW_LOGS").is_some() {
                if let Some(status) = exited {
                    eprintln!("mtswarm had exited by itself: {status}");
                }
                eprintln!("{}", self.stderr());
            }
        }
    }
}

/// A secret token that no other test guesses.
fn secret() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    static N: AtomicUsize = AtomicUsize::new(0);
    let mut out = String::new();
    for _ in 0..2 {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(N.fetch_add(1, Ordering::SeqCst));
        h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------------------------------------

/// The result of one finished command.
pub struct Output {
    pub desc: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.desc, self.code, self.stdout, self.stderr
        )
    }
}

/// Options for one command.
#[derive(Default)]
pub struct RunOpts {
    /// Bytes piped to stdin, which is then closed; `None` gives `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// More environment.
    pub env: Vec<(String, String)>,
    /// Defaults to `CLI_TIMEOUT`.
    pub timeout: Option<Duration>,
}

fn exit_code(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// Kills the process group that `child` leads (a pty's shell and the docker CLI in it too), then reaps it.
fn kill_tree(child: &mut Child) {
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).stderr(Stdio::null()).status();
    let _ = child.kill();
    let _ = child.wait();
}

fn reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Runs `cmd` to its end with a deadline; `Err` (with what it printed) when it had to be killed.
fn run_command(mut cmd: Command, desc: String, opts: RunOpts) -> Result<Output, String> {
    let timeout = opts.timeout.unwrap_or(CLI_TIMEOUT);
    cmd.envs(opts.env.iter().map(|(k, v)| (k, v)))
        .stdin(if opts.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot spawn `{desc}`: {e}"))?;
    if let Some(input) = opts.stdin {
        let mut stdin = child.stdin.take().unwrap();
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => {
                kill_tree(&mut child);
                break None;
            }
        }
    };
    let stdout_bytes = out.join().unwrap_or_default();
    let output = Output {
        desc,
        code: status.and_then(exit_code),
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    };
    match status {
        Some(_) => Ok(output),
        None => Err(format!("timed out after {timeout:?} and killed: {output}")),
    }
}

fn docker_command(host: &str, config: Option<&Path>, args: &[&str]) -> (Command, String) {
    docker_command_of(DOCKER, host, config, args)
}

fn docker_command_of(cli: &str, host: &str, config: Option<&Path>, args: &[&str]) -> (Command, String) {
    let mut cmd = Command::new(cli);
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_API_VERSION",
        "DOCKER_CUSTOM_HEADERS",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_CONFIG",
        "DOCKER_BUILDKIT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DOCKER_CLI_HINTS", "false").args(["-H", host]);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.args(args);
    (cmd, format!("{cli} -H {host} {}", args.join(" ")))
}

fn engine_command(
    engine: &str,
    args: &[&str],
    stdin: Option<Vec<u8>>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Output, String> {
    let (cmd, desc) = docker_command(engine, None, args);
    run_command(cmd, desc, RunOpts { stdin, env: env.to_vec(), timeout: Some(timeout) })
}

/// The docker CLI straight against the default engine, for setup checks (never through mtswarm).
pub fn engine_docker(args: &[&str]) -> Output {
    engine_command(&testbed().engine0, args, None, &[], CLI_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Like `engine_docker`, asserting success and returning stdout trimmed.
pub fn engine_ok(args: &[&str]) -> String {
    let out = engine_docker(args);
    assert!(out.success(), "engine command failed: {out}");
    out.stdout.trim().to_string()
}

/// Quotes `s` for `sh -c`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------------------------------
// A docker CLI client of one tenant
// ---------------------------------------------------------------------------------------------------------

/// The docker CLI 28 as one tenant: `-H <gateway> --config <its own dir with the auth headers>`.
#[derive(Clone)]
pub struct Client {
    host: String,
    config: PathBuf,
    pub tenant_id: String,
    token: String,
}

impl Client {
    /// The same tenant through another listener (e.g. the gateway's unix socket).
    pub fn via(&self, host: &str) -> Client {
        Client { host: host.to_string(), ..self.clone() }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs `docker ARGS` with options; fails the test only when the command has to be killed.
    pub fn run(&self, args: &[&str], opts: RunOpts) -> Output {
        let (cmd, desc) = docker_command(&self.host, Some(&self.config), args);
        run_command(cmd, desc, opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `ARGS` with another docker CLI binary (e.g. Debian's 20.10 client, `/usr/bin/docker`).
    pub fn run_cli(&self, cli: &str, args: &[&str], opts: RunOpts) -> Output {
        let (cmd, desc) = docker_command_of(cli, &self.host, Some(&self.config), args);
        run_command(cmd, desc, opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// This tenant's docker CLI configuration directory (its `config.json` holds the auth headers).
    pub fn config_dir(&self) -> &Path {
        &self.config
    }

    /// This tenant's token, as its `config.json` sends it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Runs `docker ARGS`.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.run(args, RunOpts::default())
    }

    /// Runs `docker ARGS` with `input` piped to stdin.
    pub fn docker_stdin(&self, args: &[&str], input: impl Into<Vec<u8>>) -> Output {
        self.run(args, RunOpts { stdin: Some(input.into()), ..RunOpts::default() })
    }

    /// Asserts that `docker ARGS` succeeds; returns its stdout trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.success(), "expected success: {out}");
        out.stdout.trim().to_string()
    }

    /// Asserts that `docker ARGS` fails; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(!out.success(), "expected failure: {out}");
        out.stderr
    }

    /// Runs `docker ARGS` in a pty (`script`), writing `input` to the terminal. For `-it`.
    pub fn pty(&self, args: &[&str], input: &str) -> Output {
        let mut line = format!(
            "{} -H {} --config {}",
            DOCKER,
            shell_quote(&self.host),
            shell_quote(&self.config.display().to_string())
        );
        for arg in args {
            line.push(' ');
            line.push_str(&shell_quote(arg));
        }
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .env("TERM", "xterm")
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        let desc = format!("script -qec \"{line}\" /dev/null");
        run_command(cmd, desc, RunOpts { stdin: Some(input.as_bytes().to_vec()), ..RunOpts::default() })
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `docker ARGS` in the background, for streams (events, logs -f, attach, stats).
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        let (mut cmd, desc) = docker_command(&self.host, Some(&self.config), args);
        Spawned::start(&mut cmd, desc, false)
    }

    /// Like `spawn`, with a stdin pipe that stays open until `Spawned::close_stdin` (or the end).
    pub fn spawn_with_stdin(&self, args: &[&str]) -> Spawned {
        let (mut cmd, desc) = docker_command(&self.host, Some(&self.config), args);
        Spawned::start(&mut cmd, desc, true)
    }

    /// Raw HTTP to the same endpoint with this tenant's headers.
    pub fn http(&self) -> Http {
        Http {
            target: Target::parse(&self.host),
            headers: vec![
                ("X-Auth-Token".to_string(), self.token.clone()),
                ("X-Auth-TenantId".to_string(), self.tenant_id.clone()),
            ],
        }
    }
}

/// A docker CLI running in the background, its stdout read line by line.
pub struct Spawned {
    desc: String,
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Spawned {
    fn start(cmd: &mut Command, desc: String, with_stdin: bool) -> Spawned {
        cmd.stdin(if with_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn `{desc}`: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string();
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Spawned { desc, child, stdin, lines, seen: Vec::new(), stderr }
    }

    /// Starts the real `mtswarm ARGS` in the background, for commands that run until stopped (`join`).
    pub fn mtswarm(args: &[&str]) -> Spawned {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtswarm"));
        cmd.args(args);
        Spawned::start(&mut cmd, format!("mtswarm {}", args.join(" ")), false)
    }

    /// Sends SIGTERM to the command itself, as a service manager stopping it would.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(status.as_ref().is_ok_and(|s| s.success()), "`{}`: kill -TERM: {status:?}", self.desc);
    }

    /// Writes to the command's stdin (see `Client::spawn_with_stdin`).
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("spawned without a stdin pipe");
        stdin
            .write_all(bytes)
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("`{}`: writing stdin: {e}", self.desc));
    }

    /// Closes the command's stdin: it sees EOF.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits for a stdout line matching `pred`; fails the test after `timeout` or when stdout ends first.
    pub fn expect_line(&mut self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    kill_tree(&mut self.child);
                    panic!(
                        "`{}`: no line {what} within {timeout:?}; lines: {:?}; stderr: {}",
                        self.desc,
                        self.seen,
                        self.stderr_text()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "`{}` ended ({status:?}) before a line {what}; lines: {:?}; stderr: {}",
                        self.desc,
                        self.seen,
                        self.stderr_text()
                    )
                }
            }
        }
    }

    /// Waits for the command to end by itself (failing the test after `timeout`); returns its output.
    pub fn finish(mut self, timeout: Duration) -> Output {
        self.close_stdin();
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => {
                    kill_tree(&mut self.child);
                    while let Ok(line) = self.lines.try_recv() {
                        self.seen.push(line);
                    }
                    panic!(
                        "`{}` did not end within {timeout:?}; lines: {:?}; stderr: {}",
                        self.desc,
                        self.seen,
                        self.stderr_text()
                    );
                }
            }
        };
        // The reader thread ends at EOF, which follows the exit.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(line);
        }
        let stdout = self.seen.join("\n");
        Output {
            desc: self.desc.clone(),
            code: exit_code(status),
            stdout_bytes: stdout.clone().into_bytes(),
            stdout,
            stderr: self.stderr_text(),
        }
    }

    /// Kills the command (as a user's Ctrl-C or a dropped connection would end it).
    pub fn kill(&mut self) {
        kill_tree(&mut self.child);
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        kill_tree(&mut self.child);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------------------

/// Where raw HTTP goes.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(String),
    Unix(PathBuf),
}

impl Target {
    pub fn parse(url: &str) -> Target {
        if let Some(addr) = url.strip_prefix("tcp://") {
            Target::Tcp(addr.trim_end_matches('/').to_string())
        } else if let Some(path) = url.strip_prefix("unix://") {
            Target::Unix(PathBuf::from(path))
        } else {
            panic!("unsupported URL {url}")
        }
    }

    fn connect(&self) -> Conn {
        let conn = match self {
            Target::Tcp(addr) => Conn::Tcp(TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))),
            Target::Unix(path) => {
                Conn::Unix(UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display())))
            }
        };
        conn.set_read_timeout(Some(CLI_TIMEOUT));
        conn
    }
}

/// A client connection, TCP or unix.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    pub fn set_read_timeout(&self, timeout: Option<Duration>) {
        let _ = match self {
            Conn::Tcp(s) => s.set_read_timeout(timeout),
            Conn::Unix(s) => s.set_read_timeout(timeout),
        };
    }

    /// Half-closes: shuts down our write side and keeps reading.
    pub fn shutdown_write(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush(),
            Conn::Unix(s) => s.flush(),
        }
    }
}

/// One HTTP response, read to the end of the connection.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// False when the body ended before its Content-Length or its last chunk: the connection was cut.
    pub complete: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {self}"))
    }

    /// The error message: `message` of a Docker JSON error, else the body as text.
    pub fn message(&self) -> String {
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(v) => v["message"].as_str().map(str::to_string).unwrap_or_else(|| self.text()),
            Err(_) => self.text().trim().to_string(),
        }
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {:?} complete={} body={:?}", self.status, self.headers, self.complete, self.text())
    }
}

/// A hijacked connection after the response head (101, or a 200 raw stream).
pub struct Hijacked {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub conn: Conn,
    /// Bytes read past the head.
    pub pending: Vec<u8>,
}

impl Hijacked {
    /// Reads the raw stream until the other side closes it.
    pub fn read_to_end(mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.pending);
        self.conn.read_to_end(&mut out).unwrap_or_else(|e| {
            panic!("reading the hijacked stream: {e} (read so far: {:?})", String::from_utf8_lossy(&out))
        });
        out
    }

    /// When the answer was not a hijack (an error such as 404), reads its body as the headers frame it:
    /// by Content-Length, by chunks, or (dockerd's way for these errors) until the connection closes.
    pub fn into_response(mut self) -> Response {
        let header = |name: &str| self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut raw = std::mem::take(&mut self.pending);
        let mut buf = [0u8; 8192];
        let mut read_more = |raw: &mut Vec<u8>| -> bool {
            match self.conn.read(&mut buf) {
                Ok(0) => false,
                Ok(n) => {
                    raw.extend_from_slice(&buf[..n]);
                    true
                }
                Err(e) => panic!("reading the body of a {} answer: {e}", self.status),
            }
        };
        let (body, complete) = if let Some(len) = header("content-length") {
            let len: usize = len.parse().expect("a numeric Content-Length");
            while raw.len() < len && read_more(&mut raw) {}
            (raw[..len.min(raw.len())].to_vec(), raw.len() >= len)
        } else if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            loop {
                let (body, complete) = dechunk(&raw);
                if complete || !read_more(&mut raw) {
                    break (body, complete);
                }
            }
        } else {
            while read_more(&mut raw) {}
            (raw, true)
        };
        Response { status: self.status, headers: self.headers.clone(), body, complete }
    }
}

/// Splits a multiplexed (non-TTY) stream into (stream number, payload) frames.
pub fn demux(raw: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut rest = raw;
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        assert!(rest.len() >= 8 + len, "truncated frame; the whole stream: {:?}", String::from_utf8_lossy(raw));
        frames.push((rest[0], rest[8..8 + len].to_vec()));
        rest = &rest[8 + len..];
    }
    assert!(
        rest.is_empty(),
        "trailing bytes after the last frame; the whole stream: {:?}",
        String::from_utf8_lossy(raw)
    );
    frames
}

/// Raw HTTP/1.1 with a tenant's headers.
pub struct Http {
    target: Target,
    headers: Vec<(String, String)>,
}

impl Http {
    fn head_bytes(&self, method: &str, path: &str, extra: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: mtswarm-it\r\nUser-Agent: mtswarm-it\r\n");
        for (k, v) in &self.headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(body) = body {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        if let Some(body) = body {
            bytes.extend_from_slice(body);
        }
        bytes
    }

    /// Sends one request with `Connection: close` and reads the whole response.
    pub fn request(&self, method: &str, path: &str, extra: &[(&str, &str)], body: Option<&[u8]>) -> Response {
        let mut headers = vec![("Connection", "close")];
        headers.extend_from_slice(extra);
        let mut conn = self.target.connect();
        conn.write_all(&self.head_bytes(method, path, &headers, body))
            .unwrap_or_else(|e| panic!("{method} {path}: write: {e}"));
        let mut raw = Vec::new();
        if let Err(e) = conn.read_to_end(&mut raw) {
            use std::io::ErrorKind::{TimedOut, WouldBlock};
            // A reset after some bytes is a cut connection, which `Response::complete` reports; silence is a hang.
            if raw.is_empty() || matches!(e.kind(), WouldBlock | TimedOut) {
                panic!("{method} {path}: read: {e}; got so far: {:?}", String::from_utf8_lossy(&raw));
            }
        }
        parse_response(&raw, method == "HEAD")
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; raw response: {:?}", String::from_utf8_lossy(&raw)))
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None)
    }

    pub fn head(&self, path: &str) -> Response {
        self.request("HEAD", path, &[], None)
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        let body = body.to_string();
        self.request("POST", path, &[("Content-Type", "application/json")], Some(body.as_bytes()))
    }

    /// Sends a bodiless request with these headers (a websocket handshake) and returns after the response head.
    pub fn upgrade(&self, method: &str, path: &str, extra: &[(&str, &str)]) -> Hijacked {
        let mut conn = self.target.connect();
        conn.write_all(&self.head_bytes(method, path, extra, None))
            .unwrap_or_else(|e| panic!("{method} {path}: write: {e}"));
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            match conn.read(&mut byte) {
                Ok(0) => {
                    panic!("{method} {path}: closed inside the response head: {:?}", String::from_utf8_lossy(&raw))
                }
                Ok(_) => raw.push(byte[0]),
                Err(e) => panic!("{method} {path}: reading the head: {e}"),
            }
        }
        let (status, headers) = parse_head(&raw).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Hijacked { status, headers, conn, pending: Vec::new() }
    }

    /// Sends a request that hijacks the connection; returns after the response head.
    /// `upgrade` adds `Connection: Upgrade` and `Upgrade: tcp` (as the CLI does); without it, the old raw form.
    pub fn hijack(&self, method: &str, path: &str, body: &serde_json::Value, upgrade: bool) -> Hijacked {
        let body = body.to_string();
        let mut extra = vec![("Content-Type", "application/json")];
        if upgrade {
            extra.push(("Connection", "Upgrade"));
            extra.push(("Upgrade", "tcp"));
        }
        let mut conn = self.target.connect();
        conn.write_all(&self.head_bytes(method, path, &extra, Some(body.as_bytes())))
            .unwrap_or_else(|e| panic!("{method} {path}: write: {e}"));
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            match conn.read(&mut byte) {
                Ok(0) => panic!(
                    "{method} {path}: connection closed inside the response head: {:?}",
                    String::from_utf8_lossy(&raw)
                ),
                Ok(_) => raw.push(byte[0]),
                Err(e) => panic!("{method} {path}: reading the head: {e}"),
            }
        }
        let (status, headers) = parse_head(&raw).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Hijacked { status, headers, conn, pending: Vec::new() }
    }
}

fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 status line: {status_line:?}"));
    }
    let status = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers))
}

fn parse_response(raw: &[u8], head_request: bool) -> Result<Response, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of the response head")?;
    let (status, headers) = parse_head(&raw[..end + 4])?;
    let rest = &raw[end + 4..];
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let no_body = head_request || status / 100 == 1 || status == 204 || status == 304;
    let (body, complete) = if no_body {
        (Vec::new(), true)
    } else if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        dechunk(rest)
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| format!("bad Content-Length {len:?}"))?;
        (rest[..len.min(rest.len())].to_vec(), rest.len() >= len)
    } else {
        (rest.to_vec(), true)
    };
    Ok(Response { status, headers, body, complete })
}

/// Decodes a chunked body; `complete` is whether the last (empty) chunk arrived.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
            return (body, false);
        };
        raw = &raw[eol + 2..];
        if size == 0 {
            return (body, true);
        }
        if raw.len() < size + 2 {
            body.extend_from_slice(&raw[..size.min(raw.len())]);
            return (body, false);
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

// ---------------------------------------------------------------------------------------------------------
// Small assertions
// ---------------------------------------------------------------------------------------------------------

/// The lines of `text`, trimmed, without empty ones (and without a pty's carriage returns).
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_matches(|c: char| c == '\r' || c.is_whitespace()).to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The lines of `text`, sorted.
pub fn sorted_lines(text: &str) -> Vec<String> {
    let mut v = lines(text);
    v.sort();
    v
}

/// Asserts that `items` holds `expected` in that order, other items allowed in between.
pub fn assert_subsequence(items: &[String], expected: &[&str]) {
    let mut it = items.iter();
    for want in expected {
        assert!(
            it.any(|item| item == want),
            "expected {expected:?} in this order within {items:?}; missing {want:?} (in order)"
        );
    }
}

/// Asserts that `s` is a full 64-hex-digit id.
pub fn assert_full_id(s: &str) {
    let id = s.strip_prefix("sha256:").unwrap_or(s);
    assert!(id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()), "not a 64-hex-digit id: {s:?}");
}

// ---------------------------------------------------------------------------------------------------------
// Clients with chosen credentials (for the authentication tests, `auth.rs` and `keystone.rs`)
// ---------------------------------------------------------------------------------------------------------

impl Gateway<'_> {
    /// A docker client whose `config.json` carries exactly the headers given: `X-Auth-Token` if `token`,
    /// `X-Auth-TenantId` if `tenant_id`, and no `HttpHeaders` at all when both are `None`. `name` names its
    /// config directory, so two clients of one gateway need two names. A tenant id given is cleaned up after.
    pub fn client_with(&self, name: &str, token: Option<&str>, tenant_id: Option<&str>) -> Client {
        let config = self.dir.join(format!("config-custom-{name}"));
        fs::create_dir_all(&config).expect("create a client config dir");
        let mut headers = serde_json::Map::new();
        if let Some(token) = token {
            headers.insert("X-Auth-Token".to_string(), token.into());
        }
        if let Some(id) = tenant_id {
            headers.insert("X-Auth-TenantId".to_string(), id.into());
            self.test.register_tenant(id);
        }
        let json =
            if headers.is_empty() { serde_json::json!({}) } else { serde_json::json!({ "HttpHeaders": headers }) };
        fs::write(config.join("config.json"), json.to_string()).expect("write config.json");
        Client {
            host: self.host.clone(),
            config,
            tenant_id: tenant_id.unwrap_or_default().to_string(),
            token: token.unwrap_or_default().to_string(),
        }
    }

    /// The token the gateway's tokens file holds for tenant `name` (one of `GatewayOpts::tenants`).
    pub fn token_of(&self, name: &str) -> String {
        let tenant = self.tenants.iter().chain(std::iter::once(&self.admin)).find(|t| t.name == name);
        tenant.unwrap_or_else(|| panic!("tenant {name} was not in GatewayOpts::tenants")).token.clone()
    }

    /// mtswarm's stderr so far, unframed.
    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Http {
    /// Raw HTTP to `host` (`tcp://...` or `unix://...`) with exactly `headers` (besides Host and User-Agent).
    pub fn with_headers(host: &str, headers: &[(&str, &str)]) -> Http {
        Http {
            target: Target::parse(host),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }
}

/// The docker CLI straight against the engine at `engine` (a URL), for the cluster tests, which look at where
/// containers landed on each engine. `Err` only when the command had to be killed.
pub fn engine_docker_at(engine: &str, args: &[&str]) -> Result<Output, String> {
    engine_command(engine, args, None, &[], CLI_TIMEOUT)
}
