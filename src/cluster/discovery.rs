//! Discovery: which engines form the cluster. The `manage` argument names them itself (an engine URL,
//! `nodes://`), names a file the operator edits (`file://`), or names an etcd where each engine's
//! `mtswarm join` registers itself (`etcd://`), as in Docker Swarm classic.
//!
//! A file and etcd are followed ([`Discovery::follows`]): the cluster calls [`Discovery::engines`] every few
//! seconds, and when a call fails it keeps the list it had. This module only answers "which engines now";
//! what changed since the last answer is the cluster's business.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::connector::EngineAddr;
use super::etcd::{Etcd, EtcdError};

/// The embedded default: the local engine.
pub const DEFAULT_ENGINE: &str = "unix:///var/run/docker.sock";

/// Where engines register under the etcd prefix: Swarm classic's layout, so that one etcd prefix can be read
/// by tools written for it.
pub const ETCD_NODES_PATH: &str = "docker/swarm/nodes";

/// How long one etcd call of [`Discovery::engines`] may take: the cluster asks again a few seconds later.
const ETCD_TIMEOUT: Duration = Duration::from_secs(3);

/// The most addresses one entry with ranges may stand for, so that a typo such as `[1:99999999]` is an error
/// and not a few gigabytes of addresses.
const MAX_EXPANSION: usize = 65_536;

/// Why the engines could not be known. Each message is whole, causes included, because the cluster logs it
/// as one field; the causes are therefore not also `source`s, which would repeat them in a printed chain.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The argument names a discovery backend that mtswarm does not implement (token://, consul://, zk://).
    #[error("{url}: {reason}")]
    Unsupported { url: String, reason: String },
    /// The argument names a discovery backend but is malformed: an empty list, a relative file path, an etcd
    /// URL without endpoints, or a bad address or range in a `nodes://` list.
    #[error("{url}: {reason}")]
    Invalid { url: String, reason: String },
    /// The argument names no discovery scheme and is not an engine address either; the message names it.
    #[error("{0}")]
    BadEngine(String),
    /// The discovery file cannot be read: it is missing, unreadable or not UTF-8.
    #[error("cannot read the discovery file {}: {cause}", path.display())]
    Read { path: PathBuf, cause: std::io::Error },
    /// A line of the discovery file is not an engine address, or holds a bad range.
    #[error("{}:{line}: {reason}", path.display())]
    BadLine { path: PathBuf, line: usize, reason: String },
    /// The engines registered in etcd could not be listed.
    #[error("{url}: {cause}")]
    Etcd { url: String, cause: EtcdError },
}

/// A parsed discovery argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// One engine URL: `tcp://h:p`, `unix:///path`.
    Engine(EngineAddr),
    /// `nodes://h1:p1,h2:p2`, ranges such as `10.0.0.[10:20]:2375` expanded.
    Nodes(Vec<EngineAddr>),
    /// `file:///abs/path`: one engine a line, read again at each call of [`Discovery::engines`].
    File(PathBuf),
    /// `etcd://h1:p1,h2:p2/prefix`: the engines that `mtswarm join` registered under the prefix.
    Etcd {
        /// The client endpoints, `host:port`, tried in order.
        endpoints: Vec<String>,
        /// The prefix without leading or trailing slashes; empty for the root.
        prefix: String,
    },
}

