//! Flavors: the resource combinations a container may have, `{"default": {"Memory": 64}, "large": {...}}`.
//!
//! The seed's rule: a create whose memory matches no flavor gets the `default` flavor, replacing what it asked
//! for; no memory given is no match. Beyond the seed, a flavor may hold `CPUs` (applied as NanoCpus), and a
//! create may name its flavor with the label `mtswarm.flavor`. Swap is pinned to the flavor's memory, so
//! `--memory-swap` cannot widen it, and an update may only move a container to another flavor's values.

use std::path::Path;

use serde::Deserialize;

use super::escape::Deny;
use super::resources::{Resources, MB, NANO};

/// The label with which a create names its flavor.
pub const FLAVOR_LABEL: &str = "mtswarm.flavor";

/// The flavor every create falls back to; a flavors file must have it.
pub const DEFAULT_FLAVOR: &str = "default";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlavorShape {
    #[serde(rename = "Memory")]
    memory: u64,
    #[serde(rename = "CPUs", default)]
    cpus: Option<f64>,
}

/// One flavor.
#[derive(Debug, Clone, PartialEq)]
pub struct Flavor {
    pub name: String,
    /// Whole MB, as in the file.
    pub memory_mb: u64,
    pub cpus: Option<f64>,
}

impl Flavor {
    /// Bytes, as Docker counts memory.
    pub fn memory(&self) -> i64 {
        self.memory_mb as i64 * MB
    }

    pub fn nano_cpus(&self) -> Option<i64> {
        self.cpus.map(|c| (c * NANO).round() as i64)
    }

    /// `medium (128 MB)`, `large (256 MB, 2 CPUs)`.
    pub fn describe(&self) -> String {
        match self.cpus {
            Some(c) => format!("{} ({} MB, {c} CPUs)", self.name, self.memory_mb),
            None => format!("{} ({} MB)", self.name, self.memory_mb),
        }
    }

    /// Sets the flavor's values; CPU fields are the flavor's only if it has CPUs.
    pub fn apply(&self, r: &mut Resources) {
        r.memory = self.memory();
        r.memory_swap = r.memory;
        if let Some(n) = self.nano_cpus() {
            r.nano_cpus = n;
            r.cpu_quota = 0;
            r.cpu_period = 0;
        }
    }

    fn matches(&self, r: &Resources) -> bool {
        self.memory() == r.memory && (r.nano_cpus == 0 || self.nano_cpus() == Some(r.nano_cpus))
    }
}

/// The flavors, in the file's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Flavors {
    list: Vec<Flavor>,
}

