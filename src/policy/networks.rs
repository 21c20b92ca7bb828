//! What a tenant's network create may ask for (`POST /networks/create`, in the decoder's canonical document).
//!
//! A network's driver and options act on the engine host: `macvlan`, `ipvlan` and `com.docker.network.bridge.name`
//! put a host interface on the tenant's network, a plugin driver runs the operator's code, and a subnet that
//! overlaps the host's own networks or another tenant's makes routing ambiguous. So tenants get bridge networks
//! (and overlay ones where the engines share a cluster store), options from a short allow-list, and subnets only
//! inside the operator's pool.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::escape::Deny;

/// The operator's settings for tenants' networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkRules {
    /// `--tenant-subnets`: the pools a tenant's subnets must lie in; empty: a tenant names no subnet and the engine
    /// chooses one.
    pub tenant_subnets: Vec<Cidr>,
    /// The engines share a cluster store, so `overlay` networks work.
    pub overlay: bool,
}

/// Driver options a tenant may give: the MTU, and overlay encryption.
const ALLOWED_OPTIONS: [&str; 2] = ["com.docker.network.driver.mtu", "encrypted"];

/// Checks a network create body.
pub fn check_create(doc: &Value, rules: &NetworkRules) -> Result<(), Deny> {
    let top = doc.as_object().ok_or_else(|| Deny::at("", "the request body must be a JSON object"))?;
    let text = |obj: &Map<String, Value>, k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let flag = |k: &str| top.get(k).and_then(Value::as_bool).unwrap_or(false);
    match text(top, "Driver").as_str() {
        "" | "bridge" => {}
        "overlay" if rules.overlay => {}
        "overlay" => {
            return Err(Deny::at(
                "Driver",
                "overlay networks need engines that share a cluster store, and these do not",
            ))
        }
        other => return Err(Deny::at("Driver", format!("the network driver {other:?} is not available to tenants"))),
    }
    if let Some(opts) = top.get("Options").and_then(Value::as_object) {
        if let Some(k) = opts.keys().find(|k| !ALLOWED_OPTIONS.contains(&k.as_str())) {
            return Err(Deny::at("Options", format!("the option {k:?} is not available to tenants")));
        }
    }
    for field in ["ConfigOnly", "Ingress"] {
        if flag(field) {
            return Err(Deny::at(field, "configuration-only and ingress networks are the operator's"));
        }
    }
    if top.get("ConfigFrom").is_some() {
        return Err(Deny::at("ConfigFrom", "networks made from another network's configuration are the operator's"));
    }
    if !text(top, "Scope").is_empty() {
        return Err(Deny::at("Scope", "the scope of a network follows its driver on this service"));
    }
    let Some(ipam) = top.get("IPAM").and_then(Value::as_object) else { return Ok(()) };
    if !matches!(text(ipam, "Driver").as_str(), "" | "default") {
        return Err(Deny::at("IPAM.Driver", "only the default IPAM driver is available to tenants"));
    }
    if ipam.get("Options").and_then(Value::as_object).is_some_and(|o| !o.is_empty()) {
        return Err(Deny::at("IPAM.Options", "IPAM driver options are not available to tenants"));
    }
    for pool in ipam.get("Config").and_then(Value::as_array).into_iter().flatten() {
        let Some(pool) = pool.as_object() else { continue };
        for field in ["Subnet", "IPRange", "Gateway"] {
            check_address(&text(pool, field), &format!("IPAM.Config.{field}"), rules)?;
        }
        for (name, addr) in pool.get("AuxiliaryAddresses").and_then(Value::as_object).into_iter().flatten() {
            let addr = addr.as_str().unwrap_or_default();
            check_address(addr, &format!("IPAM.Config.AuxiliaryAddresses[{name:?}]"), rules)?;
        }
    }
    Ok(())
}

/// An address or a CIDR a tenant names must lie in one of the operator's pools.
fn check_address(given: &str, field: &str, rules: &NetworkRules) -> Result<(), Deny> {
    if given.is_empty() {
        return Ok(());
    }
    if rules.tenant_subnets.is_empty() {
        return Err(Deny::at(field, "tenants do not choose subnets on this service; the engine assigns one"));
    }
    let net = Cidr::parse(given).or_else(|| given.parse::<IpAddr>().ok().map(Cidr::host));
    let Some(net) = net else { return Err(Deny::at(field, format!("{given:?} is not an address or a CIDR"))) };
    if rules.tenant_subnets.iter().any(|pool| pool.contains(&net)) {
        return Ok(());
    }
    let pools: Vec<String> = rules.tenant_subnets.iter().map(|p| p.to_string()).collect();
    Err(Deny::at(field, format!("{given} is outside the subnets tenants may use ({})", pools.join(", "))))
}