impl Discovery {
    pub fn parse(s: &str) -> Result<Discovery, DiscoveryError> {
        let invalid = |reason: String| DiscoveryError::Invalid { url: s.to_string(), reason };
        if s.starts_with("token://") {
            return Err(DiscoveryError::Unsupported {
                url: s.to_string(),
                reason: "token discovery was Docker Hub's hosted service, shut down in 2018; list the engines \
                         with nodes://HOST:PORT,HOST:PORT or file:///PATH, or use etcd://HOST:PORT/PREFIX"
                    .to_string(),
            });
        }
        for scheme in ["consul://", "zk://"] {
            if s.starts_with(scheme) {
                return Err(DiscoveryError::Unsupported {
                    url: s.to_string(),
                    reason: format!(
                        "{scheme} discovery is not supported by this version of mtswarm; use etcd://HOST:PORT/PREFIX, \
                         file:///PATH or nodes://HOST:PORT,HOST:PORT"
                    ),
                });
            }
        }
        if let Some(list) = s.strip_prefix("nodes://") {
            let mut nodes = Unique::default();
            for entry in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                for addr in expand_ranges(entry).map_err(invalid)? {
                    nodes.push(parse_addr(&addr).map_err(invalid)?);
                }
            }
            if nodes.list.is_empty() {
                return Err(invalid("nodes:// needs at least one HOST:PORT".to_string()));
            }
            return Ok(Discovery::Nodes(nodes.list));
        }
        if let Some(path) = s.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(invalid(
                    "a discovery file needs an absolute path, as in file:///etc/mtswarm/engines".to_string(),
                ));
            }
            return Ok(Discovery::File(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("etcd://") {
            let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let mut endpoints = Vec::new();
            for host in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                match EngineAddr::parse(host) {
                    Ok(a @ EngineAddr::Tcp { .. }) if !host.contains("://") => endpoints.push(a.authority()),
                    _ => return Err(invalid(format!("{host:?} is not an etcd endpoint HOST:PORT"))),
                }
            }
            if endpoints.is_empty() {
                return Err(invalid(
                    "etcd:// needs at least one endpoint, as in etcd://127.0.0.1:2379/mtswarm".to_string(),
                ));
            }
            let prefix = prefix.split('/').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("/");
            return Ok(Discovery::Etcd { endpoints, prefix });
        }
        EngineAddr::parse(s).map(Discovery::Engine).map_err(DiscoveryError::BadEngine)
    }

    /// The engines now, in order, without duplicates. A file is read and etcd is listed at each call; an
    /// error means the answer is unknown (not that there are no engines), so the caller keeps its last list.
    pub async fn engines(&self) -> Result<Vec<EngineAddr>, DiscoveryError> {
        match self {
            Discovery::Engine(a) => Ok(vec![a.clone()]),
            Discovery::Nodes(list) => Ok(list.clone()),
            Discovery::File(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|cause| DiscoveryError::Read { path: path.clone(), cause })?;
                parse_file(path, &text)
            }
            Discovery::Etcd { endpoints, prefix } => {
                let etcd = Etcd::new(endpoints.clone(), ETCD_TIMEOUT);
                let kvs = etcd
                    .range_prefix(etcd_nodes_dir(prefix).as_bytes())
                    .await
                    .map_err(|cause| DiscoveryError::Etcd { url: self.to_string(), cause })?;
                let mut engines = Unique::default();
                for kv in kvs {
                    let value = String::from_utf8_lossy(&kv.value);
                    match parse_addr(value.trim()) {
                        Ok(addr) => engines.push(addr),
                        // One bad registration must not hide the engines that registered properly.
                        Err(cause) => tracing::warn!(
                            key = %String::from_utf8_lossy(&kv.key),
                            %cause,
                            "ignoring an etcd discovery entry whose value is not an engine address"
                        ),
                    }
                }
                Ok(engines.list)
            }
        }
    }

    /// The engines when the argument names them itself (an engine URL, `nodes://`); `None` for a file and
    /// etcd, which only [`Discovery::engines`] can answer.
    pub fn static_engines(&self) -> Option<Vec<EngineAddr>> {
        match self {
            Discovery::Engine(a) => Some(vec![a.clone()]),
            Discovery::Nodes(list) => Some(list.clone()),
            Discovery::File(_) | Discovery::Etcd { .. } => None,
        }
    }

    /// True when the engines change while mtswarm runs (a file, etcd): the caller polls
    /// [`Discovery::engines`] every couple of seconds.
    pub fn follows(&self) -> bool {
        matches!(self, Discovery::File(_) | Discovery::Etcd { .. })
    }
}

impl Default for Discovery {
    fn default() -> Discovery {
        Discovery::Engine(EngineAddr::parse(DEFAULT_ENGINE).expect("a valid constant"))
    }
}

impl fmt::Display for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discovery::Engine(a) => write!(f, "{a}"),
            Discovery::Nodes(list) => {
                let list: Vec<String> = list
                    .iter()
                    .map(|a| match a {
                        EngineAddr::Tcp { .. } => a.authority(),
                        EngineAddr::Unix(_) => a.to_string(),
                    })
                    .collect();
                write!(f, "nodes://{}", list.join(","))
            }
            Discovery::File(path) => write!(f, "file://{}", path.display()),
            Discovery::Etcd { endpoints, prefix } => write!(f, "etcd://{}/{prefix}", endpoints.join(",")),
        }
    }
}

