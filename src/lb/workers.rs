//! The proxy's connection threads: one single-threaded tokio runtime per thread; a connection runs where it was accepted (or on the least-loaded thread) for its whole life.
//!
//! Why not the daemon's multi-threaded runtime: a relayed connection is a
//! ping-pong of short reads and writes. On tokio's work-stealing scheduler
//! the two relay directions and the accept loop wake each other across
//! threads, and idle workers spin looking for work to steal; on a machine
//! where the proxy shares the cores with its backends and clients that
//! spinning is CPU taken from them. A connection pinned to one thread
//! (HAProxy's and nginx's model) wakes only its own thread, and a thread with
//! nothing to do sleeps in `epoll_wait`.
//!
//! Each thread accepts on its own `SO_REUSEPORT` socket (see
//! [`crate::lb::proxy`]) and serves what it accepts, unless it has clearly
//! more live connections than another thread ([`Workers::pick_from`]): then
//! the socket goes (deregistered, as a std socket) to the least-loaded one —
//! HAProxy's least-loaded dispatch, needed because the kernel's hash spreads
//! connections evenly but not their lengths.
//!
//! The pool starts on first use and lives as long as the process; its size is
//! `TOKIO_WORKER_THREADS` when set (so one knob sizes both runtimes, as the
//! benchmark does), otherwise the number of CPUs.

use std::future::Future;
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// One connection thread: its runtime and how many connections it serves.
pub struct Worker {
    handle: Handle,
    live: AtomicUsize,
}

/// The connection threads of the process.
pub struct Workers {
    workers: Vec<Worker>,
    next: AtomicUsize,
}

/// Counts a connection against its worker while alive.
pub struct Load<'a> {
    worker: &'a Worker,
}

#[cfg(test)]
impl Load<'static> {
    /// A count on the process's first connection thread, for tests of what
    /// a connection's task holds.
    pub(crate) fn for_test() -> Load<'static> {
        let worker = Workers::get().worker(0);
        worker.live.fetch_add(1, Ordering::Relaxed);
        Load { worker }
    }
}

impl Drop for Load<'_> {
    fn drop(&mut self) {
        self.worker.live.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Worker {
    /// The runtime of this worker's thread.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs the future `task` makes on this worker's thread, tracked by
    /// `tracker`; the worker counts it as one live connection while the
    /// future holds the [`Load`] it is given (hold it to the end).
    ///
    /// The future takes the count itself rather than being wrapped in one
    /// that holds it: an `async` wrapper keeps room for the wrapped future
    /// twice (the captured value and the awaited one), and a connection's
    /// task is most of what an idle connection costs.
    pub fn spawn<M, F>(&'static self, tracker: &TaskTracker, task: M) -> JoinHandle<()>
    where
        M: FnOnce(Load<'static>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        self.live.fetch_add(1, Ordering::Relaxed);
        tracker.spawn_on(task(Load { worker: self }), &self.handle)
    }

    /// Connections this worker serves now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

impl Workers {
    /// The process's pool, started on first use.
    pub fn get() -> &'static Workers {
        static POOL: OnceLock<Workers> = OnceLock::new();
        POOL.get_or_init(|| {
            let count = pool_size();
            match Workers::start(count) {
                Ok(pool) => pool,
                // Without threads of its own the proxy cannot serve at all;
                // this happens only when the process cannot create threads.
                Err(error) => {
                    panic!("cannot start the proxy's {count} connection threads: {error}")
                }
            }
        })
    }

    fn start(count: usize) -> io::Result<Workers> {
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            thread::Builder::new()
                .name(format!("keepmon-proxy-{index}"))
                // systemd's watchdog (issue 20): a thread stuck in a blocking
                // call stops this beat.
                .spawn(move || {
                    runtime.block_on(crate::systemd::beat_forever(
                        format!("proxy thread {index}"),
                        std::time::Duration::from_secs(1),
                    ))
                })?;
            workers.push(Worker {
                handle,
                live: AtomicUsize::new(0),
            });
        }
        Ok(Workers {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// The worker with the fewest live connections; among equals, the next
    /// one in turn (so a burst of new connections spreads evenly).
    pub fn pick(&'static self) -> &'static Worker {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.workers.len();
        (0..n)
            .map(|i| &self.workers[(start + i) % n])
            .min_by_key(|w| w.live())
            .unwrap_or(&self.workers[0])
    }

    /// Where a connection accepted on `me` should run: `me` unless it
    /// serves more than `HANDOFF_SLACK` (2) connections beyond the least-loaded
    /// worker, in which case that one.
    pub fn pick_from(&'static self, me: &'static Worker) -> &'static Worker {
        let least = self.pick();
        if me.live() > least.live() + HANDOFF_SLACK {
            least
        } else {
            me
        }
    }

    /// The `index`-th worker (wrapping around).
    pub fn worker(&'static self, index: usize) -> &'static Worker {
        &self.workers[index % self.workers.len()]
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }
}

/// How many more live connections the accepting thread may have than the
/// least-loaded one before a new connection is handed over. A little slack
/// keeps the hand-over (two epoll changes and a cross-thread wake-up) rare
/// when the kernel's spread is already even.
const HANDOFF_SLACK: usize = 2;

/// `TOKIO_WORKER_THREADS` if set to a positive number, else the CPU count.
fn pool_size() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_prefers_the_least_loaded_and_rotates_among_equals() {
        let pool: &'static Workers = Box::leak(Box::new(Workers::start(3).unwrap()));
        // All idle: three picks visit three different workers.
        let picked: Vec<*const Worker> = (0..3).map(|_| pool.pick() as *const Worker).collect();
        assert_ne!(picked[0], picked[1]);
        assert_ne!(picked[1], picked[2]);
        assert_ne!(picked[0], picked[2]);
        // Load two of them: the third is chosen whatever the rotation says.
        pool.workers[0].live.store(5, Ordering::Relaxed);
        pool.workers[1].live.store(1, Ordering::Relaxed);
        for _ in 0..6 {
            assert!(std::ptr::eq(pool.pick(), &pool.workers[2]));
        }
    }

    #[test]
    fn spawned_tasks_run_on_the_worker_thread_and_are_counted() {
        let pool: &'static Workers = Box::leak(Box::new(Workers::start(2).unwrap()));
        let tracker = TaskTracker::new();
        let worker = &pool.workers[1];
        let (tx, rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        worker.spawn(&tracker, move |load| async move {
            let _load = load;
            tx.send(thread::current().name().map(str::to_string))
                .unwrap();
            let _ = release_rx.await;
        });
        let name = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(name.as_deref(), Some("keepmon-proxy-1"));
        assert_eq!(worker.live(), 1);
        release_tx.send(()).unwrap();
        tracker.close();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while worker.live() != 0 && std::time::Instant::now() < deadline {
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(worker.live(), 0);
    }

    #[test]
    fn a_connection_stays_where_accepted_unless_that_thread_is_clearly_busier() {
        let pool: &'static Workers = Box::leak(Box::new(Workers::start(2).unwrap()));
        let (a, b) = (&pool.workers[0], &pool.workers[1]);
        assert!(std::ptr::eq(pool.pick_from(a), a));
        a.live.store(HANDOFF_SLACK, Ordering::Relaxed);
        assert!(std::ptr::eq(pool.pick_from(a), a), "within the slack");
        a.live.store(HANDOFF_SLACK + 1, Ordering::Relaxed);
        assert!(std::ptr::eq(pool.pick_from(a), b), "beyond the slack");
        assert!(std::ptr::eq(pool.pick_from(b), b));
    }
}
