//! `GET /containers/json` answered from the registry: each container's list entry built from the engine's
//! inspect of it, as dockerd 20.10 builds it from its own records, and Docker's list filters applied here.
//! Pure. A filter this module does not know makes [`list`] answer `None`: the caller then asks the engines.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// The filters of a list request, `{"key": {"value": true}}` read into sets.
pub type Filters = BTreeMap<String, BTreeSet<String>>;

/// What a list request asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub all: bool,
    pub limit: Option<usize>,
    pub filters: Filters,
}

/// Reads the query of `GET /containers/json`; `None` for what only the engines can answer (`size`, unknown
/// parameters or filters, `before`/`since`, which name containers by the engine's order).
pub fn parse_query(query: Option<&str>) -> Option<ListQuery> {
    let mut q = ListQuery::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "all" => q.all = v == "1" || v.eq_ignore_ascii_case("true"),
            "limit" => q.limit = v.parse::<i64>().ok().filter(|l| *l > 0).map(|l| l as usize),
            "size" if v == "0" || v.eq_ignore_ascii_case("false") || v.is_empty() => {}
            "filters" if v.is_empty() => {}
            "filters" => {
                let parsed: Value = serde_json::from_str(&v).ok()?;
                for (key, vals) in parsed.as_object()? {
                    let set = q.filters.entry(key.clone()).or_default();
                    match vals {
                        Value::Object(m) => {
                            set.extend(m.iter().filter(|(_, on)| on.as_bool() != Some(false)).map(|(v, _)| v.clone()))
                        }
                        Value::Array(a) => set.extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
    }
    const KNOWN: [&str; 7] = ["id", "name", "label", "status", "exited", "health", "network"];
    if q.filters.keys().any(|k| !KNOWN.contains(&k.as_str())) {
        return None;
    }
    Some(q)
}

/// Whose view a list answer is written in.
#[derive(Debug, Clone, Copy)]
pub enum View<'a> {
    /// The engine's own names (the admin, or mtswarm without tenancy).
    Engine,
    /// The view of the tenant that owns the containers, its `name` filters matched on the names it knows.
    Owner(&'a [regex::Regex]),
}

/// The containers a list's `before` and `since` filters name, each as its creation time (nanoseconds since the
/// epoch) and id: the list keeps the containers created before the one and after the other, as dockerd walks its
/// containers newest first and starts or stops at the one named. In a cluster they are resolved among all the
/// nodes, so they bound the whole list.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    pub before: Option<(i128, String)>,
    pub since: Option<(i128, String)>,
}

impl Bounds {
    pub fn is_empty(&self) -> bool {
        self.before.is_none() && self.since.is_none()
    }

    /// Whether a container created at `created` (ns) with this id is within the bounds.
    pub fn keeps(&self, created: i128, id: &str) -> bool {
        let key = (created, id);
        self.before.as_ref().is_none_or(|(c, i)| key < (*c, i.as_str()))
            && self.since.as_ref().is_none_or(|(c, i)| key > (*c, i.as_str()))
    }

    /// The same for a list entry, whose `Created` is in whole seconds: the bounds are taken to the second too.
    pub fn keeps_entry(&self, created_secs: i64, id: &str) -> bool {
        let secs = |(c, i): &(i128, String)| (c.div_euclid(1_000_000_000), i.clone());
        let whole = Bounds { before: self.before.as_ref().map(secs), since: self.since.as_ref().map(secs) };
        whole.keeps(created_secs as i128, id)
    }
}

/// When a container was created, in nanoseconds since the epoch, from its inspect.
pub fn created_nanos(inspect: &Value) -> Option<i128> {
    inspect.get("Created").and_then(Value::as_str).and_then(unix_nanos)
}

/// The list answer: the selected containers' prepared entries within `bounds`, newest first, `limit` applied,
/// each with its status text of `now`.
pub fn answer(
    mut chosen: Vec<Arc<Prepared>>,
    q: &ListQuery,
    bounds: &Bounds,
    view: View<'_>,
    now: SystemTime,
) -> String {
    if let View::Owner(names) = view {
        chosen.retain(|p| {
            names.is_empty() || p.owner.as_ref().is_some_and(|o| names.iter().any(|r| r.is_match(&o.name)))
        });
    }
    if !bounds.is_empty() {
        chosen.retain(|p| bounds.keeps(p.facts.created, &p.facts.id));
    }
    chosen.sort_by(|a, b| (b.facts.created, &b.facts.id).cmp(&(a.facts.created, &a.facts.id)));
    if let Some(l) = q.limit {
        chosen.truncate(l);
    }
    let now = unix_nanos_of(now);
    let mut out = String::with_capacity(chosen.iter().map(|p| p.engine.len() + 40).sum::<usize>() + 2);
    out.push('[');
    for (i, p) in chosen.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = match view {
            View::Owner(_) => p.owner.as_ref().map_or(&p.engine, |o| &o.text),
            View::Engine => &p.engine,
        };
        text.write(&p.facts.status(now), &mut out);
    }
    out.push(']');
    out
}

