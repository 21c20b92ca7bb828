//! `mtswarm usage`: a client of `GET /mtswarm/v1/usage` that prints the answer as a table. It reaches mtswarm
//! the way the docker CLI does, with the `HttpHeaders` (token, tenant) of the CLI's config.json.

use std::path::Path;

use anyhow::Context;
use http::Request;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::cluster::{EngineAddr, Node};

/// Asks mtswarm at `host` (tcp://HOST:PORT or unix:///PATH) with the headers of `config_dir/config.json`.
pub async fn fetch(host: &str, config_dir: &Path) -> anyhow::Result<Value> {
    let addr = EngineAddr::parse(host).map_err(anyhow::Error::msg)?;
    let node = Node::new(addr, &crate::cluster::EngineOptions::plain(std::time::Duration::from_secs(5)));
    let mut req = Request::get("/mtswarm/v1/usage");
    let config_file = config_dir.join("config.json");
    match std::fs::read_to_string(&config_file) {
        Ok(text) => {
            let config: Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not JSON", config_file.display()))?;
            for (k, v) in config.get("HttpHeaders").and_then(Value::as_object).into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    req = req.header(k.as_str(), v);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", config_file.display())),
    }
    let req = req.body(crate::body::empty())?;
    let resp = node.send(req).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.context("reading mtswarm's answer")?.to_bytes();
    if !status.is_success() {
        anyhow::bail!("mtswarm answered {status}: {}", crate::cluster::node::engine_message(&bytes));
    }
    serde_json::from_slice(&bytes).context("mtswarm's answer is not JSON")
}

/// One line per tenant: `used` for each resource, `used / limit` where there is a limit.
pub fn table(answer: &Value) -> String {
    let entries: Vec<&Value> = match answer.get("Tenants").and_then(Value::as_array) {
        Some(list) => list.iter().collect(),
        None => vec![answer],
    };
    let columns = [
        ("CONTAINERS", "Containers"),
        ("MEMORY (MB)", "Memory"),
        ("CPUS", "CPUs"),
        ("VOLUMES", "Volumes"),
        ("NETWORKS", "Networks"),
    ];
    let mut rows = vec![std::iter::once("TENANT".to_string())
        .chain(columns.iter().map(|(h, _)| h.to_string()))
        .collect::<Vec<_>>()];
    for e in entries {
        let mut row = vec![e.get("Tenant").and_then(Value::as_str).unwrap_or("-").to_string()];
        for (_, key) in columns {
            let used = e.pointer(&format!("/Usage/{key}")).map(number).unwrap_or_else(|| "-".into());
            row.push(match e.pointer(&format!("/Limits/{key}")).filter(|l| !l.is_null()) {
                Some(limit) => format!("{used} / {}", number(limit)),
                None => used,
            });
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

fn number(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_one_line_per_tenant() {
        let answer = json!({"Tenants": [
            {"Tenant": "alice", "Usage": {"Memory": 256, "CPUs": 0.0, "Containers": 4, "Volumes": 1, "Networks": 0},
             "Limits": {"Memory": 300, "CPUs": null, "Containers": null, "Volumes": null, "Networks": null}},
            {"Tenant": "bob", "Usage": {"Memory": 0, "CPUs": 1.5, "Containers": 0, "Volumes": 0, "Networks": 2},
             "Limits": {"Memory": 300, "CPUs": 2.0, "Containers": 10, "Volumes": null, "Networks": null}}]});
        assert_eq!(
            table(&answer),
            "TENANT   CONTAINERS   MEMORY (MB)   CPUS      VOLUMES   NETWORKS\n\
             alice    4            256 / 300     0         1         0\n\
             bob      0 / 10       0 / 300       1.5 / 2   0         2\n"
        );
    }
}
