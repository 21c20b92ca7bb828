//! Configuration in two stages: raw values from flags and the environment ([`RawManage`]) are checked
//! once into a typed [`Config`] that the rest of the code trusts.
//!
//! The environment is read through [`Env`], a plain map, so tests feed it values instead of setting
//! process variables.

pub use crate::gateway::{Limits, PolicyFiles};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::keystone::{KeystoneConfig, ServiceAccount};
use crate::cluster::Discovery;

/// The process environment, or a test's map of it.
#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Env {
        Env(std::env::vars().collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env(pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// A variable, unless unset or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Where mtswarm listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(String),
    Unix(PathBuf),
}

impl ListenAddr {
    /// The default: loopback only, on the seed's manager port. Listening on other interfaces is a choice.
    pub const DEFAULT: &'static str = "tcp://127.0.0.1:2376";

    pub fn parse(s: &str) -> Result<ListenAddr, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!("-H {s}: a unix socket needs an absolute path, as in unix:///run/mtswarm.sock"));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        let hp = s.strip_prefix("tcp://").unwrap_or(s);
        let (host, port) =
            hp.rsplit_once(':').ok_or_else(|| format!("-H {s}: expected tcp://ADDR:PORT or unix:///PATH"))?;
        port.parse::<u16>().map_err(|_| format!("-H {s}: {port:?} is not a port number"))?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        Ok(ListenAddr::Tcp(format!("{host}:{port}")))
    }
}

