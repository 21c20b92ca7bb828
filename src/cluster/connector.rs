//! How mtswarm reaches one engine: a TCP or unix-socket connection (pooled in [`super::pool`]).
//! With `--node-tlscacert/--node-tlscert/--node-tlskey`, every TCP connection is mutual TLS: mtswarm shows
//! its client certificate and checks the engine's against the CA, with the address it dials as the name
//! (as the docker CLI does with `--tlsverify`). Unix sockets are local and stay plain, as with dockerd.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Where an engine listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EngineAddr {
    /// `tcp://host:port` (also written `host:port` in discovery lists).
    Tcp { host: String, port: u16 },
    /// `unix:///path/to/docker.sock`.
    Unix(PathBuf),
}

impl EngineAddr {
    /// Parses `tcp://h:p`, `http://h:p`, `unix:///path` or a bare `h:p`.
    pub fn parse(s: &str) -> Result<EngineAddr, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{s}: a unix socket address needs an absolute path, as in unix:///var/run/docker.sock"
                ));
            }
            return Ok(EngineAddr::Unix(PathBuf::from(path)));
        }
        let hostport =
            s.strip_prefix("tcp://").or_else(|| s.strip_prefix("http://")).unwrap_or(s).trim_end_matches('/');
        let (host, port) = hostport
            .rsplit_once(':')
            .ok_or_else(|| format!("{s}: an engine address is tcp://HOST:PORT or unix:///PATH"))?;
        let port: u16 = port.parse().map_err(|_| format!("{s}: {port:?} is not a port number"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') {
            return Err(format!("{s}: an engine address is tcp://HOST:PORT or unix:///PATH"));
        }
        Ok(EngineAddr::Tcp { host: host.to_string(), port })
    }

    /// The authority to put in request URIs and `Host` headers.
    pub fn authority(&self) -> String {
        match self {
            EngineAddr::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            EngineAddr::Tcp { host, port } => format!("{host}:{port}"),
            // The docker CLI uses this name over unix sockets; dockerd ignores it.
            EngineAddr::Unix(_) => "api.moby.localhost".to_string(),
        }
    }
}

impl std::fmt::Display for EngineAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineAddr::Tcp { .. } => write!(f, "tcp://{}", self.authority()),
            EngineAddr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

impl EngineAddr {
    /// True for an address only this host can reach: a unix socket, a loopback IP or `localhost`. An
    /// engine anywhere else that is reached without TLS has an API that its own containers can reach too.
    pub fn is_local(&self) -> bool {
        match self {
            EngineAddr::Unix(_) => true,
            EngineAddr::Tcp { host, .. } => {
                host.eq_ignore_ascii_case("localhost")
                    || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
        }
    }
}

/// An address as a request's `Host` header, made once (every request carries it).
#[derive(Debug, Clone)]
pub struct Aim {
    /// Why the address cannot be a `Host` (an authority that does not parse), which each request then reports.
    host: Result<http::HeaderValue, String>,
}

impl Aim {
    pub fn new(addr: &EngineAddr) -> Aim {
        let text = addr.authority();
        let host = match text.parse::<http::uri::Authority>() {
            Ok(_) => http::HeaderValue::from_str(&text).map_err(|e| format!("{text}: {e}")),
            Err(e) => Err(format!("{text}: {e}")),
        };
        Aim { host }
    }

