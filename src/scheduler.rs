//! The scheduler: which node takes a new container, decided as Docker Swarm classic decided it.
//!
//! Pure: the caller hands over a snapshot of the nodes ([`NodeView`]) and what the create asks for ([`Placement`]),
//! and gets back the index of a node or a [`NoNode`] that names the filter that left no node and why, in words a
//! docker user understands. No IO, so every rule is table-tested below.
//!
//! Filters run in a fixed order, each narrowing the candidates of the one before: health, constraint, affinity,
//! port, dependency, image; then the resources check and the strategy (spread, binpack or random) pick one node.
//!
//! Scheduling expressions (`constraint:node==node1`, `affinity:container!=~db*`, ...) are Swarm classic's: `==` or
//! `!=`, a `~` after the operator for a soft rule, and a value that is a literal, a glob (`*` stands for any run of
//! characters, matched against the whole value) or an unanchored regular expression written `/regex/`.
//! [`placement_from_create`] reads them from a create body, from `Env` or from the `com.docker.swarm.*` labels, and
//! moves the `Env` ones into the labels as Swarm classic did, so the container records its scheduling rules.
//!
//! Tenancy: a container of another tenant has no names in the snapshot ([`ContainerView::names`]), so no affinity
//! can match it, by name, id or label. It still reserves memory, CPUs and host ports, which are the host's.
//!
//! Where this differs from Swarm classic, on purpose:
//! - a soft rule that would leave no node is dropped on its own, hard rules applied first; Swarm classic only
//!   retried the whole placement without every soft rule (done here too, when a later filter fails);
//! - a glob treats only `*` specially; Swarm classic pasted the value into a regular expression, so `.` or `?` in
//!   `node==node.1` was regex syntax;
//! - a node without the label matches no value (`region==*` needs a `region`); Swarm classic matched "" there;
//! - `image==redis` is redis:latest, by Docker's reference rules; Swarm classic also matched every tag of the
//!   repository. A literal `container==` value matches an id prefix, where Swarm classic needed the full id;
//! - host ports conflict per protocol and per address family; Swarm classic compared the port number only;
//! - the resources check applies to every strategy, random included, and counts `NanoCpus`; Swarm classic's random
//!   ignored resources and it counted `CpuShares` as CPUs;
//! - the image filter is new: no registry is reachable, so only a node holding the image can create the container;
//! - a malformed expression, regular expression or label is a client error at create time; Swarm classic ignored an
//!   unreadable label, failed late on a bad key, and took an invalid regular expression for no match.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

/// What the scheduler knows of one node: a snapshot taken by the caller.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    /// The engine's `Name` from `/info`: what constraints, dependencies and messages call the node.
    pub name: String,
    /// The engine's `ID` from `/info`; `node==` matches it as well as the name, as in Swarm classic.
    pub id: String,
    /// The engine's address, e.g. "tcp://127.0.0.1:23751", for the caller's messages and logs.
    pub addr: String,
    /// Whether the engine answered its last refresh; unhealthy nodes never take a container.
    pub healthy: bool,
    /// Engine labels from `/info` `Labels` ("k=v" strings, already split), plus the built-in keys Swarm classic
    /// offers for constraints: `node` (= name), `storagedriver`, `kernelversion`, `operatingsystem` (the caller
    /// fills them).
    pub labels: BTreeMap<String, String>,
    /// Bytes of memory (`MemTotal`).
    pub total_memory: i64,
    /// CPUs (`NCPU`).
    pub total_cpus: i64,
    /// Every container on the node, running or not, of every tenant: a stopped container keeps its reservations and
    /// its host ports, as it did for Swarm classic, since starting it again claims them.
    pub containers: Vec<ContainerView>,
    /// The images the node holds.
    pub images: Vec<ImageView>,
}

/// One container of a node, as the scheduler needs it.
#[derive(Debug, Clone, Default)]
pub struct ContainerView {
    /// The full container id.
    pub id: String,
    /// The names the requesting tenant knows this container by (without a leading '/'); EMPTY for containers of
    /// other tenants, so affinities can never match (or reveal) another tenant's container.
    pub names: Vec<String>,
    /// `Config.Image` as the create gave it. The image is on the node while the container exists (Docker refuses to
    /// remove an image a container uses), so it counts as one of the node's images even before the next refresh.
    pub image: String,
    /// `Config.Labels`, for affinities on container labels (`affinity:com.example.type==frontend`). Like `names`,
    /// only the tenant's own containers' labels count; the caller may leave other tenants' empty.
    pub labels: BTreeMap<String, String>,
    /// `HostConfig.Memory`, bytes (0 = unlimited).
    pub memory: i64,
    /// `HostConfig.NanoCpus` (0 = unlimited).
    pub nano_cpus: i64,
    /// The host ports this container binds, whatever its tenant: `NetworkSettings.Ports` while it runs (that is
    /// where an engine-chosen port shows), and `HostConfig.PortBindings` otherwise; for a container in the host's
    /// network namespace, its exposed ports.
    pub published: Vec<PublishedPort>,
}

/// One image of a node.
#[derive(Debug, Clone, Default)]
pub struct ImageView {
    /// The image id, "sha256:<hex>".
    pub id: String,
    /// `RepoTags`, e.g. "busybox:latest".
    pub repo_tags: Vec<String>,
    /// `RepoDigests`, e.g. "busybox@sha256:<hex>", so a create that names its image by digest finds it.
    pub repo_digests: Vec<String>,
}

/// One host port a container binds, or asks to bind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishedPort {
    /// The host address: "" binds every address of both families, "0.0.0.0" every IPv4 one, "::" every IPv6 one.
    pub host_ip: String,
    /// The host port; never 0 (a port the engine chooses cannot conflict, so it is not listed).
    pub host_port: u16,
    /// "tcp", "udp" or "sctp".
    pub proto: String,
}

impl fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}/{}", self.host_port, self.proto),
            Ok(IpAddr::V4(ip)) => write!(f, "{ip}:{}/{}", self.host_port, self.proto),
            Err(_) if self.host_ip.is_empty() => write!(f, "{}/{}", self.host_port, self.proto),
            Err(_) => write!(f, "{}:{}/{}", self.host_ip, self.host_port, self.proto),
        }
    }
}

/// What a container create asks of the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// `HostConfig.Memory`, bytes (0 = no limit: nothing to reserve).
    pub memory: i64,
    /// `HostConfig.NanoCpus` (0 = no limit).
    pub nano_cpus: i64,
    /// `Image` as the create names it; empty leaves the image filter out (the engine will refuse the create).
    pub image: String,
    /// Constraints on the node, in the order given.
    pub constraints: Vec<Expr>,
    /// Affinities with the node's containers and images, in the order given.
    pub affinities: Vec<Expr>,
    /// The host ports the container binds, one entry per port (a range is spread into its ports).
    pub ports: Vec<PublishedPort>,
    /// Node names where the objects this container depends on live (--volumes-from, --link, --network container:X,
    /// a local network or named volume it uses): resolved by the caller. Empty = no dependency.
    pub colocate: BTreeSet<String>,
}

/// `==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The node must match.
    Eq,
    /// The node must not match.
    Ne,
}

/// One scheduling expression, e.g. `node==node1`, `region!=~us-*`, `container==/^web-\d+$/`.
#[derive(Debug, Clone)]
pub struct Expr {
    /// The expression as written, quoted by messages.
    text: String,
    /// What is matched: `node`, a node label (constraints); `container`, `image`, a container label (affinities).
    pub key: String,
    /// Whether the node must match or must not.
    pub op: Op,
    /// A soft rule is dropped, rather than failing the create, when it leaves no node.
    pub soft: bool,
    /// The value as written after the operator and the `~`.
    pub value: String,
    matcher: Matcher,
}

/// How an expression's value matches a string.
#[derive(Debug, Clone)]
enum Matcher {
    /// A literal; for `container` and `image` also an id prefix, and for `image` any spelling of the reference.
    Exact,
    /// A glob (`*` only) or `/regex/`, compiled.
    Pattern(Regex),
}

