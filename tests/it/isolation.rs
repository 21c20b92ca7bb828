//! Tenant isolation (issue 4), through the real docker CLI and raw HTTP, with tenants `alice` and `bob` and the
//! admin of one gateway.
//!
//! Ownership is read on the engine (`engine_docker`): every container, network and volume a tenant creates
//! carries `mtswarm.tenant=<tenant id>` and an engine-side name `t<len>-<tenant id>-<name>`. What a tenant sees
//! is read through the gateway: its own names, unscoped, and nothing of anyone else's. Another tenant's object
//! must answer exactly as an absent one does, so every attempt on it is run twice, once naming the object and
//! once naming nothing of the same shape (a "ghost"), and the two answers must be the same but for the name;
//! after each attempt the object is checked on the engine to be unchanged.
//!
//! Prunes are filtered by the test's label (as in `resources.rs`), so that a gateway that leaks cannot remove
//! other tests' objects: the tenant filter must still be what keeps bob's labelled objects out of alice's prune.

use std::fs;
use std::time::Duration;

use crate::support::*;

/// How long one attempt on another tenant's object may take: it must fail at once, and a leak into a stream
/// (attach, wait, logs) must show as a failure, not as a hang.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `who` into `/data/who` of volume `volume` (a file naming the volume's owner), as `client`.
fn write_owner(client: &Client, volume: &str, who: &str) {
    client.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/data"),
        image(),
        "sh",
        "-c",
        &format!("echo {who} > /data/who"),
    ]);
}

/// How many requests the gateway has answered with 403 so far (its request log says `status=403`).
fn forbidden_so_far(gw: &Gateway) -> usize {
    gw.stderr_text().lines().filter(|l| l.contains("status=403")).count()
}

/// A reference of the same shape as `reference` that names nothing: an id (or id prefix) with every hex digit
/// shifted, or a name with a suffix.
fn ghost_of(reference: &str) -> String {
    if reference.len() >= 12 && reference.chars().all(|c| c.is_ascii_hexdigit()) {
        reference
            .chars()
            .map(|c| {
                let v = c.to_digit(16).unwrap_or(0);
                std::char::from_digit((v + 8) % 16, 16).unwrap_or('0')
            })
            .collect()
    } else {
        format!("{reference}-ghost")
    }
}

