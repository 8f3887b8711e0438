//! The built-in userspace TCP proxy: one listener per virtual service, a backend table published atomically, one task per connection relaying bytes; never decides health (the supervisor passes the table) and never cuts an established connection on a table change.
//!
//! # Design
//!
//! * **Table.** The backends, their [`Picker`] and their counters form an
//!   immutable `Table` behind an `ArcSwap`. A new connection loads it
//!   (no lock, no shared reference count), picks, clones the chosen
//!   backend's `Arc<Counters>` and lets the table go. [`ProxyHandle::update`]
//!   builds a new table off the connection path and swaps it in. Counters are
//!   keyed by address and carried over, so a backend that stays keeps its
//!   numbers.
//! * **Drain.** A connection holds its backend's counters, not the table.
//!   A removed backend therefore keeps its established connections until they
//!   close; new connections only see the new table. Removed counters are
//!   remembered weakly and listed by [`ProxyHandle::stats`] while connections
//!   still use them (`in_table: false`).
//! * **Counters** are relaxed atomics in a cache-line aligned block per
//!   backend. `active` counts connections from the first connect attempt until
//!   the relay ends (so least-connection sees connections being opened),
//!   `total` counts established ones (a connect that succeeded, even if the
//!   backend then hung up and the connection was retried elsewhere),
//!   `failures` failed attempts (connect errors and timeouts, and hang-ups
//!   before the first byte that were retried, see below), `bytes_in` bytes
//!   from clients to the backend (replayed bytes count again on the backend
//!   they are replayed to), `bytes_out` bytes from the backend to clients,
//!   both updated as they flow.
//! * **Retries.** A connect error or timeout marks a failure and picks
//!   another backend not yet tried, up to `retries` extra attempts (HAProxy's
//!   `retries` with `option redispatch 1`: every retry goes elsewhere, without
//!   a turn-around delay). When no backend is left to try or the retries are
//!   used up, the sorry server, if any, is tried once; then the client
//!   connection is closed.
//! * **Replay before the first byte** (HAProxy's `retry-on conn-failure
//!   empty-response`, at L4). A connect can succeed and the backend still
//!   hang up without a word: a stopping server resets the connections the
//!   kernel completed in its accept backlog, a dying one closes what it has
//!   just accepted. So while a real server with retries left has not sent
//!   its first byte, the client's bytes are forwarded *and* kept (up to
//!   `REPLAY_LIMIT`, 16 KiB). If that backend then resets or closes (EOF)
//!   before its first byte, it counts a failure and the connection is retried
//!   like a failed connect: on a backend not yet tried, within `retries`, the
//!   sorry server last. The kept bytes are sent to the new backend, then its
//!   first byte is awaited the same way (the last attempt gets the replay but
//!   keeps nothing). The rule has three limits:
//!   - Once the backend has sent a byte, nothing is kept and nothing is
//!     retried: a later reset or close reaches the client as today.
//!   - A client that sends more than 16 KiB before the backend's first byte
//!     gives up replay for its connection; the relay carries on as usual.
//!   - A client half-close is passed on at once and replayed too, but after
//!     it a backend FIN with no data is the backend's answer to a finished
//!     request (a sink, an empty reply), not a failure: it is passed on and
//!     not replayed. A reset is still retried.
//!
//!   A replay can deliver a request twice when a backend acted on it and then
//!   reset without answering; at L4 this cannot be told apart from a server
//!   that was stopping, and `retries = 0` turns it off. The cost is kept to
//!   where it is needed: with `retries = 0`, on the sorry server and on the
//!   last attempt there is no wait and no copy; when the backend speaks first
//!   (or answers before the client sends) the wait is one peek of a 1-byte
//!   stack buffer and no allocation; the replay buffer is taken only when the
//!   client sends first, once per connection, reused across retries and,
//!   when it fills up, handed over as the client-to-backend relay buffer.
//! * **Persistence** maps a client IP (IPv4-mapped IPv6 folded to IPv4) to the
//!   backend it last used, with an expiry refreshed when a connection starts
//!   and when it ends (IPVS `persistent`). The entry is honoured while that
//!   backend is in the table with weight > 0. The map is 64 mutex-guarded
//!   shards: a lock is held for one hash-map operation, never across an
//!   `.await`, and only when persistence is on. Entries exist only for
//!   completed TCP handshakes; a sweeper drops expired ones every 10 s.
//! * **Relay** (`src/lb/relay.rs`): both directions in one hand-polled
//!   state on socket readiness, so that an error on either side ends both.
//!   End of stream on one side becomes `shutdown(SHUT_WR)` on the other
//!   (half-close). Each direction borrows a 16 KiB buffer only while data
//!   flows and gives it back when the socket is drained, so idle
//!   connections hold no buffers; given-back buffers wait in a small
//!   per-thread spare list (at most 256) for the next burst, so a request
//!   costs no allocation. There is no idle timeout unless `timeout client`
//!   or `server` is set: connections last as long as both ends keep them
//!   open.
//! * **Memory of an idle connection.** Its task's future is kept small:
//!   `serve` holds little more than the socket until it hands over to a
//!   boxed rest, connecting is boxed (it is over once connected), the
//!   access log's entry is boxed (present only when logging), and the
//!   waits an idle connection sits in (the backend's first byte, the relay,
//!   http mode's wait for the client's first byte) are polled by hand
//!   rather than built from futures that each carry a waiter. In http mode
//!   nothing else exists until the client sends a byte (hyper's
//!   connection, its buffers and the TLS state are built then), within the
//!   same `http_request` deadline from the accept.
//! * **Server limits.** A server's `maxconn` caps its connections (tcp)
//!   or requests (http); the excess waits in a queue (`src/lb/queue.rs`).
//!   With no `maxconn` anywhere the pick is unchanged.
//! * **Slow start.** A server whose comeback count (from the table) grows
//!   ramps its weight from 1/16 to all of it over its `slowstart`, in
//!   HAProxy's steps ([`slowstart_sixteenths`]); a task rebuilds the table
//!   every second while a ramp lasts. Only wrr, wlc and twos use weights
//!   that way; stats show the configured weight.
//! * **Pools and routes.** A spec without `listen` is a pool: the same
//!   table, counters and queue, no listener. A proxy's routes (set by the
//!   data planes once the pools run) send an http request, or a tcp
//!   connection by its client address, to the first pool whose condition
//!   holds; the rest is served from the proxy's own table.
//! * **Listening.** socket2 with `SO_REUSEADDR` and, on Linux, `IP_FREEBIND`
//!   (no privilege needed), so a VIP held by the VRRP peer can be bound
//!   before it arrives. If the bind still fails with `EADDRNOTAVAIL`, a
//!   background task retries every second (one warning, then debug) and
//!   [`start`] succeeds; [`ProxyHandle::local_addr`] is `None` until then.
//!   `TCP_NODELAY` is set on both sides of every connection.
//! * **Stopping.** Cancelling the `shutdown` token, calling
//!   [`ProxyHandle::close`] or dropping the [`ProxyHandle`] stops accepting
//!   and closes the listening socket. Established connections keep running
//!   until they end; [`ProxyHandle::closed`] waits for that (put it under the
//!   daemon's grace deadline).
//! * **Threads.** Connections run on the proxy's own connection threads
//!   ([`crate::lb::workers`]), one single-threaded runtime each. Every
//!   thread has its own `SO_REUSEPORT` listening socket and accept loop, so
//!   the kernel spreads new connections and a connection is served where it
//!   was accepted; only when that thread has clearly more live connections
//!   than another (the kernel's hash is blind to connection length) is the
//!   socket handed to the least-loaded one. A connection never moves after
//!   that.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::Poll;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::model::{CookieMode, LbScheduler, ProxyMode, ProxyOptions};
use crate::lb::balance::{Backend, ConfigServers, Picker, ip_key};
use crate::lb::queue::Acquired;
use crate::lb::table::ServerLimits;
use crate::lb::workers::{Worker, Workers};

/// What one proxy listens on and where it sends connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySpec {
    /// The virtual server's name (the access log's frontend and backend).
    pub name: String,
    /// None: a pool, which accepts nothing and serves the requests that
    /// other proxies' routes send it.
    pub listen: Option<SocketAddr>,
    pub scheduler: LbScheduler,
    /// What HAProxy's hashing takes from the config's server list (see
    /// [`ConfigServers`]).
    pub config_servers: ConfigServers,
    pub backends: Vec<Backend>,
    /// Stick a client IP to its backend for this long after its last connection.
    pub persistence: Option<Duration>,
    /// Extra attempts, each on another backend, after a failed connect or a
    /// backend that hung up before its first byte (see the module docs).
    pub retries: u32,
    /// Per connect attempt; zero leaves it to the kernel's SYN retries.
    pub connect_timeout: Duration,
    /// Used when no real server can take the connection.
    pub sorry: Option<SocketAddr>,
    /// Mode (tcp or http), limits and the http settings.
    pub options: ProxyOptions,
    /// Per-server `maxconn`, `maxqueue` and `slowstart` (servers not
    /// listed have none).
    pub limits: BTreeMap<SocketAddr, ServerLimits>,
}

