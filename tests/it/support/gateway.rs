//! A running `mtswarm manage` in front of an engine (or, in direct mode, the engine itself), with a tokens file
//! of its tenants and an admin, and docker clients of those tenants or with chosen credentials.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{direct, testbed, Client, Http, Target, Test};

/// How long mtswarm may take to print its `listening on` lines.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

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

impl Launch {
    fn new(opts: GatewayOpts, tokens_file: PathBuf) -> Launch {
        Launch {
            engine: opts.engine.unwrap_or_else(|| testbed().engine0.clone()),
            args: opts.args,
            env: opts.env,
            unix_listener: opts.unix_listener,
            tokens_file,
        }
    }
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

        gw.launch = Some(Launch::new(opts, tokens_file));
        gw.spawn();
        gw
    }

    /// Another `mtswarm manage` with the same tenants, tokens and admin (the tokens file is shared): another manager
    /// of the same cluster, started with `opts`' engine, flags and env (its tenants are this one's).
    pub fn sibling(&self, opts: GatewayOpts) -> Gateway<'t> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = self.dir.with_file_name(format!(
            "{}-sibling{}",
            self.dir.file_name().and_then(|n| n.to_str()).unwrap_or("gw"),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).expect("create the gateway's directory");
        let tokens_file = self.launch.as_ref().expect("a gateway process, not direct mode").tokens_file.clone();
        let mut gw = Gateway {
            test: self.test,
            child: None,
            host: String::new(),
            unix_host: None,
            ops_url: None,
            tenants: self.tenants.clone(),
            admin: self.admin.clone(),
            dir: dir.clone(),
            stderr_path: dir.join("mtswarm.stderr"),
            launch: Some(Launch::new(opts, tokens_file)),
        };
        gw.spawn();
        gw
    }

    /// Kills the process at once (SIGKILL), as a crash or a lost machine would: nothing it held is let go.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops mtswarm (if it runs) and starts it again with the same configuration (on new ports: take new clients).
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

    /// The client that a parameter of `it_test!` names: the admin's for `admin`, else tenant `name`'s.
    pub fn client_named(&self, name: &str) -> Client {
        if name == "admin" {
            self.admin()
        } else {
            self.tenant(name)
        }
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
        Client { host: self.host.clone(), config, tenant_id: tenant.id, token: tenant.token, flags: Vec::new() }
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

/// A secret (a token, a password) that no other test guesses.
pub fn secret() -> String {
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
            flags: Vec::new(),
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