/// `manage` as given on the command line, before any checking. An option whose flag is not given is
/// taken from the environment variable named in its help, read through [`Env`] in [`Config::from_raw`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RawManage {
    /// Address to listen on: tcp://ADDR:PORT or unix:///PATH; may be repeated [default: tcp://127.0.0.1:2376].
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// The engines: an engine URL (tcp://HOST:PORT, unix:///PATH), nodes://HOST:PORT,HOST:PORT, file:///PATH
    /// (one HOST:PORT a line, ranges as 10.0.0.[10:20]:2375) or etcd://HOST:PORT/PREFIX (nodes added by `mtswarm join`)
    /// [default: unix:///var/run/docker.sock].
    pub discovery: Option<String>,
    /// Seconds to wait for a connection to an engine before calling it unavailable [default: 3].
    #[arg(long = "engine-connect-timeout")]
    pub engine_connect_timeout_secs: Option<f64>,
    /// How the scheduler places containers: spread, binpack or random [default: spread].
    #[arg(long)]
    pub strategy: Option<String>,
    /// Seconds between refreshes of every node's facts, health, containers and images [default: 5].
    #[arg(long = "refresh-interval")]
    pub refresh_interval_secs: Option<f64>,
    /// Seconds between readings of a file:// or etcd:// discovery [default: 2].
    #[arg(long = "discovery-interval")]
    pub discovery_interval_secs: Option<f64>,
    /// false turns multi-tenancy off: a plain cluster manager [env: SWARM_MULTI_TENANT, default: true].
    #[arg(long)]
    pub multi_tenant: Option<String>,
    /// Keystone, None (trust X-Auth-TenantId), or unset for the token file [env: SWARM_AUTH_BACKEND].
    #[arg(long)]
    pub auth_backend: Option<String>,
    /// The token file [env: SWARM_TOKENS_FILE, default: tokens.json].
    #[arg(long)]
    pub tokens_file: Option<String>,
    /// Keystone's URL, e.g. http://keystone:5000/v3 [env: SWARM_KEYSTONE_URL].
    #[arg(long)]
    pub keystone_url: Option<String>,
    /// Seconds to wait for Keystone [env: SWARM_KEYSTONE_TIMEOUT, default: 5].
    #[arg(long)]
    pub keystone_timeout: Option<String>,
    /// A Keystone service account that validates tokens [env: SWARM_KEYSTONE_SERVICE_USER].
    #[arg(long)]
    pub keystone_service_user: Option<String>,
    /// Its password; prefer the environment [env: SWARM_KEYSTONE_SERVICE_PASSWORD].
    #[arg(long)]
    pub keystone_service_password: Option<String>,
    /// Its project [env: SWARM_KEYSTONE_SERVICE_PROJECT, default: service].
    #[arg(long)]
    pub keystone_service_project: Option<String>,
    /// Its domain [env: SWARM_KEYSTONE_SERVICE_DOMAIN, default: default].
    #[arg(long)]
    pub keystone_service_domain: Option<String>,
    /// Seconds a validated token is trusted before Keystone is asked again [env: SWARM_AUTH_CACHE_TTL, default: 300].
    #[arg(long)]
    pub auth_cache_ttl: Option<String>,
    /// The tenant that sees and may do everything [env: SWARM_ADMIN_TENANT_ID].
    #[arg(long)]
    pub admin_tenant_id: Option<String>,
    /// Only members of this Keystone project may use the service [env: SWARM_MEMBERS_TENANT_ID].
    #[arg(long)]
    pub members_tenant_id: Option<String>,
    /// false turns off the network checks for tenants [env: SWARM_NETWORK_AUTHORIZATION, default: true].
    #[arg(long)]
    pub network_authorization: Option<String>,
    /// The pools tenants' networks may take subnets from, CIDR[,CIDR...]; without it a tenant names no subnet and
    /// the engine chooses [env: SWARM_TENANT_SUBNETS].
    #[arg(long)]
    pub tenant_subnets: Option<String>,
    /// Where a tenant's container that asks for the default network goes: private (a bridge network of the
    /// tenant's own on its node) or shared (the engine's bridge, for engines run with --icc=false)
    /// [env: SWARM_TENANT_DEFAULT_NETWORK, default: private].
    #[arg(long)]
    pub tenant_default_network: Option<String>,
    /// The API filter, {"disableapi": [...]} [env: SWARM_APIFILTER_FILE, default: apifilter.json if present].
    #[arg(long)]
    pub apifilter_file: Option<String>,
    /// true makes every container fit a flavor [env: SWARM_FLAVORS_ENFORCED, default: false].
    #[arg(long)]
    pub flavors_enforced: Option<String>,
    /// The flavors, {"default": {"Memory": 64}, ...} [env: SWARM_FLAVORS_FILE, default: flavors.json].
    #[arg(long)]
    pub flavors_file: Option<String>,
    /// true enforces each tenant's quota [env: SWARM_ENFORCE_QUOTA, default: false].
    #[arg(long)]
    pub enforce_quota: Option<String>,
    /// The quota, {"Memory": 300} or {"default": {...}, "tenants": {...}} [env: SWARM_QUOTA_FILE, default: quota.json].
    #[arg(long)]
    pub quota_file: Option<String>,
    /// Serve TLS on TCP listeners (implied by --tlsverify).
    #[arg(long)]
    pub tls: bool,
    /// Serve TLS and require client certificates signed by --tlscacert.
    #[arg(long)]
    pub tlsverify: bool,
    /// CA that signs client certificates [default: ~/.docker/ca.pem].
    #[arg(long)]
    pub tlscacert: Option<String>,
    /// Server certificate [default: ~/.docker/cert.pem].
    #[arg(long)]
    pub tlscert: Option<String>,
    /// Server key [default: ~/.docker/key.pem].
    #[arg(long)]
    pub tlskey: Option<String>,
    /// JSON file mapping client certificate common names to tenant ids (needs --tlsverify).
    #[arg(long)]
    pub tls_cn_tenants: Option<String>,
    /// CA that signs the engines' certificates; with --node-tlscert and --node-tlskey, every connection to an
    /// engine over TCP is mutual TLS [env: SWARM_NODE_TLSCACERT].
    #[arg(long = "node-tlscacert")]
    pub node_tlscacert: Option<String>,
    /// mtswarm's client certificate for the engines [env: SWARM_NODE_TLSCERT].
    #[arg(long = "node-tlscert")]
    pub node_tlscert: Option<String>,
    /// Its key [env: SWARM_NODE_TLSKEY].
    #[arg(long = "node-tlskey")]
    pub node_tlskey: Option<String>,
    /// Requests one tenant may have in flight at once [env: SWARM_TENANT_MAX_REQUESTS, default: 256].
    #[arg(long = "tenant-max-requests")]
    pub tenant_max_requests: Option<String>,
    /// Streams (events, logs -f, stats, wait) and hijacked sessions (attach, exec) one tenant may have open at
    /// once [env: SWARM_TENANT_MAX_STREAMS, default: 64].
    #[arg(long = "tenant-max-streams")]
    pub tenant_max_streams: Option<String>,
    /// Seconds a request body read whole (JSON) may take to arrive; a streamed upload may pause this long
    /// [env: SWARM_BODY_TIMEOUT, default: 30].
    #[arg(long = "body-timeout")]
    pub body_timeout: Option<String>,
    /// Seconds an engine may take to answer a call that is not a stream [env: SWARM_ENGINE_TIMEOUT, default: 60].
    #[arg(long = "engine-timeout")]
    pub engine_timeout: Option<String>,
    /// Seconds a client connection may take to send a request's headers, counted from the connection's opening or
    /// the previous answer (so also how long a keep-alive connection may stay idle); then it is closed
    /// [env: SWARM_HEADER_TIMEOUT, default: 30].
    #[arg(long = "header-timeout")]
    pub header_timeout: Option<String>,
    /// MiB of an engine's answer that mtswarm reads whole to parse it; a larger answer is streamed when
    /// mtswarm need not read it, else refused [env: SWARM_ENGINE_ANSWER_LIMIT, default: 8].
    #[arg(long = "engine-answer-limit")]
    pub engine_answer_limit: Option<String>,
    /// Threads that serve client connections, each connection on one of them to its end
    /// [env: SWARM_THREADS, default: one per CPU].
    #[arg(long)]
    pub threads: Option<String>,
    /// Serve Prometheus metrics (/metrics) and health (/healthz) on HOST:PORT; unauthenticated, so keep it
    /// where only the operator reaches it [env: SWARM_METRICS_ADDR; default: none].
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// Write an audit record (a JSON line) for every change and every denial to PATH, or - for stderr
    /// [env: SWARM_AUDIT_LOG; default: none].
    #[arg(long)]
    pub audit_log: Option<String>,
    /// Run as one of several managers: one primary is elected through the etcd of DISCOVERY, the others forward to
    /// it [env: SWARM_REPLICATION=true].
    #[arg(long)]
    pub replication: bool,
    /// With --replication: HOST:PORT where the other managers reach this one [env: SWARM_ADVERTISE].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// With --replication: seconds a primary that died keeps the others waiting before one takes over
    /// [env: SWARM_REPLICATION_TTL, default: 20].
    #[arg(long = "replication-ttl", value_name = "SECONDS")]
    pub replication_ttl: Option<String>,
}

