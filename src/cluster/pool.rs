//! Keep-alive HTTP/1.1 connections to one engine (or, from a replica, to the primary manager), kept apart for each
//! serving thread ([`crate::runtime::slot`]): a request borrows a connection its own thread drives.
//!
//! Each connection is hyper's client connection (`hyper::client::conn::http1`), driven by a task on the thread that
//! opened it. A request takes an idle connection of its thread, or opens one, and sends on it. Once the answer's
//! head is back the request puts the connection down, "parked": the connection's own task moves it back to the
//! idle list as soon as it is ready for another request, that is when the answer's body has been read to its end.
//! hyper-util's pool, used before, spawned a task per request to wait for that moment, and kept its connections
//! in a map locked and hashed on every request.
//!
//! An idle connection is closed after [`Pool::IDLE_TIMEOUT`] (at the next request, or the node's next refresh),
//! and a thread keeps at most [`Pool::MAX_IDLE`]. A request whose connection turned out to be closing before the
//! request went out is sent again on another one, as hyper-util did; a request that may have reached the engine is
//! never sent twice.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

use super::connector::{Aim, EngineAddr, EngineConnector};
use crate::body::Body;

/// Why a request got no answer.
#[derive(Debug)]
pub enum PoolError {
    /// No connection could be made; nothing reached the other side.
    Connect(String),
    /// The connection broke while the request or its answer's head was under way.
    Broken(String),
}

/// A connection's sender while its request's answer is being read. `None` once it is idle again, or gone.
type Parked = Mutex<Option<SendRequest<Body>>>;

struct Idle {
    sender: SendRequest<Body>,
    parked: Arc<Parked>,
    since: Instant,
}

/// The idle connections of each serving thread, newest last.
type Slots = [Mutex<VecDeque<Idle>>];

pub struct Pool {
    aim: Aim,
    connector: EngineConnector,
    slots: Arc<Slots>,
    idle_timeout: Duration,
}

impl Pool {
    /// How long a connection may stay idle before it is closed (hyper-util's default, which mtswarm used).
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
    /// The most idle connections a serving thread keeps to one engine.
    pub const MAX_IDLE: usize = 256;

    pub fn new(addr: &EngineAddr, connect_timeout: Duration, tls: Option<Arc<rustls::ClientConfig>>) -> Pool {
        Pool {
            aim: Aim::new(addr),
            connector: EngineConnector::new(addr.clone(), connect_timeout, tls),
            slots: (0..crate::runtime::slots()).map(|_| Mutex::new(VecDeque::new())).collect(),
            idle_timeout: Pool::IDLE_TIMEOUT,
        }
    }

    /// The same pool, with another idle timeout.
    #[cfg(test)]
    fn with_idle_timeout(self, idle_timeout: Duration) -> Pool {
        Pool { idle_timeout, ..self }
    }

    /// Sends a request whose URI is a path and query, with the address's `Host`.
    pub fn send(&self, req: Request<Body>) -> impl Future<Output = Result<Response<Incoming>, PoolError>> + Send + '_ {
        // Boxed: a request's future, that holds this one, is moved about whole, and this one holds the request
        // twice over (here and in hyper's send) across its awaits.
        Box::pin(self.send_inline(req))
    }

    async fn send_inline(&self, mut req: Request<Body>) -> Result<Response<Incoming>, PoolError> {
        self.aim.point(&mut req).map_err(PoolError::Broken)?;
        let slot = crate::runtime::slot().min(self.slots.len() - 1);
        loop {
            let (mut sender, parked, reused) = match self.checkout(slot) {
                Some(idle) => (idle.sender, idle.parked, true),
                None => {
                    // Boxed: the connect's state (a TLS handshake's among it) is large, and needed once in a while.
                    let (sender, parked) = Box::pin(self.connect(slot)).await?;
                    (sender, parked, false)
                }
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    put_down(&self.slots[slot], sender, &parked);
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    // The connection was closing (the engine closed it while idle): the request never went out.
                    Some(again) if reused => req = again,
                    _ => return Err(PoolError::Broken(super::node::error_chain(&e.into_error()))),
                },
            }
        }
    }

    /// Closes the connections idle for longer than the idle timeout.
    pub fn sweep(&self) {
        let now = Instant::now();
        for slot in self.slots.iter() {
            drop_expired(&mut lock(slot), now, self.idle_timeout);
        }
    }

    /// The idle connections, every thread's.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.slots.iter().map(|s| lock(s).len()).sum()
    }

    /// The newest idle connection of the slot that is still open.
    fn checkout(&self, slot: usize) -> Option<Idle> {
        let mut idle = lock(&self.slots[slot]);
        drop_expired(&mut idle, Instant::now(), self.idle_timeout);
        while let Some(c) = idle.pop_back() {
            if c.sender.is_ready() {
                return Some(c);
            }
            // Closed by the engine since (or, never seen, not ready): dropping it closes it.
        }
        None
    }

    /// Opens a connection and starts its task on this thread's runtime.
    async fn connect(&self, slot: usize) -> Result<(SendRequest<Body>, Arc<Parked>), PoolError> {
        let io = self.connector.connect().await.map_err(|e| PoolError::Connect(super::node::error_chain(&e)))?;
        let (sender, conn) = hyper::client::conn::http1::handshake::<_, Body>(io)
            .await
            .map_err(|e| PoolError::Connect(super::node::error_chain(&e)))?;
        let parked: Arc<Parked> = Arc::default();
        // Weak: the task must not keep the idle list (and so its own sender) alive once the pool is dropped.
        let (slots, mine) = (Arc::downgrade(&self.slots), parked.clone());
        let conn = conn.with_upgrades();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let done = std::future::poll_fn(|cx| {
                let poll = conn.as_mut().poll(cx);
                if poll.is_pending() {
                    come_back(&slots, slot, &mine);
                }
                poll
            })
            .await;
            if let Err(e) = done {
                tracing::debug!("engine connection closed: {e}");
            }
        });
        Ok((sender, parked))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn drop_expired(idle: &mut VecDeque<Idle>, now: Instant, timeout: Duration) {
    while idle.front().is_some_and(|c| now.duration_since(c.since) > timeout) {
        idle.pop_front();
    }
}

