//! The closed set of Docker Engine API endpoints mtswarm knows.
//!
//! Every request is classified here before anything else happens, so each later phase (authentication,
//! policy, tenancy, routing) decides per endpoint with an exhaustive `match`: adding an endpoint makes the
//! compiler point at every place that must decide about it. A request that matches nothing here is never
//! forwarded.

use http::Method;

/// One Docker Engine API endpoint, with the object it names (still as the client wrote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET|HEAD /_ping`: answered by mtswarm itself.
    Ping,
    /// `GET /version`: mtswarm's identity, answered by mtswarm.
    Version,
    /// `GET /info`: the cluster as one engine, answered by mtswarm.
    Info,
    /// `GET /events`: a stream.
    Events,
    /// `GET /system/df`.
    SystemDf,
    /// `POST /auth`: registry login check.
    Auth,
    /// `GET /mtswarm/v1/usage`: what tenants hold against their quota, answered by mtswarm.
    Usage,

    /// `GET /containers/json`.
    ContainerList,
    /// `POST /containers/create`.
    ContainerCreate,
    /// `POST /containers/prune`.
    ContainerPrune,
    /// Any endpoint under `/containers/{id}`.
    Container { id: String, op: ContainerOp },

    /// Any endpoint under `/exec/{id}`.
    Exec { id: String, op: ExecOp },

    /// `GET /images/json`.
    ImageList,
    /// `POST /images/create`: pull or import.
    ImageCreate,
    /// `GET /images/search`.
    ImageSearch,
    /// `POST /images/prune`.
    ImagePrune,
    /// `GET /images/get`: save several images.
    ImagesSave,
    /// `POST /images/load`.
    ImageLoad,
    /// Any endpoint under `/images/{name}`.
    Image { name: String, op: ImageOp },
    /// `GET /distribution/{name}/json`.
    DistributionInspect { name: String },
    /// `POST /build`: the legacy builder; the body is the context tar.
    Build,
    /// `POST /build/prune`.
    BuildPrune,
    /// `POST /build/cancel`.
    BuildCancel,
    /// `POST /commit`.
    Commit,

    /// `GET /networks`.
    NetworkList,
    /// `POST /networks/create`.
    NetworkCreate,
    /// `POST /networks/prune`.
    NetworkPrune,
    /// Any endpoint under `/networks/{id}`.
    Network { id: String, op: NetworkOp },

    /// `GET /volumes`.
    VolumeList,
    /// `POST /volumes/create`.
    VolumeCreate,
    /// `POST /volumes/prune`.
    VolumePrune,
    /// Any endpoint under `/volumes/{name}`.
    Volume { name: String, op: VolumeOp },

    /// `OPTIONS` on any path: dockerd answers every one 200 (a CORS preflight).
    Options,
    /// Swarm mode (`/swarm`, `/nodes`, `/services`, `/tasks`, `/secrets`, `/configs`): mtswarm is a Swarm classic
    /// cluster whose engines are in no swarm, so it answers as a dockerd that is not in one.
    SwarmMode(SwarmOp),
    /// `GET /plugins`.
    PluginList,
    /// `GET /plugins/privileges`.
    PluginPrivileges,
    /// `POST /plugins/pull`.
    PluginPull,
    /// `POST /plugins/create`: the body is the plugin's tar.
    PluginCreate,
    /// Any endpoint under `/plugins/{name}` (names hold slashes and tags, as image names do).
    Plugin { name: String, op: PluginOp },
    /// `POST /session`: BuildKit's session, hijacked (h2c).
    Session,
    /// `POST /grpc`: BuildKit's gRPC, hijacked (h2c).
    Grpc,
    /// `/containers/{id}/checkpoints[/{checkpoint}]`: experimental; answered as an engine without experimental
    /// mode answers.
    Checkpoint { id: String, op: CheckpointOp },
}

/// A swarm mode endpoint. All of them are answered as by a dockerd that is not in a swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwarmOp {
    Inspect,
    Init,
    Join,
    Leave,
    Update,
    UnlockKey,
    Unlock,
    NodeList,
    NodeInspect,
    NodeDelete,
    NodeUpdate,
    ServiceList,
    ServiceCreate,
    ServiceInspect,
    ServiceDelete,
    ServiceUpdate,
    ServiceLogs,
    TaskList,
    TaskInspect,
    TaskLogs,
    SecretList,
    SecretCreate,
    SecretInspect,
    SecretDelete,
    SecretUpdate,
    ConfigList,
    ConfigCreate,
    ConfigInspect,
    ConfigDelete,
    ConfigUpdate,
}

/// What is done to one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginOp {
    Inspect,
    Delete,
    Enable,
    Disable,
    Upgrade,
    Push,
    Set,
}

/// What is done to a container's checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointOp {
    List,
    Create,
    Delete,
}

