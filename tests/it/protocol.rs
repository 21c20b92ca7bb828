//! The Docker Engine API protocol as raw HTTP shows it, where the CLI hides the detail: ping, version
//! negotiation and refusal, unknown endpoints, mtswarm's identity, hijacked connections and half-close,
//! listeners.

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use crate::support::*;

it_test!(ping_head_and_get, |t, gw| {
    let http = gw.tenant("alice").http();

    let get = http.get("/_ping");
    assert_eq!(get.status, 200, "{get}");
    assert_eq!(get.text(), "OK");
    assert_eq!(get.header("Api-Version"), Some("1.41"), "{get}");
    assert_eq!(get.header("Ostype"), Some("linux"), "{get}");

    let head = http.head("/_ping");
    assert_eq!(head.status, 200, "{head}");
    assert!(head.body.is_empty());
    assert_eq!(head.header("Api-Version"), Some("1.41"), "{head}");
    assert_eq!(head.header("Ostype"), Some("linux"), "{head}");

    // Versioned too, as older clients send it.
    let versioned = http.get("/v1.41/_ping");
    assert_eq!(versioned.status, 200, "{versioned}");
    assert_eq!(versioned.text(), "OK");
});

it_test!(every_response_carries_api_version, |t, gw| {
    let http = gw.tenant("alice").http();
    let missing = format!("/v1.41/containers/{}/json", t.name("missing"));

    let mut requests = vec![
        ("GET", "/_ping".to_string(), 200),
        ("HEAD", "/_ping".to_string(), 200),
        ("GET", "/version".to_string(), 200),
        ("GET", "/v1.41/version".to_string(), 200),
        ("GET", "/v1.41/containers/json".to_string(), 200),
        ("GET", "/containers/json?all=1".to_string(), 200),
        ("GET", missing.clone(), 404),
        ("GET", "/v1.99/version".to_string(), 400),
    ];
    // dockerd's own "page not found" lacks the header; mtswarm's 404 carries it.
    if !direct() {
        requests.push(("GET", "/v1.41/nonsense/path".to_string(), 404));
    }
    for (method, path, status) in requests {
        let r = http.request(method, &path, &[], None);
        assert_eq!(r.status, status, "{method} {path}: {r}");
        assert_eq!(r.header("Api-Version"), Some("1.41"), "{method} {path}: {r}");
    }

    let r = http.get(&missing);
    assert!(r.message().starts_with("No such container"), "{r}");
    assert!(r.header("Content-Type").is_some_and(|v| v.starts_with("application/json")), "{r}");
});

it_test!(too_new_and_too_old_client_versions_are_refused, |t, gw| {
    let http = gw.tenant("alice").http();

    let r = http.get("/v1.99/version");
    assert_eq!(r.status, 400, "{r}");
    assert_eq!(r.message(), "client version 1.99 is too new. Maximum supported API version is 1.41");

    // dockerd 20.10 takes versions down to 1.12; mtswarm refuses below 1.24 as dockerd 25 does (issue 10: below
    // it a start body replaces a container's HostConfig).
    let (old, min) = if direct() { ("1.11", "1.12") } else { ("1.23", "1.24") };
    let r = http.get(&format!("/v{old}/version"));
    assert_eq!(r.status, 400, "{r}");
    assert_eq!(
        r.message(),
        format!(
            "client version {old} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version"
        )
    );
    let r = http.get(&format!("/v{min}/containers/json"));
    assert_eq!(r.status, 200, "{r}");

    let r = http.get("/v1.99/containers/json");
    assert_eq!(r.status, 400, "{r}");

    // The CLI with a pinned, too new version fails with that message; an older one within range works.
    let alice = gw.tenant("alice");
    let out =
        alice.run(&["ps"], RunOpts { env: vec![("DOCKER_API_VERSION".into(), "1.45".into())], ..RunOpts::default() });
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("is too new. Maximum supported API version is 1.41"), "{out}");
    let out =
        alice.run(&["ps"], RunOpts { env: vec![("DOCKER_API_VERSION".into(), "1.40".into())], ..RunOpts::default() });
    assert!(out.success(), "{out}");
});

it_test!(unknown_endpoint_is_a_404_naming_it, mtswarm_only("the 404 of an unknown endpoint"), |t, gw| {
    let http = gw.tenant("alice").http();

    for path in ["/v1.41/nonsense/path", "/nonsense/path"] {
        let r = http.get(path);
        assert_eq!(r.status, 404, "{r}");
        assert!(r.header("Content-Type").is_some_and(|v| v.starts_with("application/json")), "{r}");
        let message = r.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(message.contains("/nonsense/path"), "the message does not name the path: {r}");
    }
    // A known path with a method it does not take is not forwarded blind either.
    let r = http.request("DELETE", "/v1.41/version", &[], None);
    assert!(r.status == 404 || r.status == 405, "{r}");
    assert!(r.json()["message"].is_string(), "{r}");
});