fn push_idle(idle: &Mutex<VecDeque<Idle>>, sender: SendRequest<Body>, parked: &Arc<Parked>) {
    let mut idle = lock(idle);
    if idle.len() < Pool::MAX_IDLE {
        idle.push_back(Idle { sender, parked: parked.clone(), since: Instant::now() });
    }
}

/// After the answer's head: the connection goes back to the idle list now if it is ready, else it waits, parked,
/// for its task to see it ready. Both sides look under the parked lock, so neither misses the moment.
fn put_down(idle: &Mutex<VecDeque<Idle>>, sender: SendRequest<Body>, parked: &Arc<Parked>) {
    let mut p = lock(parked);
    if sender.is_ready() {
        drop(p);
        push_idle(idle, sender, parked);
    } else if !sender.is_closed() {
        *p = Some(sender);
    }
}

/// The connection's task, each time it has done what it could: a parked sender that is ready again is idle.
fn come_back(slots: &Weak<Slots>, slot: usize, parked: &Arc<Parked>) {
    let mut p = lock(parked);
    if !p.as_ref().is_some_and(SendRequest::is_ready) {
        return;
    }
    let sender = p.take().expect("checked above");
    drop(p);
    if let Some(slots) = slots.upgrade() {
        push_idle(&slots[slot], sender, parked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An HTTP/1.1 server on a unix socket (hyper's), counting the connections it accepts. `/close` answers with
    /// `Connection: close`; `/big` answers 1 MB.
    async fn server(dir: &std::path::Path) -> (EngineAddr, Arc<AtomicUsize>) {
        let path = dir.join("s.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (io, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let mut resp = match req.uri().path() {
                        "/big" => Response::new(crate::body::full(vec![b'x'; 1 << 20])),
                        path => Response::new(crate::body::full(format!(
                            "{path} {}",
                            req.headers()["host"].to_str().unwrap()
                        ))),
                    };
                    if req.uri().path() == "/close" {
                        resp.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                    }
                    Ok::<_, std::convert::Infallible>(resp)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(io), service),
                );
            }
        });
        (EngineAddr::Unix(path), accepted)
    }

    async fn get(pool: &Pool, path: &str) -> String {
        use http_body_util::BodyExt;
        let req = Request::get(path).body(crate::body::empty()).unwrap();
        let resp = pool.send(req).await.unwrap_or_else(|e| panic!("{path}: {e:?}"));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&body[..body.len().min(64)]).into_owned()
    }

    #[tokio::test]
    async fn reuses_a_connection_once_its_answer_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, accepted) = server(dir.path()).await;
        let pool = Pool::new(&addr, Duration::from_secs(5), None);
        for i in 0..20 {
            assert_eq!(get(&pool, &format!("/v1.41/x{i}")).await, format!("/v1.41/x{i} api.moby.localhost"));
        }
        assert!(get(&pool, "/big").await.starts_with("xxxx"));
        assert_eq!(get(&pool, "/after-big").await, "/after-big api.moby.localhost");
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for sequential requests");
        assert_eq!(pool.idle(), 1);

        // Two at once: a second connection, and both are kept.
        let (a, b) = tokio::join!(get(&pool, "/a"), get(&pool, "/b"));
        assert_eq!((a.as_str(), b.as_str()), ("/a api.moby.localhost", "/b api.moby.localhost"));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        tokio::task::yield_now().await;
        assert_eq!(pool.idle(), 2);
    }

    #[tokio::test]
    async fn does_not_reuse_a_connection_the_other_side_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, accepted) = server(dir.path()).await;
        let pool = Pool::new(&addr, Duration::from_secs(5), None);
        assert_eq!(get(&pool, "/close").await, "/close api.moby.localhost");
        assert_eq!(get(&pool, "/next").await, "/next api.moby.localhost");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // An answer whose body is dropped unread takes its connection with it.
        let resp = pool.send(Request::get("/big").body(crate::body::empty()).unwrap()).await.unwrap();
        drop(resp);
        assert_eq!(get(&pool, "/last").await, "/last api.moby.localhost");
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn says_when_nothing_listens() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new(&EngineAddr::Unix(dir.path().join("none.sock")), Duration::from_secs(5), None);
        match pool.send(Request::get("/x").body(crate::body::empty()).unwrap()).await {
            Err(PoolError::Connect(cause)) => assert!(cause.contains("No such file"), "{cause}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn closes_connections_idle_too_long() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, accepted) = server(dir.path()).await;
        let pool = Pool::new(&addr, Duration::from_secs(5), None).with_idle_timeout(Duration::from_millis(300));
        get(&pool, "/a").await;
        pool.sweep();
        assert_eq!(pool.idle(), 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        pool.sweep();
        assert_eq!(pool.idle(), 0);
        get(&pool, "/b").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}