/// How identities are proven.
#[derive(Debug, Clone)]
pub enum AuthBackendConfig {
    TokenFile(PathBuf),
    Keystone {
        keystone: KeystoneConfig,
        members_tenant: Option<String>,
        given_url: String,
        legacy_v2: bool,
    },
    /// `SWARM_AUTH_BACKEND=None`: the tenant header is trusted.
    TrustHeader,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// With multi-tenancy off mtswarm is a plain cluster manager: no authentication, no tenancy.
    pub multi_tenant: bool,
    pub backend: AuthBackendConfig,
    pub admin_tenant: Option<String>,
    /// How long a validated token is trusted without asking Keystone again.
    pub cache_ttl: Duration,
}

/// The checked configuration of `manage`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<ListenAddr>,
    pub discovery: Discovery,
    /// How long to wait for a connection to an engine before calling it unavailable.
    pub engine_connect_timeout: Duration,
    /// How often every engine's facts are refreshed.
    pub refresh_interval: Duration,
    /// How often a discovery that can change is read again.
    pub discovery_interval: Duration,
    pub strategy: crate::scheduler::Strategy,
    pub auth: AuthConfig,
    /// TLS on the TCP listeners, if asked for.
    pub tls: Option<crate::tls::TlsConfig>,
    pub tls_cn_tenants: Option<PathBuf>,
    /// The seed's SWARM_NETWORK_AUTHORIZATION: tenants' network settings are checked unless it is false.
    pub network_authorization: bool,
    /// SWARM_TENANT_SUBNETS: where tenants' network subnets may lie.
    pub tenant_subnets: Vec<crate::policy::networks::Cidr>,
    /// SWARM_TENANT_DEFAULT_NETWORK: whether each tenant's default network is its own.
    pub tenant_default_network: crate::tenancy::DefaultNetwork,
    /// The commands turned off for tenants.
    pub apifilter: crate::policy::apifilter::ApiFilter,
    /// The flavors, when enforced.
    pub flavors: Option<crate::policy::flavors::Flavors>,
    /// The quota, when enforced.
    pub quota: Option<crate::policy::quota::Quota>,
    /// Mutual TLS to the engines, when configured.
    pub node_tls: Option<crate::tls::NodeTlsConfig>,
    pub limits: Limits,
    /// `--threads`: how many threads serve client connections.
    pub threads: usize,
    /// `--metrics-addr`: where metrics and health are served.
    pub metrics_addr: Option<String>,
    /// The policy files, read again on SIGHUP.
    pub policy_files: PolicyFiles,
    /// `--audit-log`: where audit records go.
    pub audit_log: Option<crate::ops::audit::AuditTarget>,
    /// `--replication`: the managers' election, when this is one of several.
    pub replication: Option<crate::replication::ReplicationConfig>,
}

