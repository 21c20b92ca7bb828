//! A small OpenStack Keystone v3 client: validate a token, list the projects a token's user may use,
//! and keep the optional service account's own token.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// Why Keystone gave no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeystoneError {
    /// Keystone did not answer in time, could not be reached, or failed (5xx).
    #[error("Keystone at {url} did not answer: {cause}")]
    Unavailable { url: String, cause: String },
    /// The service account's credentials were refused: an operator's mistake.
    #[error("Keystone refused mtswarm's service account: {0}")]
    ServiceAccount(String),
}

/// The operator's optional service account, used to validate tenants' tokens.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub user: String,
    pub password: String,
    pub project: String,
    pub domain: String,
}

#[derive(Debug, Clone)]
pub struct KeystoneConfig {
    /// The v3 API root, without a trailing slash: `http://keystone:5000/v3`.
    pub url: String,
    pub timeout: Duration,
    pub service: Option<ServiceAccount>,
}

impl KeystoneConfig {
    /// Normalizes the operator's URL to the v3 root. Keystone removed v2.0 in 2018 (Queens); a v2.0 URL,
    /// as in the seed's example, is served by the same server's v3 API.
    pub fn v3_url(given: &str) -> Result<(String, bool), String> {
        let u = given.trim().trim_end_matches('/');
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(format!("SWARM_KEYSTONE_URL {given:?}: expected http://HOST:PORT/v3"));
        }
        if u.starts_with("https://") {
            return Err(format!("SWARM_KEYSTONE_URL {given:?}: https to Keystone is not supported yet"));
        }
        if let Some(root) = u.strip_suffix("/v2.0") {
            return Ok((format!("{root}/v3"), true));
        }
        if u.ends_with("/v3") {
            return Ok((u.to_string(), false));
        }
        Ok((format!("{u}/v3"), false))
    }
}

/// What Keystone says of a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub user_id: String,
    /// The project the token is scoped to; `None` for an unscoped token.
    pub project_id: Option<String>,
    pub expires_at: SystemTime,
}

pub struct Keystone {
    cfg: KeystoneConfig,
    http: Client<HttpConnector, Full<Bytes>>,
    /// The service account's token and when to stop using it.
    service_token: Mutex<Option<(String, SystemTime)>>,
}

