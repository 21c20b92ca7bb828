//! Query parameters as dockerd reads them: a key's first value (Go's `Form.Get`), integers with `strconv.Atoi`,
//! booleans with `httputils.BoolValue`, and `filters` with `filters.FromJSON`. A malformed value is a 400 here;
//! dockerd 20.10 answers several of them with a 500 (`strconv.Atoi: parsing "null"`, `invalid character`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{ApiError, ContainerOp, Endpoint, ExecOp};

/// Docker's list filters: key to the set of values.
pub type Filters = BTreeMap<String, BTreeSet<String>>;

/// A query string as its pairs, in order, percent-decoded.
pub fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The first value of `key`, as Go's `r.Form.Get` finds it.
pub fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A boolean parameter as dockerd's `httputils.BoolValue` reads it: present and anything but "", "0", "no",
/// "false" or "none" (in any case, trimmed).
pub fn bool_value(pairs: &[(String, String)], key: &str) -> bool {
    first(pairs, key)
        .is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "no" | "false" | "none"))
}

/// Parses a `filters` value as `filters.FromJSON`: `{"key": {"value": true}}`, or the older
/// `{"key": ["value"]}`, every key in one shape. The booleans of the first shape are not read (`Args.Get` lists
/// every value); `null` and the empty string are no filters.
pub fn parse_filters(raw: &str) -> Result<Filters, ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("invalid filter: {why}"));
    if raw.is_empty() {
        return Ok(Filters::new());
    }
    let v: Value = serde_json::from_str(raw).map_err(|e| invalid(&e.to_string()))?;
    let map = match v {
        Value::Null => return Ok(Filters::new()),
        Value::Object(map) => map,
        _ => return Err(invalid("filters must be a JSON object")),
    };
    let as_sets = map.iter().all(|(_, vals)| match vals {
        Value::Null => true,
        Value::Object(m) => m.values().all(|b| b.is_boolean() || b.is_null()),
        _ => false,
    });
    let as_lists = map.iter().all(|(_, vals)| match vals {
        Value::Null => true,
        Value::Array(a) => a.iter().all(|s| s.is_string() || s.is_null()),
        _ => false,
    });
    let mut out = Filters::new();
    for (k, vals) in map {
        let set = out.entry(k).or_default();
        match vals {
            Value::Object(m) if as_sets => set.extend(m.into_iter().map(|(v, _)| v)),
            Value::Array(a) if as_lists => {
                set.extend(a.into_iter().map(|s| s.as_str().unwrap_or_default().to_string()))
            }
            Value::Null => {}
            _ => return Err(invalid("each filter must map to {\"value\": true, ...} or to a list of values")),
        }
    }
    Ok(out)
}

/// Checks the parameters an endpoint reads as numbers or filters, as dockerd will read them.
pub fn check(endpoint: &Endpoint, pairs: &[(String, String)]) -> Result<(), ApiError> {
    use Endpoint as E;
    let (ints, filters): (&[&str], bool) = match endpoint {
        E::ContainerList | E::ImageSearch => (&["limit"], true),
        E::Container { op: ContainerOp::Stop | ContainerOp::Restart, .. } => (&["t"], false),
        E::Container { op: ContainerOp::Resize, .. } | E::Exec { op: ExecOp::Resize, .. } => (&["h", "w"], false),
        E::BuildPrune => (&["keep-storage"], true),
        E::Events
        | E::ContainerPrune
        | E::ImageList
        | E::ImagePrune
        | E::NetworkList
        | E::NetworkPrune
        | E::VolumeList
        | E::VolumePrune => (&[], true),
        _ => (&[], false),
    };
    for key in ints {
        if let Some(v) = first(pairs, key).filter(|v| !v.is_empty()) {
            if v.parse::<i64>().is_err() {
                return Err(ApiError::bad_request(format!("invalid value for {key}: {v:?} is not a whole number")));
            }
        }
    }
    if filters {
        if let Some(f) = first(pairs, "filters") {
            parse_filters(f)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn filters_as_from_json_reads_them() {
        let f = |s: &str| parse_filters(s).map(|f| format!("{f:?}")).map_err(|e| e.status.as_u16());
        assert_eq!(f(r#"{"label":{"a":true,"b":false}}"#), Ok(r#"{"label": {"a", "b"}}"#.into()));
        assert_eq!(f(r#"{"name":["web"],"label":null}"#), Ok(r#"{"label": {}, "name": {"web"}}"#.into()));
        assert_eq!(f(""), Ok("{}".into()));
        assert_eq!(f("null"), Ok("{}".into()));
        assert_eq!(f("notjson"), Err(400));
        assert_eq!(f(r#"{"label":{"a":"yes"}}"#), Err(400));
        assert_eq!(f(r#"{"label":{"a":true},"name":["x"]}"#), Err(400));
        assert_eq!(f(r#"["x"]"#), Err(400));
    }

    #[test]
    fn numbers_and_filters_per_endpoint() {
        let list = Endpoint::ContainerList;
        assert!(check(&list, &pairs("limit=3&all=1")).is_ok());
        assert!(check(&list, &pairs("limit=")).is_ok());
        assert_eq!(check(&list, &pairs("limit=null")).unwrap_err().status, 400);
        assert_eq!(check(&list, &pairs("filters=%7Bx")).unwrap_err().status, 400);
        // Go's Form.Get reads the first value.
        assert!(check(&list, &pairs("limit=1&limit=x")).is_ok());
        let stop = Endpoint::Container { id: "c".into(), op: ContainerOp::Stop };
        assert_eq!(check(&stop, &pairs("t=abc")).unwrap_err().status, 400);
        assert!(check(&stop, &pairs("t=-1")).is_ok());
        // An endpoint that reads no filters ignores them, as dockerd does.
        let inspect = Endpoint::Container { id: "c".into(), op: ContainerOp::Inspect };
        assert!(check(&inspect, &pairs("filters=notjson")).is_ok());
    }
}