/// What a command answered, with `reference` replaced by `<REF>`, and without the CLI's own timestamped log
/// lines (`time="..." level=error ...`, printed by `cp` when the daemon refuses the upload).
fn answer(out: &Output, reference: &str) -> (Option<i32>, String, String) {
    let norm = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("time="))
            .map(|l| l.replace(reference, "<REF>"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    (out.code, norm(&out.stdout), norm(&out.stderr))
}

fn fill(template: &[&str], reference: &str) -> Vec<String> {
    template.iter().map(|a| a.replace("{}", reference)).collect()
}

/// Runs `docker ARGS` with a deadline of `ATTEMPT_TIMEOUT`.
fn attempt(client: &Client, args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    client.run(&args, RunOpts { timeout: Some(ATTEMPT_TIMEOUT), ..RunOpts::default() })
}

/// Runs `template` (every `{}` replaced by `reference`, another tenant's object) as `client`, then the same
/// with a ghost of `reference`, and asserts that both answer alike (exit code, stdout and stderr, but for the
/// reference) and that stderr holds one of `needles` (with `{}` replaced by `reference`) when any are given.
fn assert_as_absent(client: &Client, template: &[&str], reference: &str, needles: &[&str]) -> Output {
    let ghost = ghost_of(reference);
    let out = attempt(client, &fill(template, reference));
    let absent = attempt(client, &fill(template, &ghost));
    assert_eq!(
        answer(&out, reference),
        answer(&absent, &ghost),
        "another tenant's object ({reference}) does not answer as an absent one ({ghost}) does.\n\
         naming the other tenant's object: {out}\nnaming nothing: {absent}"
    );
    let needles: Vec<String> = needles.iter().map(|n| n.replace("{}", reference)).collect();
    assert!(
        needles.is_empty() || needles.iter().any(|n| out.stderr.contains(n.as_str())),
        "expected one of {needles:?} in stderr: {out}"
    );
    out
}

/// Raw HTTP: `METHOD PATH` (every `{}` replaced by `reference`) answers as it does for a ghost, with `status`.
fn assert_http_as_absent(client: &Client, method: &str, path: &str, reference: &str, status: u16) {
    let ghost = ghost_of(reference);
    let http = client.http();
    let body = (method == "POST").then_some(&b"{}"[..]);
    let extra: &[(&str, &str)] = if body.is_some() { &[("Content-Type", "application/json")] } else { &[] };
    let r = http.request(method, &path.replace("{}", reference), extra, body);
    let g = http.request(method, &path.replace("{}", &ghost), extra, body);
    assert_eq!(r.status, status, "{method} {path} for another tenant's {reference}: {r}");
    assert_eq!(
        (r.status, r.message().replace(reference, "<REF>")),
        (g.status, g.message().replace(&ghost, "<REF>")),
        "{method} {path}: another tenant's {reference} does not answer as the absent {ghost}:\n{r}\n{g}"
    );
}

/// Containers as the engine holds them: everything an attempt of another tenant could change, one line each.
fn containers_state(ids: &[&str]) -> String {
    let mut args = vec![
        "inspect",
        "--format",
        "{{.Name}}|{{.State.Status}}|{{.State.StartedAt}}|{{.RestartCount}}|{{.HostConfig.CpuShares}}\
         |{{range $k, $v := .NetworkSettings.Networks}}{{$k}},{{end}}",
    ];
    args.extend_from_slice(ids);
    engine_ok(&args)
}

fn container_state(id: &str) -> String {
    containers_state(&[id])
}

/// A network as the engine holds it: its name and the containers attached.
fn network_state(id: &str) -> String {
    engine_ok(&["network", "inspect", "--format", "{{.Name}}|{{range $k, $v := .Containers}}{{$k}},{{end}}", id])
}

/// The names of the networks a container is attached to, as `client` sees them, sorted.
fn networks_of(client: &Client, container: &str) -> Vec<String> {
    let out =
        client.ok(&["inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}\n{{end}}", container]);
    sorted_lines(&out)
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------------------
// Ownership and names
// ---------------------------------------------------------------------------------------------------------

it_test!(
    tenant_objects_carry_the_owner_label_and_scoped_engine_names,
    mtswarm_only("ownership labels and name scoping"),
    |t, gw, alice| {
        let (web, backend, data) = (t.name("web"), t.name("backend"), t.name("data"));

        let id = alice.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
        let unnamed = alice.ok(&["run", "-d", image(), "sleep", "300"]);
        let net = alice.ok(&["network", "create", &backend]);
        assert_eq!(alice.ok(&["volume", "create", &data]), data);

        // On the engine: the label and the scoped names.
        assert_eq!(engine_ok(&["inspect", "--format", "{{.Name}}", &id]), format!("/{}", alice.scoped(&web)));
        assert_eq!(engine_owner("container", &id), alice.tenant_id);
        let engine_unnamed = engine_ok(&["inspect", "--format", "{{.Name}}", &unnamed]);
        let generated = engine_unnamed
            .strip_prefix(&format!("/{}", alice.scope_prefix()))
            .unwrap_or_else(|| panic!("the unnamed container's engine name {engine_unnamed:?} is not scoped"))
            .to_string();
        assert!(!generated.is_empty(), "{engine_unnamed:?}");
        assert_eq!(engine_owner("container", &unnamed), alice.tenant_id);
        assert_eq!(engine_ok(&["network", "inspect", "--format", "{{.Name}}", &net]), alice.scoped(&backend));
        assert_eq!(engine_owner("network", &net), alice.tenant_id);
        assert_eq!(engine_owner("volume", &alice.scoped(&data)), alice.tenant_id);
        let unscoped_volume = engine_docker(&["volume", "inspect", &data]);
        assert!(!unscoped_volume.success(), "the volume is on the engine under its tenant's name: {unscoped_volume}");

        // What alice sees: her names, unscoped.
        assert_eq!(alice.ok(&["inspect", "--format", "{{.Name}}", &web]), format!("/{web}"));
        assert_eq!(alice.ok(&["inspect", "--format", "{{.Name}}", &id]), format!("/{web}"));
        assert_eq!(alice.ok(&["inspect", "--format", "{{.Name}}", &unnamed]), format!("/{generated}"));
        assert_eq!(alice.ok(&["inspect", "--format", "{{.Id}}", &generated]), unnamed);
        let names = alice.ok(&["ps", "-a", "--format", "{{.Names}}"]);
        assert_eq!(sorted_lines(&names), sorted(&[&web, &generated]));
        assert_eq!(alice.ok(&["network", "inspect", "--format", "{{.Name}}", &backend]), backend);
        assert_eq!(alice.ok(&["network", "inspect", "--format", "{{.Name}}", &net]), backend);
        assert_eq!(alice.ok(&["volume", "inspect", "--format", "{{.Name}}", &data]), data);
        assert_eq!(alice.ok(&["volume", "ls", "--format", "{{.Name}}"]), data);
    }
);

it_test!(a_tenant_cannot_set_the_tenant_label, mtswarm_only("the tenant label"), |t, gw, alice| {
    let bob_id = gw.tenant_id("bob");

    for owner in [bob_id.as_str(), alice.tenant_id.as_str(), ""] {
        let label = format!("{TENANT_LABEL}={owner}");
        let (c, n, v) = (t.name("c"), t.name("n"), t.name("v"));
        let attempts: [Vec<&str>; 4] = [
            vec!["run", "-d", "--label", &label, "--name", &c, image(), "sleep", "300"],
            vec!["create", "--label", &label, "--name", &c, image(), "true"],
            vec!["network", "create", "--label", &label, &n],
            vec!["volume", "create", "--label", &label, &v],
        ];
        for args in &attempts {
            let before = forbidden_so_far(&gw);
            let out = alice.docker(args);
            assert!(!out.success(), "setting {label} was not refused: {out}");
            assert!(out.stderr.contains("Error response from daemon"), "{out}");
            assert_eq!(forbidden_so_far(&gw), before + 1, "not exactly one 403 for {out}");
        }
        let leaked = engine_ok(&["ps", "-a", "-q", "--filter", &format!("name={c}")]);
        assert_eq!(leaked, "", "a refused create reached the engine ({label})");
        let leaked = engine_ok(&["network", "ls", "-q", "--filter", &format!("name={n}")]);
        assert_eq!(leaked, "", "a refused network create reached the engine ({label})");
        let leaked = engine_ok(&["volume", "ls", "-q", "--filter", &format!("name={v}")]);
        assert_eq!(leaked, "", "a refused volume create reached the engine ({label})");
    }

    // The status itself, by raw HTTP.
    let http = alice.http();
    let body = serde_json::json!({"Image": image(), "Cmd": ["true"], "Labels": {TENANT_LABEL: bob_id}});
    let r = http.post_json(&format!("/v1.41/containers/create?name={}", t.name("raw")), &body);
    assert_eq!(r.status, 403, "{r}");
    let r = http.post_json(
        "/v1.41/networks/create",
        &serde_json::json!({"Name": t.name("rawnet"), "Labels": {TENANT_LABEL: bob_id}}),
    );
    assert_eq!(r.status, 403, "{r}");
    let r = http.post_json(
        "/v1.41/volumes/create",
        &serde_json::json!({"Name": t.name("rawvol"), "Labels": {TENANT_LABEL: bob_id}}),
    );
    assert_eq!(r.status, 403, "{r}");

    // Without the label, the same creates work.
    alice.ok(&["run", "-d", "--label", &t.label(), "--name", &t.name("c"), image(), "sleep", "300"]);
    assert_eq!(engine_owner("container", &alice.scoped(&t.name("c"))), alice.tenant_id);
});

it_test!(two_tenants_use_the_same_names_at_once, mtswarm_only("name scoping"), |t, gw, alice, bob| {
    let (web, backend, data) = (t.name("web"), t.name("backend"), t.name("data"));

    let mut ids = Vec::new();
    for (tenant, who) in [(&alice, "alice"), (&bob, "bob")] {
        let net = tenant.ok(&["network", "create", &backend]);
        assert_eq!(tenant.ok(&["volume", "create", &data]), data);
        write_owner(tenant, &data, who);
        let id = tenant.ok(&[
            "run",
            "-d",
            "--name",
            &web,
            "--network",
            &backend,
            "-v",
            &format!("{data}:/data"),
            image(),
            "sleep",
            "300",
        ]);
        ids.push((id, net));
    }
    let ((alice_web, alice_net), (bob_web, bob_net)) = (ids[0].clone(), ids[1].clone());
    assert_ne!(alice_web, bob_web);
    assert_ne!(alice_net, bob_net);

    for (tenant, (web_id, net_id), who) in
        [(&alice, (&alice_web, &alice_net), "alice"), (&bob, (&bob_web, &bob_net), "bob")]
    {
        // Both run, each under its own engine name and label.
        assert_eq!(container_state(web_id).split('|').nth(1), Some("running"));
        assert_eq!(engine_ok(&["inspect", "--format", "{{.Name}}", web_id]), format!("/{}", tenant.scoped(&web)));
        assert_eq!(engine_owner("container", web_id), tenant.tenant_id);
        assert_eq!(engine_owner("network", net_id), tenant.tenant_id);
        assert_eq!(engine_owner("volume", &tenant.scoped(&data)), tenant.tenant_id);

        // Each name resolves to the tenant's own object.
        assert_eq!(tenant.ok(&["inspect", "--format", "{{.Id}}", &web]), *web_id);
        assert_eq!(tenant.ok(&["network", "inspect", "--format", "{{.Id}}", &backend]), *net_id);
        let name_filter = format!("name={web}");
        assert_eq!(tenant.ok(&["ps", "-a", "-q", "--no-trunc", "--filter", &name_filter]), *web_id);
        assert_eq!(tenant.ok(&["ps", "-a", "--filter", &name_filter, "--format", "{{.Names}}"]), web);
        assert_eq!(tenant.ok(&["exec", &web, "cat", "/data/who"]), who);
        assert_eq!(tenant.ok(&["run", "--rm", "-v", &format!("{data}:/data"), image(), "cat", "/data/who"]), who);
        assert_eq!(networks_of(tenant, &web), std::slice::from_ref(&backend));
    }
});

it_test!(a_tenant_sees_its_own_names_unscoped, mtswarm_only("name scoping"), |t, gw, alice, bob| {
    let (web, api, linker, backend, data) =
        (t.name("web"), t.name("api"), t.name("linker"), t.name("backend"), t.name("data"));

    // Bob has a container on the shared bridge too, and his own `web` and `backend`.
    bob.ok(&["network", "create", &backend]);
    let bob_web = bob.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
    bob.ok(&["run", "-d", "--name", &api, "--network", &backend, image(), "sleep", "300"]);

    alice.ok(&["network", "create", &backend]);
    alice.ok(&["volume", "create", &data]);
    let id = alice.ok(&["run", "-d", "--name", &web, "-v", &format!("{data}:/data"), image(), "sleep", "300"]);
    alice.ok(&["network", "connect", &backend, &web]);
    alice.ok(&["run", "-d", "--name", &api, "--network", &backend, image(), "sleep", "300"]);
    alice.ok(&["run", "-d", "--name", &linker, "--link", &format!("{web}:db"), image(), "sleep", "300"]);

    let scope = alice.scope_prefix();
    let assert_unscoped = |what: &str, text: &str| {
        assert!(!text.contains(&scope), "{what} shows the engine-side prefix {scope:?}: {text}");
        assert!(!text.contains(&bob.tenant_id), "{what} shows bob's tenant id: {text}");
    };

    // ps and inspect.
    let names = alice.ok(&["ps", "--format", "{{.Names}}"]);
    assert_unscoped("ps", &names);
    let ps_names: Vec<String> = sorted_lines(&names);
    assert!(ps_names.iter().any(|n| n == &web), "{names}");
    let networks = alice.ok(&["ps", "--filter", &format!("name={api}"), "--format", "{{.Networks}}"]);
    assert_eq!(networks, backend);
    assert_eq!(alice.ok(&["inspect", "--format", "{{.Name}}", &web]), format!("/{web}"));
    assert_eq!(alice.ok(&["container", "inspect", "--format", "{{.Name}}", &id[..12]]), format!("/{web}"));
    let binds = alice.ok(&["inspect", "--format", "{{json .HostConfig.Binds}}", &web]);
    assert_eq!(binds, format!("[\"{data}:/data\"]"));
    assert_eq!(networks_of(&alice, &web), sorted(&[&backend, "bridge"]));
    let links = alice.ok(&["inspect", "--format", "{{json .HostConfig.Links}}", &linker]);
    assert_eq!(links, format!("[\"/{web}:/{linker}/db\"]"));

    // Network inspect: the network's name, and its containers (only alice's, also on the shared bridge).
    let net = alice.ok(&["network", "inspect", &backend]);
    assert_unscoped("network inspect", &net);
    assert_eq!(alice.ok(&["network", "inspect", "--format", "{{.Name}}", &backend]), backend);
    let members = |network: &str| {
        let out = alice.ok(&["network", "inspect", "--format", "{{range .Containers}}{{.Name}}\n{{end}}", network]);
        sorted_lines(&out)
    };
    assert_eq!(members(&backend), sorted(&[&web, &api]));
    assert_eq!(members("bridge"), sorted(&[&web, &linker]));
    let bridge = alice.ok(&["network", "inspect", "bridge"]);
    assert!(!bridge.contains(&bob_web), "alice's view of the bridge shows bob's container: {bridge}");
    assert_unscoped("network inspect bridge", &bridge);

    // Volumes.
    assert_eq!(alice.ok(&["volume", "inspect", "--format", "{{.Name}}", &data]), data);
    assert_eq!(alice.ok(&["volume", "ls", "--format", "{{.Name}}"]), data);
    let mounts = alice.ok(&["inspect", "--format", "{{range .Mounts}}{{.Name}}{{end}}", &web]);
    assert_eq!(mounts, data);

    // The engine's error messages name the container as alice does.
    let out = alice.docker(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
    assert_eq!(out.code, Some(125), "{out}");
    assert!(out.stderr.contains(&format!("\"/{web}\"")), "the conflict does not name /{web}: {out}");
    assert_unscoped("the conflict message", &out.stderr);
    let out = alice.docker(&["network", "create", &backend]);
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains(&backend), "{out}");
    assert_unscoped("the network conflict message", &out.stderr);
});

it_test!(events_show_only_own_objects_with_their_names, mtswarm_only("event scoping"), |t, gw, alice, bob| {
    let (web, backend, data, other) = (t.name("web"), t.name("backend"), t.name("data"), t.name("other"));

    let since = timestamp(Duration::ZERO, false);
    let alice_web = alice.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
    alice.ok(&["stop", "-t", "1", &web]);
    let alice_net = alice.ok(&["network", "create", &backend]);
    alice.ok(&["volume", "create", &data]);
    let bob_other = bob.ok(&["run", "-d", "--name", &other, image(), "sleep", "300"]);
    // A second from now: every event above has been logged by then, and `events` returns at that time.
    let until = timestamp(Duration::from_secs(1), true);
    let window = ["events", "--since", &since, "--until", &until];
    let events = |client: &Client, more: &[&str]| {
        let mut args = window.to_vec();
        args.extend_from_slice(more);
        client.ok(&args)
    };

    // Alice's own events name her objects as she does.
    let names = events(&alice, &["--filter", &format!("container={web}"), "--format", "{{.Actor.Attributes.name}}"]);
    let names = lines(&names);
    assert!(names.len() >= 3, "expected create, start, stop... of {web}: {names:?}");
    assert!(names.iter().all(|n| n == &web), "events name the container otherwise than {web}: {names:?}");
    let networks = events(&alice, &["--filter", "type=network", "--format", "{{.Action}} {{.Actor.Attributes.name}}"]);
    assert!(lines(&networks).contains(&format!("create {backend}")), "{networks}");
    let volumes = events(&alice, &["--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}"]);
    assert!(lines(&volumes).contains(&format!("create {data}")), "{volumes}");
    let all = events(&alice, &["--format", "{{json .}}"]);
    assert!(all.contains(&alice_web) && all.contains(&alice_net), "{all}");
    assert!(!all.contains(&alice.scope_prefix()), "alice's events show engine-side names: {all}");
    assert!(!all.contains(&bob_other) && !all.contains(&bob.tenant_id), "alice's events show bob's: {all}");

    // Bob's events hold only his.
    let all = events(&bob, &["--format", "{{json .}}"]);
    assert!(all.contains(&bob_other), "{all}");
    for leak in [&alice_web, &alice_net, &web, &backend, &data, &alice.tenant_id] {
        assert!(!all.contains(leak.as_str()), "bob's events show alice's {leak}: {all}");
    }
    assert_eq!(events(&bob, &["--filter", &format!("container={web}")]), "");
    assert_eq!(events(&bob, &["--filter", &format!("container={alice_web}")]), "");
});

// ---------------------------------------------------------------------------------------------------------
// Another tenant's objects answer as absent ones
// ---------------------------------------------------------------------------------------------------------

it_test!(another_tenants_container_answers_as_an_absent_one, mtswarm_only("tenant isolation"), |t, gw, alice, bob| {
    let (web, idle, frozen) = (t.name("web"), t.name("idle"), t.name("frozen"));

    let id = alice.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
    let idle_id = alice.ok(&["create", "--name", &idle, image(), "sleep", "300"]);
    let frozen_id = alice.ok(&["run", "-d", "--name", &frozen, image(), "sleep", "300"]);
    alice.ok(&["pause", &frozen]);
    let bob_own = bob.ok(&["run", "-d", "--name", &t.name("bob-own"), image(), "sleep", "300"]);

    let upload = t.path("pwned-upload");
    fs::write(&upload, "from bob\n").unwrap();
    let upload = upload.display().to_string();
    let copied = t.path("copied-out").display().to_string();
    let exported = t.path("exported.tar").display().to_string();
    let stolen = t.name("stolen");

    let no_such: &[&str] = &["No such container: {}"];
    let commands: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["inspect", "{}"], &["No such object: {}"]),
        (vec!["container", "inspect", "{}"], no_such),
        (vec!["start", "{}"], no_such),
        (vec!["stop", "-t", "1", "{}"], no_such),
        (vec!["kill", "{}"], no_such),
        (vec!["restart", "-t", "1", "{}"], no_such),
        (vec!["pause", "{}"], no_such),
        (vec!["unpause", "{}"], no_such),
        (vec!["rename", "{}", &stolen], no_such),
        (vec!["update", "--cpu-shares", "512", "{}"], no_such),
        (vec!["exec", "{}", "touch", "/tmp/pwned-exec"], no_such),
        (vec!["attach", "--no-stdin", "{}"], no_such),
        (vec!["logs", "{}"], no_such),
        (vec!["top", "{}"], no_such),
        (vec!["stats", "--no-stream", "{}"], no_such),
        (vec!["port", "{}"], no_such),
        (vec!["cp", "{}:/etc/hostname", &copied], no_such),
        (vec!["cp", &upload, "{}:/tmp/"], &[]),
        (vec!["export", "-o", &exported, "{}"], no_such),
        (vec!["diff", "{}"], no_such),
        (vec!["wait", "{}"], no_such),
        (vec!["rm", "{}"], no_such),
        (vec!["rm", "-f", "{}"], no_such),
        (vec!["network", "connect", "bridge", "{}"], no_such),
        (vec!["network", "disconnect", "bridge", "{}"], no_such),
    ];
    // Every command against the running `web`, by every kind of reference; the ones that would change a
    // created or a paused container against `idle` and `frozen`.
    let all_states = || containers_state(&[&id, &idle_id, &frozen_id]);
    let before = all_states();
    let references =
        |name: &str, cid: &str| [name.to_string(), cid.to_string(), cid[..12].to_string(), alice.scoped(name)];
    let mut attempts: Vec<(Vec<&str>, &[&str], String)> = Vec::new();
    for reference in references(&web, &id) {
        for (template, needle) in &commands {
            attempts.push((template.clone(), needle, reference.clone()));
        }
    }
    for (name, cid, templates) in [
        (
            &idle,
            &idle_id,
            vec![vec!["start", "{}"], vec!["rm", "{}"], vec!["rm", "-f", "{}"], vec!["rename", "{}", &stolen]],
        ),
        (
            &frozen,
            &frozen_id,
            vec![vec!["unpause", "{}"], vec!["kill", "{}"], vec!["rm", "-f", "{}"], vec!["stop", "-t", "1", "{}"]],
        ),
    ] {
        for reference in references(name, cid) {
            for template in &templates {
                attempts.push((template.clone(), no_such, reference.clone()));
            }
        }
    }
    for (template, needle, reference) in &attempts {
        let out = assert_as_absent(&bob, template, reference, needle);
        // `rm -f` of nothing succeeds; everything else exits 1.
        let code = if template[..2] == ["rm", "-f"] { 0 } else { 1 };
        assert_eq!(out.code, Some(code), "{out}");
        assert_eq!(
            all_states(),
            before,
            "`docker {}` by bob changed alice's containers",
            fill(template, reference).join(" ")
        );
        assert!(!std::path::Path::new(&copied).exists(), "bob copied a file out of alice's {reference}");
        assert!(!std::path::Path::new(&exported).exists(), "bob exported alice's {reference}");
    }
    let tmp = engine_ok(&["exec", &id, "ls", "-A", "/tmp"]);
    assert_eq!(tmp, "", "bob wrote into alice's container");
    assert_eq!(engine_ok(&["ps", "-a", "-q", "--filter", &format!("name={stolen}")]), "", "bob renamed something");

    // Raw HTTP: the statuses are an absent container's.
    for reference in [web.as_str(), id.as_str(), &id[..12]] {
        assert_http_as_absent(&bob, "GET", "/v1.41/containers/{}/json", reference, 404);
        assert_http_as_absent(&bob, "GET", "/v1.41/containers/{}/logs?stdout=1", reference, 404);
        assert_http_as_absent(&bob, "GET", "/v1.41/containers/{}/archive?path=/etc", reference, 404);
        assert_http_as_absent(&bob, "POST", "/v1.41/containers/{}/stop?t=1", reference, 404);
        assert_http_as_absent(&bob, "POST", "/v1.41/containers/{}/rename?name=x", reference, 404);
        assert_http_as_absent(&bob, "DELETE", "/v1.41/containers/{}?force=1", reference, 404);
    }
    assert_eq!(all_states(), before);

    // Bob's lists and filters never show alice's containers.
    let ps = bob.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]);
    assert_eq!(ps, format!("{bob_own} {}", t.name("bob-own")));
    for filter in [
        format!("name={web}"),
        format!("name={}", alice.scoped(&web)),
        format!("id={id}"),
        format!("id={}", &id[..12]),
        format!("label={TENANT_LABEL}={}", alice.tenant_id),
        format!("label={TENANT_LABEL}"),
    ] {
        let out = bob.ok(&["ps", "-a", "-q", "--filter", &filter]);
        if filter == format!("label={TENANT_LABEL}") {
            // Bob's own container may carry the label; alice's must not show.
            assert!(!out.contains(&id[..12]), "--filter {filter}: {out}");
        } else {
            assert_eq!(out, "", "bob's `ps -a --filter {filter}` shows alice's container");
        }
    }
});

