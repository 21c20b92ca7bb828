//! A replicated manager's part of the pipeline (see [`crate::replication`]): on arrival, the replication headers
//! come off every request, and a request forwarded by a replica gets the client's address and certificate name
//! back, if it carries this primary's key; on a replica, every request but `/_ping`, `/version` and `/info` goes
//! to the primary as it came, and a stream or hijacked session it opens ends when that primary's term does.

use http::header::HeaderValue;
use http::{Request, Response};
use hyper::body::Incoming;

use super::{Gateway, PeerCn, RemoteAddr, RequestCtx};
use crate::api::{ApiError, Endpoint};
use crate::body::{self, Body};
use crate::proxy::{self, hijack};
use crate::replication::{self, forward::Peer, Admission};

/// What every manager answers itself, so that each one can be asked whether it is up and what it is.
fn answered_by_every_manager(endpoint: &Endpoint) -> bool {
    matches!(endpoint, Endpoint::Ping | Endpoint::Version | Endpoint::Info)
}

impl Gateway {
    /// Takes the replication headers off the request (always: no client sends them through, and none reaches an
    /// engine). A request that carries a replica's key is one a replica forwarded: with this primary's key, and
    /// over mutual TLS when TLS is on, the client's address and certificate name are the ones the replica saw.
    pub(super) fn arrive(&self, ctx: &mut RequestCtx, req: &mut Request<Incoming>) -> Result<(), ApiError> {
        let h = req.headers_mut();
        // A look at the names first: a removal hashes the name whether or not it is there, and most requests
        // carry none of these.
        let carried = h.keys().any(|name| replication::HEADERS.contains(&name.as_str()));
        let [key, cn, addr] = match carried {
            true => replication::HEADERS.map(|name| h.remove(name)),
            false => [None, None, None],
        };
        let Some(key) = key else { return Ok(()) };
        let Some(rep) = &self.replication else {
            return Err(ApiError::unavailable(
                "a replica forwarded the request to this manager, which runs without --replication",
            ));
        };
        rep.check_key(key.as_bytes()).map_err(ApiError::unavailable)?;
        if rep.over_tls() && req.extensions().get::<PeerCn>().is_none() {
            return Err(ApiError::unavailable(
                "a forwarded request is taken over mutual TLS only, from a manager's certificate",
            ));
        }
        let text = |v: HeaderValue| v.to_str().ok().map(str::to_string);
        match cn.and_then(text) {
            Some(cn) => req.extensions_mut().insert(PeerCn(cn.into())),
            None => req.extensions_mut().remove::<PeerCn>(),
        };
        if let Some(addr) = addr.and_then(text) {
            ctx.remote = Some(addr.as_str().into());
            req.extensions_mut().insert(RemoteAddr(addr.into()));
        }
        ctx.via_replica = true;
        Ok(())
    }

    /// On a replica, the request goes to the primary and its answer is `Ok(Ok(answer))`; `Ok(Err(request))` gives
    /// the request back when this manager serves it.
    pub(super) async fn replicate(
        &self,
        ctx: &mut RequestCtx,
        endpoint: &Endpoint,
        req: Request<Incoming>,
    ) -> Result<Result<Response<Body>, Request<Incoming>>, ApiError> {
        let Some(rep) = &self.replication else { return Ok(Err(req)) };
        if answered_by_every_manager(endpoint) {
            return Ok(Err(req));
        }
        match rep.admission() {
            Admission::Serve => Ok(Err(req)),
            // Forwarded once only: the replica that sent it thinks this manager is primary, and it is not now.
            Admission::Forward { .. } if ctx.via_replica => Err(ApiError::unavailable(
                "a replica forwarded the request to this manager, which is a replica too; retry",
            )),
            Admission::Forward { primary, term, key } => {
                let slot = req.extensions().get::<hijack::HijackSlot>().cloned();
                // A primary that stops answering (frozen, or its machine gone without a reset) must not keep the
                // request waiting for its answer's head once another manager is primary.
                let resp = tokio::select! {
                    resp = self.to_primary(ctx, endpoint, &primary, &key, req) => resp?,
                    _ = rep.term_ends(term) => return Err(ApiError::unavailable(format!(
                        "the primary manager {} was replaced before it answered; retry",
                        primary.addr()
                    ))),
                };
                // A stream ends with the primary's term: the client sees its end, not a stream that never moves.
                match slot.filter(|s| s.holds_engine()) {
                    Some(slot) => {
                        slot.end_when(rep.term_ends(term));
                        Ok(Ok(resp))
                    }
                    None => Ok(Ok(resp.map(|b| body::until(b, rep.term_ends(term))))),
                }
            }
            Admission::Unavailable(why) => Err(ApiError::unavailable(why)),
        }
    }

    /// Whether this manager may still act on a request it admitted when its head came: a body that arrives after
    /// the fence (the process was frozen, or the client held the body back), or a request that waited for its
    /// tenant's quota lock or a name claim, must not make a fenced primary create what the new primary counts
    /// against the same quota.
    pub(super) fn still_primary(&self) -> Result<(), ApiError> {
        let Some(rep) = &self.replication else { return Ok(()) };
        match rep.admission() {
            Admission::Serve => Ok(()),
            Admission::Forward { primary, .. } => Err(ApiError::unavailable(format!(
                "this manager stopped being the primary while the request came in or waited (the primary is {} now); retry",
                primary.addr()
            ))),
            Admission::Unavailable(why) => Err(ApiError::unavailable(why)),
        }
    }

    /// Sends the request to the primary as it came (its version prefix, credentials and body), with what the
    /// primary cannot see itself.
    async fn to_primary(
        &self,
        ctx: &mut RequestCtx,
        endpoint: &Endpoint,
        primary: &Peer,
        key: &str,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, ApiError> {
        ctx.set_node(format!("primary {}", primary.addr()));
        let (mut parts, incoming) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_string();
        let value =
            |v: &str| HeaderValue::from_str(v).map_err(|_| ApiError::bad_request("a header cannot be forwarded"));
        parts.headers.insert(replication::KEY_HEADER, value(key)?);
        if let Some(cn) = parts.extensions.get::<PeerCn>() {
            parts.headers.insert(replication::CLIENT_CN_HEADER, value(&cn.0)?);
        }
        if let Some(remote) = &ctx.remote {
            parts.headers.insert(replication::CLIENT_ADDR_HEADER, value(remote)?);
        }
        let up = Request::from_parts(parts, body::stream(incoming));
        if endpoint.may_hijack() {
            return hijack::forward_as(primary, up, pq, hijack::default_protocol(endpoint)).await;
        }
        proxy::forward(primary, up, pq, proxy::Relay::Stream).await
    }
}