impl Config {
    pub fn from_raw(raw: &RawManage, env: &Env) -> Result<Config, String> {
        let hosts = if raw.hosts.is_empty() { vec![ListenAddr::DEFAULT.to_string()] } else { raw.hosts.clone() };
        let listen = hosts.iter().map(|h| ListenAddr::parse(h)).collect::<Result<Vec<_>, _>>()?;
        let discovery = match &raw.discovery {
            Some(d) => Discovery::parse(d).map_err(|e| e.to_string())?,
            None => Discovery::default(),
        };
        let secs = raw.engine_connect_timeout_secs.unwrap_or(3.0);
        if !(secs > 0.0 && secs <= 600.0) {
            return Err(format!("--engine-connect-timeout {secs}: give seconds between 0 and 600"));
        }
        let interval = |v: Option<f64>, flag: &str, default: f64| match v.unwrap_or(default) {
            s if s > 0.0 && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
            s => Err(format!("{flag} {s}: give seconds between 0 and 3600")),
        };
        let metrics_addr = match pick(&raw.metrics_addr, env, "SWARM_METRICS_ADDR") {
            None => None,
            Some(a) => match ListenAddr::parse(a)? {
                ListenAddr::Tcp(hp) if !a.contains("://") || a.starts_with("tcp://") => Some(hp),
                _ => return Err(format!("--metrics-addr {a}: expected HOST:PORT")),
            },
        };
        let audit_log = pick(&raw.audit_log, env, "SWARM_AUDIT_LOG").map(|p| match p {
            "-" => crate::ops::audit::AuditTarget::Stderr,
            p => crate::ops::audit::AuditTarget::File(PathBuf::from(p)),
        });
        let flavors_on = off_unless_true(&raw.flavors_enforced, env, "SWARM_FLAVORS_ENFORCED")?;
        let quota_on = off_unless_true(&raw.enforce_quota, env, "SWARM_ENFORCE_QUOTA")?;
        let policy_files = PolicyFiles {
            apifilter: Some(match pick(&raw.apifilter_file, env, "SWARM_APIFILTER_FILE") {
                Some(path) => (PathBuf::from(path), true),
                None => (PathBuf::from("apifilter.json"), false),
            }),
            flavors: flavors_on
                .then(|| PathBuf::from(pick(&raw.flavors_file, env, "SWARM_FLAVORS_FILE").unwrap_or("flavors.json"))),
            quota: quota_on
                .then(|| PathBuf::from(pick(&raw.quota_file, env, "SWARM_QUOTA_FILE").unwrap_or("quota.json"))),
            cn_tenants: raw.tls_cn_tenants.as_ref().map(PathBuf::from),
        };
        let tls = tls_config(raw, env);
        let replication = replication_config(raw, env, &discovery, tls.as_ref())?;
        Ok(Config {
            replication,
            policy_files,
            metrics_addr,
            audit_log,
            listen,
            discovery,
            engine_connect_timeout: Duration::from_secs_f64(secs),
            refresh_interval: interval(raw.refresh_interval_secs, "--refresh-interval", 5.0)?,
            discovery_interval: interval(raw.discovery_interval_secs, "--discovery-interval", 2.0)?,
            strategy: match &raw.strategy {
                Some(s) => s.parse()?,
                None => crate::scheduler::Strategy::Spread,
            },
            auth: auth_config(raw, env)?,
            tls,
            tls_cn_tenants: raw.tls_cn_tenants.as_ref().map(PathBuf::from),
            network_authorization: on_unless_false(&raw.network_authorization, env, "SWARM_NETWORK_AUTHORIZATION")?,
            tenant_subnets: match pick(&raw.tenant_subnets, env, "SWARM_TENANT_SUBNETS") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| {
                        crate::policy::networks::Cidr::parse(c)
                            .ok_or_else(|| format!("--tenant-subnets: {c:?} is not a CIDR such as 10.213.0.0/16"))
                    })
                    .collect::<Result<_, _>>()?,
            },
            tenant_default_network: match pick(&raw.tenant_default_network, env, "SWARM_TENANT_DEFAULT_NETWORK") {
                Some(v) => v.parse()?,
                None => crate::tenancy::DefaultNetwork::Private,
            },
            apifilter: match pick(&raw.apifilter_file, env, "SWARM_APIFILTER_FILE") {
                Some(path) => crate::policy::apifilter::ApiFilter::load(std::path::Path::new(path), true)?,
                None => crate::policy::apifilter::ApiFilter::load(std::path::Path::new("apifilter.json"), false)?,
            },
            flavors: match off_unless_true(&raw.flavors_enforced, env, "SWARM_FLAVORS_ENFORCED")? {
                false => None,
                true => {
                    let path = pick(&raw.flavors_file, env, "SWARM_FLAVORS_FILE").unwrap_or("flavors.json");
                    Some(crate::policy::flavors::Flavors::load(std::path::Path::new(path))?)
                }
            },
            quota: match off_unless_true(&raw.enforce_quota, env, "SWARM_ENFORCE_QUOTA")? {
                false => None,
                true => {
                    let path = pick(&raw.quota_file, env, "SWARM_QUOTA_FILE").unwrap_or("quota.json");
                    Some(crate::policy::quota::Quota::load(std::path::Path::new(path))?)
                }
            },
            node_tls: node_tls_config(raw, env)?,
            limits: limits(raw, env)?,
            threads: match pick(&raw.threads, env, "SWARM_THREADS") {
                None => crate::runtime::per_cpu(),
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if (1..=1024).contains(&n) => n,
                    _ => {
                        return Err(format!("--threads {v:?} (SWARM_THREADS): expected a whole number from 1 to 1024"))
                    }
                },
            },
        })
    }
}