impl PartialEq for Expr {
    /// The text determines everything else.
    fn eq(&self, other: &Expr) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Expr {
    type Err = String;

    /// Parses `key==value`, `key!=value`, `key==~value` or `key!=~value`. The message of an error says what is wrong
    /// without quoting the expression; the caller knows whether it was a constraint or an affinity.
    fn from_str(text: &str) -> Result<Expr, String> {
        let operator = ["==", "!="].iter().filter_map(|op| text.find(op).map(|at| (at, *op))).min();
        let Some((at, operator)) = operator else {
            return Err("expected key==value or key!=value (a ~ after the operator makes the rule soft)".to_string());
        };
        let key = &text[..at];
        // Swarm classic's key syntax: a letter or underscore, then letters, digits, '_', '-' and '.'.
        let mut chars = key.chars();
        let key_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !key_ok {
            return Err(format!(
                "the key {key:?} is not valid: it must start with a letter or '_' and hold only letters, digits, \
                 '_', '-' and '.'"
            ));
        }
        let rest = &text[at + operator.len()..];
        let (soft, value) = match rest.strip_prefix('~') {
            Some(value) => (true, value),
            None => (false, rest),
        };
        if value.is_empty() {
            return Err("the value is missing".to_string());
        }
        if value.chars().any(char::is_control) {
            return Err("the value holds a control character".to_string());
        }
        let matcher = if value.len() >= 2 && value.starts_with('/') && value.ends_with('/') {
            Matcher::Pattern(compile(&value[1..value.len() - 1])?)
        } else if value.contains('*') {
            let glob = value.split('*').map(regex::escape).collect::<Vec<_>>().join(".*");
            Matcher::Pattern(compile(&format!("^{glob}$"))?)
        } else {
            Matcher::Exact
        };
        let op = if operator == "==" { Op::Eq } else { Op::Ne };
        Ok(Expr { text: text.to_string(), key: key.to_string(), op, soft, value: value.to_string(), matcher })
    }
}

/// Compiles a client's regular expression with a bound on its size: the `regex` crate matches in linear time, and
/// the bound keeps one expression from taking much memory to compile.
fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern).size_limit(1 << 20).build().map_err(|e| {
        // A syntax error's text repeats the pattern over several lines with a caret; its last line says what is
        // wrong.
        let text = e.to_string();
        let why = text.lines().last().unwrap_or_default().trim_start_matches("error: ").to_string();
        format!("the regular expression /{pattern}/ is not valid: {why}")
    })
}

impl Expr {
    /// Whether the value matches `s` as a literal, glob or regular expression (the operator is not applied).
    fn matches(&self, s: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => self.value == s,
            Matcher::Pattern(re) => re.is_match(s),
        }
    }

    /// Applies the operator to whether anything on the node matched.
    fn holds(&self, matched: bool) -> bool {
        matched == (self.op == Op::Eq)
    }

    /// Whether a constraint holds on `node`: `node` is the node's name or id, anything else a node label. A node
    /// without the label matches no value, so `!=` holds there.
    fn holds_on_node(&self, node: &NodeView) -> bool {
        let matched = match self.key.as_str() {
            "node" => self.matches(&node.name) || self.matches(&node.id),
            label => node.labels.get(label).is_some_and(|v| self.matches(v)),
        };
        self.holds(matched)
    }

    /// Whether an affinity holds on `node`: `container` is one of the tenant's containers there, by name or id
    /// (a literal matches an id prefix), `image` one of the node's images, anything else a label of one of the
    /// tenant's containers there.
    fn holds_for_affinity(&self, node: &NodeView) -> bool {
        let own = node.containers.iter().filter(|c| !c.names.is_empty());
        let matched = match self.key.as_str() {
            "container" => own.into_iter().any(|c| {
                c.names.iter().any(|n| self.matches(n))
                    || match self.matcher {
                        Matcher::Exact => c.id.starts_with(&self.value),
                        Matcher::Pattern(_) => self.matches(&c.id),
                    }
            }),
            "image" => match self.matcher {
                Matcher::Exact => node_has_image(node, &self.value),
                Matcher::Pattern(_) => image_names(node).iter().any(|n| self.matches(n)),
            },
            label => own.into_iter().any(|c| c.labels.get(label).is_some_and(|v| self.matches(v))),
        };
        self.holds(matched)
    }
}

/// A placement strategy: how the node is chosen among those every filter kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The least loaded node (Swarm classic's default): containers spread evenly over the nodes.
    #[default]
    Spread,
    /// The most loaded node that still fits: one node is filled before the next is used.
    Binpack,
    /// Any node that fits, chosen uniformly from the seed.
    Random,
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Strategy, String> {
        match s {
            "spread" => Ok(Strategy::Spread),
            "binpack" => Ok(Strategy::Binpack),
            "random" => Ok(Strategy::Random),
            _ => Err(format!("unknown scheduling strategy {s:?}: use spread, binpack or random")),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Spread => "spread",
            Strategy::Binpack => "binpack",
            Strategy::Random => "random",
        })
    }
}

/// No node can take the container: which filter left none, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoNode {
    /// "health", "constraint", "affinity", "port", "dependency", "image" or "resources".
    pub filter: &'static str,
    /// A sentence for the user, e.g. "no node matches constraint node==node9 (nodes: node0, node1, node2)".
    pub message: String,
    /// The image no node of the cluster holds: one engine answers that create with `No such image`, which
    /// makes clients pull it and create again.
    pub missing_image: Option<String>,
}

impl fmt::Display for NoNode {
    /// The message alone: it is what the user reads in the 503.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NoNode {}

/// Chooses the node for a container: an index into `nodes`. `seed` drives the random strategy only; the others
/// are deterministic, ties broken by container count and then by node name.
///
/// As in Swarm classic, soft rules never make a create fail: one that would leave no node is dropped, and if the
/// placement still fails with the soft rules kept, it is tried again without any of them (a soft constraint may
/// pick a node whose port is taken while another node is free).
pub fn schedule(nodes: &[NodeView], p: &Placement, strategy: Strategy, seed: u64) -> Result<usize, NoNode> {
    let has_soft = p.constraints.iter().chain(&p.affinities).any(|e| e.soft);
    match place(nodes, p, strategy, seed, true) {
        Err(_) if has_soft => place(nodes, p, strategy, seed, false),
        placed => placed,
    }
}

/// One run of the filters and the strategy.
fn place(nodes: &[NodeView], p: &Placement, strategy: Strategy, seed: u64, with_soft: bool) -> Result<usize, NoNode> {
    let mut run = Run { nodes, candidates: (0..nodes.len()).collect(), excluded: vec![None; nodes.len()] };
    run.health()?;
    run.expressions("constraint", &p.constraints, with_soft, Expr::holds_on_node)?;
    run.expressions("affinity", &p.affinities, with_soft, Expr::holds_for_affinity)?;
    run.ports(&p.ports)?;
    run.dependency(&p.colocate)?;
    run.image(&p.image)?;
    let fits = run.resources(p)?;
    Ok(pick(nodes, &fits, strategy, seed))
}

/// The candidates of one run, and why each other node was left out (for the messages of later filters).
struct Run<'a> {
    nodes: &'a [NodeView],
    candidates: Vec<usize>,
    excluded: Vec<Option<String>>,
}

