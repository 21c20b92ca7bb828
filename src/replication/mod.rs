//! Manager replicas over etcd, as Swarm classic's `manage --replication --advertise ADDR`: every manager
//! follows the same engines, one of them is elected primary through etcd, and the others (replicas) forward
//! what they are asked to it.
//!
//! The election is a lease and one transaction, no consensus of mtswarm's own. A candidate takes a lease of
//! `--replication-ttl` and creates, in one transaction and unless it exists, Swarm classic's leader key
//! `/<prefix>/docker/swarm/leader` (its value: the primary's `--advertise` address) and the primary's
//! replication key `/<prefix>/mtswarm/primary-key`, both on that lease. The revision that created the leader key
//! is the primary's *term*. The primary renews the lease every third of its TTL; replicas read both keys every
//! second or so and campaign when they are gone (the primary stopped, died or lost etcd, and its lease ran out).
//!
//! **Fencing.** The primary admits requests only until `fence`: the time it sent its last successful renewal,
//! plus the TTL etcd granted, minus a margin. etcd counts the lease from when it got that renewal, which is
//! later, so the fence always falls before the lease can end and before another manager can be elected: two
//! primaries never both admit. A primary that cannot renew (etcd unreachable, or cut off from it) stops
//! admitting at its fence on its own clock, without asking anyone.
//!
//! **Forwarding.** A replica forwards each request as it is, credentials included, streams and hijacks included
//! ([`forward::Peer`] is the primary as a [`crate::proxy::Hop`]). It adds the primary's replication key and what
//! the primary cannot see itself: the client's address and the common name of its verified TLS certificate. The
//! primary trusts those only with its current key, and, when TLS is on, only over a mutual-TLS connection
//! ([`Replication::check_key`]). Nothing of state moves between managers: names, quotas and placements all come
//! from the engines, so a new primary serves exactly what the old one did.

pub mod forward;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::cluster::etcd::{Etcd, EtcdError, KeyValue, Lease};

/// The header that carries the primary's replication key on a forwarded request.
pub const KEY_HEADER: &str = "x-mtswarm-replica-key";
/// The common name of the client's verified certificate, as the replica saw it (absent: none).
pub const CLIENT_CN_HEADER: &str = "x-mtswarm-client-cn";
/// The client's address, as the replica saw it.
pub const CLIENT_ADDR_HEADER: &str = "x-mtswarm-client-addr";
/// Every header of the replication protocol: taken off every request that arrives, so that no client can
/// send one through to an engine or make a manager believe it.
pub const HEADERS: [&str; 3] = [KEY_HEADER, CLIENT_CN_HEADER, CLIENT_ADDR_HEADER];

/// `--replication-ttl`'s default, Swarm classic's: how long a dead primary keeps the others waiting.
pub const DEFAULT_TTL: Duration = Duration::from_secs(20);

/// The checked settings of `--replication`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicationConfig {
    /// `HOST:PORT` where the other managers reach this one (and clients, through them).
    pub advertise: String,
    /// The etcd of the discovery.
    pub endpoints: Vec<String>,
    /// Its prefix, without slashes at either end.
    pub prefix: String,
    pub ttl: Duration,
}

impl ReplicationConfig {
    /// Swarm classic's leader key: `/<prefix>/docker/swarm/leader`.
    pub fn leader_key(&self) -> String {
        match self.prefix.as_str() {
            "" => "/docker/swarm/leader".to_string(),
            p => format!("/{p}/docker/swarm/leader"),
        }
    }

    /// The primary's replication key, created with the leader key.
    pub fn primary_key_key(&self) -> String {
        match self.prefix.as_str() {
            "" => "/mtswarm/primary-key".to_string(),
            p => format!("/{p}/mtswarm/primary-key"),
        }
    }

    /// How often the primary renews its lease.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// How often a replica reads the leader key.
    pub fn poll_every(&self) -> Duration {
        (self.ttl / 4).min(Duration::from_secs(1))
    }

    /// How long before its lease can end the primary stops admitting.
    pub fn fence_margin(lease_ttl: Duration) -> Duration {
        (lease_ttl / 5).max(Duration::from_millis(500)).min(lease_ttl / 2)
    }