/// What an endpoint's request body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// A JSON document of this Docker type, decoded by [`super::decode`].
    Json(super::decode::BodyKind),
    /// Bytes the engine reads as they are (a tar archive, a build context).
    Stream,
    /// No body: dockerd reads none.
    None,
    /// No body, and a non-empty one is refused, as dockerd refuses it (a start since API 1.24).
    MustBeEmpty,
}

/// What is done to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOp {
    Inspect,
    Top,
    Logs,
    Changes,
    Export,
    Stats,
    Resize,
    Start,
    Stop,
    Restart,
    Kill,
    Update,
    Rename,
    Pause,
    Unpause,
    /// Hijacked: the connection becomes a raw stream.
    Attach,
    /// Hijacked over a websocket.
    AttachWs,
    Wait,
    Delete,
    ArchiveStat,
    ArchiveGet,
    ArchivePut,
    ExecCreate,
    /// `POST /containers/{id}/copy`: removed from the API long ago; known so that the 2016 filter name loads.
    Copy,
}

/// What is done to one exec instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOp {
    /// Hijacked unless detached.
    Start,
    Resize,
    Inspect,
}

/// What is done to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOp {
    Inspect,
    History,
    Push,
    Tag,
    Delete,
    Save,
}

/// What is done to one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkOp {
    Inspect,
    Delete,
    Connect,
    Disconnect,
}

/// What is done to one volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeOp {
    Inspect,
    Delete,
}

impl Endpoint {
    /// Classifies a request by method and path, with the version prefix already stripped.
    /// Path segments that name objects are percent-decoded.
    pub fn classify(method: &Method, path: &str) -> Option<Endpoint> {
        use Endpoint as E;
        let m = method.as_str();
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let ep = match (m, segs.as_slice()) {
            ("GET" | "HEAD", ["_ping"]) => E::Ping,
            ("GET", ["version"]) => E::Version,
            ("GET", ["info"]) => E::Info,
            ("GET", ["mtswarm", "v1", "usage"]) => E::Usage,
            ("GET", ["events"]) => E::Events,
            ("GET", ["system", "df"]) => E::SystemDf,
            ("POST", ["auth"]) => E::Auth,

            ("OPTIONS", _) => E::Options,
            ("POST", ["session"]) => E::Session,
            ("POST", ["grpc"]) => E::Grpc,
            (_, ["swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs", ..]) => {
                E::SwarmMode(swarm_op(m, &segs)?)
            }
            ("GET", ["plugins"]) => E::PluginList,
            ("GET", ["plugins", "privileges"]) => E::PluginPrivileges,
            ("POST", ["plugins", "pull"]) => E::PluginPull,
            ("POST", ["plugins", "create"]) => E::PluginCreate,
            ("DELETE", ["plugins", name @ ..]) if !name.is_empty() => {
                E::Plugin { name: decode(&name.join("/"))?, op: PluginOp::Delete }
            }
            (_, ["plugins", name @ .., last]) if !name.is_empty() => {
                let op = match (m, *last) {
                    ("GET", "json") => PluginOp::Inspect,
                    ("POST", "enable") => PluginOp::Enable,
                    ("POST", "disable") => PluginOp::Disable,
                    ("POST", "upgrade") => PluginOp::Upgrade,
                    ("POST", "push") => PluginOp::Push,
                    ("POST", "set") => PluginOp::Set,
                    _ => return None,
                };
                E::Plugin { name: decode(&name.join("/"))?, op }
            }
            (_, ["containers", id, "checkpoints", rest @ ..]) => {
                let op = match (m, rest) {
                    ("GET", []) => CheckpointOp::List,
                    ("POST", []) => CheckpointOp::Create,
                    ("DELETE", [_]) => CheckpointOp::Delete,
                    _ => return None,
                };
                E::Checkpoint { id: decode(id)?, op }
            }
            // Removing a legacy link names it `parent/alias`, with its slash unescaped (docker-py, the CLI's
            // `rm --link`): the link's full name is the container reference.
            ("DELETE", ["containers", parent, alias]) if !alias.is_empty() => {
                E::Container { id: format!("{}/{}", decode(parent)?, decode(alias)?), op: ContainerOp::Delete }
            }
            ("GET", ["containers", "json"]) => E::ContainerList,
            ("POST", ["containers", "create"]) => E::ContainerCreate,
            ("POST", ["containers", "prune"]) => E::ContainerPrune,
            (_, ["containers", id, rest @ ..]) => {
                let op = container_op(m, rest)?;
                E::Container { id: decode(id)?, op }
            }

            (_, ["exec", id, rest]) => {
                let op = match (m, *rest) {
                    ("POST", "start") => ExecOp::Start,
                    ("POST", "resize") => ExecOp::Resize,
                    ("GET", "json") => ExecOp::Inspect,
                    _ => return None,
                };
                E::Exec { id: decode(id)?, op }
            }

            ("GET", ["images", "json"]) => E::ImageList,
            ("POST", ["images", "create"]) => E::ImageCreate,
            ("GET", ["images", "search"]) => E::ImageSearch,
            ("POST", ["images", "prune"]) => E::ImagePrune,
            ("GET", ["images", "get"]) => E::ImagesSave,
            ("POST", ["images", "load"]) => E::ImageLoad,
            ("GET", ["distribution", name @ .., "json"]) if !name.is_empty() => {
                E::DistributionInspect { name: decode(&name.join("/"))? }
            }
            // Image names hold slashes (`registry:5000/team/app:1`), so the operation is the last segment.
            ("DELETE", ["images", name @ ..]) if !name.is_empty() => {
                E::Image { name: decode(&name.join("/"))?, op: ImageOp::Delete }
            }
            (_, ["images", name @ .., last]) if !name.is_empty() => {
                let op = match (m, *last) {
                    ("GET", "json") => ImageOp::Inspect,
                    ("GET", "history") => ImageOp::History,
                    ("POST", "push") => ImageOp::Push,
                    ("POST", "tag") => ImageOp::Tag,
                    ("GET", "get") => ImageOp::Save,
                    _ => return None,
                };
                E::Image { name: decode(&name.join("/"))?, op }
            }
            ("POST", ["build"]) => E::Build,
            ("POST", ["build", "prune"]) => E::BuildPrune,
            ("POST", ["build", "cancel"]) => E::BuildCancel,
            ("POST", ["commit"]) => E::Commit,

            ("GET", ["networks"]) => E::NetworkList,
            ("POST", ["networks", "create"]) => E::NetworkCreate,
            ("POST", ["networks", "prune"]) => E::NetworkPrune,
            (_, ["networks", id, rest @ ..]) => {
                let op = match (m, rest) {
                    ("GET", []) => NetworkOp::Inspect,
                    ("DELETE", []) => NetworkOp::Delete,
                    ("POST", ["connect"]) => NetworkOp::Connect,
                    ("POST", ["disconnect"]) => NetworkOp::Disconnect,
                    _ => return None,
                };
                E::Network { id: decode(id)?, op }
            }

            ("GET", ["volumes"]) => E::VolumeList,
            ("POST", ["volumes", "create"]) => E::VolumeCreate,
            ("POST", ["volumes", "prune"]) => E::VolumePrune,
            (_, ["volumes", name]) => {
                let op = match m {
                    "GET" => VolumeOp::Inspect,
                    "DELETE" => VolumeOp::Delete,
                    _ => return None,
                };
                E::Volume { name: decode(name)?, op }
            }
            _ => return None,
        };
        Some(ep)
    }