it_test!(
    another_tenants_exec_instance_answers_as_an_absent_one,
    mtswarm_only("tenant isolation"),
    |t, gw, alice, bob| {
        let id = alice.ok(&["run", "-d", "--name", &t.name("web"), image(), "sleep", "300"]);
        let r = alice
            .http()
            .post_json(&format!("/v1.41/containers/{id}/exec"), &serde_json::json!({"Cmd": ["touch", "/tmp/pwned"]}));
        assert_eq!(r.status, 201, "{r}");
        let exec = r.json()["Id"].as_str().expect("an exec id").to_string();

        assert_http_as_absent(&bob, "GET", "/v1.41/exec/{}/json", &exec, 404);
        assert_http_as_absent(&bob, "POST", "/v1.41/exec/{}/resize?h=10&w=10", &exec, 404);
        let r = bob.http().post_json(&format!("/v1.41/exec/{exec}/start"), &serde_json::json!({"Detach": true}));
        assert_eq!(r.status, 404, "bob started alice's exec instance: {r}");
        assert_eq!(engine_ok(&["exec", &id, "ls", "-A", "/tmp"]), "", "bob's start ran alice's exec");

        // Alice's own exec instance is hers to inspect and start.
        let r = alice.http().get(&format!("/v1.41/exec/{exec}/json"));
        assert_eq!(r.status, 200, "{r}");
    }
);

