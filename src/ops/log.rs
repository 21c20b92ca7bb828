//! A request's own log line, written here rather than through tracing-subscriber's formatter, in the same bytes.
//!
//! Every request logs one line at info. Through the formatter that line cost about a tenth of a forwarded request's
//! CPU: each field goes through a visitor and `fmt::Debug`, the span's fields are read from the registry, and ANSI
//! styles are painted even when they print nothing. Here the line is made with a few `write!`s into a
//! thread-local buffer and written in one `write` to stderr, as the formatter does. The span's fields are kept on
//! the side as the formatter keeps them ([`SpanFields`]). The unit tests compare the two writers byte for byte.
//!
//! This path is taken only where the formatter would write plain text: `main` calls [`set_plain_stderr`] when it
//! installs the formatter on a stderr that is not a terminal. Elsewhere (colours, or another subscriber, as in
//! tests) the event goes through tracing as before.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::fmt::time::FormatTime;

static PLAIN: AtomicBool = AtomicBool::new(false);

/// Says whether the process logs with tracing-subscriber's full format, without colours, to stderr.
pub fn set_plain_stderr(on: bool) {
    PLAIN.store(on, Ordering::Relaxed);
}

/// Whether request lines are written by [`RequestLine::write`].
pub fn plain_stderr() -> bool {
    PLAIN.load(Ordering::Relaxed)
}

/// The target the request line names: the gateway's module, where the request span and its event were declared.
pub const TARGET: &str = "mtswarm::gateway";

/// A request span's fields as the formatter holds them: `id=7` when the span opens, then each recorded field
/// appended after a space, in the order recorded (`endpoint="containerinspect" tenant="alice" node="node0"`). A
/// field recorded as `None` leaves only its space, as it does there.
#[derive(Debug, Clone, Default)]
pub struct SpanFields(String);

impl SpanFields {
    pub fn new(id: u64) -> SpanFields {
        SpanFields(format!("id={id}"))
    }

    /// Records a field in the current span (every line logged while the request is served carries it) and here.
    pub fn record_in_span(&mut self, name: &'static str, value: Option<&str>) {
        tracing::Span::current().record(name, value);
        self.record(name, value);
    }

    pub fn record(&mut self, name: &str, value: Option<&str>) {
        self.0.push(' ');
        if let Some(v) = value {
            let _ = write!(self.0, "{name}={v:?}");
        }
    }
}

/// The fields of a request's line.
#[derive(Debug)]
pub struct RequestLine<'a> {
    pub span: &'a SpanFields,
    pub id: u64,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration_ms: f64,
    pub node: &'a str,
    pub tenant: &'a str,
}

thread_local! {
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl RequestLine<'_> {
    /// Appends the line, as the formatter writes the `request` event inside the `request` span:
    /// `<time>  INFO request{<span fields>}: mtswarm::gateway: request id=.. method=.. path=.. status=..
    /// duration_ms=.. node=".." tenant=".."` and a newline.
    pub fn format(&self, out: &mut String) {
        // The formatter's own clock and format (RFC 3339, microseconds, UTC).
        if tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(out))
            .is_err()
        {
            out.push_str("<unknown time>");
        }
        out.push_str("  INFO request");
        if !self.span.0.is_empty() {
            let _ = write!(out, "{{{}}}", self.span.0);
        }
        let _ = writeln!(
            out,
            ": {TARGET}: request id={} method={} path={} status={} duration_ms={:?} node={:?} tenant={:?}",
            self.id, self.method, self.path, self.status, self.duration_ms, self.node, self.tenant
        );
    }

    /// Logs the line: written here where the formatter would write plain text to stderr, else as tracing's event.
    pub fn log(&self) {
        if !plain_stderr() {
            self.event();
        } else if tracing::enabled!(target: TARGET, tracing::Level::INFO) {
            self.write();
        }
    }

    /// The line as tracing's event (the formatter writes it in the same bytes, colours aside).
    fn event(&self) {
        tracing::info!(
            target: TARGET,
            id = self.id,
            method = %self.method,
            path = %self.path,
            status = self.status,
            duration_ms = self.duration_ms,
            node = self.node,
            tenant = self.tenant,
            "request"
        );
    }

    /// Writes the line to stderr in one call.
    fn write(&self) {
        use std::io::Write as _;
        LINE.with(|buf| {
            let Ok(mut buf) = buf.try_borrow_mut() else { return };
            buf.clear();
            self.format(&mut buf);
            let _ = std::io::stderr().write_all(buf.as_bytes());
            // A rare long path should not keep its buffer.
            if buf.capacity() > 16 * 1024 {
                *buf = String::new();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What tracing-subscriber's formatter, set up as `main` sets it up without colours, writes for the span and
    /// the event the gateway makes, with the span's fields recorded as `record` says.
    fn through_the_formatter(line: &RequestLine, record: &[(&'static str, Option<&str>)]) -> String {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                target: TARGET,
                "request",
                id = line.id,
                endpoint = tracing::field::Empty,
                tenant = tracing::field::Empty,
                node = tracing::field::Empty
            );
            let _entered = span.enter();
            for (name, value) in record {
                span.record(*name, *value);
            }
            line.event();
        });
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        out
    }

    /// Drops the timestamp: the two writers read the clock at different instants.
    fn untimed(line: &str) -> &str {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.len() == 27 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        rest
    }

    #[test]
    fn writes_what_the_formatter_writes() {
        type Recorded<'a> = &'a [(&'static str, Option<&'a str>)];
        let cases: &[(&str, f64, Recorded)] = &[
            (
                "/v1.41/containers/json?all=1",
                0.512345,
                &[("endpoint", Some("containerlist")), ("tenant", Some("alice"))],
            ),
            ("/_ping", 1.0, &[]),
            ("/v1.41/containers/x/json", 0.00001, &[("endpoint", Some("containerinspect")), ("node", Some("node0"))]),
            (
                "/containers/a%22b/json",
                1234.5,
                &[("tenant", Some("t\"q\\\n\u{7}é")), ("node", None), ("node", Some("2 nodes"))],
            ),
            ("/v1.41/info", 3e17, &[("node", Some("primary 10.0.0.1:2376")), ("tenant", Some("bob"))]),
        ];
        for (path, duration_ms, record) in cases {
            let mut span = SpanFields::new(42);
            for (name, value) in *record {
                span.record(name, *value);
            }
            let line = RequestLine {
                span: &span,
                id: 42,
                method: "GET",
                path,
                status: 200,
                duration_ms: *duration_ms,
                node: "node0",
                tenant: "-",
            };
            let mut ours = String::new();
            line.format(&mut ours);
            let theirs = through_the_formatter(&line, record);
            assert_eq!(untimed(&ours), untimed(&theirs), "{record:?}");
            assert!(ours.ends_with('\n') && ours.matches('\n').count() == 1, "{ours}");
        }
    }
}