    /// What the request's body is, for a tenant's request: decoded JSON, a stream passed through (a tar), or
    /// nothing (the client's bytes, if any, are not forwarded: dockerd would read a form body as query values).
    pub fn request_body(&self) -> RequestBody {
        use super::decode::BodyKind as K;
        use Endpoint as E;
        match self {
            E::ContainerCreate => RequestBody::Json(K::ContainerConfig),
            E::Commit => RequestBody::Json(K::Commit),
            E::Auth => RequestBody::Json(K::Auth),
            E::NetworkCreate => RequestBody::Json(K::NetworkCreate),
            E::Network { op: NetworkOp::Connect, .. } => RequestBody::Json(K::NetworkConnect),
            E::Network { op: NetworkOp::Disconnect, .. } => RequestBody::Json(K::NetworkDisconnect),
            E::VolumeCreate => RequestBody::Json(K::VolumeCreate),
            E::Container { op: ContainerOp::Update, .. } => RequestBody::Json(K::ContainerUpdate),
            E::Container { op: ContainerOp::ExecCreate, .. } => RequestBody::Json(K::ExecConfig),
            E::Exec { op: ExecOp::Start, .. } => RequestBody::Json(K::ExecStart),
            E::Container { op: ContainerOp::ArchivePut, .. }
            | E::Build
            | E::ImageLoad
            | E::ImageCreate
            | E::PluginCreate
            | E::Session
            | E::Grpc => RequestBody::Stream,
            E::Container { op: ContainerOp::Start, .. } => RequestBody::MustBeEmpty,
            E::Ping
            | E::Version
            | E::Info
            | E::Events
            | E::SystemDf
            | E::Usage
            | E::ContainerList
            | E::ContainerPrune
            | E::Container { .. }
            | E::Exec { .. }
            | E::ImageList
            | E::ImageSearch
            | E::ImagePrune
            | E::ImagesSave
            | E::Image { .. }
            | E::DistributionInspect { .. }
            | E::BuildPrune
            | E::BuildCancel
            | E::NetworkList
            | E::NetworkPrune
            | E::Network { .. }
            | E::VolumeList
            | E::VolumePrune
            | E::Volume { .. }
            | E::Options
            | E::SwarmMode(_)
            | E::PluginList
            | E::PluginPrivileges
            | E::PluginPull
            | E::Plugin { .. }
            | E::Checkpoint { .. } => RequestBody::None,
        }
    }

