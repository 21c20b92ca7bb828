//! TLS on the gateway's TCP listeners, like dockerd's: `--tlsverify` with client certificates signed by
//! `--tlscacert`, `--tls` without them, and `--tls-cn-tenants`, which lets a verified certificate's common name
//! stand for a tenant when the request carries no token. Through the real docker CLI with certificates that
//! `openssl` makes in the test's directory, and `curl` where the HTTP status itself is the point.

use std::fs;

use crate::support::auth::*;
use crate::support::tls::*;
use crate::support::*;

/// The certificates of one test: a CA with the gateway's certificate and client certificates, and a second CA
/// that the gateway does not trust.
struct Pki {
    ca: Ca,
    server: KeyPair,
    /// A client certificate whose CN is in the `--tls-cn-tenants` file (when the test writes one).
    mapped: KeyPair,
    mapped_cn: String,
    /// A client certificate of the same CA whose CN is in no file.
    unmapped: KeyPair,
    /// A client certificate of another CA, with the mapped CN: the name alone must not pass.
    foreign: KeyPair,
}

impl Pki {
    fn new(t: &Test) -> Pki {
        let ca = Ca::new(t.dir(), "ca");
        let other = Ca::new(t.dir(), "other-ca");
        let mapped_cn = t.name("cn-mapped");
        Pki {
            server: ca.issue("server", "mtswarm-it server", Usage::Server),
            mapped: ca.issue("mapped", &mapped_cn, Usage::Client),
            unmapped: ca.issue("unmapped", &t.name("cn-unmapped"), Usage::Client),
            foreign: other.issue("foreign", &mapped_cn, Usage::Client),
            mapped_cn,
            ca,
        }
    }

    /// Writes the `--tls-cn-tenants` file mapping the mapped CN to `tenant`; returns its path.
    fn cn_tenants_file(&self, t: &Test, tenant: &str) -> String {
        let path = t.path("cn-tenants.json");
        fs::write(&path, serde_json::json!({ &self.mapped_cn: tenant }).to_string()).expect("write the CN map");
        path.display().to_string()
    }
}

/// A gateway with `--tlsverify` and the PKI's server certificate, plus `more` flags.
fn tlsverify_gateway<'t>(t: &'t Test, pki: &Pki, more: &[String], unix_listener: bool) -> Gateway<'t> {
    let mut args = tlsverify_args(pki.ca.cert(), &pki.server);
    args.extend(more.iter().cloned());
    Gateway::start(t, GatewayOpts { args, unix_listener, ..GatewayOpts::default() })
}

/// Asserts that the gateway process still runs and still serves a TLS client.
fn assert_still_serving(gw: &mut Gateway, good: &Client) {
    assert!(gw.alive(), "mtswarm exited:\n{}", gw.stderr());
    let out = good.docker(&["ps", "-q"]);
    assert!(out.success(), "the gateway stopped serving verified clients: {out}\n{}", gw.stderr());
}

it_test!(token_and_tenant_headers_work_over_tls_including_hijacks, mtswarm_only("the gateway's TLS"), |t| {
    let pki = Pki::new(&t);
    let gw = tlsverify_gateway(&t, &pki, &[], false);
    let alice = gw.tenant("alice").tls_verify(pki.ca.cert(), Some(&pki.unmapped));

    alice.ok(&["ps"]);
    let out = alice.docker(&["run", "--rm", "--name", &t.name("hello"), image(), "echo", "hello"]);
    assert!(out.success(), "{out}\n{}", gw.stderr());
    assert_eq!(out.stdout.trim(), "hello", "{out}");

    // The exit code of the container comes back through the attach and wait over TLS.
    let out = alice.docker(&["run", "--rm", image(), "sh", "-c", "exit 3"]);
    assert_eq!(out.code, Some(3), "{out}\n{}", gw.stderr());

    // stdin through the hijacked stream, then the client's half-close (a TLS close_notify from the CLI's
    // CloseWrite) must reach the engine as an EOF, or `cat` never ends.
    let c = t.name("cat");
    alice.ok(&["run", "-d", "--name", &c, image(), "sleep", "300"]);
    let out = alice.docker_stdin(&["exec", "-i", &c, "cat"], "x\n");
    assert!(out.success(), "{out}\n{}", gw.stderr());
    assert_eq!(out.stdout, "x\n", "{out}");
    let out = alice.docker_stdin(&["run", "--rm", "-i", image(), "cat"], "through tls\n");
    assert!(out.success(), "{out}\n{}", gw.stderr());
    assert_eq!(out.stdout, "through tls\n", "{out}");
    alice.ok(&["rm", "-f", &c]);

    assert_tenant_logged(&gw, &gw.tenant_id("alice"));
    assert_not_logged(&gw, &[&gw.token_of("alice")]);
});

