//! The one body type mtswarm's responses and forwarded requests use, and constructors for it.

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

/// Any error a body may yield while streaming.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body: engine bodies pass through as they arrive, never held whole.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn empty() -> Body {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// Streams an incoming hyper body onward without buffering it.
pub fn stream(incoming: hyper::body::Incoming) -> Body {
    incoming.map_err(BoxError::from).boxed_unsync()
}