    /// The longest one etcd call may take: a hung etcd must not make the primary miss its renewals.
    fn call_timeout(&self) -> Duration {
        (self.ttl / 3).clamp(Duration::from_millis(500), Duration::from_secs(5))
    }
}

/// Where this manager stands.
#[derive(Clone)]
pub enum Role {
    /// No primary is known: etcd cannot be reached, or the leader key is being contended for.
    Candidate { why: String },
    /// Elected: admits until `fence`.
    Primary { term: i64, key: Arc<str>, fence: Instant },
    /// Another manager is primary: requests go to it.
    Replica { term: i64, primary: Arc<forward::Peer>, key: Arc<str> },
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Candidate { why } => write!(f, "candidate ({why})"),
            Role::Primary { term, .. } => write!(f, "primary (term {term})"),
            Role::Replica { term, primary, .. } => write!(f, "replica of {} (term {term})", primary.addr()),
        }
    }
}

/// What a request meets on this manager.
pub enum Admission {
    /// This manager is the primary, within its fence: it serves the request.
    Serve,
    /// Another manager is: the request goes there, and a stream it opens ends when `term` does.
    Forward { primary: Arc<forward::Peer>, term: i64, key: Arc<str> },
    /// Nobody may serve it now; the message says why.
    Unavailable(String),
}

/// This manager's part in the election, shared by the election task and every request.
pub struct Replication {
    config: ReplicationConfig,
    etcd: Etcd,
    role: RwLock<Role>,
    /// The term of the primary this manager knows (`None`: none): a stream forwarded in one term ends when it
    /// changes.
    term: tokio::sync::watch::Sender<Option<i64>>,
    /// How replicas reach the primary: mutual TLS when the managers serve TLS.
    peer_tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
}

impl Replication {
    pub fn new(
        config: ReplicationConfig,
        peer_tls: Option<Arc<rustls::ClientConfig>>,
        connect_timeout: Duration,
    ) -> Replication {
        let etcd = Etcd::new(config.endpoints.clone(), config.call_timeout());
        Replication {
            config,
            etcd,
            role: RwLock::new(Role::Candidate { why: "the first election is under way".into() }),
            term: tokio::sync::watch::channel(None).0,
            peer_tls,
            connect_timeout,
        }
    }

    /// True when managers reach each other over mutual TLS.
    pub fn over_tls(&self) -> bool {
        self.peer_tls.is_some()
    }

    pub fn role(&self) -> Role {
        self.role.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What a request meets now. The primary's fence is read on the clock at each request.
    pub fn admission(&self) -> Admission {
        admission(&self.role(), Instant::now())
    }

    /// Whether a forwarded request's `key` is this primary's, within its fence. The message, for the manager that
    /// forwarded it, says why not.
    pub fn check_key(&self, key: &[u8]) -> Result<(), String> {
        check_key(&self.role(), key, Instant::now())
    }

    /// `docker info`'s first `SystemStatus` lines, as Swarm classic's: `Role`, and `Primary` on a replica.
    pub fn status(&self) -> Vec<[String; 2]> {
        let pair = |k: &str, v: String| [k.to_string(), v];
        match self.role() {
            Role::Primary { fence, .. } if Instant::now() < fence => vec![pair("Role", "primary".into())],
            Role::Primary { .. } => {
                vec![pair("Role", "candidate".into()), pair("Primary", "none (this manager's lease ran out)".into())]
            }
            Role::Replica { primary, .. } => vec![pair("Role", "replica".into()), pair("Primary", primary.addr())],
            Role::Candidate { why } => vec![pair("Role", "candidate".into()), pair("Primary", format!("none ({why})"))],
        }
    }

    /// Resolves when the known primary is no longer the one of `term`.
    pub fn term_ends(&self, term: i64) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.term.subscribe();
        async move {
            let _ = rx.wait_for(|t| *t != Some(term)).await;
        }
    }

    fn set(&self, role: Role) {
        let term = match &role {
            Role::Candidate { .. } => None,
            Role::Primary { term, .. } | Role::Replica { term, .. } => Some(*term),
        };
        let mut current = self.role.write().unwrap_or_else(|e| e.into_inner());
        let changed = std::mem::discriminant(&*current) != std::mem::discriminant(&role)
            || self.term.borrow().as_ref() != term.as_ref();
        if changed {
            tracing::info!(advertise = %self.config.advertise, role = ?role, "replication: role changed");
        }
        *current = role;
        drop(current);
        self.term.send_if_modified(|t| {
            let modified = *t != term;
            *t = term;
            modified
        });
    }