/// Counters of one backend, for `lb show` and the metrics page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendStats {
    pub addr: SocketAddr,
    /// The table weight; 0 for removed (draining) backends and the sorry server.
    pub weight: u32,
    /// Connections being opened or relayed now.
    pub active: u64,
    /// Connections established since the backend first appeared.
    pub total: u64,
    /// Bytes from clients to this backend.
    pub bytes_in: u64,
    /// Bytes from this backend to clients.
    pub bytes_out: u64,
    /// Failed attempts: connect errors and timeouts, and hang-ups before the
    /// first byte that were retried elsewhere.
    pub failures: u64,
    /// False for a removed backend that still has connections.
    pub in_table: bool,
    /// This is the sorry server.
    pub sorry: bool,
    /// http mode: requests sent to this backend (retried ones count on
    /// each backend they were sent to).
    pub requests: u64,
    /// http mode: responses by class, 1xx to 5xx.
    pub responses: [u64; 5],
    /// http mode: requests retried on another backend after this one failed.
    pub retries: u64,
    /// Connections (tcp) or requests (http) waiting in this server's queue
    /// now (HAProxy's `qcur`), and the most at once (`qmax`).
    pub queued: u64,
    pub queue_max: u64,
}

/// The virtual server's own queue: connections or requests waiting for any
/// server under its `maxconn` (HAProxy's backend `qcur`/`qmax`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queued: u64,
    pub queue_max: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot move the proxy listening on {running:?} to {requested:?}: start a new proxy")]
    ListenChanged {
        running: Option<SocketAddr>,
        requested: Option<SocketAddr>,
    },
}

/// A running proxy. Dropping it stops accepting, like [`ProxyHandle::close`];
/// established connections still run to their end.
pub struct ProxyHandle {
    shared: Arc<Shared>,
    /// The spec's listen address (None: a pool).
    spec_listen: Option<SocketAddr>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

/// Starts a proxy for `spec` on the current tokio runtime.
///
/// Fails only when the listening socket cannot be set up for a reason other
/// than the address not being local yet (e.g. the port is in use, or
/// privileged without the capability). Stops accepting when `shutdown` is
/// cancelled.
pub async fn start(spec: ProxySpec, shutdown: CancellationToken) -> io::Result<ProxyHandle> {
    let pool = spec.listen.is_none();
    // A pool accepts nothing: its address only names it in logs.
    let listen = spec.listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let maxconn = spec.options.maxconn;
    let table = Table::build(
        Settings::from_spec(&spec, None),
        spec.backends,
        None,
        &mut Vec::new(),
    );
    let shared = Arc::new(Shared::new(listen, table, maxconn));
    let stop = shutdown.child_token();
    let tracker = TaskTracker::new();
    if pool {
        tracker.spawn(ramp_weights(shared.clone(), stop.clone()));
        return Ok(ProxyHandle {
            shared,
            spec_listen: None,
            stop,
            tracker,
        });
    }
    match bind_group(listen) {
        Ok(listeners) => {
            shared.set_local_addr(&listeners[0]);
            info!(%listen, threads = listeners.len(), "proxy listening");
            spawn_accept_loops(&shared, listeners, &stop, &tracker);
        }
        Err(error) if error.kind() == io::ErrorKind::AddrNotAvailable => {
            warn!(%listen, %error, "proxy listen address not available yet; retrying every second");
            let (shared, stop, connections) = (shared.clone(), stop.clone(), tracker.clone());
            tracker.spawn(async move {
                let Some(listeners) = bind_when_available(listen, &stop, bind_group).await else {
                    return;
                };
                shared.set_local_addr(&listeners[0]);
                info!(%listen, "proxy listen address available; listening");
                spawn_accept_loops(&shared, listeners, &stop, &connections);
            });
        }
        Err(error) => {
            return Err(io::Error::new(
                error.kind(),
                format!("cannot listen on {listen}: {error}"),
            ));
        }
    }
    tracker.spawn(sweep_sticky(shared.clone(), stop.clone()));
    tracker.spawn(ramp_weights(shared.clone(), stop.clone()));
    Ok(ProxyHandle {
        shared,
        spec_listen: Some(listen),
        stop,
        tracker,
    })
}

impl ProxyHandle {
    /// The configured listen address (None: a pool).
    pub fn listen(&self) -> Option<SocketAddr> {
        self.spec_listen
    }

    /// Where this proxy's routes send requests: each condition with the
    /// pool that takes what it matches, in rule order. Requests that
    /// match none stay with this proxy's own servers.
    pub fn set_routes(&self, routes: Vec<(crate::lb::route::Compiled, &ProxyHandle)>) {
        let targets = routes
            .into_iter()
            .map(|(condition, pool)| RouteTarget {
                condition,
                pool: pool.shared.clone(),
            })
            .collect();
        self.shared.routes.store(Arc::new(targets));
    }

    /// The bound address (with the real port when `listen` had port 0);
    /// `None` while waiting for the address to become local.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr.get().copied()
    }

    /// Replaces the backend set. New connections use it at once; connections
    /// to removed backends continue (drain). Counters carry over by address.
    /// A repeated address keeps its first entry.
    pub fn update(&self, backends: Vec<Backend>) {
        let mut draining = lock(&self.shared.draining);
        let old = self.shared.table.load_full();
        let table = Table::build(old.settings.clone(), backends, Some(&old), &mut draining);
        self.shared.table.store(Arc::new(table));
    }

    /// Applies everything in `spec` but the listen address, which cannot change.
    pub fn reconfigure(&self, spec: ProxySpec) -> Result<(), ProxyError> {
        if spec.listen != self.spec_listen {
            return Err(ProxyError::ListenChanged {
                running: self.spec_listen,
                requested: spec.listen,
            });
        }
        let mut draining = lock(&self.shared.draining);
        let old = self.shared.table.load_full();
        if old.settings.options.maxconn != spec.options.maxconn {
            // Connections keep the permits of the old limit; new ones count
            // against the new one.
            self.shared.limit.store(spec.options.maxconn.map(semaphore));
        }
        let table = Table::build(
            Settings::from_spec(&spec, Some(&old.settings)),
            spec.backends,
            Some(&old),
            &mut draining,
        );
        self.shared.table.store(Arc::new(table));
        Ok(())
    }

    /// Counters of the backends in the table (in table order), then the sorry
    /// server, then removed backends that still have connections.
    pub fn stats(&self) -> Vec<BackendStats> {
        // The draining lock first: update() swaps the table under it, so a
        // backend is never listed twice or missed.
        let mut draining = lock(&self.shared.draining);
        let table = self.shared.table.load();
        let mut stats = Vec::with_capacity(table.counters.len() + 1 + draining.len());
        for (backend, counters) in table.base.iter().zip(table.counters.iter()) {
            stats.push(counters.snapshot(backend.weight, true));
        }
        if let Some(sorry) = &table.sorry {
            stats.push(sorry.snapshot(0, true));
        }
        draining.retain(|counters| counters.strong_count() > 0);
        for counters in draining.iter().filter_map(Weak::upgrade) {
            if counters.active.load(Ordering::Relaxed) > 0 {
                stats.push(counters.snapshot(0, false));
            }
        }
        stats
    }

    /// The virtual server's own queue (servers' queues are in [`ProxyHandle::stats`]).
    pub fn queue_stats(&self) -> QueueStats {
        self.shared.queue.stats()
    }

    /// What an http-mode virtual server answered itself (all zero in tcp mode).
    pub fn front_stats(&self) -> crate::lb::http::FrontStats {
        self.shared.front.snapshot()
    }

    /// Stops accepting and closes the listening socket; established
    /// connections continue.
    pub fn close(&self) {
        self.stop.cancel();
    }

    /// Waits until the proxy has stopped accepting (shutdown, [`close`]) and
    /// every connection has ended.
    ///
    /// [`close`]: ProxyHandle::close
    pub async fn closed(&self) {
        self.stop.cancelled().await;
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandle")
            .field("listen", &self.shared.listen)
            .field("local_addr", &self.local_addr())
            .field("closed", &self.stop.is_cancelled())
            .finish()
    }
}

/// Client bytes kept for a replay until the backend's first byte; a client
/// that sends more before the backend answers gives up its retries. Equal to
/// the relay's buffer so that a full replay buffer becomes the relay's buffer.
const REPLAY_LIMIT: usize = crate::lb::relay::RELAY_BUFFER;
const LISTEN_BACKLOG: i32 = 4096;
const BIND_RETRY: Duration = Duration::from_secs(1);
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
const STICKY_SWEEP: Duration = Duration::from_secs(10);
const RAMP_TICK: Duration = Duration::from_secs(1);
const STICKY_SHARDS: usize = 64;

pub(crate) struct Shared {
    pub(crate) listen: SocketAddr,
    pub(crate) table: ArcSwap<Table>,
    /// Counters of removed backends; also serialises table writers.
    draining: Mutex<Vec<Weak<Counters>>>,
    sticky: StickyTable,
    local_addr: OnceLock<SocketAddr>,
    /// http mode: what the virtual server itself answered or refused.
    pub(crate) front: crate::lb::http::FrontCounters,
    /// The virtual server's `maxconn`: one permit per client connection.
    limit: arc_swap::ArcSwapOption<Semaphore>,
    /// Waiters for a server slot under the servers' `maxconn`.
    pub(crate) queue: crate::lb::queue::Queue,
    /// Client connections being served now (the access log's `fc`).
    pub(crate) clients: AtomicU64,
    /// http mode's content switching: the first target whose condition
    /// holds takes the request.
    pub(crate) routes: ArcSwap<Vec<RouteTarget>>,
}

/// One route of a proxy: a condition and the pool it sends requests to.
pub(crate) struct RouteTarget {
    pub(crate) condition: crate::lb::route::Compiled,
    pub(crate) pool: Arc<Shared>,
}

/// Counts a client connection in [`Shared::clients`] while it lives.
struct ClientCount<'a>(&'a AtomicU64);