    /// True for endpoints whose connection is hijacked into a raw bidirectional stream.
    /// Exec start is hijacked only when not detached; the engine decides, we only prepare for it.
    pub fn may_hijack(&self) -> bool {
        matches!(
            self,
            Endpoint::Container { op: ContainerOp::Attach | ContainerOp::AttachWs, .. }
                | Endpoint::Exec { op: ExecOp::Start, .. }
                | Endpoint::Session
                | Endpoint::Grpc
        )
    }

    /// True for endpoints whose answer is a small JSON document, read whole and sent in one piece rather
    /// than streamed (it is also what tenancy rewrites). Streams, archives and tars are never among them.
    pub fn answers_small_json(&self) -> bool {
        use Endpoint as E;
        match self {
            E::ContainerList | E::ContainerCreate | E::ContainerPrune | E::SystemDf | E::Auth => true,
            E::Container { op, .. } => matches!(
                op,
                ContainerOp::Inspect
                    | ContainerOp::Top
                    | ContainerOp::Changes
                    | ContainerOp::Update
                    | ContainerOp::ExecCreate
            ),
            E::Exec { op, .. } => matches!(op, ExecOp::Inspect),
            E::ImageList
            | E::ImageSearch
            | E::ImagePrune
            | E::DistributionInspect { .. }
            | E::BuildPrune
            | E::Commit => true,
            E::Image { op, .. } => matches!(op, ImageOp::Inspect | ImageOp::History | ImageOp::Delete),
            E::NetworkList | E::NetworkCreate | E::NetworkPrune | E::Network { .. } => true,
            E::VolumeList | E::VolumeCreate | E::VolumePrune | E::Volume { .. } => true,
            E::PluginList | E::PluginPrivileges => true,
            E::Plugin { op, .. } => matches!(op, PluginOp::Inspect),
            E::Options
            | E::SwarmMode(_)
            | E::PluginPull
            | E::PluginCreate
            | E::Session
            | E::Grpc
            | E::Checkpoint { .. } => false,
            E::Ping
            | E::Version
            | E::Info
            | E::Usage
            | E::Events
            | E::ImageCreate
            | E::ImagesSave
            | E::ImageLoad
            | E::Build
            | E::BuildCancel => false,
        }
    }

    /// The command name of this endpoint in `disableapi` (the 2016 names where 2016 had one).
    pub fn command_name(&self) -> &'static str {
        use Endpoint as E;
        match self {
            E::Ping => "ping",
            E::Version => "version",
            E::Info => "info",
            E::Usage => "usage",
            E::Events => "events",
            E::SystemDf => "systemdf",
            E::Auth => "auth",
            E::ContainerList => "containersjson",
            E::ContainerCreate => "containerscreate",
            E::ContainerPrune => "containersprune",
            E::Container { op, .. } => match op {
                ContainerOp::Inspect => "containerjson",
                ContainerOp::Top => "containertop",
                ContainerOp::Logs => "containerlogs",
                ContainerOp::Changes => "containerchanges",
                ContainerOp::Export => "containerexport",
                ContainerOp::Stats => "containerstats",
                ContainerOp::Resize => "containerresize",
                ContainerOp::Start => "containerstart",
                ContainerOp::Stop => "containerstop",
                ContainerOp::Restart => "containerrestart",
                ContainerOp::Kill => "containerkill",
                ContainerOp::Update => "containerupdate",
                ContainerOp::Rename => "containerrename",
                ContainerOp::Pause => "containerpause",
                ContainerOp::Unpause => "containerunpause",
                ContainerOp::Attach => "containerattach",
                ContainerOp::AttachWs => "containerattachws",
                ContainerOp::Wait => "containerwait",
                ContainerOp::Delete => "containerdelete",
                ContainerOp::ArchiveStat | ContainerOp::ArchiveGet | ContainerOp::ArchivePut => "containerarchive",
                ContainerOp::ExecCreate => "containerexec",
                ContainerOp::Copy => "containercopy",
            },
            E::Exec { op, .. } => match op {
                ExecOp::Start => "execstart",
                ExecOp::Resize => "execresize",
                ExecOp::Inspect => "execjson",
            },
            E::ImageList => "imagesjson",
            E::ImageCreate => "imagescreate",
            E::ImageSearch => "imagessearch",
            E::ImagePrune => "imagesprune",
            E::ImagesSave => "imagesget",
            E::ImageLoad => "imagesload",
            E::Image { op, .. } => match op {
                ImageOp::Inspect => "imagejson",
                ImageOp::History => "imagehistory",
                ImageOp::Push => "imagepush",
                ImageOp::Tag => "imagetag",
                ImageOp::Delete => "imagedelete",
                ImageOp::Save => "imageget",
            },
            E::DistributionInspect { .. } => "distributionjson",
            E::Build => "build",
            E::BuildPrune => "buildprune",
            E::BuildCancel => "buildcancel",
            E::Commit => "commit",
            E::NetworkList => "networkslist",
            E::NetworkCreate => "networkcreate",
            E::NetworkPrune => "networksprune",
            E::Network { op, .. } => match op {
                NetworkOp::Inspect => "networkinspect",
                NetworkOp::Delete => "networkdelete",
                NetworkOp::Connect => "networkconnect",
                NetworkOp::Disconnect => "networkdisconnect",
            },
            E::VolumeList => "volumeslist",
            E::VolumeCreate => "volumecreate",
            E::VolumePrune => "volumesprune",
            E::Volume { op, .. } => match op {
                VolumeOp::Inspect => "volumeinspect",
                VolumeOp::Delete => "volumedelete",
            },
            E::Options => "options",
            E::SwarmMode(op) => op.command_name(),
            E::PluginList => "pluginslist",
            E::PluginPrivileges => "pluginprivileges",
            E::PluginPull => "pluginpull",
            E::PluginCreate => "plugincreate",
            E::Plugin { op, .. } => match op {
                PluginOp::Inspect => "pluginjson",
                PluginOp::Delete => "plugindelete",
                PluginOp::Enable => "pluginenable",
                PluginOp::Disable => "plugindisable",
                PluginOp::Upgrade => "pluginupgrade",
                PluginOp::Push => "pluginpush",
                PluginOp::Set => "pluginset",
            },
            E::Session => "session",
            E::Grpc => "grpc",
            E::Checkpoint { op, .. } => match op {
                CheckpointOp::List => "checkpointslist",
                CheckpointOp::Create => "checkpointcreate",
                CheckpointOp::Delete => "checkpointdelete",
            },
        }
    }
}