    /// Takes part in the election until `shutdown` completes; a primary then revokes its lease, so that a replica
    /// takes over at once rather than after the TTL.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut held: Option<Lease> = None;
        loop {
            let step = async {
                match self.campaign().await {
                    Ok(Campaign::Won(lease)) => {
                        held = Some(lease);
                        self.lead(lease).await;
                        held = None;
                        let _ = self.etcd.revoke(lease.id).await;
                    }
                    Ok(Campaign::Lost) => self.follow().await,
                    Ok(Campaign::Wait(why)) | Err(why) => {
                        self.set(Role::Candidate { why });
                        tokio::time::sleep(self.config.poll_every()).await;
                    }
                }
            };
            tokio::select! {
                _ = step => {}
                _ = &mut shutdown => break,
            }
        }
        if let Some(lease) = held {
            self.set(Role::Candidate { why: "the primary is shutting down".into() });
            match self.etcd.revoke(lease.id).await {
                Ok(()) => tracing::info!("replication: stepped down; a replica takes over now"),
                Err(e) => tracing::warn!(cause = %e, "replication: could not revoke the lease; a replica takes over \
                                                       when it runs out"),
            }
        }
    }

    /// Tries to become primary once.
    async fn campaign(&self) -> Result<Campaign, String> {
        let (leader, key_key) = (self.config.leader_key(), self.config.primary_key_key());
        let sent = Instant::now();
        let lease = self.etcd.grant(self.config.ttl).await.map_err(|e| describe(&e))?;
        let fence = sent + lease.ttl - ReplicationConfig::fence_margin(lease.ttl);
        let key: Arc<str> = Arc::from(new_key().map_err(|e| format!("no random key: {e}"))?);
        let puts: [(&[u8], &[u8]); 2] =
            [(leader.as_bytes(), self.config.advertise.as_bytes()), (key_key.as_bytes(), key.as_bytes())];
        let read: [&[u8]; 2] = [leader.as_bytes(), key_key.as_bytes()];
        let current = match self.etcd.create_unless_exists(leader.as_bytes(), &puts, lease.id, &read).await {
            Ok(Ok(term)) => {
                self.set(Role::Primary { term, key, fence });
                return Ok(Campaign::Won(lease));
            }
            Ok(Err(current)) => current,
            Err(e) => {
                let _ = self.etcd.revoke(lease.id).await;
                return Err(describe(&e));
            }
        };
        match Leader::read(&current) {
            // The creation went through on an endpoint whose answer was lost, and was retried on another.
            Some(l) if l.lease == lease.id => {
                self.set(Role::Primary { term: l.term, key: Arc::from(l.key.as_str()), fence });
                Ok(Campaign::Won(lease))
            }
            Some(l) => {
                let _ = self.etcd.revoke(lease.id).await;
                if l.addr == self.config.advertise {
                    // This address's previous process (killed before it could revoke): forwarding to it would
                    // be forwarding to ourselves.
                    return Ok(Campaign::Wait(format!(
                        "the leader key still names this manager ({}) from before it restarted; waiting for its \
                         lease to run out",
                        l.addr
                    )));
                }
                self.become_replica(&l);
                Ok(Campaign::Lost)
            }
            None => {
                let _ = self.etcd.revoke(lease.id).await;
                Ok(Campaign::Wait("the leader key changed during the election".into()))
            }
        }
    }

    fn become_replica(&self, l: &Leader) {
        if let Role::Replica { term, .. } = self.role() {
            if term == l.term {
                return;
            }
        }
        match forward::Peer::new(&l.addr, self.connect_timeout, self.peer_tls.clone()) {
            Ok(peer) => {
                self.set(Role::Replica { term: l.term, primary: Arc::new(peer), key: Arc::from(l.key.as_str()) })
            }
            Err(e) => self.set(Role::Candidate { why: format!("the leader key names {:?}: {e}", l.addr) }),
        }
    }

    /// As primary: renews the lease until it is lost, or the leader key is no longer ours.
    async fn lead(&self, lease: Lease) {
        let leader = self.config.leader_key();
        let mut wait = self.config.renew_every();
        loop {
            tokio::time::sleep(wait).await;
            let Role::Primary { term, key, fence } = self.role() else { return };
            let sent = Instant::now();
            match self.etcd.keepalive(lease.id).await {
                Ok(Some(ttl)) => match self.etcd.get_all(&[leader.as_bytes()]).await {
                    Ok(kvs) if kvs.first().and_then(Option::as_ref).is_some_and(|kv| kv.lease == lease.id) => {
                        let fence = sent + ttl - ReplicationConfig::fence_margin(ttl);
                        self.set(Role::Primary { term, key, fence });
                        wait = self.config.renew_every();
                    }
                    Ok(_) => {
                        tracing::warn!("replication: the leader key is no longer this manager's; stepping down");
                        return self.set(Role::Candidate { why: "the leader key was taken away".into() });
                    }
                    Err(e) => wait = self.renewal_failed(&e.to_string(), fence),
                },
                Ok(None) => {
                    tracing::warn!("replication: etcd no longer has the primary's lease; stepping down");
                    return self.set(Role::Candidate { why: "the primary's lease ran out".into() });
                }
                Err(e) => wait = self.renewal_failed(&describe(&e), fence),
            }
            // The fence as it stands now: a renewal that succeeded, however slowly, moved it.
            let Role::Primary { fence, .. } = self.role() else { return };
            if Instant::now() >= fence {
                let why = "the primary could not renew its lease in time".to_string();
                tracing::warn!("replication: {why}; it admits nothing more");
                return self.set(Role::Candidate { why });
            }
        }
    }

    /// A renewal that failed: logged, and tried again soon (the fence stays where it was).
    fn renewal_failed(&self, cause: &str, fence: Instant) -> Duration {
        let left = fence.saturating_duration_since(Instant::now());
        tracing::warn!(cause, left_ms = left.as_millis() as u64, "replication: the lease could not be renewed");
        self.config.poll_every().min(left.max(Duration::from_millis(100)))
    }

    /// As replica: follows the leader key until it is gone.
    async fn follow(&self) {
        let keys = [self.config.leader_key(), self.config.primary_key_key()];
        loop {
            tokio::time::sleep(self.config.poll_every()).await;
            match self.etcd.get_all(&[keys[0].as_bytes(), keys[1].as_bytes()]).await {
                Ok(current) => match Leader::read(&current) {
                    Some(l) if l.addr != self.config.advertise => self.become_replica(&l),
                    // Gone (or being replaced): campaign.
                    _ => return,
                },
                // A replica that loses etcd keeps forwarding to the primary it knows, which fences itself.
                Err(e) => tracing::debug!(cause = %e, "replication: cannot read the leader key"),
            }
        }
    }
}

