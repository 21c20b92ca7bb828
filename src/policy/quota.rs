//! Quotas: how much each tenant may hold at once.
//!
//! The seed's file, `{"Memory": 300}` (MB, the same for every tenant), keeps working. Beyond it a file may
//! limit `CPUs`, `Containers`, `Volumes` and `Networks`, and override the limits per tenant:
//! `{"default": {...}, "tenants": {"<id>": {...}}}`, a tenant's fields replacing the default's one by one.
//!
//! Usage is not kept here: the caller derives it from the engines (every container that exists counts, running
//! or not) and asks [`Limits::check`] whether a request fits.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::escape::Deny;
use super::resources::{Resources, MB, NANO};

/// One set of limits; `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// MB.
    #[serde(rename = "Memory")]
    pub memory_mb: Option<u64>,
    #[serde(rename = "CPUs")]
    pub cpus: Option<f64>,
    #[serde(rename = "Containers")]
    pub containers: Option<u64>,
    #[serde(rename = "Volumes")]
    pub volumes: Option<u64>,
    #[serde(rename = "Networks")]
    pub networks: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PerTenantShape {
    #[serde(default)]
    default: Limits,
    #[serde(default)]
    tenants: BTreeMap<String, Limits>,
}

/// What a tenant holds, or what a request would add to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of memory limits.
    pub memory: i64,
    pub nano_cpus: i64,
    pub containers: i64,
    pub volumes: i64,
    pub networks: i64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.memory += other.memory;
        self.nano_cpus += other.nano_cpus;
        self.containers += other.containers;
        self.volumes += other.volumes;
        self.networks += other.networks;
    }
}

/// The quota file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quota {
    default: Limits,
    tenants: BTreeMap<String, Limits>,
}

impl Quota {
    /// Parses a quota file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Quota, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("quota file {origin}: {e}"))?;
        let per_tenant = v.as_object().is_some_and(|o| o.contains_key("default") || o.contains_key("tenants"));
        let quota = if per_tenant {
            let shape: PerTenantShape = serde_json::from_value(v).map_err(|e| {
                format!(
                    "quota file {origin}: {e}; expected {{\"default\": {{\"Memory\": 300}}, \
                     \"tenants\": {{\"<tenant id>\": {{\"Memory\": 1024}}}}}}"
                )
            })?;
            Quota { default: shape.default, tenants: shape.tenants }
        } else {
            let limits: Limits = serde_json::from_value(v).map_err(|e| {
                format!(
                    "quota file {origin}: {e}; expected {{\"Memory\": 300}} (MB) with optional \
                     \"CPUs\", \"Containers\", \"Volumes\", \"Networks\", or the per-tenant form \
                     {{\"default\": {{...}}, \"tenants\": {{...}}}}"
                )
            })?;
            Quota { default: limits, tenants: BTreeMap::new() }
        };
        for (who, l) in
            std::iter::once(("default", &quota.default)).chain(quota.tenants.iter().map(|(t, l)| (t.as_str(), l)))
        {
            if l.cpus.is_some_and(|c| !(c >= 0.0 && c.is_finite())) {
                return Err(format!("quota file {origin}: {who}: CPUs must be a number of CPUs, 0 or more"));
            }
        }
        Ok(quota)
    }

    pub fn load(path: &Path) -> Result<Quota, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("quota file {}: {e} (SWARM_ENFORCE_QUOTA=true needs it; see SWARM_QUOTA_FILE)", path.display())
        })?;
        Quota::parse(&text, &path.display().to_string())
    }

    /// A tenant's limits: its own fields, else the default's.
    pub fn limits(&self, tenant: &str) -> Limits {
        let d = &self.default;
        match self.tenants.get(tenant) {
            None => d.clone(),
            Some(t) => Limits {
                memory_mb: t.memory_mb.or(d.memory_mb),
                cpus: t.cpus.or(d.cpus),
                containers: t.containers.or(d.containers),
                volumes: t.volumes.or(d.volumes),
                networks: t.networks.or(d.networks),
            },
        }
    }

    /// The tenants the file names.
    pub fn named_tenants(&self) -> impl Iterator<Item = &str> {
        self.tenants.keys().map(String::as_str)
    }
}