impl Run<'_> {
    /// Keeps the candidates `reject` says nothing about; the others remember its reason. When that would leave no
    /// candidate, nothing changes and `false` is returned, so the caller can name the candidates in its message.
    fn narrow(&mut self, reject: impl Fn(usize, &NodeView) -> Option<String>) -> bool {
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for &i in &self.candidates {
            match reject(i, &self.nodes[i]) {
                None => kept.push(i),
                Some(why) => dropped.push((i, why)),
            }
        }
        if kept.is_empty() {
            return false;
        }
        for (i, why) in dropped {
            self.excluded[i] = Some(why);
        }
        self.candidates = kept;
        true
    }

    /// The candidates' names, for messages.
    fn names(&self) -> String {
        names(self.candidates.iter().map(|&i| &self.nodes[i]))
    }

    fn health(&mut self) -> Result<(), NoNode> {
        if self.nodes.is_empty() {
            return Err(no_node("health", "the cluster has no node".to_string()));
        }
        if !self.narrow(|_, n| (!n.healthy).then(|| "it is unhealthy".to_string())) {
            let message = format!("no healthy node in the cluster (unhealthy: {})", self.names());
            return Err(no_node("health", message));
        }
        Ok(())
    }

    /// Constraints or affinities: the hard rules first, so that a soft rule is judged against the nodes every
    /// hard rule allows; then the soft ones in order, each dropped if it would leave no node.
    fn expressions(
        &mut self,
        filter: &'static str,
        exprs: &[Expr],
        with_soft: bool,
        holds: fn(&Expr, &NodeView) -> bool,
    ) -> Result<(), NoNode> {
        let hard = exprs.iter().filter(|e| !e.soft);
        let soft = exprs.iter().filter(|e| with_soft && e.soft);
        for expr in hard.chain(soft) {
            let kept = self.narrow(|_, n| (!holds(expr, n)).then(|| format!("it does not match {filter} {expr}")));
            if !kept && !expr.soft {
                let message = format!("no node matches {filter} {expr} (nodes: {})", self.names());
                return Err(no_node(filter, message));
            }
        }
        Ok(())
    }

    /// One port after the other, as Swarm classic: a node is out if any container there already binds the port on
    /// an address that overlaps the one asked for.
    fn ports(&mut self, ports: &[PublishedPort]) -> Result<(), NoNode> {
        if ports.is_empty() {
            return Ok(());
        }
        // Each node's bound ports by (port, proto), so that a long port range costs one lookup per port.
        let mut bound: HashMap<usize, HashMap<(u16, &str), Vec<&str>>> = HashMap::new();
        for &i in &self.candidates {
            let table = bound.entry(i).or_default();
            for published in self.nodes[i].containers.iter().flat_map(|c| &c.published) {
                let key = (published.host_port, published.proto.as_str());
                table.entry(key).or_default().push(&published.host_ip);
            }
        }
        for port in ports {
            let in_use = |i: usize| {
                bound
                    .get(&i)
                    .and_then(|table| table.get(&(port.host_port, port.proto.as_str())))
                    .is_some_and(|ips| ips.iter().any(|ip| addresses_overlap(ip, &port.host_ip)))
            };
            let kept = self.narrow(|i, _| in_use(i).then(|| format!("host port {port} is already published there")));
            if !kept {
                let message = format!(
                    "host port {port} is already published on every node the container may go to ({})",
                    self.names()
                );
                return Err(no_node("port", message));
            }
        }
        Ok(())
    }

    /// The node of the container's dependencies, and only it.
    fn dependency(&mut self, colocate: &BTreeSet<String>) -> Result<(), NoNode> {
        let mut wanted = colocate.iter();
        let Some(node) = wanted.next() else {
            return Ok(());
        };
        if wanted.next().is_some() {
            let all = colocate.iter().map(String::as_str).collect::<Vec<_>>().join(", ");
            let message = format!(
                "the container's dependencies are on different nodes: {all}; a container can only use the \
                 containers, volumes and networks of the node it runs on"
            );
            return Err(no_node("dependency", message));
        }
        if self.narrow(|_, n| (n.name != *node).then(|| format!("the container's dependencies are on {node}"))) {
            return Ok(());
        }
        let why = match self.nodes.iter().position(|n| n.name == *node) {
            None => "which is not in the cluster".to_string(),
            Some(i) => match &self.excluded[i] {
                Some(why) => format!("which cannot take it: {why}"),
                None => "which cannot take it".to_string(),
            },
        };
        Err(no_node("dependency", format!("the container's dependencies are on {node}, {why}")))
    }

    /// Only nodes that hold the image: no registry can be reached, so a node without it cannot create the container.
    fn image(&mut self, image: &str) -> Result<(), NoNode> {
        if image.is_empty() {
            return Ok(());
        }
        if self.narrow(|_, n| (!node_has_image(n, image)).then(|| format!("it does not hold image {image}"))) {
            return Ok(());
        }
        let elsewhere: Vec<String> = (0..self.nodes.len())
            .filter(|&i| node_has_image(&self.nodes[i], image))
            .map(|i| match &self.excluded[i] {
                Some(why) => format!("{} ({why})", self.nodes[i].name),
                None => self.nodes[i].name.clone(),
            })
            .collect();
        if elsewhere.is_empty() {
            let mut e = no_node("image", format!("image {image} is on no node of the cluster"));
            e.missing_image = Some(image.to_string());
            return Err(e);
        }
        let message = format!("image {image} is only on nodes the container may not go to: {}", elsewhere.join(", "));
        Err(no_node("image", message))
    }

    /// The candidates with room for the container's memory and CPUs, with their scores.
    fn resources(&self, p: &Placement) -> Result<Vec<Fit>, NoNode> {
        let loads: Vec<Load> = self.candidates.iter().map(|&i| Load::of(i, &self.nodes[i])).collect();
        let fits: Vec<Fit> = loads.iter().filter_map(|load| load.fit(p)).collect();
        if !fits.is_empty() {
            return Ok(fits);
        }
        let most = |free: fn(&Load) -> i64| {
            loads.iter().max_by_key(|l| (free(l), std::cmp::Reverse(l.index))).map(|l| (free(l), l.index))
        };
        let memory_fits = |l: &Load| l.free_memory() >= p.memory;
        let cpus_fit = |l: &Load| l.free_nano_cpus() >= p.nano_cpus;
        let message = match (most(Load::free_memory), most(Load::free_nano_cpus)) {
            (Some((free, i)), _) if p.memory > 0 && !loads.iter().any(memory_fits) => format!(
                "not enough memory: the container asks for {}, and the most left unreserved on a node it may go \
                 to is {} ({})",
                bytes(p.memory),
                bytes(free),
                self.nodes[i].name
            ),
            (_, Some((free, i))) if p.nano_cpus > 0 && !loads.iter().any(cpus_fit) => format!(
                "not enough CPUs: the container asks for {}, and the most left unreserved on a node it may go to \
                 is {} ({})",
                cpus(p.nano_cpus),
                cpus(free),
                self.nodes[i].name
            ),
            _ => format!(
                "no node the container may go to has both {} of memory and {} unreserved (nodes: {})",
                bytes(p.memory),
                cpus(p.nano_cpus),
                self.names()
            ),
        };
        Err(no_node("resources", message))
    }
}

fn no_node(filter: &'static str, message: String) -> NoNode {
    NoNode { filter, message, missing_image: None }
}

fn names<'a>(nodes: impl Iterator<Item = &'a NodeView>) -> String {
    nodes.map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// What a node has reserved: the sums of its containers' limits, as Swarm classic counted them.
struct Load {
    index: usize,
    total_memory: i64,
    total_nano_cpus: i64,
    memory: i64,
    nano_cpus: i64,
    containers: usize,
}

/// A node that can take the container, and how loaded it would be.
struct Fit {
    index: usize,
    /// CPU percent plus memory percent after placing, each 100 when the container asks for none of it.
    score: i64,
    containers: usize,
}

impl Load {
    fn of(index: usize, node: &NodeView) -> Load {
        let sum = |limit: fn(&ContainerView) -> i64| {
            node.containers.iter().map(|c| limit(c).max(0)).fold(0i64, i64::saturating_add)
        };
        Load {
            index,
            total_memory: node.total_memory.max(0),
            total_nano_cpus: node.total_cpus.max(0).saturating_mul(1_000_000_000),
            memory: sum(|c| c.memory),
            nano_cpus: sum(|c| c.nano_cpus),
            containers: node.containers.len(),
        }
    }

    fn free_memory(&self) -> i64 {
        (self.total_memory - self.memory).max(0)
    }

    fn free_nano_cpus(&self) -> i64 {
        (self.total_nano_cpus - self.nano_cpus).max(0)
    }

    /// Swarm classic's weighing: a resource the container asks for must fit, and scores its percentage of the node
    /// once placed (integer percent, so small differences tie and the container count decides); a resource it does
    /// not ask for scores a flat 100, whatever the node's load.
    fn fit(&self, p: &Placement) -> Option<Fit> {
        let percent = |used: i64, asked: i64, total: i64| -> Option<i64> {
            if asked <= 0 {
                return Some(100);
            }
            let after = i128::from(used) + i128::from(asked);
            (after <= i128::from(total)).then(|| (after * 100 / i128::from(total)) as i64)
        };
        let memory = percent(self.memory, p.memory, self.total_memory)?;
        let cpus = percent(self.nano_cpus, p.nano_cpus, self.total_nano_cpus)?;
        Some(Fit { index: self.index, score: memory + cpus, containers: self.containers })
    }
}

/// The strategy's choice among nodes that fit (never empty).
fn pick(nodes: &[NodeView], fits: &[Fit], strategy: Strategy, seed: u64) -> usize {
    let name = |f: &Fit| nodes[f.index].name.as_str();
    let chosen = match strategy {
        Strategy::Spread => fits
            .iter()
            .min_by(|a, b| (a.score, a.containers, name(a), a.index).cmp(&(b.score, b.containers, name(b), b.index))),
        Strategy::Binpack => fits.iter().min_by(|a, b| {
            (b.score, b.containers).cmp(&(a.score, a.containers)).then((name(a), a.index).cmp(&(name(b), b.index)))
        }),
        Strategy::Random => fits.get(uniform(seed, fits.len())),
    };
    chosen.map_or(0, |f| f.index)
}

/// A uniform index below `n` from `seed`: splitmix64, then a multiply-shift into range (its bias, below n/2^64, is
/// nothing next to a cluster's size). Deterministic, so tests can name the seed.
fn uniform(seed: u64, n: usize) -> usize {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((u128::from(z) * n as u128) >> 64) as usize
}

/// Whether two host addresses can both take one port: "" is every address of both families, "0.0.0.0" and "::"
/// every address of their family; otherwise the same address. An IPv4 and an IPv6 socket never collide, since
/// Docker's IPv6 bindings are IPv6-only.
fn addresses_overlap(a: &str, b: &str) -> bool {
    if a.is_empty() || b.is_empty() {
        return true;
    }
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified() || a == b),
        _ => a == b,
    }
}