it_test!(another_tenants_network_answers_as_an_absent_one, mtswarm_only("tenant isolation"), |t, gw, alice, bob| {
    let (backend, web, bob_web, bob_net) = (t.name("backend"), t.name("web"), t.name("bob-web"), t.name("bob-net"));

    let net = alice.ok(&["network", "create", &backend]);
    let web_id = alice.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
    alice.ok(&["network", "connect", &backend, &web]);
    bob.ok(&["run", "-d", "--name", &bob_web, image(), "sleep", "300"]);
    bob.ok(&["network", "create", &bob_net]);

    let not_found: &[&str] = &["network {} not found"];
    let commands: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["network", "inspect", "{}"], not_found),
        (vec!["network", "rm", "{}"], not_found),
        (vec!["network", "connect", "{}", &bob_web], not_found),
        (vec!["network", "disconnect", "{}", &bob_web], not_found),
        (vec!["network", "disconnect", "-f", "{}", &bob_web], not_found),
        (vec!["network", "disconnect", "{}", &web_id], &[]),
        (vec!["network", "disconnect", "{}", &web], &[]),
        (vec!["run", "--rm", "--network", "{}", image(), "true"], not_found),
    ];
    let before = (network_state(&net), container_state(&web_id));
    for reference in [backend.clone(), net.clone(), net[..12].to_string(), alice.scoped(&backend)] {
        for (template, needle) in &commands {
            assert_as_absent(&bob, template, &reference, needle);
            assert_eq!(
                (network_state(&net), container_state(&web_id)),
                before,
                "`docker {}` by bob changed alice's network or container",
                fill(template, &reference).join(" ")
            );
        }
        assert_http_as_absent(&bob, "GET", "/v1.41/networks/{}", &reference, 404);
        assert_http_as_absent(&bob, "DELETE", "/v1.41/networks/{}", &reference, 404);
    }
    // Alice's container cannot be connected to bob's network, nor disconnected from hers, by bob.
    for reference in [web.clone(), web_id.clone(), web_id[..12].to_string()] {
        assert_as_absent(&bob, &["network", "connect", &bob_net, "{}"], &reference, &["No such container: {}"]);
        assert_as_absent(&bob, &["network", "disconnect", "-f", "bridge", "{}"], &reference, &[]);
        assert_eq!((network_state(&net), container_state(&web_id)), before);
    }
    assert_eq!(networks_of(&bob, &bob_web), ["bridge"]);
    assert_eq!(
        sorted_lines(&bob.ok(&["network", "ls", "--format", "{{.Name}}"])),
        sorted(&[&bob_net, "bridge", "none"])
    );
    for filter in [format!("name={backend}"), format!("id={net}"), format!("label={TENANT_LABEL}={}", alice.tenant_id)]
    {
        assert_eq!(bob.ok(&["network", "ls", "-q", "--filter", &filter]), "", "bob's `network ls --filter {filter}`");
    }
});