/// A container's list entry serialized ahead of time, with what the filters and the status text read, all
/// taken once from an inspect of it: a list then only selects and copies.
#[derive(Debug)]
pub struct Prepared {
    facts: Facts,
    /// The entry as the engine would list it.
    engine: Split,
    /// The entry as the tenant that owns the container sees it.
    owner: Option<OwnerEntry>,
}

#[derive(Debug)]
struct OwnerEntry {
    text: Split,
    /// The container's name as its owner knows it (`/web`), for `name` filters.
    name: String,
}

/// A serialized entry cut around its status text, which changes with time.
#[derive(Debug)]
struct Split {
    head: String,
    tail: String,
}

impl Split {
    fn of(mut e: Value) -> Split {
        e["Status"] = Value::from(STATUS_MARK);
        let text = e.to_string();
        let mark = Value::from(STATUS_MARK).to_string();
        match text.split_once(&mark) {
            Some((head, tail)) => Split { head: head.to_string(), tail: tail.to_string() },
            None => Split { head: text, tail: String::new() },
        }
    }

    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    fn write(&self, status: &str, out: &mut String) {
        out.push_str(&self.head);
        if !self.tail.is_empty() {
            out.push('"');
            push_json_str_body(status, out);
            out.push('"');
        }
        out.push_str(&self.tail);
    }
}

/// A status text inside JSON quotes; escaped in case a health status ever holds a quote or a backslash.
fn push_json_str_body(s: &str, out: &mut String) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(s);
    } else {
        let quoted = Value::from(s).to_string();
        out.push_str(&quoted[1..quoted.len() - 1]);
    }
}

/// Stands for the status text in a prepared entry.
const STATUS_MARK: &str = "\u{1}mtswarm-status\u{1}";

impl Prepared {
    /// Prepares the entry of a container from its inspect. `owner_view` turns an entry into the view of the
    /// tenant that owns it, if one does.
    pub fn new(inspect: &Value, owner_view: Option<&dyn Fn(&mut Value)>) -> Prepared {
        let facts = Facts::of(inspect);
        let e = entry(inspect, SystemTime::now());
        let owner = owner_view.map(|view| {
            let mut mine = e.clone();
            view(&mut mine);
            let name = mine.pointer("/Names/0").and_then(Value::as_str).unwrap_or_default().to_string();
            OwnerEntry { text: Split::of(mine), name }
        });
        Prepared { facts, engine: Split::of(e), owner }
    }
}

/// What the filters and the status text read of a container.
#[derive(Debug, Default)]
struct Facts {
    id: String,
    /// Nanoseconds since the epoch.
    created: i128,
    name: String,
    labels: BTreeMap<String, String>,
    state: String,
    running: bool,
    paused: bool,
    restarting: bool,
    dead: bool,
    exit_code: i64,
    health: Option<String>,
    /// Nanoseconds since the epoch; `None` for Go's zero time.
    started: Option<i128>,
    finished: Option<i128>,
    /// Each network's name and id.
    networks: Vec<(String, String)>,
}

