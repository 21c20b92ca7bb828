//! What the authentication tests (`auth.rs`, `keystone.rs`) share beyond `support`: the messages of the
//! contract, assertions on 401/503 answers and on mtswarm's log, and running `mtswarm` for a command that ends
//! by itself (`tokens add`, a `manage` that must refuse to start).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::*;

/// No `X-Auth-Token` header.
pub const NO_TOKEN: &str = "authentication required: the request has no X-Auth-Token header";
/// A wrong, garbage, expired or revoked token.
pub const INVALID: &str = "authentication failed: the token is invalid or expired";
/// The members tenant refuses the user.
pub const NOT_MEMBER: &str = "authentication failed: the user is not a member of the members tenant";
/// The members tenant used as a working tenant.
pub const MEMBERS_NOT_WORKING: &str = "authentication failed: the members tenant is not a working tenant";
/// The start of the message when Keystone cannot answer and the token is not cached.
pub const UNAVAILABLE: &str = "authentication service unavailable:";

/// A valid token for a tenant other than the one named in `X-Auth-TenantId`.
pub fn wrong_tenant(id: &str) -> String {
    format!("authentication failed: the token is not valid for tenant \"{id}\"")
}

/// A malformed `X-Auth-TenantId`.
pub fn bad_tenant_id(id: &str) -> String {
    format!("authentication failed: X-Auth-TenantId \"{id}\" is not a valid tenant id")
}

/// Asserts that the docker CLI failed as it does on an authentication error: exit code 1, `message` on stderr.
pub fn assert_cli_refused(out: &Output, message: &str) {
    assert_eq!(out.code, Some(1), "expected exit code 1 with {message:?}: {out}");
    assert!(out.stderr.contains(message), "expected {message:?} on stderr: {out}");
}

/// Asserts a Docker-style JSON error: `status`, `{"message": ...}` containing `message`.
pub fn assert_error(r: &Response, status: u16, message: &str) {
    assert_eq!(r.status, status, "expected HTTP {status} with {message:?}: {r}");
    let body: serde_json::Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("the error body is not JSON ({e}): {r}"));
    let got = body["message"].as_str().unwrap_or_else(|| panic!("the error body has no string `message`: {r}"));
    assert!(got.contains(message), "expected {message:?} in the message: {r}");
    assert!(
        r.header("content-type").is_some_and(|v| v.starts_with("application/json")),
        "the error is not served as application/json: {r}"
    );
}

/// Asserts a 401 with `message`.
pub fn assert_401(r: &Response, message: &str) {
    assert_error(r, 401, message);
}

/// True when mtswarm's log `text` has `tenant=<id>` (bare or quoted, as tracing prints a field).
pub fn logs_tenant(text: &str, id: &str) -> bool {
    text.contains(&format!("tenant={id}")) || text.contains(&format!("tenant=\"{id}\""))
}

/// Asserts that the gateway logged a request of tenant `id`.
pub fn assert_tenant_logged(gw: &Gateway, id: &str) {
    let text = gw.stderr_text();
    assert!(logs_tenant(&text, id), "no request log line with tenant={id}:\n{}", gw.stderr());
}

/// Asserts that no secret (token, password) is in mtswarm's log.
pub fn assert_not_logged(gw: &Gateway, secrets: &[&str]) {
    let text = gw.stderr_text();
    for secret in secrets {
        assert!(!secret.is_empty(), "an empty secret cannot be checked");
        assert!(
            !text.contains(secret),
            "mtswarm logged a secret ({}...):\n{}",
            &secret[..secret.len().min(6)],
            gw.stderr()
        );
    }
}

/// Raw HTTP to the gateway with exactly `headers`.
pub fn http(gw: &Gateway, headers: &[(&str, &str)]) -> Http {
    Http::with_headers(gw.host(), headers)
}

/// How long a `mtswarm` command that should end by itself may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the real `mtswarm` with `args` in `cwd`, with `env` on top of an environment without any `SWARM_`
/// variable, until it ends (failing the test if it is still running after 20 s).
pub fn mtswarm(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtswarm"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SWARM_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).current_dir(cwd).envs(env.iter().copied());
    let desc = format!("mtswarm {}", args.join(" "));
    run_bounded(cmd, desc, COMMAND_TIMEOUT)
}

/// Runs `mtswarm manage` on port 0 in front of the default engine, expecting it to refuse to start.
/// Returns its output (exit code non-zero).
pub fn manage_must_fail(cwd: &Path, env: &[(&str, &str)]) -> Output {
    manage_must_fail_with(&[], cwd, env)
}

/// Like `manage_must_fail`, with more `manage` flags (before the engine URL).
pub fn manage_must_fail_with(flags: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut args = vec!["manage", "-H", "tcp://127.0.0.1:0"];
    args.extend_from_slice(flags);
    args.push(&testbed().engine0);
    let out = mtswarm(&args, cwd, env);
    assert!(!out.success() && out.signal.is_none(), "mtswarm manage should have refused to start: {out}");
    assert!(!out.stdout.contains("listening on"), "mtswarm manage listened before refusing to start: {out}");
    out
}

/// `mtswarm tokens add --tenant TENANT --file FILE`: asserts it succeeds and prints one line, the token.
pub fn tokens_add(cwd: &Path, tenant: &str, file: &Path) -> String {
    let file = file.to_str().expect("a UTF-8 path");
    let out = mtswarm(&["tokens", "add", "--tenant", tenant, "--file", file], cwd, &[]);
    assert!(out.success(), "`tokens add` failed: {out}");
    let printed = lines(&out.stdout);
    assert_eq!(printed.len(), 1, "`tokens add` should print exactly one line, the token: {out}");
    let token = printed[0].clone();
    assert!(
        token.len() >= 16 && !token.contains(char::is_whitespace),
        "`tokens add` printed {token:?}, which does not look like a token: {out}"
    );
    token
}

/// The sha256 of `s` in lowercase hex, as the tokens file stores it.
pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// A TCP proxy to a real server (Keystone, an engine) that records every byte its clients send and can hold
/// each chunk for `delay` before passing it on. It shows what mtswarm sends upstream (a real server does not
/// tell), and makes a real Keystone slow on demand.
pub struct TcpRecorder {
    addr: String,
    sent: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl TcpRecorder {
    /// Proxies to `upstream` (`HOST:PORT`).
    pub fn start(upstream: &str, delay: Duration) -> TcpRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (record, stopping, upstream) = (sent.clone(), stop.clone(), upstream.to_string());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (record, upstream) = (record.clone(), upstream.clone());
                thread::spawn(move || relay(conn, &upstream, delay, record));
            }
        });
        TcpRecorder { addr, sent, stop }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Everything the clients sent so far, as text.
    pub fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }

    /// How many times the clients sent `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.sent().matches(needle).count()
    }
}

impl Drop for TcpRecorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// Relays one client connection to `upstream` both ways, recording what the client sends.
fn relay(mut client: TcpStream, upstream: &str, delay: Duration, record: Arc<Mutex<Vec<u8>>>) {
    let Ok(mut server) = TcpStream::connect(upstream) else { return };
    let (Ok(mut client_reader), Ok(mut server_writer)) = (client.try_clone(), server.try_clone()) else { return };
    let to_server = thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            let n = match client_reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            record.lock().unwrap().extend_from_slice(&buf[..n]);
            if !delay.is_zero() {
                thread::sleep(delay);
            }
            if server_writer.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_writer.shutdown(Shutdown::Write);
    });
    let mut buf = [0u8; 16384];
    loop {
        match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if client.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.shutdown(Shutdown::Write);
    let _ = to_server.join();
}