impl Flavors {
    /// Parses a flavors file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Flavors, String> {
        let expected = r#"expected {"default": {"Memory": 64}, "large": {"Memory": 256, "CPUs": 1.5}, ...}"#;
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| format!("flavors file {origin}: {e}; {expected}"))?;
        let mut list = Vec::new();
        for (name, v) in map {
            let shape: FlavorShape =
                serde_json::from_value(v).map_err(|e| format!("flavors file {origin}: flavor {name:?}: {e}"))?;
            if name.trim().is_empty() {
                return Err(format!("flavors file {origin}: a flavor needs a name"));
            }
            if shape.memory < 6 {
                return Err(format!(
                    "flavors file {origin}: flavor {name:?}: Memory is in MB and Docker's smallest limit is 6 MB"
                ));
            }
            if let Some(c) = shape.cpus {
                if !(c > 0.0 && c.is_finite()) || (c * NANO).round() < 1.0 {
                    return Err(format!("flavors file {origin}: flavor {name:?}: CPUs must be more than 0"));
                }
            }
            list.push(Flavor { name, memory_mb: shape.memory, cpus: shape.cpus });
        }
        if !list.iter().any(|f| f.name == DEFAULT_FLAVOR) {
            return Err(format!(
                "flavors file {origin}: there is no \"default\" flavor, which a create that matches no flavor gets; \
                 {expected}"
            ));
        }
        Ok(Flavors { list })
    }

    pub fn load(path: &Path) -> Result<Flavors, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "flavors file {}: {e} (SWARM_FLAVORS_ENFORCED=true needs it; see SWARM_FLAVORS_FILE)",
                path.display()
            )
        })?;
        Flavors::parse(&text, &path.display().to_string())
    }

    pub fn default_flavor(&self) -> &Flavor {
        self.list.iter().find(|f| f.name == DEFAULT_FLAVOR).expect("parse makes sure there is a default")
    }

    pub fn list(&self) -> &[Flavor] {
        &self.list
    }

    /// The flavor a create gets. `named` is the value of its `mtswarm.flavor` label, if it has one: that flavor,
    /// which must exist and not contradict the limits given. Otherwise the first flavor that matches the memory
    /// (and the CPUs, if given), else the default.
    pub fn for_create(&self, asked: &Resources, named: Option<&str>) -> Result<&Flavor, Deny> {
        if let Some(name) = named {
            let f = self.list.iter().find(|f| f.name == name).ok_or_else(|| {
                Deny::at(format!("Labels.{FLAVOR_LABEL}"), format!("there is no flavor {name:?}; {}", self.offer()))
            })?;
            let memory_differs = asked.memory_limit().is_some_and(|m| m != f.memory());
            let cpus_differ = asked.nano_cpus != 0 && f.nano_cpus().is_some_and(|n| n != asked.nano_cpus);
            if memory_differs || cpus_differ {
                return Err(Deny::at(
                    format!("Labels.{FLAVOR_LABEL}"),
                    format!("flavor {} contradicts the limits given; give the flavor or the limits", f.describe()),
                ));
            }
            return Ok(f);
        }
        Ok(self.list.iter().find(|f| f.matches(asked)).unwrap_or_else(|| self.default_flavor()))
    }

    /// The flavor an update moves a container to, or `None` if the update leaves the flavor's fields alone.
    /// Changing any of them means giving a flavor's memory (and, if given, its CPUs) exactly.
    pub fn for_update(&self, asked: &Resources) -> Result<Option<&Flavor>, Deny> {
        let cpu_flavors = self.list.iter().any(|f| f.cpus.is_some());
        let touches = asked.memory != 0
            || asked.memory_swap != 0
            || (cpu_flavors && (asked.nano_cpus != 0 || asked.uses_cpu_quota()));
        if !touches {
            return Ok(None);
        }
        if asked.memory <= 0 {
            return Err(Deny::at(
                "Memory",
                format!("resources change by flavor on this service: give a flavor's memory (-m); {}", self.offer()),
            ));
        }
        if cpu_flavors && asked.uses_cpu_quota() {
            return Err(Deny::at("CpuQuota", format!("CPUs are set by flavor (--cpus); {}", self.offer())));
        }
        match self.list.iter().find(|f| f.matches(asked)) {
            Some(f) => Ok(Some(f)),
            None => Err(Deny::at(
                "Memory",
                format!("{} is not a flavor of this service; {}", describe(asked), self.offer()),
            )),
        }
    }

    /// "flavors: default (64 MB), medium (128 MB)".
    fn offer(&self) -> String {
        let names: Vec<String> = self.list.iter().map(Flavor::describe).collect();
        format!("flavors: {}", names.join(", "))
    }
}