enum Campaign {
    /// Elected on this lease.
    Won(Lease),
    /// Another manager is primary; this one is now its replica.
    Lost,
    /// Not now, for this reason.
    Wait(String),
}

/// The leader key and the primary's key, read together.
struct Leader {
    addr: String,
    term: i64,
    lease: i64,
    key: String,
}

impl Leader {
    /// The primary named by the two keys, if both are there and were made by one election.
    fn read(kvs: &[Option<KeyValue>]) -> Option<Leader> {
        let (Some(Some(leader)), Some(Some(key))) = (kvs.first(), kvs.get(1)) else { return None };
        if leader.create_revision != key.create_revision || leader.lease != key.lease {
            return None;
        }
        Some(Leader {
            addr: String::from_utf8(leader.value.clone()).ok()?,
            term: leader.create_revision,
            lease: leader.lease,
            key: String::from_utf8(key.value.clone()).ok()?,
        })
    }
}

fn describe(e: &EtcdError) -> String {
    format!("etcd: {e}")
}

/// A new replication key: 32 random bytes, in hex.
fn new_key() -> std::io::Result<String> {
    Ok(hex::encode(crate::random::bytes::<32>()?))
}

fn admission(role: &Role, now: Instant) -> Admission {
    match role {
        Role::Primary { fence, .. } if now < *fence => Admission::Serve,
        Role::Primary { .. } => Admission::Unavailable(
            "this manager's primary lease ran out before it could renew it; it admits nothing until the managers \
             elect a primary again (retry in a few seconds)"
                .into(),
        ),
        Role::Replica { primary, term, key } => {
            Admission::Forward { primary: primary.clone(), term: *term, key: key.clone() }
        }
        Role::Candidate { why } => {
            Admission::Unavailable(format!("no primary manager is elected now ({why}); retry in a few seconds"))
        }
    }
}

