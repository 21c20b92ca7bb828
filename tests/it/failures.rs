//! An engine that is down, or dies mid-request: the client gets a clear 502/503 at once (or a cut stream),
//! never a hang, and mtswarm keeps serving.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

/// Shorter than the CLI's default: an unreachable engine must fail fast.
const FAST: Duration = Duration::from_secs(10);

fn assert_engine_error(r: &Response) {
    assert!(r.status == 502 || r.status == 503, "expected 502 or 503: {r}");
    assert!(r.message().to_lowercase().contains("engine"), "the message does not mention the engine: {r}");
    assert_eq!(r.header("Api-Version"), Some("1.41"), "{r}");
}

// Nothing listens on port 1.
it_test!(
    engine_down_fails_fast_and_the_gateway_keeps_serving,
    mtswarm_only("the gateway's answer for a down engine"),
    gw = GatewayOpts { engine: Some("tcp://127.0.0.1:1".to_string()), ..Default::default() },
    |t, mut gw, alice| {
        let fast = || RunOpts { timeout: Some(FAST), ..RunOpts::default() };

        let started = Instant::now();
        let out = alice.run(&["ps"], fast());
        assert!(!out.success(), "{out}");
        assert!(out.stderr.to_lowercase().contains("engine"), "the error does not mention the engine: {out}");
        let out = alice.run(&["run", "--rm", image(), "true"], fast());
        assert!(!out.success(), "{out}");
        assert!(started.elapsed() < FAST, "took {:?}", started.elapsed());

        let http = alice.http();
        assert_engine_error(&http.get("/v1.41/containers/json"));
        assert_engine_error(&http.get("/containers/json"));

        let ping = http.get("/_ping");
        assert_eq!(ping.status, 200, "{ping}");
        assert_eq!(ping.header("Api-Version"), Some("1.41"), "{ping}");
        assert!(gw.alive(), "mtswarm exited: {}", gw.stderr());
    }
);

/// A fake engine for what the real engines of the test bed cannot be made to show on demand: dying in the
/// middle of a request, and an older API version (every engine here is 20.10, API 1.41). It answers `/_ping`,
/// `/version` and `/info` like dockerd 20.10 but with the API version it is given, cuts `GET /containers/json`
/// after part of its chunked body, and closes the connection without an answer for anything else under
/// `/containers/`.
struct FakeEngine {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl FakeEngine {
    fn start(api_version: &'static str) -> FakeEngine {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    thread::spawn(move || serve_fake(conn, api_version));
                }
            }
        });
        FakeEngine { addr, stop }
    }

    fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve_fake(conn: TcpStream, api: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default();
        let path = target.split('?').next().unwrap_or_default();
        // Strip a version prefix: /v1.41/...
        let path = match path.strip_prefix("/v") {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
                rest.find('/').map_or("/".to_string(), |i| rest[i..].to_string())
            }
            _ => path.to_string(),
        };
        let headers = format!(
            "Api-Version: {api}\r\nOstype: linux\r\nDocker-Experimental: false\r\nServer: Docker/20.10.24 (fake)\r\n"
        );
        let ok = |conn: &mut TcpStream, content_type: &str, body: &str| {
            let body = if method == "HEAD" { "" } else { body };
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\n{headers}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        };
        match path.as_str() {
            "/_ping" => ok(&mut conn, "text/plain; charset=utf-8", "OK"),
            "/version" => ok(
                &mut conn,
                "application/json",
                &serde_json::json!({
                    "Version": "20.10.24", "ApiVersion": api, "MinAPIVersion": "1.12", "Os": "linux",
                    "Arch": "amd64", "KernelVersion": "6", "GitCommit": "fake", "GoVersion": "go1.19",
                    "BuildTime": "2026-01-01T00:00:00Z",
                    "Components": [{"Name": "Engine", "Version": "20.10.24",
                                    "Details": {"ApiVersion": api, "MinAPIVersion": "1.12"}}]
                })
                .to_string(),
            ),
            "/info" => ok(
                &mut conn,
                "application/json",
                r#"{"ID":"FAKE:ENGINE","Name":"fake","OSType":"linux","OperatingSystem":"fake","Architecture":"x86_64","NCPU":1,"MemTotal":1073741824,"ServerVersion":"20.10.24","Containers":0,"ContainersRunning":0,"ContainersPaused":0,"ContainersStopped":0,"Images":0,"Labels":[],"Driver":"overlay2","DockerRootDir":"/var/lib/docker"}"#,
            ),
            "/containers/json" => {
                // Part of a body, then the engine "dies".
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\n{headers}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n[{{\"Id\":\"abcdef0"
                );
                let _ = conn.flush();
                return;
            }
            p if p.starts_with("/containers/") => return,
            _ => {
                let body = r#"{"message":"page not found"}"#;
                let _ = write!(
                    conn,
                    "HTTP/1.1 404 Not Found\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    }
}

it_test!(engine_dying_mid_request_is_not_a_hang, mtswarm_only("the gateway's answer for an engine that dies"), |t| {
    let fake = FakeEngine::start("1.41");
    let mut gw = Gateway::start(&t, GatewayOpts { engine: Some(fake.url()), ..GatewayOpts::default() });
    let alice = gw.tenant("alice");
    let http = alice.http();

    // Dies before answering: a clear error at once.
    let started = Instant::now();
    assert_engine_error(&http.get("/v1.41/containers/abc/json"));

    // Dies after the head and part of the body: the client must not see a complete, well-formed answer.
    let r = http.get("/v1.41/containers/json");
    assert!(!(r.status == 200 && r.complete), "a response cut by the engine reached the client as complete: {r}");
    if r.status != 200 {
        assert_engine_error(&r);
    }
    let out = alice.run(&["ps"], RunOpts { timeout: Some(FAST), ..RunOpts::default() });
    assert!(!out.success(), "{out}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());

    // And the gateway goes on serving.
    let ping = http.get("/_ping");
    assert_eq!(ping.status, 200, "{ping}");
    assert!(gw.alive(), "mtswarm exited: {}", gw.stderr());
});

it_test!(the_lowest_engine_api_version_is_advertised, mtswarm_only("the version mtswarm advertises"), |t| {
    let fake = FakeEngine::start("1.40");
    let gw = Gateway::start(&t, GatewayOpts { engine: Some(fake.url()), ..GatewayOpts::default() });
    let alice = gw.tenant("alice");
    let http = alice.http();

    // mtswarm may learn the engine's version after it starts listening: poll, with a bound.
    poll("Api-Version 1.40 on /_ping", Duration::from_secs(10), || {
        (http.get("/_ping").header("Api-Version") == Some("1.40")).then_some(())
    });
    let r = http.get("/v1.41/version");
    assert_eq!(r.status, 400, "{r}");
    assert_eq!(r.message(), "client version 1.41 is too new. Maximum supported API version is 1.40");
    assert_eq!(http.get("/version").json()["ApiVersion"], "1.40");
    assert_eq!(alice.ok(&["version", "--format", "{{.Server.APIVersion}}"]), "1.40");
});
