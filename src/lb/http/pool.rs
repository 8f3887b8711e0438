//! Idle keep-alive connections to backends, one pool per proxy thread and per backend address: a connection is reused only for the server it was opened to and only on the thread that opened it; never decides which server a request goes to.
//!
//! Connections stay on one thread (see [`crate::lb::workers`]), so the pool
//! is a thread-local map with no lock. The most recently used connection is
//! taken first (its socket is warm; older ones age out). A connection
//! leaves the pool for good when the backend closed it (hyper's connection
//! task ended), when it idled longer than [`MAX_IDLE`] — below the 5 s
//! keep-alive timeout of common servers, so a request rarely races the
//! server's close — or when more than [`MAX_IDLE_PER_SERVER`] are idle.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::client::conn::http1::SendRequest;
use tokio::time::Instant;

use crate::lb::http::body::RequestBody;

/// The longest a pooled connection waits for its next request.
pub(crate) const MAX_IDLE: Duration = Duration::from_secs(4);

/// Idle connections kept per backend on one thread.
pub(crate) const MAX_IDLE_PER_SERVER: usize = 128;

struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

thread_local! {
    static IDLE: RefCell<HashMap<SocketAddr, Vec<Idle>>> = RefCell::new(HashMap::new());
}

/// An idle connection to `addr` opened on this thread, if one is left.
/// It may still turn out closed when used: the caller checks `ready()`.
pub(crate) fn take(addr: SocketAddr) -> Option<SendRequest<RequestBody>> {
    IDLE.try_with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(entry) = list.pop() {
            if !entry.sender.is_closed() && now.duration_since(entry.since) < MAX_IDLE {
                return Some(entry.sender);
            }
        }
        None
    })
    .ok()
    .flatten()
}

/// Keeps a connection whose last response was read to the end.
pub(crate) fn put(addr: SocketAddr, sender: SendRequest<RequestBody>) {
    if sender.is_closed() {
        return;
    }
    let _ = IDLE.try_with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.entry(addr).or_default();
        if list.len() >= MAX_IDLE_PER_SERVER {
            let now = Instant::now();
            list.retain(|entry| {
                !entry.sender.is_closed() && now.duration_since(entry.since) < MAX_IDLE
            });
            if list.len() >= MAX_IDLE_PER_SERVER {
                // The oldest goes.
                list.remove(0);
            }
        }
        list.push(Idle {
            sender,
            since: Instant::now(),
        });
    });
}
