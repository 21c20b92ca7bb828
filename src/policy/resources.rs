//! The resource fields of a container create or update body, read and written in the canonical document of
//! [`crate::api::decode`], so that flavors and quotas decide on what the engine will apply and nothing else.
//!
//! A create body holds them in `HostConfig` (the decoder has folded the pre-1.2x top-level layout into it); an
//! update body (`UpdateConfig`) holds them flat at the top level.

use serde_json::{Map, Value};

use super::escape::Deny;

/// What a body asks for; zero means "not given" (for an update: "unchanged"), as for Docker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes.
    pub memory: i64,
    /// Bytes of memory plus swap; -1 is unlimited swap.
    pub memory_swap: i64,
    /// CPUs in units of 10⁻⁹.
    pub nano_cpus: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
}

/// One mebibyte: Docker's `-m 64m` is 64 of them, and the seed's files count memory in them.
pub const MB: i64 = 1024 * 1024;

/// A whole number of CPUs in NanoCpus.
pub const NANO: f64 = 1e9;

const MEMORY: &str = "Memory";
const MEMORY_SWAP: &str = "MemorySwap";
const NANO_CPUS: &str = "NanoCpus";
const CPU_QUOTA: &str = "CpuQuota";
const CPU_PERIOD: &str = "CpuPeriod";

impl Resources {
    /// The memory limit, if one is given (zero and negative values set none).
    pub fn memory_limit(&self) -> Option<i64> {
        (self.memory > 0).then_some(self.memory)
    }

    /// True if the CPU time is limited by a quota and period rather than by NanoCpus.
    pub fn uses_cpu_quota(&self) -> bool {
        self.cpu_quota > 0 || self.cpu_period > 0
    }

    /// Pins swap to the memory limit: a container may not use more memory through swap than its limit.
    pub fn pin_swap(&mut self) {
        if let Some(m) = self.memory_limit() {
            self.memory_swap = m;
        }
    }
}

/// Reads a `POST /containers/create` body.
pub fn read_create(doc: &Value) -> Result<Resources, Deny> {
    match field(object(doc, "")?, "HostConfig") {
        None => Ok(Resources::default()),
        Some(Value::Object(hc)) => read(hc, "HostConfig"),
        Some(_) => Err(Deny { field: "HostConfig".into(), reason: "must be an object".into() }),
    }
}

/// Writes the decided resources into a create body's `HostConfig`.
pub fn write_create(doc: &mut Value, r: &Resources) -> Result<(), Deny> {
    let top = doc.as_object_mut().ok_or_else(not_an_object)?;
    let hc = top.entry("HostConfig").or_insert_with(|| Value::Object(Map::new()));
    if hc.is_null() {
        *hc = Value::Object(Map::new());
    }
    write(hc.as_object_mut().ok_or_else(not_an_object)?, r);
    Ok(())
}

/// Reads a `POST /containers/{id}/update` body.
pub fn read_update(doc: &Value) -> Result<Resources, Deny> {
    read(object(doc, "")?, "")
}

/// Writes the decided resources into an update body.
pub fn write_update(doc: &mut Value, r: &Resources) -> Result<(), Deny> {
    write(doc.as_object_mut().ok_or_else(not_an_object)?, r);
    Ok(())
}

/// The limits of a container as `docker inspect` shows them (`HostConfig`).
pub fn of_inspect(container: &Value) -> Resources {
    let n = |k: &str| container.pointer(&format!("/HostConfig/{k}")).and_then(Value::as_i64).unwrap_or(0);
    Resources {
        memory: n(MEMORY),
        memory_swap: n(MEMORY_SWAP),
        nano_cpus: n(NANO_CPUS),
        cpu_quota: n(CPU_QUOTA),
        cpu_period: n(CPU_PERIOD),
    }
}

fn read(obj: &Map<String, Value>, path: &str) -> Result<Resources, Deny> {
    Ok(Resources {
        memory: number(obj, MEMORY, path)?,
        memory_swap: number(obj, MEMORY_SWAP, path)?,
        nano_cpus: number(obj, NANO_CPUS, path)?,
        cpu_quota: number(obj, CPU_QUOTA, path)?,
        cpu_period: number(obj, CPU_PERIOD, path)?,
    })
}