/// `--replication --advertise HOST:PORT [--replication-ttl SECONDS]`, over the etcd of the discovery.
fn replication_config(
    raw: &RawManage,
    env: &Env,
    discovery: &Discovery,
    tls: Option<&crate::tls::TlsConfig>,
) -> Result<Option<crate::replication::ReplicationConfig>, String> {
    let on = raw.replication || off_unless_true(&None, env, "SWARM_REPLICATION")?;
    let advertise = pick(&raw.advertise, env, "SWARM_ADVERTISE");
    let ttl = pick(&raw.replication_ttl, env, "SWARM_REPLICATION_TTL");
    if !on {
        return match (advertise, ttl) {
            (None, None) => Ok(None),
            _ => Err("--advertise and --replication-ttl (SWARM_ADVERTISE, SWARM_REPLICATION_TTL) go with \
                      --replication"
                .into()),
        };
    }
    let Discovery::Etcd { endpoints, prefix } = discovery else {
        return Err(format!(
            "--replication elects the primary manager through etcd: give the managers' common discovery as \
             etcd://HOST:PORT/PREFIX (this one is {discovery})"
        ));
    };
    let advertise = advertise.ok_or(
        "--replication needs --advertise HOST:PORT (SWARM_ADVERTISE): where the other managers reach this one",
    )?;
    let advertise = match crate::cluster::connector::EngineAddr::parse(advertise) {
        Ok(a @ crate::cluster::connector::EngineAddr::Tcp { port, .. }) if port != 0 => a.authority(),
        _ => return Err(format!("--advertise {advertise}: expected HOST:PORT, a TCP address the managers reach")),
    };
    let ttl = match ttl {
        None => crate::replication::DEFAULT_TTL,
        Some(v) => match v.strip_suffix('s').unwrap_or(v).parse::<f64>() {
            Ok(s) if (1.0..=3600.0).contains(&s) => Duration::from_secs_f64(s),
            _ => return Err(format!("--replication-ttl {v:?}: expected seconds between 1 and 3600")),
        },
    };
    if tls.is_some_and(|t| t.client_ca.is_none()) {
        return Err("--replication with --tls needs --tlsverify: the managers prove themselves to each other with \
                    client certificates signed by --tlscacert"
            .into());
    }
    Ok(Some(crate::replication::ReplicationConfig {
        advertise,
        endpoints: endpoints.clone(),
        prefix: prefix.clone(),
        ttl,
    }))
}

/// The three node TLS files go together: one without the others is a mistake, not a choice.
fn node_tls_config(raw: &RawManage, env: &Env) -> Result<Option<crate::tls::NodeTlsConfig>, String> {
    let ca = pick(&raw.node_tlscacert, env, "SWARM_NODE_TLSCACERT");
    let cert = pick(&raw.node_tlscert, env, "SWARM_NODE_TLSCERT");
    let key = pick(&raw.node_tlskey, env, "SWARM_NODE_TLSKEY");
    match (ca, cert, key) {
        (None, None, None) => Ok(None),
        (Some(ca), Some(cert), Some(key)) => Ok(Some(crate::tls::NodeTlsConfig {
            ca: PathBuf::from(ca),
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        })),
        _ => Err("--node-tlscacert, --node-tlscert and --node-tlskey (SWARM_NODE_TLSCACERT, SWARM_NODE_TLSCERT, \
                  SWARM_NODE_TLSKEY) are given together: engines are reached over mutual TLS"
            .to_string()),
    }
}

