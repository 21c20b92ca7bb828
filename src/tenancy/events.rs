//! The event stream, filtered to what the tenant owns and shown under the tenant's names. Events arrive
//! as one JSON object a line; each complete line is judged as it comes, so the stream stays live.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;

use super::{names, TENANT_LABEL};
use crate::body::{Body, BoxError};

/// The tenant's view of one event, or `None` when it is not the tenant's to see.
pub fn view(tenant: &str, mut e: Value) -> Option<Value> {
    let kind = e.get("Type").and_then(Value::as_str).unwrap_or_default().to_string();
    match kind.as_str() {
        "container" => {
            let attrs = e.pointer_mut("/Actor/Attributes")?.as_object_mut()?;
            if attrs.get(TENANT_LABEL).and_then(Value::as_str) != Some(tenant) {
                return None;
            }
            if let Some(n) = attrs.get("name").and_then(Value::as_str).and_then(|n| names::unscope(tenant, n)) {
                let n = n.into_owned();
                attrs.insert("name".into(), Value::from(n));
            }
        }
        "network" => {
            let attrs = e.pointer_mut("/Actor/Attributes")?.as_object_mut()?;
            let n = attrs.get("name").and_then(Value::as_str).and_then(|n| names::unscope(tenant, n))?.into_owned();
            // The tenant's default network is made and removed behind its back, as if it always were there.
            let action = e.get("Action").and_then(Value::as_str).unwrap_or_default();
            if n == super::bridge::NAME && matches!(action, "create" | "destroy") {
                return None;
            }
            let attrs = e.pointer_mut("/Actor/Attributes")?.as_object_mut()?;
            attrs.insert("name".into(), Value::from(n));
        }
        "volume" => {
            let id =
                e.pointer("/Actor/ID").and_then(Value::as_str).and_then(|n| names::unscope(tenant, n))?.into_owned();
            if let Some(actor) = e.get_mut("Actor").and_then(Value::as_object_mut) {
                actor.insert("ID".into(), Value::from(id.clone()));
            }
            if let Some(obj) = e.as_object_mut() {
                if obj.contains_key("id") {
                    obj.insert("id".into(), Value::from(id));
                }
            }
        }
        // Image, daemon, plugin and builder events tell of the shared catalogue and the host.
        _ => return None,
    }
    Some(e)
}

/// The tenant's view of one stats sample: the container's name as the tenant knows it.
pub fn stats_view(tenant: &str, mut s: Value) -> Option<Value> {
    if let Some(n) = s.get("name").and_then(Value::as_str).map(|n| names::unscope_path(tenant, n)) {
        s["name"] = Value::from(n);
    }
    Some(s)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(event: Value, expected: Option<Value>) {
        assert_eq!(view("alice", event), expected);
    }

    #[test]
    fn shows_only_the_tenants_events_under_its_names() {
        check(
            json!({"Type": "container", "Action": "start", "Actor": {"ID": "c1", "Attributes": {"mtswarm.tenant": "alice", "name": "t5-alice-web"}}}),
            Some(
                json!({"Type": "container", "Action": "start", "Actor": {"ID": "c1", "Attributes": {"mtswarm.tenant": "alice", "name": "web"}}}),
            ),
        );
        check(
            json!({"Type": "container", "Actor": {"ID": "c2", "Attributes": {"mtswarm.tenant": "bob", "name": "t3-bob-web"}}}),
            None,
        );
        check(json!({"Type": "container", "Actor": {"ID": "c3", "Attributes": {"name": "plain"}}}), None);
        check(
            json!({"Type": "network", "Actor": {"ID": "n1", "Attributes": {"name": "t5-alice-back", "type": "bridge"}}}),
            Some(json!({"Type": "network", "Actor": {"ID": "n1", "Attributes": {"name": "back", "type": "bridge"}}})),
        );
        check(
            json!({"Type": "network", "Actor": {"ID": "n2", "Attributes": {"name": "bridge", "container": "c2"}}}),
            None,
        );
        // The tenant's own default network is its `bridge`; it is never seen made or removed.
        check(
            json!({"Type": "network", "Action": "connect", "Actor": {"ID": "n3", "Attributes": {"name": "t5-alice-bridge", "container": "c1"}}}),
            Some(
                json!({"Type": "network", "Action": "connect", "Actor": {"ID": "n3", "Attributes": {"name": "bridge", "container": "c1"}}}),
            ),
        );
        check(
            json!({"Type": "network", "Action": "create", "Actor": {"ID": "n3", "Attributes": {"name": "t5-alice-bridge", "type": "bridge"}}}),
            None,
        );
        check(
            json!({"Type": "volume", "Actor": {"ID": "t5-alice-data", "Attributes": {"driver": "local"}}}),
            Some(json!({"Type": "volume", "Actor": {"ID": "data", "Attributes": {"driver": "local"}}})),
        );
        check(json!({"Type": "image", "Actor": {"ID": "busybox"}}), None);
    }
}
