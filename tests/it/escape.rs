//! No host escapes for tenants, and the image catalogue is the admin's to change (issue 4), through the real
//! docker CLI and raw HTTP. Every flag that would reach the host is refused with 403 and a message naming the
//! field, nothing refused reaches the engine, and the same container without the flag runs. The admin tenant is
//! not limited.
//!
//! That a refusal is a 403 is read from the gateway's request log (`status=403`), since the CLI does not show
//! statuses; raw HTTP checks the status itself.

use std::fs;
use std::time::Duration;

use crate::support::auth::*;
use crate::support::*;

const SLOW: Duration = Duration::from_secs(120);

/// How many requests the gateway has answered with 403 so far.
fn forbidden_so_far(gw: &Gateway) -> usize {
    gw.stderr_text().lines().filter(|l| l.contains("status=403")).count()
}

/// Asserts that `docker ARGS` fails because the gateway answered exactly one request with 403, and that the
/// CLI shows the daemon's message with `needle` (a field's name, or the admin-only wording) in it.
fn assert_refused(gw: &Gateway, client: &Client, args: &[&str], needle: &str) -> Output {
    assert_refused_with(gw, client, args, RunOpts::default(), needle)
}

fn assert_refused_with(gw: &Gateway, client: &Client, args: &[&str], opts: RunOpts, needle: &str) -> Output {
    let before = forbidden_so_far(gw);
    let out = client.run(args, opts);
    assert!(!out.success(), "expected a refusal naming {needle:?}: {out}");
    assert!(
        out.stderr.contains("Error response from daemon") && out.stderr.contains(needle),
        "expected the daemon's refusal naming {needle:?}: {out}\n{}",
        gw.stderr()
    );
    assert_eq!(forbidden_so_far(gw), before + 1, "not exactly one 403 for {out}\n{}", gw.stderr());
    out
}

/// `docker run --rm --name NAME FLAGS... IMAGE true` is refused naming `field`, exits 125 as `run` does when
/// the daemon refuses, and no container of that name reached the engine.
fn assert_run_refused(gw: &Gateway, client: &Client, name: &str, flags: &[&str], field: &str) {
    let mut args = vec!["run", "--rm", "--name", name];
    args.extend_from_slice(flags);
    args.extend([image(), "true"]);
    let out = assert_refused(gw, client, &args, field);
    assert_eq!(out.code, Some(125), "{out}");
    assert_no_container(name);
}

/// `docker run --rm FLAGS... IMAGE CMD...` succeeds; returns its stdout trimmed.
fn assert_runs(gw: &Gateway, client: &Client, flags: &[&str], cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.push(image());
    args.extend_from_slice(if cmd.is_empty() { &["true"] } else { cmd });
    let out = client.docker(&args);
    assert!(out.success(), "expected the allowed neighbour to run: {out}\n{}", gw.stderr());
    out.stdout.trim().to_string()
}

/// Asserts that the engine has no container whose name contains `name`: a refused request was not forwarded.
fn assert_no_container(name: &str) {
    let found = engine_ok(&["ps", "-a", "-q", "--filter", &format!("name={name}")]);
    assert_eq!(found, "", "a refused request still created container {name} on the engine");
}

/// Asserts that the engine has no image `reference`.
fn assert_no_image(reference: &str) {
    let out = engine_docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
    assert!(!out.success(), "a refused request still made the image {reference} on the engine: {out}");
}

/// Runs each `(flags, field)` as a refused `docker run` of a new container, then the allowed neighbours.
fn check_table(t: &Test, gw: &Gateway, client: &Client, refused: &[(&[&str], &str)], allowed: &[&[&str]]) {
    for (i, (flags, field)) in refused.iter().enumerate() {
        assert_run_refused(gw, client, &t.name(&format!("refused{i}")), flags, field);
    }
    for flags in allowed {
        assert_runs(gw, client, flags, &[]);
    }
}

it_test!(
    privileges_capabilities_devices_cgroups_and_runtimes_are_refused,
    mtswarm_only("the host-escape rules"),
    |t, gw, alice| {
        check_table(
            &t,
            &gw,
            &alice,
            &[
                (&["--privileged"], "HostConfig.Privileged"),
                (&["--cap-add", "SYS_ADMIN"], "HostConfig.CapAdd"),
                (&["--cap-add", "ALL"], "HostConfig.CapAdd"),
                (&["--device", "/dev/null"], "HostConfig.Devices"),
                (&["--device-cgroup-rule", "c 1:3 r"], "HostConfig.DeviceCgroupRules"),
                (&["--cgroup-parent", "foo"], "HostConfig.CgroupParent"),
                (&["--runtime", "foo"], "HostConfig.Runtime"),
            ],
            &[&[], &["--cap-add", "NET_BIND_SERVICE"], &["--cap-drop", "ALL"]],
        );
        // Root inside the container is the tenant's business.
        assert_eq!(assert_runs(&gw, &alice, &["--user", "0"], &["id", "-u"]), "0");
    }
);