impl Limits {
    /// With a quota on a resource, a container must have a limit on it: no escape by omission. `at` prefixes the
    /// fields named (`HostConfig.` for a create).
    pub fn require_limits(&self, r: &Resources, at: &str) -> Result<(), Deny> {
        if let Some(m) = self.memory_mb {
            if r.memory_limit().is_none() {
                return Err(Deny::at(
                    format!("{at}Memory"),
                    format!("a memory limit is required: this service limits each tenant's memory ({m} MB); give -m"),
                ));
            }
        }
        if self.cpus.is_some() {
            if r.uses_cpu_quota() {
                return Err(Deny::at(format!("{at}CpuQuota"), "CPUs are limited with --cpus on this service"));
            }
            if r.nano_cpus <= 0 {
                return Err(Deny::at(
                    format!("{at}NanoCpus"),
                    "a CPU limit is required: this service limits each tenant's CPUs; give --cpus",
                ));
            }
        }
        Ok(())
    }

    /// Under a quota, an update changes limits only by giving the new memory limit (swap follows it) and --cpus.
    pub fn check_update(&self, r: &Resources) -> Result<(), Deny> {
        if r.memory < 0 || r.nano_cpus < 0 || (r.memory == 0 && r.memory_swap != 0) {
            return Err(Deny::at(
                "Memory",
                "limits are changed by giving the new memory limit (-m), and swap follows it on this service",
            ));
        }
        if self.cpus.is_some() && r.uses_cpu_quota() {
            return Err(Deny::at("CpuQuota", "CPUs are limited with --cpus on this service"));
        }
        Ok(())
    }

    pub fn memory(&self) -> Option<i64> {
        self.memory_mb.map(|m| m as i64 * MB)
    }

    pub fn nano_cpus(&self) -> Option<i64> {
        self.cpus.map(|c| (c * NANO).round() as i64)
    }