/// Every `disableapi` command name with one method and path that it names, for `mtswarm apifilter names`
/// and the README. `{id}` and `{name}` stand for any object.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("version", "GET", "/version"),
    ("info", "GET", "/info"),
    ("usage", "GET", "/mtswarm/v1/usage"),
    ("events", "GET", "/events"),
    ("systemdf", "GET", "/system/df"),
    ("auth", "POST", "/auth"),
    ("containersjson", "GET", "/containers/json"),
    ("containerscreate", "POST", "/containers/create"),
    ("containersprune", "POST", "/containers/prune"),
    ("containerjson", "GET", "/containers/{id}/json"),
    ("containertop", "GET", "/containers/{id}/top"),
    ("containerlogs", "GET", "/containers/{id}/logs"),
    ("containerchanges", "GET", "/containers/{id}/changes"),
    ("containerexport", "GET", "/containers/{id}/export"),
    ("containerstats", "GET", "/containers/{id}/stats"),
    ("containerresize", "POST", "/containers/{id}/resize"),
    ("containerstart", "POST", "/containers/{id}/start"),
    ("containerstop", "POST", "/containers/{id}/stop"),
    ("containerrestart", "POST", "/containers/{id}/restart"),
    ("containerkill", "POST", "/containers/{id}/kill"),
    ("containerupdate", "POST", "/containers/{id}/update"),
    ("containerrename", "POST", "/containers/{id}/rename"),
    ("containerpause", "POST", "/containers/{id}/pause"),
    ("containerunpause", "POST", "/containers/{id}/unpause"),
    ("containerattach", "POST", "/containers/{id}/attach"),
    ("containerattachws", "GET", "/containers/{id}/attach/ws"),
    ("containerwait", "POST", "/containers/{id}/wait"),
    ("containerdelete", "DELETE", "/containers/{id}"),
    ("containerarchive", "GET", "/containers/{id}/archive"),
    ("containerarchive", "HEAD", "/containers/{id}/archive"),
    ("containerarchive", "PUT", "/containers/{id}/archive"),
    ("containerexec", "POST", "/containers/{id}/exec"),
    ("containercopy", "POST", "/containers/{id}/copy"),
    ("execstart", "POST", "/exec/{id}/start"),
    ("execresize", "POST", "/exec/{id}/resize"),
    ("execjson", "GET", "/exec/{id}/json"),
    ("imagesjson", "GET", "/images/json"),
    ("imagescreate", "POST", "/images/create"),
    ("imagessearch", "GET", "/images/search"),
    ("imagesprune", "POST", "/images/prune"),
    ("imagesget", "GET", "/images/get"),
    ("imagesload", "POST", "/images/load"),
    ("imagejson", "GET", "/images/{name}/json"),
    ("imagehistory", "GET", "/images/{name}/history"),
    ("imagepush", "POST", "/images/{name}/push"),
    ("imagetag", "POST", "/images/{name}/tag"),
    ("imagedelete", "DELETE", "/images/{name}"),
    ("imageget", "GET", "/images/{name}/get"),
    ("distributionjson", "GET", "/distribution/{name}/json"),
    ("build", "POST", "/build"),
    ("buildprune", "POST", "/build/prune"),
    ("buildcancel", "POST", "/build/cancel"),
    ("commit", "POST", "/commit"),
    ("networkslist", "GET", "/networks"),
    ("networkcreate", "POST", "/networks/create"),
    ("networksprune", "POST", "/networks/prune"),
    ("networkinspect", "GET", "/networks/{id}"),
    ("networkdelete", "DELETE", "/networks/{id}"),
    ("networkconnect", "POST", "/networks/{id}/connect"),
    ("networkdisconnect", "POST", "/networks/{id}/disconnect"),
    ("volumeslist", "GET", "/volumes"),
    ("volumecreate", "POST", "/volumes/create"),
    ("volumesprune", "POST", "/volumes/prune"),
    ("volumeinspect", "GET", "/volumes/{name}"),
    ("volumedelete", "DELETE", "/volumes/{name}"),
    ("options", "OPTIONS", "/{any}"),
    ("swarminspect", "GET", "/swarm"),
    ("swarminit", "POST", "/swarm/init"),
    ("swarmjoin", "POST", "/swarm/join"),
    ("swarmleave", "POST", "/swarm/leave"),
    ("swarmupdate", "POST", "/swarm/update"),
    ("swarmunlockkey", "GET", "/swarm/unlockkey"),
    ("swarmunlock", "POST", "/swarm/unlock"),
    ("nodeslist", "GET", "/nodes"),
    ("nodeinspect", "GET", "/nodes/{id}"),
    ("nodedelete", "DELETE", "/nodes/{id}"),
    ("nodeupdate", "POST", "/nodes/{id}/update"),
    ("serviceslist", "GET", "/services"),
    ("servicecreate", "POST", "/services/create"),
    ("serviceinspect", "GET", "/services/{id}"),
    ("servicedelete", "DELETE", "/services/{id}"),
    ("serviceupdate", "POST", "/services/{id}/update"),
    ("servicelogs", "GET", "/services/{id}/logs"),
    ("taskslist", "GET", "/tasks"),
    ("taskinspect", "GET", "/tasks/{id}"),
    ("tasklogs", "GET", "/tasks/{id}/logs"),
    ("secretslist", "GET", "/secrets"),
    ("secretcreate", "POST", "/secrets/create"),
    ("secretinspect", "GET", "/secrets/{id}"),
    ("secretdelete", "DELETE", "/secrets/{id}"),
    ("secretupdate", "POST", "/secrets/{id}/update"),
    ("configslist", "GET", "/configs"),
    ("configcreate", "POST", "/configs/create"),
    ("configinspect", "GET", "/configs/{id}"),
    ("configdelete", "DELETE", "/configs/{id}"),
    ("configupdate", "POST", "/configs/{id}/update"),
    ("pluginslist", "GET", "/plugins"),
    ("pluginprivileges", "GET", "/plugins/privileges"),
    ("pluginpull", "POST", "/plugins/pull"),
    ("plugincreate", "POST", "/plugins/create"),
    ("pluginjson", "GET", "/plugins/{name}/json"),
    ("plugindelete", "DELETE", "/plugins/{name}"),
    ("pluginenable", "POST", "/plugins/{name}/enable"),
    ("plugindisable", "POST", "/plugins/{name}/disable"),
    ("pluginupgrade", "POST", "/plugins/{name}/upgrade"),
    ("pluginpush", "POST", "/plugins/{name}/push"),
    ("pluginset", "POST", "/plugins/{name}/set"),
    ("session", "POST", "/session"),
    ("grpc", "POST", "/grpc"),
    ("checkpointslist", "GET", "/containers/{id}/checkpoints"),
    ("checkpointcreate", "POST", "/containers/{id}/checkpoints"),
    ("checkpointdelete", "DELETE", "/containers/{id}/checkpoints/{checkpoint}"),
];

