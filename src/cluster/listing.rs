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

/// The list answer: the selected containers' prepared entries, newest first, `limit` applied, each with its
/// status text of `now`.
pub fn answer(mut chosen: Vec<(Arc<Value>, Arc<Prepared>)>, q: &ListQuery, now: SystemTime) -> String {
    chosen.sort_by_key(|(_, p)| std::cmp::Reverse(p.created));
    if let Some(l) = q.limit {
        chosen.truncate(l);
    }
    let mut out = String::with_capacity(chosen.len() * 700 + 2);
    out.push('[');
    for (i, (inspect, prepared)) in chosen.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        prepared.write(inspect, now, &mut out);
    }
    out.push(']');
    out
}

/// A container's list entry serialized ahead of time, around its status text, which changes with time.
#[derive(Debug)]
pub struct Prepared {
    pub created: i64,
    head: String,
    tail: String,
}

/// Stands for the status text in a prepared entry.
const STATUS_MARK: &str = "\u{1}mtswarm-status\u{1}";

impl Prepared {
    pub fn new(inspect: &Value) -> Prepared {
        let mut e = entry(inspect, SystemTime::now());
        let created = e.get("Created").and_then(Value::as_i64).unwrap_or(0);
        e["Status"] = Value::from(STATUS_MARK);
        let text = e.to_string();
        let mark = Value::from(STATUS_MARK).to_string();
        match text.split_once(&mark) {
            Some((head, tail)) => Prepared { created, head: head.to_string(), tail: tail.to_string() },
            None => Prepared { created, head: text, tail: String::new() },
        }
    }

    /// Appends the entry, with the status text of now.
    pub fn write(&self, inspect: &Value, now: SystemTime, out: &mut String) {
        out.push_str(&self.head);
        if !self.tail.is_empty() || self.head.ends_with(':') {
            out.push_str(&Value::from(status(inspect, now)).to_string());
        }
        out.push_str(&self.tail);
    }
}

