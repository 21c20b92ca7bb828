//! Container lifecycle commands of the docker CLI through the gateway: run, create/start, ps, inspect, rename,
//! pause, stop/start/restart/kill/wait, update, rm, top, port, cp, diff, export.

use std::fs;
use std::time::Duration;

use crate::support::*;

it_test!(run_detached_prints_the_id_and_the_container_runs, |t, gw, alice| {
    let c = t.name("web");

    let id = alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    assert_full_id(&id);
    assert_eq!(alice.ok(&["inspect", "--format", "{{.State.Running}}", &c]), "true");
    assert_eq!(alice.ok(&["inspect", "--format", "{{.Id}}", &c]), id);
});

it_test!(run_rm_carries_the_exit_code_and_removes_the_container, |t, gw, alice| {
    let c = t.name("exit3");

    let out = alice.docker(&["run", "--rm", "--name", &c, image(), "sh", "-c", "echo before-exit; exit 3"]);
    assert_eq!(out.code, Some(3), "{out}");
    assert_eq!(out.stdout.trim(), "before-exit", "{out}");
    let left = alice.ok(&["ps", "-a", "-q", "--filter", &format!("name={c}")]);
    assert_eq!(left, "", "--rm left the container behind");

    let out = alice.docker(&["run", "--rm", image(), "true"]);
    assert_eq!(out.code, Some(0), "{out}");
});

it_test!(run_interactive_reads_piped_stdin_to_its_end, |t, gw, alice| {
    let out = alice.docker_stdin(&["run", "-i", "--rm", image(), "cat"], "hi\n");
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, "hi\n");

    // A megabyte of stdin: the body streams both ways and the half-close still reaches the container.
    let big = vec![b'x'; 1 << 20];
    let out = alice.docker_stdin(&["run", "-i", "--rm", image(), "wc", "-c"], big);
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout.trim(), "1048576");
});

it_test!(run_tty_under_a_pty, |t, gw, alice| {
    let out = alice.pty(&["run", "-it", "--rm", image(), "sh"], "echo hello; exit 5\n");
    assert_eq!(out.code, Some(5), "{out}");
    assert!(lines(&out.stdout).iter().any(|l| l == "hello"), "no `hello` line: {out}");
});

it_test!(create_then_start, |t, gw, alice| {
    let c = t.name("created");

    let id = alice.ok(&["create", "--name", &c, image(), "sh", "-c", "echo from-create"]);
    assert_full_id(&id);
    let name_filter = format!("name={c}");
    assert_eq!(alice.ok(&["ps", "-a", "--filter", &name_filter, "--format", "{{.Status}}"]), "Created");
    assert_eq!(alice.ok(&["start", &c]), c);
    assert_eq!(alice.ok(&["wait", &c]), "0");
    assert_eq!(alice.ok(&["logs", &c]), "from-create");
    assert_eq!(alice.ok(&["start", "-a", &c]), "from-create");
});

it_test!(ps_lists_filters_and_formats, |t, gw, alice| {
    let running = t.name("running");
    let exited = t.name("exited");

    let id = alice.ok(&["run", "-d", "--name", &running, image(), "sleep", "300"]);
    alice.ok(&["run", "--name", &exited, image(), "true"]);

    let ps = alice.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(ps.contains(&running), "{ps}");
    assert!(!ps.contains(&exited), "ps without -a shows an exited container: {ps}");
    let ps_a = alice.ok(&["ps", "-a"]);
    assert!(ps_a.contains(&running) && ps_a.contains(&exited), "{ps_a}");

    let mine = format!("name={}", t.tag);
    let names = alice.ok(&["ps", "-a", "--filter", &mine, "--format", "{{.Names}}"]);
    let mut expected = vec![exited.clone(), running.clone()];
    expected.sort();
    assert_eq!(sorted_lines(&names), expected);

    let q = alice.ok(&["ps", "-q", "--filter", &format!("name={running}")]);
    assert_eq!(q, id[..12]);
    let q = alice.ok(&["ps", "-a", "-q", "--no-trunc", "--filter", &mine]);
    assert_eq!(lines(&q).len(), 2, "{q}");

    let ex = alice.ok(&["ps", "-a", "--filter", &mine, "--filter", "status=exited", "--format", "{{.Names}}"]);
    assert_eq!(ex, exited);
    let status = alice.ok(&["ps", "-a", "--filter", &format!("name={exited}"), "--format", "{{.Status}}"]);
    assert!(status.starts_with("Exited (0)"), "{status}");
});