/// The etcd directory that lists the engines under `prefix`, with its trailing slash:
/// `/<prefix>/docker/swarm/nodes/`.
pub fn etcd_nodes_dir(prefix: &str) -> String {
    if prefix.is_empty() {
        format!("/{ETCD_NODES_PATH}/")
    } else {
        format!("/{prefix}/{ETCD_NODES_PATH}/")
    }
}

/// The key under which `join` registers the engine at `advertise` (`host:port`); its value is `advertise`.
pub fn etcd_node_key(prefix: &str, advertise: &str) -> String {
    format!("{}{advertise}", etcd_nodes_dir(prefix))
}

/// The engines of a discovery file: one address a line (`host:port`, `tcp://host:port`, ranges such as
/// `10.0.0.[10:20]:2375`), blank lines and `#` comments ignored, duplicates dropped, order kept.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<EngineAddr>, DiscoveryError> {
    let mut engines = Unique::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: String| DiscoveryError::BadLine { path: path.to_path_buf(), line: n + 1, reason };
        for addr in expand_ranges(line).map_err(bad)? {
            engines.push(parse_addr(&addr).map_err(bad)?);
        }
    }
    Ok(engines.list)
}

/// An engine address as a discovery list gives it; unlike a bare [`EngineAddr::parse`], one entry holds
/// one address, so `a:1 b:2` on one line is an error and not a host named `a:1 b`.
fn parse_addr(s: &str) -> Result<EngineAddr, String> {
    if s.contains(char::is_whitespace) {
        return Err(format!("{s:?}: one engine address is expected, without spaces"));
    }
    EngineAddr::parse(s)
}

/// Expands the ranges `[FROM:TO]` (numbers, both ends included) of one entry, as Swarm classic did:
/// `10.0.0.[10:12]:2375` is three addresses. Several ranges give every combination. A zero-padded FROM
/// keeps its width (`node[01:10]`). A bracketed IPv6 address (`[::1]:2375`) is not a range.
pub fn expand_ranges(entry: &str) -> Result<Vec<String>, String> {
    expand(entry).map_err(|reason| format!("{entry}: {reason}"))
}

/// [`expand_ranges`], with errors that do not repeat the entry.
fn expand(entry: &str) -> Result<Vec<String>, String> {
    let Some(open) = entry.find('[') else {
        if entry.contains(']') {
            return Err("']' without '['".to_string());
        }
        return Ok(vec![entry.to_string()]);
    };
    let close = entry[open..].find(']').map(|i| open + i).ok_or("'[' without ']'")?;
    let (head, inner, tail) = (&entry[..open], &entry[open + 1..close], &entry[close + 1..]);
    if head.contains(']') {
        return Err("']' without '['".to_string());
    }
    let middle = if inner.parse::<Ipv6Addr>().is_ok() {
        vec![format!("[{inner}]")]
    } else {
        range(inner).map_err(|reason| format!("[{inner}] {reason}"))?
    };
    let tails = expand(tail)?;
    if middle.len().saturating_mul(tails.len()) > MAX_EXPANSION {
        return Err(format!("the ranges stand for more than {MAX_EXPANSION} addresses"));
    }
    Ok(middle.iter().flat_map(|m| tails.iter().map(move |t| format!("{head}{m}{t}"))).collect())
}

/// The numbers of one range's inside, `FROM:TO`.
fn range(inner: &str) -> Result<Vec<String>, String> {
    let number = |s: &str| if s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u32>().ok() } else { None };
    let bounds = inner.split_once(':').map(|(from, to)| (from, number(from), number(to)));
    let Some((from_text, Some(from), Some(to))) = bounds else {
        return Err("is not a range [FROM:TO] of numbers (nor an IPv6 address)".to_string());
    };
    if from > to {
        return Err(format!("goes down: {from} is more than {to}"));
    }
    if (to - from) as usize >= MAX_EXPANSION {
        return Err(format!("stands for more than {MAX_EXPANSION} addresses"));
    }
    let width = if from_text.len() > 1 && from_text.starts_with('0') { from_text.len() } else { 0 };
    Ok((from..=to).map(|n| format!("{n:0width$}")).collect())
}

