//! Images are a shared catalogue: tenants list, inspect, read the history of, pull and save them; only the
//! admin tenant changes the catalogue (tag, remove, push, prune, load, import, commit, build), since an
//! image one tenant changes is the image every tenant runs.

use super::escape::Deny;
use crate::api::{Endpoint, ImageOp};

/// Refuses, for a tenant, the endpoints that change the shared image catalogue. `query` is the request's
/// query string: `POST /images/create` pulls (allowed) unless it imports (`fromSrc`).
pub fn check_endpoint(endpoint: &Endpoint, query: Option<&str>) -> Result<(), Deny> {
    let what = match endpoint {
        Endpoint::Image { op: ImageOp::Tag, .. } => "tagging images",
        Endpoint::Image { op: ImageOp::Delete, .. } => "removing images",
        Endpoint::Image { op: ImageOp::Push, .. } => "pushing images",
        Endpoint::ImagePrune => "pruning images",
        Endpoint::ImageLoad => "loading images",
        Endpoint::Build | Endpoint::BuildPrune | Endpoint::BuildCancel | Endpoint::Session | Endpoint::Grpc => {
            "building images"
        }
        Endpoint::Commit => "committing containers to images",
        Endpoint::ImageCreate if imports(query) => "importing images",
        _ => return Ok(()),
    };
    Err(Deny {
        field: String::new(),
        reason: format!("{what} is reserved to the admin tenant: images are a catalogue shared by all tenants"),
    })
}

/// What a tenant's `POST /images/create?fromImage=...` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    /// The repository, in Docker's familiar form (`busybox`, `team/app`, `reg:5000/x`).
    pub name: String,
    /// The tag the pull writes; `None` for a pull by digest (which writes no tag) or of every tag.
    pub tag: Option<String>,
    /// True for `docker pull -a`: every tag of the repository.
    pub all_tags: bool,
    /// The registry's host (and port) when the name gives one.
    pub registry: Option<String>,
}

impl Pull {
    /// The registry's host without its port, unbracketed.
    pub fn registry_host(&self) -> Option<&str> {
        self.registry.as_deref().map(registry_host)
    }
}

/// Reads a pull's query as dockerd does (`fromImage`, then `tag`, which may be a digest), and refuses one
/// that names a registry on a loopback, link-local or unspecified address: the engine host would fetch from
/// its own services. `None` for a request that pulls nothing (an import, or no `fromImage`).
pub fn pull_of(query: Option<&str>) -> Result<Option<Pull>, Deny> {
    if imports(query) {
        return Ok(None);
    }
    let pairs = crate::api::query::pairs(query);
    let Some(image) = crate::api::query::first(&pairs, "fromImage").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let tag = crate::api::query::first(&pairs, "tag").filter(|v| !v.is_empty());
    let deny = |reason: String| Deny { field: "fromImage".to_string(), reason };
    if !image.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@[]".contains(&b)) {
        return Err(deny(format!("{image:?} is not an image reference")));
    }
    let (mut name, mut digest) = match image.split_once('@') {
        Some((n, _)) => (n.to_string(), true),
        None => (image.to_string(), false),
    };
    let mut in_name_tag = None;
    let last = name.rfind('/').map_or(0, |i| i + 1);
    if let Some(i) = name[last..].rfind(':') {
        in_name_tag = Some(name[last + i + 1..].to_string());
        name.truncate(last + i);
    }
    let tag = match tag {
        Some(t) if t.contains(':') => {
            digest = true;
            None
        }
        Some(t) => Some(t.to_string()),
        None => in_name_tag,
    };
    let registry = registry_of_reference(&name).map(str::to_string);
    let familiar = {
        let n = name.strip_prefix("docker.io/").or_else(|| name.strip_prefix("index.docker.io/")).unwrap_or(&name);
        n.strip_prefix("library/").filter(|r| !r.contains('/')).unwrap_or(n).to_string()
    };
    let pull =
        Pull { name: familiar, all_tags: tag.is_none() && !digest, tag: if digest { None } else { tag }, registry };
    if let Some(registry) = &pull.registry {
        check_registry(registry).map_err(|d| deny(d.reason))?;
    }
    Ok(Some(pull))
}

/// The registry host without its port, unbracketed (`[::1]:5000` is `::1`).
pub fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    registry.rsplit_once(':').map_or(registry, |(h, _)| h)
}

/// The registry an image reference names (`reg:5000/team/app` is `reg:5000`), as the engine's reference parser
/// tells it from a Docker Hub name: a first component with a dot or a port, or `localhost`.
pub fn registry_of_reference(reference: &str) -> Option<&str> {
    let (first, _) = reference.split_once('/')?;
    ((first.contains('.') || first.contains(':') || first == "localhost")
        && !matches!(first, "docker.io" | "index.docker.io"))
    .then_some(first)
}

/// The registry a login names (`serveraddress`: a host, `host:port`, or a URL).
pub fn registry_of_address(address: &str) -> Option<&str> {
    let a = address.trim();
    let a = a.split_once("://").map_or(a, |(_, rest)| rest);
    let a = a.split('/').next().unwrap_or_default();
    (!a.is_empty()).then_some(a)
}

