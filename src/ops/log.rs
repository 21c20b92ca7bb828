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

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tracing_subscriber::fmt::format::{Format, FormatEvent, FormatFields, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

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
///
/// Shared with [`PlainFormat`], which writes them where the formatter wrote the span's, for every line logged
/// while the request's future is polled ([`InRequest`]).
#[derive(Debug, Clone)]
pub struct SpanFields(Arc<Mutex<String>>);

impl SpanFields {
    pub fn new(id: u64) -> SpanFields {
        SpanFields(Arc::new(Mutex::new(format!("id={id}"))))
    }

    /// Records a field of the request (every line logged while the request is served carries it): here, and in
    /// tracing's span where tracing formats the lines.
    pub fn record_in_span(&self, name: &'static str, value: Option<&str>) {
        if !plain_stderr() {
            tracing::Span::current().record(name, value);
        }
        self.record(name, value);
    }

    pub fn record(&self, name: &str, value: Option<&str>) {
        let mut text = self.text();
        text.push(' ');
        if let Some(v) = value {
            text.push_str(name);
            text.push('=');
            debug_str(&mut text, v);
        }
    }

    fn text(&self) -> MutexGuard<'_, String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

thread_local! {
    /// The fields of the request whose future this thread is polling, or null.
    static CURRENT: Cell<*const Mutex<String>> = const { Cell::new(std::ptr::null()) };
}

pin_project_lite::pin_project! {
    /// A request's future, polled with its fields as this thread's current request's: what tracing's span did
    /// (entered, it made each line logged meanwhile carry the span's fields) for much less (a span records each
    /// field through the registry and a visitor, and is entered and left through the dispatcher on each poll).
    pub struct InRequest<F> {
        #[pin]
        inner: F,
        fields: SpanFields,
    }
}

impl<F> InRequest<F> {
    pub fn new(fields: SpanFields, inner: F) -> InRequest<F> {
        InRequest { inner, fields }
    }
}

impl<F: Future> Future for InRequest<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        /// Puts back the request polled before (none, or an outer one), even if the poll panics.
        struct Restore(*const Mutex<String>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let this = self.project();
        let _restore = Restore(CURRENT.with(|c| c.replace(Arc::as_ptr(&this.fields.0))));
        this.inner.poll(cx)
    }
}

/// The event format `main` installs where tracing-subscriber writes plain text to stderr: its full format,
/// byte for byte, with the current request's fields ([`InRequest`]) where it wrote the request span's.
pub struct PlainFormat {
    whole: Format<Full, SystemTime>,
    /// From the target on, for a line whose start is written here.
    tail: Format<Full, ()>,
}

impl Default for PlainFormat {
    fn default() -> PlainFormat {
        let whole = tracing_subscriber::fmt::format();
        PlainFormat { tail: whole.clone().without_time().with_level(false), whole }
    }
}

impl<S, N> FormatEvent<S, N> for PlainFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let current = CURRENT.with(Cell::get);
        if current.is_null() {
            return self.whole.format_event(ctx, w, event);
        }
        // SAFETY: CURRENT is set only while `InRequest::poll` runs on this thread, and the `InRequest` holds the
        // Arc the pointer comes from.
        let fields = unsafe { &*current };
        let mut head = String::with_capacity(64);
        write_now(&mut head);
        head.push(' ');
        head.push_str(level_text(event.metadata().level()));
        head.push_str(" request");
        {
            let text = fields.lock().unwrap_or_else(|e| e.into_inner());
            if !text.is_empty() {
                head.push('{');
                head.push_str(&text);
                head.push('}');
            }
        }
        head.push_str(": ");
        w.write_str(&head)?;
        self.tail.format_event(ctx, w, event)
    }
}

/// A level as the formatter pads it, colourless.
fn level_text(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::TRACE => "TRACE",
        tracing::Level::DEBUG => "DEBUG",
        tracing::Level::INFO => " INFO",
        tracing::Level::WARN => " WARN",
        tracing::Level::ERROR => "ERROR",
    }
}

/// Appends `v` as `{v:?}` does; a string of printable ASCII without quotes or backslashes, as most are, without
/// `fmt::Debug`'s walk over each character.
fn debug_str(out: &mut String, v: &str) {
    if v.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(v);
        out.push('"');
    } else {
        let _ = write!(out, "{v:?}");
    }
}

/// Appends the time as tracing-subscriber's `SystemTime` writes it, `2026-12-02T17:45:12.123456Z` (RFC 3339,
/// microseconds, UTC). The text up to the second is made once a second per thread.
fn write_now(out: &mut String) {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => write_time(out, since),
        Err(_) => out.push_str("<unknown time>"),
    }
}

