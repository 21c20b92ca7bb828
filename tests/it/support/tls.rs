//! What the TLS tests (`tls.rs`) share beyond `support`: certificates made with `openssl` in the test's
//! directory (a CA, server and client certificates), the `mtswarm manage` flags that serve them, a docker CLI
//! client that speaks TLS with chosen certificates, and raw HTTPS through `curl`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// A certificate and its private key, as PEM files.
#[derive(Clone, Debug)]
pub struct KeyPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a leaf certificate is for (its extendedKeyUsage).
#[derive(Clone, Copy, Debug)]
pub enum Usage {
    /// `serverAuth`, with subjectAltName IP:127.0.0.1: the gateway's certificate.
    Server,
    /// `clientAuth`: a docker client's certificate.
    Client,
    /// Both, with subjectAltName IP:127.0.0.1: a replicated manager's certificate, which it serves and shows the
    /// primary.
    Manager,
}

/// A certificate authority in a directory of its own.
pub struct Ca {
    dir: PathBuf,
    pub pair: KeyPair,
}

/// Runs `openssl ARGS` in `dir`, failing the test with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {} failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-contained openssl configuration, so the system's `openssl.cnf` adds nothing.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = unused

[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
";

/// The arguments of `openssl req` for a new P-256 key without a passphrase, written to `keyout`.
fn new_key(keyout: &str) -> [&str; 7] {
    ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyout]
}

impl Ca {
    /// A new CA (P-256, valid two days) named `name`, in `dir/name/`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let dir = dir.join(name);
        fs::create_dir_all(&dir).expect("create the CA's directory");
        fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).expect("write openssl.cnf");
        let subject = format!("/CN=mtswarm-it {name}");
        let mut req = vec!["req", "-x509", "-config", "openssl.cnf", "-extensions", "v3_ca"];
        req.extend(new_key("ca-key.pem"));
        req.extend(["-out", "ca.pem", "-days", "2", "-subj", &subject]);
        openssl(&dir, &req);
        let pair = KeyPair { cert: dir.join("ca.pem"), key: dir.join("ca-key.pem") };
        Ca { dir, pair }
    }

    /// The CA's certificate, as `--tlscacert` takes it.
    pub fn cert(&self) -> &Path {
        &self.pair.cert
    }

    /// A leaf certificate with common name `cn`, signed by this CA, in files `<file>-cert.pem` and
    /// `<file>-key.pem` of the CA's directory.
    pub fn issue(&self, file: &str, cn: &str, usage: Usage) -> KeyPair {
        let cert = self.dir.join(format!("{file}-cert.pem"));
        let key = self.dir.join(format!("{file}-key.pem"));
        let csr = format!("{file}.csr");
        let ext = format!("{file}.ext");
        let extensions = match usage {
            Usage::Server => {
                "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1\n"
            }
            Usage::Manager => {
                "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage = serverAuth,clientAuth\nsubjectAltName = IP:127.0.0.1\n"
            }
            Usage::Client => {
                "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage = clientAuth\n"
            }
        };
        fs::write(self.dir.join(&ext), extensions).expect("write the extensions file");
        let subject = format!("/CN={cn}");
        let mut req = vec!["req", "-new", "-config", "openssl.cnf"];
        req.extend(new_key(key.to_str().unwrap()));
        req.extend(["-out", &csr, "-subj", &subject]);
        openssl(&self.dir, &req);
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                cert.to_str().unwrap(),
            ],
        );
        KeyPair { cert, key }
    }
}

/// The `mtswarm manage` flags of dockerd's `--tlsverify`: client certificates signed by `ca` are required.
pub fn tlsverify_args(ca: &Path, server: &KeyPair) -> Vec<String> {
    let mut args = vec!["--tlsverify".to_string()];
    args.extend(cert_args(Some(ca), server));
    args
}

/// The `mtswarm manage` flags of dockerd's `--tls`: TLS without client certificates.
pub fn tls_args(server: &KeyPair) -> Vec<String> {
    let mut args = vec!["--tls".to_string()];
    args.extend(cert_args(None, server));
    args
}

fn cert_args(ca: Option<&Path>, pair: &KeyPair) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(ca) = ca {
        args.extend(["--tlscacert".to_string(), ca.display().to_string()]);
    }
    args.extend([
        "--tlscert".to_string(),
        pair.cert.display().to_string(),
        "--tlskey".to_string(),
        pair.key.display().to_string(),
    ]);
    args
}

impl Client {
    /// The same client (its `--config` directory, hence its headers) speaking TLS as
    /// `docker --tlsverify --tlscacert CA [--tlscert --tlskey]`: the server is verified against `ca`, and
    /// `identity`, when given, is the client certificate.
    pub fn tls_verify(&self, ca: &Path, identity: Option<&KeyPair>) -> Client {
        let mut flags = vec!["--tlsverify".to_string(), "--tlscacert".to_string(), ca.display().to_string()];
        if let Some(pair) = identity {
            flags.extend(cert_args(None, pair));
        }
        Client { flags, ..self.clone() }
    }

    /// The same client speaking TLS without a client certificate: `docker --tls --tlscacert CA`.
    pub fn tls_without_cert(&self, ca: &Path) -> Client {
        Client { flags: vec!["--tls".to_string(), "--tlscacert".to_string(), ca.display().to_string()], ..self.clone() }
    }
}

/// One HTTPS answer from `curl`: its status (0 when there was none: the handshake failed) and body.
pub struct CurlAnswer {
    pub status: u16,
    pub body: String,
    /// curl's own stderr (handshake errors).
    pub stderr: String,
}

impl CurlAnswer {
    /// `message` of a Docker JSON error body (empty when the body is not one).
    pub fn message(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// `GET https://<host of tcp://HOST:PORT><path>` with `curl`, trusting `ca`, presenting `identity` if given,
/// with exactly `headers`.
pub fn curl_get(host: &str, path: &str, ca: &Path, identity: Option<&KeyPair>, headers: &[(&str, &str)]) -> CurlAnswer {
    let addr = host.strip_prefix("tcp://").expect("a tcp:// host");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}", "--cacert"]).arg(ca);
    if let Some(pair) = identity {
        cmd.arg("--cert").arg(&pair.cert).arg("--key").arg(&pair.key);
    }
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    cmd.arg(format!("https://{addr}{path}"));
    let out = cmd.output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    CurlAnswer {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