/// Names the 2016 filter knew for endpoints today's API no longer has. They load, and name nothing.
pub const OBSOLETE_COMMANDS: &[&str] = &["containersps", "containerimport"];

fn container_op(method: &str, rest: &[&str]) -> Option<ContainerOp> {
    use ContainerOp as C;
    Some(match (method, rest) {
        ("GET", ["json"]) => C::Inspect,
        ("GET", ["top"]) => C::Top,
        ("GET", ["logs"]) => C::Logs,
        ("GET", ["changes"]) => C::Changes,
        ("GET", ["export"]) => C::Export,
        ("GET", ["stats"]) => C::Stats,
        ("POST", ["resize"]) => C::Resize,
        ("POST", ["start"]) => C::Start,
        ("POST", ["stop"]) => C::Stop,
        ("POST", ["restart"]) => C::Restart,
        ("POST", ["kill"]) => C::Kill,
        ("POST", ["update"]) => C::Update,
        ("POST", ["rename"]) => C::Rename,
        ("POST", ["pause"]) => C::Pause,
        ("POST", ["unpause"]) => C::Unpause,
        ("POST", ["attach"]) => C::Attach,
        ("GET", ["attach", "ws"]) => C::AttachWs,
        ("POST", ["wait"]) => C::Wait,
        ("DELETE", []) => C::Delete,
        ("HEAD", ["archive"]) => C::ArchiveStat,
        ("GET", ["archive"]) => C::ArchiveGet,
        ("PUT", ["archive"]) => C::ArchivePut,
        ("POST", ["exec"]) => C::ExecCreate,
        ("POST", ["copy"]) => C::Copy,
        _ => return None,
    })
}