fn check_key(role: &Role, given: &[u8], now: Instant) -> Result<(), String> {
    match role {
        Role::Primary { key, fence, .. } if now < *fence => {
            if subtle::ConstantTimeEq::ct_eq(key.as_bytes(), given).into() {
                Ok(())
            } else {
                Err("this manager is primary in another term than the replica that forwarded the request knows; \
                     retry"
                    .into())
            }
        }
        _ => Err("a replica forwarded the request to this manager, which is not the primary (any more); retry".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary(fence: Instant) -> Role {
        Role::Primary { term: 7, key: Arc::from("k1"), fence }
    }

    #[test]
    fn the_primary_admits_until_its_fence_and_not_after() {
        let now = Instant::now();
        let fence = now + Duration::from_secs(3);
        assert!(matches!(admission(&primary(fence), now), Admission::Serve));
        assert!(matches!(admission(&primary(fence), fence - Duration::from_millis(1)), Admission::Serve));
        let after = admission(&primary(fence), fence);
        assert!(matches!(&after, Admission::Unavailable(m) if m.contains("lease ran out")));
        let candidate = admission(&Role::Candidate { why: "etcd: down".into() }, now);
        assert!(
            matches!(&candidate, Admission::Unavailable(m) if m.contains("no primary manager") && m.contains("etcd: down"))
        );
    }

    #[test]
    fn a_forwarded_request_is_trusted_only_with_the_primarys_key_within_its_fence() {
        let now = Instant::now();
        let fence = now + Duration::from_secs(3);
        assert_eq!(check_key(&primary(fence), b"k1", now), Ok(()));
        assert!(check_key(&primary(fence), b"k2", now).is_err_and(|e| e.contains("another term")));
        assert!(check_key(&primary(fence), b"", now).is_err());
        assert!(check_key(&primary(fence), b"k1", fence).is_err_and(|e| e.contains("not the primary")));
        assert!(
            check_key(&Role::Candidate { why: "x".into() }, b"k1", now).is_err_and(|e| e.contains("not the primary"))
        );
    }

    #[test]
    fn the_fence_falls_well_inside_the_lease() {
        for ttl in [1, 2, 5, 20, 60] {
            let ttl = Duration::from_secs(ttl);
            let margin = ReplicationConfig::fence_margin(ttl);
            assert!(margin >= Duration::from_millis(500).min(ttl / 2) && margin <= ttl / 2, "{ttl:?}: {margin:?}");
        }
        let c =
            ReplicationConfig { advertise: "a:1".into(), endpoints: vec![], prefix: "p/q".into(), ttl: DEFAULT_TTL };
        assert_eq!(c.leader_key(), "/p/q/docker/swarm/leader");
        assert_eq!(c.primary_key_key(), "/p/q/mtswarm/primary-key");
        // Renewals come three times per TTL, well before the fence (TTL - TTL/5).
        assert!(c.renew_every() * 2 < c.ttl - ReplicationConfig::fence_margin(c.ttl));
    }

    fn kv(key: &str, value: &str, rev: i64, lease: i64) -> Option<KeyValue> {
        Some(KeyValue { key: key.into(), value: value.into(), lease, create_revision: rev })
    }

    #[test]
    fn a_leader_is_read_only_from_keys_of_one_election() {
        let l = Leader::read(&[kv("/l", "10.0.0.1:2376", 5, 9), kv("/k", "abc", 5, 9)]).expect("a leader");
        assert_eq!((l.addr.as_str(), l.term, l.lease, l.key.as_str()), ("10.0.0.1:2376", 5, 9, "abc"));
        assert!(Leader::read(&[kv("/l", "a:1", 5, 9), kv("/k", "abc", 6, 10)]).is_none(), "two elections");
        assert!(Leader::read(&[kv("/l", "a:1", 5, 9), None]).is_none());
        assert!(Leader::read(&[None, kv("/k", "abc", 5, 9)]).is_none());
    }
}