impl<'a> ClientCount<'a> {
    fn enter(clients: &'a AtomicU64) -> ClientCount<'a> {
        clients.fetch_add(1, Ordering::Relaxed);
        ClientCount(clients)
    }
}

impl Drop for ClientCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Table {
    /// Connections on every backend now (the access log's `bc`).
    pub(crate) fn backend_conns(&self) -> u64 {
        self.counters
            .iter()
            .map(|c| c.active.load(Ordering::Relaxed))
            .sum()
    }
}

impl Shared {
    fn new(listen: SocketAddr, table: Table, maxconn: Option<u32>) -> Shared {
        Shared {
            listen,
            table: ArcSwap::from_pointee(table),
            draining: Mutex::new(Vec::new()),
            sticky: StickyTable::new(),
            local_addr: OnceLock::new(),
            front: crate::lb::http::FrontCounters::default(),
            limit: arc_swap::ArcSwapOption::from(maxconn.map(semaphore)),
            queue: crate::lb::queue::Queue::default(),
            clients: AtomicU64::new(0),
            routes: ArcSwap::from_pointee(Vec::new()),
        }
    }

    fn set_local_addr(&self, listener: &std::net::TcpListener) {
        let addr = listener.local_addr().unwrap_or(self.listen);
        // Set once: only one task ever binds.
        let _ = self.local_addr.set(addr);
    }
}

/// Table settings that can change without rebinding.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) scheduler: LbScheduler,
    pub(crate) config_servers: Arc<ConfigServers>,
    pub(crate) persistence: Option<Duration>,
    pub(crate) retries: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) sorry: Option<SocketAddr>,
    pub(crate) options: Arc<ProxyOptions>,
    /// http mode's TLS termination, loaded when the settings were built.
    pub(crate) tls: Option<crate::lb::http::tls::Tls>,
    /// http mode's TLS towards the servers, loaded when the settings were
    /// built. None while `options.http.server_tls` is set: the CA file
    /// could not be read, and server connections fail (never in clear).
    pub(crate) server_tls: Option<Arc<crate::lb::http::upstream_tls::Upstream>>,
    pub(crate) limits: BTreeMap<SocketAddr, ServerLimits>,
    pub(crate) name: Arc<str>,
    /// The access log, opened when the settings were built.
    pub(crate) access_log: Option<Arc<crate::lb::access_log::AccessLogger>>,
}

impl Settings {
    /// The settings of `spec`; certificates are read from disk unless `old`
    /// holds the same files unchanged (a reload re-reads changed ones).
    fn from_spec(spec: &ProxySpec, old: Option<&Settings>) -> Settings {
        Settings {
            tls: load_tls(spec, old),
            server_tls: load_server_tls(spec, old),
            scheduler: spec.scheduler,
            config_servers: Arc::new(spec.config_servers.clone()),
            persistence: spec.persistence,
            retries: spec.retries,
            connect_timeout: spec.connect_timeout,
            sorry: spec.sorry,
            options: Arc::new(spec.options.clone()),
            limits: spec.limits.clone(),
            name: Arc::from(spec.name.as_str()),
            access_log: spec.options.access_log.as_ref().map(|log| {
                match old.and_then(|old| old.access_log.as_ref()) {
                    Some(same) if same.config == *log => same.clone(),
                    _ => Arc::new(crate::lb::access_log::AccessLogger::open(
                        log,
                        spec.listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                    )),
                }
            }),
        }
    }
}

/// The TLS certificates of an http-mode spec: those of `old` when the files
/// did not change, else read anew; a failed read keeps the old ones (and
/// without old ones the proxy refuses TLS handshakes until a reload).
fn load_tls(spec: &ProxySpec, old: Option<&Settings>) -> Option<crate::lb::http::tls::Tls> {
    let certs = &spec.options.http.tls;
    if spec.options.mode != ProxyMode::Http || certs.is_empty() {
        return None;
    }
    let old = old.and_then(|old| old.tls.as_ref());
    if let Some(old) = old
        && old.is_current(certs)
    {
        return Some(old.clone());
    }
    match crate::lb::http::tls::Tls::load(certs) {
        Ok(tls) => Some(tls),
        Err(error) => {
            warn!(listen = ?spec.listen, %error, "cannot load the TLS certificates; keeping the previous ones");
            old.cloned()
        }
    }
}

/// The TLS client settings of an http-mode spec: those of `old` when its
/// CA file did not change, else built anew; a failed read keeps the old
/// ones (and without old ones server connections fail until a reload).
fn load_server_tls(
    spec: &ProxySpec,
    old: Option<&Settings>,
) -> Option<Arc<crate::lb::http::upstream_tls::Upstream>> {
    let wanted = spec.options.http.server_tls.as_ref()?;
    if spec.options.mode != ProxyMode::Http {
        return None;
    }
    let old = old.and_then(|old| old.server_tls.as_ref());
    if let Some(old) = old
        && old.is_current(wanted)
    {
        return Some(old.clone());
    }
    match crate::lb::http::upstream_tls::Upstream::load(wanted) {
        Ok(upstream) => Some(Arc::new(upstream)),
        Err(error) => {
            warn!(listen = ?spec.listen, %error, "cannot load the TLS settings towards the servers; keeping the previous ones");
            old.cloned()
        }
    }
}

/// One immutable snapshot; `counters[i]` belongs to `picker.backends()[i]`.
pub(crate) struct Table {
    pub(crate) settings: Settings,
    pub(crate) picker: Picker,
    pub(crate) counters: Box<[Arc<Counters>]>,
    pub(crate) index: HashMap<SocketAddr, usize>,
    pub(crate) sorry: Option<Arc<Counters>>,
    /// http mode: backend index by cookie value (`options.http.server_cookies`).
    pub(crate) by_cookie: HashMap<String, usize>,
    /// http mode, `cookie ... insert`: each backend's `Set-Cookie` value,
    /// made once per table rather than once per response (same order as
    /// `counters`; None for a server without a cookie).
    pub(crate) set_cookies: Box<[Option<hyper::header::HeaderValue>]>,
    /// `maxconn`/`maxqueue` of each backend (same order as `counters`).
    pub(crate) limits: Box<[ServerLimits]>,
    /// Some backend has a `maxconn`: picks go through [`crate::lb::queue`].
    pub(crate) limited: bool,
    /// The backends with their own weights (the picker's are scaled while
    /// a server slow-starts).
    pub(crate) base: Box<[Backend]>,
    /// Slow-start state by address, carried from table to table.
    ramps: HashMap<SocketAddr, Ramp>,
    /// Some server is slow-starting: the ramp task rebuilds the table
    /// every second until it is done.
    ramping: bool,
}

/// One server's slow start: the comeback count last seen, and since when
/// it ramps (None: at full weight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ramp {
    seen: u32,
    since: Option<Instant>,
}

/// HAProxy's weight scale: a slow-starting server's weight goes from 1/16
/// of its own to all of it in sixteen steps.
const SLOWSTART_STEPS: u32 = 16;

/// HAProxy's slow-start rule (`server_recalc_eweight`): after `elapsed`
/// whole seconds of a `slowstart` of S seconds, the server has
/// `(16 × elapsed + S) / S` sixteenths of its weight (at least one), rounded
/// up; None once `slowstart` has passed.
pub fn slowstart_sixteenths(elapsed: Duration, slowstart: Duration) -> Option<u32> {
    let total = slowstart.as_secs().max(1);
    let secs = elapsed.as_secs();
    if secs >= total {
        return None;
    }
    let steps = (u64::from(SLOWSTART_STEPS) * secs + total) / total;
    Some(
        u32::try_from(steps)
            .unwrap_or(SLOWSTART_STEPS)
            .clamp(1, SLOWSTART_STEPS),
    )
}

/// Whether slow start changes weights under `scheduler` (HAProxy ramps
/// only its dynamic-weight algorithms; keepmon's rr and lc ignore weights
/// and the hashing schedulers are static).
fn ramps_weights(scheduler: LbScheduler) -> bool {
    matches!(
        scheduler,
        LbScheduler::WeightedRoundRobin
            | LbScheduler::WeightedLeastConnection
            | LbScheduler::TwoChoices
    )
}

impl Table {
    /// Builds a table, reusing the counters of `old` and of `draining` by
    /// address; counters of `old` that are not reused go to `draining`.
    fn build(
        settings: Settings,
        backends: Vec<Backend>,
        old: Option<&Table>,
        draining: &mut Vec<Weak<Counters>>,
    ) -> Table {
        let mut unique = Vec::with_capacity(backends.len());
        let mut index = HashMap::with_capacity(backends.len());
        for backend in backends {
            if index.contains_key(&backend.addr) {
                warn!(backend = %backend.addr, "backend listed twice; keeping the first entry");
                continue;
            }
            index.insert(backend.addr, unique.len());
            unique.push(backend);
        }
        let counters: Box<[Arc<Counters>]> = unique
            .iter()
            .map(|backend| reuse_counters(backend.addr, false, old, draining))
            .collect();
        let sorry = settings
            .sorry
            .map(|addr| reuse_counters(addr, true, old, draining));
        if let Some(old) = old {
            for counters in old.counters.iter() {
                if !index.contains_key(&counters.addr) {
                    draining.push(Arc::downgrade(counters));
                }
            }
            if let Some(old_sorry) = &old.sorry
                && settings.sorry != Some(old_sorry.addr)
            {
                draining.push(Arc::downgrade(old_sorry));
            }
        }
        draining.retain(|counters| counters.strong_count() > 0);
        let by_cookie = settings
            .options
            .http
            .server_cookies
            .iter()
            .filter_map(|(addr, value)| Some((value.clone(), *index.get(addr)?)))
            .collect();
        let limits: Box<[ServerLimits]> = unique
            .iter()
            .map(|b| settings.limits.get(&b.addr).copied().unwrap_or_default())
            .collect();
        let set_cookies = set_cookies(&settings, &unique);
        let (ramps, weighted) = slow_start(&settings, &unique, old);
        let ramping = weighted.is_some();
        Table {
            picker: Picker::with_config(
                settings.scheduler,
                weighted.as_deref().unwrap_or(&unique),
                &settings.config_servers,
            ),
            base: unique.into(),
            ramps,
            ramping,
            settings,
            counters,
            index,
            sorry,
            by_cookie,
            set_cookies,
            limited: limits.iter().any(|l| l.maxconn.is_some()),
            limits,
        }
    }
}

