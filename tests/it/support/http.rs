//! Raw HTTP/1.1 over TCP or a unix socket, for what the docker CLI does not show: status codes, headers, bodies
//! cut short, hijacked and upgraded connections, multiplexed streams.

use std::fmt;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::CLI_TIMEOUT;

/// Where raw HTTP goes.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(String),
    Unix(PathBuf),
}

impl Target {
    pub fn parse(url: &str) -> Target {
        if let Some(addr) = url.strip_prefix("tcp://") {
            Target::Tcp(addr.trim_end_matches('/').to_string())
        } else if let Some(path) = url.strip_prefix("unix://") {
            Target::Unix(PathBuf::from(path))
        } else {
            panic!("unsupported URL {url}")
        }
    }

    fn connect(&self) -> Conn {
        let conn = match self {
            Target::Tcp(addr) => Conn::Tcp(TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))),
            Target::Unix(path) => {
                Conn::Unix(UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display())))
            }
        };
        conn.set_read_timeout(Some(CLI_TIMEOUT));
        conn
    }
}

/// A client connection, TCP or unix.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    pub fn set_read_timeout(&self, timeout: Option<Duration>) {
        let _ = match self {
            Conn::Tcp(s) => s.set_read_timeout(timeout),
            Conn::Unix(s) => s.set_read_timeout(timeout),
        };
    }

    /// Half-closes: shuts down our write side and keeps reading.
    pub fn shutdown_write(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush(),
            Conn::Unix(s) => s.flush(),
        }
    }
}

/// One HTTP response, read to the end of the connection.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// False when the body ended before its Content-Length or its last chunk: the connection was cut.
    pub complete: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {self}"))
    }

    /// The error message: `message` of a Docker JSON error, else the body as text.
    pub fn message(&self) -> String {
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(v) => v["message"].as_str().map(str::to_string).unwrap_or_else(|| self.text()),
            Err(_) => self.text().trim().to_string(),
        }
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {:?} complete={} body={:?}", self.status, self.headers, self.complete, self.text())
    }
}

/// A hijacked connection after the response head (101, or a 200 raw stream).
pub struct Hijacked {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub conn: Conn,
    /// Bytes read past the head.
    pub pending: Vec<u8>,
}

impl Hijacked {
    /// Reads the raw stream until the other side closes it.
    pub fn read_to_end(mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.pending);
        self.conn.read_to_end(&mut out).unwrap_or_else(|e| {
            panic!("reading the hijacked stream: {e} (read so far: {:?})", String::from_utf8_lossy(&out))
        });
        out
    }

    /// When the answer was not a hijack (an error such as 404), reads its body as the headers frame it:
    /// by Content-Length, by chunks, or (dockerd's way for these errors) until the connection closes.
    pub fn into_response(mut self) -> Response {
        let header = |name: &str| self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut raw = std::mem::take(&mut self.pending);
        let mut buf = [0u8; 8192];
        let mut read_more = |raw: &mut Vec<u8>| -> bool {
            match self.conn.read(&mut buf) {
                Ok(0) => false,
                Ok(n) => {
                    raw.extend_from_slice(&buf[..n]);
                    true
                }
                Err(e) => panic!("reading the body of a {} answer: {e}", self.status),
            }
        };
        let (body, complete) = if let Some(len) = header("content-length") {
            let len: usize = len.parse().expect("a numeric Content-Length");
            while raw.len() < len && read_more(&mut raw) {}
            (raw[..len.min(raw.len())].to_vec(), raw.len() >= len)
        } else if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            loop {
                let (body, complete) = dechunk(&raw);
                if complete || !read_more(&mut raw) {
                    break (body, complete);
                }
            }
        } else {
            while read_more(&mut raw) {}
            (raw, true)
        };
        Response { status: self.status, headers: self.headers.clone(), body, complete }
    }
}

/// Splits a multiplexed (non-TTY) stream into (stream number, payload) frames.
pub fn demux(raw: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut rest = raw;
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        assert!(rest.len() >= 8 + len, "truncated frame; the whole stream: {:?}", String::from_utf8_lossy(raw));
        frames.push((rest[0], rest[8..8 + len].to_vec()));
        rest = &rest[8 + len..];
    }
    assert!(
        rest.is_empty(),
        "trailing bytes after the last frame; the whole stream: {:?}",
        String::from_utf8_lossy(raw)
    );
    frames
}

/// The payload of stream `stream` (1 stdout, 2 stderr) of a multiplexed (non-TTY) stream, its frames joined.
pub fn demux_stream(raw: &[u8], stream: u8) -> Vec<u8> {
    demux(raw).into_iter().filter(|(s, _)| *s == stream).flat_map(|(_, p)| p).collect()
}

/// Raw HTTP/1.1 with a tenant's headers.
pub struct Http {
    pub(super) target: Target,
    pub(super) headers: Vec<(String, String)>,
}