impl Facts {
    fn of(c: &Value) -> Facts {
        let text = |p: &str| c.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
        let flag = |p: &str| c.pointer(p).and_then(Value::as_bool).unwrap_or(false);
        let time = |p: &str| c.pointer(p).and_then(Value::as_str).and_then(unix_nanos).filter(|t| *t > 0);
        let labels = c.pointer("/Config/Labels").and_then(Value::as_object).into_iter().flatten();
        let networks = c.pointer("/NetworkSettings/Networks").and_then(Value::as_object).into_iter().flatten();
        Facts {
            id: text("/Id"),
            created: created_nanos(c).unwrap_or(0),
            name: text("/Name"),
            labels: labels.filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect(),
            state: text("/State/Status"),
            running: flag("/State/Running"),
            paused: flag("/State/Paused"),
            restarting: flag("/State/Restarting"),
            dead: flag("/State/Dead"),
            exit_code: c.pointer("/State/ExitCode").and_then(Value::as_i64).unwrap_or(0),
            health: c.pointer("/State/Health/Status").and_then(Value::as_str).map(str::to_string),
            started: time("/State/StartedAt"),
            finished: time("/State/FinishedAt"),
            networks: networks
                .map(|(n, ep)| (n.clone(), ep.get("NetworkID").and_then(Value::as_str).unwrap_or_default().to_string()))
                .collect(),
        }
    }

    /// dockerd's `State.String()` at `now` (nanoseconds since the epoch): "Up 5 minutes", "Exited (0) 3
    /// seconds ago", "Created", ...
    fn status(&self, now: i128) -> String {
        let since = |t: Option<i128>| t.map(|t| std::time::Duration::from_nanos((now - t).max(0) as u64));
        let code = self.exit_code;
        if self.running {
            let up = human_duration(since(self.started).unwrap_or_default());
            if self.paused {
                return format!("Up {up} (Paused)");
            }
            if self.restarting {
                return format!("Restarting ({code}) {} ago", human_duration(since(self.finished).unwrap_or_default()));
            }
            if let Some(h) = &self.health {
                let h = if h == "starting" { "health: starting" } else { h };
                return format!("Up {up} ({h})");
            }
            return format!("Up {up}");
        }
        if self.restarting {
            return format!("Restarting ({code}) {} ago", human_duration(since(self.finished).unwrap_or_default()));
        }
        if self.state == "removing" {
            return "Removal In Progress".into();
        }
        if self.dead {
            return "Dead".into();
        }
        if self.started.is_none() {
            return "Created".into();
        }
        match since(self.finished) {
            None => String::new(),
            Some(d) => format!("Exited ({code}) {} ago", human_duration(d)),
        }
    }
}

fn unix_nanos_of(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

/// Whether a container passes the query's filters (and `all`).
pub fn selected(p: &Prepared, q: &ListQuery, compiled: &Compiled) -> bool {
    let c = &p.facts;
    // dockerd lists stopped containers too when asked for all, for a status, or for the last N.
    if !q.all && q.limit.is_none() && !q.filters.contains_key("status") && !c.running {
        return false;
    }
    if !compiled.ids.is_empty() && !compiled.ids.iter().any(|r| r.is_match(&c.id)) {
        return false;
    }
    if !compiled.names.is_empty() && !compiled.names.iter().any(|r| r.is_match(&c.name)) {
        return false;
    }
    if !labels_match(&c.labels, q.filters.get("label")) {
        return false;
    }
    if let Some(s) = q.filters.get("status") {
        if !s.contains(&c.state) {
            return false;
        }
    }
    if let Some(codes) = q.filters.get("exited") {
        if c.state != "exited" || !codes.contains(&c.exit_code.to_string()) {
            return false;
        }
    }
    if let Some(h) = q.filters.get("health") {
        if !h.contains(c.health.as_deref().unwrap_or("none")) {
            return false;
        }
    }
    if let Some(nets) = q.filters.get("network") {
        let hit = c
            .networks
            .iter()
            .any(|(n, nid)| nets.iter().any(|want| want == n || (!want.is_empty() && nid.starts_with(want.as_str()))));
        if !hit {
            return false;
        }
    }
    true
}

/// The regular expressions of a query's `id` and `name` filters.
pub struct Compiled {
    ids: Vec<regex::Regex>,
    names: Vec<regex::Regex>,
}

/// Compiles a query's expressions; `None` if the engine would refuse the query (its error is the engine's).
pub fn compile(q: &ListQuery) -> Option<Compiled> {
    let status_values = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];
    if q.filters.get("status").is_some_and(|s| s.iter().any(|v| !status_values.contains(&v.as_str()))) {
        return None;
    }
    let regexes = |key: &str| -> Option<Vec<regex::Regex>> {
        q.filters.get(key).into_iter().flatten().map(|v| regex::Regex::new(v).ok()).collect()
    };
    Some(Compiled { ids: regexes("id")?, names: regexes("name")? })
}

