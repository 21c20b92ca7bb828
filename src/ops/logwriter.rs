//! The log's writer: lines go to stderr in batches, written by a thread of their own, off the request path.
//!
//! Every request logs one line. Written straight to stderr, each line is a `write` system call made while the
//! request is served, under stderr's lock (which the runtime's threads take in turn); on a busy gateway that is a
//! few microseconds of every request. Here a line is appended to a buffer instead, and a writer thread writes
//! what has gathered, [`BATCH_WAIT`] after the first line of a batch: one `write` for many lines, and none while
//! nothing is logged. Lines keep their order and their bytes. If stderr blocks (a reader that stopped reading)
//! and the buffer reaches [`BUFFER_LIMIT`], further lines are dropped and counted, and a line saying how many is
//! written once stderr takes bytes again: a stuck log never stops requests.
//!
//! The writer thread is stopped, and what it holds written, when the [`FlushGuard`] is dropped (at the end of
//! `main`). A process killed by a signal it does not handle loses at most the last [`BATCH_WAIT`] of lines.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long the first line of a batch waits for others to join it.
pub const BATCH_WAIT: Duration = Duration::from_millis(2);

/// The most bytes of lines held while the writer cannot write.
pub const BUFFER_LIMIT: usize = 8 * 1024 * 1024;

struct State {
    buf: Vec<u8>,
    /// Lines dropped because the buffer was full, not yet reported.
    dropped: u64,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when the buffer stops being empty, and on close.
    ready: Condvar,
}

/// The `MakeWriter` given to `tracing_subscriber::fmt()`: each event arrives as one `write` of its whole line.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread and writes what it holds, when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BatchedWriter {
    /// A writer to stderr.
    pub fn stderr() -> (BatchedWriter, FlushGuard) {
        BatchedWriter::to(std::io::stderr())
    }

    /// A writer to `out`, written by a thread started here.
    pub fn to<W: Write + Send + 'static>(out: W) -> (BatchedWriter, FlushGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { buf: Vec::new(), dropped: 0, closed: false }),
            ready: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new().name("mtswarm-log".into()).spawn(move || drain(&shared, out)).ok()
        };
        let guard = FlushGuard { shared: shared.clone(), thread };
        (BatchedWriter { shared }, guard)
    }
}

/// Appends lines; never blocks on the output.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.closed {
            // After the guard is gone (late lines at exit): straight to stderr, as before.
            drop(st);
            return std::io::stderr().write(bytes);
        }
        if st.buf.len() + bytes.len() > BUFFER_LIMIT {
            st.dropped += 1;
            return Ok(bytes.len());
        }
        let was_empty = st.buf.is_empty();
        st.buf.extend_from_slice(bytes);
        drop(st);
        if was_empty {
            self.shared.ready.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { shared: &self.shared }
    }
}

/// The writer thread: waits for a first line, lets a batch gather, writes it.
fn drain<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::new();
    loop {
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.buf.is_empty() && st.dropped == 0 && !st.closed {
            st = shared.ready.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let closing = st.closed;
        if !closing {
            drop(st);
            std::thread::sleep(BATCH_WAIT);
            st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        }
        std::mem::swap(&mut st.buf, &mut spare);
        let dropped = std::mem::take(&mut st.dropped);
        drop(st);
        if !spare.is_empty() {
            // A failed write (stderr closed) loses the batch; there is nowhere to say so.
            let _ = out.write_all(&spare);
            spare.clear();
            // Keep a large buffer from a burst only while it is in use.
            if spare.capacity() > 1024 * 1024 {
                spare = Vec::new();
            }
        }
        if dropped > 0 {
            let _ = writeln!(out, "mtswarm: {dropped} log lines dropped: stderr was not taking them");
        }
        let _ = out.flush();
        if closing {
            let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.buf.is_empty() && st.dropped == 0 {
                return;
            }
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.shared.ready.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read after the writer is done.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_come_out_whole_and_in_order_by_the_time_the_guard_is_dropped() {
        use tracing_subscriber::fmt::MakeWriter;
        let out = Sink::default();
        let (writer, guard) = BatchedWriter::to(out.clone());
        let mut expected = String::new();
        for i in 0..1000 {
            let line = format!("line {i}\n");
            writer.make_writer().write_all(line.as_bytes()).unwrap();
            expected.push_str(&line);
            if i % 300 == 0 {
                std::thread::sleep(BATCH_WAIT * 2);
            }
        }
        drop(guard);
        assert_eq!(String::from_utf8(out.0.lock().unwrap().clone()).unwrap(), expected);
    }

    #[test]
    fn a_line_arrives_without_waiting_for_more() {
        use tracing_subscriber::fmt::MakeWriter;
        let out = Sink::default();
        let (writer, _guard) = BatchedWriter::to(out.clone());
        writer.make_writer().write_all(b"alone\n").unwrap();
        // Polled, not timed: the writer thread writes it after BATCH_WAIT without any further line.
        for _ in 0..1000 {
            if out.0.lock().unwrap().as_slice() == b"alone\n" {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the line was not written: {:?}", String::from_utf8_lossy(&out.0.lock().unwrap()));
    }
}