fn limits(raw: &RawManage, env: &Env) -> Result<Limits, String> {
    let d = Limits::default();
    let count = |flag: &Option<String>, name: &str, var: &str, default: usize| match pick(flag, env, var) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("--{name} {v:?} ({var}): expected a whole number above 0")),
        },
    };
    let secs = |flag: &Option<String>, name: &str, var: &str, default: Duration| match pick(flag, env, var) {
        None => Ok(default),
        Some(v) => match v.parse::<f64>() {
            Ok(s) if s > 0.0 && s <= 86400.0 => Ok(Duration::from_secs_f64(s)),
            _ => Err(format!("--{name} {v:?} ({var}): expected seconds between 0 and 86400")),
        },
    };
    let mib = count(&raw.engine_answer_limit, "engine-answer-limit", "SWARM_ENGINE_ANSWER_LIMIT", 0)?;
    Ok(Limits {
        tenant_max_requests: count(
            &raw.tenant_max_requests,
            "tenant-max-requests",
            "SWARM_TENANT_MAX_REQUESTS",
            d.tenant_max_requests,
        )?,
        tenant_max_streams: count(
            &raw.tenant_max_streams,
            "tenant-max-streams",
            "SWARM_TENANT_MAX_STREAMS",
            d.tenant_max_streams,
        )?,
        body_timeout: secs(&raw.body_timeout, "body-timeout", "SWARM_BODY_TIMEOUT", d.body_timeout)?,
        engine_timeout: secs(&raw.engine_timeout, "engine-timeout", "SWARM_ENGINE_TIMEOUT", d.engine_timeout)?,
        header_timeout: secs(&raw.header_timeout, "header-timeout", "SWARM_HEADER_TIMEOUT", d.header_timeout)?,
        engine_answer_limit: if mib == 0 { d.engine_answer_limit } else { mib.min(4096) * 1024 * 1024 },
    })
}

/// dockerd's rules: `--tlsverify` implies `--tls`; files default to `$DOCKER_CERT_PATH` or `~/.docker`.
fn tls_config(raw: &RawManage, env: &Env) -> Option<crate::tls::TlsConfig> {
    if !(raw.tls || raw.tlsverify) {
        return None;
    }
    let dir = env
        .get("DOCKER_CERT_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env.get("HOME").unwrap_or("/root")).join(".docker"));
    let file = |flag: &Option<String>, name: &str| flag.as_ref().map(PathBuf::from).unwrap_or_else(|| dir.join(name));
    Some(crate::tls::TlsConfig {
        cert: file(&raw.tlscert, "cert.pem"),
        key: file(&raw.tlskey, "key.pem"),
        client_ca: raw.tlsverify.then(|| file(&raw.tlscacert, "ca.pem")),
    })
}

/// A flag's value, else its environment variable's.
fn pick<'a>(flag: &'a Option<String>, env: &'a Env, var: &str) -> Option<&'a str> {
    flag.as_deref().filter(|v| !v.is_empty()).or_else(|| env.get(var))
}

fn seconds(flag: &Option<String>, env: &Env, var: &str, default: f64) -> Result<Duration, String> {
    let Some(v) = pick(flag, env, var) else {
        return Ok(Duration::from_secs_f64(default));
    };
    match v.parse::<f64>() {
        Ok(s) if (0.0..=86400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("{var}={v:?}: expected a number of seconds")),
    }
}

/// The seed's switches that are on unless set to `false`.
fn on_unless_false(flag: &Option<String>, env: &Env, var: &str) -> Result<bool, String> {
    match pick(flag, env, var) {
        None => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) => Err(format!("{var}={v:?}: expected true or false")),
    }
}

/// The seed's switches that are off unless set to `true`.
fn off_unless_true(flag: &Option<String>, env: &Env, var: &str) -> Result<bool, String> {
    match pick(flag, env, var) {
        None => Ok(false),
        Some(_) => on_unless_false(flag, env, var),
    }
}