it_test!(
    another_tenants_volume_answers_as_an_absent_one_and_a_mount_makes_the_tenants_own,
    mtswarm_only("tenant isolation"),
    |t, gw, alice, bob| {
        let (data, data2) = (t.name("data"), t.name("data2"));

        for vol in [&data, &data2] {
            alice.ok(&["volume", "create", vol]);
            alice.ok(&[
                "run",
                "--rm",
                "-v",
                &format!("{vol}:/x"),
                image(),
                "sh",
                "-c",
                "echo alice-secret > /x/secret",
            ]);
        }
        let alice_data = alice.scoped(&data);
        let owner_before = engine_owner("volume", &alice_data);

        let not_found: &[&str] = &["get {}: no such volume"];
        for reference in [data.clone(), alice_data.clone()] {
            for template in [&["volume", "inspect", "{}"][..], &["volume", "rm", "{}"], &["volume", "rm", "-f", "{}"]] {
                assert_as_absent(&bob, template, &reference, if template.contains(&"-f") { &[] } else { not_found });
                assert_eq!(
                    engine_owner("volume", &alice_data),
                    owner_before,
                    "bob's `{}` changed alice's volume",
                    template.join(" ")
                );
            }
            assert_http_as_absent(&bob, "GET", "/v1.41/volumes/{}", &reference, 404);
            assert_http_as_absent(&bob, "DELETE", "/v1.41/volumes/{}?force=1", &reference, 404);
        }
        assert_eq!(bob.ok(&["volume", "ls", "-q"]), "");
        for filter in [format!("name={data}"), format!("label={TENANT_LABEL}={}", alice.tenant_id)] {
            assert_eq!(bob.ok(&["volume", "ls", "-q", "--filter", &filter]), "", "bob's `volume ls --filter {filter}`");
        }

        // Naming alice's volume in a mount gives bob his own new, empty volume.
        let seen = bob.ok(&["run", "--rm", "-v", &format!("{data}:/x"), image(), "ls", "-A", "/x"]);
        assert_eq!(seen, "", "bob's -v {data} mounted alice's volume");
        let seen =
            bob.ok(&["run", "--rm", "--mount", &format!("type=volume,src={data2},dst=/x"), image(), "ls", "-A", "/x"]);
        assert_eq!(seen, "", "bob's --mount of {data2} mounted alice's volume");
        let seen = bob.ok(&["run", "--rm", "-v", &format!("{alice_data}:/x"), image(), "ls", "-A", "/x"]);
        assert_eq!(seen, "", "bob's -v with alice's engine-side name mounted alice's volume");
        for vol in [&data, &data2] {
            assert_eq!(engine_owner("volume", &bob.scoped(vol)), bob.tenant_id);
            assert_eq!(engine_owner("volume", &alice.scoped(vol)), alice.tenant_id);
            let secret = alice.ok(&["run", "--rm", "-v", &format!("{vol}:/x"), image(), "cat", "/x/secret"]);
            assert_eq!(secret, "alice-secret");
        }
        assert_eq!(
            sorted_lines(&bob.ok(&["volume", "ls", "--format", "{{.Name}}"])),
            sorted(&[&data, &data2, &alice_data])
        );
        assert_eq!(sorted_lines(&alice.ok(&["volume", "ls", "--format", "{{.Name}}"])), sorted(&[&data, &data2]));
    }
);

// ---------------------------------------------------------------------------------------------------------
// Lists, cross-references, prune, predefined networks, the admin
// ---------------------------------------------------------------------------------------------------------