impl Http {
    fn head_bytes(&self, method: &str, path: &str, extra: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: mtswarm-it\r\nUser-Agent: mtswarm-it\r\n");
        for (k, v) in &self.headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(body) = body {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        if let Some(body) = body {
            bytes.extend_from_slice(body);
        }
        bytes
    }

    /// Sends one request with `Connection: close` and reads the whole response.
    pub fn request(&self, method: &str, path: &str, extra: &[(&str, &str)], body: Option<&[u8]>) -> Response {
        let mut headers = vec![("Connection", "close")];
        headers.extend_from_slice(extra);
        let mut conn = self.target.connect();
        conn.write_all(&self.head_bytes(method, path, &headers, body))
            .unwrap_or_else(|e| panic!("{method} {path}: write: {e}"));
        let mut raw = Vec::new();
        if let Err(e) = conn.read_to_end(&mut raw) {
            use std::io::ErrorKind::{TimedOut, WouldBlock};
            // A reset after some bytes is a cut connection, which `Response::complete` reports; silence is a hang.
            if raw.is_empty() || matches!(e.kind(), WouldBlock | TimedOut) {
                panic!("{method} {path}: read: {e}; got so far: {:?}", String::from_utf8_lossy(&raw));
            }
        }
        parse_response(&raw, method == "HEAD")
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; raw response: {:?}", String::from_utf8_lossy(&raw)))
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None)
    }

    pub fn head(&self, path: &str) -> Response {
        self.request("HEAD", path, &[], None)
    }

    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        let body = body.to_string();
        self.request("POST", path, &[("Content-Type", "application/json")], Some(body.as_bytes()))
    }

    /// Sends a bodiless request with these headers (a websocket handshake) and returns after the response head.
    pub fn upgrade(&self, method: &str, path: &str, extra: &[(&str, &str)]) -> Hijacked {
        let mut conn = self.target.connect();
        conn.write_all(&self.head_bytes(method, path, extra, None))
            .unwrap_or_else(|e| panic!("{method} {path}: write: {e}"));
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            match conn.read(&mut byte) {
                Ok(0) => {
                    panic!("{method} {path}: closed inside the response head: {:?}", String::from_utf8_lossy(&raw))
                }
                Ok(_) => raw.push(byte[0]),
                Err(e) => panic!("{method} {path}: reading the head: {e}"),
            }
        }
        let (status, headers) = parse_head(&raw).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Hijacked { status, headers, conn, pending: Vec::new() }
    }

    /// Sends a request that hijacks the connection; returns after the response head.
    /// `upgrade` adds `Connection: Upgrade` and `Upgrade: tcp` (as the CLI does); without it, the old raw form.
    pub fn hijack(&self, method: &str, path: &str, body: &serde_json::Value, upgrade: bool) -> Hijacked {
        let body = body.to_string();
        let mut extra = vec![("Content-Type", "application/json")];
        if upgrade {
            extra.push(("Connection", "Upgrade"));
            extra.push(("Upgrade", "tcp"));
        }
        let mut conn = self.target.connect();
        conn.write_all(&self.head_bytes(method, path, &extra, Some(body.as_bytes())))
            .unwrap_or_else(|e| panic!("{method} {path}: write: {e}"));
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n\r\n") {
            match conn.read(&mut byte) {
                Ok(0) => panic!(
                    "{method} {path}: connection closed inside the response head: {:?}",
                    String::from_utf8_lossy(&raw)
                ),
                Ok(_) => raw.push(byte[0]),
                Err(e) => panic!("{method} {path}: reading the head: {e}"),
            }
        }
        let (status, headers) = parse_head(&raw).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Hijacked { status, headers, conn, pending: Vec::new() }
    }
}

fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 status line: {status_line:?}"));
    }
    let status = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers))
}

pub fn parse_response(raw: &[u8], head_request: bool) -> Result<Response, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of the response head")?;
    let (status, headers) = parse_head(&raw[..end + 4])?;
    let rest = &raw[end + 4..];
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let no_body = head_request || status / 100 == 1 || status == 204 || status == 304;
    let (body, complete) = if no_body {
        (Vec::new(), true)
    } else if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        dechunk(rest)
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| format!("bad Content-Length {len:?}"))?;
        (rest[..len.min(rest.len())].to_vec(), rest.len() >= len)
    } else {
        (rest.to_vec(), true)
    };
    Ok(Response { status, headers, body, complete })
}

/// Decodes a chunked body; `complete` is whether the last (empty) chunk arrived.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
            return (body, false);
        };
        raw = &raw[eol + 2..];
        if size == 0 {
            return (body, true);
        }
        if raw.len() < size + 2 {
            body.extend_from_slice(&raw[..size.min(raw.len())]);
            return (body, false);
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

impl Http {
    /// Raw HTTP to `host` (`tcp://...` or `unix://...`) with exactly `headers` (besides Host and User-Agent).
    pub fn with_headers(host: &str, headers: &[(&str, &str)]) -> Http {
        Http {
            target: Target::parse(host),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }
}