it_test!(inspect_formats_fields_and_reports_missing_containers, |t, gw, alice| {
    let c = t.name("insp");

    alice.ok(&["run", "-d", "--name", &c, "--label", "color=blue", image(), "sleep", "300"]);
    let out = alice.ok(&["inspect", "--format", "{{.Name}} {{.State.Running}} {{.Config.Image}}", &c]);
    assert_eq!(out, format!("/{c} true {}", image()));
    assert_eq!(alice.ok(&["container", "inspect", "-f", "{{index .Config.Labels \"color\"}}", &c]), "blue");

    let json: serde_json::Value = serde_json::from_str(&alice.ok(&["inspect", &c])).expect("inspect prints JSON");
    assert_eq!(json[0]["Name"], format!("/{c}"));

    let missing = t.name("missing");
    let err = alice.fails(&["inspect", &missing]);
    assert!(err.contains("No such") && err.contains(&missing), "{err}");
});

it_test!(rename_a_container, |t, gw, alice| {
    let old = t.name("old");
    let new = t.name("new");

    alice.ok(&["run", "-d", "--name", &old, image(), "sleep", "300"]);
    alice.ok(&["rename", &old, &new]);
    assert_eq!(alice.ok(&["inspect", "--format", "{{.Name}}", &new]), format!("/{new}"));
    let err = alice.fails(&["inspect", &old]);
    assert!(err.contains("No such"), "{err}");
});

it_test!(pause_and_unpause, |t, gw, alice| {
    let c = t.name("p");

    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    assert_eq!(alice.ok(&["pause", &c]), c);
    assert_eq!(alice.ok(&["inspect", "--format", "{{.State.Status}}", &c]), "paused");
    let status = alice.ok(&["ps", "--filter", &format!("name={c}"), "--format", "{{.Status}}"]);
    assert!(status.ends_with("(Paused)"), "{status}");
    assert_eq!(alice.ok(&["unpause", &c]), c);
    assert_eq!(alice.ok(&["inspect", "--format", "{{.State.Status}}", &c]), "running");
});

it_test!(stop_start_restart_kill_wait, |t, gw, alice| {
    let c = t.name("life");
    let state = |alice: &Client| alice.ok(&["inspect", "--format", "{{.State.Status}}", &c]);

    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    assert_eq!(alice.ok(&["stop", "-t", "1", &c]), c);
    assert_eq!(state(&alice), "exited");
    assert_eq!(alice.ok(&["start", &c]), c);
    assert_eq!(state(&alice), "running");
    let started = alice.ok(&["inspect", "--format", "{{.State.StartedAt}}", &c]);
    assert_eq!(alice.ok(&["restart", "-t", "1", &c]), c);
    assert_eq!(state(&alice), "running");
    let restarted = alice.ok(&["inspect", "--format", "{{.State.StartedAt}}", &c]);
    assert_ne!(started, restarted, "restart did not start the container again");
    assert_eq!(alice.ok(&["kill", &c]), c);
    assert_eq!(alice.ok(&["wait", &c]), "137");
    assert_eq!(state(&alice), "exited");

    let e = t.name("exit3");
    alice.run_detached_sh(&e, "exit 3");
    assert_eq!(alice.ok(&["wait", &e]), "3");
    assert_eq!(alice.ok(&["inspect", "--format", "{{.State.ExitCode}}", &e]), "3");

    // `wait` blocks while the container runs: it answers when the container is killed.
    let w = t.name("waited");
    alice.ok(&["run", "-d", "--name", &w, image(), "sleep", "300"]);
    let mut waiting = alice.spawn(&["wait", &w]);
    alice.ok(&["kill", "-s", "KILL", &w]);
    waiting.expect_line("137", Duration::from_secs(30), |l| l.trim() == "137");
});

it_test!(update_memory_limit, |t, gw, alice| {
    let c = t.name("upd");

    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    assert_eq!(alice.ok(&["update", "--memory", "64m", "--memory-swap", "128m", &c]), c);
    assert_eq!(alice.ok(&["inspect", "--format", "{{.HostConfig.Memory}}", &c]), "67108864");
    assert_eq!(alice.ok(&["inspect", "--format", "{{.HostConfig.MemorySwap}}", &c]), "134217728");
});

it_test!(rm_force_removes_a_running_container, |t, gw, alice| {
    let c = t.name("gone");

    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    let err = alice.fails(&["rm", &c]);
    assert!(err.contains("running"), "rm of a running container without -f: {err}");
    assert_eq!(alice.ok(&["rm", "-f", &c]), c);
    let err = alice.fails(&["inspect", &c]);
    assert!(err.contains("No such"), "{err}");
});