it_test!(a_mapped_certificate_stands_for_its_tenant_without_any_header, mtswarm_only("the gateway's TLS"), |t| {
    let pki = Pki::new(&t);
    let carol = t.name("carol");
    let file = pki.cn_tenants_file(&t, &carol);
    let gw = tlsverify_gateway(&t, &pki, &["--tls-cn-tenants".to_string(), file], false);

    // A config.json without HttpHeaders: the certificate is the only credential.
    let by_cert = gw.client_with("by-cert", None, None).tls_verify(pki.ca.cert(), Some(&pki.mapped));
    by_cert.ok(&["ps"]);
    let out = by_cert.docker(&["run", "--rm", "--name", &t.name("by-cert"), image(), "echo", "carol"]);
    assert!(out.success(), "{out}\n{}", gw.stderr());
    assert_eq!(out.stdout.trim(), "carol", "{out}");
    let out = by_cert.docker(&["run", "--rm", image(), "sh", "-c", "exit 7"]);
    assert_eq!(out.code, Some(7), "the exit code was not carried: {out}\n{}", gw.stderr());
    assert_tenant_logged(&gw, &carol);

    let r = curl_get(gw.host(), "/containers/json", pki.ca.cert(), Some(&pki.mapped), &[]);
    assert_eq!(r.status, 200, "body {:?}, curl: {}\n{}", r.body, r.stderr, gw.stderr());

    // The same tenant named in the header is fine; another tenant is not, with the token's wording.
    let same = gw.client_with("same", None, Some(&carol)).tls_verify(pki.ca.cert(), Some(&pki.mapped));
    same.ok(&["ps"]);
    let bob_id = gw.tenant_id("bob");
    let other = gw.client_with("other", None, Some(&bob_id)).tls_verify(pki.ca.cert(), Some(&pki.mapped));
    assert_cli_refused(&other.docker(&["ps"]), &wrong_tenant(&bob_id));
    let r = curl_get(gw.host(), "/containers/json", pki.ca.cert(), Some(&pki.mapped), &[("X-Auth-TenantId", &bob_id)]);
    assert_eq!(r.status, 401, "body {:?}, curl: {}", r.body, r.stderr);
    assert_eq!(r.message(), wrong_tenant(&bob_id), "{:?}", r.body);

    // With a token, the token decides, as without TLS: bob's token makes the request bob's ...
    let bob = gw.tenant("bob").tls_verify(pki.ca.cert(), Some(&pki.mapped));
    bob.ok(&["ps"]);
    assert_tenant_logged(&gw, &bob_id);
    // ... and a wrong token is refused, not replaced by the certificate.
    let wrong = format!("wrong-{}-0123456789abcdef", t.tag);
    let bad = gw.client_with("bad-token", Some(&wrong), None).tls_verify(pki.ca.cert(), Some(&pki.mapped));
    assert_cli_refused(&bad.docker(&["ps"]), INVALID);
    assert_not_logged(&gw, &[&wrong, &gw.token_of("bob")]);
});

it_test!(an_unmapped_certificate_without_a_token_is_refused, mtswarm_only("the gateway's TLS"), |t| {
    let pki = Pki::new(&t);
    let file = pki.cn_tenants_file(&t, &t.name("carol"));
    let gw = tlsverify_gateway(&t, &pki, &["--tls-cn-tenants".to_string(), file], false);

    let anonymous = gw.client_with("anonymous", None, None).tls_verify(pki.ca.cert(), Some(&pki.unmapped));
    assert_cli_refused(&anonymous.docker(&["ps"]), NO_TOKEN);
    let c = t.name("never");
    let out = anonymous.docker(&["run", "--rm", "--name", &c, image(), "true"]);
    assert_eq!(out.code, Some(125), "{out}");
    assert!(out.stderr.contains(NO_TOKEN), "{out}");
    assert_eq!(engine_ok(&["ps", "-a", "-q", "--filter", &format!("name={c}")]), "", "a refused run created {c}");

    let r = curl_get(gw.host(), "/containers/json", pki.ca.cert(), Some(&pki.unmapped), &[]);
    assert_eq!(r.status, 401, "body {:?}, curl: {}", r.body, r.stderr);
    assert_eq!(r.message(), NO_TOKEN, "{:?}", r.body);

    // The same certificate with a tenant's token is an ordinary tenant client.
    let alice = gw.tenant("alice").tls_verify(pki.ca.cert(), Some(&pki.unmapped));
    alice.ok(&["ps"]);
});

