//! TLS on the TCP listeners, like dockerd's `--tls` and `--tlsverify`: a server certificate, and with
//! `--tlsverify` a client certificate signed by `--tlscacert` is required. A client certificate's common
//! name may stand for a tenant (`--tls-cn-tenants`), as an alternative to tokens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// The checked TLS settings.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Set with `--tlsverify`: client certificates are required and checked against it.
    pub client_ca: Option<PathBuf>,
}

/// The rustls server configuration built from the files.
pub fn server_config(cfg: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let certs = CertificateDer::pem_file_iter(&cfg.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tlscert {}: {e}", cfg.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("--tlscert {}: no certificate in the file", cfg.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| format!("--tlskey {}: {e}", cfg.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("--tlscacert {}: {e}", ca.display()))? {
                let c = c.map_err(|e| format!("--tlscacert {}: {e}", ca.display()))?;
                roots.add(c).map_err(|e| format!("--tlscacert {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("--tlscacert {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder.with_single_cert(certs, key).map_err(|e| format!("--tlscert/--tlskey do not make a pair: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The common name of a verified client certificate.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(cn)
}

/// `--tls-cn-tenants FILE`: `{"<certificate CN>": "<tenant id>", ...}`.
pub fn load_cn_tenants(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--tls-cn-tenants {}: {e}", path.display()))?;
    let map: HashMap<String, String> = serde_json::from_str(&text).map_err(|e| {
        format!("--tls-cn-tenants {}: {e}; expected {{\"CERTIFICATE CN\": \"TENANT ID\", ...}}", path.display())
    })?;
    for (cn, tenant) in &map {
        if !crate::tenant::TenantId::valid(tenant) {
            return Err(format!(
                "--tls-cn-tenants {}: {cn:?} maps to {tenant:?}, not a valid tenant id",
                path.display()
            ));
        }
    }
    Ok(map)
}

/// `--node-tlscacert/--node-tlscert/--node-tlskey`: how mtswarm proves itself to the engines and checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTlsConfig {
    /// The CA that signed the engines' certificates.
    pub ca: PathBuf,
    /// mtswarm's client certificate and key, which engines run with `--tlsverify` require.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The rustls client configuration for connections to engines.
pub fn client_config(cfg: &NodeTlsConfig) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    let ca = &cfg.ca;
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("--node-tlscacert {}: {e}", ca.display()))? {
        let c = c.map_err(|e| format!("--node-tlscacert {}: {e}", ca.display()))?;
        roots.add(c).map_err(|e| format!("--node-tlscacert {}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("--node-tlscacert {}: no certificate in the file", ca.display()));
    }
    let certs = CertificateDer::pem_file_iter(&cfg.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--node-tlscert {}: {e}", cfg.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("--node-tlscert {}: no certificate in the file", cfg.cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| format!("--node-tlskey {}: {e}", cfg.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("--node-tlscert/--node-tlskey do not make a pair: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
