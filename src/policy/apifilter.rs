//! The API filter: `{"disableapi": [...]}` names the commands the operator turns off for tenants, in the
//! 2016 system's names (`containerscreate`, `networkslist`, ...) and names in the same style for the
//! endpoints it did not know. An unknown name is a start-up error, never a silent no-op.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::escape::Deny;
use crate::api::endpoint::{COMMANDS, OBSOLETE_COMMANDS};
use crate::api::Endpoint;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    disableapi: Vec<String>,
}

/// The commands turned off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiFilter {
    disabled: BTreeSet<String>,
}

impl ApiFilter {
    /// Parses a filter file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<ApiFilter, String> {
        let shape: FileShape = serde_json::from_str(text).map_err(|e| {
            format!("API filter {origin}: {e}; expected {{\"disableapi\": [\"containerscreate\", ...]}}")
        })?;
        let mut disabled = BTreeSet::new();
        for name in shape.disableapi {
            let n = name.trim().to_ascii_lowercase();
            if OBSOLETE_COMMANDS.contains(&n.as_str()) {
                continue;
            }
            if !COMMANDS.iter().any(|(c, _, _)| *c == n) {
                return Err(format!(
                    "API filter {origin}: {name:?} is not a command name; `mtswarm apifilter names` lists them"
                ));
            }
            disabled.insert(n);
        }
        Ok(ApiFilter { disabled })
    }

    /// Loads `path`; a missing file is an error when `explicit`, else no filter.
    pub fn load(path: &Path, explicit: bool) -> Result<ApiFilter, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => ApiFilter::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(ApiFilter::default()),
            Err(e) => Err(format!("API filter {}: {e}", path.display())),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.disabled.is_empty()
    }

    pub fn check(&self, endpoint: &Endpoint) -> Result<(), Deny> {
        let name = endpoint.command_name();
        if self.disabled.contains(name) {
            return Err(Deny { field: String::new(), reason: format!("{name} is disabled on this service") });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn check(file: &str, method: &str, path: &str, expected: Result<(), &str>) {
        let filter = ApiFilter::parse(file, "test").unwrap();
        let ep = Endpoint::classify(&method.parse::<Method>().unwrap(), path).unwrap();
        assert_eq!(filter.check(&ep).map_err(|d| d.message()), expected.map_err(str::to_string), "{method} {path}");
    }

    #[test]
    fn disables_exactly_the_named_commands() {
        let seed = r#"{"disableapi": ["networkslist", "networkinspect", "networkconnect", "networkdisconnect",
                                      "networkcreate", "networkdelete"]}"#;
        check(seed, "GET", "/networks", Err("networkslist is disabled on this service"));
        check(seed, "POST", "/networks/n1/connect", Err("networkconnect is disabled on this service"));
        check(seed, "GET", "/containers/json", Ok(()));
        check(seed, "POST", "/networks/prune", Ok(()));
        let archive = r#"{"disableapi": ["containerarchive"]}"#;
        check(archive, "HEAD", "/containers/c/archive", Err("containerarchive is disabled on this service"));
        check(archive, "PUT", "/containers/c/archive", Err("containerarchive is disabled on this service"));
    }

    #[test]
    fn each_name_disables_exactly_its_own_endpoints() {
        for (name, _, _) in COMMANDS {
            let filter = ApiFilter::parse(&format!(r#"{{"disableapi": ["{name}"]}}"#), "test").unwrap();
            for (other, method, path) in COMMANDS {
                let path = path.replace("{id}", "abc").replace("{name}", "v1");
                let ep = Endpoint::classify(&method.parse::<Method>().unwrap(), &path).unwrap();
                let refused = filter.check(&ep).is_err();
                assert_eq!(refused, name == other, "disabling {name}: {method} {path} ({other})");
            }
        }
    }

    #[test]
    fn loads_2016_files_and_refuses_unknown_names() {
        assert!(
            ApiFilter::parse(r#"{"disableapi": ["containersps", "containercopy", "containerimport"]}"#, "t").is_ok()
        );
        let err = ApiFilter::parse(r#"{"disableapi": ["containerz"]}"#, "f.json").unwrap_err();
        assert!(err.contains("\"containerz\" is not a command name"), "{err}");
        let err = ApiFilter::parse(r#"{"disableapis": []}"#, "f.json").unwrap_err();
        assert!(err.contains("unknown field `disableapis`"), "{err}");
    }
}