/// Whether the node holds the image a create names: by any spelling of its reference (`busybox`,
/// `busybox:latest`, `docker.io/library/busybox:latest`), by digest, or by id or id prefix, with or without
/// `sha256:`. The images of the node's containers count too.
fn node_has_image(node: &NodeView, reference: &str) -> bool {
    let wanted = normalize_reference(reference);
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let is_id = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let by_id = |id: &str| is_id && id.strip_prefix("sha256:").unwrap_or(id).starts_with(hex);
    node.images.iter().any(|image| {
        by_id(&image.id) || image.repo_tags.iter().chain(&image.repo_digests).any(|r| normalize_reference(r) == wanted)
    }) || node.containers.iter().any(|c| !c.image.is_empty() && normalize_reference(&c.image) == wanted)
}

/// The strings a glob or regular expression on `image` is matched against: ids with and without `sha256:`, tags
/// as the engine reports them and without `:latest`, digests, and the images of the node's containers.
fn image_names(node: &NodeView) -> Vec<&str> {
    let mut out = Vec::new();
    for image in &node.images {
        out.push(image.id.as_str());
        out.extend(image.id.strip_prefix("sha256:"));
        for tag in &image.repo_tags {
            out.push(tag.as_str());
            out.extend(tag.strip_suffix(":latest"));
        }
        out.extend(image.repo_digests.iter().map(String::as_str));
    }
    out.extend(node.containers.iter().map(|c| c.image.as_str()).filter(|i| !i.is_empty()));
    out
}

/// A reference in Docker's familiar form with its tag: "busybox" and "docker.io/library/busybox" are
/// "busybox:latest"; a digest reference keeps only the digest (Docker ignores a tag beside one).
fn normalize_reference(reference: &str) -> String {
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    // A ':' after the last '/' starts the tag; one before it is a registry's port.
    let slash = name.rfind('/').map_or(0, |at| at + 1);
    let (repo, tag) = match name[slash..].find(':') {
        Some(at) => (&name[..slash + at], Some(&name[slash + at + 1..])),
        None => (name, None),
    };
    let repo = ["docker.io/", "index.docker.io/"].iter().find_map(|p| repo.strip_prefix(p)).unwrap_or(repo);
    let repo = match repo.strip_prefix("library/") {
        Some(rest) if !rest.contains('/') => rest,
        _ => repo,
    };
    match digest {
        Some(digest) => format!("{repo}@{digest}"),
        None => format!("{repo}:{}", tag.unwrap_or("latest")),
    }
}

/// A size in the units `docker info` uses: "256 MiB", "1.5 GiB".
fn bytes(n: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", trim_decimals(value), units[unit])
}

/// CPUs from nano CPUs, as `--cpus` writes them: "1 CPU", "1.5 CPUs".
fn cpus(nano: i64) -> String {
    let value = nano as f64 / 1e9;
    format!("{} CPU{}", trim_decimals(value), if value == 1.0 { "" } else { "s" })
}

fn trim_decimals(value: f64) -> String {
    let s = format!("{value:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The label Swarm classic keeps a container's constraints in, a JSON list of expressions.
pub const CONSTRAINTS_LABEL: &str = "com.docker.swarm.constraints";
/// The label Swarm classic keeps a container's affinities in, a JSON list of expressions.
pub const AFFINITIES_LABEL: &str = "com.docker.swarm.affinities";

/// Reads what a `POST /containers/create` body asks of the scheduler, and moves the `constraint:` and `affinity:`
/// entries of `Env` into the [`CONSTRAINTS_LABEL`] and [`AFFINITIES_LABEL`] labels (after any expressions the labels
/// already hold), as Swarm classic did: the container records its scheduling rules and its environment stays clean.
/// The body is changed only when it is read without error.
///
/// Fields are found the way the engine's decoder finds them: names match without regard to case, and HostConfig
/// fields written at the top level (older clients) count when `HostConfig` is absent, `Memory` also when
/// `HostConfig` leaves it 0. In the host's network namespace the exposed ports are the host ports, as for the engine.
///
/// A host port range (`"HostPort": "8000-8010"`, from `-p 8000-8010:80`) lets the engine bind any one port of it;
/// the scheduler asks for every port of the range to be free, so the engine's choice cannot collide with a
/// container it knows of. An empty or "0" host port is the engine's to choose and never conflicts.
///
/// An error is a sentence naming the field or expression at fault, for a 400.
pub fn placement_from_create(doc: &mut Value) -> Result<Placement, String> {
    let top = doc.as_object().ok_or("the request body must be a JSON object")?;
    let image = match field(top, "Image")? {
        None => String::new(),
        Some((_, value)) => value.as_str().ok_or("Image must be a string")?.to_string(),
    };
    let inner = match field(top, "HostConfig")? {
        None => None,
        Some((_, value)) => Some(value.as_object().ok_or("HostConfig must be an object")?),
    };
    let (host_config, prefix) = match inner {
        Some(inner) => (inner, "HostConfig."),
        None => (top, ""),
    };
    let mut memory = integer(host_config, "Memory", prefix)?;
    if inner.is_some() && memory == 0 {
        memory = integer(top, "Memory", "")?;
    }
    let nano_cpus = integer(host_config, "NanoCpus", prefix)?;
    let network_mode = match field(host_config, "NetworkMode")? {
        None => "",
        Some((_, value)) => value.as_str().ok_or_else(|| format!("{prefix}NetworkMode must be a string"))?,
    };
    let ports = if network_mode == "host" { exposed_ports(top)? } else { port_bindings(host_config, prefix)? };

    // Swarm classic's order: the labels' expressions first, then those of Env.
    let labels = match field(top, "Labels")? {
        None => None,
        Some((_, value)) => Some(value.as_object().ok_or("Labels must be an object")?),
    };
    let mut constraints = label_expressions(labels, CONSTRAINTS_LABEL)?;
    let mut affinities = label_expressions(labels, AFFINITIES_LABEL)?;
    let (env_key, env) = match field(top, "Env")? {
        None => (None, Vec::new()),
        Some((key, value)) => {
            let list = value.as_array().ok_or("Env must be a list of strings")?;
            let strings = list.iter().map(|v| v.as_str().ok_or("Env must be a list of strings"));
            (Some(key.to_string()), strings.collect::<Result<Vec<_>, _>>()?)
        }
    };
    let mut kept_env = Vec::new();
    let (mut moved_constraints, mut moved_affinities) = (false, false);
    for entry in env {
        match entry.split_once(':') {
            Some(("constraint", expr)) => {
                constraints.push(expr.to_string());
                moved_constraints = true;
            }
            Some(("affinity", expr)) => {
                affinities.push(expr.to_string());
                moved_affinities = true;
            }
            _ => kept_env.push(Value::String(entry.to_string())),
        }
    }
    let parse = |kind: &str, exprs: &[String]| -> Result<Vec<Expr>, String> {
        exprs.iter().map(|e| e.parse().map_err(|why| format!("invalid {kind} {e:?}: {why}"))).collect()
    };
    let placement = Placement {
        memory,
        nano_cpus,
        image,
        constraints: parse("constraint", &constraints)?,
        affinities: parse("affinity", &affinities)?,
        ports,
        colocate: BTreeSet::new(),
    };

    if !(moved_constraints || moved_affinities) {
        return Ok(placement);
    }
    let top = doc.as_object_mut().ok_or("the request body must be a JSON object")?;
    if let Some(key) = env_key {
        top.insert(key, Value::Array(kept_env));
    }
    // The key the client spelled, even holding null, so the body never carries two spellings of one field.
    let labels = top.entry("Labels").or_insert_with(|| Value::Object(Map::new()));
    if labels.is_null() {
        *labels = Value::Object(Map::new());
    }
    let labels = labels.as_object_mut().ok_or("Labels must be an object")?;
    for (moved, label, exprs) in
        [(moved_constraints, CONSTRAINTS_LABEL, &constraints), (moved_affinities, AFFINITIES_LABEL, &affinities)]
    {
        if moved {
            labels.insert(label.to_string(), Value::String(Value::from(exprs.clone()).to_string()));
        }
    }
    Ok(placement)
}

/// The value of struct field `name` in the canonical document ([`crate::api::decode`]), and its key; null reads as
/// absent.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<(&'a str, &'a Value)>, String> {
    Ok(obj.get_key_value(name).filter(|(_, value)| !value.is_null()).map(|(key, value)| (key.as_str(), value)))
}

/// An int64 field (0 when absent); the engine refuses negative limits, so they are refused here too.
fn integer(obj: &Map<String, Value>, name: &str, prefix: &str) -> Result<i64, String> {
    let Some((_, value)) = field(obj, name)? else {
        return Ok(0);
    };
    match value.as_i64() {
        Some(n) if n >= 0 => Ok(n),
        Some(_) => Err(format!("{prefix}{name} must not be negative")),
        None => Err(format!("{prefix}{name} must be an integer")),
    }
}

/// `PortBindings`: `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`.
pub fn port_bindings(host_config: &Map<String, Value>, prefix: &str) -> Result<Vec<PublishedPort>, String> {
    let name = format!("{prefix}PortBindings");
    let Some((_, bindings)) = field(host_config, "PortBindings")? else {
        return Ok(Vec::new());
    };
    let bindings = bindings.as_object().ok_or_else(|| format!("{name} must be an object"))?;
    let mut ports = Vec::new();
    for (container_port, list) in bindings {
        let proto = proto_of(container_port).map_err(|why| format!("{name}: {why}"))?;
        let list = match list {
            Value::Null => continue,
            Value::Array(list) => list,
            _ => return Err(format!("{name}: the bindings of {container_port} must be a list")),
        };
        for binding in list {
            let binding =
                binding.as_object().ok_or_else(|| format!("{name}: each binding of {container_port} is an object"))?;
            let text = |key: &str| -> Result<&str, String> {
                match field(binding, key)? {
                    None => Ok(""),
                    Some((_, value)) => value.as_str().ok_or_else(|| format!("{name}: {key} must be a string")),
                }
            };
            let host_ip = text("HostIp")?;
            let host_port = text("HostPort")?;
            let (first, last) = host_port_range(host_port).map_err(|why| format!("{name}: {why}"))?;
            for port in first..=last {
                if port != 0 {
                    ports.push(PublishedPort { host_ip: host_ip.to_string(), host_port: port, proto: proto.clone() });
                }
            }
        }
    }
    Ok(ports)
}

/// `ExposedPorts` of a container in the host's network namespace: `{"80/tcp": {}}`, each a host port on every
/// address.
fn exposed_ports(top: &Map<String, Value>) -> Result<Vec<PublishedPort>, String> {
    let Some((_, exposed)) = field(top, "ExposedPorts")? else {
        return Ok(Vec::new());
    };
    let exposed = exposed.as_object().ok_or("ExposedPorts must be an object")?;
    let mut ports = Vec::new();
    for container_port in exposed.keys() {
        let proto = proto_of(container_port).map_err(|why| format!("ExposedPorts: {why}"))?;
        let number = container_port.split('/').next().unwrap_or_default();
        let (first, last) = host_port_range(number).map_err(|why| format!("ExposedPorts: {why}"))?;
        for port in first.max(1)..=last {
            ports.push(PublishedPort { host_ip: String::new(), host_port: port, proto: proto.clone() });
        }
    }
    Ok(ports)
}

/// The protocol of a container port key, "80/tcp" or "80" (tcp, as Docker reads it).
fn proto_of(container_port: &str) -> Result<String, String> {
    let proto = container_port.split_once('/').map_or("tcp", |(_, proto)| proto);
    match proto {
        "tcp" | "udp" | "sctp" => Ok(proto.to_string()),
        _ => Err(format!("{container_port:?} has protocol {proto:?}; it must be tcp, udp or sctp")),
    }
}

/// A host port "8080", a range "8000-8010", or "" / "0" for one the engine chooses, which comes back as 0..=0.
fn host_port_range(text: &str) -> Result<(u16, u16), String> {
    let number = |s: &str| -> Result<u16, String> {
        s.parse::<u16>().map_err(|_| format!("host port {text:?} is not a port number (0 to 65535) or a range of them"))
    };
    if text.is_empty() {
        return Ok((0, 0));
    }
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (number(first)?, number(last)?),
        None => (number(text)?, number(text)?),
    };
    if first > last {
        return Err(format!("host port range {text:?} ends before it starts"));
    }
    Ok((first, last))
}

