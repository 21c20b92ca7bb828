//! The Docker Engine API as data, pure (no IO, no HTTP bodies): which endpoint a request is ([`endpoint`]), which
//! API version it speaks ([`version`]), how its body reads ([`decode`]) and its query ([`query`]), what an engine
//! with a feature off answers ([`off`]) and the one error shape ([`error`]). The answers mtswarm makes itself
//! (`/_ping`, `/version`, `/info`) read the cluster: [`crate::gateway::system`].

pub mod decode;
pub mod endpoint;
pub mod error;
pub mod gojson;
pub mod off;
pub mod query;
pub mod version;

pub use endpoint::{
    CheckpointOp, ContainerOp, Endpoint, ExecOp, ImageOp, NetworkOp, PluginOp, RequestBody, SwarmOp, VolumeOp,
};
pub use error::{ApiError, DenyKind};
pub use version::ApiVersion;
