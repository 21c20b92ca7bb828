//! Attacks on manager replication (issue 17's red team): what a tenant, or a primary that freezes, can make two
//! real managers of one cluster do. Each test says whether it pins a hole that was there (it failed before the
//! fix named in it) or a property that held.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::cluster::containers_of;
use crate::support::managers::{failover_bound, Replicated, ELECTED};
use crate::support::*;

/// How long an audit record may take to be written.
const WAIT: Duration = Duration::from_secs(30);

/// How long a request may go on after the replica that forwarded it became primary: well past any answer, so
/// only a hang fails it (not a speed bound).
const ENDS_AFTER_FAILOVER: Duration = Duration::from_secs(20);

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

/// Wakes a stopped manager when the test ends, passed or not, so that its drop guard can stop it cleanly.
struct Wake(u32);

impl Drop for Wake {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0.to_string()]).status();
    }
}

fn tcp(host: &str) -> TcpStream {
    let addr = host.strip_prefix("tcp://").expect("a tcp:// host");
    let conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(CLI_TIMEOUT)).expect("a read timeout");
    conn
}

/// Reads up to the end of a response head (and whatever came with it).
fn read_head(conn: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) => panic!("closed inside the response head: {:?}", String::from_utf8_lossy(&raw)),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading the head: {e}; so far {:?}", String::from_utf8_lossy(&raw)),
        }
    }
    raw
}

/// Reads to the end of the connection; a reset after some bytes is a cut connection, which the parsed
/// response's `complete` shows.
fn read_rest(conn: &mut TcpStream, raw: &mut Vec<u8>) {
    if let Err(e) = conn.read_to_end(raw) {
        use std::io::ErrorKind::{TimedOut, WouldBlock};
        assert!(!matches!(e.kind(), WouldBlock | TimedOut), "the answer hangs: {e}");
    }
}

// A hole (fixed in src/replication/forward.rs, `Peer::headers`): the client's `Connection` header named the
// headers the replica adds (`x-mtswarm-client-addr`, `x-mtswarm-replica-key`), and the replica's hop-by-hop
// filter took them off on the way to the primary. The primary then logged the replica as the client (the audit
// log's `remote`), or, without the key, took the request as the replica's own: over mutual TLS, as from the
// replica's certificate, and with no client certificate name.
it_test!(a_client_cannot_strip_what_a_replica_tells_the_primary, mtswarm_only("manager replication"), |t| {
    let log = t.path("audit.log");
    let cluster = Replicated::new(&t);
    let a = cluster.first(&t, &[], &[("SWARM_AUDIT_LOG", log.to_str().unwrap())]);
    a.wait_primary(ELECTED);
    let (mut opts, advertise) = cluster.opts(&[], &[]);
    opts.unix_listener = true;
    let b = crate::support::managers::Manager { gw: a.gw.sibling(opts), advertise };
    b.wait_replica_of(&a, ELECTED);

    // Alice comes to the replica over its unix socket: the primary's audit log says so ("unix").
    let (token, id) = (a.gw.token_of("alice"), a.gw.tenant_id("alice"));
    let alice = Http::with_headers(b.gw.unix_host(), &[("X-Auth-Token", &token), ("X-Auth-TenantId", &id)]);
    let create = serde_json::json!({"Image": image(), "Cmd": ["true"]});
    let tricks: [(&str, &[(&str, &str)]); 5] = [
        ("plain", &[]),
        ("addr", &[("Connection", "keep-alive, x-mtswarm-client-addr")]),
        ("key", &[("Connection", "x-mtswarm-replica-key")]),
        ("all", &[("Connection", "X-Mtswarm-Replica-Key, X-MTSWARM-CLIENT-ADDR, x-mtswarm-client-cn")]),
        // This one held before the fix: a forged address, in two spellings and twice, is taken off at the replica.
        ("forged", &[("X-Mtswarm-Client-Addr", "10.9.9.9:1"), ("x-MTSWARM-client-addr", "10.9.9.9:2")]),
    ];
    for (tag, extra) in tricks {
        let name = t.name(tag);
        let body = create.to_string();
        let mut headers = vec![("Content-Type", "application/json")];
        headers.extend_from_slice(extra);
        let resp =
            alice.request("POST", &format!("/v1.41/containers/create?name={name}"), &headers, Some(body.as_bytes()));
        assert_eq!(resp.status, 201, "{tag}: {resp}");
    }
    for (tag, _) in tricks {
        let name = t.name(tag);
        let record = poll(&format!("the audit record of {name}"), WAIT, || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
                .find(|r| r["endpoint"] == "containerscreate" && r["object"] == name.as_str())
        });
        assert_eq!(record["tenant"], id.as_str(), "{tag}: {record}");
        assert_eq!(record["remote"], "unix", "{tag}: the primary did not see where the client came from: {record}");
    }
});