/// Whether a container passes the query's filters (and `all`).
pub fn selected(c: &Value, q: &ListQuery, compiled: &Compiled) -> bool {
    let state = c.pointer("/State/Status").and_then(Value::as_str).unwrap_or_default();
    let running = c.pointer("/State/Running").and_then(Value::as_bool).unwrap_or(false);
    if !q.all && !q.filters.contains_key("status") && !running {
        return false;
    }
    let id = c.get("Id").and_then(Value::as_str).unwrap_or_default();
    let name = c.get("Name").and_then(Value::as_str).unwrap_or_default();
    if !compiled.ids.is_empty() && !compiled.ids.iter().any(|r| r.is_match(id)) {
        return false;
    }
    if !compiled.names.is_empty() && !compiled.names.iter().any(|r| r.is_match(name)) {
        return false;
    }
    if !labels_match(c.pointer("/Config/Labels"), q.filters.get("label")) {
        return false;
    }
    if let Some(s) = q.filters.get("status") {
        if !s.contains(state) {
            return false;
        }
    }
    if let Some(codes) = q.filters.get("exited") {
        let code = c.pointer("/State/ExitCode").and_then(Value::as_i64).unwrap_or(0).to_string();
        if state != "exited" || !codes.contains(&code) {
            return false;
        }
    }
    if let Some(h) = q.filters.get("health") {
        let health = c.pointer("/State/Health/Status").and_then(Value::as_str).unwrap_or("none");
        if !h.contains(health) {
            return false;
        }
    }
    if let Some(nets) = q.filters.get("network") {
        let on = c.pointer("/NetworkSettings/Networks").and_then(Value::as_object);
        let hit = on.into_iter().flatten().any(|(n, ep)| {
            let nid = ep.get("NetworkID").and_then(Value::as_str).unwrap_or_default();
            nets.iter().any(|want| want == n || (!want.is_empty() && nid.starts_with(want.as_str())))
        });
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
fn labels_match(labels: Option<&Value>, want: Option<&BTreeSet<String>>) -> bool {
    let Some(want) = want else { return true };
    let labels = labels.and_then(Value::as_object);
    want.iter().all(|w| {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (w.as_str(), None),
        };
        match labels.and_then(|l| l.get(k)) {
            None => false,
            Some(have) => v.is_none_or(|v| have.as_str() == Some(v)),
        }
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
    let networks = c.pointer("/NetworkSettings/Networks").cloned().unwrap_or_else(|| json!({}));
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
        "Status": status(c, now),
        "HostConfig": {"NetworkMode": s("/HostConfig/NetworkMode")},
        "NetworkSettings": {"Networks": networks},
        "Mounts": mounts,
    })
}

/// dockerd's `State.String()`: "Up 5 minutes", "Exited (0) 3 seconds ago", "Created", ...
fn status(c: &Value, now: SystemTime) -> String {
    let st = |k: &str| c.pointer(&format!("/State/{k}"));
    let flag = |k: &str| st(k).and_then(Value::as_bool).unwrap_or(false);
    let since = |k: &str| {
        let t = st(k).and_then(Value::as_str).and_then(unix_nanos).filter(|t| *t > 0)?;
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_nanos() as i128;
        Some(std::time::Duration::from_nanos((now - t).max(0) as u64))
    };
    let code = st("ExitCode").and_then(Value::as_i64).unwrap_or(0);
    if flag("Running") {
        let up = human_duration(since("StartedAt").unwrap_or_default());
        if flag("Paused") {
            return format!("Up {up} (Paused)");
        }
        if flag("Restarting") {
            return format!("Restarting ({code}) {} ago", human_duration(since("FinishedAt").unwrap_or_default()));
        }
        if let Some(h) = st("Health").and_then(|h| h.get("Status")).and_then(Value::as_str) {
            let h = if h == "starting" { "health: starting" } else { h };
            return format!("Up {up} ({h})");
        }
        return format!("Up {up}");
    }
    if flag("Restarting") {
        return format!("Restarting ({code}) {} ago", human_duration(since("FinishedAt").unwrap_or_default()));
    }
    if st("Status").and_then(Value::as_str) == Some("removing") {
        return "Removal In Progress".into();
    }
    if flag("Dead") {
        return "Dead".into();
    }
    if since("StartedAt").is_none() {
        return "Created".into();
    }
    match since("FinishedAt") {
        None => String::new(),
        Some(d) => format!("Exited ({code}) {} ago", human_duration(d)),
    }
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

    #[test]
    fn builds_entries_and_filters_as_the_engine() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_626_000 + 3600 * 2);
        let cs = [
            container("a", true, "2026-11-25T16:00:00Z", json!({"team": "x"})),
            container("b", false, "2026-11-25T16:10:00Z", json!({"team": "y"})),
        ];
        let check = |query: &str, expected: &[&str]| {
            let q = parse_query(Some(query)).unwrap();
            let compiled = compile(&q).unwrap();
            let chosen = cs
                .iter()
                .filter(|c| selected(c, &q, &compiled))
                .map(|c| (Arc::new(c.clone()), Arc::new(Prepared::new(c))))
                .collect();
            let got: Value = serde_json::from_str(&answer(chosen, &q, now)).unwrap();
            let got: Vec<&str> = got.as_array().unwrap().iter().map(|e| e["Names"][0].as_str().unwrap()).collect();
            assert_eq!(got, expected, "{query}");
        };
        check("", &["/a"]);
        check("all=1", &["/b", "/a"]);
        check("all=1&limit=1", &["/b"]);
        check("filters=%7B%22label%22%3A%7B%22team%3Dy%22%3Atrue%7D%7D&all=1", &["/b"]);
        check("filters=%7B%22status%22%3A%5B%22exited%22%5D%7D", &["/b"]);
        check("filters=%7B%22name%22%3A%5B%22%5E%2Fa%24%22%5D%7D&all=1", &["/a"]);
        check("filters=%7B%22exited%22%3A%5B%223%22%5D%7D&all=1", &["/b"]);
        check("filters=%7B%22network%22%3A%5B%22bridge%22%5D%7D&all=1", &["/b", "/a"]);
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
        // A prepared entry is the entry.
        for c in &cs {
            let mut out = String::new();
            Prepared::new(c).write(c, now, &mut out);
            assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), entry(c, now));
        }
    }
}
