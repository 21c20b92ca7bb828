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

fn imports(query: Option<&str>) -> bool {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, v)| k == "fromSrc" && !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

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
}
