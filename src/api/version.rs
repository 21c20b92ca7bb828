//! Docker API versions: the `/vX.Y` path prefix and negotiation, as dockerd does it.

use std::cmp::Ordering;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// A Docker API version such as `1.41`. Compared numerically, part by part, like moby's `versions.Compare`.
/// Parsed once and shared: every request compares and copies the cluster's versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion(Arc<Parsed>);

#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    text: Box<str>,
    parts: Box<[u64]>,
}

impl ApiVersion {
    /// The lowest version mtswarm accepts, as dockerd 25 and later: dockerd 20.10 still takes 1.12, and below 1.24
    /// a start body replaces the container's HostConfig and `/containers/{id}/copy` reads files, unchecked.
    pub const MIN: &'static str = "1.24";

    /// Parses `1.41`; `None` unless it is dot-separated numbers.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        if s.is_empty() || !s.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        // A part too large for a u64 compares above every other.
        let parts = s.split('.').map(|p| p.parse::<u64>().unwrap_or(u64::MAX)).collect();
        Some(ApiVersion(Arc::new(Parsed { text: s.into(), parts })))
    }

    /// [`ApiVersion::MIN`], parsed once.
    pub fn min() -> ApiVersion {
        static MIN: LazyLock<ApiVersion> =
            LazyLock::new(|| ApiVersion::parse(ApiVersion::MIN).expect("a valid constant"));
        MIN.clone()
    }

    pub fn as_str(&self) -> &str {
        &self.0.text
    }
}

impl Ord for ApiVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        // A missing part counts as 0: 1.41 == 1.41.0.
        let (mut a, mut b) = (self.0.parts.iter().copied(), other.0.parts.iter().copied());
        loop {
            let (x, y) = match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (x, y) => (x.unwrap_or(0), y.unwrap_or(0)),
            };
            match x.cmp(&y) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
    }
}

impl PartialOrd for ApiVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.text)
    }
}

/// Splits `/v1.41/containers/json` into `(Some("1.41"), "/containers/json")`.
/// A prefix that is not a version (`/vx/...`) is left in the path, as dockerd's router does.
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    let Some(rest) = path.strip_prefix("/v") else {
        return (None, path);
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !ver.is_empty() && ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        (Some(ver), if tail.is_empty() { "/" } else { tail })
    } else {
        (None, path)
    }
}

/// Checks a client's requested version against what mtswarm serves, with dockerd's wording.
pub fn check(requested: &ApiVersion, min: &ApiVersion, max: &ApiVersion) -> Result<(), String> {
    if requested < min {
        return Err(format!(
            "client version {requested} is too old. Minimum supported API version is {min}, \
             please upgrade your client to a newer version"
        ));
    }
    if requested > max {
        return Err(format!("client version {requested} is too new. Maximum supported API version is {max}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ApiVersion {
        ApiVersion::parse(s).unwrap()
    }

    #[test]
    fn splits_prefix() {
        let check = |path, expected| assert_eq!(split_version(path), expected, "{path}");
        check("/v1.41/containers/json", (Some("1.41"), "/containers/json"));
        check("/containers/json", (None, "/containers/json"));
        check("/v1.41", (Some("1.41"), "/"));
        check("/volumes/x", (None, "/volumes/x"));
        check("/vx/info", (None, "/vx/info"));
    }

    #[test]
    fn compares_numerically() {
        assert!(v("1.9") < v("1.41"));
        assert!(v("1.41") == v("1.41"));
        assert!(v("1.41") < v("1.41.1"));
        assert!(v("2.0") > v("1.99"));
        assert_eq!(v("1.41").cmp(&v("1.41.0")), Ordering::Equal);
        assert_eq!(v("1.041").cmp(&v("1.41")), Ordering::Equal);
        assert!(v("1.24.1") > v("1.24") && v("1.24") > v("1.23.9"));
        assert_eq!(ApiVersion::min(), v(ApiVersion::MIN));
        assert!(ApiVersion::parse("1.x").is_none());
        assert!(ApiVersion::parse("").is_none());
        assert!(ApiVersion::parse("1..2").is_none());
    }

    #[test]
    fn refuses_like_dockerd() {
        let (min, max) = (v("1.12"), v("1.41"));
        assert_eq!(check(&v("1.41"), &min, &max), Ok(()));
        assert_eq!(check(&v("1.24"), &min, &max), Ok(()));
        assert_eq!(
            check(&v("1.45"), &min, &max).unwrap_err(),
            "client version 1.45 is too new. Maximum supported API version is 1.41"
        );
        assert_eq!(
            check(&v("1.11"), &min, &max).unwrap_err(),
            "client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your \
             client to a newer version"
        );
    }
}
