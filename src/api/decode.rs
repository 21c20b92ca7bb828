//! The one decoder of request bodies: a tenant's JSON body is read here once, as dockerd 20.10's Go decoder
//! reads it, into one canonical document. Policy, tenancy, routing and the scheduler read only that document,
//! and the body the engine gets is written from it, never from the client's bytes.
//!
//! How Go's `encoding/json` reads a body into a struct, and what the canonical document makes of it:
//! - a key names a struct field when it equals the field's name under Unicode simple case folding: ASCII case,
//!   and the two non-ASCII letters that fold onto ASCII ones (`ſ` is `s`, the Kelvin sign `K` is `k`). The
//!   document keeps Docker's own spelling of the field;
//! - a field given twice, in any spelling, is decoded twice by Go (the later scalar wins, a later object is
//!   merged into the earlier one); no single reading of that is safe, so it is refused, naming the field. A map
//!   key given twice (map keys are data, matched exactly) is refused too;
//! - a value of the wrong JSON type is refused, naming the field (dockerd answers some of these with a 500);
//!   integers are written without fraction or exponent and fit their Go type, as `strconv` requires;
//! - fields the model does not know are dropped (dockerd ignores them), and `null` leaves a field unset (in a
//!   map or a list, it is the element's zero value, as for Go);
//! - container create (and commit) also read the pre-1.2x layout, HostConfig fields at the top level of the
//!   body; the document holds the one HostConfig dockerd would use (`getHostConfig` in moby's `runconfig`).
//!
//! The model is API 1.41's (moby 20.10's `api/types`): a field a newer engine would read and 20.10 does not is
//! not in it, so it never reaches an engine.
//!
//! **Architecture Invariant:** this module is pure (no IO); it is the only place a tenant's request body is
//! parsed.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::gojson;

/// The bodies mtswarm decodes, one per Docker type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `POST /containers/create`: `ContainerConfigWrapper`.
    ContainerConfig,
    /// `POST /commit`: `ContainerConfigWrapper` too, which may be absent (the CLI sends none).
    Commit,
    /// `POST /containers/{id}/update`: `UpdateConfig`.
    ContainerUpdate,
    /// `POST /containers/{id}/exec`: `ExecConfig`.
    ExecConfig,
    /// `POST /exec/{id}/start`: `ExecStartCheck`.
    ExecStart,
    /// `POST /networks/create`: `NetworkCreateRequest`.
    NetworkCreate,
    /// `POST /networks/{id}/connect`: `NetworkConnect`.
    NetworkConnect,
    /// `POST /networks/{id}/disconnect`: `NetworkDisconnect`.
    NetworkDisconnect,
    /// `POST /volumes/create`: `VolumeCreateBody`.
    VolumeCreate,
    /// `POST /auth`: `AuthConfig`.
    Auth,
}

/// A body that does not decode: the field as the Docker API names it (e.g. "HostConfig.Binds") and why; for
/// the body as a whole (no field), the reason is the whole message, in dockerd's words where Go has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "invalid request body: {}: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<DecodeError> for super::ApiError {
    fn from(e: DecodeError) -> super::ApiError {
        super::ApiError::bad_request(e.to_string())
    }
}

/// Decodes a body of `kind` into its canonical document. `null` is the empty object, as for Go; an empty body
/// is refused as dockerd refuses it (Go's decoder answers `io.EOF`), but for a commit, where it is allowed.
pub fn decode(kind: BodyKind, bytes: &[u8]) -> Result<Value, DecodeError> {
    let whole = |reason: String| DecodeError { field: String::new(), reason };
    let raw = if bytes.iter().all(u8::is_ascii_whitespace) {
        match kind.empty_body() {
            Some(reason) => return Err(whole(reason.to_string())),
            None => Raw::Null,
        }
    } else {
        // serde_json decides; Go's scanner only words the refusal, where Go would refuse too.
        serde_json::from_slice::<Raw>(bytes).map_err(|e| {
            whole(gojson::syntax_error(bytes).unwrap_or_else(|| format!("invalid request body: invalid JSON: {e}")))
        })?
    };
    let raw = match raw {
        Raw::Null => Raw::Obj(Vec::new()),
        other => other,
    };
    if !matches!(raw, Raw::Obj(_)) {
        let got = match raw {
            Raw::Bool(_) => "bool",
            Raw::Str(_) => "string",
            Raw::List(_) => "array",
            _ => "number",
        };
        return Err(whole(format!("json: cannot unmarshal {got} into Go value of type {}", kind.go_type())));
    }
    let doc = canonical(&raw, &Shape::Struct(kind.fields()), "")?.unwrap_or_else(|| Value::Object(Map::new()));
    Ok(match kind {
        BodyKind::ContainerConfig | BodyKind::Commit => host_config_of_wrapper(doc),
        _ => doc,
    })
}