it_test!(host_paths_are_refused_and_named_volumes_allowed, mtswarm_only("the host-escape rules"), |t, gw, alice| {
    check_table(
        &t,
        &gw,
        &alice,
        &[
            (&["-v", "/etc:/host"], "HostConfig.Binds"),
            (&["-v", "/:/host:ro"], "HostConfig.Binds"),
            // The CLI makes a relative path absolute: a host path all the same.
            (&["-v", "./x:/x"], "HostConfig.Binds"),
            (&["--mount", "type=bind,src=/,dst=/h"], "HostConfig.Mounts"),
        ],
        &[],
    );
    let vol = t.name("data");
    let mount_vol = t.name("mounted");
    assert_eq!(
        assert_runs(&gw, &alice, &["-v", &format!("{vol}:/data")], &["sh", "-c", "echo ok > /data/f && cat /data/f"]),
        "ok"
    );
    assert_runs(&gw, &alice, &["--mount", &format!("type=volume,src={mount_vol},dst=/data")], &[]);
    assert_runs(&gw, &alice, &["--mount", "type=tmpfs,dst=/scratch"], &[]);
    assert_runs(&gw, &alice, &["-v", "/anonymous"], &[]);

    // A local volume whose options bind a host path: refused at volume create, and never made.
    let bound = t.name("bound");
    assert_refused(
        &gw,
        &alice,
        &["volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=/etc", &bound],
        "DriverOpts",
    );
    let found = engine_ok(&["volume", "ls", "-q", "--filter", &format!("name={bound}")]);
    assert_eq!(found, "", "the refused volume {bound} was created on the engine");
    // The same volume as a mount's options, created on the fly by `run`.
    let bound2 = t.name("bound2");
    assert_run_refused(
        &gw,
        &alice,
        &t.name("refused-mount-opts"),
        &[
            "--mount",
            &format!("type=volume,src={bound2},dst=/h,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/etc"),
        ],
        "DriverConfig.Options",
    );
    let found = engine_ok(&["volume", "ls", "-q", "--filter", &format!("name={bound2}")]);
    assert_eq!(found, "", "the refused volume {bound2} was created on the engine");

    // Plain volumes and tmpfs volumes with options stay allowed.
    let plain = t.name("plain");
    assert_eq!(alice.ok(&["volume", "create", &plain]), plain);
    let tmpfs = t.name("tmpfs");
    assert_eq!(
        alice.ok(&["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", &tmpfs]),
        tmpfs
    );
    assert_runs(&gw, &alice, &["-v", &format!("{tmpfs}:/t")], &[]);
});

