//! The layers, checked (rust-analyzer's tidy tests): each top-level module imports only modules below it in
//! [`LAYERS`], so no two modules reach each other, and the pure ones use no IO runtime or HTTP body.
//! ARCHITECTURE.md explains the layers; this test keeps them.

/// Bottom up. A module may use `crate::X` only for an X listed before it.
const LAYERS: &[&str] = &[
    "random",
    // The vocabulary, pure: the Docker API as data, the tenant vocabulary, policy and the scheduler.
    "api",
    "tenant",
    "policy",
    "scheduler",
    // Helpers every IO layer shares: HTTP bodies, metrics and audit, TLS settings.
    "body",
    "ops",
    "tls",
    // The serving threads, and which one this is (per-thread engine connection pools).
    "runtime",
    // The engines: one client per engine, the cluster registry, discovery.
    "cluster",
    // Who is asking, and what a tenant's references are (tenancy, over its Lookup seam).
    "auth",
    "tenancy",
    // The pipeline: forwarding, then the gateway's phases.
    "proxy",
    // The managers' election, and a replica's way to the primary.
    "replication",
    "gateway",
    // Transport, then the settings that assemble everything.
    "server",
    "config",
    "usage_cli",
];

/// Modules that must not do IO or know HTTP bodies.
const PURE: &[&str] = &["api", "tenant", "policy", "scheduler"];
const IO_CRATES: &[&str] = &["tokio", "hyper", "hyper_util", "http_body_util", "reqwest"];

/// Every `.rs` file of a top-level module, with its code lines (comments dropped).
fn sources(module: &str) -> Vec<(String, Vec<String>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let single = root.join(format!("{module}.rs"));
    let mut todo = vec![root.join(module)];
    if single.exists() {
        files.push(single);
    }
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let code = text.lines().filter(|l| !l.trim_start().starts_with("//")).map(str::to_string).collect();
            (p.display().to_string(), code)
        })
        .collect()
}

/// The top-level modules a line names through `crate::`, including grouped `use crate::{a, b::c}`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            out.extend(inner.split(',').map(|p| p.trim().split("::").next().unwrap_or_default().to_string()));
        } else {
            out.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

#[test]
fn each_module_imports_only_the_layers_below_it() {
    let mut wrong = Vec::new();
    for (rank, module) in LAYERS.iter().enumerate() {
        let files = sources(module);
        assert!(!files.is_empty(), "no source for module {module}");
        for (file, lines) in files {
            for (n, line) in lines.iter().enumerate() {
                for dep in crate_paths(line) {
                    let Some(dep_rank) = LAYERS.iter().position(|m| *m == dep) else { continue };
                    if dep != *module && dep_rank > rank {
                        wrong.push(format!("{file}: {module} uses crate::{dep}, a layer above it: {}", line.trim()));
                    }
                }
                if PURE.contains(module) {
                    for c in IO_CRATES {
                        let used = line.contains(&format!("{c}::")) && !line.contains(&format!("_{c}::"));
                        if used {
                            wrong.push(format!("{file}:{}: {module} is pure but uses {c}: {}", n + 1, line.trim()));
                        }
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib = include_str!("lib.rs");
    for line in lib.lines() {
        let Some(name) = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod ")) else { continue };
        let name = name.trim_end_matches(';').trim();
        assert!(name == "layers" || LAYERS.contains(&name), "module {name} is in no layer of src/layers.rs");
    }
}

#[test]
fn the_checker_sees_grouped_and_nested_paths() {
    assert_eq!(crate_paths("use crate::{api::ApiError, body, self};"), ["api", "body"]);
    assert_eq!(
        crate_paths("let x = crate::gateway::Gateway::new(crate::cluster::Cluster::new());"),
        ["gateway", "cluster"]
    );
}