/// A list in first-seen order without duplicates.
#[derive(Default)]
struct Unique {
    list: Vec<EngineAddr>,
    seen: HashSet<EngineAddr>,
}

impl Unique {
    fn push(&mut self, addr: EngineAddr) {
        if self.seen.insert(addr.clone()) {
            self.list.push(addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `input` comes to: a discovery argument, a discovery file's text (`text:...`), or one entry's
    /// ranges (`range:...`). `expected` is the result, or (starting with `error: `) a part of the error.
    fn check(input: &str, expected: &str) {
        let got = if let Some(text) = input.strip_prefix("text:") {
            parse_file(Path::new("/etc/engines"), text).map(|list| render(&list)).map_err(|e| e.to_string())
        } else if let Some(entry) = input.strip_prefix("range:") {
            expand_ranges(entry).map(|list| list.join(" "))
        } else {
            Discovery::parse(input).map_err(|e| e.to_string()).map(|d| match &d {
                Discovery::Engine(_) | Discovery::Nodes(_) => {
                    assert!(!d.follows(), "{input} follows");
                    format!("{d}: {}", render(&d.static_engines().unwrap_or_default()))
                }
                Discovery::File(path) => format!("{d}: follows={} file {}", d.follows(), path.display()),
                Discovery::Etcd { endpoints, prefix } => {
                    format!("{d}: follows={} etcd {endpoints:?} {prefix:?}", d.follows())
                }
            })
        };
        let got = got.unwrap_or_else(|e| format!("error: {e}"));
        if let Some(part) = expected.strip_prefix("error: ") {
            assert!(got.starts_with("error: ") && got.contains(part), "{input:?}\n  got: {got}\n want: {expected}");
        } else {
            assert_eq!(got, expected, "{input:?}");
        }
    }

    fn render(list: &[EngineAddr]) -> String {
        list.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn parses_discovery_urls() {
        check("unix:///var/run/docker.sock", "unix:///var/run/docker.sock: unix:///var/run/docker.sock");
        check("tcp://127.0.0.1:23750", "tcp://127.0.0.1:23750: tcp://127.0.0.1:23750");
        check("nodes://a:1,b:2", "nodes://a:1,b:2: tcp://a:1 tcp://b:2");
        check("nodes://a:1, tcp://a:1 ,b:2,", "nodes://a:1,b:2: tcp://a:1 tcp://b:2");
        check("nodes://unix:///s/n1.sock,a:1", "nodes://unix:///s/n1.sock,a:1: unix:///s/n1.sock tcp://a:1");
        check("nodes://10.0.0.[10:12]:2375,b:2", "nodes://10.0.0.10:2375,10.0.0.11:2375,10.0.0.12:2375,b:2: tcp://10.0.0.10:2375 tcp://10.0.0.11:2375 tcp://10.0.0.12:2375 tcp://b:2");
        check("nodes://", "error: nodes://: nodes:// needs at least one");
        check(
            "nodes://a:1,10.0.0.[12:10]:2375",
            "error: nodes://a:1,10.0.0.[12:10]:2375: 10.0.0.[12:10]:2375: [12:10] goes down",
        );
        check("nodes://a:1,b", "error: nodes://a:1,b: b: an engine address is");
        check("file:///etc/mtswarm/engines", "file:///etc/mtswarm/engines: follows=true file /etc/mtswarm/engines");
        check("file://engines", "error: file://engines: a discovery file needs an absolute path");
        check(
            "etcd://127.0.0.1:2379/mtswarm",
            r#"etcd://127.0.0.1:2379/mtswarm: follows=true etcd ["127.0.0.1:2379"] "mtswarm""#,
        );
        check(
            "etcd://h1:2379, h2:2379/a/b/",
            r#"etcd://h1:2379,h2:2379/a/b: follows=true etcd ["h1:2379", "h2:2379"] "a/b""#,
        );
        check("etcd://[::1]:2379", r#"etcd://[::1]:2379/: follows=true etcd ["[::1]:2379"] """#);
        check("etcd:///mtswarm", "error: etcd:///mtswarm: etcd:// needs at least one endpoint");
        check("etcd://h1/p", r#"error: etcd://h1/p: "h1" is not an etcd endpoint HOST:PORT"#);
        check("etcd://http://h1:2379/p", r#"error: "http:" is not an etcd endpoint"#);
        check("token://abc", "error: token://abc: token discovery was Docker Hub's hosted service");
        check("consul://h:8500/p", "error: consul://h:8500/p: consul:// discovery is not supported");
        check("zk://h:2181/p", "error: zk://h:2181/p: zk:// discovery is not supported");
        check("tcp://host", "error: tcp://host: an engine address is tcp://HOST:PORT");
    }

    #[test]
    fn parses_discovery_files() {
        check("text:", "");
        check("text:a:1\n\n  # a comment\ntcp://b:2   # a trailing comment\n", "tcp://a:1 tcp://b:2");
        check("text:a:1\nb:2\ntcp://a:1\nb:2\n", "tcp://a:1 tcp://b:2");
        check("text:c:3\r\na:1\r\n", "tcp://c:3 tcp://a:1");
        check("text:10.0.0.[10:12]:2375", "tcp://10.0.0.10:2375 tcp://10.0.0.11:2375 tcp://10.0.0.12:2375");
        check(
            "text:10.0.0.11:2375\n10.0.0.[10:12]:2375",
            "tcp://10.0.0.11:2375 tcp://10.0.0.10:2375 tcp://10.0.0.12:2375",
        );
        check("text:[::1]:2375\n[fe80::1]:[2375:2376]", "tcp://[::1]:2375 tcp://[fe80::1]:2375 tcp://[fe80::1]:2376");
        check("text:a:1\n# fine\nb\n", "error: /etc/engines:3: b: an engine address is");
        check("text:a:1 b:2", r#"error: /etc/engines:1: "a:1 b:2": one engine address is expected"#);
        check("text:a:1\n10.0.0.[12:10]:2375", "error: /etc/engines:2: 10.0.0.[12:10]:2375: [12:10] goes down");
        check("text:10.0.0.[1:x]:2375", "error: /etc/engines:1: 10.0.0.[1:x]:2375: [1:x] is not a range");
    }

    #[test]
    fn expands_ranges() {
        check("range:10.0.0.1:2375", "10.0.0.1:2375");
        check("range:10.0.0.[10:12]:2375", "10.0.0.10:2375 10.0.0.11:2375 10.0.0.12:2375");
        check("range:10.0.0.[7:7]:2375", "10.0.0.7:2375");
        check("range:node[08:10]:2375", "node08:2375 node09:2375 node10:2375");
        check("range:10.0.[1:2].[5:6]:2375", "10.0.1.5:2375 10.0.1.6:2375 10.0.2.5:2375 10.0.2.6:2375");
        check("range:h:[2375:2376]", "h:2375 h:2376");
        check("range:[::1]:2375", "[::1]:2375");
        check("range:tcp://[::ffff:10.0.0.1]:[1:2]", "tcp://[::ffff:10.0.0.1]:1 tcp://[::ffff:10.0.0.1]:2");
        check("range:10.0.0.[12:10]:2375", "error: 10.0.0.[12:10]:2375: [12:10] goes down: 12 is more than 10");
        check("range:10.0.0.[10:]:2375", "error: 10.0.0.[10:]:2375: [10:] is not a range");
        check("range:10.0.0.[a:b]:2375", "error: [a:b] is not a range");
        check("range:10.0.0.[-1:3]:2375", "error: [-1:3] is not a range");
        check("range:10.0.0.[10-12]:2375", "error: [10-12] is not a range");
        check("range:10.0.0.[10:12:2375", "error: 10.0.0.[10:12:2375: '[' without ']'");
        check("range:10.0.0.10]:2375", "error: ']' without '['");
        check("range:10.0.[1:2].[3:x]:2375", "error: 10.0.[1:2].[3:x]:2375: [3:x] is not a range");
        check("range:h:[0:99999999]", "error: [0:99999999] stands for more than 65536 addresses");
        check("range:h:[0:99999999999]", "error: [0:99999999999] is not a range");
        check("range:[0:999].[0:999]:1", "error: [0:999].[0:999]:1: the ranges stand for more than 65536");
    }
}
