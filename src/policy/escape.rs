//! Host-escape rules: what a non-admin tenant may not put in a container's configuration.
//!
//! Threat model: every tenant's containers share engines, kernels and bridges with other tenants' containers and
//! with the host itself. A tenant must not reach the host, or another tenant, through a container's configuration:
//! no privileges or capabilities beyond Docker's defaults, no host devices, paths or namespaces, no weakened
//! seccomp/AppArmor/SELinux confinement, no cgroup, runtime or sysctl that acts outside the container, and no
//! service of the host (log drivers, network file systems, loopback ports) reachable by a setting. What runs inside
//! the container is the tenant's business: root inside it (`--user 0`) stays allowed.
//!
//! The checks read the canonical document of [`crate::api::decode`]: the body as dockerd's Go decoder reads it
//! (folded key spellings, the pre-1.2x layout, repeated fields and wrong types already settled there), and the
//! engine receives that document, never the client's bytes. Here:
//! - map keys (Sysctls, DriverOpts, ...) and enumerated values (`host`, `bind`, ...) are case-sensitive;
//! - a value of an unexpected type is refused here too (the decoder refuses it first), never skipped.
//!
//! Rules are allow-lists wherever Docker's set of values is closed, so an option this module has never heard of is
//! refused with the option named, not let through.
//!
//! What the body cannot show is the caller's: whether `container:X` names one of the tenant's own containers
//! ([`OwnContainers`]) and which network a name means.

use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};

/// A refusal: the field as the Docker API names it (e.g. "HostConfig.Privileged") and why, in a sentence the user
/// sees. `field` is empty when the body as a whole is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    pub field: String,
    pub reason: String,
}

impl Deny {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Deny {
        Deny { field: field.into(), reason: reason.into() }
    }

    /// A refusal of `field` (empty: of the request as a whole).
    pub fn at(field: impl Into<String>, reason: impl Into<String>) -> Deny {
        Deny::new(field, reason)
    }

    /// The text for Docker's `{"message": ...}`, e.g.
    /// "HostConfig.Privileged: privileged containers are not allowed on this service".
    pub fn message(&self) -> String {
        if self.field.is_empty() {
            self.reason.clone()
        } else {
            format!("{}: {}", self.field, self.reason)
        }
    }
}

impl fmt::Display for Deny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Deny {}

/// The operator's switches for these rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscapeRules {
    /// SWARM_NETWORK_AUTHORIZATION: `false` turns off the network checks only (host network, joining another
    /// container's network, the `host` endpoint), as the 2016 switch did. Every other rule stays on.
    pub network_authorization: bool,
}

impl Default for EscapeRules {
    /// Network authorization is on unless the operator turns it off.
    fn default() -> EscapeRules {
        EscapeRules { network_authorization: true }
    }
}

/// How the caller tells whether a `container:X` reference names one of the tenant's own containers (the caller
/// resolves names, ids and id prefixes among the tenant's objects; this module stays pure).
pub trait OwnContainers {
    fn owns(&self, reference: &str) -> bool;
}

impl<F: Fn(&str) -> bool> OwnContainers for F {
    fn owns(&self, reference: &str) -> bool {
        self(reference)
    }
}

/// Checks a `POST /containers/create` body.
pub fn check_create(body: &Value, rules: &EscapeRules, own: &dyn OwnContainers) -> Result<(), Deny> {
    let top = Obj::root(body)?;
    if let Some(host_config) = top.object("HostConfig")? {
        check_host_config(&host_config, rules, own)?;
    }
    // The pre-1.2x layout (HostConfig fields at the top level) is already folded into HostConfig by the decoder.
    check_working_dir(&top)?;
    if rules.network_authorization {
        if let Some(networking) = top.object("NetworkingConfig")? {
            if let Some(endpoints) = networking.map("EndpointsConfig")? {
                if endpoints.keys().any(|name| name.eq_ignore_ascii_case("host")) {
                    return Err(networking.deny("EndpointsConfig", "the host network is not available on this service"));
                }
            }
        }
    }
    Ok(())
}

/// Checks a `POST /containers/{id}/update` body: Docker's `UpdateConfig`, the `Resources` fields flat at the top
/// level plus `RestartPolicy`. No update field is a network setting, so `_rules` changes nothing today; it is taken
/// so that every check reads the same switches.
pub fn check_update(body: &Value, _rules: &EscapeRules) -> Result<(), Deny> {
    check_resources(&Obj::root(body)?)
}

/// Checks a `POST /containers/{id}/exec` body.
pub fn check_exec(body: &Value) -> Result<(), Deny> {
    let exec = Obj::root(body)?;
    if exec.flag("Privileged")? {
        return Err(exec.deny("Privileged", "privileged exec sessions are not allowed on this service"));
    }
    check_working_dir(&exec)
}

/// Checks a `POST /volumes/create` body.
pub fn check_volume_create(body: &Value) -> Result<(), Deny> {
    let volume = Obj::root(body)?;
    check_volume_driver(&volume, "Driver")?;
    match volume.map("DriverOpts")? {
        Some(opts) => check_local_volume_options(opts, &volume.name("DriverOpts")),
        None => Ok(()),
    }
}

/// A tenant's container gets a private cgroup namespace when its body names none: dockerd's default on a cgroup v1
/// host is the host's (`--default-cgroupns-mode`), and below API 1.41 dockerd 20.10 sets the host's explicitly
/// for older clients.
pub fn pin_private_cgroupns(doc: &mut Value) {
    let Some(top) = doc.as_object_mut() else { return };
    let hc = top.entry("HostConfig").or_insert_with(|| Value::Object(Map::new()));
    if hc.is_null() {
        *hc = Value::Object(Map::new());
    }
    if let Some(hc) = hc.as_object_mut() {
        if hc.get("CgroupnsMode").and_then(Value::as_str).is_none_or(str::is_empty) {
            hc.insert("CgroupnsMode".into(), Value::from("private"));
        }
    }
}

/// Docker's default capability set (moby `oci/caps/defaults.go`): adding one of these changes nothing.
const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// The paths Docker masks by default (moby `oci/defaults.go`, 20.10). A `MaskedPaths` list replaces them instead of
/// adding to them, so a list must keep every one.
const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths Docker makes read-only by default; the same replace-not-add rule as the masked ones.
const DEFAULT_READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The IPC-namespaced sysctls outside `fs.mqueue.*` (runc's list, plus the `*_next_id` ones, also per namespace).
const IPC_SYSCTLS: [&str; 11] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.msg_next_id",
    "kernel.sem",
    "kernel.sem_next_id",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
    "kernel.shm_next_id",
];