it_test!(lists_show_only_own_objects, mtswarm_only("tenant isolation"), |t, gw, alice, bob| {
    let (web, idle, backend, data) = (t.name("web"), t.name("idle"), t.name("backend"), t.name("data"));
    let (bweb, bnet, bdata) = (t.name("bweb"), t.name("bnet"), t.name("bdata"));

    alice.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
    alice.ok(&["create", "--name", &idle, image(), "true"]);
    alice.ok(&["network", "create", &backend]);
    alice.ok(&["volume", "create", &data]);
    bob.ok(&["run", "-d", "--name", &bweb, image(), "sleep", "300"]);
    bob.ok(&["network", "create", &bnet]);
    bob.ok(&["volume", "create", &bdata]);

    assert_eq!(sorted_lines(&alice.ok(&["ps", "-a", "--format", "{{.Names}}"])), sorted(&[&web, &idle]));
    assert_eq!(alice.ok(&["ps", "--format", "{{.Names}}"]), web);
    assert_eq!(bob.ok(&["ps", "-a", "--format", "{{.Names}}"]), bweb);
    assert_eq!(
        sorted_lines(&alice.ok(&["network", "ls", "--format", "{{.Name}}"])),
        sorted(&[&backend, "bridge", "none"])
    );
    assert_eq!(sorted_lines(&bob.ok(&["network", "ls", "--format", "{{.Name}}"])), sorted(&[&bnet, "bridge", "none"]));
    assert_eq!(alice.ok(&["volume", "ls", "--format", "{{.Name}}"]), data);
    assert_eq!(bob.ok(&["volume", "ls", "--format", "{{.Name}}"]), bdata);

    let df = |client: &Client| {
        let out = client.ok(&["system", "df", "--format", "{{.Type}}\t{{.TotalCount}}"]);
        lines(&out)
            .into_iter()
            .filter(|l| l.starts_with("Containers") || l.starts_with("Local Volumes"))
            .collect::<Vec<_>>()
    };
    assert_eq!(df(&alice), ["Containers\t2", "Local Volumes\t1"]);
    assert_eq!(df(&bob), ["Containers\t1", "Local Volumes\t1"]);
    let counts = "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}";
    assert_eq!(alice.ok(&["info", "--format", counts]), "2 1 0 1");
    assert_eq!(bob.ok(&["info", "--format", counts]), "1 1 0 0");

    // The client's filters narrow the tenant's list; they never replace the tenant filter.
    let alice_label = format!("label={TENANT_LABEL}={}", alice.tenant_id);
    let bob_label = format!("label={TENANT_LABEL}={}", bob.tenant_id);
    assert_eq!(bob.ok(&["ps", "-a", "-q", "--filter", &alice_label]), "");
    assert_eq!(alice.ok(&["ps", "-a", "-q", "--filter", &bob_label]), "");
    assert_eq!(bob.ok(&["ps", "-a", "-q", "--filter", &format!("name={web}")]), "");
    assert_eq!(bob.ok(&["ps", "-a", "-q", "--filter", &format!("name={}", t.tag)]).lines().count(), 1);
    assert_eq!(bob.ok(&["ps", "-a", "-q", "--filter", "status=created"]), "");
    assert_eq!(bob.ok(&["network", "ls", "-q", "--filter", &alice_label]), "");
    assert_eq!(bob.ok(&["volume", "ls", "-q", "--filter", &alice_label]), "");
    assert_eq!(bob.ok(&["network", "ls", "-q", "--filter", "name=host"]), "", "the host network is listed");
    assert_eq!(bob.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]), bdata);
});