    /// Whether `request` fits beside `usage`. Only what the request raises is checked: lowering a usage that
    /// is already above a limit (after the operator lowered it) is always allowed.
    pub fn check(&self, usage: &Usage, request: &Usage) -> Result<(), Deny> {
        let rows = [
            ("Memory", usage.memory, request.memory, self.memory(), Unit::Mb),
            ("CPUs", usage.nano_cpus, request.nano_cpus, self.nano_cpus(), Unit::Cpus),
            ("Containers", usage.containers, request.containers, self.containers.map(|c| c as i64), Unit::Count),
            ("Volumes", usage.volumes, request.volumes, self.volumes.map(|c| c as i64), Unit::Count),
            ("Networks", usage.networks, request.networks, self.networks.map(|c| c as i64), Unit::Count),
        ];
        for (name, used, asked, limit, unit) in rows {
            let Some(limit) = limit else { continue };
            if asked > 0 && used + asked > limit {
                return Err(Deny::at(
                    "",
                    format!(
                        "quota exceeded: {name}: {} in use, {} requested, limit {}",
                        unit.show(used),
                        unit.show(asked),
                        unit.show(limit)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Mb,
    Cpus,
    Count,
}

impl Unit {
    fn show(self, v: i64) -> String {
        match self {
            Unit::Mb => format!("{} MB", show_mb(v)),
            Unit::Cpus => format!("{} CPUs", v as f64 / NANO),
            Unit::Count => v.to_string(),
        }
    }
}

/// What an update of a container's limits adds to its tenant's usage: the growth of each limit it sets.
pub fn update_request(new: &Resources, current: &Resources) -> Usage {
    let grown = |new: i64, old: i64| if new > 0 { new - old.max(0) } else { 0 };
    Usage {
        memory: grown(new.memory, current.memory),
        nano_cpus: grown(new.nano_cpus, current.nano_cpus),
        ..Default::default()
    }
}

/// Bytes as MB, with decimals only when they are not whole.
pub fn show_mb(bytes: i64) -> String {
    if bytes % MB == 0 {
        (bytes / MB).to_string()
    } else {
        format!("{:.2}", bytes as f64 / MB as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(file: &str, tenant: &str, usage: Usage, request: Usage, expected: Result<(), &str>) {
        let quota = Quota::parse(file, "q.json").unwrap();
        let got = quota.limits(tenant).check(&usage, &request).map_err(|d| d.message());
        assert_eq!(got, expected.map_err(str::to_string), "{tenant} {usage:?} {request:?}");
    }

    fn mem(mb: i64) -> Usage {
        Usage { memory: mb * MB, containers: 1, ..Default::default() }
    }

    #[test]
    fn the_seeds_memory_quota() {
        let seed = r#"{"Memory": 300}"#;
        check(
            seed,
            "alice",
            mem(256),
            mem(64),
            Err("quota exceeded: Memory: 256 MB in use, 64 MB requested, limit 300 MB"),
        );
        check(seed, "alice", mem(192), mem(64), Ok(()));
        check(seed, "alice", mem(236), mem(64), Ok(()));
        // Lowering is always allowed, even above the limit.
        check(seed, "alice", mem(400), Usage { memory: -64 * MB, ..Default::default() }, Ok(()));
        check(seed, "alice", mem(400), Usage { volumes: 1, ..Default::default() }, Ok(()));
    }

    #[test]
    fn every_resource_and_per_tenant_overrides() {
        let file = r#"{"default": {"Memory": 300, "Containers": 2, "CPUs": 1},
                       "tenants": {"big": {"Memory": 1000, "Volumes": 1}}}"#;
        let one = Usage { containers: 1, ..Default::default() };
        check(
            file,
            "alice",
            Usage { containers: 2, ..Default::default() },
            one,
            Err("quota exceeded: Containers: 2 in use, 1 requested, limit 2"),
        );
        check(
            file,
            "big",
            Usage { containers: 2, ..Default::default() },
            one,
            Err("quota exceeded: Containers: 2 in use, 1 requested, limit 2"),
        );
        check(file, "big", mem(900), mem(64), Ok(()));
        check(
            file,
            "alice",
            Usage::default(),
            Usage { nano_cpus: 1_500_000_000, ..Default::default() },
            Err("quota exceeded: CPUs: 0 CPUs in use, 1.5 CPUs requested, limit 1 CPUs"),
        );
        check(
            file,
            "big",
            Usage { volumes: 1, ..Default::default() },
            Usage { volumes: 1, ..Default::default() },
            Err("quota exceeded: Volumes: 1 in use, 1 requested, limit 1"),
        );
        check(
            file,
            "alice",
            Usage { volumes: 9, networks: 9, ..Default::default() },
            Usage { volumes: 1, networks: 1, ..Default::default() },
            Ok(()),
        );
    }

    fn check_file(text: &str, expected: &str) {
        let got = match Quota::parse(text, "q.json") {
            Ok(q) => format!("{:?}", q.limits("t")),
            Err(e) => e,
        };
        assert!(got.contains(expected), "{text}: {got}");
    }

    #[test]
    fn files_with_mistakes_are_refused_naming_the_key() {
        check_file(r#"{"Memory": 300}"#, "memory_mb: Some(300)");
        check_file(r#"{"Memroy": 300}"#, "quota file q.json: unknown field `Memroy`, expected one of `Memory`");
        check_file(
            r#"{"default": {"Memory": 1}, "tenant": {}}"#,
            "unknown field `tenant`, expected `default` or `tenants`",
        );
        check_file(r#"{"tenants": {"t": {"Containres": 1}}}"#, "unknown field `Containres`");
        check_file(r#"{"tenants": {"t": {"Containers": 1}}}"#, "containers: Some(1)");
        check_file(r#"{"Memory": -5}"#, "invalid value: integer `-5`");
        check_file(r#"{"CPUs": -1}"#, "CPUs must be a number of CPUs");
    }

    #[test]
    fn containers_need_the_limits_a_quota_counts_and_updates_change_them_only_so() {
        let limits = Quota::parse(r#"{"Memory": 300, "CPUs": 2}"#, "q.json").unwrap().limits("alice");
        let r = |memory: i64, nano_cpus: i64| Resources { memory, nano_cpus, ..Default::default() };
        let field = |res: Result<(), Deny>| res.map_err(|d| d.field);
        assert_eq!(field(limits.require_limits(&r(0, 1), "HostConfig.")), Err("HostConfig.Memory".into()));
        assert_eq!(field(limits.require_limits(&r(64 * MB, 0), "HostConfig.")), Err("HostConfig.NanoCpus".into()));
        let quota_cpus = Resources { memory: 64 * MB, cpu_quota: 50_000, ..Default::default() };
        assert_eq!(field(limits.require_limits(&quota_cpus, "")), Err("CpuQuota".into()));
        assert_eq!(limits.require_limits(&r(64 * MB, 1_000_000_000), "HostConfig."), Ok(()));

        assert_eq!(field(limits.check_update(&r(-1, 0))), Err("Memory".into()));
        let swap_alone = Resources { memory_swap: 128 * MB, ..Default::default() };
        assert_eq!(field(limits.check_update(&swap_alone)), Err("Memory".into()));
        assert_eq!(limits.check_update(&r(128 * MB, 0)), Ok(()));

        // An update adds what each limit it sets grows by; one it leaves (0) adds nothing.
        let grown = update_request(&r(128 * MB, 0), &r(64 * MB, 500_000_000));
        assert_eq!((grown.memory, grown.nano_cpus, grown.containers), (64 * MB, 0, 0));
        assert_eq!(update_request(&r(32 * MB, 0), &r(64 * MB, 0)).memory, -32 * MB);
    }
}
