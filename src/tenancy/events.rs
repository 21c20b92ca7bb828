//! The event stream, filtered to what the tenant owns and shown under the tenant's names. Events arrive
//! as one JSON object a line; each complete line is judged as it comes, so the stream stays live.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;

use crate::body::{Body, BoxError};

/// Rewrites a streamed body of JSON lines (`/events`, `/containers/{id}/stats`) line by line with `view`,
/// dropping the lines it refuses.
pub fn filter_stream(tenant: String, incoming: Body, view: fn(&str, Value) -> Option<Value>) -> Body {
    let state = (incoming, BytesMut::new(), tenant, false);
    let stream = futures_util::stream::unfold(state, move |(mut body, mut buf, tenant, mut ended)| async move {
        loop {
            if let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line = buf.split_to(i + 1);
                if let Some(out) = judge(&tenant, &line, view) {
                    return Some((Ok::<_, BoxError>(Frame::data(out)), (body, buf, tenant, ended)));
                }
                continue;
            }
            if ended {
                let rest = buf.split();
                return judge(&tenant, &rest, view).map(|out| (Ok(Frame::data(out)), (body, buf, tenant, true)));
            }
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        buf.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => return Some((Err(e), (body, buf, tenant, true))),
                None => ended = true,
            }
        }
    });
    StreamBody::new(stream).boxed_unsync()
}

fn judge(tenant: &str, line: &[u8], view: fn(&str, Value) -> Option<Value>) -> Option<Bytes> {
    let text = std::str::from_utf8(line).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    let e: Value = serde_json::from_str(text).ok()?;
    view(tenant, e).map(|v| Bytes::from(v.to_string() + "\n"))
}