it_test!(
    cross_references_resolve_among_the_tenants_own_objects,
    mtswarm_only("tenant isolation"),
    |t, gw, alice, bob| {
        let (web, backend, data) = (t.name("web"), t.name("backend"), t.name("data"));

        // `web` holds `data` (with a file naming its owner), shares its IPC, and runs a command naming its owner.
        let start_web = |client: &Client, who: &str, sleep: &str| -> (String, String) {
            client.ok(&["volume", "create", &data]);
            write_owner(client, &data, who);
            let net = client.ok(&["network", "create", &backend]);
            let id = client.ok(&[
                "run",
                "-d",
                "--name",
                &web,
                "--ipc",
                "shareable",
                "-v",
                &format!("{data}:/data"),
                image(),
                "sleep",
                sleep,
            ]);
            (id, net)
        };
        // What each cross-reference reaches, as seen from a new container of `client`.
        let check_own = |client: &Client, id: &str, who: &str, sleep: &str| {
            // The default network is the tenant's own bridge, a user-defined network: a link is a name the engine's
            // DNS answers there (not an /etc/hosts line, as on the engine's bridge), and the address is that network's.
            let ip =
                engine_ok(&["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id]);
            let out = client.docker(&[
                "run",
                "--rm",
                "--link",
                &format!("{web}:db"),
                image(),
                "ping",
                "-c",
                "1",
                "-W",
                "3",
                "db",
            ]);
            assert!(
                out.stdout.contains(&format!("PING db ({ip})")),
                "--link {web}:db did not link {who}'s web ({ip}): {out}"
            );
            assert_eq!(client.ok(&["run", "--rm", "--volumes-from", &web, image(), "cat", "/data/who"]), who);
            let hostname = engine_ok(&["inspect", "--format", "{{.Config.Hostname}}", id]);
            let net = format!("container:{web}");
            assert_eq!(client.ok(&["run", "--rm", "--network", &net, image(), "cat", "/etc/hostname"]), hostname);
            let procs = client.ok(&["run", "--rm", "--pid", &net, image(), "ps", "-o", "args"]);
            assert!(
                lines(&procs).iter().any(|l| l == &format!("sleep {sleep}")),
                "--pid {net} is not {who}'s: {procs}"
            );
            client.ok(&["run", "--rm", "--ipc", &net, image(), "true"]);
            let probe = t.name(&format!("probe-{who}"));
            client.ok(&["create", "--name", &probe, "--network", &backend, image(), "true"]);
            assert_eq!(client.ok(&["inspect", "--format", "{{.HostConfig.NetworkMode}}", &probe]), backend);
            assert_eq!(
                engine_ok(&["inspect", "--format", "{{.HostConfig.NetworkMode}}", &client.scoped(&probe)]),
                client.scoped(&backend)
            );
            client.ok(&["rm", &probe]);
        };

        let (alice_web, alice_net) = start_web(&alice, "alice", "301");
        check_own(&alice, &alice_web, "alice", "301");
        let alice_state = container_state(&alice_web);

        // Bob, who has no `web` and no `backend`, reaches nothing of alice's by her names or ids.
        // A `container:` mode may be refused by the host-escape policy ("... is not one", 403) instead of not found:
        // the same answer for an absent container, which is what matters.
        let no_such: &[&str] = &["No such container: {}"];
        let no_such_or_not_own: &[&str] = &["No such container: {}", "\"{}\" is not one"];
        for reference in [web.clone(), alice_web.clone(), alice_web[..12].to_string()] {
            for (template, needle) in [
                (vec!["run", "--rm", "--link", "{}:db", image(), "true"], no_such),
                (vec!["run", "--rm", "--volumes-from", "{}", image(), "cat", "/data/who"], no_such),
                (vec!["run", "--rm", "--network", "container:{}", image(), "true"], no_such_or_not_own),
                (vec!["run", "--rm", "--pid", "container:{}", image(), "true"], no_such_or_not_own),
                (vec!["run", "--rm", "--ipc", "container:{}", image(), "true"], no_such_or_not_own),
            ] {
                let out = assert_as_absent(&bob, &template, &reference, needle);
                assert_eq!(out.code, Some(125), "{out}");
            }
        }
        for reference in [backend.clone(), alice_net.clone(), alice_net[..12].to_string()] {
            let out = assert_as_absent(
                &bob,
                &["run", "--rm", "--network", "{}", image(), "true"],
                &reference,
                &["network {} not found"],
            );
            assert_eq!(out.code, Some(125), "{out}");
        }
        assert_eq!(container_state(&alice_web), alice_state);

        // Once bob has his own `web` and `backend`, the same names reach his.
        let (bob_web, _) = start_web(&bob, "bob", "302");
        check_own(&bob, &bob_web, "bob", "302");
        assert_eq!(container_state(&alice_web), alice_state);
        check_own(&alice, &alice_web, "alice", "301");
    }
);

it_test!(prune_removes_only_the_tenants_own_objects, mtswarm_only("tenant isolation"), |t, gw, alice, bob| {
    let label = t.label();
    let filter = format!("label={label}");

    let mut made = Vec::new();
    for (client, who) in [(&alice, "alice"), (&bob, "bob")] {
        let (dead, vol, net) =
            (t.name(&format!("{who}-dead")), t.name(&format!("{who}-vol")), t.name(&format!("{who}-net")));
        let id = client.ok(&["create", "--label", &label, "--name", &dead, image(), "true"]);
        client.ok(&["volume", "create", "--label", &label, &vol]);
        let net_id = client.ok(&["network", "create", "--label", &label, &net]);
        made.push((id, vol, net, net_id));
    }
    let (alice_dead, alice_vol, alice_net_name, alice_net) = made[0].clone();
    let (bob_dead, bob_vol, bob_net_name, bob_net) = made[1].clone();

    let out = alice.ok(&["container", "prune", "-f", "--filter", &filter]);
    assert!(out.contains(&alice_dead) && !out.contains(&bob_dead), "alice's container prune: {out}");
    let out = alice.ok(&["volume", "prune", "-f", "--filter", &filter]);
    assert!(out.contains(&alice_vol) && !out.contains(&bob_vol), "alice's volume prune: {out}");
    assert!(!out.contains(&alice.scoped(&alice_vol)), "the prune names alice's volume by its engine name: {out}");
    let out = alice.ok(&["network", "prune", "-f", "--filter", &filter]);
    assert!(out.contains(&alice_net_name) && !out.contains(&bob_net_name), "alice's network prune: {out}");
    assert!(!out.contains(&alice.scoped(&alice_net_name)), "the prune names alice's network by its engine name: {out}");

    // Alice's are gone, bob's all there, on the engine and in bob's view.
    assert_eq!(alice.ok(&["ps", "-a", "-q"]), "");
    assert_eq!(alice.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(sorted_lines(&alice.ok(&["network", "ls", "--format", "{{.Name}}"])), sorted(&["bridge", "none"]));
    assert!(!engine_docker(&["inspect", &alice_dead]).success());
    assert!(!engine_docker(&["network", "inspect", &alice_net]).success());
    assert!(!engine_docker(&["volume", "inspect", &alice.scoped(&alice_vol)]).success());
    assert_eq!(engine_owner("container", &bob_dead), bob.tenant_id);
    assert_eq!(engine_owner("network", &bob_net), bob.tenant_id);
    assert_eq!(engine_owner("volume", &bob.scoped(&bob_vol)), bob.tenant_id);
    assert_eq!(bob.ok(&["ps", "-a", "-q", "--no-trunc"]), bob_dead);
    assert_eq!(bob.ok(&["volume", "ls", "-q"]), bob_vol);

    // Bob's prune takes his.
    bob.ok(&["container", "prune", "-f", "--filter", &filter]);
    bob.ok(&["volume", "prune", "-f", "--filter", &filter]);
    bob.ok(&["network", "prune", "-f", "--filter", &filter]);
    assert_eq!(bob.ok(&["ps", "-a", "-q"]), "");
    assert_eq!(bob.ok(&["volume", "ls", "-q"]), "");
    assert!(!engine_docker(&["network", "inspect", &bob_net]).success());
});

it_test!(
    the_host_network_is_refused_and_bridge_and_none_work,
    mtswarm_only("the predefined networks rule"),
    |t, gw, alice| {
        let c = t.name("c");

        let before = forbidden_so_far(&gw);
        let out = alice.docker(&["run", "--rm", "--name", &c, "--network", "host", image(), "true"]);
        assert_eq!(out.code, Some(125), "{out}");
        assert_eq!(forbidden_so_far(&gw), before + 1, "not one 403 for {out}");
        assert_eq!(engine_ok(&["ps", "-a", "-q", "--filter", &format!("name={c}")]), "");

        assert_eq!(alice.ok(&["run", "--rm", "--network", "none", image(), "ls", "/sys/class/net"]), "lo");
        let nets = alice.ok(&["run", "--rm", "--network", "bridge", image(), "ls", "/sys/class/net"]);
        assert_eq!(sorted_lines(&nets), ["eth0", "lo"]);
        let id = alice.ok(&["run", "-d", "--name", &c, "--network", "none", image(), "sleep", "300"]);
        assert_eq!(networks_of(&alice, &id), ["none"]);
    }
);

it_test!(
    the_admin_sees_everything_with_engine_names_and_labels,
    mtswarm_only("the admin tenant"),
    |t, gw, alice, bob, admin| {
        let (web, backend, data) = (t.name("web"), t.name("backend"), t.name("data"));

        for tenant in [&alice, &bob] {
            tenant.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
            tenant.ok(&["network", "create", &backend]);
            tenant.ok(&["volume", "create", &data]);
        }
        let mine = format!("name={}", t.tag);
        let label = format!("{{{{.Label \"{TENANT_LABEL}\"}}}}");
        let ps = admin.ok(&["ps", "-a", "--filter", &mine, "--format", &format!("{{{{.Names}}}} {label}")]);
        let expected = |item: &str| {
            let mut v = vec![
                format!("{} {}", alice.scoped(item), alice.tenant_id),
                format!("{} {}", bob.scoped(item), bob.tenant_id),
            ];
            v.sort();
            v
        };
        assert_eq!(sorted_lines(&ps), expected(&web));
        let nets = admin.ok(&["network", "ls", "--filter", &mine, "--format", &format!("{{{{.Name}}}} {label}")]);
        // Each tenant's default network too (its `bridge`, made by the first run).
        let mut nets_expected = [expected(&backend), expected("bridge")].concat();
        nets_expected.sort();
        assert_eq!(sorted_lines(&nets), nets_expected);
        let vols = admin.ok(&["volume", "ls", "--filter", &mine, "--format", &format!("{{{{.Name}}}} {label}")]);
        assert_eq!(sorted_lines(&vols), expected(&data));
        assert!(lines(&admin.ok(&["network", "ls", "--format", "{{.Name}}"])).iter().any(|n| n == "host"));

        // The admin names objects by their engine names, and may act on them.
        let alice_web = alice.scoped(&web);
        assert_eq!(admin.ok(&["inspect", "--format", "{{.Name}}", &alice_web]), format!("/{alice_web}"));
        admin.ok(&["stop", "-t", "1", &alice_web]);
        assert_eq!(alice.ok(&["inspect", "--format", "{{.State.Status}}", &web]), "exited");
    }
);

it_test!(
    containers_reach_each_other_by_their_own_names_on_a_tenant_network,
    mtswarm_only("name scoping"),
    |t, gw, alice| {
        let (web, backend) = (t.name("web"), t.name("backend"));

        alice.ok(&["network", "create", &backend]);
        let id = alice.ok(&["run", "-d", "--name", &web, "--network", &backend, image(), "sleep", "300"]);
        let ip = engine_ok(&[
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", alice.scoped(&backend)),
            &id,
        ]);
        let out = alice.docker(&["run", "--rm", "--network", &backend, image(), "ping", "-c", "1", "-W", "5", &web]);
        assert!(
            out.success() && out.stdout.contains(&ip),
            "{web} does not resolve to {ip} on alice's {backend}: {out}"
        );
    }
);

// An id prefix of a network is matched among the tenant's own networks and the shared ones: the engine matches it
// among every tenant's, and its "ambiguous (N matches ...)" told a tenant that other tenants' networks exist and
// how many share the prefix.
it_test!(
    a_network_id_prefix_tells_nothing_of_other_tenants_networks,
    mtswarm_only("network id prefixes"),
    |t, gw, alice, bob| {
        let own = t.name("own");
        let own_id = alice.ok(&["network", "create", &own]);
        // Her first container makes her default bridge: it is one of hers too, and its id must count among them
        // (made later by the `run` below, it was found by the prefix one time in sixteen).
        alice.ok(&["create", image(), "true"]);
        // Bob's networks, until two of them share a first hex digit that none of alice's has.
        let alice_ids: Vec<String> = engine_ok(&[
            "network",
            "ls",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label={TENANT_LABEL}={}", alice.tenant_id),
        ])
        .lines()
        .map(str::to_string)
        .collect();
        let mut prefix = None;
        for i in 0..40 {
            bob.ok(&["network", "create", &t.name(&format!("b{i}"))]);
            let all = engine_ok(&["network", "ls", "-q", "--no-trunc"]);
            let shared = engine_ok(&["network", "ls", "-q", "--no-trunc", "--filter", "name=^(bridge|none|host)$"]);
            let others: Vec<&str> =
                all.lines().filter(|id| !alice_ids.iter().any(|a| a == id) && !shared.contains(id)).collect();
            prefix = (b'0'..=b'f').map(|c| (c as char).to_string()).find(|p| {
                others.iter().filter(|id| id.starts_with(p.as_str())).count() >= 2
                    && !alice_ids.iter().any(|a| a.starts_with(p.as_str()))
                    && !shared.lines().any(|s| s.starts_with(p.as_str()))
            });
            if prefix.is_some() {
                break;
            }
        }
        let prefix = prefix.expect("two of bob's networks share a first digit");
        // On the engine the prefix is ambiguous; alice is told it names nothing, as on an engine of her own.
        let direct = engine_docker(&["network", "inspect", &prefix]);
        assert!(direct.stderr.contains("ambiguous"), "{direct}");
        let err = alice.fails(&["network", "inspect", &prefix]);
        assert!(err.contains(&format!("network {prefix} not found")), "{err}");
        assert!(!err.contains("ambiguous"), "{err}");
        let err = alice.fails(&["run", "--rm", "--network", &prefix, image(), "true"]);
        assert!(!err.contains("ambiguous") && err.contains("not found"), "{err}");
        // Her own network by a prefix of its id, as the CLI shows it.
        let name = alice.ok(&["network", "inspect", "--format", "{{.Name}}", &own_id[..12]]);
        assert_eq!(name, own);
    }
);

// A tenant's inspect by full id or name is sent to the engine as the tenant gave it, and the answer's owner label
// decides (issue 15: one call to the engine, not a resolving inspect and then the inspect). What the engine finds
// under that reference but is not the tenant's must answer as before: as absent, or as what resolving finds next.
it_test!(
    a_tenants_inspect_shows_only_its_own_container_whatever_the_engine_finds_first,
    mtswarm_only("name scoping"),
    |t, gw, alice, bob| {
        let (web, op, gone) = (t.name("web"), t.name("op"), t.name("gone"));
        let bob_web = bob.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
        let alice_web = alice.ok(&["run", "-d", "--name", &web, image(), "sleep", "300"]);
        // Alice names a container with bob's full id: the id is not hers, so her reference names her container.
        let alice_named = alice.ok(&["create", "--name", &bob_web, image(), "true"]);
        // The operator made a container under alice's engine-side name, without her label.
        let op_id = engine_ok(&["create", "--name", &alice.scoped(&op), image(), "true"]);

        let fmt = "{{.Id}} {{.Name}}";
        assert_eq!(alice.ok(&["container", "inspect", "--format", fmt, &web]), format!("{alice_web} /{web}"));
        assert_eq!(alice.ok(&["container", "inspect", "--format", fmt, &alice_web]), format!("{alice_web} /{web}"));
        assert_eq!(
            alice.ok(&["container", "inspect", "--format", fmt, &alice_web[..12]]),
            format!("{alice_web} /{web}")
        );
        assert_eq!(alice.ok(&["container", "inspect", "--format", fmt, &bob_web]), format!("{alice_named} /{bob_web}"));
        assert_eq!(bob.ok(&["container", "inspect", "--format", fmt, &web]), format!("{bob_web} /{web}"));
        // The owner's label is mtswarm's business, in the one-call answer as in any other.
        let labels = alice.ok(&["container", "inspect", "--format", "{{json .Config.Labels}}", &web]);
        assert!(!labels.contains(TENANT_LABEL), "{labels}");

        // Another tenant's container, by its full id or its engine-side name, and the operator's container under
        // alice's engine-side name, answer as a name that is nowhere.
        let http = alice.http();
        for reference in [alice_web.as_str(), &alice.scoped(&web)] {
            let r = bob.http().get(&format!("/v1.41/containers/{reference}/json"));
            assert_eq!(r.status, 404, "{r}");
            assert_eq!(r.json()["message"], format!("No such container: {reference}"), "{r}");
        }
        for reference in [op.as_str(), gone.as_str()] {
            let r = http.get(&format!("/v1.41/containers/{reference}/json"));
            assert_eq!(r.status, 404, "{r}");
            assert_eq!(r.json()["message"], format!("No such container: {reference}"), "{r}");
        }
        let err = bob.fails(&["container", "inspect", &alice_web]);
        assert!(err.contains(&format!("No such container: {alice_web}")), "{err}");

        // Nothing was changed on the engine: the operator's container is still unlabelled, alice's still hers.
        let op_labels = engine_ok(&["inspect", "--format", "{{json .Config.Labels}}", &op_id]);
        assert!(!op_labels.contains(TENANT_LABEL), "{op_labels}");
        let owner = format!("{{{{index .Config.Labels \"{TENANT_LABEL}\"}}}}");
        assert_eq!(engine_ok(&["inspect", "--format", &owner, &alice_web]), alice.tenant_id);
        let _ = gw;
    }
);