impl SwarmOp {
    /// The command name in `disableapi`.
    pub fn command_name(self) -> &'static str {
        use SwarmOp as S;
        match self {
            S::Inspect => "swarminspect",
            S::Init => "swarminit",
            S::Join => "swarmjoin",
            S::Leave => "swarmleave",
            S::Update => "swarmupdate",
            S::UnlockKey => "swarmunlockkey",
            S::Unlock => "swarmunlock",
            S::NodeList => "nodeslist",
            S::NodeInspect => "nodeinspect",
            S::NodeDelete => "nodedelete",
            S::NodeUpdate => "nodeupdate",
            S::ServiceList => "serviceslist",
            S::ServiceCreate => "servicecreate",
            S::ServiceInspect => "serviceinspect",
            S::ServiceDelete => "servicedelete",
            S::ServiceUpdate => "serviceupdate",
            S::ServiceLogs => "servicelogs",
            S::TaskList => "taskslist",
            S::TaskInspect => "taskinspect",
            S::TaskLogs => "tasklogs",
            S::SecretList => "secretslist",
            S::SecretCreate => "secretcreate",
            S::SecretInspect => "secretinspect",
            S::SecretDelete => "secretdelete",
            S::SecretUpdate => "secretupdate",
            S::ConfigList => "configslist",
            S::ConfigCreate => "configcreate",
            S::ConfigInspect => "configinspect",
            S::ConfigDelete => "configdelete",
            S::ConfigUpdate => "configupdate",
        }
    }
}

/// The swarm mode endpoints dockerd 20.10 routes (`segs` starts with the kind).
fn swarm_op(method: &str, segs: &[&str]) -> Option<SwarmOp> {
    use SwarmOp as S;
    Some(match (method, segs) {
        ("GET", ["swarm"]) => S::Inspect,
        ("POST", ["swarm", "init"]) => S::Init,
        ("POST", ["swarm", "join"]) => S::Join,
        ("POST", ["swarm", "leave"]) => S::Leave,
        ("POST", ["swarm", "update"]) => S::Update,
        ("GET", ["swarm", "unlockkey"]) => S::UnlockKey,
        ("POST", ["swarm", "unlock"]) => S::Unlock,
        ("GET", ["nodes"]) => S::NodeList,
        ("GET", ["nodes", _]) => S::NodeInspect,
        ("DELETE", ["nodes", _]) => S::NodeDelete,
        ("POST", ["nodes", _, "update"]) => S::NodeUpdate,
        ("GET", ["services"]) => S::ServiceList,
        ("POST", ["services", "create"]) => S::ServiceCreate,
        ("GET", ["services", _]) => S::ServiceInspect,
        ("DELETE", ["services", _]) => S::ServiceDelete,
        ("POST", ["services", _, "update"]) => S::ServiceUpdate,
        ("GET", ["services", _, "logs"]) => S::ServiceLogs,
        ("GET", ["tasks"]) => S::TaskList,
        ("GET", ["tasks", _]) => S::TaskInspect,
        ("GET", ["tasks", _, "logs"]) => S::TaskLogs,
        ("GET", ["secrets"]) => S::SecretList,
        ("POST", ["secrets", "create"]) => S::SecretCreate,
        ("GET", ["secrets", _]) => S::SecretInspect,
        ("DELETE", ["secrets", _]) => S::SecretDelete,
        ("POST", ["secrets", _, "update"]) => S::SecretUpdate,
        ("GET", ["configs"]) => S::ConfigList,
        ("POST", ["configs", "create"]) => S::ConfigCreate,
        ("GET", ["configs", _]) => S::ConfigInspect,
        ("DELETE", ["configs", _]) => S::ConfigDelete,
        ("POST", ["configs", _, "update"]) => S::ConfigUpdate,
        _ => return None,
    })
}

