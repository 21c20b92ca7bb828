//! Plugins are the engines' and the operator's: a plugin runs with the engine's privileges on the host, so a
//! tenant sees none (`GET /plugins` answers `[]`, an inspect answers as for a missing plugin) and may not
//! install, enable, configure or remove any. The admin tenant and vanilla mode see the engines' plugins.

use super::escape::Deny;
use crate::api::{Endpoint, PluginOp};

/// What a tenant gets for a plugin endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum TenantPlugins {
    /// Not a plugin endpoint.
    NotPlugins,
    /// `GET /plugins`: the empty list.
    NoneListed,
    /// An inspect: as for a missing plugin.
    Missing(String),
}

/// Refuses a tenant every plugin endpoint that acts on or asks about plugins; says how the reads are answered.
pub fn for_tenant(endpoint: &Endpoint) -> Result<TenantPlugins, Deny> {
    let what = match endpoint {
        Endpoint::PluginList => return Ok(TenantPlugins::NoneListed),
        Endpoint::Plugin { name, op: PluginOp::Inspect } => return Ok(TenantPlugins::Missing(name.clone())),
        Endpoint::PluginPull | Endpoint::PluginCreate | Endpoint::PluginPrivileges => "installing plugins",
        Endpoint::Plugin { op: PluginOp::Enable | PluginOp::Disable, .. } => "enabling and disabling plugins",
        Endpoint::Plugin { op: PluginOp::Set | PluginOp::Upgrade, .. } => "configuring plugins",
        Endpoint::Plugin { op: PluginOp::Delete, .. } => "removing plugins",
        Endpoint::Plugin { op: PluginOp::Push, .. } => "pushing plugins",
        _ => return Ok(TenantPlugins::NotPlugins),
    };
    Err(Deny {
        field: String::new(),
        reason: format!("{what} is reserved to the admin tenant: plugins run with the engines' privileges"),
    })
}

/// dockerd's answer for a plugin it does not have.
pub fn missing_message(name: &str) -> String {
    format!("plugin \"{name}\" not found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn check(method: &str, path: &str, expected: Result<TenantPlugins, &str>) {
        let ep = Endpoint::classify(&method.parse::<Method>().unwrap(), path).unwrap();
        let got = for_tenant(&ep).map_err(|d| d.reason);
        assert_eq!(
            got.as_ref().map_err(|r| r.split(':').next().unwrap_or_default()),
            expected.as_ref().map_err(|r| *r)
        );
    }

    #[test]
    fn tenants_see_no_plugins_and_change_none() {
        check("GET", "/plugins", Ok(TenantPlugins::NoneListed));
        check("GET", "/plugins/vieux/sshfs/json", Ok(TenantPlugins::Missing("vieux/sshfs".into())));
        check("POST", "/plugins/pull", Err("installing plugins is reserved to the admin tenant"));
        check("POST", "/plugins/x/enable", Err("enabling and disabling plugins is reserved to the admin tenant"));
        check("POST", "/plugins/x/set", Err("configuring plugins is reserved to the admin tenant"));
        check("DELETE", "/plugins/x", Err("removing plugins is reserved to the admin tenant"));
        check("GET", "/containers/json", Ok(TenantPlugins::NotPlugins));
    }
}
