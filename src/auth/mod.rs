//! Authentication: who is asking, proven on every request before anything is forwarded.
//!
//! Backends: mtswarm's token file (the embedded default), OpenStack Keystone v3, or `None` (trust the
//! tenant header, as the 2016 system did without Keystone; only when the operator says so). Keystone's
//! answers are cached ([`cache`]): a valid token until the earlier of its expiry and the TTL, a rejected one
//! for [`NEGATIVE_TTL`]; concurrent checks of one token make one call.
//!
//! **Architecture Invariant:** a token never leaves this module: it is not logged, not echoed in an error
//! and not forwarded to an engine.

pub mod cache;
pub mod keystone;
pub mod tokenfile;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::tenant::TenantId;
use cache::Cache;
use keystone::{Keystone, KeystoneError, TokenInfo};
use tokenfile::TokenFile;

/// How long a token Keystone rejected is remembered as rejected.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// Who a request is from, once proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub tenant: TenantId,
    /// The admin tenant sees and may do everything.
    pub admin: bool,
}

/// What a request says about who it is from.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    pub token: Option<&'a str>,
    pub tenant: Option<&'a str>,
    /// The common name of the client's verified TLS certificate.
    pub cert_cn: Option<&'a str>,
}

/// Why a request was not authenticated. The messages name what is wrong, never which tenants exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: the request has no X-Auth-Token header")]
    Missing,
    #[error("authentication required: the request has no X-Auth-TenantId header")]
    MissingTenant,
    #[error("authentication failed: the token is invalid or expired")]
    Invalid,
    #[error("authentication failed: the token is not valid for tenant {0:?}")]
    NotForTenant(String),
    #[error("authentication failed: X-Auth-TenantId {0:?} is not a valid tenant id")]
    BadTenantId(String),
    #[error("authentication failed: the project id {0:?} cannot be a tenant id (1 to 64 of A-Z a-z 0-9 _ . -)")]
    BadProjectId(String),
    #[error("authentication failed: the token is not scoped to a project; send X-Auth-TenantId")]
    Unscoped,
    #[error("authentication failed: the user is not a member of the members tenant")]
    NotMember,
    #[error("authentication failed: the members tenant is not a working tenant")]
    MembersTenant,
    #[error("authentication service unavailable: {0}")]
    Unavailable(String),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        let status = match e {
            AuthError::Unavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::UNAUTHORIZED,
        };
        ApiError::new(status, e.to_string())
    }
}

/// Which backend proves identities.
pub enum Backend {
    TokenFile(TokenFile),
    Keystone {
        client: Box<Keystone>,
        members_tenant: Option<String>,
    },
    /// Trusts `X-Auth-TenantId`.
    TrustHeader,
}

/// What the cache keeps of a token Keystone accepted.
#[derive(Debug, Clone)]
pub struct TokenFacts {
    pub info: TokenInfo,
    /// The projects the user may scope to, when they had to be asked (unscoped tokens, members tenant).
    pub projects: Option<Vec<String>>,
}

pub struct Authenticator {
    backend: Backend,
    /// Client certificate common names that stand for a tenant, with `--tlsverify`.
    cn_tenants: std::sync::RwLock<Arc<HashMap<String, String>>>,
    admin_tenant: Option<String>,
    ttl: Duration,
    cache: Cache<[u8; 32], Option<Arc<TokenFacts>>, KeystoneError>,
}

impl Authenticator {
    pub fn new(backend: Backend, admin_tenant: Option<String>, ttl: Duration) -> Authenticator {
        Authenticator { backend, cn_tenants: Default::default(), admin_tenant, ttl, cache: Cache::new() }
    }

    /// Lets verified client certificates with these common names act as these tenants.
    pub fn with_cn_tenants(self, map: HashMap<String, String>) -> Authenticator {
        self.set_cn_tenants(map);
        self
    }