it_test!(version_identifies_mtswarm, mtswarm_only("/version's identity"), |t, gw| {
    let http = gw.tenant("alice").http();

    for path in ["/version", "/v1.41/version"] {
        let r = http.get(path);
        assert_eq!(r.status, 200, "{r}");
        let v = r.json();
        assert!(v["Version"].as_str().is_some_and(|s| s.starts_with("mtswarm")), "{v}");
        assert_eq!(v["ApiVersion"], "1.41", "{v}");
        assert_eq!(v["Os"], "linux", "{v}");
    }
    let alice = gw.tenant("alice");
    assert!(alice.ok(&["version", "--format", "{{.Server.Version}}"]).starts_with("mtswarm"));
});

it_test!(info_system_status_is_a_list_of_pairs, mtswarm_only("/info's SystemStatus"), |t, gw| {
    // The nodes are the operator's business: the admin sees them (issue 6), a tenant only the overview.
    let http = gw.admin().http();

    let r = http.get("/v1.41/info");
    assert_eq!(r.status, 200, "{r}");
    let info = r.json();
    let pairs: Vec<(String, String)> = info["SystemStatus"]
        .as_array()
        .unwrap_or_else(|| panic!("SystemStatus is not a list: {info}"))
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([serde_json::Value::String(k), serde_json::Value::String(v)]) => (k.clone(), v.clone()),
            _ => panic!("not a pair of strings: {pair}"),
        })
        .collect();
    let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    assert_subsequence(&keys, &["Role", "Strategy", "Filters", "Nodes"]);
    let nodes = &pairs.iter().find(|(k, _)| k == "Nodes").unwrap().1;
    assert_eq!(nodes, "1", "one engine behind this gateway: {pairs:?}");
    assert!(pairs.iter().any(|(k, _)| k.trim() == "└ Status"), "{pairs:?}");
    assert!(info["Name"].as_str().is_some_and(|n| !n.is_empty()), "{info}");

    let tenant = gw.tenant("alice").http().get("/v1.41/info").json();
    let status = tenant["SystemStatus"].to_string();
    assert!(status.contains("Nodes") && !status.contains("Status") && !status.contains("unix://"), "{status}");
});

/// Creates an exec of `cat` in a fresh running container; returns the exec id.
fn exec_cat(t: &Test, alice: &Client) -> String {
    let c = t.name("cat");
    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    let r = alice.http().post_json(
        &format!("/v1.41/containers/{c}/exec"),
        &json!({"AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "Cmd": ["cat"]}),
    );
    assert_eq!(r.status, 201, "{r}");
    r.json()["Id"].as_str().expect("an exec id").to_string()
}

fn assert_exec_ended_with_zero(alice: &Client, id: &str) {
    let http = alice.http();
    poll("the exec to end", Duration::from_secs(30), || {
        let v = http.get(&format!("/v1.41/exec/{id}/json")).json();
        (v["Running"] == false).then_some(v)
    });
    let v = http.get(&format!("/v1.41/exec/{id}/json")).json();
    assert_eq!(v["ExitCode"], 0, "{v}");
}

/// Writes a line to the hijacked `cat` of exec `id`, half-closes, and asserts that the line comes back, the stream
/// ends (cat saw EOF and exited, and the engine closed) and the exec exited with 0.
fn assert_cat_echoes_and_ends(alice: &Client, mut h: Hijacked, id: &str) {
    h.conn.write_all(b"hello\n").unwrap();
    h.conn.shutdown_write();
    let raw = h.read_to_end();
    assert_eq!(String::from_utf8_lossy(&demux_stream(&raw, 1)), "hello\n");
    assert_exec_ended_with_zero(alice, id);
}

it_test!(exec_start_upgrade_passes_half_close, |t, gw, alice| {
    let id = exec_cat(&t, &alice);

    let h =
        alice.http().hijack("POST", &format!("/v1.41/exec/{id}/start"), &json!({"Detach": false, "Tty": false}), true);
    assert_eq!(h.status, 101, "{:?}", h.headers);
    assert!(h.headers.iter().any(|(k, v)| k == "upgrade" && v == "tcp"), "{:?}", h.headers);
    assert_cat_echoes_and_ends(&alice, h, &id);
});

it_test!(exec_start_raw_200_form_passes_half_close, |t, gw, alice| {
    let id = exec_cat(&t, &alice);

    // Without `Upgrade`, dockerd answers 200 and hijacks anyway (clients before API 1.24 did this).
    let h =
        alice.http().hijack("POST", &format!("/v1.41/exec/{id}/start"), &json!({"Detach": false, "Tty": false}), false);
    assert_eq!(h.status, 200, "{:?}", h.headers);
    // The stream follows the head raw: framing it as a body (chunked) would end it before any output.
    assert!(!h.headers.iter().any(|(k, _)| k == "transfer-encoding"), "a raw stream framed as a body: {:?}", h.headers);
    assert_cat_echoes_and_ends(&alice, h, &id);
});

it_test!(attach_to_a_missing_container_is_a_plain_404, |t, gw, alice| {
    let missing = t.name("missing");

    let h = alice.http().hijack(
        "POST",
        &format!("/v1.41/containers/{missing}/attach?stream=1&stdout=1&stderr=1&stdin=1"),
        &json!({}),
        true,
    );
    assert_eq!(h.status, 404, "{:?}", h.headers);
    let r = h.into_response();
    assert!(r.complete, "{r}");
    assert!(r.message().contains("No such container"), "{r}");

    let err = alice.fails(&["attach", &missing]);
    assert!(err.contains("No such container"), "{err}");
});

it_test!(
    unix_listener_serves_the_cli,
    gw = GatewayOpts { unix_listener: true, ..GatewayOpts::default() },
    |t, gw, alice| {
        let via_unix = alice.via(gw.unix_host());
        let c = t.name("unix");

        assert_eq!(via_unix.ok(&["version", "--format", "{{.Server.APIVersion}}"]), "1.41");
        via_unix.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
        // The same gateway over TCP sees it.
        assert_eq!(alice.ok(&["ps", "--filter", &format!("name={c}"), "--format", "{{.Names}}"]), c);
        assert_eq!(via_unix.docker_stdin(&["exec", "-i", &c, "cat"], "over unix\n").stdout, "over unix\n");
        let ping = via_unix.http().get("/_ping");
        assert_eq!(ping.status, 200, "{ping}");
    }
);

it_test!(the_older_docker_cli_20_10_works_too, |t, gw, alice| {
    // Debian's docker.io client, installed by the test bed next to the 28.x one.
    let old = "/usr/bin/docker";
    assert!(std::path::Path::new(old).exists(), "{old} (Debian's docker.io client) is missing");

    let out = alice.run_cli(old, &["version", "--format", "{{.Server.APIVersion}}"], RunOpts::default());
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout.trim(), "1.41");
    let out = alice.run_cli(old, &["run", "--rm", image(), "sh", "-c", "echo old-cli; exit 6"], RunOpts::default());
    assert_eq!(out.code, Some(6), "{out}");
    assert_eq!(out.stdout.trim(), "old-cli");
    let out = alice.run_cli(
        old,
        &["run", "-i", "--rm", image(), "cat"],
        RunOpts { stdin: Some(b"piped\n".to_vec()), ..RunOpts::default() },
    );
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, "piped\n");
});

