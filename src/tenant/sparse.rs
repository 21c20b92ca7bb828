//! A JSON object read only as deep as a view needs it. A container's inspect is about 4 KB of JSON, of which the
//! tenant's view ([`super::view::container`]) reads and rewrites a few members (its name, labels, links, networks,
//! mounts): parsing the whole answer into a [`Value`] and writing it out again was most of what a tenant's inspect
//! cost mtswarm. [`read`] parses only the members a list of paths names, into a [`Value`] that holds just those
//! (the *sparse document*, which the view rewrites as it would the whole one), and keeps every other member as
//! the engine's bytes; [`Layout::write`] puts the rewritten members back where they stood, members the view
//! removed left out and members it added at the end of their object, as [`serde_json::Map`] orders them.
//!
//! The result is the document the view would have made of the whole answer, as long as the view reads and writes
//! only under the paths given (the unit tests compare the two).

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A path of member names from the top of the document: `&["HostConfig", "Links"]`.
pub type Path = &'static [&'static str];

/// Where each member of an object was, and which of them the sparse document holds.
#[derive(Debug)]
pub struct Layout<'a> {
    members: Vec<Member<'a>>,
}

#[derive(Debug)]
struct Member<'a> {
    key: Cow<'a, str>,
    raw: &'a RawValue,
    /// Whether the sparse document holds it (whole, or the part of it under `inner`).
    wanted: bool,
    /// Set when only some of its members are wanted: it is an object, read in turn.
    inner: Option<Layout<'a>>,
}

/// Reads the object in `bytes` as far as `paths` need: its layout, and the sparse document. `None` when `bytes`
/// is not a JSON object.
pub fn read<'a>(bytes: &'a [u8], paths: &[Path]) -> Option<(Layout<'a>, Value)> {
    let paths: Vec<&[&str]> = paths.iter().map(|p| &p[..]).collect();
    let (layout, map) = object(std::str::from_utf8(bytes).ok()?, &paths)?;
    Some((layout, Value::Object(map)))
}

/// `text`: one JSON object (trailing white space allowed).
fn object<'a>(text: &'a str, paths: &[&[&str]]) -> Option<(Layout<'a>, Map<String, Value>)> {
    let Members(pairs) = serde_json::from_str(text).ok()?;
    let mut doc = Map::new();
    let mut members = Vec::with_capacity(pairs.len());
    for (key, raw) in pairs {
        let wanted = paths.iter().any(|p| p.first() == Some(&&*key));
        let mut inner = None;
        if wanted {
            let below: Vec<&[&str]> = paths.iter().filter(|p| p.first() == Some(&&*key)).map(|p| &p[1..]).collect();
            let whole = below.iter().any(|p| p.is_empty()) || !raw.get().starts_with('{');
            let value = match whole {
                true => serde_json::from_str(raw.get()).ok()?,
                false => {
                    let (layout, map) = object(raw.get(), &below)?;
                    inner = Some(layout);
                    Value::Object(map)
                }
            };
            doc.insert(key.to_string(), value);
        }
        members.push(Member { key, raw, wanted, inner });
    }
    Some((Layout { members }, doc))
}

impl Layout<'_> {
    /// Writes the object: the engine's bytes for the members `doc` does not hold, `doc`'s for those it does.
    /// `doc` is the sparse document [`read`] gave, as the view left it.
    pub fn write(&self, doc: &Value, out: &mut Vec<u8>) {
        match doc {
            Value::Object(map) => self.write_object(map, out),
            // The view replaced the object itself: it is written whole.
            other => out.extend_from_slice(other.to_string().as_bytes()),
        }
    }

    fn write_object(&self, doc: &Map<String, Value>, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, k: &str| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            // A key is a string: it cannot fail to serialise.
            let _ = serde_json::to_writer(&mut *out, k);
            out.push(b':');
        };
        for m in &self.members {
            if !m.wanted {
                key(out, &m.key);
                out.extend_from_slice(m.raw.get().as_bytes());
                continue;
            }
            // Removed by the view.
            let Some(value) = doc.get(&*m.key) else { continue };
            key(out, &m.key);
            match (&m.inner, value) {
                (Some(inner), Value::Object(map)) => inner.write_object(map, out),
                _ => {
                    let _ = serde_json::to_writer(&mut *out, value);
                }
            }
        }
        for (k, value) in doc {
            if !self.members.iter().any(|m| m.wanted && m.key == k.as_str()) {
                key(out, k);
                let _ = serde_json::to_writer(&mut *out, value);
            }
        }
        out.push(b'}');
    }
}