    /// Points `req` at the address: its `Host`, and a URI in origin form (a path and query), as it goes on the
    /// wire of a connection to that address.
    pub fn point<B>(&self, req: &mut http::Request<B>) -> Result<(), String> {
        let host = self.host.as_ref().map_err(String::clone)?;
        if req.uri().scheme().is_some() || req.uri().authority().is_some() || req.uri().path().is_empty() {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
            *req.uri_mut() = http::Uri::try_from(path).map_err(|e| e.to_string())?;
        }
        req.headers_mut().insert(http::header::HOST, host.clone());
        Ok(())
    }
}

/// Opens connections to one engine.
#[derive(Clone)]
pub struct EngineConnector {
    addr: Arc<EngineAddr>,
    connect_timeout: Duration,
    /// Mutual TLS on TCP connections, when configured.
    tls: Option<tokio_rustls::TlsConnector>,
}

impl EngineConnector {
    pub fn new(addr: EngineAddr, connect_timeout: Duration, tls: Option<Arc<rustls::ClientConfig>>) -> EngineConnector {
        EngineConnector { addr: Arc::new(addr), connect_timeout, tls: tls.map(tokio_rustls::TlsConnector::from) }
    }
}

impl EngineConnector {
    /// A new connection: TCP (mutual TLS when configured) or the unix socket, within the connect timeout.
    pub async fn connect(&self) -> io::Result<TokioIo<EngineStream>> {
        let addr = &*self.addr;
        let connect = async {
            match addr {
                EngineAddr::Tcp { host, port } => {
                    let s = TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    let Some(tls) = &self.tls else { return Ok(EngineStream::Tcp(s)) };
                    // The engine's certificate must name the address mtswarm dials (an IP SAN for an IP).
                    let name = rustls::pki_types::ServerName::try_from(host.clone())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
                    let s = tls
                        .connect(name, s)
                        .await
                        .map_err(|e| io::Error::new(e.kind(), format!("TLS with engine {}: {e}", addr.authority())))?;
                    Ok(EngineStream::Tls(Box::new(s)))
                }
                EngineAddr::Unix(path) => UnixStream::connect(path).await.map(EngineStream::Unix),
            }
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(r) => r.map(TokioIo::new),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {} s", self.connect_timeout.as_secs_f32()),
            )),
        }
    }
}

/// A connection to an engine. Both kinds shut down their write half on `poll_shutdown`, which is how a
/// client's half-close reaches the engine on hijacked streams.
/// Over TLS, a write shutdown sends close_notify and then shuts the TCP write half.
pub enum EngineStream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for EngineStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            EngineStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            EngineStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            EngineStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for EngineStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            EngineStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            EngineStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            EngineStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            EngineStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            EngineStream::Unix(s) => Pin::new(s).poll_flush(cx),
            EngineStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            EngineStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            EngineStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            EngineStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            EngineStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            EngineStream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            EngineStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            EngineStream::Tcp(s) => s.is_write_vectored(),
            EngineStream::Unix(s) => s.is_write_vectored(),
            EngineStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        let got = EngineAddr::parse(input).map(|a| a.to_string());
        match expected {
            Ok(want) => assert_eq!(got.as_deref(), Ok(want), "{input}"),
            Err(part) => assert!(got.as_ref().is_err_and(|e| e.contains(part)), "{input}: {got:?}"),
        }
    }

    #[test]
    fn parses_engine_addresses() {
        check("unix:///var/run/docker.sock", Ok("unix:///var/run/docker.sock"));
        check("tcp://127.0.0.1:2375", Ok("tcp://127.0.0.1:2375"));
        check("http://10.0.0.1:2375/", Ok("tcp://10.0.0.1:2375"));
        check("node1:2375", Ok("tcp://node1:2375"));
        check("tcp://[::1]:2375", Ok("tcp://[::1]:2375"));
        check("unix://relative.sock", Err("absolute path"));
        check("tcp://host", Err("tcp://HOST:PORT"));
        check("tcp://host:99999", Err("not a port"));
    }

    #[test]
    fn knows_local_addresses() {
        for (a, local) in [
            ("unix:///var/run/docker.sock", true),
            ("tcp://127.0.0.1:2375", true),
            ("tcp://127.9.9.9:2375", true),
            ("tcp://localhost:2375", true),
            ("tcp://[::1]:2375", true),
            ("tcp://10.0.0.5:2375", false),
            ("tcp://0.0.0.0:2375", false),
            ("node1:2375", false),
        ] {
            assert_eq!(EngineAddr::parse(a).map(|a| a.is_local()), Ok(local), "{a}");
        }
    }
}