fn check_host_config(hc: &Obj, rules: &EscapeRules, own: &dyn OwnContainers) -> Result<(), Deny> {
    if hc.flag("Privileged")? {
        return Err(hc.deny("Privileged", "privileged containers are not allowed on this service"));
    }
    // ("Capabilities", API 1.40's replacement of the whole set, is not in 20.10's model: the decoder drops it.)
    for cap in hc.str_slice("CapAdd")? {
        if !is_default_capability(cap) {
            return Err(hc.deny("CapAdd", capability_reason(cap)));
        }
    }
    check_resources(hc)?;
    check_storage(hc)?;
    check_namespaces(hc, rules, own)?;
    check_security_opts(hc)?;
    for (field, defaults) in
        [("MaskedPaths", &DEFAULT_MASKED_PATHS[..]), ("ReadonlyPaths", &DEFAULT_READONLY_PATHS[..])]
    {
        check_system_paths(hc, field, defaults)?;
    }
    check_sysctls(hc, rules, own)?;
    let runtime = hc.string("Runtime")?;
    if !matches!(runtime, "" | "runc") {
        return Err(hc.deny("Runtime", format!("the runtime {runtime:?} is not available; only the default runc is")));
    }
    if let Some(log) = hc.object("LogConfig")? {
        let driver = log.string("Type")?;
        if !matches!(driver, "" | "json-file" | "local" | "none") {
            return Err(log.deny(
                "Type",
                format!(
                    "the {driver:?} log driver sends logs to a service outside the container; \
                     use json-file, local or none"
                ),
            ));
        }
    }
    // A negative score makes the host's OOM killer pick host daemons and other tenants' containers first.
    if hc.number("OomScoreAdj")?.is_some_and(|score| score < 0.0) {
        return Err(hc.deny(
            "OomScoreAdj",
            "a negative OOM score would make the host kill other processes before this container's",
        ));
    }
    check_port_bindings(hc)?;
    // Annotations (API 1.43) would go to the runtime; they are not in 20.10's model, so the decoder drops them.
    Ok(())
}

/// The cgroup and device fields of Docker's `Resources`, which both create and update carry.
fn check_resources(obj: &Obj) -> Result<(), Deny> {
    if !obj.string("CgroupParent")?.is_empty() {
        return Err(obj.deny(
            "CgroupParent",
            "a cgroup parent would move the container into another part of the host's cgroup tree",
        ));
    }
    let devices = [
        ("Devices", "host devices may not be mapped into containers on this service"),
        ("DeviceCgroupRules", "device cgroup rules would let the container open host devices"),
        ("DeviceRequests", "device requests (GPUs and other host devices) are not available on this service"),
    ];
    for (field, reason) in devices {
        if !obj.list(field)?.is_empty() {
            return Err(obj.deny(field, reason));
        }
    }
    // RLIMIT_RTPRIO lets a process take real-time priority without CAP_SYS_NICE; a real-time busy loop is not bound
    // by the container's CPU share and starves the host and every other tenant on its CPUs.
    for ulimit in obj.list("Ulimits")? {
        let ulimit = obj.element("Ulimits", ulimit)?;
        let name = ulimit.string("Name")?;
        let raises = ulimit.number("Soft")?.unwrap_or(0.0) != 0.0 || ulimit.number("Hard")?.unwrap_or(0.0) != 0.0;
        // Docker upper-cases the name with Go's Unicode rules ("rtprıo" is RTPRIO), so a non-ASCII name is refused.
        if !name.is_ascii() || (name.eq_ignore_ascii_case("rtprio") && raises) {
            return Err(obj.deny("Ulimits", format!("the {name:?} limit may not be raised on this service")));
        }
    }
    Ok(())
}

/// Binds, Mounts, the volume driver and tmpfs options: nothing may mount a host path.
fn check_storage(hc: &Obj) -> Result<(), Deny> {
    for bind in hc.strings("Binds")? {
        // The engine's Linux parser: "target", "source:target" or "source:target:mode"; a source that is not a
        // volume name is a host path (the CLI makes `.` and `~` paths absolute; the API takes them as names, which
        // the local driver refuses; either way they are no volume name).
        let parts: Vec<&str> = bind.splitn(4, ':').collect();
        if parts.len() > 1 && !is_volume_name(parts[0]) {
            return Err(hc.deny(
                "Binds",
                format!("{bind:?} would mount the host path {:?}; only named volumes may be mounted", parts[0]),
            ));
        }
    }
    for mount in hc.list("Mounts")? {
        let mount = hc.element("Mounts", mount)?;
        let target = mount.string("Target")?;
        match mount.string("Type")? {
            "volume" => {
                let source = mount.string("Source")?;
                if !source.is_empty() && !is_volume_name(source) {
                    return Err(mount.deny(
                        "Source",
                        format!(
                            "{source:?} (mounted at {target:?}) is not a volume name; host paths may not be mounted"
                        ),
                    ));
                }
                // A volume that does not exist yet is created with these driver options.
                if let Some(options) = mount.object("VolumeOptions")? {
                    if let Some(driver) = options.object("DriverConfig")? {
                        check_volume_driver(&driver, "Name")?;
                        if let Some(opts) = driver.map("Options")? {
                            check_local_volume_options(opts, &driver.name("Options"))?;
                        }
                    }
                }
            }
            "tmpfs" => {}
            "bind" => {
                return Err(mount.deny(
                    "Type",
                    format!("bind mounts of host paths are not allowed (mount at {target:?}); use a named volume"),
                ))
            }
            other => {
                return Err(mount.deny(
                    "Type",
                    format!("mounts of type {other:?} are not allowed (mount at {target:?}); use volume or tmpfs"),
                ))
            }
        }
    }
    check_volume_driver(hc, "VolumeDriver")?;
    // Per-container storage options: every storage driver takes only "size"; anything else is refused, not guessed.
    if let Some(key) = hc.map("StorageOpt")?.and_then(|opts| opts.keys().find(|key| key.as_str() != "size")) {
        return Err(hc.deny("StorageOpt", format!("the storage option {key:?} is not allowed; only size is")));
    }
    // Tmpfs options are mount(8) options: "bind" would turn the tmpfs into a bind mount of a path on the host.
    if let Some(tmpfs) = hc.map("Tmpfs")? {
        for (target, options) in tmpfs {
            let options = options.as_str().ok_or_else(|| hc.deny("Tmpfs", "options must be a string"))?;
            if let Some(flag) = options.split(',').find(|o| is_bind_flag(o)) {
                return Err(hc.deny("Tmpfs", format!("the option {flag:?} (at {target:?}) is not allowed")));
            }
        }
    }
    Ok(())
}

/// A volume driver field (`VolumeDriver`, a volume's `Driver`, a mount's `DriverConfig.Name`): only the local driver,
/// whose options this module can judge; a plugin may do anything on the host.
fn check_volume_driver(obj: &Obj, field: &str) -> Result<(), Deny> {
    let driver = obj.string(field)?;
    if matches!(driver, "" | "local") {
        Ok(())
    } else {
        Err(obj.deny(field, format!("the volume driver {driver:?} is not available; only local is")))
    }
}