fn describe(r: &Resources) -> String {
    let mem = if r.memory % MB == 0 { format!("{} MB", r.memory / MB) } else { format!("{} bytes", r.memory) };
    match r.nano_cpus {
        0 => format!("memory {mem}"),
        n => format!("memory {mem} with {} CPUs", n as f64 / NANO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{"default": {"Memory": 64}, "medium": {"Memory": 128}, "large": {"Memory": 256}}"#;

    fn flavors(text: &str) -> Flavors {
        Flavors::parse(text, "f.json").unwrap()
    }

    fn asked(memory_mb: i64, nano_cpus: i64) -> Resources {
        Resources { memory: memory_mb * MB, nano_cpus, ..Default::default() }
    }

    fn check_create(file: &str, r: Resources, named: Option<&str>, expected: Result<&str, &str>) {
        let got = flavors(file).for_create(&r, named).map(|f| f.name.clone()).map_err(|d| d.message());
        assert_eq!(got, expected.map(str::to_string).map_err(str::to_string), "{r:?} {named:?}");
    }

    #[test]
    fn creates_get_the_matching_flavor_or_the_default() {
        check_create(SEED, asked(128, 0), None, Ok("medium"));
        check_create(SEED, asked(100, 0), None, Ok("default"));
        check_create(SEED, asked(0, 0), None, Ok("default"));
        check_create(SEED, asked(-1, 0), None, Ok("default"));
        check_create(SEED, asked(256, 0), Some("large"), Ok("large"));
        check_create(SEED, asked(0, 0), Some("large"), Ok("large"));
        check_create(SEED, asked(0, 0), Some("huge"), Err("Labels.mtswarm.flavor: there is no flavor \"huge\"; flavors: default (64 MB), medium (128 MB), large (256 MB)"));
        check_create(SEED, asked(128, 0), Some("large"), Err("Labels.mtswarm.flavor: flavor large (256 MB) contradicts the limits given; give the flavor or the limits"));
        let cpus = r#"{"default": {"Memory": 64, "CPUs": 0.5}, "big": {"Memory": 64, "CPUs": 2}}"#;
        check_create(cpus, asked(64, 2_000_000_000), None, Ok("big"));
        check_create(cpus, asked(64, 0), None, Ok("default"));
        check_create(cpus, asked(64, 1_000_000_000), None, Ok("default"));
    }

    #[test]
    fn applying_pins_swap_and_cpus() {
        let f = flavors(r#"{"default": {"Memory": 64, "CPUs": 1.5}}"#);
        let mut r = Resources { memory: 3, memory_swap: -1, nano_cpus: 0, cpu_quota: 50000, cpu_period: 100000 };
        f.default_flavor().apply(&mut r);
        assert_eq!(
            r,
            Resources { memory: 64 * MB, memory_swap: 64 * MB, nano_cpus: 1_500_000_000, cpu_quota: 0, cpu_period: 0 }
        );
        let mut r = Resources { memory: 0, memory_swap: -1, nano_cpus: 7, ..Default::default() };
        flavors(SEED).default_flavor().apply(&mut r);
        assert_eq!(r, Resources { memory: 64 * MB, memory_swap: 64 * MB, nano_cpus: 7, ..Default::default() });
    }

    fn check_update(file: &str, r: Resources, expected: Result<Option<&str>, &str>) {
        let got = flavors(file).for_update(&r).map(|f| f.map(|f| f.name.clone())).map_err(|d| d.message());
        assert_eq!(got, expected.map(|o| o.map(str::to_string)).map_err(str::to_string), "{r:?}");
    }

    #[test]
    fn updates_move_between_flavors_only() {
        check_update(SEED, Resources::default(), Ok(None));
        check_update(SEED, asked(0, 1_000_000_000), Ok(None));
        check_update(SEED, asked(256, 0), Ok(Some("large")));
        check_update(SEED, asked(200, 0), Err("Memory: memory 200 MB is not a flavor of this service; flavors: default (64 MB), medium (128 MB), large (256 MB)"));
        check_update(SEED, Resources { memory_swap: -1, ..Default::default() }, Err("Memory: resources change by flavor on this service: give a flavor's memory (-m); flavors: default (64 MB), medium (128 MB), large (256 MB)"));
        let cpus = r#"{"default": {"Memory": 64, "CPUs": 1}}"#;
        check_update(cpus, asked(0, 2_000_000_000), Err("Memory: resources change by flavor on this service: give a flavor's memory (-m); flavors: default (64 MB, 1 CPUs)"));
        check_update(
            cpus,
            asked(64, 2_000_000_000),
            Err("Memory: memory 64 MB with 2 CPUs is not a flavor of this service; flavors: default (64 MB, 1 CPUs)"),
        );
        check_update(
            cpus,
            Resources { memory: 64 * MB, cpu_quota: 5, ..Default::default() },
            Err("CpuQuota: CPUs are set by flavor (--cpus); flavors: default (64 MB, 1 CPUs)"),
        );
    }

    fn check_file(text: &str, expected: &str) {
        let got = match Flavors::parse(text, "f.json") {
            Ok(f) => format!("{:?}", f.list().iter().map(Flavor::describe).collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(got.contains(expected), "{text}: {got}");
    }

    #[test]
    fn files_with_mistakes_are_refused_naming_the_key() {
        check_file(SEED, r#"["default (64 MB)", "medium (128 MB)", "large (256 MB)"]"#);
        check_file(
            r#"{"default": {"Memroy": 64}}"#,
            "flavor \"default\": unknown field `Memroy`, expected `Memory` or `CPUs`",
        );
        check_file(r#"{"small": {"Memory": 64}}"#, "there is no \"default\" flavor");
        check_file(r#"{"default": {"Memory": "64m"}}"#, "flavor \"default\": invalid type: string \"64m\"");
        check_file(r#"{"default": {"Memory": 2}}"#, "Docker's smallest limit is 6 MB");
        check_file(r#"{"default": {"Memory": 64, "CPUs": 0}}"#, "CPUs must be more than 0");
        check_file(r#"["default"]"#, "flavors file f.json: invalid type: sequence");
    }
}
