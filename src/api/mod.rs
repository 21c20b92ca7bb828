//! The Docker Engine API surface: which endpoint a request is ([`endpoint`]), which API version it speaks
//! ([`version`]), how its body reads ([`decode`]), the endpoints mtswarm answers itself ([`system`], and as an engine with the feature off, [`off`]) and the one error shape ([`error`]).

pub mod decode;
pub mod endpoint;
pub mod error;
pub mod off;
pub mod query;
pub mod system;
pub mod version;

pub use endpoint::{
    CheckpointOp, ContainerOp, Endpoint, ExecOp, ImageOp, NetworkOp, PluginOp, RequestBody, SwarmOp, VolumeOp,
};
pub use error::ApiError;
pub use version::ApiVersion;