// Every line logged while a request is served says which request, endpoint, tenant and node it is of: here the
// debug line of a refusal, which is written before the request's own line.
it_test!(
    every_line_of_a_request_carries_its_id_endpoint_and_tenant,
    mtswarm_only("mtswarm's request log"),
    gw = GatewayOpts { env: vec![("MTSWARM_LOG".into(), "debug".into())], ..Default::default() },
    |t, gw, alice| {
        let err = alice.fails(&["run", "--rm", "--privileged", image(), "true"]);
        assert!(err.contains("privileged"), "{err}");
        let log = poll("the refusal's log line", Duration::from_secs(10), || {
            let log = gw.stderr();
            log.lines().any(|l| l.contains("request refused") && l.contains("privileged")).then_some(log)
        });
        let refused = log.lines().find(|l| l.contains("request refused") && l.contains("privileged")).unwrap();
        let tenant = format!("tenant=\"{}\"", alice.tenant_id);
        for field in ["request{id=", "endpoint=\"containerscreate\"", &tenant] {
            assert!(refused.contains(field), "no {field} in a line of the request: {refused}");
        }
        // The same request's own line, with the same id.
        let id = refused.split("request{id=").nth(1).and_then(|r| r.split(' ').next()).unwrap();
        let own = log.lines().find(|l| l.contains("/containers/create") && l.contains(&format!(" id={id} ")));
        assert!(own.is_some_and(|l| l.contains("status=403")), "no request line with id={id}:\n{log}");
    }
);

it_test!(
    each_request_is_logged_once_at_info_and_never_with_its_token,
    mtswarm_only("mtswarm's request log"),
    |t, gw, alice| {
        alice.ok(&["ps"]);
        // One line with method, path, status, duration and node (the log may be written a moment later).
        let log = poll("the log line of GET /v1.41/containers/json", Duration::from_secs(10), || {
            let log = gw.stderr();
            log.lines().any(|l| l.contains("/v1.41/containers/json")).then_some(log)
        });
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("/v1.41/containers/json")).collect();
        assert_eq!(lines.len(), 1, "not one line for one request: {lines:?}");
        let line = lines[0];
        for field in ["INFO", "GET", "200", "duration", "node"] {
            assert!(line.contains(field), "no {field} in the request's log line: {line}");
        }
        assert!(!log.contains(alice.token()), "the log holds a token:\n{log}");
    }
);