    /// Replaces the common names that stand for tenants (a reload).
    pub fn set_cn_tenants(&self, map: HashMap<String, String>) {
        *self.cn_tenants.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Whether identities can be proven now: the token file reads, or Keystone answers.
    pub async fn health(&self) -> Result<(), String> {
        match &self.backend {
            Backend::TokenFile(file) => file.check(),
            Backend::Keystone { client, .. } => client.reachable().await,
            Backend::TrustHeader => Ok(()),
        }
    }

    pub async fn authenticate(&self, creds: Credentials<'_>) -> Result<Identity, AuthError> {
        if let Some(t) = creds.tenant {
            if !TenantId::valid(t) {
                return Err(AuthError::BadTenantId(t.to_string()));
            }
        }
        // A request without a token may be vouched for by its client certificate.
        let cn_tenants = self.cn_tenants.read().unwrap_or_else(|e| e.into_inner()).clone();
        let by_cert = creds.token.is_none().then(|| creds.cert_cn.and_then(|cn| cn_tenants.get(cn))).flatten();
        let tenant = match &self.backend {
            _ if by_cert.is_some() => {
                let owner = by_cert.cloned().unwrap_or_default();
                match creds.tenant {
                    Some(t) if t != owner => return Err(AuthError::NotForTenant(t.to_string())),
                    _ => owner,
                }
            }
            Backend::TrustHeader => creds.tenant.ok_or(AuthError::MissingTenant)?.to_string(),
            Backend::TokenFile(file) => {
                let token = creds.token.ok_or(AuthError::Missing)?;
                let owner = file.tenant_of(token).ok_or(AuthError::Invalid)?;
                match creds.tenant {
                    Some(t) if t != owner => return Err(AuthError::NotForTenant(t.to_string())),
                    _ => owner,
                }
            }
            Backend::Keystone { client, members_tenant } => {
                let token = creds.token.ok_or(AuthError::Missing)?;
                let facts = self.keystone_facts(client, token, members_tenant.is_some()).await?;
                decide(&facts, creds.tenant, members_tenant.as_deref())?
            }
        };
        let admin = self.admin_tenant.as_deref() == Some(tenant.as_str());
        // Every backend's answer is checked here, once: a project id from Keystone too becomes part of names.
        let tenant = TenantId::new(tenant.clone()).ok_or(AuthError::BadProjectId(tenant))?;
        Ok(Identity { tenant, admin })
    }

    async fn keystone_facts(
        &self,
        client: &Keystone,
        token: &str,
        need_projects: bool,
    ) -> Result<Arc<TokenFacts>, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let ttl = self.ttl;
        let missed = std::sync::atomic::AtomicBool::new(false);
        let missed = &missed;
        let looked_up = self
            .cache
            .get_or_fetch(key, || async move {
                missed.store(true, std::sync::atomic::Ordering::Relaxed);
                let Some(info) = client.validate(token).await? else {
                    return Ok((None, Instant::now() + NEGATIVE_TTL));
                };
                // Unscoped tokens, and a members tenant, need the list of the user's projects. Asked once
                // here, so the cached answer serves every tenant the token is used for.
                let projects =
                    if info.project_id.is_none() || need_projects { Some(client.projects(token).await?) } else { None };
                let left = info.expires_at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
                Ok((Some(Arc::new(TokenFacts { info, projects })), Instant::now() + left.min(ttl)))
            })
            .await;
        crate::ops::metrics::metrics().auth_cache(!missed.load(std::sync::atomic::Ordering::Relaxed));
        let looked_up = looked_up.map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let facts = looked_up.ok_or(AuthError::Invalid)?;
        // A cached token may expire before its cache entry does.
        if facts.info.expires_at <= SystemTime::now() {
            return Err(AuthError::Invalid);
        }
        Ok(facts)
    }
}

/// The tenant a valid Keystone token may act as, or why not.
pub fn decide(facts: &TokenFacts, requested: Option<&str>, members: Option<&str>) -> Result<String, AuthError> {
    let may_use = |p: &str| facts.projects.as_ref().is_some_and(|ps| ps.iter().any(|x| x == p));
    if let Some(m) = members {
        if requested == Some(m) || (requested.is_none() && facts.info.project_id.as_deref() == Some(m)) {
            return Err(AuthError::MembersTenant);
        }
        if !may_use(m) {
            return Err(AuthError::NotMember);
        }
    }
    match (&facts.info.project_id, requested) {
        (Some(p), None) => Ok(p.clone()),
        (Some(p), Some(t)) if p == t => Ok(p.clone()),
        (Some(_), Some(t)) => Err(AuthError::NotForTenant(t.to_string())),
        (None, None) => Err(AuthError::Unscoped),
        (None, Some(t)) if may_use(t) => Ok(t.to_string()),
        (None, Some(t)) => Err(AuthError::NotForTenant(t.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(project: Option<&str>, projects: Option<&[&str]>) -> TokenFacts {
        TokenFacts {
            info: TokenInfo {
                user_id: "u".into(),
                project_id: project.map(str::to_string),
                expires_at: SystemTime::now() + Duration::from_secs(60),
            },
            projects: projects.map(|ps| ps.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn check(f: TokenFacts, requested: Option<&str>, members: Option<&str>, expected: Result<&str, AuthError>) {
        assert_eq!(decide(&f, requested, members), expected.map(str::to_string), "{requested:?} {members:?}");
    }

    #[test]
    fn decides_the_tenant() {
        use AuthError::*;
        check(facts(Some("p1"), None), None, None, Ok("p1"));
        check(facts(Some("p1"), None), Some("p1"), None, Ok("p1"));
        check(facts(Some("p1"), None), Some("p2"), None, Err(NotForTenant("p2".into())));
        check(facts(None, Some(&["p1", "p2"])), Some("p2"), None, Ok("p2"));
        check(facts(None, Some(&["p1"])), Some("p3"), None, Err(NotForTenant("p3".into())));
        check(facts(None, Some(&["p1"])), None, None, Err(Unscoped));
        check(facts(Some("p1"), Some(&["p1", "m"])), Some("p1"), Some("m"), Ok("p1"));
        check(facts(Some("p1"), Some(&["p1"])), Some("p1"), Some("m"), Err(NotMember));
        check(facts(Some("m"), Some(&["m"])), Some("m"), Some("m"), Err(MembersTenant));
        check(facts(Some("m"), Some(&["m"])), None, Some("m"), Err(MembersTenant));
    }

    #[test]
    fn tenant_ids() {
        for ok in ["alice", "a", "0f3c9e1b2d4a4e5f8a7b6c5d4e3f2a1b", "team_a.dev-1"] {
            assert!(TenantId::valid(ok), "{ok}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert!(!TenantId::valid(bad), "{bad}");
        }
    }
}