/// The `Set-Cookie` value of each backend under `cookie ... insert`.
fn set_cookies(
    settings: &Settings,
    backends: &[Backend],
) -> Box<[Option<hyper::header::HeaderValue>]> {
    let http = &settings.options.http;
    let Some(persist) = &http.cookie else {
        return Box::default();
    };
    let CookieMode::Insert {
        httponly, secure, ..
    } = persist.mode
    else {
        return Box::default();
    };
    backends
        .iter()
        .map(|backend| {
            let value = http.server_cookies.get(&backend.addr)?;
            crate::lb::http::cookie::insert_value(&persist.name, value, httponly, secure)
        })
        .collect()
}

/// The slow-start state after a table change, and the picker's backends
/// when some server ramps (every weight times 16, the ramping ones times
/// their sixteenths). A server starts ramping when its comeback count
/// grows; one first seen does not (HAProxy does not slow-start at start).
fn slow_start(
    settings: &Settings,
    backends: &[Backend],
    old: Option<&Table>,
) -> (HashMap<SocketAddr, Ramp>, Option<Vec<Backend>>) {
    let mut ramps = HashMap::new();
    let mut steps: Vec<Option<u32>> = Vec::with_capacity(backends.len());
    let now = Instant::now();
    for backend in backends {
        let Some(limits) = settings.limits.get(&backend.addr) else {
            steps.push(None);
            continue;
        };
        let Some(slowstart) = limits.slowstart else {
            steps.push(None);
            continue;
        };
        let before = old.and_then(|old| old.ramps.get(&backend.addr).copied());
        let mut ramp = before.unwrap_or(Ramp {
            seen: limits.comebacks,
            since: None,
        });
        if limits.comebacks != ramp.seen {
            ramp = Ramp {
                seen: limits.comebacks,
                since: Some(now),
            };
        }
        let step = ramp.since.and_then(|since| {
            slowstart_sixteenths(now.saturating_duration_since(since), slowstart)
        });
        if step.is_none() {
            ramp.since = None;
        }
        steps.push(step);
        ramps.insert(backend.addr, ramp);
    }
    let weighted =
        (ramps_weights(settings.scheduler) && steps.iter().any(Option::is_some)).then(|| {
            backends
                .iter()
                .zip(&steps)
                .map(|(backend, step)| Backend {
                    addr: backend.addr,
                    weight: match step {
                        Some(step) => backend.weight.saturating_mul(*step),
                        None => backend.weight.saturating_mul(SLOWSTART_STEPS),
                    },
                })
                .collect()
        });
    // Without weighted scheduling the ramp is kept (and ends) all the same.
    (ramps, weighted)
}

fn reuse_counters(
    addr: SocketAddr,
    sorry: bool,
    old: Option<&Table>,
    draining: &mut Vec<Weak<Counters>>,
) -> Arc<Counters> {
    let from_old = old.and_then(|old| {
        if sorry {
            old.sorry.clone().filter(|counters| counters.addr == addr)
        } else {
            old.index
                .get(&addr)
                .map(|&index| old.counters[index].clone())
        }
    });
    if let Some(counters) = from_old {
        return counters;
    }
    let revived = draining.iter().enumerate().find_map(|(position, weak)| {
        weak.upgrade()
            .filter(|counters| counters.addr == addr && counters.sorry == sorry)
            .map(|c| (position, c))
    });
    if let Some((position, counters)) = revived {
        draining.swap_remove(position);
        return counters;
    }
    Arc::new(Counters::new(addr, sorry))
}

/// Live counters of one backend, aligned so that two backends never share a
/// cache line.
#[repr(align(64))]
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) addr: SocketAddr,
    pub(crate) sorry: bool,
    pub(crate) active: AtomicU64,
    pub(crate) total: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) responses: [AtomicU64; 5],
    pub(crate) retries: AtomicU64,
    /// Slots held under the server's `maxconn` (leases with a slot).
    pub(crate) served: AtomicU64,
    /// Waiting in this server's queue now, and the most at once.
    pub(crate) queued: AtomicU64,
    pub(crate) queue_max: AtomicU64,
}

impl Counters {
    fn new(addr: SocketAddr, sorry: bool) -> Counters {
        Counters {
            addr,
            sorry,
            active: AtomicU64::new(0),
            total: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            responses: Default::default(),
            retries: AtomicU64::new(0),
            served: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            queue_max: AtomicU64::new(0),
        }
    }

    fn snapshot(&self, weight: u32, in_table: bool) -> BackendStats {
        BackendStats {
            addr: self.addr,
            weight,
            active: self.active.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            in_table,
            sorry: self.sorry,
            requests: self.requests.load(Ordering::Relaxed),
            responses: std::array::from_fn(|class| self.responses[class].load(Ordering::Relaxed)),
            retries: self.retries.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            queue_max: self.queue_max.load(Ordering::Relaxed),
        }
    }
}

/// One connection's claim on a backend: `active` is incremented on creation
/// and decremented on drop, whatever path the connection takes. A lease
/// taken under the server's `maxconn` also holds a slot (`served`), given
/// back on drop with a wake-up for the queue.
pub(crate) struct Lease {
    pub(crate) counters: Arc<Counters>,
    slot: Option<Arc<tokio::sync::Notify>>,
}

impl Lease {
    pub(crate) fn new(counters: Arc<Counters>) -> Lease {
        counters.active.fetch_add(1, Ordering::Relaxed);
        Lease {
            counters,
            slot: None,
        }
    }

    /// A lease whose slot under `maxconn` the caller already took
    /// (`served` incremented); dropping it wakes `freed`'s waiters.
    pub(crate) fn with_slot(counters: Arc<Counters>, freed: Arc<tokio::sync::Notify>) -> Lease {
        counters.active.fetch_add(1, Ordering::Relaxed);
        Lease {
            counters,
            slot: Some(freed),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.counters.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(freed) = &self.slot {
            self.counters.served.fetch_sub(1, Ordering::AcqRel);
            freed.notify_waiters();
        }
    }
}

/// One listening socket per connection thread, all on `addr` with
/// `SO_REUSEPORT` (the kernel spreads new connections over them); with port
/// 0 the first one picks the port and the others join it.
fn bind_group(addr: SocketAddr) -> io::Result<Vec<std::net::TcpListener>> {
    let count = Workers::get().len().max(1);
    let first = bind_listener(addr)?;
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind_listener(bound)?);
    }
    Ok(listeners)
}

/// Runs each listener's accept loop on its own connection thread.
fn spawn_accept_loops(
    shared: &Arc<Shared>,
    listeners: Vec<std::net::TcpListener>,
    stop: &CancellationToken,
    tracker: &TaskTracker,
) {
    let pool = Workers::get();
    for (index, listener) in listeners.into_iter().enumerate() {
        let (shared, stop, connections) = (shared.clone(), stop.clone(), tracker.clone());
        let worker = pool.worker(index);
        tracker.spawn_on(
            async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => accept_loop(shared, listener, worker, stop, connections).await,
                    Err(error) => {
                        warn!(listen = %shared.listen, %error, "cannot register the proxy listener")
                    }
                }
            },
            worker.handle(),
        );
    }
}

fn bind_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    // Socket::new sets close-on-exec.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    // One socket per connection thread (see `bind_group`). The flag also
    // lets another process of the same user bind this port; keepmon's own
    // sockets are the only ones it expects there.
    socket.set_reuse_port(true)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let freebind = match addr {
            SocketAddr::V4(_) => socket.set_freebind_v4(true),
            SocketAddr::V6(_) => socket.set_freebind_v6(true),
        };
        if let Err(error) = freebind {
            // Kernels before 4.15 have no IPV6_FREEBIND; binding may still work.
            debug!(listen = %addr, %error, "cannot set IP_FREEBIND");
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Retries `bind` every second until it succeeds or `stop` is cancelled.
/// `EADDRNOTAVAIL` is logged at debug (start already warned); another error
/// is logged at warn when it first appears.
async fn bind_when_available<T>(
    addr: SocketAddr,
    stop: &CancellationToken,
    mut bind: impl FnMut(SocketAddr) -> io::Result<T>,
) -> Option<T> {
    let mut last_kind = io::ErrorKind::AddrNotAvailable;
    loop {
        tokio::select! {
            () = stop.cancelled() => return None,
            () = tokio::time::sleep(BIND_RETRY) => {}
        }
        match bind(addr) {
            Ok(bound) => return Some(bound),
            Err(error) if error.kind() == last_kind => {
                debug!(listen = %addr, %error, "proxy listen address still unavailable")
            }
            Err(error) => {
                warn!(listen = %addr, %error, "proxy cannot listen yet; retrying every second");
                last_kind = error.kind();
            }
        }
    }
}

/// `stream`, registered with `target`'s reactor instead of this thread's.
fn hand_over(stream: TcpStream, target: &Worker) -> io::Result<TcpStream> {
    let stream = stream.into_std()?;
    let _context = target.handle().enter();
    TcpStream::from_std(stream)
}

/// What a client connection holds until it ends: its places under the
/// limits and its count on its connection thread.
struct Held {
    _permits: Permits,
    _load: crate::lb::workers::Load<'static>,
}

/// A client connection's places under the global and the virtual server's
/// limits, given back when it ends.
struct Permits {
    _global: Option<OwnedSemaphorePermit>,
    _local: Option<OwnedSemaphorePermit>,
}

fn semaphore(permits: u32) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(
        (permits as usize).min(Semaphore::MAX_PERMITS),
    ))
}

