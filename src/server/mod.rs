//! Listening: accept connections on every `-H` address and serve HTTP/1.1 on each, with upgrades.
//!
//! The caller binds the listeners (so tests bind port 0) and says when to stop. Shutdown is graceful:
//! accepting stops, requests in flight finish, and hijacked streams get [`SHUTDOWN_GRACE`] to end.

pub mod ops;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, UnixListener};

use crate::gateway::{Gateway, PeerCn, RemoteAddr};
use crate::runtime::{Load, Workers};

/// How long open connections get to finish after shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A bound listening socket.
pub enum Listener {
    Tcp(TcpListener),
    /// The path is removed when the server stops.
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// The address to print for clients: `tcp://127.0.0.1:2376`, `unix:///run/mtswarm.sock`.
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp://{a}"),
                Err(_) => "tcp://?".to_string(),
            },
            Listener::Unix(_, p) => format!("unix://{}", p.display()),
        }
    }
}

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` completes, then drains. With `tls`, TCP listeners speak TLS; unix sockets
/// never do (their file permissions guard them, as with dockerd).
pub async fn run(
    gateway: Arc<Gateway>,
    listeners: Vec<Listener>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let workers = Arc::new(Workers::start().unwrap_or_else(|e| {
        tracing::error!(cause = %e, "cannot start the serving threads: serving on the main runtime");
        Workers::none()
    }));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Every connection task holds a clone of `done_tx`; when all are dropped, `done_rx` yields None.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut accepting = Vec::new();
    for l in listeners {
        let gw = gateway.clone();
        let tls = tls.clone();
        let workers = workers.clone();
        let mut stop = stop_rx.clone();
        let watcher = Watcher { stop: stop_rx.clone(), _done: done_tx.clone() };
        accepting.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    accepted = accept(&l) => match accepted {
                        Ok((io, remote)) => dispatch(&workers, gw.clone(), io, remote, tls.clone(), &watcher),
                        Err(e) => {
                            tracing::warn!(cause = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
            if let Listener::Unix(_, path) = &l {
                let _ = std::fs::remove_file(path);
            }
        }));
    }
    shutdown.await;
    tracing::info!("shutting down: no new connections, draining open ones");
    let _ = stop_tx.send(true);
    for a in accepting {
        let _ = a.await;
    }
    drop(done_tx);
    if tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv()).await.is_err() {
        tracing::warn!("connections still open after {} s; closing them", SHUTDOWN_GRACE.as_secs());
    }
    if let Ok(workers) = Arc::try_unwrap(workers) {
        workers.stop().await;
    }
}

/// What a connection task needs to take part in shutdown.
#[derive(Clone)]
struct Watcher {
    stop: tokio::sync::watch::Receiver<bool>,
    /// Dropped when the connection ends; shutdown waits until every clone is gone.
    _done: tokio::sync::mpsc::Sender<()>,
}

/// An accepted connection of either kind.
enum Conn {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// An accepted connection on its way to a serving thread: out of the accepting runtime's reactor.
enum Handoff {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Handoff {
    fn new(conn: Conn) -> std::io::Result<Handoff> {
        Ok(match conn {
            Conn::Tcp(s) => Handoff::Tcp(s.into_std()?),
            Conn::Unix(s) => Handoff::Unix(s.into_std()?),
        })
    }

    /// Registers the connection with the current thread's runtime.
    fn adopt(self) -> std::io::Result<Conn> {
        Ok(match self {
            Handoff::Tcp(s) => Conn::Tcp(tokio::net::TcpStream::from_std(s)?),
            Handoff::Unix(s) => Conn::Unix(tokio::net::UnixStream::from_std(s)?),
        })
    }
}

/// Hands an accepted connection to a serving thread, which serves it to the end.
fn dispatch(
    workers: &Workers,
    gateway: Arc<Gateway>,
    conn: Conn,
    remote: RemoteAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    watcher: &Watcher,
) {
    let handoff = match Handoff::new(conn) {
        Ok(h) => h,
        Err(e) => return tracing::debug!(cause = %e, "an accepted connection could not be handed on"),
    };
    let watcher = watcher.clone();
    workers.dispatch(move |load| match handoff.adopt() {
        Ok(conn) => serve(gateway, conn, remote, tls, &watcher, load),
        Err(e) => tracing::debug!(cause = %e, "a serving thread could not take a connection"),
    });
}

/// Accepts a connection and names its client's address.
async fn accept(l: &Listener) -> std::io::Result<(Conn, RemoteAddr)> {
    match l {
        Listener::Tcp(l) => {
            let (s, addr) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((Conn::Tcp(s), RemoteAddr(Arc::from(addr.to_string()))))
        }
        Listener::Unix(l, _) => Ok((Conn::Unix(l.accept().await?.0), RemoteAddr(Arc::from("unix")))),
    }
}

fn serve(
    gateway: Arc<Gateway>,
    conn: Conn,
    remote: RemoteAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    watcher: &Watcher,
    load: Load,
) {
    match (conn, tls) {
        (Conn::Tcp(s), Some(acceptor)) => {
            let watcher = watcher.clone();
            tokio::spawn(async move {
                let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(s)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return tracing::debug!(cause = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!("TLS handshake timed out"),
                };
                let cn = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(crate::tls::common_name)
                    .map(|cn| PeerCn(Arc::from(cn)));
                serve_io(gateway, stream, remote, cn, &watcher, load);
            });
        }
        (Conn::Tcp(s), None) => serve_io(gateway, s, remote, None, watcher, load),
        (Conn::Unix(s), _) => serve_io(gateway, s, remote, None, watcher, load),
    }
}

/// Serves one connection to its end; `load`, its share of its serving thread's load, is given back then.
fn serve_io<I>(gateway: Arc<Gateway>, io: I, remote: RemoteAddr, peer_cn: Option<PeerCn>, watcher: &Watcher, load: Load)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = gateway.header_timeout();
    // Where a hijacking request leaves the engine's stream for this connection's task to pump once the
    // HTTP exchange is over (hyper hands the client's socket back only then).
    let slot = crate::proxy::hijack::HijackSlot::default();
    let service = {
        let slot = slot.clone();
        service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let gw = gateway.clone();
            if let Some(cn) = &peer_cn {
                req.extensions_mut().insert(cn.clone());
            }
            req.extensions_mut().insert(slot.clone());
            req.extensions_mut().insert(remote.clone());
            Box::pin(async move { Ok::<_, std::convert::Infallible>(gw.handle(req).await) })
                as std::pin::Pin<Box<dyn Future<Output = _> + Send>>
        })
    };
    let mut builder = http1::Builder::new();
    // hyper starts the header clock whenever it waits for a request (the connection opened, or the previous
    // answer went out), so this also closes idle keep-alive connections; hyper closes it without an answer.
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
    // Not `with_upgrades`: both hijack forms (101 after `Upgrade: tcp`, and dockerd's older 200) end the
    // HTTP exchange, and the connection's parts come back here to be pumped.
    let mut conn = builder.serve_connection(TokioIo::new(io), service);
    let Watcher { mut stop, _done } = watcher.clone();
    tokio::spawn(async move {
        let result = tokio::select! {
            r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => r,
            _ = stop.changed() => {
                // Finish the request in flight, then close instead of keeping the connection alive.
                std::pin::Pin::new(&mut conn).graceful_shutdown();
                std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(cause = %e, "connection ended with an error");
            return;
        }
        let parts = conn.into_parts();
        if let Some(engine) = slot.take() {
            let client = Prefixed { prefix: parts.read_buf, io: parts.io.into_inner() };
            // What the session holds (the tenant's stream permit) is given back when it ends.
            let held = slot.take_held();
            let end = slot.take_end();
            let _open = crate::ops::metrics::StreamGuard::open();
            tokio::select! {
                _ = crate::proxy::hijack::pump(client, engine) => {}
                _ = end => tracing::debug!("hijacked session ended: the primary manager changed"),
            }
            drop(held);
        } else {
            linger(parts.io.into_inner()).await;
        }
        drop(_done);
        drop(load);
    });
}

/// How long, and how much, a closing connection still reads of what the client sends.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// Closes a connection without losing the answer. When mtswarm refuses a request before reading its body
/// (an upload without credentials, a filtered `docker load`), closing with unread input makes the kernel
/// reset the connection, and the client loses the answer it has not read yet. So: say we are done
/// writing, then read and discard until the client closes or a bound is reached, as Go's server (dockerd's)
/// and nginx's lingering close do.
async fn linger<I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut io: I) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if io.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        while total < LINGER_BYTES {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// A stream whose first bytes were already read by the HTTP parser.
struct Prefixed<I> {
    prefix: bytes::Bytes,
    io: I,
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Prefixed<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
