//! tcp mode's byte relay between a client and its backend, written on socket readiness so that an idle connection holds no buffer and only a few words of state; never picks backends, retries or logs (`proxy.rs` does).
//!
//! # Design
//!
//! * **Memory while idle.** A connection that moves nothing is, in user
//!   space, its task, its two socket registrations and this relay's state:
//!   per direction a buffer pointer (no capacity), a count and a flag.
//!   Waiting for data is `poll_read_ready` on the source socket, which keeps
//!   the waker in the socket's registration instead of in a future. (Two
//!   `async` copy loops joined and raced against a timer took about 1.3 KB
//!   per connection: a future keeps room for every state it can be in.)
//! * **Data.** When the source is readable, a [`RELAY_BUFFER`] buffer is
//!   taken from a per-thread spare list, filled with one read and written
//!   to the other side; a write that would block keeps the rest in that
//!   buffer and waits for the destination to be writable (that is the only
//!   time a connection holds a buffer without new data). A read that would
//!   block gives the buffer back. Counters grow when a read is delivered.
//! * **End of stream** on one side becomes `shutdown(SHUT_WR)` on the other
//!   (half-close); the relay ends when both directions have ended, or at
//!   the first error on either.
//! * **Splice.** A direction that has moved [`crate::lb::splice::SPLICE_AFTER`]
//!   bytes moves the rest with splice(2) (`splice.rs`, boxed: only long
//!   streams pay for its state); with no pipe it keeps copying.
//! * **Idle timeout.** With one set, nothing moved either way for that long
//!   ends the relay with `TimedOut`; the timer is boxed (connections
//!   without one do not carry it) and re-armed only when it fires.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

/// Each direction's buffer while data flows.
pub(crate) const RELAY_BUFFER: usize = 16 * 1024;

/// Where a connection's relay starts.
pub(crate) struct Start {
    /// The client's FIN was already passed on: client to backend is over.
    pub(crate) client_done: bool,
    /// The client-to-backend buffer to start with (no capacity: none).
    pub(crate) buffer: Vec<u8>,
}

/// The counters one direction adds its delivered bytes to (the backend's
/// and the connection's own).
pub(crate) type DirectionCounters<'a> = [&'a AtomicU64; 2];

/// Relays between `client` and `backend` until both directions have ended,
/// either fails, or (with `idle`) nothing moved either way for that long
/// (`activity` is the caller's, so that the relay holds no reference into
/// itself). `counters` are client to backend, then backend to client; a
/// spliced direction takes a pipe's place from `budget`.
pub(crate) fn relay<'a>(
    client: &'a TcpStream,
    backend: &'a TcpStream,
    counters: [DirectionCounters<'a>; 2],
    start: Start,
    idle: Option<(Duration, &'a AtomicU64)>,
    budget: &'a Arc<Semaphore>,
) -> impl Future<Output = io::Result<()>> + Send + 'a {
    // Milliseconds since `begun` of the last byte moved either way; only
    // kept (one clock read per read) when an idle timeout is set.
    let begun = Instant::now();
    Relay {
        ends: [client, backend],
        counters,
        activity: idle.map(|(_, activity)| (activity, begun)),
        budget,
        directions: [
            Direction {
                buffer: start.buffer,
                written: 0,
                moved: Some(0),
                state: if start.client_done {
                    State::Done
                } else {
                    State::Copying
                },
            },
            Direction {
                buffer: Vec::new(),
                written: 0,
                moved: Some(0),
                state: State::Copying,
            },
        ],
        watchdog: idle.map(|(limit, _)| Watchdog {
            limit,
            sleep: Box::pin(tokio::time::sleep_until(begun + limit)),
        }),
    }
}

/// The relay's whole state (see the module docs).
struct Relay<'a> {
    /// Client, backend: direction 0 reads `ends[0]` and writes `ends[1]`,
    /// direction 1 the other way.
    ends: [&'a TcpStream; 2],
    counters: [DirectionCounters<'a>; 2],
    activity: Option<(&'a AtomicU64, Instant)>,
    budget: &'a Arc<Semaphore>,
    directions: [Direction<'a>; 2],
    watchdog: Option<Watchdog>,
}

struct Direction<'a> {
    /// The bytes of one read not all written yet; no capacity while idle.
    buffer: Vec<u8>,
    /// How much of `buffer` is written.
    written: usize,
    /// Bytes moved through buffers; past `SPLICE_AFTER` the rest is
    /// spliced (None: splicing was tried and is not available).
    moved: Option<u64>,
    state: State<'a>,
}

enum State<'a> {
    Copying,
    Splicing(Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>),
    Done,
}

struct Watchdog {
    limit: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl Future for Relay<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut ended = 0;
        for index in 0..2 {
            let from = this.ends[index];
            let to = this.ends[1 - index];
            let ends = Ends {
                from,
                to,
                counters: this.counters[index],
                activity: this.activity,
                budget: this.budget,
            };
            match this.directions[index].poll(&ends, cx) {
                Poll::Ready(Ok(())) => ended += 1,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {}
            }
        }
        if ended == 2 {
            return Poll::Ready(Ok(()));
        }
        if let (Some(watchdog), Some((activity, begun))) = (&mut this.watchdog, this.activity)
            && let Poll::Ready(error) = watchdog.poll(activity, begun, cx)
        {
            return Poll::Ready(Err(error));
        }
        Poll::Pending
    }
}