/// Client connections all proxies of the process may hold at once: what
/// the descriptor limit leaves after the daemon's reserve
/// ([`crate::fdlimit::proxy_connection_budget`]), read when the first proxy
/// starts (after the daemon raised the soft limit).
pub(crate) fn global_limit() -> &'static Arc<Semaphore> {
    static GLOBAL: OnceLock<Arc<Semaphore>> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let budget = crate::fdlimit::soft_limit()
            .map(crate::fdlimit::proxy_connection_budget)
            .unwrap_or(u64::MAX);
        let permits = usize::try_from(budget)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        info!(connections = permits, "proxy connection budget");
        Arc::new(Semaphore::new(permits))
    })
}

/// Waits for a place under both limits for an accepted connection: over a
/// limit, the accept loop stops there and new clients wait in the kernel's
/// accept queue (HAProxy's `maxconn`), so the daemon keeps descriptors for
/// its own work (beyond the budget, at most one held connection per thread).
async fn acquire_permits(shared: &Shared, full: &mut bool) -> Permits {
    let global = global_limit();
    let local = shared.limit.load_full();
    let at_limit = global.available_permits() == 0
        || local.as_ref().is_some_and(|l| l.available_permits() == 0);
    if at_limit && !*full {
        warn!(listen = %shared.listen, "proxy at its connection limit; new clients wait in the accept queue");
    }
    *full = at_limit;
    // Semaphores are never closed, so acquiring only fails if one were.
    let global = global.clone().acquire_owned().await.ok();
    let local = match local {
        Some(local) => local.acquire_owned().await.ok(),
        None => None,
    };
    Permits {
        _global: global,
        _local: local,
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    me: &'static Worker,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let listen = shared.listen;
    let cancelled = stop.cancelled();
    tokio::pin!(cancelled);
    let mut failing = false;
    let mut full = false;
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut cancelled => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                failing = false;
                // Over a limit this loop holds this one connection and
                // accepts no more: later clients wait in the kernel's queue.
                // (Waiting before accept instead would strand clients in the
                // queue of a thread holding no permit while another holds one.)
                let permits = tokio::select! {
                    biased;
                    () = &mut cancelled => break,
                    permits = acquire_permits(&shared, &mut full) => permits,
                };
                let shared = shared.clone();
                let target = Workers::get().pick_from(me);
                let stream = if std::ptr::eq(target, me) {
                    stream
                } else {
                    // This thread has clearly more connections than another:
                    // hand the socket over, registered with that thread's
                    // reactor; it stays there to the end.
                    match hand_over(stream, target) {
                        Ok(stream) => stream,
                        Err(error) => {
                            debug!(%listen, client = %peer, %error, "cannot hand the connection over");
                            continue;
                        }
                    }
                };
                // `serve`'s own future is the task: no wrapper keeping a
                // second copy of what it captured.
                target.spawn(&tracker, move |load| {
                    let held = Held {
                        _permits: permits,
                        _load: load,
                    };
                    serve(shared, stream, peer, held)
                });
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) =>
            {
                debug!(%listen, %error, "client left before accept");
            }
            Err(error) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: pause instead of spinning.
                if failing {
                    debug!(%listen, %error, "accept still failing");
                } else {
                    warn!(%listen, %error, "proxy cannot accept connections; pausing");
                    failing = true;
                }
                tokio::select! {
                    () = &mut cancelled => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
    info!(%listen, "proxy stopped accepting");
}

/// Serves one accepted client connection. Kept small: in http mode a
/// connection whose client has sent nothing yet holds only this future
/// (the task's whole state) and its socket; hyper's connection, the TLS
/// state and the PROXY header's buffer are built once bytes arrive.
/// `held` is given back when the connection ends.
// Not an async fn: see the comment in the body.
#[allow(clippy::manual_async_fn)]
fn serve(
    shared: Arc<Shared>,
    client: TcpStream,
    peer: SocketAddr,
    held: Held,
) -> impl Future<Output = ()> + Send + 'static {
    // An async block, not an async fn: a fn keeps its arguments twice in
    // its future (as passed and as bound), and this future is what every
    // connection's task is.
    async move {
        let accepted = Instant::now();
        let _count = ClientCount::enter(&shared.clients);
        // Failing to set TCP_NODELAY costs latency, not correctness.
        let _ = client.set_nodelay(true);
        detect_dead_peers(&client);
        let options = shared.table.load().settings.options.clone();
        if options.mode == ProxyMode::Http {
            // The same deadlines as once the bytes are there: the request
            // head's (`http_request`, from the accept), or the PROXY header's.
            let mut deadline = accepted + options.http.timeout_http_request;
            if options.accept_proxy {
                deadline = deadline.min(accepted + PROXY_HEADER_TIMEOUT);
            }
            // A peek, not `readable()`: tokio takes an accepted socket as
            // readable until a read finds it empty. Polled by hand, not as
            // `timeout_at(peek())`: the futures' waiters would add to what every
            // idle connection holds.
            let mut expired = std::pin::pin!(tokio::time::sleep_until(deadline));
            let ready = std::future::poll_fn(|cx| {
                let mut first = [0u8; 1];
                let mut first = tokio::io::ReadBuf::new(&mut first);
                if let Poll::Ready(peeked) = client.poll_peek(cx, &mut first) {
                    return Poll::Ready(Some(peeked.map(drop)));
                }
                expired.as_mut().poll(cx).map(|()| None)
            })
            .await;
            match ready {
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    debug!(listen = %shared.listen, client = %peer, %error, "client connection failed before its request");
                    return;
                }
                None => {
                    debug!(listen = %shared.listen, client = %peer, "no request within the timeout; closing");
                    return;
                }
            }
        }
        Box::pin(serve_connection(
            shared.clone(),
            client,
            peer,
            options,
            accepted,
        ))
        .await;
        drop(held);
    }
}

