//! Streaming commands through the gateway: logs (-f, --tail, -t, --since), exec (-i, -it, -u, -w, -e, exit
//! code), stats (one-shot and streamed), attach, events (streamed and --since/--until).

use std::time::Duration;

use crate::support::*;

const STREAM_WAIT: Duration = Duration::from_secs(30);

it_test!(logs_tail_and_timestamps, |t, gw, alice| {
    let c = t.name("logs");

    let out = alice.ok(&["run", "--name", &c, image(), "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"]);
    assert_eq!(lines(&out), ["line1", "line2", "line3", "line4", "line5"]);
    assert_eq!(lines(&alice.ok(&["logs", &c])), ["line1", "line2", "line3", "line4", "line5"]);
    assert_eq!(lines(&alice.ok(&["logs", "--tail", "2", &c])), ["line4", "line5"]);

    let stamped = alice.ok(&["logs", "-t", &c]);
    let stamped = lines(&stamped);
    assert_eq!(stamped.len(), 5, "{stamped:?}");
    for (i, line) in stamped.iter().enumerate() {
        let (ts, text) = line.split_once(' ').unwrap_or_else(|| panic!("no timestamp in {line:?}"));
        assert_eq!(text, format!("line{}", i + 1));
        // RFC 3339 with nanoseconds, e.g. 2026-11-25T14:22:10.123456789Z.
        assert!(
            ts.len() >= 20 && ts.as_bytes()[4] == b'-' && ts.as_bytes()[10] == b'T' && ts.ends_with('Z'),
            "not a timestamp: {ts:?}"
        );
    }

    // stderr is its own stream.
    let e = t.name("stderr");
    alice.ok(&["run", "--name", &e, image(), "sh", "-c", "echo to-out; echo to-err >&2"]);
    let out = alice.docker(&["logs", &e]);
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout.trim(), "to-out");
    assert_eq!(out.stderr.trim(), "to-err");
});

it_test!(logs_since, |t, gw, alice| {
    let c = t.name("since");

    alice.run_detached_sh(&c, "echo first; while [ ! -f /tmp/go ]; do sleep 0.1; done; echo second");
    poll("the first log line", STREAM_WAIT, || alice.ok(&["logs", &c]).contains("first").then_some(()));
    // `first` was logged before this instant and `second` will be logged after it.
    let mid = timestamp(Duration::ZERO, false);
    alice.ok(&["exec", &c, "touch", "/tmp/go"]);
    assert_eq!(alice.ok(&["wait", &c]), "0");

    assert_eq!(lines(&alice.ok(&["logs", "--since", &mid, &c])), ["second"]);
    assert_eq!(lines(&alice.ok(&["logs", "--since", "10m", &c])), ["first", "second"]);
    assert_eq!(lines(&alice.ok(&["logs", "--until", &mid, &c])), ["first"]);
});

it_test!(logs_follow_streams_and_ends_when_the_container_exits, |t, gw, alice| {
    let c = t.name("follow");

    alice.run_detached_sh(&c, "echo l1; while [ ! -f /tmp/go ]; do sleep 0.1; done; echo l2; echo l3; exit 2");
    let mut follow = alice.spawn(&["logs", "-f", &c]);
    // The first line arrives while the container still runs: the stream is not buffered.
    follow.expect_line("l1", STREAM_WAIT, |l| l == "l1");
    alice.ok(&["exec", &c, "touch", "/tmp/go"]);
    let out = follow.finish(STREAM_WAIT);
    assert!(out.success(), "{out}");
    assert_eq!(lines(&out.stdout), ["l1", "l2", "l3"]);

    // Following an exited container prints everything and ends at once.
    assert_eq!(lines(&alice.ok(&["logs", "-f", &c])), ["l1", "l2", "l3"]);
});

it_test!(exec_piped_stdin_ends_on_eof, |t, gw, alice| {
    let c = t.name("execi");

    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    let out = alice.docker_stdin(&["exec", "-i", &c, "cat"], "x\n");
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, "x\n");

    // Without data: EOF alone must end it too.
    let out = alice.docker_stdin(&["exec", "-i", &c, "cat"], "");
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout, "");

    let big = vec![b'y'; 1 << 20];
    let out = alice.docker_stdin(&["exec", "-i", &c, "wc", "-c"], big);
    assert!(out.success(), "{out}");
    assert_eq!(out.stdout.trim(), "1048576");
});

