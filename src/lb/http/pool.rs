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

/// Which requests may use a pooled connection: those for `server`, with
/// the PROXY protocol (whose header names one client) only those of the
/// same client connection, and only under the TLS settings it was opened
/// with (a reload may change them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) server: SocketAddr,
    pub(crate) client: Option<SocketAddr>,
    /// [`crate::lb::http::upstream_tls::Upstream::id`]; 0: plain HTTP.
    pub(crate) tls: u64,
}

struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

thread_local! {
    static IDLE: RefCell<HashMap<Key, Vec<Idle>>> = RefCell::new(HashMap::new());
}

/// An idle connection for `key` opened on this thread, if one is left.
/// It may still turn out closed when used: the caller checks `ready()`.
pub(crate) fn take(key: Key) -> Option<SendRequest<RequestBody>> {
    IDLE.try_with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(&key)?;
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
pub(crate) fn put(key: Key, sender: SendRequest<RequestBody>) {
    if sender.is_closed() {
        return;
    }
    let _ = IDLE.try_with(|idle| {
        let mut idle = idle.borrow_mut();
        if key.client.is_some() {
            // Per-client entries would pile up as clients come and go:
            // drop the lists whose connections all closed.
            idle.retain(|key, list| {
                key.client.is_none() || list.iter().any(|entry| !entry.sender.is_closed())
            });
        }
        let list = idle.entry(key).or_default();
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