/// The rest of `serve`: the PROXY header, then http mode or the tcp relay.
async fn serve_connection(
    shared: Arc<Shared>,
    mut client: TcpStream,
    peer: SocketAddr,
    options: Arc<ProxyOptions>,
    accepted: Instant,
) {
    let listen = shared.listen;
    let mut local = client.local_addr().unwrap_or(listen);
    let mut peer = peer;
    if options.accept_proxy {
        match Box::pin(read_proxy_header(
            &mut client,
            accepted + PROXY_HEADER_TIMEOUT,
        ))
        .await
        {
            Ok((source, destination)) => {
                peer = source.unwrap_or(peer);
                local = destination.unwrap_or(local);
            }
            Err(error) => {
                debug!(%listen, client = %peer, %error, "no valid PROXY protocol header; closing");
                return;
            }
        }
    }
    if options.mode == ProxyMode::Http {
        let tls = shared.table.load().settings.tls.clone();
        // Boxed: a future is as large as its largest state, and the http
        // one (hyper's connection) would otherwise make every tcp-mode
        // connection's task as large as an http one's.
        Box::pin(crate::lb::http::serve(
            shared.clone(),
            client,
            peer,
            local,
            options,
            tls,
            accepted,
        ))
        .await;
        return;
    }
    let mut log = TcpLog::new(&shared, peer, accepted);
    let client_ip = peer.ip().to_canonical();
    // Content switching by client address: the first route whose
    // condition holds names the pool whose servers take the connection.
    let front = shared.clone();
    let shared = route_by_source(&front, client_ip).unwrap_or_else(|| front.clone());
    if let Some(log) = &mut log
        && !Arc::ptr_eq(&front, &shared)
    {
        log.entry.backend = shared.table.load().settings.name.to_string();
    }
    let send_proxy = if Arc::ptr_eq(&front, &shared) {
        options.send_proxy
    } else {
        shared.table.load().settings.options.send_proxy
    };
    let proxy_header =
        send_proxy.map(|version| crate::lb::proxy_protocol::header(version, peer, local));
    let mut attempts = Attempts::default();
    let mut early = Early::default();
    let (backend, lease) = loop {
        // Boxed: connecting (queue, timeout, retries) is a large state that
        // an established connection should not keep room for.
        let Some(connected) = Box::pin(connect_backend(
            &shared,
            client_ip,
            peer.port(),
            &mut attempts,
        ))
        .await
        else {
            debug!(%listen, client = %peer, "no backend reachable; closing the client connection");
            if let Some(log) = &mut log {
                log.entry.termination = *b"SC";
            }
            return;
        };
        let Connected {
            mut stream,
            lease,
            may_retry,
        } = connected;
        let backend_addr = lease.counters.addr;
        if let Some(header) = &proxy_header
            && let Err(error) = stream.write_all(header).await
        {
            lease.counters.failures.fetch_add(1, Ordering::Relaxed);
            debug!(%listen, client = %peer, backend = %backend_addr, %error, "cannot send the PROXY header; trying another backend");
            attempts.tried.push(backend_addr);
            continue;
        }
        if !may_retry {
            // The last attempt: pass on what earlier backends got, then relay.
            if let Err(error) = early.replay(&mut stream, &lease.counters).await {
                debug!(%listen, client = %peer, backend = %backend_addr, %error, "cannot replay the client's bytes; closing the client connection");
                return;
            }
            break (stream, lease);
        }
        match early
            .wait_for_first_byte(&client, &mut stream, &lease.counters)
            .await
        {
            FirstByte::Relay => break (stream, lease),
            FirstByte::Retry(error) => {
                lease.counters.failures.fetch_add(1, Ordering::Relaxed);
                debug!(%listen, client = %peer, backend = %backend_addr, %error, replay_bytes = early.replay.len(), "backend ended before its first byte; retrying on another");
                attempts.tried.push(backend_addr);
            }
            FirstByte::ClientFailed(error) => {
                debug!(%listen, client = %peer, backend = %backend_addr, %error, "client connection failed before the backend answered");
                refresh_sticky(&shared, client_ip, &lease.counters);
                return;
            }
        }
    };
    let idle = {
        let client = front.table.load().settings.options.timeout_client;
        let server = shared.table.load().settings.options.timeout_server;
        match (client, server) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    if let Some(log) = &mut log {
        log.connected(
            &front,
            &lease.counters,
            attempts.tried.len(),
            early.replay.len(),
        );
    }
    let moved = [AtomicU64::new(0), AtomicU64::new(0)];
    let activity = AtomicU64::new(0);
    let start = crate::lb::relay::Start {
        client_done: early.client_done,
        buffer: early.into_relay_buffer(),
    };
    let relayed = crate::lb::relay::relay(
        &client,
        &backend,
        [
            [&lease.counters.bytes_in, &moved[0]],
            [&lease.counters.bytes_out, &moved[1]],
        ],
        start,
        idle.map(|limit| (limit, &activity)),
        global_limit(),
    )
    .await;
    if let Err(error) = &relayed {
        debug!(%listen, client = %peer, backend = %lease.counters.addr, %error, "connection ended with an error");
    }
    if let Some(log) = &mut log {
        log.client_bytes += moved[0].load(Ordering::Relaxed);
        log.entry.bytes = moved[1].load(Ordering::Relaxed);
        log.entry.termination = match &relayed {
            Ok(()) => *b"--",
            Err(error) if error.kind() == io::ErrorKind::TimedOut => *b"cD",
            Err(_) => *b"SD",
        };
    }
    refresh_sticky(&shared, client_ip, &lease.counters);
}

/// tcp mode's routes (conditions on `src` only, the validator checks):
/// the pool of the first one that holds for `client_ip`.
fn route_by_source(shared: &Shared, client_ip: IpAddr) -> Option<Arc<Shared>> {
    let routes = shared.routes.load();
    if routes.is_empty() {
        return None;
    }
    let headers = hyper::HeaderMap::new();
    let facts = crate::lb::route::Facts {
        method: "",
        path: "",
        headers: &headers,
        source: client_ip,
    };
    routes
        .iter()
        .find(|target| target.condition.holds(&facts))
        .map(|target| target.pool.clone())
}

/// A tcp connection's access log line, written when it is dropped (at
/// every way out of `serve`).
struct TcpLog {
    logger: Arc<crate::lb::access_log::AccessLogger>,
    entry: crate::lb::access_log::Entry,
    accepted: Instant,
    /// Bytes the client sent (`dontlognull` skips connections without).
    client_bytes: u64,
}

impl TcpLog {
    /// Boxed: the entry is only there when the access log is on, and a
    /// connection's task should not carry its room when it is off.
    fn new(shared: &Shared, peer: SocketAddr, accepted: Instant) -> Option<Box<TcpLog>> {
        let table = shared.table.load();
        let logger = table.settings.access_log.clone()?;
        Some(Box::new(TcpLog {
            logger,
            entry: crate::lb::access_log::Entry {
                client: Some(peer),
                date: crate::lb::access_log::haproxy_date(
                    std::time::SystemTime::now() - accepted.elapsed(),
                ),
                name: table.settings.name.to_string(),
                backend: table.settings.options.backend.clone().unwrap_or_default(),
                t_wait: Some(Duration::ZERO),
                termination: *b"CC",
                ..Default::default()
            },
            accepted,
            client_bytes: 0,
        }))
    }

    fn connected(&mut self, shared: &Shared, counters: &Counters, retries: usize, early: usize) {
        let table = shared.table.load();
        self.entry.server = Some(counters.addr);
        self.entry.t_connect = Some(self.accepted.elapsed());
        self.entry.retries = u32::try_from(retries).unwrap_or(u32::MAX);
        self.entry.clients = shared.clients.load(Ordering::Relaxed);
        self.entry.backend_conns = table.backend_conns();
        self.entry.server_conns = counters.active.load(Ordering::Relaxed);
        self.entry.server_queue = counters.queued.load(Ordering::Relaxed);
        self.entry.backend_queue = shared.queue.stats().queued;
        self.client_bytes = early as u64;
    }
}

impl Drop for TcpLog {
    fn drop(&mut self) {
        if self.logger.dontlognull() && self.client_bytes == 0 {
            return;
        }
        self.entry.t_total = Some(self.accepted.elapsed());
        self.logger.write(&self.entry.tcplog());
    }
}

/// How long a client may take to send its PROXY protocol header.
const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads (and consumes) the PROXY protocol header at the start of
/// `client`: the source and destination it announces (None: `LOCAL` /
/// `UNKNOWN`, keep the connection's own).
async fn read_proxy_header(
    client: &mut TcpStream,
    deadline: Instant,
) -> io::Result<(Option<SocketAddr>, Option<SocketAddr>)> {
    use crate::lb::proxy_protocol::{MAX_HEADER, Parsed, parse};
    let mut buffer = [0u8; MAX_HEADER];
    let mut seen = 0;
    loop {
        let peeked = tokio::time::timeout_at(deadline, client.peek(&mut buffer))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "PROXY header timed out"))??;
        if peeked == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a PROXY header",
            ));
        }
        match parse(&buffer[..peeked]) {
            Parsed::Header {
                len,
                source,
                destination,
            } => {
                client.read_exact(&mut buffer[..len]).await?;
                return Ok((source, destination));
            }
            Parsed::Invalid => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a PROXY protocol header",
                ));
            }
            Parsed::Incomplete if peeked == seen => {
                // The rest is on its way; peek would return the same bytes
                // at once, so wait a little.
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "PROXY header timed out",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Parsed::Incomplete => seen = peeked,
        }
    }
}

/// Backends already tried by one client connection.
#[derive(Default)]
struct Attempts {
    /// Real servers that failed, in order; empty (no allocation) until one fails.
    tried: Vec<SocketAddr>,
    sorry_tried: bool,
}

/// A connected backend and whether another may still be tried after it.
struct Connected {
    stream: TcpStream,
    lease: Lease,
    /// A real server with retries left: worth keeping the client's bytes
    /// for a replay until it answers.
    may_retry: bool,
}

/// Connects to a backend for `client_ip`, with retries on other backends
/// and the sorry server last; backends in `attempts` are skipped and failed
/// ones added. `None` when every attempt failed.
async fn connect_backend(
    shared: &Shared,
    client_ip: IpAddr,
    client_port: u16,
    attempts: &mut Attempts,
) -> Option<Connected> {
    loop {
        let table = shared.table.load();
        let (lease, connect_timeout, persistence, retries) = if table.limited {
            // Servers with maxconn: the pick may wait in a queue, so it
            // holds the table itself rather than a guard.
            let table = arc_swap::Guard::into_inner(table);
            let settings = &table.settings;
            let may_retry = attempts.tried.len() <= settings.retries as usize;
            let acquired = if may_retry {
                let bound = attempts
                    .tried
                    .is_empty()
                    .then(|| sticky_index(&table, &shared.sticky, client_ip))
                    .flatten();
                let excluded: Vec<usize> = attempts
                    .tried
                    .iter()
                    .filter_map(|addr| table.index.get(addr).copied())
                    .collect();
                let flow = SocketAddr::new(client_ip, client_port);
                crate::lb::queue::acquire(shared, &table, bound, &excluded, |avoid| {
                    table.picker.pick_flow(
                        flow,
                        |index| table.counters[index].active.load(Ordering::Relaxed),
                        avoid,
                    )
                })
                .await
            } else {
                Acquired::NoneLeft
            };
            let lease = match acquired {
                Acquired::Server(_, lease) => lease,
                Acquired::TimedOut => {
                    debug!(listen = %shared.listen, client = %client_ip, "no server slot within the queue timeout; closing");
                    return None;
                }
                Acquired::NoneLeft => match &table.sorry {
                    Some(sorry) if !attempts.sorry_tried => {
                        attempts.sorry_tried = true;
                        Lease::new(sorry.clone())
                    }
                    _ => return None,
                },
            };
            (
                lease,
                settings.connect_timeout,
                settings.persistence,
                settings.retries,
            )
        } else {
            // The table guard lives only in this block, never across an await.
            let settings = &table.settings;
            let may_retry = attempts.tried.len() <= settings.retries as usize;
            let chosen = if may_retry {
                choose(
                    &table,
                    &shared.sticky,
                    client_ip,
                    client_port,
                    &attempts.tried,
                )
            } else {
                None
            };
            let counters = match chosen {
                Some(counters) => counters,
                None => match &table.sorry {
                    Some(sorry) if !attempts.sorry_tried => {
                        attempts.sorry_tried = true;
                        sorry.clone()
                    }
                    _ => return None,
                },
            };
            (
                Lease::new(counters),
                settings.connect_timeout,
                settings.persistence,
                settings.retries,
            )
        };
        let addr = lease.counters.addr;
        match connect(addr, connect_timeout).await {
            Ok(stream) => {
                lease.counters.total.fetch_add(1, Ordering::Relaxed);
                if let Some(persistence) = persistence
                    && !lease.counters.sorry
                {
                    shared.sticky.insert(client_ip, addr, expiry(persistence));
                }
                let may_retry = !lease.counters.sorry && attempts.tried.len() < retries as usize;
                return Some(Connected {
                    stream,
                    lease,
                    may_retry,
                });
            }
            Err(error) => {
                lease.counters.failures.fetch_add(1, Ordering::Relaxed);
                debug!(listen = %shared.listen, backend = %addr, %error, "connect to backend failed");
                if lease.counters.sorry {
                    return None;
                }
                attempts.tried.push(addr);
            }
        }
    }
}