/// The local driver runs `mount -t <type> -o <o> <device>` on the host, in the host's mount and network namespaces:
/// `o=bind` mounts a host path, a device path mounts a host disk, nfs/cifs reach servers from the host's network.
/// Only tmpfs, the one type that touches nothing outside the volume, may take options.
fn check_local_volume_options(opts: &Map<String, Value>, field: &str) -> Result<(), Deny> {
    if let Some(unknown) = opts.keys().find(|k| !matches!(k.as_str(), "type" | "device" | "o" | "size")) {
        return Err(Deny::new(field, format!("unknown local volume option {unknown:?}")));
    }
    let get = |key: &str| match opts.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(Deny::new(field, format!("the option {key:?} must be a string"))),
    };
    let (kind, device, options) = (get("type")?, get("device")?, get("o")?);
    if let Some(flag) = options.split(',').find(|o| is_bind_flag(o)) {
        return Err(Deny::new(field, format!("o={flag} would mount a host path; bind mounts are not allowed")));
    }
    if (!kind.is_empty() || !device.is_empty() || !options.is_empty()) && kind != "tmpfs" {
        return Err(Deny::new(
            field,
            format!("volumes of type {kind:?} are mounted by the engine host; only type=tmpfs may take mount options"),
        ));
    }
    if device.contains('/') {
        return Err(Deny::new(field, format!("device={device} is a host path; a tmpfs volume takes device=tmpfs")));
    }
    Ok(())
}

/// Mount options that make a mount refer to a path of the mounting side (the host) rather than a new filesystem.
fn is_bind_flag(option: &str) -> bool {
    let option = option.trim();
    ["bind", "rbind", "move"].iter().any(|flag| option.eq_ignore_ascii_case(flag))
}

/// The local driver's volume name rule. Anything else in a volume's place is a path.
fn is_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_default_capability(cap: &str) -> bool {
    // Docker upper-cases with Go's Unicode rules ("ſys_admin" is SYS_ADMIN), so only ASCII names are judged.
    let upper = cap.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    cap.is_ascii() && DEFAULT_CAPABILITIES.contains(&bare)
}

fn capability_reason(cap: &str) -> String {
    if cap.eq_ignore_ascii_case("all") {
        "ALL would grant every capability; only Docker's default capabilities may be added".to_string()
    } else {
        format!("{cap:?} is outside Docker's default capability set and may not be added")
    }
}

/// PID, IPC, UTS, user, cgroup and network namespaces: never the host's, another container's only if it is the
/// tenant's own.
fn check_namespaces(hc: &Obj, rules: &EscapeRules, own: &dyn OwnContainers) -> Result<(), Deny> {
    // (field, what it shares, values allowed besides "container:X", whether "container:X" is a Docker option)
    let modes: [(&str, &str, &[&str], bool); 6] = [
        ("PidMode", "PID namespace", &[""], true),
        ("IpcMode", "IPC namespace", &["", "none", "private", "shareable"], true),
        ("UTSMode", "UTS namespace", &[""], false),
        ("UsernsMode", "user namespace", &[""], false),
        ("CgroupnsMode", "cgroup namespace", &["", "private"], false),
        ("Cgroup", "cgroup", &[""], true),
    ];
    for (field, what, allowed, container) in modes {
        let mode = hc.string(field)?;
        if allowed.contains(&mode) {
            continue;
        }
        let reason = match container_ref(mode) {
            Some(other) if container && own.owns(other) => continue,
            Some(other) if container => {
                format!("only your own containers' {what} may be joined, and {other:?} is not one")
            }
            _ if mode == "host" => format!("the host's {what} may not be shared"),
            _ => format!("{mode:?} is not an allowed mode"),
        };
        return Err(hc.deny(field, reason));
    }
    if rules.network_authorization {
        let mode = hc.string("NetworkMode")?;
        if mode.eq_ignore_ascii_case("host") {
            return Err(hc.deny("NetworkMode", "the host network is not available on this service"));
        }
        if let Some(other) = container_ref(mode) {
            if !own.owns(other) {
                return Err(hc.deny(
                    "NetworkMode",
                    format!("only your own containers' network may be joined, and {other:?} is not one"),
                ));
            }
        }
    }
    Ok(())
}

/// `X` in "container:X", as Docker splits it.
fn container_ref(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// Security options, parsed as the engine does (`=` or, deprecated, `:` between key and value). Allowed: turning
/// no-new-privileges on and naming the default AppArmor profile; everything else weakens confinement or is unknown.
fn check_security_opts(hc: &Obj) -> Result<(), Deny> {
    for opt in hc.strings("SecurityOpt")? {
        if opt == "no-new-privileges" {
            continue;
        }
        let (key, value) = opt.split_once('=').or_else(|| opt.split_once(':')).unwrap_or((opt, ""));
        let reason = match key {
            // Go's strconv.ParseBool spellings of true; the engine takes every other spelling of false as false.
            "no-new-privileges" if matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True") => continue,
            "no-new-privileges" => "no-new-privileges may not be turned off".to_string(),
            "apparmor" if value == "docker-default" => continue,
            "apparmor" if value == "unconfined" => "AppArmor may not be disabled".to_string(),
            "apparmor" => "only the default AppArmor profile (docker-default) is allowed".to_string(),
            "seccomp" if value == "unconfined" => "seccomp may not be disabled".to_string(),
            // A custom profile, inline or by name, can allow every system call: only the engine's default is safe.
            "seccomp" => "custom seccomp profiles are not allowed; the default profile applies".to_string(),
            "label" if value == "disable" => "SELinux separation may not be disabled".to_string(),
            // type/user/role/level would put the container in another SELinux context, e.g. another's MCS level.
            "label" => "custom SELinux labels are not allowed".to_string(),
            "systempaths" => "the host's /proc and /sys paths may not be unmasked".to_string(),
            _ => "unknown security option".to_string(),
        };
        return Err(hc.deny("SecurityOpt", format!("{opt:?}: {reason}")));
    }
    Ok(())
}

/// MaskedPaths/ReadonlyPaths replace Docker's defaults: the CLI's `systempaths=unconfined` sends `[]`, and any list
/// missing a default unmasks it (e.g. /proc/kcore, the host's memory). Absent or null keeps the defaults.
fn check_system_paths(hc: &Obj, field: &str, defaults: &[&str]) -> Result<(), Deny> {
    if hc.get(field)?.is_none() {
        return Ok(());
    }
    let given = hc.strings(field)?;
    if given.is_empty() {
        return Err(hc.deny(field, "an empty list would expose the host's /proc and /sys paths"));
    }
    match defaults.iter().find(|path| !given.contains(path)) {
        Some(missing) => Err(hc.deny(field, format!("the list must keep Docker's default {missing}"))),
        None => Ok(()),
    }
}

/// Only sysctls of a namespace the container owns: `net.*` in its own network namespace, the IPC ones in its own
/// IPC namespace. Every other sysctl is global and would change the host kernel for everyone.
fn check_sysctls(hc: &Obj, rules: &EscapeRules, own: &dyn OwnContainers) -> Result<(), Deny> {
    let Some(sysctls) = hc.map("Sysctls")? else {
        return Ok(());
    };
    let network = hc.string("NetworkMode")?;
    // With network authorization off, an own container may itself sit in the host's network namespace.
    let host_network = network.eq_ignore_ascii_case("host")
        || container_ref(network).is_some_and(|other| !rules.network_authorization || !own.owns(other));
    let host_ipc = hc.string("IpcMode")? == "host";
    for key in sysctls.keys() {
        // Only plain dotted names: runc turns dots into slashes, so a name with a slash could walk out of its
        // prefix ("net/../kernel/...").
        let well_formed = key
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')));
        let reason = if !well_formed {
            format!("{key:?} is not a sysctl name; write it with dots")
        } else if key.starts_with("net.") {
            if !host_network {
                continue;
            }
            format!("{key} would change the host's network namespace")
        } else if IPC_SYSCTLS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            if !host_ipc {
                continue;
            }
            format!("{key} would change the host's IPC namespace")
        } else {
            format!("{key} is not namespaced: it would change the host kernel for every container")
        };
        return Err(hc.deny("Sysctls", reason));
    }
    Ok(())
}

