//! Merging the answers of several nodes into the one answer a client of one engine expects. Pure.

use std::collections::HashSet;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::api::{Endpoint, ImageOp};
use crate::cluster::listing::Bounds;

/// Merges the nodes' successful answers to `endpoint` (in node order).
/// `bounds` are a container list's `before` and `since`, resolved across the cluster (the engines were not asked
/// them: each knows only its own containers).
pub fn merge(endpoint: &Endpoint, query: Option<&str>, bounds: &Bounds, answers: Vec<Bytes>) -> Result<Bytes, String> {
    use Endpoint as E;
    if matches!(endpoint, E::ImageCreate) {
        // Pull progress: each node's lines, one node after the other.
        let mut out = Vec::new();
        for a in answers {
            out.extend_from_slice(&a);
        }
        return Ok(Bytes::from(out));
    }
    // An answer without a body (a tag, a plugin enabled or removed) is no JSON to merge: one engine's answer
    // is the empty one too.
    let answers: Vec<Bytes> = answers.into_iter().filter(|a| !a.iter().all(u8::is_ascii_whitespace)).collect();
    if answers.is_empty() || matches!(endpoint, E::Image { op: ImageOp::Tag, .. }) {
        return Ok(Bytes::new());
    }
    let docs = answers
        .iter()
        .map(|a| serde_json::from_slice::<Value>(a).map_err(|e| format!("a node's answer is not JSON: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = match endpoint {
        E::ContainerList => {
            let created = |c: &Value| c.get("Created").and_then(Value::as_i64).unwrap_or(0);
            let id = |c: &Value| c.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
            let mut all = concat(docs);
            all.retain(|c| bounds.keeps_entry(created(c), &id(c)));
            // Newest first, as one engine lists them; `limit` applies to the whole cluster.
            all.sort_by_key(|c| std::cmp::Reverse((created(c), id(c))));
            let limit = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .find(|(k, _)| k == "limit")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .filter(|l| *l > 0);
            if let Some(l) = limit {
                all.truncate(l);
            }
            Value::Array(all)
        }
        E::ImageList => Value::Array(unique_by_id(concat(docs))),
        E::NetworkList => {
            // Each engine has its own bridge, host and none: one of each is shown, as on one engine; a
            // multi-host (overlay) network is on every node under one id: shown once.
            let mut seen = HashSet::new();
            let all = unique_by_id(concat(docs))
                .into_iter()
                .filter(|n| {
                    let name = n.get("Name").and_then(Value::as_str).unwrap_or_default();
                    !["bridge", "host", "none"].contains(&name) || seen.insert(name.to_string())
                })
                .collect();
            Value::Array(all)
        }
        E::VolumeList => {
            let volumes = concat(docs.iter().map(|d| d.get("Volumes").cloned().unwrap_or(Value::Null)).collect());
            let warnings = concat(docs.iter().map(|d| d.get("Warnings").cloned().unwrap_or(Value::Null)).collect());
            let mut m = Map::new();
            m.insert("Volumes".into(), Value::Array(volumes));
            m.insert("Warnings".into(), if warnings.is_empty() { Value::Null } else { Value::Array(warnings) });
            Value::Object(m)
        }
        E::SystemDf => {
            let mut m = Map::new();
            let sum: i64 = docs.iter().filter_map(|d| d.get("LayersSize").and_then(Value::as_i64)).sum();
            m.insert("LayersSize".into(), Value::from(sum));
            let part = |k: &str| concat(docs.iter().map(|d| d.get(k).cloned().unwrap_or(Value::Null)).collect());
            m.insert("Images".into(), Value::Array(unique_by_id(part("Images"))));
            for k in ["Containers", "Volumes", "BuildCache"] {
                m.insert(k.into(), Value::Array(part(k)));
            }
            Value::Object(m)
        }
        E::ContainerPrune | E::VolumePrune | E::NetworkPrune | E::ImagePrune | E::BuildPrune => {
            let mut m = Map::new();
            let mut reclaimed = 0i64;
            for d in &docs {
                for (k, v) in d.as_object().into_iter().flatten() {
                    match v {
                        Value::Array(items) => {
                            let e = m.entry(k.clone()).or_insert_with(|| Value::Array(Vec::new()));
                            if let Value::Array(list) = e {
                                list.extend(items.iter().cloned());
                            } else {
                                *e = Value::Array(items.clone());
                            }
                        }
                        Value::Number(n) if k == "SpaceReclaimed" => reclaimed += n.as_i64().unwrap_or(0),
                        Value::Null => {
                            m.entry(k.clone()).or_insert(Value::Null);
                        }
                        other => {
                            m.entry(k.clone()).or_insert(other.clone());
                        }
                    }
                }
            }
            m.insert("SpaceReclaimed".into(), Value::from(reclaimed));
            Value::Object(m)
        }
        // Each node untags and deletes the same references: one engine lists each once.
        E::Image { op: ImageOp::Delete, .. } => {
            let mut seen = HashSet::new();
            Value::Array(concat(docs).into_iter().filter(|e| seen.insert(e.to_string())).collect())
        }
        // A plugin installed through mtswarm is on every node, under one name and an id of each node's own.
        E::PluginList => {
            let mut seen = HashSet::new();
            let name = |p: &Value| p.get("Name").and_then(Value::as_str).unwrap_or_default().to_string();
            Value::Array(unique_by_id(concat(docs)).into_iter().filter(|p| seen.insert(name(p))).collect())
        }
        _ => docs.into_iter().next().unwrap_or(Value::Null),
    };
    Ok(Bytes::from(merged.to_string()))
}

fn concat(docs: Vec<Value>) -> Vec<Value> {
    docs.into_iter()
        .flat_map(|d| match d {
            Value::Array(a) => a,
            _ => Vec::new(),
        })
        .collect()
}

fn unique_by_id(items: Vec<Value>) -> Vec<Value> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.get("Id").and_then(Value::as_str).unwrap_or_default().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;
    use serde_json::json;

    fn check(method: &str, path: &str, query: Option<&str>, answers: Vec<Value>, expected: Value) {
        check_within(method, path, query, &Bounds::default(), answers, expected);
    }

    fn check_within(method: &str, path: &str, query: Option<&str>, b: &Bounds, answers: Vec<Value>, expected: Value) {
        let ep = Endpoint::classify(&method.parse::<Method>().unwrap(), path).unwrap();
        let answers = answers.into_iter().map(|a| Bytes::from(a.to_string())).collect();
        let got: Value = serde_json::from_slice(&merge(&ep, query, b, answers).unwrap()).unwrap();
        assert_eq!(got, expected, "{method} {path}");
    }

    #[test]
    fn container_lists_are_bounded_across_the_nodes() {
        let lists = || {
            vec![
                json!([{"Id": "a", "Created": 1}, {"Id": "b", "Created": 5}]),
                json!([{"Id": "c", "Created": 3}, {"Id": "d", "Created": 3}]),
            ]
        };
        let at = |secs: i128, id: &str| Some((secs * 1_000_000_000 + 7, id.to_string()));
        let before_c = Bounds { before: at(3, "c"), since: None };
        check_within("GET", "/containers/json", None, &before_c, lists(), json!([{"Id": "a", "Created": 1}]));
        let since_c = Bounds { before: None, since: at(3, "c") };
        let newer = json!([{"Id": "b", "Created": 5}, {"Id": "d", "Created": 3}]);
        check_within("GET", "/containers/json", None, &since_c, lists(), newer);
        // limit counts what is left within the bounds.
        let since_a = Bounds { before: None, since: at(1, "a") };
        check_within("GET", "/containers/json", Some("limit=1"), &since_a, lists(), json!([{"Id": "b", "Created": 5}]));
    }

    #[test]
    fn image_operations_answer_as_one_engine() {
        let ep = |m: &str, p: &str| Endpoint::classify(&m.parse::<Method>().unwrap(), p).unwrap();
        let tagged =
            merge(&ep("POST", "/images/busybox/tag"), None, &Bounds::default(), vec![Bytes::new(), Bytes::new()]);
        assert_eq!(tagged.unwrap(), Bytes::new());
        let enabled = merge(&ep("POST", "/plugins/p/enable"), None, &Bounds::default(), vec![Bytes::new()]);
        assert_eq!(enabled.unwrap(), Bytes::new());
        check(
            "DELETE",
            "/images/t:1",
            None,
            vec![json!([{"Untagged": "t:1"}]), json!([{"Untagged": "t:1"}, {"Deleted": "sha256:2"}])],
            json!([{"Untagged": "t:1"}, {"Deleted": "sha256:2"}]),
        );
    }

    #[test]
    fn merges_lists_as_one_engine_would_answer() {
        check(
            "GET",
            "/containers/json",
            Some("all=1&limit=2"),
            vec![json!([{"Id": "a", "Created": 1}, {"Id": "b", "Created": 5}]), json!([{"Id": "c", "Created": 3}])],
            json!([{"Id": "b", "Created": 5}, {"Id": "c", "Created": 3}]),
        );
        check(
            "GET",
            "/images/json",
            None,
            vec![json!([{"Id": "sha256:1"}, {"Id": "sha256:2"}]), json!([{"Id": "sha256:1"}])],
            json!([{"Id": "sha256:1"}, {"Id": "sha256:2"}]),
        );
        check(
            "GET",
            "/networks",
            None,
            vec![
                json!([{"Name": "bridge", "Id": "1"}, {"Name": "t1-a-n", "Id": "2"}]),
                json!([{"Name": "bridge", "Id": "3"}]),
            ],
            json!([{"Name": "bridge", "Id": "1"}, {"Name": "t1-a-n", "Id": "2"}]),
        );
        check(
            "GET",
            "/volumes",
            None,
            vec![json!({"Volumes": [{"Name": "a"}], "Warnings": null}), json!({"Volumes": null, "Warnings": null})],
            json!({"Volumes": [{"Name": "a"}], "Warnings": null}),
        );
        check(
            "POST",
            "/containers/prune",
            None,
            vec![
                json!({"ContainersDeleted": ["a"], "SpaceReclaimed": 5}),
                json!({"ContainersDeleted": null, "SpaceReclaimed": 1}),
            ],
            json!({"ContainersDeleted": ["a"], "SpaceReclaimed": 6}),
        );
        check(
            "GET",
            "/system/df",
            None,
            vec![
                json!({"LayersSize": 1, "Images": [{"Id": "i"}], "Containers": [{"Id": "c1"}], "Volumes": [], "BuildCache": null}),
                json!({"LayersSize": 2, "Images": [{"Id": "i"}], "Containers": [{"Id": "c2"}], "Volumes": [], "BuildCache": null}),
            ],
            json!({"LayersSize": 3, "Images": [{"Id": "i"}], "Containers": [{"Id": "c1"}, {"Id": "c2"}], "Volumes": [], "BuildCache": []}),
        );
    }
}