/// Refreshes the client's persistence entry when its connection ends.
fn refresh_sticky(shared: &Shared, client_ip: IpAddr, counters: &Counters) {
    if let Some(persistence) = shared.table.load().settings.persistence
        && !counters.sorry
    {
        shared
            .sticky
            .insert(client_ip, counters.addr, expiry(persistence));
    }
}

/// The index of the backend `client_ip` sticks to, if persistence is on and
/// that backend is in the table with weight > 0.
fn sticky_index(table: &Table, sticky: &StickyTable, client_ip: IpAddr) -> Option<usize> {
    table.settings.persistence?;
    let addr = sticky.get(client_ip, Instant::now())?;
    let &index = table.index.get(&addr)?;
    (table.picker.backends()[index].weight > 0).then_some(index)
}

/// The persistent backend if it can take the connection, else the picker's choice.
///
/// Indexing cannot panic: `index` values come from the picker or the index
/// map, both built from the same backend list as `table.counters`.
fn choose(
    table: &Table,
    sticky: &StickyTable,
    client_ip: IpAddr,
    client_port: u16,
    tried: &[SocketAddr],
) -> Option<Arc<Counters>> {
    if tried.is_empty()
        && table.settings.persistence.is_some()
        && let Some(addr) = sticky.get(client_ip, Instant::now())
        && let Some(&index) = table.index.get(&addr)
        && table.picker.backends()[index].weight > 0
    {
        return Some(table.counters[index].clone());
    }
    // Empty on the first attempt, so no allocation there.
    let excluded: Vec<usize> = tried
        .iter()
        .filter_map(|addr| table.index.get(addr).copied())
        .collect();
    let index = table.picker.pick_flow(
        SocketAddr::new(client_ip, client_port),
        |index| table.counters[index].active.load(Ordering::Relaxed),
        &excluded,
    )?;
    Some(table.counters[index].clone())
}

pub(crate) async fn connect(addr: SocketAddr, connect_timeout: Duration) -> io::Result<TcpStream> {
    let stream = if connect_timeout.is_zero() {
        TcpStream::connect(addr).await?
    } else {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(connected) => connected?,
            Err(_elapsed) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect timed out after {connect_timeout:?}"),
                ));
            }
        }
    };
    let _ = stream.set_nodelay(true);
    detect_dead_peers(&stream);
    Ok(stream)
}

/// TCP keepalive on every proxied socket, client and server side: after
/// [`KEEPALIVE_IDLE`] of silence the kernel probes the peer every
/// [`KEEPALIVE_INTERVAL`] and resets the connection after
/// [`KEEPALIVE_PROBES`] unanswered probes (or at once when the peer answers
/// with a reset). A connection whose client vanished — most often because
/// the virtual IP moved to the other director, so the client's packets no
/// longer reach this one — is then closed within about two minutes, with
/// no idle timeout configured: an idle but live connection (a database
/// session, a websocket) answers the probes and stays open, which an idle
/// timeout default would not allow. `timeout = { client, server }` still
/// closes idle connections when set.
fn detect_dead_peers(stream: &TcpStream) {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    // Failing to set it costs a descriptor held longer, not correctness.
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

/// Silence before the first keepalive probe.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Between unanswered probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the kernel resets the connection.
const KEEPALIVE_PROBES: u32 = 6;

/// One connection before its backend's first byte: the client's bytes
/// forwarded so far (kept for a replay) and whether the client half-closed.
#[derive(Debug, Default)]
struct Early {
    /// No capacity until the client sends before the backend answers; then
    /// [`REPLAY_LIMIT`] once, reused by every later attempt.
    replay: Vec<u8>,
    /// The client's FIN was read and passed on.
    client_done: bool,
}

/// How the wait for a backend's first byte ended.
#[derive(Debug)]
enum FirstByte {
    /// The backend sent a byte, or gave its answer to a finished request
    /// (FIN after the client's FIN), or the client sent more than a replay
    /// can hold: relay as usual from here.
    Relay,
    /// The backend closed or reset the connection before its first byte:
    /// a replay on another backend is safe.
    Retry(io::Error),
    /// The client's side failed; the connection is over.
    ClientFailed(io::Error),
}

impl Early {
    /// Sends `backend` what earlier backends got: the client's bytes, then
    /// its FIN if it half-closed.
    async fn replay(&self, backend: &mut TcpStream, counters: &Counters) -> io::Result<()> {
        if !self.replay.is_empty() {
            backend.write_all(&self.replay).await?;
            counters
                .bytes_in
                .fetch_add(self.replay.len() as u64, Ordering::Relaxed);
        }
        if self.client_done {
            backend.shutdown().await?;
        }
        Ok(())
    }

    /// Replays, then forwards the client's bytes (keeping a copy) until the
    /// backend sends its first byte or ends. Nothing is read from the
    /// backend: its first byte is only peeked at, and the relay reads it.
    async fn wait_for_first_byte(
        &mut self,
        client: &TcpStream,
        backend: &mut TcpStream,
        counters: &Counters,
    ) -> FirstByte {
        if let Err(error) = self.replay(backend, counters).await {
            return FirstByte::Retry(error);
        }
        loop {
            let client_done = self.client_done;
            // Polled by hand, not as `peek` and `readable` futures: this is
            // where an idle connection waits when the backend may still be
            // retried, and those futures would be part of its task's size.
            let event = std::future::poll_fn(|cx| {
                // The backend first: once it answers, the client's bytes go
                // through the relay without a copy.
                let mut first = [0u8; 1];
                let mut first = tokio::io::ReadBuf::new(&mut first);
                if let Poll::Ready(peeked) = backend.poll_peek(cx, &mut first) {
                    return Poll::Ready(Ok(peeked));
                }
                // A peek, not readiness alone: tokio takes an accepted socket
                // as readable until a read finds it empty, and the replay
                // buffer is only taken for bytes that are there.
                if !client_done {
                    let mut sent = [0u8; 1];
                    let mut sent = tokio::io::ReadBuf::new(&mut sent);
                    if let Poll::Ready(peeked) = client.poll_peek(cx, &mut sent) {
                        return Poll::Ready(Err(peeked.map(drop)));
                    }
                }
                Poll::Pending
            })
            .await;
            match event {
                Ok(Ok(0)) if self.client_done => return FirstByte::Relay,
                Ok(Ok(0)) => {
                    return FirstByte::Retry(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "backend closed before its first byte",
                    ));
                }
                Ok(Ok(_)) => return FirstByte::Relay,
                Ok(Err(error)) => return FirstByte::Retry(error),
                Err(Err(error)) => return FirstByte::ClientFailed(error),
                Err(Ok(())) => {}
            }
            if self.replay.len() >= REPLAY_LIMIT {
                // More than a replay can hold: give up retrying; the relay
                // forwards the rest.
                return FirstByte::Relay;
            }
            // Reserved once and never grown: reads stop at REPLAY_LIMIT.
            self.replay.reserve_exact(REPLAY_LIMIT - self.replay.len());
            let start = self.replay.len();
            match client.try_read_buf(&mut self.replay) {
                Ok(0) => {
                    self.client_done = true;
                    if let Err(error) = backend.shutdown().await {
                        return FirstByte::Retry(error);
                    }
                }
                Ok(read) => {
                    if let Err(error) = backend.write_all(&self.replay[start..]).await {
                        return FirstByte::Retry(error);
                    }
                    counters.bytes_in.fetch_add(read as u64, Ordering::Relaxed);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return FirstByte::ClientFailed(error),
            }
        }
    }

    /// The buffer the client-to-backend pump starts with: the full replay
    /// buffer when the client has more to send right away, else none (an
    /// idle connection holds no buffer).
    fn into_relay_buffer(self) -> Vec<u8> {
        if self.replay.len() >= REPLAY_LIMIT {
            let mut buffer = self.replay;
            buffer.clear();
            buffer
        } else {
            Vec::new()
        }
    }
}

/// Client IP → backend, with expiry. See the module docs.
struct StickyTable {
    shards: Box<[Mutex<HashMap<IpAddr, Sticky>>]>,
}

#[derive(Clone, Copy, Debug)]
struct Sticky {
    backend: SocketAddr,
    expires: Instant,
}

impl StickyTable {
    fn new() -> StickyTable {
        StickyTable {
            shards: (0..STICKY_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
        }
    }

    fn shard(&self, client_ip: IpAddr) -> MutexGuard<'_, HashMap<IpAddr, Sticky>> {
        lock(&self.shards[ip_key(client_ip) as usize % STICKY_SHARDS])
    }

    fn get(&self, client_ip: IpAddr, now: Instant) -> Option<SocketAddr> {
        let shard = self.shard(client_ip);
        shard
            .get(&client_ip)
            .filter(|sticky| sticky.expires > now)
            .map(|sticky| sticky.backend)
    }

    fn insert(&self, client_ip: IpAddr, backend: SocketAddr, expires: Instant) {
        self.shard(client_ip)
            .insert(client_ip, Sticky { backend, expires });
    }

    fn sweep(&self, now: Instant) {
        for shard in self.shards.iter() {
            lock(shard).retain(|_, sticky| sticky.expires > now);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }
}

/// While a server slow-starts, rebuilds the table every second so its
/// weight follows the ramp (HAProxy recomputes it about as often).
async fn ramp_weights(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RAMP_TICK) => {}
        }
        if !shared.table.load().ramping {
            continue;
        }
        let mut draining = lock(&shared.draining);
        let old = shared.table.load_full();
        let table = Table::build(
            old.settings.clone(),
            old.base.to_vec(),
            Some(&old),
            &mut draining,
        );
        shared.table.store(Arc::new(table));
    }
}

