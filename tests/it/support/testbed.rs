//! The test bed that `scripts/testbed.sh up` provides and every test shares: the engines, the test image, the
//! env file that describes them, direct mode, and the docker CLI straight against an engine (never through
//! mtswarm), for setup checks and for looking behind mtswarm's back.

use std::collections::HashMap;
use std::fs;
use std::sync::OnceLock;
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
