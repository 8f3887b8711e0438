//! Zero-copy relay for long streams: once one direction of a tcp-mode connection has moved [`SPLICE_AFTER`] bytes, the rest goes socket → pipe → socket with splice(2), as HAProxy does, instead of through a user-space buffer; the http fast path moves long response bodies of known length the same way (`exact`).
//!
//! Short exchanges (requests, small responses) never get here: they keep the
//! buffered path, which costs the same two system calls per chunk without a
//! pipe. A spliced direction holds a pipe (two descriptors) for the rest of
//! the connection; each pipe takes one place of the proxies' connection
//! budget, so descriptors stay within the limit that leaves the daemon its
//! reserve. With no place left, or if the kernel refuses a pipe, the
//! direction simply keeps copying.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{OFlag, SpliceFFlags, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Bytes one direction moves through the buffer before it switches to splice.
pub const SPLICE_AFTER: u64 = 64 * 1024;

/// Bytes delivered by splice since the process started, all proxies.
static SPLICED: AtomicU64 = AtomicU64::new(0);

/// Bytes the proxies have moved with splice(2) so far (the rest of their
/// traffic went through user-space buffers).
pub fn spliced_bytes() -> u64 {
    SPLICED.load(Ordering::Relaxed)
}

/// The most one splice call moves: the default pipe size.
const CHUNK: usize = 64 * 1024;

/// A pipe and the budget place it holds.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    _place: OwnedSemaphorePermit,
}

impl Pipe {
    /// A pipe, if the budget has a place for it and the kernel gives one.
    pub(crate) fn take(budget: &Arc<Semaphore>) -> Option<Pipe> {
        let place = budget.clone().try_acquire_owned().ok()?;
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).ok()?;
        Some(Pipe {
            read,
            write,
            _place: place,
        })
    }
}

/// Moves the rest of one direction from `from` to `to` through `pipe`
/// until `from` ends (then `to` is half-closed, as the buffered path does)
/// or either side fails. `counters` count the bytes delivered; `activity`
/// records the time of each move for the idle timeout.
pub(crate) async fn relay(
    from: &TcpStream,
    to: &TcpStream,
    pipe: Pipe,
    counters: [&AtomicU64; 2],
    activity: Option<(&AtomicU64, Instant)>,
) -> io::Result<()> {
    loop {
        let filled = fill(from, &pipe, CHUNK).await?;
        touch(activity);
        if filled == 0 {
            socket2::SockRef::from(to).shutdown(std::net::Shutdown::Write)?;
            return Ok(());
        }
        drain(&pipe, to, filled, None, |moved| {
            for counter in counters {
                counter.fetch_add(moved as u64, Ordering::Relaxed);
            }
            touch(activity);
        })
        .await?;
    }
}

/// Moves exactly `len` bytes from `from` to `to` through `pipe` (an http
/// response body of known length): an error if `from` ends first, or if
/// `to` takes nothing for `stall` (HAProxy's `timeout client`).
pub(crate) async fn exact(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &Pipe,
    len: u64,
    stall: Option<std::time::Duration>,
) -> io::Result<()> {
    let mut remaining = len;
    while remaining > 0 {
        let want = usize::try_from(remaining).unwrap_or(CHUNK).min(CHUNK);
        let filled = fill(from, pipe, want).await?;
        if filled == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection inside a response body",
            ));
        }
        remaining -= filled as u64;
        drain(pipe, to, filled, stall, |_| {}).await?;
    }
    Ok(())
}

const FLAGS: SpliceFFlags = SpliceFFlags::SPLICE_F_MOVE.union(SpliceFFlags::SPLICE_F_NONBLOCK);

/// Fills the (empty) pipe with up to `want` bytes from `from`: 0 when
/// `from` has ended.
async fn fill(from: &TcpStream, pipe: &Pipe, want: usize) -> io::Result<usize> {
    loop {
        from.readable().await?;
        match from.try_io(Interest::READABLE, || {
            splice(from.as_fd(), None, pipe.write.as_fd(), None, want, FLAGS)
                .map_err(io::Error::from)
        }) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            moved => return moved,
        }
    }
}

/// Drains `left` bytes of the pipe into `to`, reporting each move; with a
/// `stall` limit, `to` taking nothing for that long is an error.
async fn drain(
    pipe: &Pipe,
    to: &TcpStream,
    mut left: usize,
    stall: Option<std::time::Duration>,
    mut moved: impl FnMut(usize),
) -> io::Result<()> {
    while left > 0 {
        match stall {
            Some(limit) => tokio::time::timeout(limit, to.writable())
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("client timeout: the client read nothing for {limit:?}"),
                    )
                })??,
            None => to.writable().await?,
        }
        match to.try_io(Interest::WRITABLE, || {
            splice(pipe.read.as_fd(), None, to.as_fd(), None, left, FLAGS).map_err(io::Error::from)
        }) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "splice wrote nothing",
                ));
            }
            Ok(count) => {
                left -= count;
                SPLICED.fetch_add(count as u64, Ordering::Relaxed);
                moved(count);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn touch(activity: Option<(&AtomicU64, Instant)>) {
    if let Some((activity, start)) = activity {
        activity.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}
