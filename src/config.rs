//! Configuration in two stages: raw values from flags and the environment ([`RawManage`]) are checked
//! once into a typed [`Config`] that the rest of the code trusts.
//!
//! The environment is read through [`Env`], a plain map, so tests feed it values instead of setting
//! process variables.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

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

/// `manage` as given on the command line, before any checking.
#[derive(Debug, Clone, Default)]
pub struct RawManage {
    pub hosts: Vec<String>,
    pub discovery: Option<String>,
    pub engine_connect_timeout_secs: Option<f64>,
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
}

impl Config {
    pub fn from_raw(raw: &RawManage, _env: &Env) -> Result<Config, String> {
        let hosts = if raw.hosts.is_empty() { vec![ListenAddr::DEFAULT.to_string()] } else { raw.hosts.clone() };
        let listen = hosts.iter().map(|h| ListenAddr::parse(h)).collect::<Result<Vec<_>, _>>()?;
        let discovery = match &raw.discovery {
            Some(d) => Discovery::parse(d)?,
            None => Discovery::default(),
        };
        let secs = raw.engine_connect_timeout_secs.unwrap_or(3.0);
        if !(secs > 0.0 && secs <= 600.0) {
            return Err(format!("--engine-connect-timeout {secs}: give seconds between 0 and 600"));
        }
        Ok(Config {
            listen,
            discovery,
            engine_connect_timeout: Duration::from_secs_f64(secs),
            refresh_interval: Duration::from_secs(15),
        })
    }
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

    #[test]
    fn env_ignores_empty_values() {
        let env = Env::from_pairs([("A", ""), ("B", "x")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("x"));
    }
}