/// What one direction reads from, writes to and counts.
struct Ends<'a> {
    from: &'a TcpStream,
    to: &'a TcpStream,
    counters: DirectionCounters<'a>,
    activity: Option<(&'a AtomicU64, Instant)>,
    budget: &'a Arc<Semaphore>,
}

impl<'a> Direction<'a> {
    /// Moves what can be moved now; Ready once this direction has ended
    /// (its FIN passed on) or failed.
    fn poll(&mut self, ends: &Ends<'a>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(Ok(())),
                State::Splicing(splicing) => {
                    let result = ready!(splicing.as_mut().poll(cx));
                    self.state = State::Done;
                    return Poll::Ready(result);
                }
                State::Copying => {}
            }
            // The rest of the last read first.
            while self.written < self.buffer.len() {
                ready!(ends.to.poll_write_ready(cx))?;
                match ends.to.try_write(&self.buffer[self.written..]) {
                    Ok(0) => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "the destination took no bytes",
                        )));
                    }
                    Ok(wrote) => self.written += wrote,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(error) => return Poll::Ready(Err(error)),
                }
            }
            if !self.buffer.is_empty() {
                let read = self.buffer.len();
                for counter in ends.counters {
                    counter.fetch_add(read as u64, Ordering::Relaxed);
                }
                self.moved = self.moved.map(|moved| moved + read as u64);
                self.written = 0;
                self.buffer.clear();
            }
            if let Some(so_far) = self.moved
                && so_far >= crate::lb::splice::SPLICE_AFTER
            {
                match crate::lb::splice::Pipe::take(ends.budget) {
                    Some(pipe) => {
                        give_back(std::mem::take(&mut self.buffer));
                        // Boxed: only a long stream gets here.
                        self.state = State::Splicing(Box::pin(crate::lb::splice::relay(
                            ends.from,
                            ends.to,
                            pipe,
                            ends.counters,
                            ends.activity,
                        )));
                        continue;
                    }
                    None => self.moved = None,
                }
            }
            if self.buffer.capacity() == 0 {
                // Wait for data before taking memory.
                ready!(ends.from.poll_read_ready(cx))?;
                self.buffer = take_buffer();
            }
            // Reads into the spare capacity, without zeroing it first.
            match ends.from.try_read_buf(&mut self.buffer) {
                Ok(read) => {
                    if let Some((activity, begun)) = ends.activity {
                        activity.store(begun.elapsed().as_millis() as u64, Ordering::Relaxed);
                    }
                    if read == 0 {
                        give_back(std::mem::take(&mut self.buffer));
                        socket2::SockRef::from(ends.to).shutdown(std::net::Shutdown::Write)?;
                        self.state = State::Done;
                        return Poll::Ready(Ok(()));
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // Drained: give the buffer back while idle; the next
                    // poll_read_ready registers for more.
                    give_back(std::mem::take(&mut self.buffer));
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl Watchdog {
    /// Ready with `TimedOut` once nothing moved for `limit`; the timer is
    /// re-armed to the last move's deadline only when it fires.
    fn poll(
        &mut self,
        activity: &AtomicU64,
        begun: Instant,
        cx: &mut Context<'_>,
    ) -> Poll<io::Error> {
        loop {
            ready!(self.sleep.as_mut().poll(cx));
            let last = begun + Duration::from_millis(activity.load(Ordering::Relaxed));
            let deadline = last + self.limit;
            if Instant::now() >= deadline {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("idle for {:?}", self.limit),
                ));
            }
            self.sleep.as_mut().reset(deadline);
        }
    }
}

thread_local! {
    /// Relay buffers not in use on this connection thread. Connections stay
    /// on one thread, so a buffer given back is taken again by the next
    /// burst of data without a trip through the allocator.
    static SPARE_BUFFERS: std::cell::RefCell<Vec<Vec<u8>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// At most this many spare relay buffers are kept per thread (4 MiB); the
/// rest are freed, so idle connections still hold no memory.
const SPARE_BUFFER_LIMIT: usize = 256;

/// An empty relay buffer of [`RELAY_BUFFER`] capacity: a spare one if the
/// thread has one, else a new one.
fn take_buffer() -> Vec<u8> {
    SPARE_BUFFERS
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(RELAY_BUFFER))
}

/// Keep a relay buffer for reuse (or free it when enough are kept).
fn give_back(mut buffer: Vec<u8>) {
    if buffer.capacity() != RELAY_BUFFER {
        return;
    }
    buffer.clear();
    SPARE_BUFFERS.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < SPARE_BUFFER_LIMIT {
            spare.push(buffer);
        }
    });
}