it_test!(exec_user_workdir_env_streams_and_exit_code, |t, gw, alice| {
    let c = t.name("exec");

    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    assert_eq!(alice.ok(&["exec", &c, "echo", "hi"]), "hi");
    assert_eq!(alice.ok(&["exec", "-u", "nobody", &c, "id", "-u"]), "65534");
    assert_eq!(alice.ok(&["exec", "-w", "/tmp", &c, "pwd"]), "/tmp");
    assert_eq!(alice.ok(&["exec", "-e", "FOO=bar", &c, "sh", "-c", "echo $FOO"]), "bar");

    let out = alice.docker(&["exec", &c, "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.code, Some(7), "{out}");
    assert_eq!(out.stdout.trim(), "out");
    assert_eq!(out.stderr.trim(), "err");

    let out = alice.docker(&["exec", "-d", &c, "sh", "-c", "echo detached > /tmp/d"]);
    assert!(out.success(), "{out}");
    poll("the detached exec's file", STREAM_WAIT, || {
        let out = alice.docker(&["exec", &c, "cat", "/tmp/d"]);
        (out.success() && out.stdout.trim() == "detached").then_some(())
    });

    // The engine reports a missing binary inside the stream (on stdout with API 1.41), with code 126.
    let out = alice.docker(&["exec", &c, "/no/such/binary"]);
    assert_eq!(out.code, Some(126), "{out}");
    assert!(format!("{}{}", out.stdout, out.stderr).contains("no such file"), "{out}");
});

it_test!(exec_tty_under_a_pty, |t, gw, alice| {
    let c = t.name("execit");

    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    let out = alice.pty(&["exec", "-it", &c, "sh"], "echo hello; exit 5\n");
    assert_eq!(out.code, Some(5), "{out}");
    assert!(lines(&out.stdout).iter().any(|l| l == "hello"), "no `hello` line: {out}");
});

it_test!(stats_once_and_streamed, |t, gw, alice| {
    let c = t.name("stats");

    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    let once = alice.ok(&["stats", "--no-stream", &c]);
    let mut rows = once.lines();
    let header = rows.next().unwrap_or_default();
    assert!(header.contains("CONTAINER ID") && header.contains("CPU %"), "{once}");
    assert!(rows.next().is_some_and(|row| row.contains(&c)), "{once}");
    assert_eq!(alice.ok(&["stats", "--no-stream", "--format", "{{.Name}}", &c]), c);

    // Streamed: a sample arrives, and the client can go away without harm.
    let mut stream = alice.spawn(&["stats", "--format", "{{.Name}} {{.MemUsage}}", &c]);
    stream.expect_line("with the container's name", STREAM_WAIT, |l| l.contains(&c));
    stream.kill();
    assert_eq!(alice.ok(&["inspect", "--format", "{{.State.Running}}", &c]), "true");
});

it_test!(attach_to_a_running_container_and_detach_by_killing_the_client, |t, gw, alice| {
    let c = t.name("ticker");

    alice.run_detached_sh(&c, "while true; do echo tick; sleep 0.2; done");
    let mut attached = alice.spawn(&["attach", "--sig-proxy=false", &c]);
    attached.expect_line("`tick`", STREAM_WAIT, |l| l == "tick");
    attached.expect_line("a second `tick`", STREAM_WAIT, |l| l == "tick");
    attached.kill();
    assert_eq!(alice.ok(&["inspect", "--format", "{{.State.Running}}", &c]), "true");

    // Attaching again works: the gateway let go of the first attach.
    let mut again = alice.spawn(&["attach", "--sig-proxy=false", &c]);
    again.expect_line("`tick`", STREAM_WAIT, |l| l == "tick");
});

it_test!(attach_until_the_container_exits_carries_the_exit_code, |t, gw, alice| {
    let c = t.name("attach");

    // The container waits for a line on stdin, so its output comes only after the attach is established.
    alice.ok(&["run", "-d", "-i", "--name", &c, image(), "sh", "-c", "read x; echo got $x; exit 4"]);
    let mut attached = alice.spawn_with_stdin(&["attach", &c]);
    // Stdin stays open until the output is seen: dockerd closes the output of an attach whose stdin ends
    // (for a container without StdinOnce), so an early EOF could lose the line.
    attached.write_stdin(b"hi\n");
    attached.expect_line("`got hi`", STREAM_WAIT, |l| l == "got hi");
    let out = attached.finish(STREAM_WAIT);
    assert_eq!(out.code, Some(4), "{out}");
});

it_test!(events_stream_a_containers_lifecycle_in_order, |t, gw, alice| {
    let c = t.name("ev");

    // --since a moment ago: the stream replays from there, so no event is lost to the subscription's start.
    let since = timestamp(Duration::from_secs(1), false);
    let filter = format!("container={c}");
    let mut events = alice.spawn(&["events", "--since", &since, "--filter", &filter, "--format", "{{.Action}}"]);
    alice.ok(&["create", "--name", &c, image(), "sleep", "300"]);
    alice.ok(&["start", &c]);
    alice.ok(&["stop", "-t", "1", &c]);
    events.expect_line("`stop`", STREAM_WAIT, |l| l == "stop");
    assert_subsequence(&events.seen, &["create", "start", "die", "stop"]);
    events.kill();
});

it_test!(events_since_until_is_one_shot, |t, gw, alice| {
    let c = t.name("evu");

    let since = timestamp(Duration::from_secs(1), false);
    alice.ok(&["run", "--name", &c, image(), "true"]);
    // An --until slightly in the future: the engine ends the stream then, after `die` has surely been logged.
    let until = timestamp(Duration::from_secs(1), true);
    let filter = format!("container={c}");
    let out =
        alice.ok(&["events", "--since", &since, "--until", &until, "--filter", &filter, "--format", "{{.Action}}"]);
    assert_subsequence(&lines(&out), &["create", "start", "die"]);

    let json =
        alice.ok(&["events", "--since", &since, "--until", &until, "--filter", &filter, "--format", "{{json .}}"]);
    for line in lines(&json) {
        let ev: serde_json::Value = serde_json::from_str(&line).expect("an event is JSON");
        assert_eq!(ev["Type"], "container", "{line}");
        assert_eq!(ev["Actor"]["Attributes"]["name"], c.as_str(), "{line}");
        // Its labels as the tenant gave them: the ownership label is mtswarm's.
        assert!(ev["Actor"]["Attributes"].get(TENANT_LABEL).is_none(), "{line}");
    }
});