impl BodyKind {
    fn fields(self) -> &'static [&'static [Field]] {
        match self {
            BodyKind::ContainerConfig | BodyKind::Commit => &[CONFIG, WRAPPER, HOST_CONFIG, RESOURCES],
            BodyKind::ContainerUpdate => &[RESOURCES, UPDATE],
            BodyKind::ExecConfig => &[EXEC_CONFIG],
            BodyKind::ExecStart => &[EXEC_START],
            BodyKind::NetworkCreate => &[NETWORK_CREATE],
            BodyKind::NetworkConnect => &[NETWORK_CONNECT],
            BodyKind::NetworkDisconnect => &[NETWORK_DISCONNECT],
            BodyKind::VolumeCreate => &[VOLUME_CREATE],
            BodyKind::Auth => &[AUTH_CONFIG],
        }
    }

    /// The Go type dockerd 20.10 decodes the body into, as its decoder names it in an error.
    fn go_type(self) -> &'static str {
        match self {
            BodyKind::ContainerConfig | BodyKind::Commit => "runconfig.ContainerConfigWrapper",
            BodyKind::ContainerUpdate => "container.UpdateConfig",
            BodyKind::ExecConfig => "types.ExecConfig",
            BodyKind::ExecStart => "types.ExecStartCheck",
            BodyKind::NetworkCreate => "types.NetworkCreateRequest",
            BodyKind::NetworkConnect => "types.NetworkConnect",
            BodyKind::NetworkDisconnect => "types.NetworkDisconnect",
            BodyKind::VolumeCreate => "volume.VolumeCreateBody",
            BodyKind::Auth => "types.AuthConfig",
        }
    }

    /// dockerd's refusal of an empty body (Go's `io.EOF`): the routes that check for it say so, the others pass
    /// the bare `EOF` on (with a 500, where mtswarm answers 400). A commit reads an absent body as no config.
    fn empty_body(self) -> Option<&'static str> {
        match self {
            BodyKind::Commit => None,
            BodyKind::ContainerConfig | BodyKind::ContainerUpdate | BodyKind::Auth => Some("EOF"),
            BodyKind::ExecConfig
            | BodyKind::ExecStart
            | BodyKind::NetworkCreate
            | BodyKind::NetworkConnect
            | BodyKind::NetworkDisconnect
            | BodyKind::VolumeCreate => Some("got EOF while reading request body"),
        }
    }
}

/// Whether a JSON key names the struct field `field` (ASCII) for Go's encoding/json: case-insensitive, with the
/// two non-ASCII letters that Unicode simple folding maps onto ASCII ones, the long s and the Kelvin sign.
pub fn go_fold_eq(key: &str, field: &str) -> bool {
    let mut key = key.chars();
    for f in field.chars() {
        let Some(k) = key.next() else {
            return false;
        };
        let same = k.eq_ignore_ascii_case(&f)
            || (k == '\u{17F}' && f.eq_ignore_ascii_case(&'s'))
            || (k == '\u{212A}' && f.eq_ignore_ascii_case(&'k'));
        if !same {
            return false;
        }
    }
    key.next().is_none()
}