/// Percent-decodes one path segment; a segment that is not UTF-8 names nothing.
/// A path segment (or an image name's segments) percent-decoded. A `.` or `..` segment names no object: the
/// engine's router would clean it away and redirect to another path, so it does not classify.
fn decode(seg: &str) -> Option<String> {
    let s = percent_encoding::percent_decode_str(seg).decode_utf8().ok()?;
    if s.is_empty() || s.split('/').any(|part| part == "." || part == "..") {
        return None;
    }
    Some(s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, path: &str, expected: Option<&str>) {
        let m: Method = method.parse().unwrap();
        let got = Endpoint::classify(&m, path).map(|e| format!("{e:?}"));
        assert_eq!(got.as_deref(), expected, "{method} {path}");
    }

    #[test]
    fn dot_segments_name_nothing() {
        check("GET", "/images/x/../../containers/abc/json", None);
        check("GET", "/images/%2e%2e/containers/abc/history", None);
        check("GET", "/containers/../json", None);
        check("GET", "/containers/%2E/json", None);
        check("DELETE", "/volumes/..", None);
        check("GET", "/images/a.b/json", Some("Image { name: \"a.b\", op: Inspect }"));
    }

    #[test]
    fn every_command_name_names_its_endpoint() {
        for (command, method, path) in COMMANDS {
            let object = if path.starts_with("/volumes") { "v1" } else { "team/app" };
            let path = path.replace("{id}", "abc").replace("{name}", object);
            let ep = Endpoint::classify(&method.parse().unwrap(), &path).unwrap_or_else(|| panic!("{method} {path}"));
            assert_eq!(ep.command_name(), *command, "{method} {path}");
        }
    }

    #[test]
    fn classifies_endpoints() {
        check("HEAD", "/_ping", Some("Ping"));
        check("GET", "/_ping", Some("Ping"));
        check("POST", "/_ping", None);
        check("GET", "/containers/json", Some("ContainerList"));
        check("GET", "/containers/abc/json", Some(r#"Container { id: "abc", op: Inspect }"#));
        check("DELETE", "/containers/abc", Some(r#"Container { id: "abc", op: Delete }"#));
        check("GET", "/containers/abc/attach/ws", Some(r#"Container { id: "abc", op: AttachWs }"#));
        check("HEAD", "/containers/abc/archive", Some(r#"Container { id: "abc", op: ArchiveStat }"#));
        check("POST", "/containers/abc/nonsense", None);
        check("GET", "/images/json", Some("ImageList"));
        check("GET", "/images/get", Some("ImagesSave"));
        check("GET", "/images/reg:5000/team/app:1/json", Some(r#"Image { name: "reg:5000/team/app:1", op: Inspect }"#));
        check("DELETE", "/images/team/app", Some(r#"Image { name: "team/app", op: Delete }"#));
        check("POST", "/images/busybox/tag", Some(r#"Image { name: "busybox", op: Tag }"#));
        check("GET", "/images/busybox/get", Some(r#"Image { name: "busybox", op: Save }"#));
        check("GET", "/networks", Some("NetworkList"));
        check("GET", "/networks/", Some("NetworkList"));
        check("GET", "/networks/n1", Some(r#"Network { id: "n1", op: Inspect }"#));
        check("POST", "/networks/n1/connect", Some(r#"Network { id: "n1", op: Connect }"#));
        check("GET", "/volumes/v%2F1", Some(r#"Volume { name: "v/1", op: Inspect }"#));
        check("PUT", "/volumes/v1", None);
        check("POST", "/exec/e1/start", Some(r#"Exec { id: "e1", op: Start }"#));
        check("GET", "/exec/e1/start", None);
        check("POST", "/session", Some("Session"));
        check("GET", "/session", None);
        check("GET", "/swarm", Some("SwarmMode(Inspect)"));
        check("POST", "/swarm/leave", Some("SwarmMode(Leave)"));
        check("GET", "/services/s1/logs", Some("SwarmMode(ServiceLogs)"));
        check("GET", "/swarm/nonsense", None);
        check("GET", "/plugins", Some("PluginList"));
        check(
            "POST",
            "/plugins/vieux/sshfs:latest/enable",
            Some(r#"Plugin { name: "vieux/sshfs:latest", op: Enable }"#),
        );
        check("DELETE", "/plugins/vieux/sshfs", Some(r#"Plugin { name: "vieux/sshfs", op: Delete }"#));
        check("DELETE", "/containers/web/db", Some(r#"Container { id: "web/db", op: Delete }"#));
        check("DELETE", "/containers/web%2Fdb", Some(r#"Container { id: "web/db", op: Delete }"#));
        check("GET", "/containers/web/checkpoints", Some(r#"Checkpoint { id: "web", op: List }"#));
        check("DELETE", "/containers/web/checkpoints/c1", Some(r#"Checkpoint { id: "web", op: Delete }"#));
        check("OPTIONS", "/containers/json", Some("Options"));
        check("GET", "/nonsense/path", None);
        check("GET", "/containers//json", None);
    }
}