/// An object's members in their order, keys unescaped (borrowed when they hold no escape), values as written.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Key(k)) = map.next_key()? {
                    out.push((k, map.next_value::<&RawValue>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A member's name: borrowed from the text unless it holds an escape.
#[derive(serde::Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PATHS: &[Path] = &[&["Name"], &["Config", "Labels"], &["HostConfig", "Links"], &["Gone"]];

    fn roundtrip(input: &Value, change: impl FnOnce(&mut Value)) -> (Value, Value) {
        let bytes = serde_json::to_vec(input).unwrap();
        let (layout, mut doc) = read(&bytes, PATHS).unwrap();
        change(&mut doc);
        let mut out = Vec::new();
        layout.write(&doc, &mut out);
        (doc, serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn holds_only_the_paths_and_writes_the_rest_as_it_came() {
        let input = json!({
            "Id": "abc", "Name": "/t5-alice-web", "Gone": 1,
            "Config": {"Env": ["A=1"], "Labels": {"mtswarm.tenant": "alice", "x": "y"}, "Cmd": null},
            "HostConfig": null, "State": {"Running": true}, "esc\"aped": "\u{2028}<&>"
        });
        let (doc, same) = roundtrip(&input, |_| {});
        assert_eq!(same, input);
        assert_eq!(
            doc,
            json!({"Name": "/t5-alice-web", "Gone": 1, "Config": {"Labels": {"mtswarm.tenant": "alice", "x": "y"}},
                   "HostConfig": null})
        );
        let (_, out) = roundtrip(&input, |d| {
            d["Name"] = json!("/web");
            d["Config"]["Labels"].as_object_mut().unwrap().remove("mtswarm.tenant");
            d.as_object_mut().unwrap().remove("Gone");
            d.as_object_mut().unwrap().insert("Added".into(), json!([1]));
        });
        let mut expected = input.clone();
        expected["Name"] = json!("/web");
        expected["Config"]["Labels"] = json!({"x": "y"});
        expected.as_object_mut().unwrap().remove("Gone");
        expected.as_object_mut().unwrap().insert("Added".into(), json!([1]));
        assert_eq!(out, expected);
        // The order of members is kept, and an added one comes last, as in a `serde_json::Map`.
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Id", "Name", "Config", "HostConfig", "State", "esc\"aped", "Added"]);
    }

    #[test]
    fn a_member_added_inside_an_object_comes_last_in_it() {
        let input = json!({"HostConfig": {"Binds": null, "NetworkMode": "default"}});
        let (_, out) = roundtrip(&input, |d| {
            d["HostConfig"].as_object_mut().unwrap().insert("Links".into(), json!(["/a:/b/a"]));
        });
        assert_eq!(out, json!({"HostConfig": {"Binds": null, "NetworkMode": "default", "Links": ["/a:/b/a"]}}));
        let keys: Vec<&String> = out["HostConfig"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Binds", "NetworkMode", "Links"]);
    }

    #[test]
    fn what_is_not_an_object_is_refused() {
        assert!(read(b"[1, 2]", PATHS).is_none());
        assert!(read(b"{\"Name\": ", PATHS).is_none());
        assert!(read(b"\xff", PATHS).is_none());
        assert!(read(b"{\"Id\": \"x\"}\n", PATHS).is_some());
    }
}