/// The Go type of a field, as far as decoding is concerned.
#[derive(Debug)]
enum Shape {
    Bool,
    /// A signed integer (`int`, `int64`, `time.Duration`).
    Int,
    /// An unsigned integer of so many bits.
    Uint(u32),
    Str,
    /// Docker's `strslice.StrSlice`: a list of strings, or one string.
    StrSlice,
    List(&'static Shape),
    /// A Go array of fixed length: extra elements are dropped, missing ones are zero.
    Array(usize, &'static Shape),
    /// A map with string keys.
    Map(&'static Shape),
    /// `map[string]struct{}`: keys only.
    Set,
    /// A struct, its own fields and those of the structs it embeds.
    Struct(&'static [&'static [Field]]),
}

#[derive(Debug)]
struct Field {
    name: &'static str,
    shape: Shape,
}

const fn f(name: &'static str, shape: Shape) -> Field {
    Field { name, shape }
}

const STRINGS: Shape = Shape::List(&Shape::Str);
const STRING_MAP: Shape = Shape::Map(&Shape::Str);

/// `container.Config`.
const CONFIG: &[Field] = &[
    f("Hostname", Shape::Str),
    f("Domainname", Shape::Str),
    f("User", Shape::Str),
    f("AttachStdin", Shape::Bool),
    f("AttachStdout", Shape::Bool),
    f("AttachStderr", Shape::Bool),
    f("ExposedPorts", Shape::Set),
    f("Tty", Shape::Bool),
    f("OpenStdin", Shape::Bool),
    f("StdinOnce", Shape::Bool),
    f("Env", STRINGS),
    f("Cmd", Shape::StrSlice),
    f("Healthcheck", Shape::Struct(&[HEALTH])),
    f("ArgsEscaped", Shape::Bool),
    f("Image", Shape::Str),
    f("Volumes", Shape::Set),
    f("WorkingDir", Shape::Str),
    f("Entrypoint", Shape::StrSlice),
    f("NetworkDisabled", Shape::Bool),
    f("MacAddress", Shape::Str),
    f("OnBuild", STRINGS),
    f("Labels", STRING_MAP),
    f("StopSignal", Shape::Str),
    f("StopTimeout", Shape::Int),
    f("Shell", Shape::StrSlice),
];

const HEALTH: &[Field] = &[
    f("Test", STRINGS),
    f("Interval", Shape::Int),
    f("Timeout", Shape::Int),
    f("StartPeriod", Shape::Int),
    f("Retries", Shape::Int),
];

/// `runconfig.ContainerConfigWrapper`'s own fields (it embeds `Config` and, for the old layout, `HostConfig`).
const WRAPPER: &[Field] = &[
    f("HostConfig", Shape::Struct(&[HOST_CONFIG, RESOURCES])),
    f("Cpuset", Shape::Str),
    f("NetworkingConfig", Shape::Struct(&[NETWORKING_CONFIG])),
];

/// `container.HostConfig`, without the `Resources` it embeds.
const HOST_CONFIG: &[Field] = &[
    f("Binds", STRINGS),
    f("ContainerIDFile", Shape::Str),
    f("LogConfig", Shape::Struct(&[&[f("Type", Shape::Str), f("Config", STRING_MAP)]])),
    f("NetworkMode", Shape::Str),
    f(
        "PortBindings",
        Shape::Map(&Shape::List(&Shape::Struct(&[&[f("HostIp", Shape::Str), f("HostPort", Shape::Str)]]))),
    ),
    f("RestartPolicy", Shape::Struct(&[RESTART_POLICY])),
    f("AutoRemove", Shape::Bool),
    f("VolumeDriver", Shape::Str),
    f("VolumesFrom", STRINGS),
    f("CapAdd", Shape::StrSlice),
    f("CapDrop", Shape::StrSlice),
    f("CgroupnsMode", Shape::Str),
    f("Dns", STRINGS),
    f("DnsOptions", STRINGS),
    f("DnsSearch", STRINGS),
    f("ExtraHosts", STRINGS),
    f("GroupAdd", STRINGS),
    f("IpcMode", Shape::Str),
    f("Cgroup", Shape::Str),
    f("Links", STRINGS),
    f("OomScoreAdj", Shape::Int),
    f("PidMode", Shape::Str),
    f("Privileged", Shape::Bool),
    f("PublishAllPorts", Shape::Bool),
    f("ReadonlyRootfs", Shape::Bool),
    f("SecurityOpt", STRINGS),
    f("StorageOpt", STRING_MAP),
    f("Tmpfs", STRING_MAP),
    f("UTSMode", Shape::Str),
    f("UsernsMode", Shape::Str),
    f("ShmSize", Shape::Int),
    f("Sysctls", STRING_MAP),
    f("Runtime", Shape::Str),
    f("ConsoleSize", Shape::Array(2, &Shape::Uint(64))),
    f("Isolation", Shape::Str),
    f("Mounts", Shape::List(&Shape::Struct(&[MOUNT]))),
    f("MaskedPaths", STRINGS),
    f("ReadonlyPaths", STRINGS),
    f("Init", Shape::Bool),
];

const RESTART_POLICY: &[Field] = &[f("Name", Shape::Str), f("MaximumRetryCount", Shape::Int)];

const WEIGHT_DEVICES: Shape = Shape::List(&Shape::Struct(&[&[f("Path", Shape::Str), f("Weight", Shape::Uint(16))]]));
const THROTTLE_DEVICES: Shape = Shape::List(&Shape::Struct(&[&[f("Path", Shape::Str), f("Rate", Shape::Uint(64))]]));

/// `container.Resources`, embedded in HostConfig and UpdateConfig.
const RESOURCES: &[Field] = &[
    f("CpuShares", Shape::Int),
    f("Memory", Shape::Int),
    f("NanoCpus", Shape::Int),
    f("CgroupParent", Shape::Str),
    f("BlkioWeight", Shape::Uint(16)),
    f("BlkioWeightDevice", WEIGHT_DEVICES),
    f("BlkioDeviceReadBps", THROTTLE_DEVICES),
    f("BlkioDeviceWriteBps", THROTTLE_DEVICES),
    f("BlkioDeviceReadIOps", THROTTLE_DEVICES),
    f("BlkioDeviceWriteIOps", THROTTLE_DEVICES),
    f("CpuPeriod", Shape::Int),
    f("CpuQuota", Shape::Int),
    f("CpuRealtimePeriod", Shape::Int),
    f("CpuRealtimeRuntime", Shape::Int),
    f("CpusetCpus", Shape::Str),
    f("CpusetMems", Shape::Str),
    f(
        "Devices",
        Shape::List(&Shape::Struct(&[&[
            f("PathOnHost", Shape::Str),
            f("PathInContainer", Shape::Str),
            f("CgroupPermissions", Shape::Str),
        ]])),
    ),
    f("DeviceCgroupRules", STRINGS),
    f(
        "DeviceRequests",
        Shape::List(&Shape::Struct(&[&[
            f("Driver", Shape::Str),
            f("Count", Shape::Int),
            f("DeviceIDs", STRINGS),
            f("Capabilities", Shape::List(&STRINGS)),
            f("Options", STRING_MAP),
        ]])),
    ),
    f("KernelMemory", Shape::Int),
    f("KernelMemoryTCP", Shape::Int),
    f("MemoryReservation", Shape::Int),
    f("MemorySwap", Shape::Int),
    f("MemorySwappiness", Shape::Int),
    f("OomKillDisable", Shape::Bool),
    f("PidsLimit", Shape::Int),
    f(
        "Ulimits",
        Shape::List(&Shape::Struct(&[&[f("Name", Shape::Str), f("Hard", Shape::Int), f("Soft", Shape::Int)]])),
    ),
    f("CpuCount", Shape::Int),
    f("CpuPercent", Shape::Int),
    f("IOMaximumIOps", Shape::Uint(64)),
    f("IOMaximumBandwidth", Shape::Uint(64)),
];

/// `container.UpdateConfig`'s own field (it embeds `Resources`).
const UPDATE: &[Field] = &[f("RestartPolicy", Shape::Struct(&[RESTART_POLICY]))];

/// `mount.Mount`.
const MOUNT: &[Field] = &[
    f("Type", Shape::Str),
    f("Source", Shape::Str),
    f("Target", Shape::Str),
    f("ReadOnly", Shape::Bool),
    f("Consistency", Shape::Str),
    f("BindOptions", Shape::Struct(&[&[f("Propagation", Shape::Str), f("NonRecursive", Shape::Bool)]])),
    f(
        "VolumeOptions",
        Shape::Struct(&[&[
            f("NoCopy", Shape::Bool),
            f("Labels", STRING_MAP),
            f("DriverConfig", Shape::Struct(&[&[f("Name", Shape::Str), f("Options", STRING_MAP)]])),
        ]]),
    ),
    f("TmpfsOptions", Shape::Struct(&[&[f("SizeBytes", Shape::Int), f("Mode", Shape::Uint(32))]])),
];

const NETWORKING_CONFIG: &[Field] = &[f("EndpointsConfig", Shape::Map(&ENDPOINT_SETTINGS))];

/// `network.EndpointSettings`.
const ENDPOINT_SETTINGS: Shape = Shape::Struct(&[&[
    f(
        "IPAMConfig",
        Shape::Struct(&[&[f("IPv4Address", Shape::Str), f("IPv6Address", Shape::Str), f("LinkLocalIPs", STRINGS)]]),
    ),
    f("Links", STRINGS),
    f("Aliases", STRINGS),
    f("NetworkID", Shape::Str),
    f("EndpointID", Shape::Str),
    f("Gateway", Shape::Str),
    f("IPAddress", Shape::Str),
    f("IPPrefixLen", Shape::Int),
    f("IPv6Gateway", Shape::Str),
    f("GlobalIPv6Address", Shape::Str),
    f("GlobalIPv6PrefixLen", Shape::Int),
    f("MacAddress", Shape::Str),
    f("DriverOpts", STRING_MAP),
]]);

/// `types.ExecConfig`.
const EXEC_CONFIG: &[Field] = &[
    f("User", Shape::Str),
    f("Privileged", Shape::Bool),
    f("Tty", Shape::Bool),
    f("AttachStdin", Shape::Bool),
    f("AttachStderr", Shape::Bool),
    f("AttachStdout", Shape::Bool),
    f("Detach", Shape::Bool),
    f("DetachKeys", Shape::Str),
    f("Env", STRINGS),
    f("WorkingDir", Shape::Str),
    f("Cmd", STRINGS),
];

const EXEC_START: &[Field] = &[f("Detach", Shape::Bool), f("Tty", Shape::Bool)];

/// `types.NetworkCreateRequest` (`NetworkCreate` and `Name`).
const NETWORK_CREATE: &[Field] = &[
    f("Name", Shape::Str),
    f("CheckDuplicate", Shape::Bool),
    f("Driver", Shape::Str),
    f("Scope", Shape::Str),
    f("EnableIPv6", Shape::Bool),
    f(
        "IPAM",
        Shape::Struct(&[&[
            f("Driver", Shape::Str),
            f("Options", STRING_MAP),
            f(
                "Config",
                Shape::List(&Shape::Struct(&[&[
                    f("Subnet", Shape::Str),
                    f("IPRange", Shape::Str),
                    f("Gateway", Shape::Str),
                    f("AuxiliaryAddresses", STRING_MAP),
                ]])),
            ),
        ]]),
    ),
    f("Internal", Shape::Bool),
    f("Attachable", Shape::Bool),
    f("Ingress", Shape::Bool),
    f("ConfigOnly", Shape::Bool),
    f("ConfigFrom", Shape::Struct(&[&[f("Network", Shape::Str)]])),
    f("Options", STRING_MAP),
    f("Labels", STRING_MAP),
];

const NETWORK_CONNECT: &[Field] = &[f("Container", Shape::Str), f("EndpointConfig", ENDPOINT_SETTINGS)];

const NETWORK_DISCONNECT: &[Field] = &[f("Container", Shape::Str), f("Force", Shape::Bool)];

/// `volume.VolumeCreateBody`.
const VOLUME_CREATE: &[Field] =
    &[f("Driver", Shape::Str), f("DriverOpts", STRING_MAP), f("Labels", STRING_MAP), f("Name", Shape::Str)];

/// `types.AuthConfig`.
const AUTH_CONFIG: &[Field] = &[
    f("username", Shape::Str),
    f("password", Shape::Str),
    f("auth", Shape::Str),
    f("email", Shape::Str),
    f("serveraddress", Shape::Str),
    f("identitytoken", Shape::Str),
    f("registrytoken", Shape::Str),
];

/// The HostConfig fields dockerd takes from the top level of a create body even when `HostConfig` is given
/// (when the inner value is zero), and the deprecated `Cpuset`, which fills an empty `CpusetCpus`.
const MERGED_FROM_TOP: [&str; 5] = ["Memory", "MemorySwap", "CpuShares", "CpusetCpus", "VolumeDriver"];

/// moby's `getHostConfig`: the one HostConfig of a create body. Without an inner `HostConfig` the top-level
/// HostConfig fields are the HostConfig; with one, only [`MERGED_FROM_TOP`] are taken from the top, where the
/// inner value is zero. The top-level copies leave the document either way.
fn host_config_of_wrapper(doc: Value) -> Value {
    let Value::Object(top) = doc else { return doc };
    let is_host_field = |k: &str| HOST_CONFIG.iter().chain(RESOURCES).any(|f| f.name == k);
    let (mut outer, mut rest): (Map<String, Value>, Map<String, Value>) = (Map::new(), Map::new());
    for (k, v) in top {
        if is_host_field(&k) {
            outer.insert(k, v);
        } else {
            rest.insert(k, v);
        }
    }
    let cpuset = rest.remove("Cpuset");
    let mut hc = match rest.remove("HostConfig") {
        Some(Value::Object(mut inner)) => {
            for key in MERGED_FROM_TOP {
                let zero = inner.get(key).is_none_or(is_zero);
                if let Some(v) = outer.remove(key).filter(|v| !is_zero(v)) {
                    if zero {
                        inner.insert(key.to_string(), v);
                    }
                }
            }
            Some(inner)
        }
        _ if !outer.is_empty() => Some(outer),
        _ => None,
    };
    if let (Some(hc), Some(cpuset)) = (hc.as_mut(), cpuset.filter(|c| !is_zero(c))) {
        if hc.get("CpusetCpus").is_none_or(is_zero) {
            hc.insert("CpusetCpus".into(), cpuset);
        }
    }
    if let Some(hc) = hc {
        rest.insert("HostConfig".into(), Value::Object(hc));
    }
    Value::Object(rest)
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// A JSON value as parsed, before it is matched to Docker's types: objects keep every key in order, duplicates
/// included, and numbers keep whether they were written as integers.
#[derive(Debug)]
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    /// A number with a fraction or an exponent, or too large for 64 bits.
    Float,
    Str(String),
    List(Vec<Raw>),
    Obj(Vec<(String, Raw)>),
}

impl Raw {
    fn kind(&self) -> &'static str {
        match self {
            Raw::Null => "null",
            Raw::Bool(_) => "a boolean",
            Raw::Int(_) | Raw::Uint(_) | Raw::Float => "a number",
            Raw::Str(_) => "a string",
            Raw::List(_) => "a list",
            Raw::Obj(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Raw, E> {
                Ok(Raw::Int(n))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Raw, E> {
                Ok(Raw::Uint(n))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Raw, E> {
                Ok(Raw::Float)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Raw, E> {
                Ok(Raw::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Raw, E> {
                Ok(Raw::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Raw::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Raw>()? {
                    out.push((k, v));
                }
                Ok(Raw::Obj(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn type_error(path: &str, shape: &Shape, got: &Raw) -> DecodeError {
    let want = match shape {
        Shape::Bool => "true or false",
        Shape::Int => "a whole number",
        Shape::Uint(_) => "a whole number that is not negative",
        Shape::Str => "a string",
        Shape::StrSlice => "a string or a list of strings",
        Shape::List(_) | Shape::Array(..) => "a list",
        Shape::Map(_) | Shape::Set | Shape::Struct(_) => "an object",
    };
    DecodeError { field: path.to_string(), reason: format!("must be {want}, not {}", got.kind()) }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Decodes `raw` as a value of `shape`; `None` for `null`, which leaves a field unset.
fn canonical(raw: &Raw, shape: &Shape, path: &str) -> Result<Option<Value>, DecodeError> {
    if matches!(raw, Raw::Null) {
        return Ok(None);
    }
    let value = match (shape, raw) {
        (Shape::Bool, Raw::Bool(b)) => Value::Bool(*b),
        (Shape::Int, Raw::Int(n)) => Value::from(*n),
        (Shape::Int, Raw::Uint(n)) => match i64::try_from(*n) {
            Ok(n) => Value::from(n),
            Err(_) => return Err(range_error(path)),
        },
        (Shape::Uint(bits), Raw::Uint(n)) => {
            if *bits < 64 && *n >= 1u64 << bits {
                return Err(range_error(path));
            }
            Value::from(*n)
        }
        (Shape::Int | Shape::Uint(_), Raw::Float) | (Shape::Uint(_), Raw::Int(_)) => {
            return Err(DecodeError {
                field: path.to_string(),
                reason: match (shape, raw) {
                    (Shape::Uint(_), Raw::Int(_)) => "must not be negative".to_string(),
                    _ => "must be a whole number that fits in 64 bits".to_string(),
                },
            })
        }
        (Shape::Str, Raw::Str(s)) => Value::String(s.clone()),
        (Shape::StrSlice, Raw::Str(s)) => Value::Array(vec![Value::String(s.clone())]),
        (Shape::StrSlice, Raw::List(_)) => return canonical(raw, &STRINGS, path),
        (Shape::List(elem), Raw::List(items)) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| element(item, elem, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        (Shape::Array(len, elem), Raw::List(items)) => {
            let mut out: Vec<Value> = items
                .iter()
                .take(*len)
                .enumerate()
                .map(|(i, item)| element(item, elem, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?;
            while out.len() < *len {
                out.push(zero(elem));
            }
            Value::Array(out)
        }
        (Shape::Map(elem), Raw::Obj(pairs)) => {
            let mut out = Map::new();
            for (k, v) in pairs {
                let at = format!("{path}[{k:?}]");
                if out.contains_key(k) {
                    return Err(DecodeError { field: at, reason: "is given more than once".into() });
                }
                out.insert(k.clone(), element(v, elem, &at)?);
            }
            Value::Object(out)
        }
        (Shape::Set, Raw::Obj(pairs)) => {
            let mut out = Map::new();
            for (k, v) in pairs {
                let at = format!("{path}[{k:?}]");
                if !matches!(v, Raw::Null | Raw::Obj(_)) {
                    return Err(DecodeError { field: at, reason: format!("must be an object, not {}", v.kind()) });
                }
                if out.insert(k.clone(), Value::Object(Map::new())).is_some() {
                    return Err(DecodeError { field: at, reason: "is given more than once".into() });
                }
            }
            Value::Object(out)
        }
        (Shape::Struct(groups), Raw::Obj(pairs)) => {
            let mut out = Map::new();
            let mut spelled: Vec<(&'static str, &str)> = Vec::new();
            for (k, v) in pairs {
                let Some(field) = groups.iter().flat_map(|g| g.iter()).find(|f| go_fold_eq(k, f.name)) else {
                    continue;
                };
                let at = join(path, field.name);
                if let Some((_, first)) = spelled.iter().find(|(name, _)| *name == field.name) {
                    return Err(DecodeError {
                        field: at,
                        reason: format!("is given more than once (as {first:?} and {k:?})"),
                    });
                }
                spelled.push((field.name, k));
                if let Some(v) = canonical(v, &field.shape, &at)? {
                    out.insert(field.name.to_string(), v);
                }
            }
            Value::Object(out)
        }
        _ => return Err(type_error(path, shape, raw)),
    };
    Ok(Some(value))
}

/// An element of a list or map: `null` is the element type's zero value.
fn element(raw: &Raw, shape: &Shape, path: &str) -> Result<Value, DecodeError> {
    Ok(canonical(raw, shape, path)?.unwrap_or_else(|| zero(shape)))
}

fn zero(shape: &Shape) -> Value {
    match shape {
        Shape::Bool => Value::Bool(false),
        Shape::Int | Shape::Uint(_) => Value::from(0),
        Shape::Str => Value::String(String::new()),
        Shape::StrSlice | Shape::List(_) => Value::Array(Vec::new()),
        Shape::Array(len, elem) => Value::Array((0..*len).map(|_| zero(elem)).collect()),
        Shape::Map(_) | Shape::Set | Shape::Struct(_) => Value::Object(Map::new()),
    }
}

fn range_error(path: &str) -> DecodeError {
    DecodeError { field: path.to_string(), reason: "is out of range for its type".into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Decodes `body` as `kind` and compares with the canonical document, or with the field an error names.
    fn check(kind: BodyKind, body: &str, expected: Result<Value, &str>) {
        let got = decode(kind, body.as_bytes());
        match (&got, &expected) {
            (Ok(doc), Ok(want)) => assert_eq!(doc, want, "{body}"),
            (Err(e), Err(field)) => {
                assert_eq!(&e.field, field, "{body}: {e}");
                assert!(e.to_string().contains(field), "{e}");
            }
            _ => panic!("{body}: got {got:?}, expected {expected:?}"),
        }
    }

    use BodyKind::*;

    #[test]
    fn keys_fold_as_go_folds_them() {
        let volume = json!({"Image": "x", "HostConfig": {"Binds": ["v:/d"]}});
        for body in [
            r#"{"Image":"x","HostConfig":{"Bindſ":["v:/d"]}}"#,
            r#"{"Image":"x","HoſtConfig":{"Binds":["v:/d"]}}"#,
            r#"{"image":"x","hostconfig":{"BINDS":["v:/d"]}}"#,
            r#"{"Image":"x","Binds":["v:/d"]}"#,
            r#"{"Image":"x","Bindſ":["v:/d"]}"#,
        ] {
            check(ContainerConfig, body, Ok(volume.clone()));
        }
        check(
            ContainerConfig,
            r#"{"HostConfig":{"Mountſ":[{"ſource":"v","TYPE":"volume","target":"/d"}],"VolumeſFrom":["c"],"LinKs":["c:a"]}}"#,
            Ok(json!({"HostConfig": {"Mounts": [{"Source": "v", "Type": "volume", "Target": "/d"}],
                      "VolumesFrom": ["c"], "Links": ["c:a"]}})),
        );
        // Other non-ASCII letters never fold onto ASCII ones: the key names no field and is dropped.
        check(ContainerConfig, r#"{"HostConfig":{"Bındſ":["/:/h"]}}"#, Ok(json!({"HostConfig": {}})));
        check(
            NetworkCreate,
            r#"{"Name":"n","Optionſ":{"parent":"eth0"}}"#,
            Ok(json!({"Name": "n", "Options": {"parent": "eth0"}})),
        );
        check(
            NetworkConnect,
            r#"{"container":"c","endpointconfig":{"networkid":"n"}}"#,
            Ok(json!({"Container": "c", "EndpointConfig": {"NetworkID": "n"}})),
        );
    }

    #[test]
    fn a_field_given_twice_is_refused() {
        check(VolumeCreate, r#"{"Name":"v","Labels":{},"labels":{"mtswarm.tenant":"x"}}"#, Err("Labels"));
        check(VolumeCreate, r#"{"Name":"a","name":"b"}"#, Err("Name"));
        check(NetworkCreate, r#"{"Name":"a","Options":{},"options":{"x":"y"}}"#, Err("Options"));
        check(NetworkConnect, r#"{"Container":"a","container":"b"}"#, Err("Container"));
        check(NetworkConnect, r#"{"Container":"a","Container":"b"}"#, Err("Container"));
        check(ContainerConfig, r#"{"HostConfig":{"Binds":[],"bindſ":["/:/h"]}}"#, Err("HostConfig.Binds"));
        check(ContainerConfig, r#"{"HostConfig":{},"hostconfig":{"Privileged":true}}"#, Err("HostConfig"));
        check(VolumeCreate, r#"{"Labels":{"a":"1","a":"2"}}"#, Err("Labels[\"a\"]"));
        // The same field at the top level and inside HostConfig are two fields, as for Go.
        check(ContainerConfig, r#"{"Memory":1,"HostConfig":{"Memory":2}}"#, Ok(json!({"HostConfig": {"Memory": 2}})));
    }

    #[test]
    fn wrong_types_are_refused_naming_the_field() {
        check(ContainerConfig, r#"{"Shell":7}"#, Err("Shell"));
        check(ContainerConfig, r#"{"Shell":["sh",1]}"#, Err("Shell[1]"));
        check(ContainerConfig, r#"{"HostConfig":{"Binds":"v:/d"}}"#, Err("HostConfig.Binds"));
        check(ContainerConfig, r#"{"HostConfig":{"Privileged":"true"}}"#, Err("HostConfig.Privileged"));
        check(ContainerConfig, r#"{"HostConfig":{"Memory":1.5}}"#, Err("HostConfig.Memory"));
        check(ContainerConfig, r#"{"HostConfig":{"Memory":1e9}}"#, Err("HostConfig.Memory"));
        check(ContainerConfig, r#"{"HostConfig":{"Memory":99999999999999999999}}"#, Err("HostConfig.Memory"));
        check(ContainerConfig, r#"{"HostConfig":{"BlkioWeight":70000}}"#, Err("HostConfig.BlkioWeight"));
        check(ContainerConfig, r#"{"HostConfig":{"BlkioWeight":-1}}"#, Err("HostConfig.BlkioWeight"));
        check(ContainerConfig, r#"{"HostConfig":"x"}"#, Err("HostConfig"));
        check(ContainerConfig, r#"{"ExposedPorts":{"80/tcp":1}}"#, Err("ExposedPorts[\"80/tcp\"]"));
        check(ContainerConfig, r#"[1]"#, Err(""));
        check(ContainerConfig, r#"{"a":"#, Err(""));
        check(
            ContainerConfig,
            r#"{"HostConfig":{"Mounts":[{"Type":"volume","Source":5}]}}"#,
            Err("HostConfig.Mounts[0].Source"),
        );
    }

    #[test]
    fn unknown_fields_and_nulls() {
        check(
            ContainerConfig,
            r#"{"Image":"x","Bogus":{"a":1},"HostConfig":{"Annotations":{"a":"b"}}}"#,
            Ok(json!({"Image": "x", "HostConfig": {}})),
        );
        check(ContainerConfig, r#"{"Image":null,"HostConfig":null,"Cmd":"sh"}"#, Ok(json!({"Cmd": ["sh"]})));
        check(
            ContainerConfig,
            r#"{"Env":["a",null],"Labels":{"a":null}}"#,
            Ok(json!({"Env": ["a", ""], "Labels": {"a": ""}})),
        );
        check(
            ContainerConfig,
            r#"{"NetworkingConfig":{"EndpointsConfig":{"n":null}}}"#,
            Ok(json!({"NetworkingConfig": {"EndpointsConfig": {"n": {}}}})),
        );
        check(
            ContainerConfig,
            r#"{"HostConfig":{"ConsoleSize":[1,2,3]}}"#,
            Ok(json!({"HostConfig": {"ConsoleSize": [1, 2]}})),
        );
        check(ExecStart, "null", Ok(json!({})));
    }

    /// The whole-body refusals, in dockerd 20.10's words (seen on this machine's engine).
    fn check_words(kind: BodyKind, body: &str, message: &str) {
        match decode(kind, body.as_bytes()) {
            Err(e) => assert_eq!(e.to_string(), message, "{body}"),
            Ok(doc) => panic!("{body}: decoded as {doc}"),
        }
    }

    #[test]
    fn malformed_and_empty_bodies_are_refused_in_dockerds_words() {
        let key = "invalid character 'i' looking for beginning of object key string";
        for kind in [ContainerConfig, Commit, ContainerUpdate, ExecConfig, ExecStart, VolumeCreate, NetworkCreate] {
            check_words(kind, "{invalid json", key);
            check_words(kind, r#"{"Name":"x""#, "unexpected EOF");
        }
        for kind in [ExecConfig, ExecStart, NetworkCreate, NetworkConnect, NetworkDisconnect, VolumeCreate] {
            check_words(kind, "", "got EOF while reading request body");
            check_words(kind, " \n", "got EOF while reading request body");
        }
        for kind in [ContainerConfig, ContainerUpdate, Auth] {
            check_words(kind, "", "EOF");
        }
        // The CLI commits with no body at all.
        check(Commit, "", Ok(json!({})));
        check_words(VolumeCreate, "[1]", "json: cannot unmarshal array into Go value of type volume.VolumeCreateBody");
        check_words(ExecStart, "12", "json: cannot unmarshal number into Go value of type types.ExecStartCheck");
        check_words(
            ContainerConfig,
            r#""x""#,
            "json: cannot unmarshal string into Go value of type runconfig.ContainerConfigWrapper",
        );
        // Content after the first value is refused, though Go's decoder never reads it: mtswarm's own words.
        check_words(
            VolumeCreate,
            r#"{"Name":"a"} {"Name":"b"}"#,
            "invalid request body: invalid JSON: trailing characters at line 1 column 14",
        );
    }

    #[test]
    fn the_old_layout_is_one_host_config() {
        // No inner HostConfig: the top level is the HostConfig.
        check(
            ContainerConfig,
            r#"{"Image":"x","Privileged":true,"PidMode":"host"}"#,
            Ok(json!({"Image": "x", "HostConfig": {"Privileged": true, "PidMode": "host"}})),
        );
        // With one, only five fields merge, where the inner value is zero; the rest of the top is ignored.
        check(
            ContainerConfig,
            r#"{"Memory":5,"MemorySwap":6,"CpuShares":7,"VolumeDriver":"d","Privileged":true,
                "HostConfig":{"Memory":0,"MemorySwap":9}}"#,
            Ok(json!({"HostConfig": {"Memory": 5, "MemorySwap": 9, "CpuShares": 7, "VolumeDriver": "d"}})),
        );
        check(ContainerConfig, r#"{"Cpuset":"0-1","HostConfig":{}}"#, Ok(json!({"HostConfig": {"CpusetCpus": "0-1"}})));
        check(ContainerConfig, r#"{"Cpuset":"0-1"}"#, Ok(json!({})));
        check(ContainerConfig, r#"{"Cpuset":"0-1","CpusetCpus":"1"}"#, Ok(json!({"HostConfig": {"CpusetCpus": "1"}})));
    }

    /// Every spelling Go folds onto `name`: lower case, upper case, and each `s` as `ſ` and each `k` as `K`.
    fn spellings(name: &str) -> Vec<String> {
        let mut out = vec![name.to_string(), name.to_lowercase(), name.to_uppercase()];
        for (i, c) in name.char_indices() {
            let other = match c.to_ascii_lowercase() {
                's' => '\u{17F}',
                'k' => '\u{212A}',
                _ => continue,
            };
            out.push(format!("{}{other}{}", &name[..i], &name[i + 1..]));
        }
        out
    }

    /// Each field that names an object or a host resource, at its place in the document, reads the same under
    /// every spelling of every key on its path; and the canonical document holds it under Docker's spelling.
    #[test]
    fn every_spelling_of_every_field_that_names_an_object_or_the_host() {
        let table: &[(BodyKind, &[&str], Value)] = &[
            (ContainerConfig, &["HostConfig", "Binds"], json!(["v:/d"])),
            (ContainerConfig, &["HostConfig", "Mounts"], json!([{"Type": "bind", "Source": "/", "Target": "/h"}])),
            (ContainerConfig, &["HostConfig", "VolumesFrom"], json!(["c"])),
            (ContainerConfig, &["HostConfig", "Links"], json!(["c:a"])),
            (ContainerConfig, &["HostConfig", "VolumeDriver"], json!("d")),
            (ContainerConfig, &["HostConfig", "NetworkMode"], json!("container:c")),
            (ContainerConfig, &["HostConfig", "PidMode"], json!("host")),
            (ContainerConfig, &["HostConfig", "IpcMode"], json!("host")),
            (ContainerConfig, &["HostConfig", "UTSMode"], json!("host")),
            (ContainerConfig, &["HostConfig", "UsernsMode"], json!("host")),
            (ContainerConfig, &["HostConfig", "CgroupnsMode"], json!("host")),
            (ContainerConfig, &["HostConfig", "Cgroup"], json!("container:c")),
            (ContainerConfig, &["HostConfig", "Privileged"], json!(true)),
            (ContainerConfig, &["HostConfig", "CapAdd"], json!(["SYS_ADMIN"])),
            (ContainerConfig, &["HostConfig", "Devices"], json!([{"PathOnHost": "/dev/sda"}])),
            (ContainerConfig, &["HostConfig", "DeviceCgroupRules"], json!(["a *:* rwm"])),
            (ContainerConfig, &["HostConfig", "SecurityOpt"], json!(["seccomp=unconfined"])),
            (ContainerConfig, &["HostConfig", "Sysctls"], json!({"kernel.x": "1"})),
            (ContainerConfig, &["HostConfig", "CgroupParent"], json!("/")),
            (ContainerConfig, &["HostConfig", "Runtime"], json!("other")),
            (ContainerConfig, &["HostConfig", "LogConfig"], json!({"Type": "syslog"})),
            (ContainerConfig, &["HostConfig", "MaskedPaths"], json!([])),
            (ContainerConfig, &["HostConfig", "Tmpfs"], json!({"/t": "bind"})),
            (ContainerConfig, &["Labels"], json!({"mtswarm.tenant": "x"})),
            (ContainerConfig, &["NetworkingConfig", "EndpointsConfig"], json!({"n": {"NetworkID": "x"}})),
            (NetworkCreate, &["Name"], json!("n")),
            (NetworkCreate, &["Driver"], json!("macvlan")),
            (NetworkCreate, &["Options"], json!({"parent": "eth0"})),
            (NetworkCreate, &["Labels"], json!({"mtswarm.tenant": "x"})),
            (NetworkCreate, &["IPAM"], json!({"Config": [{"Subnet": "10.0.0.0/8"}]})),
            (NetworkCreate, &["ConfigFrom"], json!({"Network": "x"})),
            (NetworkConnect, &["Container"], json!("c")),
            (NetworkConnect, &["EndpointConfig", "NetworkID"], json!("x")),
            (NetworkDisconnect, &["Container"], json!("c")),
            (VolumeCreate, &["Name"], json!("v")),
            (VolumeCreate, &["Driver"], json!("d")),
            (VolumeCreate, &["DriverOpts"], json!({"o": "bind"})),
            (VolumeCreate, &["Labels"], json!({"mtswarm.tenant": "x"})),
            (ContainerUpdate, &["CgroupParent"], json!("/")),
            (ContainerUpdate, &["Devices"], json!([{"PathOnHost": "/dev/sda"}])),
            (ExecConfig, &["Privileged"], json!(true)),
            (ExecConfig, &["WorkingDir"], json!("/proc/1/cwd")),
        ];
        for (kind, path, value) in table {
            let canonical = path.iter().rev().fold(value.clone(), |inner, key| json!({ *key: inner }));
            for (depth, key) in path.iter().enumerate() {
                for spelled in spellings(key) {
                    let body = path.iter().enumerate().rev().fold(
                        value.clone(),
                        |inner, (i, k)| json!({ (if i == depth { spelled.clone() } else { k.to_string() }): inner }),
                    );
                    let got = decode(*kind, body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
                    assert_eq!(got, canonical, "{kind:?} {body}");
                }
            }
        }
        // The old layout holds a HostConfig field at the top: it lands in HostConfig, under every spelling.
        for spelled in spellings("Binds") {
            let body = json!({ spelled: ["v:/d"] });
            let got = decode(ContainerConfig, body.to_string().as_bytes()).unwrap();
            assert_eq!(got, json!({"HostConfig": {"Binds": ["v:/d"]}}), "{body}");
        }
    }

    #[test]
    fn folding() {
        assert!(go_fold_eq("bindſ", "Binds"));
        assert!(go_fold_eq("LinKs", "Links"));
        assert!(!go_fold_eq("Bind", "Binds"));
        assert!(!go_fold_eq("Bındſ", "Binds"));
        assert!(!go_fold_eq("Bindss", "Binds"));
    }
}