/// The expressions a `com.docker.swarm.*` label holds: a JSON list of strings.
fn label_expressions(labels: Option<&Map<String, Value>>, label: &str) -> Result<Vec<String>, String> {
    let Some(value) = labels.and_then(|labels| labels.get(label)) else {
        return Ok(Vec::new());
    };
    let malformed = || format!("the label {label} must be a JSON list of strings, e.g. [\"node==node1\"]");
    let text = value.as_str().ok_or_else(malformed)?;
    serde_json::from_str::<Vec<String>>(text).map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GIB: i64 = 1 << 30;
    const MIB: i64 = 1 << 20;
    const BUSYBOX_ID: &str = "sha256:beae173ccac6ad749f76713cf4440fe3d21d1043fe616dfbe30775815d1d0f6a";
    const BUSYBOX_DIGEST: &str = "busybox@sha256:6d9ac9237a84afe1516540f40a0fafdc86859b2141954b4d643af7066d598b74";

    /// A healthy node with 4 GiB, 4 CPUs, busybox:latest and no container, its built-in labels filled as the caller
    /// fills them.
    fn node(name: &str) -> NodeView {
        let labels = [
            ("node", name),
            ("storagedriver", "overlay2"),
            ("kernelversion", "6.1.0-18-amd64"),
            ("operatingsystem", "Debian GNU/Linux 12 (bookworm)"),
        ];
        NodeView {
            name: name.to_string(),
            id: format!("ID-{}", name.to_uppercase()),
            addr: "tcp://127.0.0.1:23751".to_string(),
            healthy: true,
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            total_memory: 4 * GIB,
            total_cpus: 4,
            containers: Vec::new(),
            images: vec![ImageView {
                id: BUSYBOX_ID.to_string(),
                repo_tags: vec!["busybox:latest".to_string()],
                repo_digests: vec![BUSYBOX_DIGEST.to_string()],
            }],
        }
    }

    /// node0, node1, ... as [`node`] makes them.
    fn cluster(n: usize) -> Vec<NodeView> {
        (0..n).map(|i| node(&format!("node{i}"))).collect()
    }

    /// A container the tenant knows as `name`; with an empty `name`, another tenant's.
    fn container(name: &str, id: &str) -> ContainerView {
        ContainerView {
            id: id.to_string(),
            names: if name.is_empty() { vec![] } else { vec![name.to_string()] },
            image: "busybox".to_string(),
            ..ContainerView::default()
        }
    }

    fn published(host_ip: &str, host_port: u16, proto: &str) -> ContainerView {
        let port = PublishedPort { host_ip: host_ip.to_string(), host_port, proto: proto.to_string() };
        ContainerView { published: vec![port], ..container("", "ff") }
    }

    /// The placement a create body asks for (busybox unless it names an image).
    fn create(body: Value) -> Placement {
        let mut body = body;
        body.as_object_mut().unwrap().entry("Image").or_insert(json!("busybox"));
        placement_from_create(&mut body).expect("a valid create body")
    }

    fn constraints(exprs: &[&str]) -> Placement {
        create(json!({"Env": exprs.iter().map(|e| format!("constraint:{e}")).collect::<Vec<_>>()}))
    }

    fn affinity(expr: &str) -> Placement {
        create(json!({"Env": [format!("affinity:{expr}")]}))
    }

    fn bind(host_ip: &str, host_port: &str, container_port: &str) -> Placement {
        create(json!({"HostConfig": {"PortBindings": {container_port: [{"HostIp": host_ip, "HostPort": host_port}]}}}))
    }

    fn colocated(on: &[&str], p: Placement) -> Placement {
        Placement { colocate: on.iter().map(|n| n.to_string()).collect(), ..p }
    }

    /// Places `p` once per entry of `expected`, one after the other, with `strategy` (the seed is the placement's
    /// number), adding each placed container to the snapshot as the caller does. An entry is the node expected, or
    /// "filter: message" for a refusal (which leaves the snapshot as it was).
    fn check(mut nodes: Vec<NodeView>, strategy: Strategy, p: &Placement, expected: &[&str]) {
        let mut got = Vec::new();
        for seed in 0..expected.len() {
            match schedule(&nodes, p, strategy, seed as u64) {
                Ok(i) => {
                    got.push(nodes[i].name.clone());
                    nodes[i].containers.push(ContainerView {
                        id: format!("{seed:064x}"),
                        names: vec![format!("c{seed}")],
                        image: p.image.clone(),
                        labels: BTreeMap::new(),
                        memory: p.memory,
                        nano_cpus: p.nano_cpus,
                        published: p.ports.clone(),
                    });
                }
                Err(no) => got.push(format!("{}: {}", no.filter, no.message)),
            }
        }
        assert_eq!(got, expected, "{p:?}");
    }

    #[test]
    fn spread_evens_out() {
        let plain = create(json!({}));
        check(cluster(3), Strategy::Spread, &plain, &["node0", "node1", "node2", "node0", "node1", "node2"]);
        let gib = create(json!({"HostConfig": {"Memory": GIB}}));
        let full = "resources: not enough memory: the container asks for 1 GiB, and the most left unreserved on a \
                    node it may go to is 0 B (node0)";
        let mut round = ["node0", "node1"].repeat(4);
        round.push(full);
        check(cluster(2), Strategy::Spread, &gib, &round);

        // With a limit, reservations weigh: another tenant's 3 GiB container makes node1 the fuller node.
        let mut nodes = cluster(2);
        nodes[1].containers.push(ContainerView { memory: 3 * GIB, ..container("", "aa") });
        check(nodes.clone(), Strategy::Spread, &gib, &["node0", "node0", "node0", "node1", "node0", full]);
        // Without one, memory scores a flat 100 on every node and the container count decides, as in Swarm classic.
        check(nodes, Strategy::Spread, &plain, &["node0", "node0", "node1"]);
    }

    #[test]
    fn binpack_fills_one_node_first() {
        // Every node scores the same without limits; binpack then takes the one with the most containers.
        check(cluster(3), Strategy::Binpack, &create(json!({})), &["node0"; 6]);
        let gib = create(json!({"HostConfig": {"Memory": GIB}}));
        let mut fill = vec!["node0"; 4];
        fill.extend(["node1"; 4]);
        check(cluster(2), Strategy::Binpack, &gib, &fill);
        // A fuller node wins over an emptier one with more containers.
        let mut nodes = cluster(2);
        nodes[0].containers.extend([container("a", "aa"), container("b", "bb")]);
        nodes[1].containers.push(ContainerView { memory: 2 * GIB, ..container("", "cc") });
        check(nodes, Strategy::Binpack, &gib, &["node1", "node1", "node0"]);
    }

    #[test]
    fn resources() {
        // CPUs count in nano CPUs against NCPU.
        let three = create(json!({"HostConfig": {"NanoCpus": 3_000_000_000i64}}));
        let no_cpu = "resources: not enough CPUs: the container asks for 3 CPUs, and the most left unreserved on a \
                      node it may go to is 1 CPU (node0)";
        check(cluster(2), Strategy::Binpack, &three, &["node0", "node1", no_cpu]);
        let half = create(json!({"HostConfig": {"NanoCpus": 1_500_000_000i64, "Memory": 1536 * MIB}}));
        check(cluster(1), Strategy::Random, &half, &["node0", "node0"]);
        // Each resource fits somewhere, both nowhere.
        let big = create(json!({"HostConfig": {"Memory": 3 * GIB, "NanoCpus": 3_000_000_000i64}}));
        let mut nodes = cluster(2);
        nodes[0].containers.push(ContainerView { memory: 2 * GIB, ..container("", "aa") });
        nodes[1].containers.push(ContainerView { nano_cpus: 2_000_000_000, ..container("", "bb") });
        let both = "resources: no node the container may go to has both 3 GiB of memory and 3 CPUs unreserved \
                    (nodes: node0, node1)";
        check(nodes, Strategy::Spread, &big, &[both]);
        // A node that did not report its memory takes no container that asks for some.
        let mut nodes = cluster(2);
        nodes[0].total_memory = 0;
        check(nodes, Strategy::Spread, &create(json!({"HostConfig": {"Memory": MIB}})), &["node1", "node1"]);
    }

    #[test]
    fn random() {
        // The spread over seeds, which a sequence through `check` cannot show.
        let nodes = cluster(3);
        let p = create(json!({}));
        let mut counts = [0; 3];
        for seed in 0..3000 {
            counts[schedule(&nodes, &p, Strategy::Random, seed).unwrap()] += 1;
        }
        assert!(counts.iter().all(|&c| (900..1100).contains(&c)), "{counts:?}");
        assert_eq!(schedule(&nodes, &p, Strategy::Random, 42), schedule(&nodes, &p, Strategy::Random, 42));
        // Random chooses among the nodes the filters and the resources leave.
        check(cluster(3), Strategy::Random, &constraints(&["node==node2"]), &["node2"; 3]);
        let mut nodes = cluster(3);
        nodes[0].containers.push(ContainerView { memory: 4 * GIB, ..container("", "aa") });
        nodes[2].healthy = false;
        check(nodes, Strategy::Random, &create(json!({"HostConfig": {"Memory": GIB}})), &["node1"; 4]);
    }

    #[test]
    fn strategy_names() {
        let parsed: Vec<_> = ["spread", "binpack", "random", "Spread"].iter().map(|s| s.parse::<Strategy>()).collect();
        let unknown = Err("unknown scheduling strategy \"Spread\": use spread, binpack or random".to_string());
        assert_eq!(parsed, [Ok(Strategy::Spread), Ok(Strategy::Binpack), Ok(Strategy::Random), unknown]);
        assert_eq!(Strategy::default().to_string(), "spread");
    }

    #[test]
    fn health() {
        let mut nodes = cluster(3);
        nodes[0].healthy = false;
        nodes[1].healthy = false;
        check(nodes.clone(), Strategy::Spread, &create(json!({})), &["node2", "node2"]);
        // An unhealthy node is no candidate for a constraint either.
        let msg = "constraint: no node matches constraint node==node1 (nodes: node2)";
        check(nodes.clone(), Strategy::Spread, &constraints(&["node==node1"]), &[msg]);
        nodes[2].healthy = false;
        let none = "health: no healthy node in the cluster (unhealthy: node0, node1, node2)";
        check(nodes, Strategy::Spread, &create(json!({})), &[none]);
        check(vec![], Strategy::Spread, &create(json!({})), &["health: the cluster has no node"]);
    }

    #[test]
    fn constraint_forms() {
        let mut nodes = cluster(3);
        nodes[0].labels.insert("region".into(), "us-east".into());
        nodes[1].labels.insert("region".into(), "eu-west".into());
        nodes[2].labels.insert("storagedriver".into(), "btrfs".into());
        let none = |expr: &str| format!("constraint: no node matches constraint {expr} (nodes: node0, node1, node2)");
        let table: &[(&[&str], &[&str])] = &[
            (&["node==node1"], &["node1", "node1"]),
            (&["node==ID-NODE2"], &["node2"]),
            (&["node!=node0"], &["node1", "node2", "node1"]),
            (&["node==node*"], &["node0", "node1", "node2"]),
            (&["node==*2"], &["node2"]),
            (&["node==/node[12]/"], &["node1", "node2"]),
            (&["node==/^node[^1]$/"], &["node0", "node2"]),
            (&["node==/(?i)NODE1/"], &["node1"]),
            (&["node!=/node[01]/"], &["node2", "node2"]),
            (&["node==node9"], &[&none("node==node9")]),
            // Regular expressions are unanchored, as in Swarm classic; globs match the whole value.
            (&["node==/ode/"], &["node0", "node1"]),
            (&["node==ode*"], &[&none("node==ode*")]),
            // Only '*' is special in a glob: Swarm classic would have read this '.' as any character.
            (&["node==node.*"], &[&none("node==node.*")]),
            (&["region==us-east"], &["node0", "node0"]),
            (&["region==*-west"], &["node1"]),
            // A node without the label matches no value: `!=` keeps it, `==*` does not.
            (&["region!=us-east"], &["node1", "node2"]),
            (&["region==*"], &["node0", "node1", "node0"]),
            (&["storagedriver==overlay2"], &["node0", "node1", "node0"]),
            (&["storagedriver!=overlay*"], &["node2"]),
            (&["kernelversion==6.1.*"], &["node0", "node1", "node2"]),
            (&["operatingsystem==/bookworm/"], &["node0"]),
            // Soft: dropped when it would leave no node, applied when it leaves some.
            (&["node==~node9"], &["node0", "node1", "node2"]),
            (&["node==~node1"], &["node1", "node1"]),
            (&["region!=~*"], &["node2", "node2"]),
            (&["zone==~a"], &["node0", "node1"]),
            // All of them hold at once; a soft one is judged among the nodes the hard ones leave.
            (&["node!=node1", "region==*"], &["node0", "node0"]),
            (&["node==~node1", "node!=node1"], &["node0", "node2"]),
            (&["node==~node2", "node==~node1"], &["node2", "node2"]),
            (
                &["node!=node1", "region==eu-west"],
                &["constraint: no node matches constraint region==eu-west (nodes: node0, node2)"],
            ),
        ];
        for (exprs, expected) in table {
            check(nodes.clone(), Strategy::Spread, &constraints(exprs), expected);
        }
    }

    #[test]
    fn affinity_forms() {
        let web_id = "4f2b8c1d9e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c";
        let frontend = || BTreeMap::from([("com.example.type".to_string(), "frontend".to_string())]);
        let mut nodes = cluster(3);
        nodes[1].containers.push(ContainerView { labels: frontend(), ..container("web", web_id) });
        // Another tenant's container on node2: no names, so nothing of it matches, by name, id or label.
        let theirs = "9f00000000000000000000000000000000000000000000000000000000000000";
        nodes[2].containers.push(ContainerView { labels: frontend(), ..container("", theirs) });
        nodes[2].images.push(ImageView {
            id: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            repo_tags: vec!["nginx:1.25".into(), "registry.example.com:5000/team/app:v1".into()],
            repo_digests: vec![],
        });
        let none = |expr: &str| format!("affinity: no node matches affinity {expr} (nodes: node0, node1, node2)");
        let table: &[(&str, &[&str])] = &[
            ("container==web", &["node1", "node1"]),
            ("container==w*", &["node1"]),
            ("container==/^we/", &["node1"]),
            ("container==4f2b8c", &["node1"]),
            (&format!("container=={web_id}"), &["node1"]),
            ("container==db", &[&none("container==db")]),
            ("container!=web", &["node0", "node0", "node2"]),
            ("container==~db", &["node0", "node0", "node1"]),
            ("container!=~web", &["node0"]),
            ("container==9f00", &[&none("container==9f00")]),
            ("container==9f*", &[&none("container==9f*")]),
            ("container==/9f0/", &[&none("container==/9f0/")]),
            ("image==nginx:1.25", &["node2", "node2"]),
            ("image==nginx:*", &["node2"]),
            ("image==/^ngi/", &["node2"]),
            ("image==registry.example.com:5000/team/app:v1", &["node2"]),
            ("image==sha256:0123456789ab", &["node2"]),
            ("image==0123456789ab", &["node2"]),
            // `nginx` is nginx:latest, which no node has.
            ("image==nginx", &[&none("image==nginx")]),
            ("image==busybox", &["node0", "node0", "node1"]),
            ("image==busybox:latest", &["node0"]),
            ("image==docker.io/library/busybox", &["node0"]),
            ("image==beae173c", &["node0"]),
            ("image!=nginx:1.25", &["node0", "node0", "node1"]),
            ("com.example.type==frontend", &["node1", "node1"]),
            ("com.example.type!=frontend", &["node0", "node0", "node2"]),
        ];
        for (expr, expected) in table {
            check(nodes.clone(), Strategy::Spread, &affinity(expr), expected);
        }
    }

    #[test]
    fn ports() {
        let mut nodes = cluster(3);
        nodes[0].containers.push(published("", 8080, "tcp"));
        nodes[1].containers.push(published("127.0.0.1", 8080, "tcp"));
        nodes[2].containers.push(published("0.0.0.0", 8080, "udp"));
        let taken = |port: &str, on: &str| {
            format!("port: host port {port} is already published on every node the container may go to ({on})")
        };
        let table: &[(Placement, &[&str])] = &[
            // Every address overlaps node0's and node1's; the same port over udp is another port.
            (bind("", "8080", "80/tcp"), &["node2", &taken("8080/tcp", "node0, node1, node2")]),
            (bind("0.0.0.0", "8080", "80"), &["node2", &taken("0.0.0.0:8080/tcp", "node0, node1, node2")]),
            (
                bind("127.0.0.2", "8080", "80/tcp"),
                &["node1", "node2", &taken("127.0.0.2:8080/tcp", "node0, node1, node2")],
            ),
            (bind("127.0.0.1", "8080", "80/tcp"), &["node2"]),
            // IPv4 and IPv6 sockets do not collide.
            (bind("::1", "8080", "80/tcp"), &["node1", "node2"]),
            (bind("::", "8080", "80/tcp"), &["node1", "node2", &taken("[::]:8080/tcp", "node0, node1, node2")]),
            (bind("", "8080", "53/udp"), &["node0", "node1", &taken("8080/udp", "node0, node1, node2")]),
            // The engine chooses the port: nothing to conflict with.
            (bind("", "", "80/tcp"), &["node0", "node1", "node2", "node0"]),
            (bind("", "0", "80/tcp"), &["node0"]),
            // Every port of a range must be free.
            (bind("", "8079-8081", "80/tcp"), &["node2"]),
            (bind("", "8081-8082", "80/tcp"), &["node0", "node1", "node2", &taken("8081/tcp", "node0, node1, node2")]),
            // A container in the host's network namespace binds its exposed ports.
            (create(json!({"HostConfig": {"NetworkMode": "host"}, "ExposedPorts": {"8080/tcp": {}}})), &["node2"]),
        ];
        for (p, expected) in table {
            check(nodes.clone(), Strategy::Spread, p, expected);
        }
    }

    #[test]
    fn dependencies() {
        let mut nodes = cluster(3);
        nodes[2].containers.push(published("", 8080, "tcp"));
        let plain = || create(json!({}));
        let table: &[(Placement, &[&str])] = &[
            (colocated(&["node1"], plain()), &["node1", "node1"]),
            (colocated(&[], plain()), &["node0", "node1"]),
            (
                colocated(&["node0", "node2"], plain()),
                &["dependency: the container's dependencies are on different nodes: node0, node2; a container can \
                   only use the containers, volumes and networks of the node it runs on"],
            ),
            (
                colocated(&["node9"], plain()),
                &["dependency: the container's dependencies are on node9, which is not in the cluster"],
            ),
            (
                colocated(&["node1"], constraints(&["node!=node1"])),
                &["dependency: the container's dependencies are on node1, which cannot take it: it does not match \
                   constraint node!=node1"],
            ),
            (
                colocated(&["node2"], bind("", "8080", "80/tcp")),
                &["dependency: the container's dependencies are on node2, which cannot take it: host port 8080/tcp \
                   is already published there"],
            ),
            // A soft rule gives way to the dependencies: the placement is tried again without it.
            (colocated(&["node1"], constraints(&["node==~node0"])), &["node1"]),
        ];
        for (p, expected) in table {
            check(nodes.clone(), Strategy::Spread, p, expected);
        }
        nodes[1].healthy = false;
        let msg = "dependency: the container's dependencies are on node1, which cannot take it: it is unhealthy";
        check(nodes, Strategy::Spread, &colocated(&["node1"], plain()), &[msg]);
    }

    #[test]
    fn soft_rules_give_way_to_later_filters() {
        // The soft constraint alone leaves node0, whose port is taken: without it node1 takes the container.
        let mut nodes = cluster(2);
        nodes[0].containers.push(published("", 8080, "tcp"));
        let p = create(json!({
            "Env": ["constraint:node==~node0", "affinity:image==~nginx"],
            "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}
        }));
        check(
            nodes.clone(),
            Strategy::Spread,
            &p,
            &[
                "node1",
                "port: host port 8080/tcp is already published on \
            every node the container may go to (node0, node1)",
            ],
        );
        // A hard rule still fails, with the message of the run without soft rules.
        let p = create(json!({
            "Env": ["constraint:node==~node1", "constraint:node==node0"],
            "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}
        }));
        let msg = "port: host port 8080/tcp is already published on every node the container may go to (node0)";
        check(nodes, Strategy::Spread, &p, &[msg]);
    }

    #[test]
    fn images() {
        let mut nodes = cluster(3);
        nodes[2].images.push(ImageView {
            id: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            repo_tags: vec!["nginx:1.25".into()],
            repo_digests: vec![],
        });
        // A container's image is on its node, even before the next refresh lists it.
        nodes[0].containers.push(ContainerView { image: "redis:7".into(), ..container("", "aa") });
        let image = |name: &str| create(json!({"Image": name}));
        let table: &[(Placement, &[&str])] = &[
            (image("nginx:1.25"), &["node2", "node2"]),
            (image("docker.io/library/nginx:1.25"), &["node2"]),
            (image("nginx"), &["image: image nginx is on no node of the cluster"]),
            (image("busybox:1"), &["image: image busybox:1 is on no node of the cluster"]),
            (image("busybox"), &["node1", "node2", "node0"]),
            (image(BUSYBOX_DIGEST), &["node1", "node2"]),
            (image(BUSYBOX_ID), &["node1"]),
            (image("beae173ccac6"), &["node1"]),
            (image("redis:7"), &["node0", "node0"]),
            (
                Placement { image: "nginx:1.25".into(), ..constraints(&["node!=node2"]) },
                &["image: image nginx:1.25 is only on nodes the container may not go to: node2 (it does not match \
                   constraint node!=node2)"],
            ),
            // An empty image (the engine will refuse the create) leaves the image filter out.
            (Placement { image: String::new(), ..create(json!({})) }, &["node1"]),
        ];
        for (p, expected) in table {
            check(nodes.clone(), Strategy::Spread, p, expected);
        }
        // The image decides before the resources: no pulling, so only nginx's node can run it.
        nodes[2].containers.push(ContainerView { memory: 4 * GIB, ..container("", "bb") });
        let p = create(json!({"Image": "nginx:1.25", "HostConfig": {"Memory": MIB}}));
        let msg = "resources: not enough memory: the container asks for 1 MiB, and the most left unreserved on a \
                   node it may go to is 0 B (node2)";
        check(nodes, Strategy::Spread, &p, &[msg]);
    }

    mod create {
        use super::super::*;
        use serde_json::json;

        /// Reads `body` as a create and compares a summary of the placement and the body as it is forwarded
        /// (`None`: unchanged), or the error.
        fn check(body: Value, expected: Result<(&str, Option<Value>), &str>) {
            let original = body.clone();
            let mut body = body;
            let got = placement_from_create(&mut body).map(|p| {
                let list = |items: Vec<String>| items.join(", ");
                let summary = format!(
                    "image={} memory={} nano_cpus={} constraints=[{}] affinities=[{}] ports=[{}]",
                    p.image,
                    p.memory,
                    p.nano_cpus,
                    list(p.constraints.iter().map(|e| format!("{e}{}", if e.soft { " (soft)" } else { "" })).collect()),
                    list(p.affinities.iter().map(ToString::to_string).collect()),
                    list(p.ports.iter().map(ToString::to_string).collect()),
                );
                (summary, body.clone())
            });
            match (got, expected) {
                (Ok((summary, forwarded)), Ok((want, want_body))) => {
                    assert_eq!(summary, want, "{original}");
                    assert_eq!(forwarded, want_body.unwrap_or(original.clone()), "{original}");
                }
                (Err(error), Err(want)) => {
                    assert_eq!(error, want, "{original}");
                    assert_eq!(body, original, "an error leaves the body as it was");
                }
                (got, want) => panic!("{original}: got {got:?}, expected {want:?}"),
            }
        }

        #[test]
        fn env_moves_into_labels() {
            check(
                json!({"Image": "busybox", "Env": ["A=1", "constraint:node==node1", "affinity:container==web", "B=2"]}),
                Ok((
                    "image=busybox memory=0 nano_cpus=0 constraints=[node==node1] affinities=[container==web] ports=[]",
                    Some(json!({"Image": "busybox", "Env": ["A=1", "B=2"], "Labels": {
                        "com.docker.swarm.constraints": "[\"node==node1\"]",
                        "com.docker.swarm.affinities": "[\"container==web\"]",
                    }})),
                )),
            );
            // Merged after the expressions the labels already hold; other labels stay.
            check(
                json!({"Image": "busybox", "Env": ["constraint:region==~eu*"], "Labels": {
                    "com.docker.swarm.constraints": "[\"node!=node0\"]", "app": "db"
                }}),
                Ok((
                    "image=busybox memory=0 nano_cpus=0 constraints=[node!=node0, region==~eu* (soft)] affinities=[] \
                     ports=[]",
                    Some(json!({"Image": "busybox", "Env": [], "Labels": {
                        "com.docker.swarm.constraints": "[\"node!=node0\",\"region==~eu*\"]", "app": "db"
                    }})),
                )),
            );
            // Labels alone are read and left as they are.
            check(
                json!({"Image": "busybox", "Labels": {"com.docker.swarm.affinities": "[\"image==busybox\"]"}}),
                Ok(("image=busybox memory=0 nano_cpus=0 constraints=[] affinities=[image==busybox] ports=[]", None)),
            );
            // The body is the decoder's canonical document: any spelling of a field arrives as Docker's.
            let decoded = crate::api::decode::decode(
                crate::api::decode::BodyKind::ContainerConfig,
                br#"{"image": "busybox", "env": ["affinity:image==busybox"], "labels": null}"#,
            )
            .unwrap();
            check(
                decoded,
                Ok((
                    "image=busybox memory=0 nano_cpus=0 constraints=[] affinities=[image==busybox] ports=[]",
                    Some(json!({"Image": "busybox", "Env": [], "Labels": {
                        "com.docker.swarm.affinities": "[\"image==busybox\"]"
                    }})),
                )),
            );
            // Only the two prefixes move, spelled as Swarm classic spelled them.
            let env = json!(["reschedule:on-node-failure", "CONSTRAINT:node==node1", "constraint", "PATH=/bin"]);
            check(
                json!({"Image": "busybox", "Env": env}),
                Ok(("image=busybox memory=0 nano_cpus=0 constraints=[] affinities=[] ports=[]", None)),
            );
        }

        #[test]
        fn malformed_expressions() {
            let env = |entry: &str| json!({"Image": "busybox", "Env": ["A=1", entry]});
            let table = [
                (
                    env("constraint:node=node1"),
                    "invalid constraint \"node=node1\": expected key==value or key!=value (a ~ after the operator \
                     makes the rule soft)",
                ),
                (
                    env("constraint:1node==x"),
                    "invalid constraint \"1node==x\": the key \"1node\" is not valid: it must start with a letter or \
                     '_' and hold only letters, digits, '_', '-' and '.'",
                ),
                (
                    env("constraint:no de==x"),
                    "invalid constraint \"no de==x\": the key \"no de\" is not valid: it must \
                     start with a letter or '_' and hold only letters, digits, '_', '-' and '.'",
                ),
                (env("affinity:container=="), "invalid affinity \"container==\": the value is missing"),
                (env("affinity:container!=~"), "invalid affinity \"container!=~\": the value is missing"),
                (
                    env("constraint:node==/[/"),
                    "invalid constraint \"node==/[/\": the regular expression /[/ is not valid: unclosed character \
                     class",
                ),
                (
                    json!({"Labels": {"com.docker.swarm.constraints": "node==node1"}}),
                    "the label com.docker.swarm.constraints must be a JSON list of strings, e.g. [\"node==node1\"]",
                ),
                (
                    json!({"Labels": {"com.docker.swarm.affinities": "[1]"}}),
                    "the label com.docker.swarm.affinities must be a JSON list of strings, e.g. [\"node==node1\"]",
                ),
                (
                    json!({"Labels": {"com.docker.swarm.constraints": "[\"node\"]"}}),
                    "invalid constraint \"node\": expected key==value or key!=value (a ~ after the operator makes \
                     the rule soft)",
                ),
                (json!({"Env": "constraint:node==node1"}), "Env must be a list of strings"),
                (json!([]), "the request body must be a JSON object"),
            ];
            for (body, error) in table {
                check(body, Err(error));
            }
        }

        #[test]
        fn resources_and_ports() {
            let bindings = json!({
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "::1", "HostPort": "8081"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
                "443": [{"HostPort": "0"}, {"HostPort": ""}, {}],
                "90/sctp": null,
                "9000/tcp": [{"HostPort": "9000-9002"}]
            });
            let ports = "ports=[8080/tcp, [::1]:8081/tcp, 127.0.0.1:53/udp, 9000/tcp, 9001/tcp, 9002/tcp]";
            check(
                json!({"Image": "busybox", "HostConfig": {"Memory": 536870912, "NanoCpus": 1500000000, "PortBindings": bindings}}),
                Ok((
                    &format!(
                        "image=busybox memory=536870912 nano_cpus=1500000000 constraints=[] affinities=[] {ports}"
                    ),
                    None,
                )),
            );
            // Older clients send HostConfig's fields at the top level: they count when HostConfig is absent, and
            // Memory also when HostConfig leaves it 0, as for the engine.
            check(
                json!({"Image": "busybox", "Memory": 1024, "NanoCpus": 5, "PortBindings": {"80/tcp": [{"HostPort": "80"}]}}),
                Ok(("image=busybox memory=1024 nano_cpus=5 constraints=[] affinities=[] ports=[80/tcp]", None)),
            );
            check(
                json!({"Image": "busybox", "Memory": 1024, "NanoCpus": 5, "PortBindings": {"80/tcp": [{"HostPort": "80"}]},
                       "HostConfig": {"NanoCpus": 7}}),
                Ok(("image=busybox memory=1024 nano_cpus=7 constraints=[] affinities=[] ports=[]", None)),
            );
            // In the host's network namespace the exposed ports are host ports and the bindings are ignored.
            check(
                json!({"Image": "busybox", "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                       "HostConfig": {"NetworkMode": "host", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}}),
                Ok(("image=busybox memory=0 nano_cpus=0 constraints=[] affinities=[] ports=[80/tcp, 53/udp]", None)),
            );
            let hc = |host_config: Value| json!({"Image": "busybox", "HostConfig": host_config});
            let binding = |key: &str, port: &str| hc(json!({"PortBindings": {key: [{"HostPort": port}]}}));
            let table = [
                (hc(json!({"Memory": -1})), "HostConfig.Memory must not be negative"),
                (hc(json!({"Memory": "1g"})), "HostConfig.Memory must be an integer"),
                (hc(json!({"NanoCpus": 1.5})), "HostConfig.NanoCpus must be an integer"),
                (json!({"Memory": -5}), "Memory must not be negative"),
                (
                    binding("80/tcp", "70000"),
                    "HostConfig.PortBindings: host port \"70000\" is not a port number (0 to 65535) or a range of them",
                ),
                (
                    binding("80/tcp", "8010-8000"),
                    "HostConfig.PortBindings: host port range \"8010-8000\" ends before it starts",
                ),
                (
                    binding("80/foo", "80"),
                    "HostConfig.PortBindings: \"80/foo\" has protocol \"foo\"; it must be tcp, udp or sctp",
                ),
                (
                    hc(json!({"PortBindings": {"80/tcp": [{"HostPort": 80}]}})),
                    "HostConfig.PortBindings: HostPort must be a string",
                ),
                (
                    hc(json!({"PortBindings": {"80/tcp": {"HostPort": "80"}}})),
                    "HostConfig.PortBindings: the bindings of 80/tcp must be a list",
                ),
                (json!({"Image": 1}), "Image must be a string"),
                (json!({"HostConfig": []}), "HostConfig must be an object"),
            ];
            for (body, error) in table {
                check(body, Err(error));
            }
        }
    }
}