/// `label=k` (the key is set) and `label=k=v`, all of them.
fn labels_match(labels: &BTreeMap<String, String>, want: Option<&BTreeSet<String>>) -> bool {
    let Some(want) = want else { return true };
    want.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(w.as_str()),
    })
}

/// One container's list entry, from its inspect.
pub fn entry(c: &Value, now: SystemTime) -> Value {
    let s = |p: &str| c.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let path = s("/Path");
    // dockerd quotes an argument with a space in it.
    let args: Vec<String> = c
        .get("Args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a.to_string() })
        .collect();
    let command = if args.is_empty() { path.to_string() } else { format!("{path} {}", args.join(" ")) };
    let mut ports = Vec::new();
    for (port, bindings) in c.pointer("/NetworkSettings/Ports").and_then(Value::as_object).into_iter().flatten() {
        let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
        let Ok(private) = number.parse::<u16>() else { continue };
        match bindings.as_array().filter(|b| !b.is_empty()) {
            None => ports.push(json!({"PrivatePort": private, "Type": proto})),
            Some(list) => {
                for b in list {
                    let public = b.get("HostPort").and_then(Value::as_str).and_then(|p| p.parse::<u16>().ok());
                    let mut p = Map::new();
                    if let Some(ip) = b.get("HostIp").and_then(Value::as_str).filter(|ip| !ip.is_empty()) {
                        p.insert("IP".into(), Value::from(ip));
                    }
                    p.insert("PrivatePort".into(), Value::from(private));
                    if let Some(public) = public.filter(|p| *p != 0) {
                        p.insert("PublicPort".into(), Value::from(public));
                    }
                    p.insert("Type".into(), Value::from(proto));
                    ports.push(Value::Object(p));
                }
            }
        }
    }
    let labels = c.pointer("/Config/Labels").filter(|l| l.is_object()).cloned().unwrap_or_else(|| json!({}));
    let mounts = c.get("Mounts").filter(|m| m.is_array()).cloned().unwrap_or_else(|| json!([]));
    let mut networks = c.pointer("/NetworkSettings/Networks").cloned().unwrap_or_else(|| json!({}));
    // dockerd's list takes each endpoint's addresses and ids, not its aliases, links or driver options (which a
    // user-defined network's inspect shows).
    if let Some(eps) = networks.as_object_mut() {
        for ep in eps.values_mut().filter_map(Value::as_object_mut) {
            for k in ["Aliases", "Links", "DriverOpts"] {
                if ep.contains_key(k) {
                    ep.insert(k.into(), Value::Null);
                }
            }
        }
    }
    json!({
        "Id": s("/Id"),
        "Names": [s("/Name")],
        "Image": s("/Config/Image"),
        "ImageID": s("/Image"),
        "Command": command,
        "Created": unix_seconds(s("/Created")).unwrap_or(0),
        "Ports": ports,
        "Labels": labels,
        "State": s("/State/Status"),
        "Status": Facts::of(c).status(unix_nanos_of(now)),
        "HostConfig": {"NetworkMode": s("/HostConfig/NetworkMode")},
        "NetworkSettings": {"Networks": networks},
        "Mounts": mounts,
    })
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: std::time::Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    match seconds {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

fn unix_seconds(t: &str) -> Option<i64> {
    unix_nanos(t).map(|n| (n / 1_000_000_000) as i64)
}

/// Nanoseconds since the epoch of an RFC 3339 time as Docker writes it (`2026-11-25T17:29:01.123456789Z`);
/// Go's zero time and anything unreadable are `None` or not positive.
fn unix_nanos(t: &str) -> Option<i128> {
    let (date, rest) = t.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset) = match rest.find(['Z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, "Z"),
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut c = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (c.next()??, c.next()??, c.next()??);
    let nanos: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<9}")[..9].parse().ok()? };
    let offset_secs = match offset {
        "Z" | "" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss - offset_secs;
    Some(secs as i128 * 1_000_000_000 + nanos as i128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reads_docker_times() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2026-11-25T17:29:01.123456789Z"), Some(1_795_627_741));
        assert_eq!(unix_seconds("2026-11-25T18:29:01+01:00"), Some(1_795_627_741));
        assert!(unix_nanos("0001-01-01T00:00:00Z").unwrap() < 0);
    }

    #[test]
    fn says_durations_as_docker_does() {
        let check = |secs: u64, expected: &str| assert_eq!(human_duration(Duration::from_secs(secs)), expected);
        check(0, "Less than a second");
        check(1, "1 second");
        check(59, "59 seconds");
        check(61, "About a minute");
        check(600, "10 minutes");
        check(3600, "About an hour");
        check(3 * 3600, "3 hours");
        check(3 * 86400, "3 days");
        check(20 * 86400, "2 weeks");
    }

    fn container(name: &str, running: bool, created: &str, labels: Value) -> Value {
        json!({
            "Id": format!("{name}-id"), "Name": format!("/{name}"), "Created": created, "Path": "sleep", "Args": ["60"],
            "Image": "sha256:1", "Config": {"Image": "busybox", "Labels": labels},
            "State": {"Status": if running { "running" } else { "exited" }, "Running": running, "ExitCode": 3,
                      "StartedAt": "2026-11-25T17:00:00Z", "FinishedAt": "2026-11-25T17:00:30Z"},
            "HostConfig": {"NetworkMode": "default"},
            "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "81/udp": null},
                                "Networks": {"bridge": {"NetworkID": "abc"}}},
            "Mounts": []
        })
    }

    /// A stand-in for a tenant's view: names lose a `t-` prefix.
    fn unprefixed(e: &mut Value) {
        let name = e["Names"][0].as_str().unwrap().replacen("/t-", "/", 1);
        e["Names"] = json!([name]);
    }

    #[test]
    fn builds_entries_and_filters_as_the_engine() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_626_000 + 3600 * 2);
        let cs = [
            container("a", true, "2026-11-25T16:00:00Z", json!({"team": "x"})),
            container("b", false, "2026-11-25T16:10:00Z", json!({"team": "y"})),
        ];
        let prepared: Vec<Arc<Prepared>> = cs.iter().map(|c| Arc::new(Prepared::new(c, None))).collect();
        let check = |query: &str, expected: &[&str]| {
            let q = parse_query(Some(query)).unwrap();
            let compiled = compile(&q).unwrap();
            let chosen = prepared.iter().filter(|p| selected(p, &q, &compiled)).cloned().collect();
            let got: Value = serde_json::from_str(&answer(chosen, &q, &Bounds::default(), View::Engine, now)).unwrap();
            let got: Vec<&str> = got.as_array().unwrap().iter().map(|e| e["Names"][0].as_str().unwrap()).collect();
            assert_eq!(got, expected, "{query}");
        };
        check("", &["/a"]);
        check("all=1", &["/b", "/a"]);
        check("all=1&limit=1", &["/b"]);
        check("limit=1", &["/b"]); // the last one, stopped or not, as `docker ps -l`
        check("limit=5", &["/b", "/a"]);
        check("filters=%7B%22label%22%3A%7B%22team%3Dy%22%3Atrue%7D%7D&all=1", &["/b"]);
        check("filters=%7B%22label%22%3A%7B%22team%22%3Atrue%7D%7D&all=1", &["/b", "/a"]);
        check("filters=%7B%22label%22%3A%7B%22team%3Dz%22%3Atrue%7D%7D&all=1", &[]);
        check("filters=%7B%22status%22%3A%5B%22exited%22%5D%7D", &["/b"]);
        check("filters=%7B%22name%22%3A%5B%22%5E%2Fa%24%22%5D%7D&all=1", &["/a"]);
        check("filters=%7B%22exited%22%3A%5B%223%22%5D%7D&all=1", &["/b"]);
        check("filters=%7B%22exited%22%3A%5B%220%22%5D%7D&all=1", &[]);
        check("filters=%7B%22network%22%3A%5B%22bridge%22%5D%7D&all=1", &["/b", "/a"]);
        check("filters=%7B%22network%22%3A%5B%22ab%22%5D%7D&all=1", &["/b", "/a"]);
        check("filters=%7B%22health%22%3A%5B%22none%22%5D%7D&all=1", &["/b", "/a"]);
        check("filters=%7B%22id%22%3A%5B%22%5Eb-%22%5D%7D&all=1", &["/b"]);
        // before and since, resolved by the caller, bound the list.
        let bounded = |b: &Bounds| -> Vec<String> {
            let q = parse_query(Some("all=1")).unwrap();
            let got: Value = serde_json::from_str(&answer(prepared.clone(), &q, b, View::Engine, now)).unwrap();
            got.as_array().unwrap().iter().map(|e| e["Names"][0].as_str().unwrap().to_string()).collect()
        };
        let (a, b) = (&prepared[0].facts, &prepared[1].facts);
        assert_eq!(bounded(&Bounds { before: Some((b.created, b.id.clone())), since: None }), ["/a"]);
        assert_eq!(bounded(&Bounds { before: None, since: Some((a.created, a.id.clone())) }), ["/b"]);
        assert!(bounded(&Bounds { before: Some((b.created, b.id.clone())), since: Some((a.created, a.id.clone())) })
            .is_empty());
        assert!(parse_query(Some("size=1")).is_none());
        assert!(parse_query(Some("filters=%7B%22before%22%3A%5B%22a%22%5D%7D")).is_none());
        let e = entry(&cs[0], now);
        assert_eq!(e["Command"], "sleep 60");
        assert_eq!(e["Status"], "Up 2 hours");
        assert_eq!(
            e["Ports"],
            json!([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}, {"PrivatePort": 81, "Type": "udp"}])
        );
        assert_eq!(entry(&cs[1], now)["Status"], "Exited (3) 2 hours ago");
        // A prepared entry is the entry, status text included.
        let all = parse_query(Some("all=1")).unwrap();
        for (c, p) in cs.iter().zip(&prepared) {
            let out = answer(vec![p.clone()], &all, &Bounds::default(), View::Engine, now);
            assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!([entry(c, now)]));
        }
    }

    #[test]
    fn the_owners_view_is_prepared_and_its_names_filtered() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_626_000 + 3600 * 2);
        let cs = [
            container("t-web", true, "2026-11-25T16:00:00Z", json!({})),
            container("t-db", true, "2026-11-25T16:10:00Z", json!({})),
        ];
        let view: &dyn Fn(&mut Value) = &unprefixed;
        let chosen: Vec<Arc<Prepared>> = cs.iter().map(|c| Arc::new(Prepared::new(c, Some(view)))).collect();
        let q = parse_query(Some("all=1")).unwrap();
        let names = |view| -> Vec<String> {
            let got: Value = serde_json::from_str(&answer(chosen.clone(), &q, &Bounds::default(), view, now)).unwrap();
            got.as_array().unwrap().iter().map(|e| e["Names"][0].as_str().unwrap().to_string()).collect()
        };
        assert_eq!(names(View::Engine), ["/t-db", "/t-web"]);
        assert_eq!(names(View::Owner(&[])), ["/db", "/web"]);
        // The owner's name filter matches the names it knows, not the engine's.
        let (web, engine_web) = ([regex::Regex::new("^/web$").unwrap()], [regex::Regex::new("^/t-web$").unwrap()]);
        assert_eq!(names(View::Owner(&web)), ["/web"]);
        assert_eq!(names(View::Owner(&engine_web)), Vec::<String>::new());
        // The owner's entry keeps its live status text.
        let got: Value =
            serde_json::from_str(&answer(chosen.clone(), &q, &Bounds::default(), View::Owner(&[]), now)).unwrap();
        assert_eq!(got[0]["Status"], "Up 2 hours");
    }
}