impl Keystone {
    pub fn new(cfg: KeystoneConfig) -> Keystone {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(cfg.timeout));
        conn.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(conn);
        Keystone { cfg, http, service_token: Mutex::new(None) }
    }

    pub fn url(&self) -> &str {
        &self.cfg.url
    }

    /// Validates a token: `Ok(None)` when Keystone says it is not valid (unknown, expired, revoked).
    pub async fn validate(&self, token: &str) -> Result<Option<TokenInfo>, KeystoneError> {
        for attempt in 0..2 {
            let caller = match &self.cfg.service {
                Some(_) => self.service_token(attempt > 0).await?,
                None => token.to_string(),
            };
            let (status, body) = self
                .call(
                    Method::GET,
                    "/auth/tokens?nocatalog",
                    &[("x-auth-token", &caller), ("x-subject-token", token)],
                    None,
                )
                .await?;
            match status {
                StatusCode::OK => return Ok(parse_token(&body)),
                // The service account's own token may have expired or been revoked: renew it once.
                StatusCode::UNAUTHORIZED if self.cfg.service.is_some() && attempt == 0 => continue,
                // The service account may not validate tokens (it lacks the `service` role): the operator's
                // mistake, which must not be reported to users as their token being invalid.
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if self.cfg.service.is_some() => {
                    return Err(KeystoneError::ServiceAccount(format!("validating a token answered {status}")))
                }
                StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Ok(None),
                s => return Err(self.unavailable(format!("validation answered {s}"))),
            }
        }
        Ok(None)
    }

    /// Whether Keystone answers: its v3 root (the version document) with a status below 500.
    pub async fn reachable(&self) -> Result<(), String> {
        match self.call(Method::GET, "", &[], None).await {
            Ok((status, _)) if !status.is_server_error() => Ok(()),
            Ok((status, _)) => Err(format!("Keystone answered {status}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The ids of the projects the token's user may scope to.
    pub async fn projects(&self, token: &str) -> Result<Vec<String>, KeystoneError> {
        let (status, body) = self.call(Method::GET, "/auth/projects", &[("x-auth-token", token)], None).await?;
        if status != StatusCode::OK {
            return Err(self.unavailable(format!("listing projects answered {status}")));
        }
        Ok(body
            .get("projects")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(|p| p.get("id").and_then(Value::as_str)).map(str::to_string).collect())
            .unwrap_or_default())
    }

    async fn service_token(&self, renew: bool) -> Result<String, KeystoneError> {
        if !renew {
            if let Some((t, until)) = self.service_token.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                if SystemTime::now() < until {
                    return Ok(t);
                }
            }
        }
        let Some(sa) = &self.cfg.service else {
            return Err(KeystoneError::ServiceAccount("no service account is configured".into()));
        };
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": sa.user, "domain": {"id": sa.domain}, "password": sa.password}}},
            "scope": {"project": {"name": sa.project, "domain": {"id": sa.domain}}}
        }});
        let req = self.request(Method::POST, "/auth/tokens?nocatalog", &[], Some(body))?;
        let resp = self.send(req).await?;
        let status = resp.0;
        if status != StatusCode::CREATED && status != StatusCode::OK {
            return Err(if status.is_server_error() {
                self.unavailable(format!("service login answered {status}"))
            } else {
                KeystoneError::ServiceAccount(format!("login of user {:?} answered {status}", sa.user))
            });
        }
        let token = resp.2.ok_or_else(|| self.unavailable("service login returned no X-Subject-Token".into()))?;
        let expires = parse_token(&resp.1).map(|t| t.expires_at).unwrap_or_else(SystemTime::now);
        // Renew a minute early so a validation never carries a token about to expire.
        let until = expires.checked_sub(Duration::from_secs(60)).unwrap_or(expires);
        *self.service_token.lock().unwrap_or_else(|e| e.into_inner()) = Some((token.clone(), until));
        Ok(token)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), KeystoneError> {
        let req = self.request(method, path, headers, body)?;
        let (status, json, _) = self.send(req).await?;
        Ok((status, json))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Request<Full<Bytes>>, KeystoneError> {
        let mut b = Request::builder().method(method).uri(format!("{}{}", self.cfg.url, path));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let bytes = match body {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        b.body(Full::new(bytes)).map_err(|e| self.unavailable(e.to_string()))
    }

    /// Sends with the configured timeout over the whole exchange; returns status, JSON body and
    /// the `X-Subject-Token` header.
    async fn send(&self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Value, Option<String>), KeystoneError> {
        let exchange = async {
            let resp =
                self.http.request(req).await.map_err(|e| self.unavailable(crate::cluster::node::error_chain(&e)))?;
            let status = resp.status();
            let subject = resp.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).map(str::to_string);
            let bytes = resp.into_body().collect().await.map_err(|e| self.unavailable(e.to_string()))?.to_bytes();
            let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok((status, json, subject))
        };
        match tokio::time::timeout(self.cfg.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(self.unavailable(format!("no answer within {} s", self.cfg.timeout.as_secs_f32()))),
        }
    }

    fn unavailable(&self, cause: String) -> KeystoneError {
        KeystoneError::Unavailable { url: self.cfg.url.clone(), cause }
    }
}

fn parse_token(body: &Value) -> Option<TokenInfo> {
    let t = body.get("token")?;
    let user_id = t.pointer("/user/id").and_then(Value::as_str)?.to_string();
    let project_id = t.pointer("/project/id").and_then(Value::as_str).map(str::to_string);
    let expires_at = parse_rfc3339(t.get("expires_at").and_then(Value::as_str)?)?;
    Some(TokenInfo { user_id, project_id, expires_at })
}

/// Parses Keystone's `2026-11-25T15:30:00.000000Z` (UTC, optional fraction).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    let nanos: u32 = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_urls() {
        let check = |given: &str, want: Result<(&str, bool), &str>| {
            let got = KeystoneConfig::v3_url(given);
            match want {
                Ok((u, legacy)) => assert_eq!(got, Ok((u.to_string(), legacy)), "{given}"),
                Err(part) => assert!(got.is_err_and(|e| e.contains(part)), "{given}"),
            }
        };
        check("http://k:5000/v3", Ok(("http://k:5000/v3", false)));
        check("http://k:5000/v3/", Ok(("http://k:5000/v3", false)));
        check("http://cloud.lab.fi-ware.org:4730/v2.0/", Ok(("http://cloud.lab.fi-ware.org:4730/v3", true)));
        check("http://k:5000", Ok(("http://k:5000/v3", false)));
        check("k:5000", Err("expected http://"));
    }

    #[test]
    fn parses_keystone_times() {
        let t = parse_rfc3339("2026-11-25T15:30:00.000000Z").unwrap();
        assert_eq!(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(), 1795620600);
        let t = parse_rfc3339("1970-01-01T00:00:01.5Z").unwrap();
        assert_eq!(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis(), 1500);
        assert!(parse_rfc3339("2026-13-01T00:00:00Z").is_none());
        assert!(parse_rfc3339("garbage").is_none());
    }
}