/// Appends the time `since` the Unix epoch, as [`write_now`] does.
fn write_time(out: &mut String, since: std::time::Duration) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let secs = since.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            cached.1.clear();
            let Some(t) = i64::try_from(secs).ok().and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            else {
                out.push_str("<unknown time>");
                return;
            };
            let _ = write!(
                cached.1,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            cached.0 = secs;
        }
        out.push_str(&cached.1);
        let _ = write!(out, "{:06}Z", since.subsec_micros());
    });
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
        write_now(out);
        out.push_str("  INFO request");
        {
            let text = self.span.text();
            if !text.is_empty() {
                out.push('{');
                out.push_str(&text);
                out.push('}');
            }
        }
        let _ = write!(
            out,
            ": {TARGET}: request id={} method={} path={} status={} duration_ms={:?} node=",
            self.id, self.method, self.path, self.status, self.duration_ms
        );
        debug_str(out, self.node);
        out.push_str(" tenant=");
        debug_str(out, self.tenant);
        out.push('\n');
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
    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// tracing-subscriber's formatter, set up as `main` sets it up without colours, writing to `sink`.
    fn formatter(
        sink: &Sink,
    ) -> tracing_subscriber::fmt::SubscriberBuilder<
        tracing_subscriber::fmt::format::DefaultFields,
        Format<Full, SystemTime>,
        tracing_subscriber::EnvFilter,
        impl Fn() -> Sink + 'static,
    > {
        let writer = sink.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
    }

    /// The request span, as the gateway makes it where lines are coloured.
    fn request_span(id: u64) -> tracing::Span {
        tracing::info_span!(
            target: TARGET,
            "request",
            id = id,
            endpoint = tracing::field::Empty,
            tenant = tracing::field::Empty,
            node = tracing::field::Empty
        )
    }

    /// Events logged outside a request and inside one, whose fields are recorded between them.
    fn events(inside: &mut dyn FnMut(&mut dyn FnMut())) {
        tracing::info!(target: "mtswarm::cluster", node = "node0", "outside any request");
        tracing::warn!("no fields but the message");
        inside(&mut || {
            tracing::info!(a = "b", n = 3, "at first");
            tracing::debug!("filtered out at info");
        });
        inside(&mut || {
            tracing::warn!(target: "mtswarm::tenancy", cause = %"a \"quoted\" cause", "after the records");
            tracing::error!(error = ?std::io::ErrorKind::NotFound, "an error");
            tracing::info!(target: TARGET, "the gateway's own");
        });
        tracing::info!("outside again");
    }

    #[test]
    fn plain_format_writes_what_the_formatter_wrote_inside_the_span() {
        type Recorded<'a> = &'a [&'a [(&'static str, Option<&'a str>)]];
        let records: Recorded =
            &[&[("endpoint", Some("containerinspect"))], &[("tenant", None), ("node", Some("n\"1"))]];
        // tracing's span, as the gateway makes it where lines are coloured, and the default format.
        let theirs = Sink::default();
        tracing::subscriber::with_default(formatter(&theirs).finish(), || {
            let span = request_span(9);
            let mut round = 0;
            events(&mut |log| {
                let _entered = span.enter();
                for (name, value) in records[round] {
                    span.record(*name, *value);
                }
                round += 1;
                log();
            });
        });
        // The request's fields, polled in InRequest, and PlainFormat.
        let ours = Sink::default();
        tracing::subscriber::with_default(formatter(&ours).event_format(PlainFormat::default()).finish(), || {
            let fields = SpanFields::new(9);
            let mut round = 0;
            events(&mut |log| {
                for (name, value) in records[round] {
                    fields.record(name, *value);
                }
                round += 1;
                let mut fut = std::pin::pin!(InRequest::new(fields.clone(), async { log() }));
                let polled = fut.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
                assert!(polled.is_ready());
            });
        });
        let (ours, theirs) = (ours.text(), theirs.text());
        assert_eq!(ours.lines().count(), 7, "{ours}");
        assert!(
            ours.contains("request{id=9 endpoint=\"containerinspect\"  node=\"n\\\"1\"}: mtswarm::tenancy"),
            "{ours}"
        );
        for (o, t) in ours.lines().zip(theirs.lines()) {
            assert_eq!(untimed(o), untimed(t));
        }
        assert_eq!(ours.lines().count(), theirs.lines().count(), "{theirs}");
    }

    /// What tracing-subscriber's formatter, set up as `main` sets it up without colours, writes for the span and
    /// the event the gateway makes, with the span's fields recorded as `record` says.
    fn through_the_formatter(line: &RequestLine, record: &[(&'static str, Option<&str>)]) -> String {
        let sink = Sink::default();
        tracing::subscriber::with_default(formatter(&sink).finish(), || {
            let span = request_span(line.id);
            let _entered = span.enter();
            for (name, value) in record {
                span.record(*name, *value);
            }
            line.event();
        });
        sink.text()
    }

    /// Drops the timestamp: the two writers read the clock at different instants.
    fn untimed(line: &str) -> &str {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.len() == 27 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        rest
    }

    #[test]
    fn writes_the_time_as_the_formatter_does() {
        use tracing_subscriber::fmt::time::FormatTime;
        let at = |secs: u64, micros: u32| {
            let mut out = String::new();
            write_time(&mut out, std::time::Duration::new(secs, micros * 1000));
            out
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 500_000), "2000-02-29T00:00:00.500000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z", "the second's text, cached, with other micros");
        assert_eq!(at(1_796_232_312, 999_999), "2026-12-02T17:25:12.999999Z");
        assert_eq!(at(4_102_444_799, 1), "2099-12-31T23:59:59.000001Z");
        // And now, as tracing-subscriber's clock says it (again if the second turned between the two readings).
        for _ in 0..100 {
            let mut theirs = String::new();
            tracing_subscriber::fmt::time::SystemTime
                .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut theirs))
                .unwrap();
            let mut ours = String::new();
            write_now(&mut ours);
            if ours[..20] == theirs[..20] {
                assert_eq!((ours.len(), ours.ends_with('Z')), (theirs.len(), true), "{ours} {theirs}");
                return;
            }
        }
        panic!("the two clocks never agreed on the second");
    }

    #[test]
    fn writes_strings_as_debug_does() {
        for v in ["", "alice", "node0", "primary 10.0.0.1:2376", "a\"b", "a\\b", "tab\t", "é", "\u{7}", "'", "~ !"] {
            let mut ours = String::new();
            debug_str(&mut ours, v);
            assert_eq!(ours, format!("{v:?}"), "{v}");
        }
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
            let span = SpanFields::new(42);
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