/// A published port's host address must be an address of the engine host's network, not its loopback or
/// link-local one. A port published on `::1` binds beside a host service that listens on `127.0.0.1` only (and
/// the other way round), so the host's own clients of `localhost` would reach the tenant's container; and a
/// tenant, a remote client, has no use for the engine host's loopback.
fn check_port_bindings(hc: &Obj) -> Result<(), Deny> {
    let Some(ports) = hc.map("PortBindings")? else {
        return Ok(());
    };
    for bindings in ports.values() {
        let bindings = match bindings {
            Value::Null => continue,
            Value::Array(list) => list,
            _ => return Err(hc.deny("PortBindings", "each port's bindings must be a list")),
        };
        for binding in bindings {
            let ip = hc.element("PortBindings", binding)?.string("HostIp")?;
            if ip.is_empty() {
                continue;
            }
            let Ok(addr) = ip.parse::<IpAddr>() else {
                return Err(hc.deny("PortBindings", format!("HostIp {ip:?} is not an IP address")));
            };
            if is_host_private(&addr) {
                return Err(hc.deny(
                    "PortBindings",
                    format!(
                        "HostIp {ip}: ports may not be published on the engine host's loopback or link-local addresses"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Loopback and link-local addresses, IPv4, IPv6 and IPv4 in IPv6.
fn is_host_private(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local(),
        IpAddr::V6(a) => {
            a.is_loopback()
                || (a.segments()[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_link_local())
        }
    }
}

/// `docker top`'s `ps_args` go to the host's `ps`, which sees every process of the host; dockerd keeps the rows
/// whose PID column is one of the container's, and quotes a PID it cannot parse in its error. A format that
/// renames a column to PID (`-ocgroup=PID`), or puts a column with spaces before it (`-oargs,pid`), makes that
/// error show another tenant's or the host's processes. So a tenant may use the usual forms, or a format list
/// that starts with `pid`.
pub fn check_top_args(ps_args: &str) -> Result<(), Deny> {
    const USUAL: [&str; 14] =
        ["", "-ef", "-eF", "-ely", "-el", "-e", "-f", "-F", "-A", "aux", "-aux", "auxw", "auxww", "-efww"];
    let args = ps_args.trim();
    if USUAL.contains(&args) {
        return Ok(());
    }
    let mut tokens: Vec<&str> = args.split_whitespace().collect();
    if matches!(tokens.first(), Some(&"-e") | Some(&"-A")) {
        tokens.remove(0);
    }
    let list = match tokens.as_slice() {
        ["-o" | "-eo" | "-Ao", list] => Some(*list),
        [one] => one.strip_prefix("-o").or_else(|| one.strip_prefix("-eo")).or_else(|| one.strip_prefix("-Ao")),
        _ => None,
    };
    let format_ok = list.is_some_and(|l| {
        let fields: Vec<&str> = l.split(',').collect();
        fields.first() == Some(&"pid")
            && fields
                .iter()
                .all(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '%')))
    });
    if format_ok {
        return Ok(());
    }
    Err(Deny::new(
        "ps_args",
        format!(
            "{args:?} is not allowed on this service; use -ef, aux, or a format that starts with pid (-o pid,comm)"
        ),
    ))
}

/// A working directory in /proc (e.g. /proc/self/fd/N) is how CVE-2024-21626 leaked a host directory into the
/// container through runc before 1.1.12; no legitimate container works there.
fn check_working_dir(obj: &Obj) -> Result<(), Deny> {
    let dir = obj.string("WorkingDir")?;
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    if parts.first() == Some(&"proc") {
        return Err(obj.deny("WorkingDir", format!("{dir:?} is inside /proc, which is not allowed")));
    }
    Ok(())
}

/// A JSON object as Go decodes it into a struct, with the path that names its fields in refusals.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn root(body: &'a Value) -> Result<Obj<'a>, Deny> {
        match body {
            Value::Object(map) => Ok(Obj { map, path: String::new() }),
            _ => Err(Deny::new("", "the request body must be a JSON object")),
        }
    }

    /// The API's name for `field` of this object, e.g. "HostConfig.Privileged".
    fn name(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.path)
        }
    }

    fn deny(&self, field: &str, reason: impl Into<String>) -> Deny {
        Deny::new(self.name(field), reason)
    }

    /// The value of struct field `field` in the canonical document ([`crate::api::decode`]), which holds each
    /// field once, under Docker's spelling; null reads as absent.
    fn get(&self, field: &str) -> Result<Option<&'a Value>, Deny> {
        Ok(self.map.get(field).filter(|value| !value.is_null()))
    }

    fn flag(&self, field: &str) -> Result<bool, Deny> {
        match self.get(field)? {
            None => Ok(false),
            Some(value) => value.as_bool().ok_or_else(|| self.deny(field, "must be true or false")),
        }
    }

    fn string(&self, field: &str) -> Result<&'a str, Deny> {
        match self.get(field)? {
            None => Ok(""),
            Some(value) => value.as_str().ok_or_else(|| self.deny(field, "must be a string")),
        }
    }

    fn number(&self, field: &str) -> Result<Option<f64>, Deny> {
        match self.get(field)? {
            None => Ok(None),
            Some(value) => value.as_f64().map(Some).ok_or_else(|| self.deny(field, "must be a number")),
        }
    }

    fn list(&self, field: &str) -> Result<&'a [Value], Deny> {
        match self.get(field)? {
            None => Ok(&[]),
            Some(value) => value.as_array().map(Vec::as_slice).ok_or_else(|| self.deny(field, "must be a list")),
        }
    }

    fn strings(&self, field: &str) -> Result<Vec<&'a str>, Deny> {
        self.list(field)?
            .iter()
            .map(|value| value.as_str().ok_or_else(|| self.deny(field, "must be a list of strings")))
            .collect()
    }

    /// Docker's `StrSlice` (CapAdd, CapDrop, Cmd): a list of strings, or one string.
    fn str_slice(&self, field: &str) -> Result<Vec<&'a str>, Deny> {
        match self.get(field)? {
            Some(Value::String(one)) => Ok(vec![one.as_str()]),
            _ => self.strings(field),
        }
    }

    /// A Go map field (Sysctls, DriverOpts, ...): its keys are data, matched exactly.
    fn map(&self, field: &str) -> Result<Option<&'a Map<String, Value>>, Deny> {
        match self.get(field)? {
            None => Ok(None),
            Some(value) => value.as_object().map(Some).ok_or_else(|| self.deny(field, "must be an object")),
        }
    }

    /// A nested struct field, e.g. "HostConfig".
    fn object(&self, field: &str) -> Result<Option<Obj<'a>>, Deny> {
        Ok(self.map(field)?.map(|map| Obj { map, path: self.name(field) }))
    }

    /// An element of the list `field` that is itself a struct (a mount, a ulimit, a port binding).
    fn element(&self, field: &str, value: &'a Value) -> Result<Obj<'a>, Deny> {
        match value {
            Value::Object(map) => Ok(Obj { map, path: self.name(field) }),
            _ => Err(self.deny(field, "each entry must be an object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Runs `body` through the check for `endpoint` ("create", "create-nonet" with network authorization off,
    /// "update", "exec", "volume") and compares the refused field, if any. The tenant owns the container "mine".
    /// The body goes through the decoder first, as in the gateway: the checks see its canonical document, and a
    /// body the decoder refuses is refused at the field it names.
    fn check(endpoint: &str, body: Value, expected: Result<(), &str>) {
        use crate::api::decode::{decode, BodyKind};
        let rules = EscapeRules { network_authorization: endpoint != "create-nonet" };
        let own = |reference: &str| reference == "mine";
        let kind = match endpoint {
            "create" | "create-nonet" => BodyKind::ContainerConfig,
            "update" => BodyKind::ContainerUpdate,
            "exec" => BodyKind::ExecConfig,
            "volume" => BodyKind::VolumeCreate,
            _ => panic!("unknown endpoint {endpoint}"),
        };
        let body = match decode(kind, body.to_string().as_bytes()) {
            Ok(doc) => doc,
            Err(e) => {
                assert_eq!(Err(e.field.as_str()), expected, "{endpoint} {body}: {e}");
                return;
            }
        };
        let got = match endpoint {
            "create" | "create-nonet" => check_create(&body, &rules, &own),
            "update" => check_update(&body, &rules),
            "exec" => check_exec(&body),
            "volume" => check_volume_create(&body),
            _ => panic!("unknown endpoint {endpoint}"),
        };
        if let Err(deny) = &got {
            assert!(!deny.reason.is_empty() && deny.message().starts_with(&deny.field), "{deny:?}");
        }
        assert_eq!(got.as_ref().map(|_| ()).map_err(|d| d.field.as_str()), expected, "{endpoint} {body}: {got:?}");
    }

    fn hc(host_config: Value) -> Value {
        json!({"Image": "busybox", "HostConfig": host_config})
    }

    #[test]
    fn plain_containers_pass() {
        check("create", json!({"Image": "busybox", "Cmd": ["sh"]}), Ok(()));
        check("create", json!({"Image": "busybox", "User": "0"}), Ok(()));
        check("create", json!({"Image": "busybox", "User": "root", "Volumes": {"/data": {}}}), Ok(()));
        check(
            "create",
            hc(json!({"Memory": 0, "Privileged": false, "Dns": ["8.8.8.8"], "ExtraHosts": ["a:1.2.3.4"]})),
            Ok(()),
        );
        check(
            "create",
            hc(json!({"OomKillDisable": true, "PidsLimit": 100, "ShmSize": 67108864, "Init": true})),
            Ok(()),
        );
        check(
            "create",
            hc(json!({"VolumesFrom": ["other"], "Links": ["other:db"], "RestartPolicy": {"Name": "always"}})),
            Ok(()),
        );
        check("create", hc(Value::Null), Ok(()));
        check("create", json!([]), Err(""));
        check("create", json!({"HostConfig": []}), Err("HostConfig"));
    }

    #[test]
    fn privileged() {
        check("create", hc(json!({"Privileged": true})), Err("HostConfig.Privileged"));
        check("create", hc(json!({"Privileged": false})), Ok(()));
        check("create", hc(json!({"Privileged": "true"})), Err("HostConfig.Privileged"));
        // Go's decoder matches field names case-insensitively, with Unicode folding.
        check("create", json!({"hostconfig": {"privileged": true}}), Err("HostConfig.Privileged"));
        check("create", json!({"HOSTCONFIG": {"PRIVILEGED": false}}), Ok(()));
        check("create", json!({"Ho\u{17F}tConfig": {"Privileged": true}}), Err("HostConfig.Privileged"));
        // Two spellings of one field: Go merges both objects; refused whatever they hold.
        check("create", json!({"HostConfig": {"Privileged": true}, "hostConfig": {}}), Err("HostConfig"));
        check("create", hc(json!({"Privileged": false, "privileged": true})), Err("HostConfig.Privileged"));
        // The pre-1.2x layout: HostConfig fields at the top level, which Docker 20.10 still reads; the decoder makes
        // them the HostConfig, or merges the five fields dockerd merges, and drops the rest as dockerd ignores them.
        check("create", json!({"Image": "busybox", "Privileged": true}), Err("HostConfig.Privileged"));
        check("create", json!({"Image": "busybox", "Binds": ["/:/host"]}), Err("HostConfig.Binds"));
        check("create", json!({"Image": "busybox", "HostConfig": {}, "Binds": ["/:/host"]}), Ok(()));
        check(
            "create",
            json!({"Image": "busybox", "HostConfig": {}, "VolumeDriver": "evil"}),
            Err("HostConfig.VolumeDriver"),
        );
    }

    #[test]
    fn capabilities() {
        check("create", hc(json!({"CapAdd": ["SYS_ADMIN"]})), Err("HostConfig.CapAdd"));
        check("create", hc(json!({"CapAdd": ["CAP_SYS_ADMIN"]})), Err("HostConfig.CapAdd"));
        check("create", hc(json!({"CapAdd": ["sys_ptrace"]})), Err("HostConfig.CapAdd"));
        check("create", hc(json!({"CapAdd": ["cap_net_admin"]})), Err("HostConfig.CapAdd"));
        check("create", hc(json!({"CapAdd": ["ALL"]})), Err("HostConfig.CapAdd"));
        check("create", hc(json!({"CapAdd": ["all"]})), Err("HostConfig.CapAdd"));
        // Docker's StrSlice takes one string as well as a list.
        check("create", hc(json!({"CapAdd": "SYS_ADMIN"})), Err("HostConfig.CapAdd"));
        // Go upper-cases "ſ" to "S": non-ASCII names are refused.
        check("create", hc(json!({"CapAdd": ["\u{17F}ys_admin"]})), Err("HostConfig.CapAdd"));
        check("create", hc(json!({"CapAdd": ["NET_BIND_SERVICE", "cap_chown", "Cap_Kill", "audit_write"]})), Ok(()));
        check("create", hc(json!({"CapAdd": "NET_RAW"})), Ok(()));
        check("create", hc(json!({"CapDrop": ["ALL"], "CapAdd": ["CHOWN"]})), Ok(()));
        // API 1.40's Capabilities is not read by 20.10, so the decoder drops it and it never reaches the engine.
        check("create", hc(json!({"Capabilities": ["CAP_SYS_ADMIN"]})), Ok(()));
    }

    #[test]
    fn devices_and_cgroups() {
        let device = json!({"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"});
        check("create", hc(json!({"Devices": [device]})), Err("HostConfig.Devices"));
        check("create", hc(json!({"Devices": []})), Ok(()));
        check("create", hc(json!({"DeviceCgroupRules": ["c 1:3 mr"]})), Err("HostConfig.DeviceCgroupRules"));
        check("create", hc(json!({"DeviceCgroupRules": []})), Ok(()));
        check(
            "create",
            hc(json!({"DeviceRequests": [{"Driver": "nvidia", "Count": -1}]})),
            Err("HostConfig.DeviceRequests"),
        );
        check("create", hc(json!({"DeviceRequests": null})), Ok(()));
        check("create", hc(json!({"CgroupParent": "/"})), Err("HostConfig.CgroupParent"));
        check("create", hc(json!({"CgroupParent": ""})), Ok(()));
        check("create", hc(json!({"CgroupnsMode": "host"})), Err("HostConfig.CgroupnsMode"));
        check("create", hc(json!({"CgroupnsMode": "private"})), Ok(()));
        check("create", hc(json!({"Cgroup": "container:theirs"})), Err("HostConfig.Cgroup"));
        check("create", hc(json!({"Cgroup": "container:mine"})), Ok(()));
        check(
            "create",
            hc(json!({"Ulimits": [{"Name": "rtprio", "Soft": 99, "Hard": 99}]})),
            Err("HostConfig.Ulimits"),
        );
        check("create", hc(json!({"Ulimits": [{"Name": "RTPRIO", "Soft": 0, "Hard": 1}]})), Err("HostConfig.Ulimits"));
        check(
            "create",
            hc(json!({"Ulimits": [{"Name": "rtpr\u{131}o", "Soft": 1, "Hard": 1}]})),
            Err("HostConfig.Ulimits"),
        );
        check("create", hc(json!({"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 4096}]})), Ok(()));
        check("create", hc(json!({"Ulimits": [{"Name": "rtprio", "Soft": 0, "Hard": 0}]})), Ok(()));
    }

    #[test]
    fn update_resources() {
        check("update", json!({"Memory": 314572800, "RestartPolicy": {"Name": "always"}}), Ok(()));
        check("update", json!({"CgroupParent": "/system.slice"}), Err("CgroupParent"));
        check("update", json!({"cgroupparent": ""}), Ok(()));
        check("update", json!({"Devices": [{"PathOnHost": "/dev/mem"}]}), Err("Devices"));
        check("update", json!({"devicecgrouprules": ["a *:* rwm"]}), Err("DeviceCgroupRules"));
        check("update", json!({"DeviceRequests": [{"Count": 1}]}), Err("DeviceRequests"));
        check("update", json!({"Devices": [], "DeviceCgroupRules": [], "DeviceRequests": []}), Ok(()));
        check("update", json!({"Ulimits": [{"Name": "rtprio", "Hard": 99}]}), Err("Ulimits"));
        check("update", json!("Memory"), Err(""));
    }

    #[test]
    fn exec() {
        check("exec", json!({"Cmd": ["sh"], "Privileged": true}), Err("Privileged"));
        check("exec", json!({"cmd": ["sh"], "privileged": true}), Err("Privileged"));
        check("exec", json!({"Cmd": ["sh"], "Privileged": false, "User": "0"}), Ok(()));
        check("exec", json!({"Cmd": ["sh"], "WorkingDir": "/proc/self/fd/7"}), Err("WorkingDir"));
        check("exec", json!({"Cmd": ["sh"], "WorkingDir": "/srv/proc"}), Ok(()));
    }

    #[test]
    fn binds() {
        check("create", hc(json!({"Binds": ["/etc:/host-etc"]})), Err("HostConfig.Binds"));
        check("create", hc(json!({"Binds": ["/:/host:ro"]})), Err("HostConfig.Binds"));
        check("create", hc(json!({"Binds": ["./data:/data"]})), Err("HostConfig.Binds"));
        check("create", hc(json!({"Binds": ["~/data:/data"]})), Err("HostConfig.Binds"));
        check("create", hc(json!({"Binds": ["../x:/data"]})), Err("HostConfig.Binds"));
        check("create", hc(json!({"Binds": [".:/data"]})), Err("HostConfig.Binds"));
        check("create", hc(json!({"Binds": ["data:/data", "cache_1.x-y:/cache:ro,nocopy", "/anonymous"]})), Ok(()));
        check("create", hc(json!({"binds": "data:/data"})), Err("HostConfig.Binds"));
    }

    #[test]
    fn mounts() {
        let mount = |m: Value| hc(json!({"Mounts": [m]}));
        check(
            "create",
            mount(json!({"Type": "bind", "Source": "/", "Target": "/host"})),
            Err("HostConfig.Mounts.Type"),
        );
        check(
            "create",
            mount(json!({"type": "bind", "source": "/", "target": "/host"})),
            Err("HostConfig.Mounts.Type"),
        );
        check(
            "create",
            mount(json!({"Type": "BIND", "Source": "/", "Target": "/host"})),
            Err("HostConfig.Mounts.Type"),
        );
        check("create", mount(json!({"Type": "npipe", "Source": "x", "Target": "/x"})), Err("HostConfig.Mounts.Type"));
        check("create", mount(json!({"Source": "data", "Target": "/x"})), Err("HostConfig.Mounts.Type"));
        check("create", mount(json!({"Type": "volume", "Source": "data", "Target": "/data"})), Ok(()));
        check("create", mount(json!({"Type": "volume", "Target": "/anonymous"})), Ok(()));
        check(
            "create",
            mount(json!({"Type": "volume", "Source": "/etc", "Target": "/x"})),
            Err("HostConfig.Mounts.Source"),
        );
        check(
            "create",
            mount(json!({"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 1048576}})),
            Ok(()),
        );
        let with_driver = |driver: Value| {
            mount(json!({"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"DriverConfig": driver}}))
        };
        let field = "HostConfig.Mounts.VolumeOptions.DriverConfig.Options";
        check(
            "create",
            with_driver(json!({"Name": "local", "Options": {"type": "none", "o": "bind", "device": "/"}})),
            Err(field),
        );
        check("create", with_driver(json!({"Options": {"type": "ext4", "device": "/dev/sda1"}})), Err(field));
        check(
            "create",
            with_driver(json!({"Name": "sshfs"})),
            Err("HostConfig.Mounts.VolumeOptions.DriverConfig.Name"),
        );
        check(
            "create",
            with_driver(json!({"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}})),
            Ok(()),
        );
        check("create", with_driver(json!({"Name": "local"})), Ok(()));
        check(
            "create",
            mount(json!({"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"NoCopy": true}})),
            Ok(()),
        );
    }

    #[test]
    fn volume_drivers_and_tmpfs() {
        check("create", hc(json!({"VolumeDriver": "sshfs"})), Err("HostConfig.VolumeDriver"));
        check("create", hc(json!({"VolumeDriver": "local"})), Ok(()));
        check("create", hc(json!({"Tmpfs": {"/run": "bind"}})), Err("HostConfig.Tmpfs"));
        check("create", hc(json!({"Tmpfs": {"/run": "rw,rbind"}})), Err("HostConfig.Tmpfs"));
        check("create", hc(json!({"Tmpfs": {"/run": "rw,noexec,nosuid,size=65536k", "/tmp": ""}})), Ok(()));
    }

    #[test]
    fn volume_create() {
        check("volume", json!({"Name": "data"}), Ok(()));
        check("volume", json!({"Name": "data", "Driver": "local", "Labels": {"a": "b"}}), Ok(()));
        check("volume", json!({"Name": "data", "Driver": "sshfs"}), Err("Driver"));
        check("volume", json!({"DriverOpts": {"type": "none", "o": "bind", "device": "/etc"}}), Err("DriverOpts"));
        check("volume", json!({"DriverOpts": {"type": "none", "o": "ro,rbind", "device": "/etc"}}), Err("DriverOpts"));
        check("volume", json!({"driveropts": {"o": "bind"}}), Err("DriverOpts"));
        check("volume", json!({"DriverOpts": {"type": "none", "device": "/etc"}}), Err("DriverOpts"));
        check("volume", json!({"DriverOpts": {"type": "ext4", "device": "/dev/sda1"}}), Err("DriverOpts"));
        check(
            "volume",
            json!({"DriverOpts": {"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"}}),
            Err("DriverOpts"),
        );
        check("volume", json!({"DriverOpts": {"type": "tmpfs", "device": "/dev/sda1"}}), Err("DriverOpts"));
        check("volume", json!({"DriverOpts": {"mountpoint": "/"}}), Err("DriverOpts"));
        check("volume", json!({"DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=100m,uid=1000"}}), Ok(()));
        check("volume", json!({"DriverOpts": {"size": "10G"}}), Ok(()));
        check("volume", json!({"DriverOpts": {}}), Ok(()));
    }

    #[test]
    fn namespaces() {
        for field in ["PidMode", "IpcMode", "UTSMode", "UsernsMode"] {
            let host_config = format!("HostConfig.{field}");
            check("create", hc(json!({field: "host"})), Err(&host_config));
            check("create", hc(json!({field.to_lowercase(): "host"})), Err(&host_config));
            check("create", hc(json!({field: "HOST"})), Err(&host_config));
            check("create", hc(json!({field: ""})), Ok(()));
        }
        check("create", hc(json!({"PidMode": "container:mine"})), Ok(()));
        check("create", hc(json!({"PidMode": "container:theirs"})), Err("HostConfig.PidMode"));
        check("create", hc(json!({"IpcMode": "container:mine"})), Ok(()));
        check("create", hc(json!({"IpcMode": "container:theirs"})), Err("HostConfig.IpcMode"));
        check("create", hc(json!({"IpcMode": "private"})), Ok(()));
        check("create", hc(json!({"IpcMode": "shareable"})), Ok(()));
        check("create", hc(json!({"IpcMode": "none"})), Ok(()));
        // No Docker option joins another container's UTS or user namespace.
        check("create", hc(json!({"UTSMode": "container:mine"})), Err("HostConfig.UTSMode"));
        check("create", hc(json!({"UsernsMode": "container:mine"})), Err("HostConfig.UsernsMode"));
        // The network checks obey SWARM_NETWORK_AUTHORIZATION; the others do not.
        check("create-nonet", hc(json!({"PidMode": "host"})), Err("HostConfig.PidMode"));
        check("create-nonet", hc(json!({"IpcMode": "container:theirs"})), Err("HostConfig.IpcMode"));
    }

    #[test]
    fn network() {
        check("create", hc(json!({"NetworkMode": "host"})), Err("HostConfig.NetworkMode"));
        check("create", hc(json!({"networkmode": "Host"})), Err("HostConfig.NetworkMode"));
        check("create", hc(json!({"NetworkMode": "container:theirs"})), Err("HostConfig.NetworkMode"));
        check("create", hc(json!({"NetworkMode": "container:mine"})), Ok(()));
        check("create", hc(json!({"NetworkMode": "bridge"})), Ok(()));
        check("create", hc(json!({"NetworkMode": "backend"})), Ok(()));
        let endpoints = |name: &str| json!({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {name: {}}}});
        check("create", endpoints("host"), Err("NetworkingConfig.EndpointsConfig"));
        check("create", endpoints("backend"), Ok(()));
        check("create-nonet", hc(json!({"NetworkMode": "host"})), Ok(()));
        check("create-nonet", hc(json!({"NetworkMode": "container:theirs"})), Ok(()));
        check("create-nonet", endpoints("host"), Ok(()));
    }

    #[test]
    fn security_opts() {
        let opts = |opt: &str| hc(json!({"SecurityOpt": [opt]}));
        for refused in [
            "seccomp=unconfined",
            "seccomp:unconfined",
            "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}",
            "seccomp=/etc/profile.json",
            "apparmor=unconfined",
            "apparmor:unconfined",
            "apparmor=my-profile",
            "label=disable",
            "label:disable",
            "disable",
            "label=type:spc_t",
            "label=user:system_u",
            "label=role:system_r",
            "label=level:s0:c100,c200",
            "no-new-privileges=false",
            "no-new-privileges:false",
            "no-new-privileges=0",
            "no-new-privileges=yes",
            "systempaths=unconfined",
            "writable-cgroups=true",
            "nonsense",
        ] {
            check("create", opts(refused), Err("HostConfig.SecurityOpt"));
        }
        for allowed in
            ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:true", "apparmor=docker-default"]
        {
            check("create", opts(allowed), Ok(()));
        }
        check(
            "create",
            hc(json!({"SecurityOpt": ["no-new-privileges", "seccomp=unconfined"]})),
            Err("HostConfig.SecurityOpt"),
        );
    }

    #[test]
    fn system_paths() {
        check("create", hc(json!({"MaskedPaths": []})), Err("HostConfig.MaskedPaths"));
        check("create", hc(json!({"ReadonlyPaths": []})), Err("HostConfig.ReadonlyPaths"));
        check("create", hc(json!({"MaskedPaths": ["/proc/kcore"]})), Err("HostConfig.MaskedPaths"));
        let mut more = DEFAULT_MASKED_PATHS.to_vec();
        more.push("/proc/cpuinfo");
        check("create", hc(json!({"MaskedPaths": more, "ReadonlyPaths": DEFAULT_READONLY_PATHS})), Ok(()));
        check("create", hc(json!({"MaskedPaths": null, "ReadonlyPaths": null})), Ok(()));
    }

    #[test]
    fn sysctls() {
        let sysctl = |key: &str| hc(json!({"Sysctls": {key: "1"}}));
        check("create", sysctl("net.ipv4.ip_forward"), Ok(()));
        check("create", sysctl("net.ipv4.conf.all.route_localnet"), Ok(()));
        check("create", sysctl("kernel.shmmax"), Ok(()));
        check("create", sysctl("kernel.msgmnb"), Ok(()));
        check("create", sysctl("kernel.sem"), Ok(()));
        check("create", sysctl("fs.mqueue.msg_max"), Ok(()));
        check("create", sysctl("kernel.core_pattern"), Err("HostConfig.Sysctls"));
        check("create", sysctl("kernel.randomize_va_space"), Err("HostConfig.Sysctls"));
        check("create", sysctl("vm.overcommit_memory"), Err("HostConfig.Sysctls"));
        check("create", sysctl("fs.file-max"), Err("HostConfig.Sysctls"));
        check("create", sysctl("net/../kernel/core_pattern"), Err("HostConfig.Sysctls"));
        check("create", sysctl("net.ipv4..ip_forward"), Err("HostConfig.Sysctls"));
        let with = |extra: Value| {
            let mut host_config = json!({"Sysctls": {"net.ipv4.ip_forward": "1"}});
            host_config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            hc(host_config)
        };
        // With network authorization off, the host's (or another tenant's) network namespace can be joined, but
        // its sysctls still may not be changed.
        check("create-nonet", with(json!({"NetworkMode": "host"})), Err("HostConfig.Sysctls"));
        check("create-nonet", with(json!({"NetworkMode": "container:theirs"})), Err("HostConfig.Sysctls"));
        check("create-nonet", with(json!({"NetworkMode": "container:mine"})), Err("HostConfig.Sysctls"));
        check("create-nonet", with(json!({"NetworkMode": "bridge"})), Ok(()));
        check("create", with(json!({"NetworkMode": "container:mine"})), Ok(()));
        check("create", hc(json!({"IpcMode": "host", "Sysctls": {"kernel.shmmax": "1"}})), Err("HostConfig.IpcMode"));
    }

    #[test]
    fn runtime_and_logs() {
        check("create", hc(json!({"Runtime": "runc"})), Ok(()));
        check("create", hc(json!({"Runtime": ""})), Ok(()));
        check("create", hc(json!({"Runtime": "nvidia"})), Err("HostConfig.Runtime"));
        check("create", hc(json!({"Runtime": "io.containerd.runsc.v1"})), Err("HostConfig.Runtime"));
        for driver in ["", "json-file", "local", "none"] {
            check("create", hc(json!({"LogConfig": {"Type": driver, "Config": {"max-size": "10m"}}})), Ok(()));
        }
        for driver in ["syslog", "gelf", "fluentd", "journald", "splunk", "JSON-FILE"] {
            let body = hc(json!({"LogConfig": {"Type": driver, "Config": {"syslog-address": "udp://10.0.0.1:514"}}}));
            check("create", body, Err("HostConfig.LogConfig.Type"));
        }
    }

    #[test]
    fn oom_ports_storage_annotations_workdir() {
        check("create", hc(json!({"OomScoreAdj": -1000})), Err("HostConfig.OomScoreAdj"));
        check("create", hc(json!({"OomScoreAdj": 500})), Ok(()));
        check("create", hc(json!({"OomScoreAdj": 0})), Ok(()));
        let publish = |ip: &str| hc(json!({"PortBindings": {"80/tcp": [{"HostIp": ip, "HostPort": "8080"}]}}));
        check("create", publish("localhost"), Err("HostConfig.PortBindings"));
        for allowed in ["", "0.0.0.0", "::", "192.0.2.10", "2001:db8::1"] {
            check("create", publish(allowed), Ok(()));
        }
        for host_private in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "169.254.1.1", "fe80::1"] {
            check("create", publish(host_private), Err("HostConfig.PortBindings"));
        }
        check("create", hc(json!({"PortBindings": {"80/tcp": null}, "PublishAllPorts": true})), Ok(()));
        check("create", hc(json!({"StorageOpt": {"size": "10G"}})), Ok(()));
        check("create", hc(json!({"StorageOpt": {"dm.basesize": "100G"}})), Err("HostConfig.StorageOpt"));
        // Annotations (API 1.43) are dropped by the decoder, as dockerd 20.10 ignores them.
        check("create", hc(json!({"Annotations": {"io.kubernetes.cri.untrusted-workload": "true"}})), Ok(()));
        check("create", json!({"Image": "busybox", "WorkingDir": "/proc/self/fd/8"}), Err("WorkingDir"));
        check("create", json!({"Image": "busybox", "WorkingDir": "/app/../proc/1/cwd"}), Err("WorkingDir"));
        check("create", json!({"Image": "busybox", "WorkingDir": "//proc"}), Err("WorkingDir"));
        check("create", json!({"Image": "busybox", "WorkingDir": "/app/proc"}), Ok(()));
    }

    #[test]
    fn messages_name_the_field() {
        let deny = check_create(&hc(json!({"Privileged": true})), &EscapeRules::default(), &|_: &str| false);
        assert_eq!(
            deny.map_err(|d| d.message()),
            Err("HostConfig.Privileged: privileged containers are not allowed on this service".to_string())
        );
        let whole = Deny::new("", "the request body must be a JSON object");
        assert_eq!(whole.to_string(), "the request body must be a JSON object");
    }

    #[test]
    fn top_args() {
        for ok in ["", "-ef", "aux", " -ef ", "-o pid,comm", "-opid,comm,args", "-eo pid,user,%cpu", "-e -o pid,args"] {
            assert_eq!(check_top_args(ok), Ok(()), "{ok:?}");
        }
        for refused in [
            "-ocgroup=PID -p14052 --sort=pid",
            "-oargs=PID -p1",
            "-o args,pid",
            "-o pid=X,comm",
            "-ef -p 1",
            "--sort=pid",
            "-o pid,comm -p1",
            "-o pid:9",
            "-o ,pid",
        ] {
            assert_eq!(check_top_args(refused).map_err(|d| d.field), Err("ps_args".to_string()), "{refused:?}");
        }
    }
}