/// An IP network, `10.213.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX`; the address's host bits need not be zero (Docker accepts `10.1.2.3/16`).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = s.trim().split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    fn host(addr: IpAddr) -> Cidr {
        Cidr { addr, prefix: if addr.is_ipv4() { 32 } else { 128 } }
    }

    fn bits(addr: &IpAddr) -> (u128, u8) {
        match addr {
            IpAddr::V4(a) => (u128::from(u32::from(*a)), 32),
            IpAddr::V6(a) => (u128::from(*a), 128),
        }
    }

    /// True if every address of `other` is in this network.
    pub fn contains(&self, other: &Cidr) -> bool {
        let ((a, width), (b, other_width)) = (Cidr::bits(&self.addr), Cidr::bits(&other.addr));
        if width != other_width || other.prefix < self.prefix {
            return false;
        }
        let shift = u32::from(width - self.prefix);
        shift >= 128 || (a >> shift) == (b >> shift)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value, rules: &NetworkRules, expected: Result<(), &str>) {
        let got = check_create(&body, rules);
        assert_eq!(got.as_ref().map(|_| ()).map_err(|d| d.field.as_str()), expected, "{body}: {got:?}");
    }

    #[test]
    fn drivers_and_options() {
        let rules = NetworkRules::default();
        check(json!({"Name": "n"}), &rules, Ok(()));
        check(
            json!({"Name": "n", "Driver": "bridge", "Internal": true, "Attachable": true, "EnableIPv6": true,
                     "Labels": {"a": "b"}, "Options": {"com.docker.network.driver.mtu": "1400"}}),
            &rules,
            Ok(()),
        );
        for driver in ["macvlan", "ipvlan", "host", "null", "weaveworks/net-plugin:latest"] {
            check(json!({"Driver": driver}), &rules, Err("Driver"));
        }
        check(json!({"Driver": "overlay"}), &rules, Err("Driver"));
        check(json!({"Driver": "overlay"}), &NetworkRules { overlay: true, ..Default::default() }, Ok(()));
        for opt in [
            "com.docker.network.bridge.name",
            "com.docker.network.bridge.enable_icc",
            "parent",
            "com.docker.network.driver.overlay.vxlanid_list",
        ] {
            check(json!({"Options": {opt: "x"}}), &rules, Err("Options"));
        }
        check(json!({"ConfigOnly": true}), &rules, Err("ConfigOnly"));
        check(json!({"Ingress": true}), &rules, Err("Ingress"));
        check(json!({"Ingress": false, "ConfigOnly": false}), &rules, Ok(()));
        check(json!({"ConfigFrom": {"Network": "x"}}), &rules, Err("ConfigFrom"));
        check(json!({"Scope": "swarm"}), &rules, Err("Scope"));
        check(json!({"IPAM": {"Driver": "other"}}), &rules, Err("IPAM.Driver"));
        check(json!({"IPAM": {"Driver": "default", "Options": {"a": "b"}}}), &rules, Err("IPAM.Options"));
    }

    #[test]
    fn subnets_only_in_the_pool() {
        let none = NetworkRules::default();
        let pool = NetworkRules { tenant_subnets: vec![Cidr::parse("10.213.0.0/16").unwrap()], overlay: false };
        let subnet = |s: &str| json!({"IPAM": {"Config": [{"Subnet": s}]}});
        check(subnet("10.213.5.0/24"), &none, Err("IPAM.Config.Subnet"));
        check(subnet("10.213.5.0/24"), &pool, Ok(()));
        check(subnet("10.213.0.0/16"), &pool, Ok(()));
        check(subnet("10.212.0.0/15"), &pool, Err("IPAM.Config.Subnet"));
        check(subnet("10.99.7.0/24"), &pool, Err("IPAM.Config.Subnet"));
        check(subnet("fd00::/64"), &pool, Err("IPAM.Config.Subnet"));
        check(subnet("nonsense"), &pool, Err("IPAM.Config.Subnet"));
        check(
            json!({"IPAM": {"Config": [{"Subnet": "10.213.5.0/24", "Gateway": "10.213.5.1",
                                         "IPRange": "10.213.5.128/25"}]}}),
            &pool,
            Ok(()),
        );
        check(
            json!({"IPAM": {"Config": [{"Subnet": "10.213.5.0/24", "Gateway": "192.168.0.1"}]}}),
            &pool,
            Err("IPAM.Config.Gateway"),
        );
        check(
            json!({"IPAM": {"Config": [{"AuxiliaryAddresses": {"r": "172.17.0.1"}}]}}),
            &pool,
            Err("IPAM.Config.AuxiliaryAddresses[\"r\"]"),
        );
        check(json!({"IPAM": {"Config": []}}), &none, Ok(()));
    }
}