/// Refuses a registry (`host[:port]`) the engine host would reach on itself: a loopback, link-local or unspecified
/// address, or `localhost`. Every request of a tenant that makes the engine contact a registry (pull, search,
/// distribution inspect, login) is checked with this; names that resolve to such an address are the gateway's to
/// check.
pub fn check_registry(registry: &str) -> Result<(), Deny> {
    let host = registry_host(registry);
    let local_name = host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost");
    if local_name || host.parse::<std::net::IpAddr>().is_ok_and(|ip| forbidden_registry_address(&ip)) {
        return Err(Deny::at(
            "",
            format!(
                "the registry {registry} is refused: a registry on a loopback, link-local or unspecified address is \
                 the engine host's own"
            ),
        ));
    }
    Ok(())
}

/// An address no tenant's pull may make an engine fetch from: loopback, link-local, unspecified (also as
/// IPv4-mapped IPv6).
pub fn forbidden_registry_address(ip: &std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let v4 = |a: &std::net::Ipv4Addr| a.is_loopback() || a.is_link_local() || a.is_unspecified() || a.octets()[0] == 0;
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => {
            a.is_loopback()
                || a.is_unspecified()
                || (a.segments()[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some_and(|m| v4(&m))
        }
    }
}

/// The refusal of a tenant's pull that would change an existing tag (or, with `-a`, any tag of a repository
/// that has one here).
pub fn existing_tag(what: &str) -> Deny {
    Deny {
        field: "fromImage".to_string(),
        reason: format!(
            "pulling {what} is refused: it exists on this service already, and a tenant's pull may not change what \
             an existing tag points to for every tenant (the admin may); pull a tag that does not exist yet"
        ),
    }
}

fn imports(query: Option<&str>) -> bool {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, v)| k == "fromSrc" && !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn registries_a_request_names() {
        assert_eq!(registry_of_reference("reg:5000/team/app:1"), Some("reg:5000"));
        assert_eq!(registry_of_reference("localhost/x"), Some("localhost"));
        assert_eq!(registry_of_reference("team/app"), None);
        assert_eq!(registry_of_reference("busybox"), None);
        assert_eq!(registry_of_reference("docker.io/library/busybox"), None);
        assert_eq!(registry_of_address("https://127.0.0.1:5000/v2/"), Some("127.0.0.1:5000"));
        assert_eq!(registry_of_address("169.254.169.254"), Some("169.254.169.254"));
        assert_eq!(registry_of_address(""), None);
        for own in ["127.0.0.1:5000", "localhost", "[::1]:5000", "169.254.169.254", "0.0.0.0", "x.localhost:1"] {
            assert!(check_registry(own).is_err(), "{own}");
        }
        for other in ["registry.example:5000", "192.0.2.1", "[2001:db8::1]:443"] {
            assert!(check_registry(other).is_ok(), "{other}");
        }
    }

    fn check(method: &str, path: &str, query: Option<&str>, refused: bool) {
        let ep = Endpoint::classify(&method.parse::<Method>().unwrap(), path).unwrap();
        assert_eq!(check_endpoint(&ep, query).is_err(), refused, "{method} {path}?{query:?}");
    }

    #[test]
    fn only_reading_and_pulling_are_open_to_tenants() {
        check("GET", "/images/json", None, false);
        check("GET", "/images/busybox/json", None, false);
        check("GET", "/images/busybox/history", None, false);
        check("GET", "/images/get", Some("names=busybox"), false);
        check("POST", "/images/create", Some("fromImage=busybox&tag=latest"), false);
        check("POST", "/images/create", Some("fromSrc=-&repo=x"), true);
        check("POST", "/images/busybox/tag", Some("repo=x"), true);
        check("DELETE", "/images/busybox", None, true);
        check("POST", "/images/busybox/push", None, true);
        check("POST", "/images/prune", None, true);
        check("POST", "/images/load", None, true);
        check("POST", "/build", None, true);
        check("POST", "/commit", Some("container=x"), true);
    }

    fn pull(query: &str) -> String {
        match pull_of(Some(query)) {
            Ok(Some(p)) => format!("{} {:?} all={} reg={:?}", p.name, p.tag, p.all_tags, p.registry),
            Ok(None) => "none".to_string(),
            Err(d) => format!("denied: {}", d.reason),
        }
    }

    #[test]
    fn reads_pulls_and_refuses_local_registries() {
        assert_eq!(pull("fromImage=busybox&tag=latest"), r#"busybox Some("latest") all=false reg=None"#);
        assert_eq!(pull("fromImage=docker.io/library/busybox:1"), r#"busybox Some("1") all=false reg=None"#);
        assert_eq!(pull("fromImage=team/app"), "team/app None all=true reg=None");
        assert_eq!(pull("fromImage=busybox&tag=sha256:abc"), "busybox None all=false reg=None");
        assert_eq!(pull("fromImage=busybox@sha256:abc"), "busybox None all=false reg=None");
        assert_eq!(
            pull("fromImage=reg.example:5000/x/y&tag=2"),
            r#"reg.example:5000/x/y Some("2") all=false reg=Some("reg.example:5000")"#
        );
        assert_eq!(pull("fromSrc=-&repo=x"), "none");
        for refused in [
            "fromImage=127.0.0.1:5999/x&tag=1",
            "fromImage=127.9.0.1/x",
            "fromImage=localhost:5000/x",
            "fromImage=[::1]:5000/x",
            "fromImage=[::ffff:127.0.0.1]:5000/x",
            "fromImage=169.254.169.254/x",
            "fromImage=0.0.0.0:5000/x",
            "fromImage=[fe80::1]:5000/x",
            "fromImage=x%3Fa",
        ] {
            assert!(pull(refused).starts_with("denied:"), "{refused}: {}", pull(refused));
        }
        assert!(pull("fromImage=10.0.0.1:5000/x").starts_with("10.0.0.1:5000/x"));
    }
}
