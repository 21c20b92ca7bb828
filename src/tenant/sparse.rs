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

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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
    /// The engine's bytes, for a member the sparse document does not hold; `None` for one it holds (whole, or
    /// the part of it under `inner`).
    raw: Option<&'a RawValue>,
    /// Set when only some of its members are wanted: it is an object, read in turn.
    inner: Option<Layout<'a>>,
}

/// Reads the object in `bytes` as far as `paths` need: its layout, and the sparse document. `None` when `bytes`
/// is not a JSON object. The text is scanned once: a wanted object is read member by member where it stands.
pub fn read<'a>(bytes: &'a [u8], paths: &[Path]) -> Option<(Layout<'a>, Value)> {
    let paths: Vec<&[&str]> = paths.iter().map(|p| &p[..]).collect();
    let mut de = serde_json::Deserializer::from_str(std::str::from_utf8(bytes).ok()?);
    let Part::Object(layout, map) = Below(&paths).deserialize(&mut de).ok()? else { return None };
    de.end().ok()?;
    Some((layout, Value::Object(map)))
}

/// A value read for the sparse document: an object read as far as the paths below it need, or anything else,
/// whole.
enum Part<'a> {
    Object(Layout<'a>, Map<String, Value>),
    Whole(Value),
}

/// Reads a value for the paths below it (none of them empty: an empty path wants the value whole).
struct Below<'p>(&'p [&'p [&'static str]]);

impl<'de> DeserializeSeed<'de> for Below<'_> {
    type Value = Part<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Part<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Below<'_> {
    type Value = Part<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Part<'de>, A::Error> {
        let mut doc = Map::new();
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(32));
        while let Some(Key(key)) = map.next_key()? {
            let mut below = self.0.iter().filter(|p| p.first() == Some(&&*key)).map(|p| &p[1..]).peekable();
            if below.peek().is_none() {
                members.push(Member { key, raw: Some(map.next_value()?), inner: None });
                continue;
            }
            let below: Vec<&[&str]> = below.collect();
            let (value, inner) = match below.iter().any(|p| p.is_empty()) {
                true => (map.next_value()?, None),
                false => match map.next_value_seed(Below(&below))? {
                    Part::Object(layout, map) => (Value::Object(map), Some(layout)),
                    Part::Whole(value) => (value, None),
                },
            };
            // A key given twice keeps its last value, as a whole parse does, and its first place.
            if doc.insert(key.to_string(), value).is_some() {
                if let Some(first) = members.iter_mut().find(|m| m.raw.is_none() && m.key == key) {
                    first.inner = inner;
                    continue;
                }
            }
            members.push(Member { key, raw: None, inner });
        }
        Ok(Part::Object(Layout { members }, doc))
    }

    // Anything but an object, where a path goes deeper: the view finds nothing there, and it is kept whole.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Part<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Part::Whole(Value::Array(items)))
    }
    fn visit_unit<E>(self) -> Result<Part<'de>, E> {
        Ok(Part::Whole(Value::Null))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Part<'de>, E> {
        Ok(Part::Whole(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Part<'de>, E> {
        Ok(Part::Whole(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Part<'de>, E> {
        Ok(Part::Whole(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Part<'de>, E> {
        Ok(Part::Whole(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Part<'de>, E> {
        Ok(Part::Whole(Value::from(v)))
    }
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
        let mut key = |out: &mut Vec<u8>, k: &str, plain: bool| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            if plain {
                out.push(b'"');
                out.extend_from_slice(k.as_bytes());
                out.push(b'"');
            } else {
                // A key is a string: it cannot fail to serialise.
                let _ = serde_json::to_writer(&mut *out, k);
            }
            out.push(b':');
        };
        for m in &self.members {
            // A key read borrowed held no escape in the engine's text: it is written as it stood there.
            let plain = matches!(m.key, Cow::Borrowed(_));
            if let Some(raw) = m.raw {
                key(out, &m.key, plain);
                out.extend_from_slice(raw.get().as_bytes());
                continue;
            }
            // Removed by the view.
            let Some(value) = doc.get(&*m.key) else { continue };
            key(out, &m.key, plain);
            match (&m.inner, value) {
                (Some(inner), Value::Object(map)) => inner.write_object(map, out),
                _ => {
                    let _ = serde_json::to_writer(&mut *out, value);
                }
            }
        }
        for (k, value) in doc {
            if !self.members.iter().any(|m| m.raw.is_none() && m.key == k.as_str()) {
                key(out, k, false);
                let _ = serde_json::to_writer(&mut *out, value);
            }
        }
        out.push(b'}');
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
    fn a_wanted_key_given_twice_is_written_once_with_its_last_value() {
        let bytes = br#"{"Name": "/a", "Id": "x", "Config": {"Labels": {"k": "1"}}, "Name": "/b", "Config": {"Labels": {"k": "2"}, "Env": []}}"#;
        let (layout, doc) = read(bytes, PATHS).unwrap();
        assert_eq!(doc, json!({"Name": "/b", "Config": {"Labels": {"k": "2"}}}));
        let mut out = Vec::new();
        layout.write(&doc, &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"Name":"/b","Id":"x","Config":{"Labels":{"k":"2"},"Env":[]}}"#
        );
    }

    #[test]
    fn a_path_through_what_is_not_an_object_keeps_it_whole() {
        let input = json!({"Config": [1, {"Labels": 2}], "HostConfig": "x", "Name": {"deep": [true, null, 1.5, -3]}});
        let (doc, same) = roundtrip(&input, |_| {});
        assert_eq!(same, input);
        assert_eq!(
            doc,
            json!({"Config": [1, {"Labels": 2}], "HostConfig": "x", "Name": {"deep": [true, null, 1.5, -3]}})
        );
    }

    #[test]
    fn what_is_not_an_object_is_refused() {
        assert!(read(b"[1, 2]", PATHS).is_none());
        assert!(read(b"{\"Name\": ", PATHS).is_none());
        assert!(read(b"\xff", PATHS).is_none());
        assert!(read(b"{\"Id\": \"x\"}\n", PATHS).is_some());
        assert!(read(b"{\"Id\": \"x\"} {}", PATHS).is_none());
        assert!(read(b"{\"Config\": {\"Labels\": {\"k\": }}}", PATHS).is_none());
    }
}