it_test!(
    foreign_certificates_no_certificate_and_plain_http_fail_and_the_gateway_keeps_serving,
    mtswarm_only("the gateway's TLS"),
    |t| {
        let pki = Pki::new(&t);
        // The foreign certificate carries the mapped CN: a CN is worth something only on a verified certificate.
        let file = pki.cn_tenants_file(&t, &t.name("carol"));
        let mut gw = tlsverify_gateway(&t, &pki, &["--tls-cn-tenants".to_string(), file], false);
        let alice_plain = gw.tenant("alice");
        let good = alice_plain.tls_verify(pki.ca.cert(), Some(&pki.unmapped));
        good.ok(&["ps"]);

        // A certificate signed by a CA the gateway does not trust: the handshake fails, with or without a token.
        let foreign = gw.client_with("foreign", None, None).tls_verify(pki.ca.cert(), Some(&pki.foreign));
        let err = foreign.fails(&["ps"]);
        assert!(!err.contains("Error response from daemon"), "a foreign certificate got an HTTP answer: {err}");
        let foreign_alice = alice_plain.tls_verify(pki.ca.cert(), Some(&pki.foreign));
        foreign_alice.fails(&["ps"]);
        let r = curl_get(gw.host(), "/_ping", pki.ca.cert(), Some(&pki.foreign), &[]);
        assert_eq!(r.status, 0, "a foreign certificate got an HTTP answer: {:?}", r.body);
        assert_still_serving(&mut gw, &good);

        // No client certificate at all, even with a valid token.
        let no_cert = alice_plain.tls_verify(pki.ca.cert(), None);
        let err = no_cert.fails(&["ps"]);
        assert!(!err.contains("Error response from daemon"), "a client without a certificate got an answer: {err}");
        let r = curl_get(gw.host(), "/_ping", pki.ca.cert(), None, &[]);
        assert_eq!(r.status, 0, "a client without a certificate got an HTTP answer: {:?}", r.body);
        assert_still_serving(&mut gw, &good);

        // Plain HTTP to the TLS listener.
        let out = alice_plain.docker(&["ps"]);
        assert!(!out.success(), "plain HTTP was served on a TLS listener: {out}");
        let c = t.name("plain");
        let out = alice_plain.docker(&["run", "--rm", "--name", &c, image(), "true"]);
        assert!(!out.success(), "plain HTTP was served on a TLS listener: {out}");
        assert_eq!(engine_ok(&["ps", "-a", "-q", "--filter", &format!("name={c}")]), "", "plain HTTP created {c}");
        assert_still_serving(&mut gw, &good);
    }
);

it_test!(tls_without_verification_takes_clients_without_certificates, mtswarm_only("the gateway's TLS"), |t| {
    let pki = Pki::new(&t);
    let args = tls_args(&pki.server);
    let gw = Gateway::start(&t, GatewayOpts { args, ..GatewayOpts::default() });

    let alice = gw.tenant("alice").tls_without_cert(pki.ca.cert());
    alice.ok(&["ps"]);
    let out = alice.docker(&["run", "--rm", image(), "echo", "no client cert"]);
    assert!(out.success(), "{out}\n{}", gw.stderr());
    assert_eq!(out.stdout.trim(), "no client cert", "{out}");
    // A client certificate, even one of another CA, is simply not asked for.
    let with_cert = gw.tenant("alice").tls_verify(pki.ca.cert(), Some(&pki.foreign));
    with_cert.ok(&["ps"]);
    // Tokens still decide who is asking.
    let anonymous = gw.client_with("anonymous", None, None).tls_without_cert(pki.ca.cert());
    assert_cli_refused(&anonymous.docker(&["ps"]), NO_TOKEN);
    // And the listener speaks only TLS.
    let out = gw.tenant("alice").docker(&["ps"]);
    assert!(!out.success(), "plain HTTP was served on a TLS listener: {out}");
    alice.ok(&["ps"]);
    assert_tenant_logged(&gw, &gw.tenant_id("alice"));
});

it_test!(the_unix_listener_stays_plain, mtswarm_only("the gateway's TLS"), |t| {
    let pki = Pki::new(&t);
    let gw = tlsverify_gateway(&t, &pki, &[], true);
    let alice = gw.tenant("alice");

    let unix = alice.via(gw.unix_host());
    unix.ok(&["ps"]);
    let out = unix.docker(&["run", "--rm", image(), "echo", "plain unix"]);
    assert!(out.success(), "{out}\n{}", gw.stderr());
    assert_eq!(out.stdout.trim(), "plain unix", "{out}");
    // The TCP listener of the same gateway speaks TLS.
    alice.tls_verify(pki.ca.cert(), Some(&pki.unmapped)).ok(&["ps"]);
    assert!(!alice.docker(&["ps"]).success(), "plain HTTP was served on the TLS listener");
});

it_test!(cn_tenants_without_tlsverify_stops_start_up, mtswarm_only("the gateway's TLS"), |t| {
    let pki = Pki::new(&t);
    let file = pki.cn_tenants_file(&t, &t.name("carol"));
    let tokens = t.path("tokens.json");
    fs::write(&tokens, r#"{"tokens": [{"tenant": "someone", "token": "not-used-here-0123456789"}]}"#).unwrap();
    let tokens = tokens.display().to_string();
    let env = [("SWARM_TOKENS_FILE", tokens.as_str())];

    let tls = tls_args(&pki.server);
    let with_tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    for mut flags in [vec![], with_tls] {
        flags.extend(["--tls-cn-tenants", &file]);
        let out = manage_must_fail_with(&flags, t.dir(), &env);
        assert!(out.stderr.contains("--tlsverify"), "the error does not mention --tlsverify: {out}");
    }
});
