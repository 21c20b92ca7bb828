//! The test bed that `scripts/testbed.sh up` provides and every test shares: the engines, the test image, the
//! env file that describes them, direct mode, and the docker CLI straight against an engine (never through
//! mtswarm), for setup checks and for looking behind mtswarm's back.

use std::collections::HashMap;
use std::fs;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use super::{docker_command, run_command, Output, RunOpts, CLI_TIMEOUT};

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

impl Testbed {
    /// `HOST:PORT` of the etcd, as `etcd://` discovery takes it.
    pub fn etcd_addr(&self) -> &str {
        self.etcd.strip_prefix("http://").unwrap_or(&self.etcd).trim_end_matches('/')
    }
}

/// The test bed's env file: `MTSWARM_TESTBED_ENV`, by default `/run/mtswarm-testbed/env`.
pub fn testbed_env_path() -> String {
    std::env::var("MTSWARM_TESTBED_ENV").unwrap_or_else(|_| "/run/mtswarm-testbed/env".to_string())
}

/// The variables of the test bed's env file (`KEY=value` lines, `export` and quotes allowed), read once; empty
/// when there is no file. Every optional component (Keystone, the TLS engine, the overlay engines) is found here.
pub fn testbed_env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| fs::read_to_string(testbed_env_path()).map(|text| parse_env_file(&text)).unwrap_or_default())
}

/// Reads the engines and the image from the test bed's env file, falling back to the local engine,
/// `busybox:latest` and the test bed's etcd address.
pub fn testbed() -> &'static Testbed {
    static TESTBED: OnceLock<Testbed> = OnceLock::new();
    TESTBED.get_or_init(|| {
        let vars = testbed_env();
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

pub(super) fn engine_command(
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

/// The docker CLI straight against the engine at `engine` (a URL), for the cluster tests, which look at where
/// containers landed on each engine. `Err` only when the command had to be killed.
pub fn engine_docker_at(engine: &str, args: &[&str]) -> Result<Output, String> {
    engine_command(engine, args, None, &[], CLI_TIMEOUT)
}

/// Runs `scripts/testbed.sh ARGS` (e.g. `engine-stop 2`, `keystone-start`); `Err` with its output when it fails.
pub fn try_testbed_script(args: &[&str]) -> Result<(), String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/testbed.sh");
    let out = Command::new(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`scripts/testbed.sh {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Runs `scripts/testbed.sh ARGS`, failing the test if it fails (only saying so when the test is failing
/// already, as in a drop guard).
pub fn testbed_script(args: &[&str]) {
    if let Err(e) = try_testbed_script(args) {
        if thread::panicking() {
            eprintln!("{e}");
        } else {
            panic!("{e}");
        }
    }
}