it_test!(host_namespaces_and_global_sysctls_are_refused, mtswarm_only("the host-escape rules"), |t, gw, alice| {
    check_table(
        &t,
        &gw,
        &alice,
        &[
            (&["--pid", "host"], "HostConfig.PidMode"),
            (&["--ipc", "host"], "HostConfig.IpcMode"),
            (&["--uts", "host"], "HostConfig.UTSMode"),
            (&["--userns", "host"], "HostConfig.UsernsMode"),
            (&["--net", "host"], "HostConfig.NetworkMode"),
            (&["--network", "host"], "HostConfig.NetworkMode"),
            // A namespaced sysctl is no way around the namespace rules.
            (&["--ipc", "host", "--sysctl", "kernel.shmmni=8192"], "HostConfig.IpcMode"),
        ],
        &[&["--ipc", "private"], &["--network", "none"], &["--network", "bridge"], &["--sysctl", "kernel.shmmni=8192"]],
    );
    // A network sysctl acts in the container's own network namespace (the default bridge gives it one).
    let got =
        assert_runs(&gw, &alice, &["--sysctl", "net.ipv4.ip_forward=1"], &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(got, "1");

    // The CLI itself refuses sysctls outside its list (`--sysctl kernel.domainname=x` never leaves it), so the
    // gateway's rule is shown with raw HTTP: a sysctl outside the container's namespaces changes the host kernel.
    let http = alice.http();
    for (suffix, key, value) in [
        ("domainname", "kernel.domainname", "x"),
        ("core-pattern", "kernel.core_pattern", "|/tmp/escape"),
        ("vm", "vm.overcommit_memory", "1"),
        ("slash", "net/../kernel/core_pattern", "|/tmp/escape"),
    ] {
        let name = t.name(&format!("sysctl-{suffix}"));
        let body = serde_json::json!({"Image": image(), "HostConfig": {"Sysctls": {key: value}}});
        assert_error(&http.post_json(&format!("/containers/create?name={name}"), &body), 403, "HostConfig.Sysctls");
        assert_no_container(&name);
    }
});

it_test!(
    security_options_that_weaken_confinement_are_refused,
    mtswarm_only("the host-escape rules"),
    |t, gw, alice| {
        check_table(
            &t,
            &gw,
            &alice,
            &[
                (&["--security-opt", "seccomp=unconfined"], "HostConfig.SecurityOpt"),
                (&["--security-opt", "apparmor=unconfined"], "HostConfig.SecurityOpt"),
                (&["--security-opt", "label=disable"], "HostConfig.SecurityOpt"),
                (&["--security-opt", "no-new-privileges=false"], "HostConfig.SecurityOpt"),
                (&["--security-opt", "systempaths=unconfined"], "HostConfig."),
            ],
            &[&["--security-opt", "no-new-privileges"], &["--security-opt", "no-new-privileges=true"]],
        );
    }
);

it_test!(
    exec_privileged_and_update_of_the_cgroup_parent_are_refused,
    mtswarm_only("the host-escape rules"),
    |t, gw, alice| {
        let c = t.name("target");
        let id = alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
        assert_full_id(&id);
        let exec_ids = || engine_ok(&["inspect", "--format", "{{len .ExecIDs}}", &id]);

        let out = assert_refused(&gw, &alice, &["exec", "--privileged", &c, "true"], "Privileged");
        assert!(out.stderr.contains("privileged"), "{out}");
        assert_eq!(exec_ids(), "0", "the refused exec was created on the engine");
        let r = alice
            .http()
            .post_json(&format!("/containers/{id}/exec"), &serde_json::json!({"Cmd": ["true"], "privileged": true}));
        assert_error(&r, 403, "Privileged");
        assert_eq!(exec_ids(), "0", "the refused exec was created on the engine");
        alice.ok(&["exec", &c, "true"]);
        assert_eq!(alice.ok(&["exec", "--user", "0", &c, "id", "-u"]), "0");

        // `docker update` has no flag for these; the API does.
        for (body, field) in [
            (serde_json::json!({"CgroupParent": "x"}), "CgroupParent"),
            (
                serde_json::json!({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rwm"}]}),
                "Devices",
            ),
            (serde_json::json!({"DeviceCgroupRules": ["c 1:3 r"]}), "DeviceCgroupRules"),
        ] {
            let r = alice.http().post_json(&format!("/containers/{id}/update"), &body);
            assert_error(&r, 403, field);
        }
        assert_eq!(engine_ok(&["inspect", "--format", "{{.HostConfig.CgroupParent}}", &id]), "");
        // An ordinary update still goes through.
        alice.ok(&["update", "--cpu-shares", "512", &c]);
        assert_eq!(engine_ok(&["inspect", "--format", "{{.HostConfig.CpuShares}}", &id]), "512");
        alice.ok(&["rm", "-f", &c]);
    }
);

it_test!(raw_create_bodies_are_read_as_docker_reads_them, mtswarm_only("the host-escape rules"), |t, gw| {
    let http = gw.tenant("alice").http();

    let cases = [
        ("upper", serde_json::json!({"Image": image(), "HostConfig": {"Privileged": true}}), "HostConfig.Privileged"),
        ("lower", serde_json::json!({"Image": image(), "hostconfig": {"privileged": true}}), "HostConfig.Privileged"),
        ("mixed", serde_json::json!({"Image": image(), "hostConfig": {"PRIVILEGED": true}}), "HostConfig.Privileged"),
        ("binds", serde_json::json!({"Image": image(), "hostconfig": {"binds": ["/etc:/host"]}}), "HostConfig.Binds"),
        ("capadd", serde_json::json!({"Image": image(), "HostConfig": {"CapAdd": "SYS_ADMIN"}}), "HostConfig.CapAdd"),
    ];
    for (suffix, body, field) in cases {
        let name = t.name(suffix);
        let r = http.post_json(&format!("/containers/create?name={name}"), &body);
        assert_error(&r, 403, field);
        assert_no_container(&name);
    }
    let name = t.name("plain");
    let r = http.post_json(
        &format!("/containers/create?name={name}"),
        &serde_json::json!({"Image": image(), "hostconfig": {"privileged": false}}),
    );
    assert_eq!(r.status, 201, "{r}");
});

it_test!(
    network_authorization_false_lets_the_host_network_through_and_nothing_else,
    mtswarm_only("the host-escape rules"),
    gw = GatewayOpts { env: vec![("SWARM_NETWORK_AUTHORIZATION".into(), "false".into())], ..Default::default() },
    |t, gw, alice| {
        // `--rm` and `true`: a host-network container lives no longer than it takes to start.
        assert_runs(&gw, &alice, &["--net", "host"], &[]);
        // The other rules stay on, the sysctl rule among them: in the host's network namespace a net.* sysctl
        // would change the host.
        check_table(
            &t,
            &gw,
            &alice,
            &[
                (&["--privileged"], "HostConfig.Privileged"),
                (&["--pid", "host"], "HostConfig.PidMode"),
                (&["-v", "/etc:/host"], "HostConfig.Binds"),
                (&["--net", "host", "--sysctl", "net.ipv4.ip_forward=1"], "HostConfig.Sysctls"),
            ],
            &[],
        );
    }
);

it_test!(the_admin_tenant_is_not_limited, mtswarm_only("the host-escape rules"), |t, gw, admin| {
    // The test bed's engines cannot start a privileged process at all (runc: "unable to apply caps: operation
    // not permitted", straight on the engine too), so the admin's privileged container is created, not started,
    // and the engine shows it privileged: the gateway passed it through.
    let c = t.name("admin-privileged");
    let id = admin.ok(&["create", "--privileged", "--name", &c, image(), "true"]);
    assert_eq!(engine_ok(&["inspect", "--format", "{{.HostConfig.Privileged}}", &id]), "true");
    admin.ok(&["rm", &c]);
    assert_runs(&gw, &admin, &["--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined"], &[]);
    assert_runs(&gw, &admin, &["--pid", "host", "--ipc", "host", "--uts", "host"], &[]);
    let listed = assert_runs(&gw, &admin, &["-v", "/etc:/host:ro"], &["ls", "/host"]);
    assert!(!listed.is_empty(), "the admin's bind mount of /etc shows nothing");
    let target = t.name("admin-target");
    let id = admin.ok(&["run", "-d", "--name", &target, image(), "sleep", "300"]);
    // A privileged exec is created for the admin (starting it fails on this engine as above).
    let r = admin
        .http()
        .post_json(&format!("/containers/{id}/exec"), &serde_json::json!({"Cmd": ["true"], "Privileged": true}));
    assert_eq!(r.status, 201, "{r}");
    admin.ok(&["rm", "-f", &target]);
});

it_test!(
    tenants_read_the_image_catalogue_but_do_not_change_it,
    mtswarm_only("the image rules"),
    |t, gw, alice, admin| {
        const ADMIN_ONLY: &str = "admin tenant";

        // Reading is open.
        let list = alice.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert!(lines(&list).iter().any(|l| l == image()), "{list}");
        assert_full_id(&alice.ok(&["image", "inspect", "--format", "{{.Id}}", image()]));
        assert!(alice.ok(&["history", image()]).starts_with("IMAGE"));
        let tar = t.path("saved.tar");
        let out = alice.run(
            &["save", "-o", tar.to_str().unwrap(), image()],
            RunOpts { timeout: Some(SLOW), ..RunOpts::default() },
        );
        assert!(out.success(), "{out}");
        assert!(fs::metadata(&tar).map(|m| m.len() > 0).unwrap_or(false), "save wrote nothing");

        // Tag.
        let tagged = format!("{}-tagged:v1", t.tag);
        assert_refused(&gw, &alice, &["tag", image(), &tagged], ADMIN_ONLY);
        assert_no_image(&tagged);

        // Remove: the admin's tag survives a tenant's rmi, and the admin may remove it.
        let admins = format!("{}-admins:v1", t.tag);
        admin.ok(&["tag", image(), &admins]);
        assert_refused(&gw, &alice, &["rmi", &admins], ADMIN_ONLY);
        assert_refused(&gw, &alice, &["rmi", "-f", &admins], ADMIN_ONLY);
        engine_ok(&["image", "inspect", &admins]);
        assert_eq!(admin.ok(&["rmi", &admins]), format!("Untagged: {admins}"));
        assert_no_image(&admins);

        // Prune, with a filter that could only ever match this test's images.
        assert_refused(&gw, &alice, &["image", "prune", "-f", "--filter", &format!("label={}", t.label())], ADMIN_ONLY);

        // Load: the body is a whole image; the refusal must still reach the CLI.
        let load = RunOpts { timeout: Some(SLOW), ..RunOpts::default() };
        assert_refused_with(&gw, &alice, &["load", "-i", tar.to_str().unwrap()], load, ADMIN_ONLY);

        // Import.
        let rootfs_dir = t.path("rootfs");
        fs::create_dir_all(&rootfs_dir).unwrap();
        fs::write(rootfs_dir.join("marker"), "imported\n").unwrap();
        let rootfs = t.path("rootfs.tar");
        let status = std::process::Command::new("tar")
            .arg("-cf")
            .arg(&rootfs)
            .arg("-C")
            .arg(&rootfs_dir)
            .arg("marker")
            .status()
            .unwrap();
        assert!(status.success());
        let imported = format!("{}-imported:v1", t.tag);
        assert_refused(&gw, &alice, &["import", rootfs.to_str().unwrap(), &imported], ADMIN_ONLY);
        assert_no_image(&imported);
        let imported_stdin = format!("{}-imported:v2", t.tag);
        let opts = RunOpts { stdin: Some(fs::read(&rootfs).unwrap()), ..RunOpts::default() };
        assert_refused_with(&gw, &alice, &["import", "-", &imported_stdin], opts, ADMIN_ONLY);
        assert_no_image(&imported_stdin);

        // Commit.
        let c = t.name("to-commit");
        alice.ok(&["run", "--name", &c, image(), "sh", "-c", "echo changed > /changed"]);
        let committed = format!("{}-committed:v1", t.tag);
        assert_refused(&gw, &alice, &["commit", &c, &committed], ADMIN_ONLY);
        assert_no_image(&committed);
        alice.ok(&["rm", &c]);

        // Build, with the legacy builder (the test bed has no buildx).
        let ctx = t.path("ctx");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("Dockerfile"), format!("FROM {}\nRUN echo built > /built\n", image())).unwrap();
        let built = format!("{}-built:v1", t.tag);
        let legacy = RunOpts { env: vec![("DOCKER_BUILDKIT".to_string(), "0".to_string())], ..RunOpts::default() };
        assert_refused_with(&gw, &alice, &["build", "-t", &built, ctx.to_str().unwrap()], legacy, ADMIN_ONLY);
        assert_no_image(&built);

        // The catalogue is as it was: the shared image is still there.
        engine_ok(&["image", "inspect", image()]);
    }
);

// A refusal that comes before the gateway reads the request body (load, import, build: the body is an image or
// a context) must still reach the client as the 403 and its message. The client is still writing when the
// answer comes; a server that then closes the connection with the body unread makes the kernel reset it, and
// the CLI shows "broken pipe" or "connection reset by peer" instead of the message (dockerd, like every Go
// server, half-closes and lingers so the client reads the answer). It is a race, so it is run ten times with
// bodies of a few megabytes.
it_test!(refused_uploads_still_show_the_refusal, mtswarm_only("the image rules"), |t, gw, alice| {
    let slow = || RunOpts { timeout: Some(SLOW), ..RunOpts::default() };

    let saved = t.path("saved.tar");
    let out = alice.run(&["save", "-o", saved.to_str().unwrap(), image()], slow());
    assert!(out.success(), "{out}");
    let dir = t.path("big");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("big.bin"), vec![b'x'; 3_000_000]).unwrap();
    let rootfs = t.path("big.tar");
    let status =
        std::process::Command::new("tar").arg("-cf").arg(&rootfs).arg("-C").arg(&dir).arg("big.bin").status().unwrap();
    assert!(status.success());
    let imported = format!("{}-imported:v1", t.tag);

    for _ in 0..10 {
        assert_refused_with(&gw, &alice, &["load", "-i", saved.to_str().unwrap()], slow(), "admin tenant");
        assert_refused_with(&gw, &alice, &["import", rootfs.to_str().unwrap(), &imported], slow(), "admin tenant");
    }
    assert_no_image(&imported);
});