fn write(obj: &mut Map<String, Value>, r: &Resources) {
    let fields = [
        (MEMORY, r.memory),
        (MEMORY_SWAP, r.memory_swap),
        (NANO_CPUS, r.nano_cpus),
        (CPU_QUOTA, r.cpu_quota),
        (CPU_PERIOD, r.cpu_period),
    ];
    for (field, value) in fields {
        obj.insert(field.to_string(), Value::from(value));
    }
}

fn object<'a>(doc: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Deny> {
    doc.as_object().ok_or_else(|| Deny { field: path.into(), reason: "the request body must be a JSON object".into() })
}

fn not_an_object() -> Deny {
    Deny { field: String::new(), reason: "the request body must be a JSON object".into() }
}

/// A field of the canonical document; null is absent.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn number(obj: &Map<String, Value>, name: &str, path: &str) -> Result<i64, Deny> {
    match field(obj, name) {
        None => Ok(0),
        Some(v) => v.as_i64().ok_or_else(|| Deny { field: join(path, name), reason: "must be a whole number".into() }),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value, expected: Result<Resources, &str>) {
        assert_eq!(read_create(&body).map_err(|d| d.message()), expected.map_err(str::to_string), "{body}");
    }

    fn mem(memory: i64, memory_swap: i64) -> Resources {
        Resources { memory, memory_swap, ..Default::default() }
    }

    #[test]
    fn reads_the_canonical_document() {
        check(json!({}), Ok(Resources::default()));
        check(
            json!({"HostConfig": {"Memory": 5, "NanoCpus": 7}}),
            Ok(Resources { memory: 5, nano_cpus: 7, ..mem(0, 0) }),
        );
        check(json!({"HostConfig": {"Memory": 5, "MemorySwap": -1}}), Ok(mem(5, -1)));
        check(json!({"HostConfig": {"Memory": "64m"}}), Err("HostConfig.Memory: must be a whole number"));
        check(json!({"HostConfig": {"Memory": null}}), Ok(mem(0, 0)));
    }

    #[test]
    fn reads_what_the_decoder_made_of_any_spelling() {
        use crate::api::decode::{decode, BodyKind};
        let read = |body: &str| read_create(&decode(BodyKind::ContainerConfig, body.as_bytes()).unwrap()).unwrap();
        // The pre-1.2x layout, whole and merged; Go's folding (the long s is an s).
        assert_eq!(read(r#"{"Memory": 5, "NanoCpus": 7}"#), Resources { memory: 5, nano_cpus: 7, ..mem(0, 0) });
        assert_eq!(read(r#"{"Memory": 5, "MemorySwap": 9, "NanoCpus": 7, "HostConfig": {}}"#), mem(5, 9));
        assert_eq!(read(r#"{"Memory": 5, "HostConfig": {"Memory": 6}}"#), mem(6, 0));
        assert_eq!(read("{\"hostconfig\": {\"memory\": 5, \"memory\u{17F}wap\": -1}}"), mem(5, -1));
    }

    #[test]
    fn writes_leave_one_reading() {
        let mut doc = json!({"HostConfig": {"MemorySwap": -1, "Memory": 3, "Binds": []}});
        write_create(&mut doc, &mem(64 * MB, 64 * MB)).unwrap();
        assert_eq!(
            doc,
            json!({"HostConfig": {"Binds": [], "Memory": 64 * MB, "MemorySwap": 64 * MB, "NanoCpus": 0, "CpuQuota": 0, "CpuPeriod": 0}})
        );
        assert_eq!(read_create(&doc).unwrap(), mem(64 * MB, 64 * MB));
        let mut doc = json!({"Image": "x"});
        write_create(&mut doc, &mem(2, 2)).unwrap();
        assert_eq!(doc["HostConfig"]["Memory"], 2);
        assert_eq!(doc["Image"], "x");
        let mut doc = json!({"Memory": 0, "RestartPolicy": {"Name": ""}});
        write_update(&mut doc, &mem(3, 3)).unwrap();
        assert_eq!(read_update(&doc).unwrap(), mem(3, 3));
    }
}