fn auth_config(raw: &RawManage, env: &Env) -> Result<AuthConfig, String> {
    let multi_tenant = on_unless_false(&raw.multi_tenant, env, "SWARM_MULTI_TENANT")?;
    let members = pick(&raw.members_tenant_id, env, "SWARM_MEMBERS_TENANT_ID").map(str::to_string);
    let backend = match pick(&raw.auth_backend, env, "SWARM_AUTH_BACKEND") {
        None => {
            let path = pick(&raw.tokens_file, env, "SWARM_TOKENS_FILE").unwrap_or("tokens.json");
            AuthBackendConfig::TokenFile(PathBuf::from(path))
        }
        Some(b) if b.eq_ignore_ascii_case("keystone") => {
            let given = pick(&raw.keystone_url, env, "SWARM_KEYSTONE_URL")
                .ok_or("SWARM_AUTH_BACKEND=Keystone needs SWARM_KEYSTONE_URL (e.g. http://keystone:5000/v3)")?;
            let (url, legacy_v2) = KeystoneConfig::v3_url(given)?;
            let service = match pick(&raw.keystone_service_user, env, "SWARM_KEYSTONE_SERVICE_USER") {
                None => None,
                Some(user) => Some(ServiceAccount {
                    user: user.to_string(),
                    password: pick(&raw.keystone_service_password, env, "SWARM_KEYSTONE_SERVICE_PASSWORD")
                        .ok_or("SWARM_KEYSTONE_SERVICE_USER needs SWARM_KEYSTONE_SERVICE_PASSWORD")?
                        .to_string(),
                    project: pick(&raw.keystone_service_project, env, "SWARM_KEYSTONE_SERVICE_PROJECT")
                        .unwrap_or("service")
                        .to_string(),
                    domain: pick(&raw.keystone_service_domain, env, "SWARM_KEYSTONE_SERVICE_DOMAIN")
                        .unwrap_or("default")
                        .to_string(),
                }),
            };
            let timeout = seconds(&raw.keystone_timeout, env, "SWARM_KEYSTONE_TIMEOUT", 5.0)?;
            if timeout.is_zero() {
                return Err("SWARM_KEYSTONE_TIMEOUT must be more than 0 seconds".into());
            }
            AuthBackendConfig::Keystone {
                keystone: KeystoneConfig { url, timeout, service },
                members_tenant: members.clone(),
                given_url: given.to_string(),
                legacy_v2,
            }
        }
        Some(b) if b.eq_ignore_ascii_case("none") => AuthBackendConfig::TrustHeader,
        Some(b) => {
            return Err(format!("SWARM_AUTH_BACKEND={b:?}: expected Keystone, None, or unset for the token file"))
        }
    };
    if members.is_some() && !matches!(backend, AuthBackendConfig::Keystone { .. }) {
        return Err("SWARM_MEMBERS_TENANT_ID is only valid with SWARM_AUTH_BACKEND=Keystone".into());
    }
    let admin_tenant = pick(&raw.admin_tenant_id, env, "SWARM_ADMIN_TENANT_ID").map(str::to_string);
    if let Some(a) = &admin_tenant {
        if !crate::tenant::TenantId::valid(a) {
            return Err(format!("SWARM_ADMIN_TENANT_ID={a:?} is not a valid tenant id"));
        }
    }
    Ok(AuthConfig {
        multi_tenant,
        backend,
        admin_tenant,
        cache_ttl: seconds(&raw.auth_cache_ttl, env, "SWARM_AUTH_CACHE_TTL", 300.0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(hosts: &[&str], expected: &str) {
        let raw = RawManage { hosts: hosts.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        let got = match Config::from_raw(&raw, &Env::default()) {
            Ok(c) => format!("{:?}", c.listen),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn parses_listen_addresses() {
        check(&[], r#"[Tcp("127.0.0.1:2376")]"#);
        check(&["tcp://0.0.0.0:2375", "unix:///run/m.sock"], r#"[Tcp("0.0.0.0:2375"), Unix("/run/m.sock")]"#);
        check(&[":2375"], r#"[Tcp("0.0.0.0:2375")]"#);
        check(&["tcp://x"], "error: -H tcp://x: expected tcp://ADDR:PORT or unix:///PATH");
        check(
            &["unix://rel"],
            "error: -H unix://rel: a unix socket needs an absolute path, as in unix:///run/mtswarm.sock",
        );
    }

    fn auth(env: &[(&str, &str)]) -> String {
        match Config::from_raw(&RawManage::default(), &Env::from_pairs(env.iter().copied())) {
            Ok(c) => format!("{:?}", c.auth.backend),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn chooses_the_auth_backend() {
        assert_eq!(auth(&[]), r#"TokenFile("tokens.json")"#);
        assert!(auth(&[("SWARM_AUTH_BACKEND", "Keystone")]).contains("needs SWARM_KEYSTONE_URL"));
        let k = auth(&[("SWARM_AUTH_BACKEND", "Keystone"), ("SWARM_KEYSTONE_URL", "http://k:5000/v2.0/")]);
        assert!(k.contains(r#"url: "http://k:5000/v3""#) && k.contains("legacy_v2: true"), "{k}");
        assert_eq!(auth(&[("SWARM_AUTH_BACKEND", "None")]), "TrustHeader");
        assert!(auth(&[("SWARM_AUTH_BACKEND", "ldap")]).contains("expected Keystone, None"));
        assert!(auth(&[("SWARM_MEMBERS_TENANT_ID", "m")]).contains("only valid with SWARM_AUTH_BACKEND=Keystone"));
        assert!(auth(&[("SWARM_MULTI_TENANT", "maybe")]).contains("expected true or false"));
        assert!(auth(&[("SWARM_AUTH_CACHE_TTL", "x")]).contains("SWARM_AUTH_CACHE_TTL"));
    }

    #[test]
    fn reads_limits_and_node_tls() {
        let cfg = |env: &[(&str, &str)]| Config::from_raw(&RawManage::default(), &Env::from_pairs(env.iter().copied()));
        let l = cfg(&[]).map(|c| c.limits);
        assert_eq!(l, Ok(Limits::default()));
        let l = cfg(&[("SWARM_TENANT_MAX_STREAMS", "8"), ("SWARM_ENGINE_ANSWER_LIMIT", "2")]).map(|c| c.limits);
        assert_eq!(l.as_ref().map(|l| (l.tenant_max_streams, l.engine_answer_limit)), Ok((8, 2 << 20)));
        assert!(cfg(&[("SWARM_TENANT_MAX_REQUESTS", "0")]).is_err_and(|e| e.contains("--tenant-max-requests")));
        assert!(cfg(&[("SWARM_BODY_TIMEOUT", "x")]).is_err_and(|e| e.contains("--body-timeout")));
        assert!(cfg(&[("SWARM_NODE_TLSCACERT", "/ca.pem")]).is_err_and(|e| e.contains("given together")));
        let t = cfg(&[("SWARM_NODE_TLSCACERT", "/a"), ("SWARM_NODE_TLSCERT", "/b"), ("SWARM_NODE_TLSKEY", "/c")]);
        assert!(t.is_ok_and(|c| c.node_tls.is_some_and(|t| t.key == std::path::Path::new("/c"))));
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(cfg(&[]).map(|c| c.threads), Ok(cpus));
        assert_eq!(cfg(&[("SWARM_THREADS", "3")]).map(|c| c.threads), Ok(3));
        let flag = RawManage { threads: Some("1".into()), ..Default::default() };
        let c = Config::from_raw(&flag, &Env::from_pairs([("SWARM_THREADS", "4")]));
        assert_eq!(c.map(|c| c.threads), Ok(1));
        for bad in ["0", "x", "2000"] {
            assert!(cfg(&[("SWARM_THREADS", bad)]).is_err_and(|e| e.contains("--threads")), "{bad}");
        }
    }

    #[test]
    fn reads_the_tenants_default_network() {
        let check = |raw: RawManage, env: &[(&str, &str)], expected: &str| {
            let got = match Config::from_raw(&raw, &Env::from_pairs(env.iter().copied())) {
                Ok(c) => format!("{:?}", c.tenant_default_network),
                Err(e) => format!("error: {e}"),
            };
            assert_eq!(got, expected);
        };
        check(RawManage::default(), &[], "Private");
        check(RawManage::default(), &[("SWARM_TENANT_DEFAULT_NETWORK", "shared")], "Shared");
        let flag = RawManage { tenant_default_network: Some("private".into()), ..Default::default() };
        check(flag, &[("SWARM_TENANT_DEFAULT_NETWORK", "shared")], "Private");
        check(
            RawManage::default(),
            &[("SWARM_TENANT_DEFAULT_NETWORK", "own")],
            r#"error: --tenant-default-network "own": expected private or shared"#,
        );
    }

    #[test]
    fn reads_replication() {
        let check = |raw: RawManage, env: &[(&str, &str)], expected: &str| {
            let got = match Config::from_raw(&raw, &Env::from_pairs(env.iter().copied())) {
                Ok(c) => format!("{:?}", c.replication.map(|r| (r.advertise, r.endpoints, r.prefix, r.ttl))),
                Err(e) => format!("error: {e}"),
            };
            assert!(got.contains(expected), "{got:?} does not contain {expected:?}");
        };
        let etcd = || RawManage { discovery: Some("etcd://10.0.0.2:2379/m/x".into()), ..Default::default() };
        check(etcd(), &[], "None");
        let env = [("SWARM_REPLICATION", "true"), ("SWARM_ADVERTISE", "10.0.0.11:2376")];
        check(etcd(), &env, r#"Some(("10.0.0.11:2376", ["10.0.0.2:2379"], "m/x", 20s))"#);
        let flags = RawManage {
            replication: true,
            advertise: Some("[fd00::1]:2376".into()),
            replication_ttl: Some("3.5s".into()),
            ..etcd()
        };
        check(flags, &[], r#"Some(("[fd00::1]:2376", ["10.0.0.2:2379"], "m/x", 3.5s))"#);
        check(RawManage { replication: true, ..Default::default() }, &env, "error: --replication elects the primary");
        check(RawManage { replication: true, ..etcd() }, &[], "error: --replication needs --advertise");
        check(etcd(), &[("SWARM_ADVERTISE", "10.0.0.11:2376")], "go with --replication");
        let zero = [("SWARM_REPLICATION", "true"), ("SWARM_ADVERTISE", "h:2376"), ("SWARM_REPLICATION_TTL", "0")];
        check(etcd(), &zero, "--replication-ttl \"0\"");
        check(etcd(), &[("SWARM_REPLICATION", "yes")], "expected true or false");
    }

    #[test]
    fn env_ignores_empty_values() {
        let env = Env::from_pairs([("A", ""), ("B", "x")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("x"));
    }
}
