//! The serving threads: one single-threaded tokio runtime per CPU, each serving whole client connections, as
//! nginx runs one worker process per CPU.
//!
//! A forwarded request touches two connections: the client's and an engine's. On tokio's work-stealing runtime
//! their tasks land on different threads, so every request and every answer wakes a sleeping thread (a futex
//! call and two context switches), and idle workers are woken to steal what one of them could do. Here a
//! connection is handed to one serving thread when it is accepted and stays there, with everything its
//! requests spawn; an engine's connection pool is kept per serving thread ([`slot`]), so the engine connection
//! a request borrows is driven by the same thread. The main runtime keeps the rest: accepting, discovery,
//! refreshes, the election, metrics.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

static THREADS: OnceLock<usize> = OnceLock::new();

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// Sets how many serving threads there are, once, before any engine client is made (`--threads`); later calls
/// change nothing.
pub fn configure(threads: usize) {
    let _ = THREADS.set(threads.max(1));
}

/// The default number of serving threads: one per CPU.
pub fn per_cpu() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// How many serving threads there are: as configured, else [`per_cpu`].
pub fn threads() -> usize {
    *THREADS.get_or_init(per_cpu)
}

/// How many per-thread slots a per-thread resource needs: one per serving thread, and slot 0 for every other
/// thread (the main runtime's, tests').
pub fn slots() -> usize {
    threads() + 1
}

/// This thread's slot: 1 to [`threads`] on a serving thread, 0 elsewhere.
pub fn slot() -> usize {
    SLOT.with(Cell::get)
}

/// Keeps a timer due within [`TICK`] on the serving thread's runtime, so that its time driver always has a next
/// wake-up. Each request arms a timer when it is answered (the next request's header timeout); armed while the
/// driver has no timer at all, that timer makes the driver wake itself (an eventfd write and one more
/// `epoll_wait` per request); armed after a nearer one, it costs nothing.
async fn tick() {
    loop {
        tokio::time::sleep(TICK).await;
    }
}

/// Shorter than the timeouts a connection arms (the header timeout: 30 s unless configured lower).
const TICK: std::time::Duration = std::time::Duration::from_millis(500);

/// Work for a serving thread: run inside its runtime, so that what it spawns stays on that thread.
type Job = Box<dyn FnOnce() + Send>;

/// The serving threads, started by [`Workers::start`] and ended by [`Workers::stop`].
pub struct Workers {
    threads: Vec<Worker>,
    /// Where the search for the least loaded thread starts, so that ties go round.
    next: AtomicUsize,
}

struct Worker {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    load: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

/// One unit of a serving thread's load (an open connection), given back when dropped.
pub struct Load(Option<Arc<AtomicUsize>>);

impl Load {
    /// No load: for work that runs outside the serving threads.
    fn none() -> Load {
        Load(None)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(load) = &self.0 {
            load.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Workers {
    /// Starts [`threads`] serving threads.
    pub fn start() -> std::io::Result<Workers> {
        let mut threads = Vec::new();
        for i in 0..self::threads() {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
            let load = Arc::new(AtomicUsize::new(0));
            let thread = std::thread::Builder::new().name(format!("mtswarm-serve-{i}")).spawn(move || {
                SLOT.with(|s| s.set(i + 1));
                rt.block_on(async move {
                    tokio::spawn(tick());
                    while let Some(job) = rx.recv().await {
                        job();
                    }
                });
                // Dropping the runtime here ends what is still running on it: the server has drained by now.
            })?;
            threads.push(Worker { jobs, load, thread });
        }
        Ok(Workers { threads, next: AtomicUsize::new(0) })
    }

    /// No serving threads: every job runs where it is dispatched.
    pub fn none() -> Workers {
        Workers { threads: Vec::new(), next: AtomicUsize::new(0) }
    }

    /// Runs `job` on the serving thread with the least load, inside its runtime; the job holds its [`Load`] for
    /// as long as the work it starts lives. Should that thread be gone, the job runs here.
    pub fn dispatch(&self, job: impl FnOnce(Load) + Send + 'static) {
        let n = self.threads.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let chosen = (0..n).map(|k| &self.threads[(start + k) % n]).min_by_key(|w| w.load.load(Ordering::Relaxed));
        let Some(w) = chosen else { return job(Load::none()) };
        // Counted now, not when the thread gets to it: a burst of connections spreads over the threads.
        w.load.fetch_add(1, Ordering::Relaxed);
        let load = Load(Some(w.load.clone()));
        if let Err(tokio::sync::mpsc::error::SendError(job)) = w.jobs.send(Box::new(move || job(load))) {
            job()
        }
    }

    /// Ends the serving threads and what still runs on them, and waits for them.
    pub async fn stop(self) {
        let threads: Vec<_> = self.threads.into_iter().map(|w| (drop(w.jobs), w.thread).1).collect();
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_runs_on_a_serving_thread_inside_its_runtime_and_gives_its_load_back() {
        let workers = Workers::start().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Every job holds its load until all are dispatched, as open connections do.
        let (release, released) = tokio::sync::watch::channel(false);
        for _ in 0..threads() * 2 {
            let (tx, mut released) = (tx.clone(), released.clone());
            workers.dispatch(move |load| {
                // Inside the thread's runtime: what the job spawns runs there.
                tokio::spawn(async move {
                    let _ = tx.send(slot());
                    let _ = released.wait_for(|r| *r).await;
                    drop(load);
                });
            });
        }
        let slots: Vec<usize> = (0..threads() * 2).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(workers.threads.iter().map(|w| w.load.load(Ordering::Relaxed)).sum::<usize>(), threads() * 2);
        release.send(true).unwrap();
        drop(released);
        assert!(slots.iter().all(|s| (1..=threads()).contains(s)), "{slots:?}");
        // Spread over the threads: each got as many as the others.
        for s in 1..=threads() {
            assert_eq!(slots.iter().filter(|x| **x == s).count(), 2, "{slots:?}");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while workers.threads.iter().any(|w| w.load.load(Ordering::Relaxed) != 0) {
            assert!(std::time::Instant::now() < deadline, "the load was not given back");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(workers.stop());
    }

    #[test]
    fn without_serving_threads_a_job_runs_where_it_is_dispatched() {
        let here = std::thread::current().id();
        let (tx, rx) = std::sync::mpsc::channel();
        Workers::none().dispatch(move |_| tx.send(std::thread::current().id()).unwrap());
        assert_eq!(rx.recv().unwrap(), here);
        assert_eq!(slot(), 0);
    }
}