it_test!(top_lists_the_processes, |t, gw, alice| {
    let c = t.name("top");

    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "301"]);
    let top = alice.ok(&["top", &c]);
    let first = top.lines().next().unwrap_or_default();
    assert!(first.contains("PID") && first.contains("CMD"), "{top}");
    assert!(top.contains("sleep 301"), "{top}");
});

it_test!(port_shows_the_published_port, |t, gw, alice| {
    let c = t.name("port");

    // The default engine (node0) is the one with a bridge network. (The engine host's loopback is not for tenants:
    // a port on ::1 would sit beside a host service on 127.0.0.1.)
    let err = alice.fails(&["run", "-d", "-p", "127.0.0.1::80", image(), "sleep", "300"]);
    assert!(err.contains("loopback"), "{err}");
    alice.ok(&["run", "-d", "-p", "0.0.0.0::80", "--name", &c, image(), "sleep", "300"]);
    let all = alice.ok(&["port", &c]);
    let (container, host) = all.split_once(" -> ").unwrap_or_else(|| panic!("{all}"));
    assert_eq!(container, "80/tcp");
    let port: u16 = host.strip_prefix("0.0.0.0:").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{all}"));
    assert!(port > 0);
    assert_eq!(alice.ok(&["port", &c, "80/tcp"]), host);
});

it_test!(cp_files_and_directories_in_and_out, |t, gw, alice| {
    let c = t.name("cp");

    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);

    // Out.
    alice.ok(&["exec", &c, "sh", "-c", "echo inside > /tmp/out.txt"]);
    let out_file = t.path("out.txt");
    alice.ok(&["cp", &format!("{c}:/tmp/out.txt"), out_file.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&out_file).unwrap(), "inside\n");

    // In.
    let in_file = t.path("in.txt");
    fs::write(&in_file, "from host\n").unwrap();
    alice.ok(&["cp", in_file.to_str().unwrap(), &format!("{c}:/tmp/in.txt")]);
    assert_eq!(alice.ok(&["exec", &c, "cat", "/tmp/in.txt"]), "from host");

    // A directory in, then back out.
    let tree = t.path("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("a.txt"), "alpha\n").unwrap();
    let big: String = (0..20000).map(|i| format!("line {i}\n")).collect();
    fs::write(tree.join("sub/b.txt"), &big).unwrap();
    alice.ok(&["cp", tree.to_str().unwrap(), &format!("{c}:/tmp/")]);
    assert_eq!(alice.ok(&["exec", &c, "cat", "/tmp/tree/a.txt"]), "alpha");
    assert_eq!(alice.ok(&["exec", &c, "wc", "-l", "/tmp/tree/sub/b.txt"]), "20000 /tmp/tree/sub/b.txt");
    let back = t.path("back");
    alice.ok(&["cp", &format!("{c}:/tmp/tree"), back.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(back.join("a.txt")).unwrap(), "alpha\n");
    assert!(fs::read_to_string(back.join("sub/b.txt")).unwrap() == big, "sub/b.txt differs after the round trip");

    // A missing path is an error, not an empty copy.
    let err = alice.fails(&["cp", &format!("{c}:/no/such/file"), t.path("nothing").to_str().unwrap()]);
    assert!(err.contains("No such") || err.contains("not find"), "{err}");
});

it_test!(diff_shows_an_added_file, |t, gw, alice| {
    let c = t.name("diff");

    alice.ok(&["run", "--name", &c, image(), "touch", "/newfile"]);
    let diff = alice.ok(&["diff", &c]);
    assert!(lines(&diff).iter().any(|l| l == "A /newfile"), "{diff}");
});

it_test!(export_writes_a_tar_of_the_filesystem, |t, gw, alice| {
    let c = t.name("exp");

    alice.ok(&["run", "--name", &c, image(), "sh", "-c", "echo exported > /exported-file"]);
    let tar = t.path("fs.tar");
    alice.ok(&["export", "-o", tar.to_str().unwrap(), &c]);
    let listing = std::process::Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(
        lines(&listing).iter().any(|l| l == "exported-file" || l == "./exported-file"),
        "the tar lacks the file: {listing}"
    );

    // To stdout too: a tar stream (ustar magic at offset 257) the same size as the file.
    let out = alice.docker(&["export", &c]);
    assert!(out.success(), "{out}");
    assert_eq!(&out.stdout_bytes[257..262], b"ustar");
    assert_eq!(out.stdout_bytes.len() as u64, fs::metadata(&tar).unwrap().len());
});