// A hole (fixed in src/gateway/replica.rs, `replicate`): a request a replica forwarded to a primary that then froze
// (a machine gone without a reset) waited for the old primary's answer forever, even after the replica itself had
// become primary; only streams that had their answer's head were ended with the term.
it_test!(
    a_request_forwarded_to_a_frozen_primary_ends_when_the_replica_takes_over,
    mtswarm_only("manager replication"),
    |t| {
        let cluster = Replicated::new(&t);
        let (a, b) = cluster.pair(&t, &[], &[]);
        let alice = b.gw.tenant("alice");
        assert_eq!(alice.http().get("/v1.41/containers/json").status, 200);

        signal(a.gw.pid(), "STOP");
        let _wake = Wake(a.gw.pid());
        let (tx, rx) = mpsc::channel();
        let (list, exec) = (alice.http(), alice.http());
        std::thread::spawn(move || {
            let _ = tx.send(("ps", list.get("/v1.41/containers/json?all=1").status));
        });
        let (tx2, rx2) = mpsc::channel();
        std::thread::spawn(move || {
            // A hijack, too: an attach that waits for the primary's 101.
            let body = serde_json::json!({});
            let resp = exec.request(
                "POST",
                "/v1.41/containers/nothing-here/attach?stream=1&stdout=1",
                &[("Content-Type", "application/json"), ("Connection", "Upgrade"), ("Upgrade", "tcp")],
                Some(body.to_string().as_bytes()),
            );
            let _ = tx2.send(("attach", resp.status));
        });
        b.wait_primary(failover_bound());
        for rx in [rx, rx2] {
            match rx.recv_timeout(ENDS_AFTER_FAILOVER) {
                // Refused as the old primary's (503), or served: either way it ended.
                Ok((what, status)) => assert!(matches!(status, 503 | 200 | 404), "{what}: {status}"),
                Err(e) => {
                    panic!("a request forwarded to the frozen primary still waits after the replica took over: {e}")
                }
            }
        }
    }
);

// A hole (fixed in src/body.rs, `until`): a download forwarded by a replica and cut when the primary changed ended
// with a clean last chunk, so `docker export`, `docker save` and `docker cp` saw a complete, short, archive and
// exited 0. Cut short, it must look cut (no last chunk), or be whole.
it_test!(a_download_cut_by_a_failover_never_looks_complete, mtswarm_only("manager replication"), |t| {
    const SIZE_MB: usize = 96;
    let cluster = Replicated::new(&t);
    let (a, b) = cluster.pair(&t, &[], &[]);
    let alice = b.gw.tenant("alice");
    let big = t.name("big");
    let count = format!("count={SIZE_MB}");
    alice.ok(&["run", "--name", &big, image(), "dd", "if=/dev/zero", "of=/big", "bs=1M", &count]);

    let (token, id) = (a.gw.token_of("alice"), a.gw.tenant_id("alice"));
    let mut conn = tcp(b.gw.host());
    let head = format!(
        "GET /v1.41/containers/{big}/export HTTP/1.1\r\nHost: mtswarm-it\r\nX-Auth-Token: {token}\r\n\
         X-Auth-TenantId: {id}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).expect("send the export");
    let mut raw = read_head(&mut conn);
    // The client stops reading: the export waits on it, most of it still with the primary.
    signal(a.gw.pid(), "STOP");
    let _wake = Wake(a.gw.pid());
    b.wait_primary(failover_bound());
    read_rest(&mut conn, &mut raw);
    let resp = parse_response(&raw, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&raw[..raw.len().min(2000)]));
    let whole = resp.body.len() > SIZE_MB << 20;
    assert!(
        whole || !resp.complete,
        "the export was cut at {} of more than {} bytes and still ended with its last chunk",
        resp.body.len(),
        SIZE_MB << 20
    );
});

// A hole (fixed in src/gateway/mod.rs and replica.rs, `still_primary`): the fence was checked once, when a
// request's head came. A create whose body came later (the client held it back, or the process was frozen
// meanwhile) was carried out by a manager that had meanwhile lost its lease, while another was primary and
// admitting creates against the same quota: two primaries admitting.
it_test!(a_create_admitted_before_the_fence_is_not_carried_out_after_it, mtswarm_only("manager replication"), |t| {
    let cluster = Replicated::new(&t);
    let (a, b) = cluster.pair(&t, &[], &[]);
    let (token, id) = (a.gw.token_of("alice"), a.gw.tenant_id("alice"));
    let late = t.name("late");
    let body = serde_json::json!({"Image": image(), "Cmd": ["true"]}).to_string();

    // The head goes to the primary; `100 Continue` says it admitted the request and is reading the body.
    let mut conn = tcp(a.gw.host());
    let head = format!(
        "POST /v1.41/containers/create?name={late} HTTP/1.1\r\nHost: mtswarm-it\r\nX-Auth-Token: {token}\r\n\
         X-Auth-TenantId: {id}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).expect("send the head");
    let continued = read_head(&mut conn);
    assert!(continued.starts_with(b"HTTP/1.1 100"), "{:?}", String::from_utf8_lossy(&continued));

    // The primary freezes past its lease; the replica takes over; the old primary wakes and learns it.
    signal(a.gw.pid(), "STOP");
    let wake = Wake(a.gw.pid());
    b.wait_primary(failover_bound());
    drop(wake);
    a.wait_replica_of(&b, ELECTED);

    conn.write_all(body.as_bytes()).expect("send the body");
    let mut raw = Vec::new();
    read_rest(&mut conn, &mut raw);
    let resp = parse_response(&raw, false).unwrap_or_else(|e| panic!("{e}"));
    let placed = containers_of(&id);
    assert!(
        !placed.iter().any(|c| c.name.ends_with(&late)),
        "a manager that was no longer primary created {late} ({resp}); on the engines: {placed:?}"
    );
    assert_eq!(resp.status, 503, "{resp}");
    assert!(resp.message().contains("primary"), "{resp}");
});