async fn sweep_sticky(shared: Arc<Shared>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(STICKY_SWEEP);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => shared.sticky.sweep(Instant::now()),
        }
    }
}

/// Now plus `persistence`, saturating instead of overflowing (no panic for
/// absurd durations).
fn expiry(persistence: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(persistence)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Locks, ignoring poisoning: every critical section here is a single
/// hash-map or vector operation that leaves the data consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 80))
    }

    fn settings() -> Settings {
        Settings {
            scheduler: LbScheduler::RoundRobin,
            config_servers: Default::default(),
            persistence: None,
            retries: 0,
            connect_timeout: Duration::from_secs(1),
            sorry: None,
            options: Arc::default(),
            tls: None,
            server_tls: None,
            limits: BTreeMap::new(),
            name: Arc::from("test"),
            access_log: None,
        }
    }

    fn table(old: Option<&Table>, draining: &mut Vec<Weak<Counters>>, lasts: &[u8]) -> Table {
        let backends = lasts
            .iter()
            .map(|&last| Backend {
                addr: addr(last),
                weight: 1,
            })
            .collect();
        Table::build(settings(), backends, old, draining)
    }

    #[test]
    fn counters_carry_over_by_address_and_removed_ones_drain() {
        let mut draining = Vec::new();
        let first = table(None, &mut draining, &[1, 2]);
        first.counters[0].total.store(7, Ordering::Relaxed);
        let lease = Lease::new(first.counters[1].clone());

        let second = table(Some(&first), &mut draining, &[3, 1]);
        assert!(Arc::ptr_eq(&second.counters[1], &first.counters[0]));
        assert_eq!(second.counters[1].total.load(Ordering::Relaxed), 7);
        assert_eq!(draining.len(), 1, "backend 2 drains");
        drop(first);

        // Re-adding a draining backend revives its counters.
        let third = table(Some(&second), &mut draining, &[1, 2]);
        assert!(Arc::ptr_eq(&third.counters[1], &lease.counters));
        assert_eq!(third.counters[1].active.load(Ordering::Relaxed), 1);
        drop(lease);
        assert_eq!(third.counters[1].active.load(Ordering::Relaxed), 0);

        // Backend 3 left with no connection: forgotten once the old tables are gone.
        drop(second);
        let fourth = table(Some(&third), &mut draining, &[1, 2]);
        assert!(draining.is_empty());
        assert_eq!(fourth.counters.len(), 2);
    }

    #[test]
    fn duplicate_backends_keep_the_first_entry() {
        let backends = vec![
            Backend {
                addr: addr(1),
                weight: 3,
            },
            Backend {
                addr: addr(1),
                weight: 5,
            },
            Backend {
                addr: addr(2),
                weight: 1,
            },
        ];
        let table = Table::build(settings(), backends, None, &mut Vec::new());
        assert_eq!(table.picker.backends().len(), 2);
        assert_eq!(table.picker.backends()[0].weight, 3);
        assert_eq!(table.index[&addr(2)], 1);
    }

    #[tokio::test(start_paused = true)]
    async fn sticky_entries_expire_and_are_swept() {
        let sticky = StickyTable::new();
        let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let now = Instant::now();
        sticky.insert(client, addr(1), now + Duration::from_secs(30));
        assert_eq!(sticky.get(client, now), Some(addr(1)));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(sticky.get(client, Instant::now()), Some(addr(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(sticky.get(client, Instant::now()), None);
        assert_eq!(sticky.len(), 1);
        sticky.sweep(Instant::now());
        assert_eq!(sticky.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn bind_is_retried_every_second_until_the_address_appears() {
        let stop = CancellationToken::new();
        let mut attempts = 0;
        let started = Instant::now();
        let bound = bind_when_available(addr(1), &stop, |_| {
            attempts += 1;
            if attempts < 3 {
                Err(io::Error::from(io::ErrorKind::AddrNotAvailable))
            } else {
                Ok("bound")
            }
        })
        .await;
        assert_eq!(bound, Some("bound"));
        assert_eq!(attempts, 3);
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn bind_retry_stops_on_shutdown() {
        let stop = CancellationToken::new();
        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move {
                bind_when_available(addr(1), &stop, |_| -> io::Result<()> {
                    Err(io::Error::from(io::ErrorKind::AddrNotAvailable))
                })
                .await
            })
        };
        tokio::time::advance(Duration::from_secs(5)).await;
        stop.cancel();
        assert_eq!(waiter.await.unwrap(), None);
    }

    #[test]
    fn slowstart_follows_haproxys_sixteenths() {
        let ten = Duration::from_secs(10);
        let at = |secs: u64| slowstart_sixteenths(Duration::from_secs(secs), ten);
        assert_eq!(at(0), Some(1));
        assert_eq!(at(1), Some(2)); // (16 + 10) / 10
        assert_eq!(at(5), Some(9));
        assert_eq!(at(9), Some(15));
        assert_eq!(at(10), None);
        assert_eq!(
            slowstart_sixteenths(Duration::ZERO, Duration::from_millis(300)),
            Some(1)
        );
    }

    /// A server whose comeback count grows ramps from 1/16 of its weight
    /// to all of it over `slowstart`, on tokio's paused clock; a server
    /// first seen (a fresh proxy) starts at full weight.
    #[tokio::test(start_paused = true)]
    async fn a_returning_server_ramps_its_weight() {
        let (a, b) = (addr(1), addr(2));
        let with = |comebacks: u32| {
            let mut settings = settings();
            settings.scheduler = LbScheduler::WeightedRoundRobin;
            settings.limits = BTreeMap::from([(
                a,
                ServerLimits {
                    slowstart: Some(Duration::from_secs(10)),
                    comebacks,
                    ..ServerLimits::default()
                },
            )]);
            settings
        };
        let backends = vec![
            Backend { addr: a, weight: 2 },
            Backend { addr: b, weight: 2 },
        ];
        let weights = |table: &Table| -> Vec<u32> {
            table.picker.backends().iter().map(|b| b.weight).collect()
        };
        let mut draining = Vec::new();
        let first = Table::build(with(3), backends.clone(), None, &mut draining);
        assert_eq!(weights(&first), [2, 2], "no slow start at start");
        assert!(!first.ramping);
        let back = Table::build(with(4), backends.clone(), Some(&first), &mut draining);
        assert_eq!(weights(&back), [2, 32], "1/16 when it comes back");
        assert!(back.ramping);
        assert_eq!(back.base[0].weight, 2, "stats keep the configured weight");
        tokio::time::advance(Duration::from_secs(5)).await;
        let half = Table::build(with(4), backends.clone(), Some(&back), &mut draining);
        assert_eq!(weights(&half), [18, 32], "9/16 after half of it");
        tokio::time::advance(Duration::from_secs(5)).await;
        let done = Table::build(with(4), backends, Some(&half), &mut draining);
        assert_eq!(weights(&done), [2, 2]);
        assert!(!done.ramping);
    }

    /// Loopback sockets: a client and the proxy's side of it.
    async fn socket_pair() -> (TcpStream, TcpStream, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, peer) = listener.accept().await.unwrap();
        (client, accepted, peer)
    }

    /// An idle connection's memory is mostly its task, that is these
    /// futures (bench/proxy/idle_memory.py measures the whole). Their sizes
    /// are fixed at compile time: these bounds fail the day a change makes
    /// an idle connection carry room for a large state again (boxing it is
    /// the fix). Debug-build sizes, which are the larger.
    #[tokio::test]
    async fn an_idle_connections_futures_stay_small() {
        let (_client, accepted, peer) = socket_pair().await;
        let shared = Arc::new(Shared::new(peer, table(None, &mut Vec::new(), &[1]), None));
        let held = Held {
            _permits: Permits {
                _global: None,
                _local: None,
            },
            _load: crate::lb::workers::Load::for_test(),
        };
        // The whole task's future (the accepting thread's case).
        let serving = serve(shared.clone(), accepted, peer, held);
        let size = std::mem::size_of_val(&serving);
        assert!(size <= 320, "serve: {size} bytes");
        drop(serving);

        let (_client, accepted, peer) = socket_pair().await;
        let rest = serve_connection(shared, accepted, peer, Arc::default(), Instant::now());
        let size = std::mem::size_of_val(&rest);
        assert!(size <= 1024, "serve_connection: {size} bytes");
        drop(rest);

        let (_client, accepted, peer) = socket_pair().await;
        let http = crate::lb::http::serve(
            Arc::new(Shared::new(peer, table(None, &mut Vec::new(), &[1]), None)),
            accepted,
            peer,
            peer,
            Arc::default(),
            None,
            Instant::now(),
        );
        let size = std::mem::size_of_val(&http);
        // Only the fast path's loop is inline (its requests, TLS and
        // hyper's path are boxed); debug builds lay futures out larger.
        assert!(size <= 4096, "http::serve: {size} bytes");
        drop(http);

        let (_client, accepted, _) = socket_pair().await;
        let (_server, mut backend, _) = socket_pair().await;
        let counters = Counters::new(peer, false);
        let mut early = Early::default();
        let waiting = early.wait_for_first_byte(&accepted, &mut backend, &counters);
        let size = std::mem::size_of_val(&waiting);
        assert!(size <= 256, "wait_for_first_byte: {size} bytes");
        drop(waiting);

        let moved = [AtomicU64::new(0), AtomicU64::new(0)];
        let relaying = crate::lb::relay::relay(
            &accepted,
            &backend,
            [[&moved[0], &moved[1]], [&moved[0], &moved[1]]],
            crate::lb::relay::Start {
                client_done: false,
                buffer: Vec::new(),
            },
            None,
            global_limit(),
        );
        let size = std::mem::size_of_val(&relaying);
        assert!(size <= 320, "relay: {size} bytes");
    }
}
