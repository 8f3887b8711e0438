//! The proxy's http mode (HAProxy's `mode http`): each request of a client connection is balanced on its own over pooled keep-alive backend connections; hyper parses and frames both sides (plain bodyless requests take the fast path in `fast.rs`), this module decides where a request goes and what it carries; never decides health (the table does).
//!
//! # Design
//!
//! * **The fast path first**: a client connection (plain or TLS) is
//!   served by `fast.rs` as long as its requests are bodyless keep-alive
//!   requests that need nothing but the pick, `X-Forwarded-*` and cookie
//!   insertion; at the first other request the connection comes here, to
//!   hyper, with the bytes already read. The rules below hold on both
//!   paths.
//! * **One client connection** is a hyper HTTP/1 server connection on the
//!   proxy thread that accepted it (see [`crate::lb::workers`]). hyper
//!   reads HTTP/1.0 and 1.1, keeps the connection alive, answers
//!   `Expect: 100-continue` when the body is first read (that is, once a
//!   backend was chosen and the request sent), and refuses malformed
//!   requests with 400 before they reach this module: bad or conflicting
//!   `Content-Length`, a `Transfer-Encoding` whose last coding is not
//!   chunked (or any on HTTP/1.0), obs-fold header lines, bad chunk sizes
//!   (the body fails mid-stream and both connections close). A request with
//!   both `Transfer-Encoding: chunked` and `Content-Length` is read as
//!   chunked, the length dropped, and the connection closed after it
//!   (RFC 9112 §6.3; HAProxy does the same) — nothing ambiguous is ever
//!   forwarded, since the backend always gets framing hyper writes itself.
//! * **Routes** (HAProxy's `use_backend`): the first route whose condition
//!   holds for the request as the client sent it hands the request to its
//!   pool (a proxy without a listener): that pool's table, queue and
//!   settings (scheduler, cookie, retries, timeouts, error files) serve it;
//!   the client connection, its limits and its counters stay this proxy's.
//! * **Per request**, the backend is the one a valid persistence cookie
//!   names (see [`cookie`]), else the scheduler's pick — keyed by the
//!   `hash` part of the request for sh/mh/haproxy-map — among servers with weight > 0.
//! * **Backend connections** come from a per-thread pool of idle
//!   keep-alive connections for that server (`pool.rs`), or are opened.
//!   A response's connection goes back to the pool when its body was read
//!   to the end; a connection whose response was not finished is closed.
//! * **Retries** (HAProxy's `retries` + `option redispatch`): a failed
//!   connect, a pooled connection found closed, or an idempotent request
//!   without a body whose connection closed before any response byte, is
//!   sent again on another server (a stale pooled connection: on the same
//!   server with a new connection). Nothing else is retried: once a body
//!   byte was sent or a response byte read, the request is the server's.
//!   When no server is left: 503; a server that failed the request: 502;
//!   no response head within `timeout server`: 504.
//! * **Upgrades** (WebSocket): the request goes on a new backend
//!   connection; on `101` both sides are taken over from hyper and bytes
//!   are copied both ways until either closes.
//! * **Timeouts**: `http_request` bounds reading a request head (hyper's
//!   header timeout; for the first request counted from the accept: a
//!   connection waits for its client's first byte before hyper's
//!   connection exists, holding no buffers, see `proxy::serve`);
//!   `http_keep_alive` closes a connection that has had no request in
//!   flight for that long (checked once per period, so the idle time is
//!   between one and two periods); `server` bounds the wait for a response
//!   head; `connect` each connection attempt; `client` (HAProxy's
//!   `timeout client`) how long the client may leave the proxy waiting,
//!   for the next piece of a request body the backend is ready for, or to
//!   make room for more of the response (then the connection closes).

mod body;
mod client_io;
pub mod cookie;
mod fast;
pub mod headers;
pub mod intercept;
mod pool;
mod reply;
pub mod tls;
pub mod upstream_tls;
pub mod wire;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CACHE_CONTROL, HeaderValue, SET_COOKIE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::debug;

use crate::config::model::{CookieMode, ProxyOptions};
use crate::lb::access_log;
use crate::lb::http::body::{ReplyBody, RequestBody};
use crate::lb::http::client_io::ClientIo;
use crate::lb::http::headers::ClientSide;
use crate::lb::proxy::{self, Counters, Lease, Shared, Table};
use crate::lb::queue::Acquired;

/// What the virtual server answered itself, for `lb show --stats` and the
/// metrics page.
#[derive(Debug, Default)]
pub(crate) struct FrontCounters {
    /// Requests received (parsed).
    pub(crate) requests: AtomicU64,
    /// Responses sent, by class 1xx to 5xx, the proxy's own included.
    pub(crate) responses: [AtomicU64; 5],
    /// Requests answered 503 because no server could take them.
    pub(crate) no_server: AtomicU64,
}

/// A snapshot of the front-end counters of an http-mode proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrontStats {
    pub requests: u64,
    pub responses: [u64; 5],
    pub no_server: u64,
}

impl FrontCounters {
    pub(crate) fn snapshot(&self) -> FrontStats {
        FrontStats {
            requests: self.requests.load(Ordering::Relaxed),
            responses: std::array::from_fn(|class| self.responses[class].load(Ordering::Relaxed)),
            no_server: self.no_server.load(Ordering::Relaxed),
        }
    }
}

/// Serves one accepted client connection in http mode until it closes.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    client: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    options: Arc<ProxyOptions>,
    tls: Option<tls::Tls>,
    accepted: tokio::time::Instant,
) {
    let connection = Arc::new(Connection {
        accepted,
        shared,
        client: ClientSide {
            ip: peer.ip().to_canonical(),
            local,
            tls: tls.is_some(),
        },
        peer,
        started: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
    });
    let limit = options.http.timeout_http_request;
    let Some(tls) = tls else {
        // The first request head is due `http_request` after the accept,
        // as hyper's timer would have it had hyper been started then (it
        // starts once the client sent its first byte, see `proxy::serve`).
        let client = ClientIo::new(client, options.timeout_client);
        let served = fast::serve(&connection, client, &options, accepted + limit).await;
        if let fast::Outcome::HandOff { io, unread, first } = served {
            let io = fast::Prefixed::new(unread, io);
            let first_head_by = first.then_some(accepted + limit);
            // Boxed, as the TLS states below: a future is as large as its
            // largest state, and hyper's connection would make every fast
            // path connection that large, idle ones included.
            Box::pin(serve_io(
                connection,
                TokioIo::new(io),
                &options,
                first_head_by,
            ))
            .await;
        }
        return;
    };
    // The handshake is part of the request head's time.
    let handshake = Box::pin(tls.acceptor.accept(client));
    match tokio::time::timeout_at(accepted + limit, handshake).await {
        Ok(Ok(stream)) => {
            let stream = ClientIo::new(stream, options.timeout_client);
            let head_by = tokio::time::Instant::now() + limit;
            // Boxed: a TLS session is large, and a plain connection's
            // future would otherwise be as large.
            let served = Box::pin(fast::serve(&connection, stream, &options, head_by)).await;
            if let fast::Outcome::HandOff { io, unread, .. } = served {
                let io = fast::Prefixed::new(unread, io);
                Box::pin(serve_io(connection, TokioIo::new(io), &options, None)).await;
            }
        }
        Ok(Err(error)) => {
            debug!(listen = %connection.shared.listen, client = %peer, %error, "tls handshake failed");
        }
        Err(_elapsed) => {
            debug!(listen = %connection.shared.listen, client = %peer, "tls handshake timed out");
        }
    }
}

/// One client connection's facts, shared by its requests.
struct Connection {
    /// When the client connection was accepted (the first request's `TR`).
    accepted: tokio::time::Instant,
    shared: Arc<Shared>,
    client: ClientSide,
    peer: SocketAddr,
    /// Requests started on this connection.
    started: AtomicU64,
    /// Requests whose response body is still being sent.
    in_flight: AtomicU64,
}

/// Counts a request as in flight on its client connection until dropped
/// (with the response body).
pub(crate) struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves requests on `io` until the connection ends; `first_head_by`
/// closes the connection (silently, as hyper's header timeout does) when
/// no request head was read by then.
async fn serve_io<I>(
    connection: Arc<Connection>,
    io: TokioIo<I>,
    options: &ProxyOptions,
    first_head_by: Option<tokio::time::Instant>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.http.timeout_http_request)
        .auto_date_header(false)
        .keep_alive(true);
    let service = {
        let connection = connection.clone();
        service_fn(move |request| handle(connection.clone(), request))
    };
    let served = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(served);
    let keep_alive = options.http.timeout_http_keep_alive;
    let tick = tokio::time::sleep(keep_alive);
    tokio::pin!(tick);
    let mut tick = Alarm::new(tick);
    let first_head =
        tokio::time::sleep_until(first_head_by.unwrap_or_else(tokio::time::Instant::now));
    tokio::pin!(first_head);
    let mut first_head = first_head_by.map(|_| Alarm::new(first_head));
    let mut seen = 0;
    let mut closing = false;
    loop {
        let step = std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = served.as_mut().poll(cx) {
                return Poll::Ready(Step::Ended(result));
            }
            if first_head.as_mut().is_some_and(|alarm| alarm.rang(cx)) {
                return Poll::Ready(Step::FirstHead);
            }
            if !closing && tick.rang(cx) {
                return Poll::Ready(Step::Tick);
            }
            Poll::Pending
        })
        .await;
        match step {
            Step::Ended(result) => {
                if let Err(error) = result {
                    debug!(listen = %connection.shared.listen, client = %connection.peer, %error, "http client connection ended with an error");
                }
                return;
            }
            Step::FirstHead => {
                first_head = None;
                if connection.started.load(Ordering::Relaxed) == 0 {
                    debug!(listen = %connection.shared.listen, client = %connection.peer, "no request head within http_request; closing");
                    return;
                }
            }
            Step::Tick => {
                tick.reset(tokio::time::Instant::now() + keep_alive);
                let started = connection.started.load(Ordering::Relaxed);
                if started > 0
                    && started == seen
                    && connection.in_flight.load(Ordering::Relaxed) == 0
                {
                    // Idle a whole period: close once nothing is in progress.
                    served.as_mut().graceful_shutdown();
                    closing = true;
                }
                seen = started;
            }
        }
    }
}

/// What woke [`serve_io`]'s loop.
enum Step {
    Ended(Result<(), hyper::Error>),
    FirstHead,
    Tick,
}

/// A timer the connection's loop checks without polling it on every
/// wake-up (the task wakes several times per request): once polled, tokio
/// wakes the task when it fires, and until then `is_elapsed` says no
/// without registering anything again.
struct Alarm<'s> {
    sleep: Pin<&'s mut tokio::time::Sleep>,
    /// Polled since the last reset: the timer wheel holds this task's waker.
    armed: bool,
}

impl<'s> Alarm<'s> {
    fn new(sleep: Pin<&'s mut tokio::time::Sleep>) -> Alarm<'s> {
        Alarm {
            sleep,
            armed: false,
        }
    }

    /// Whether the deadline has passed.
    fn rang(&mut self, cx: &mut Context<'_>) -> bool {
        if self.armed && !self.sleep.is_elapsed() {
            return false;
        }
        self.armed = true;
        self.sleep.as_mut().poll(cx).is_ready()
    }

    fn reset(&mut self, deadline: tokio::time::Instant) {
        self.sleep.as_mut().reset(deadline);
        self.armed = false;
    }

    fn deadline(&self) -> tokio::time::Instant {
        self.sleep.deadline()
    }
}

async fn handle(
    connection: Arc<Connection>,
    request: Request<Incoming>,
) -> Result<Response<ReplyBody>, Infallible> {
    let earlier = connection.started.fetch_add(1, Ordering::Relaxed);
    connection.in_flight.fetch_add(1, Ordering::Relaxed);
    let in_flight = InFlight(connection.clone());
    let front = &connection.shared.front;
    front.requests.fetch_add(1, Ordering::Relaxed);
    let logger = connection.shared.table.load().settings.access_log.clone();
    let mut timing = Timing {
        on: logger.is_some(),
        ..Timing::default()
    };
    let log_start = logger.as_ref().map(|_| {
        let now = tokio::time::Instant::now();
        let t_request = if earlier == 0 {
            now.saturating_duration_since(connection.accepted)
        } else {
            std::time::Duration::ZERO
        };
        let line = format!(
            "{} {} {:?}",
            request.method(),
            request.uri(),
            request.version()
        );
        (now, t_request, line)
    });
    // The stats page served on this virtual server's own port answers its
    // uri itself; everything else is proxied.
    let intercepted = intercept::find(connection.shared.listen, &request);
    // The pool a route chose, if any (its error files come first).
    let mut routed: Option<Arc<Shared>> = None;
    let result = match intercepted {
        Some(intercept) => Ok(intercept::answer(intercept, request, connection.peer).await),
        None => forward(&connection, request, &mut timing, &mut routed).await,
    };
    if timing.on && result.is_err() {
        timing.termination = match &result {
            Err(StatusCode::SERVICE_UNAVAILABLE) if timing.queue_timeout => *b"sQ",
            Err(StatusCode::SERVICE_UNAVAILABLE) => *b"SC",
            Err(StatusCode::GATEWAY_TIMEOUT) => *b"sH",
            Err(StatusCode::BAD_GATEWAY) => *b"SH",
            Err(StatusCode::REQUEST_TIMEOUT) => *b"cD",
            _ => *b"PR",
        };
    }
    let mut response = match result {
        Ok(response) => response,
        Err(status) => {
            if status == StatusCode::SERVICE_UNAVAILABLE {
                front.no_server.fetch_add(1, Ordering::Relaxed);
            }
            let table = connection.shared.table.load();
            let pool = routed.as_ref().map(|pool| pool.table.load());
            let file = pool
                .as_ref()
                .and_then(|pool| pool.settings.options.error_files.get(&status.as_u16()))
                .or_else(|| table.settings.options.error_files.get(&status.as_u16()));
            match file {
                Some(file) => reply::from_file(file),
                None => reply::error(status),
            }
        }
    };
    if let Some(counter) = front.responses.get(class_index(response.status())) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    if let (Some(logger), Some((start, t_request, request_line))) = (logger, log_start) {
        let table = connection.shared.table.load();
        let backend = match &routed {
            Some(pool) => pool.table.load().settings.name.to_string(),
            None => table.settings.options.backend.clone().unwrap_or_default(),
        };
        let entry = access_log::Entry {
            client: Some(connection.peer),
            date: access_log::haproxy_date(std::time::SystemTime::now() - start.elapsed()),
            name: table.settings.name.to_string(),
            backend,
            server: timing.server,
            t_request: Some(t_request),
            t_wait: timing.t_wait,
            t_connect: timing.t_connect,
            t_response: timing.t_response,
            t_total: None,
            status: response.status().as_u16(),
            bytes: 0,
            termination: if timing.termination == [0, 0] {
                *b"--"
            } else {
                timing.termination
            },
            clients: connection.shared.clients.load(Ordering::Relaxed),
            backend_conns: table.backend_conns(),
            server_conns: timing.server_conns,
            retries: timing.retries,
            server_queue: timing.server_queue,
            backend_queue: connection.shared.queue.stats().queued,
            request_line,
        };
        response
            .body_mut()
            .set_access(body::PendingLog::new(logger, entry, start));
    }
    response.body_mut().set_in_flight(in_flight);
    Ok(response)
}

/// What the access log needs to know of a request's way through
/// [`forward`] (only filled when `on`).
#[derive(Default)]
struct Timing {
    on: bool,
    server: Option<SocketAddr>,
    t_wait: Option<std::time::Duration>,
    t_connect: Option<std::time::Duration>,
    t_response: Option<std::time::Duration>,
    retries: u32,
    /// Set by `handle` from the outcome; zero until then.
    termination: [u8; 2],
    queue_timeout: bool,
    server_conns: u64,
    server_queue: u64,
}

impl Timing {
    fn now(&self) -> Option<tokio::time::Instant> {
        self.on.then(tokio::time::Instant::now)
    }
}

/// 0 for 1xx ... 4 for 5xx.
fn class_index(status: StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, 5) - 1
}

/// The request as it can be sent again: only idempotent bodyless requests.
struct Replay {
    method: Method,
    uri: Uri,
    headers: hyper::HeaderMap,
}

impl Replay {
    fn request(&self) -> Request<RequestBody> {
        let mut request = Request::new(RequestBody::empty());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Persistence facts of one request.
struct Sticky {
    /// The backend a valid cookie named.
    index: Option<usize>,
}

async fn forward(
    connection: &Arc<Connection>,
    mut request: Request<Incoming>,
    timing: &mut Timing,
    routed: &mut Option<Arc<Shared>>,
) -> Result<Response<ReplyBody>, StatusCode> {
    let front: Arc<Table> = connection.shared.table.load_full();
    // Content switching: the first route whose condition holds names the
    // pool that serves the request; otherwise this virtual server's own
    // servers do.
    let pool = route(connection, &request);
    routed.clone_from(&pool);
    let shared: &Arc<Shared> = pool.as_ref().unwrap_or(&connection.shared);
    let table: Arc<Table> = match &pool {
        Some(pool) => pool.table.load_full(),
        None => front.clone(),
    };
    let settings = &table.settings;
    let http = &settings.options.http;
    let upgrade = headers::is_upgrade(&request);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    // The frontend's `option forwardfor` holds for every backend it uses.
    let with_front_forwardfor;
    let header_options = match &front.settings.options.http.forwardfor {
        Some(forwardfor) if pool.is_some() && http.forwardfor.is_none() => {
            with_front_forwardfor = crate::config::model::HttpOptions {
                forwardfor: Some(forwardfor.clone()),
                ..http.clone()
            };
            &with_front_forwardfor
        }
        _ => http,
    };
    headers::prepare_request(&mut request, &connection.client, header_options, upgrade);
    let sticky = persistence(&table, request.headers_mut());
    let picker = &table.picker;
    let key = match &http.hash {
        Some(on) => headers::hash_value(&request, on)
            .map(|value| picker.bytes_key(value))
            .or_else(|| picker.missing_key(connection.client.ip)),
        None => Some(picker.client_key(connection.client.ip)),
    };
    let replay = (settings.retries > 0
        && !upgrade
        && headers::is_idempotent(request.method())
        && request.body().is_end_stream())
    .then(|| Replay {
        method: request.method().clone(),
        uri: request.uri().clone(),
        headers: request.headers().clone(),
    });
    let idle_limit = front.settings.options.timeout_client;
    let mut pending = Some(request.map(|body| RequestBody::client(body, idle_limit)));
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut sorry_tried = false;
    loop {
        let waiting = timing.now();
        let (index, lease) = if table.limited {
            let acquired = acquire(
                connection,
                shared,
                &table,
                (&sticky, key, &tried),
                &mut sorry_tried,
                &mut timing.queue_timeout,
            )
            .await;
            if let Some(since) = waiting {
                timing.t_wait = Some(since.elapsed());
            }
            acquired?
        } else {
            let Some((index, counters)) = pick(&table, &sticky, key, &tried, &mut sorry_tried)
            else {
                // No server left (none up, or every one tried failed first).
                return Err(StatusCode::SERVICE_UNAVAILABLE);
            };
            (index, Lease::new(counters))
        };
        let addr = lease.counters.addr;
        if timing.on {
            timing.t_wait.get_or_insert(std::time::Duration::ZERO);
            timing.server = Some(addr);
            timing.retries = tried.len() as u32;
            timing.server_conns = lease.counters.active.load(Ordering::Relaxed);
            timing.server_queue = lease.counters.queued.load(Ordering::Relaxed);
        }
        let connecting = timing.now();
        let pool_key = pool::Key {
            server: addr,
            client: settings.options.send_proxy.map(|_| connection.peer),
            // Settings that failed to load match no pooled connection.
            tls: match (&settings.options.http.server_tls, &settings.server_tls) {
                (None, _) => 0,
                (Some(_), Some(tls)) => tls.id(),
                (Some(_), None) => u64::MAX,
            },
        };
        let pooled = if upgrade { None } else { pool::take(pool_key) };
        let reused = pooled.is_some();
        let mut sender = match pooled {
            Some(mut sender) => {
                if sender.ready().await.is_err() {
                    // Closed while idle: not the server's failure; try
                    // again (another pooled connection or a new one).
                    continue;
                }
                sender
            }
            None => match open(
                addr,
                settings.connect_timeout,
                upgrade,
                proxy_header(connection, settings.options.send_proxy).as_deref(),
                settings
                    .options
                    .http
                    .server_tls
                    .is_some()
                    .then_some(settings.server_tls.as_deref()),
            )
            .await
            {
                Ok(sender) => {
                    lease.counters.total.fetch_add(1, Ordering::Relaxed);
                    if let Some(since) = connecting {
                        timing.t_connect = Some(since.elapsed());
                    }
                    sender
                }
                Err(error) => {
                    debug!(listen = %connection.shared.listen, backend = %addr, %error, "http backend connect failed");
                    failed(&lease.counters, &mut tried, settings.retries)?;
                    continue;
                }
            },
        };
        let mut outgoing = match pending.take() {
            Some(request) => request,
            None => match &replay {
                Some(replay) => replay.request(),
                None => return Err(StatusCode::BAD_GATEWAY),
            },
        };
        outgoing.body_mut().bind(&lease.counters);
        lease.counters.requests.fetch_add(1, Ordering::Relaxed);
        if timing.on {
            timing.t_connect.get_or_insert(std::time::Duration::ZERO);
        }
        let sending = timing.now();
        let sent = sender.try_send_request(outgoing);
        let result = match settings.options.timeout_server {
            Some(limit) => match tokio::time::timeout(limit, sent).await {
                Ok(result) => result,
                Err(_elapsed) => {
                    lease.counters.failures.fetch_add(1, Ordering::Relaxed);
                    debug!(listen = %connection.shared.listen, backend = %addr, "http backend timed out");
                    return Err(StatusCode::GATEWAY_TIMEOUT);
                }
            },
            None => sent.await,
        };
        let response = match result {
            Ok(response) => {
                if let Some(since) = sending {
                    timing.t_response = Some(since.elapsed());
                }
                response
            }
            Err(mut error) => {
                let cause = error.error().to_string();
                if let Some(unsent) = error.take_message() {
                    // Never written: safe to send anywhere.
                    pending = Some(unsent);
                    if reused {
                        continue;
                    }
                    failed(&lease.counters, &mut tried, settings.retries)?;
                    continue;
                }
                if is_client_timeout(error.error()) {
                    // The client stalled its body: its fault (HAProxy: 408, "cD").
                    debug!(listen = %connection.shared.listen, client = %connection.peer, backend = %addr, error = %cause, "client timeout in the request body");
                    return Err(StatusCode::REQUEST_TIMEOUT);
                }
                debug!(listen = %connection.shared.listen, backend = %addr, error = %cause, "http backend failed the request");
                if replay.is_some() {
                    // Idempotent and bodyless: nothing can have been processed
                    // twice that a retry would harm.
                    failed(&lease.counters, &mut tried, settings.retries)
                        .map_err(|_| StatusCode::BAD_GATEWAY)?;
                    continue;
                }
                lease.counters.failures.fetch_add(1, Ordering::Relaxed);
                return Err(StatusCode::BAD_GATEWAY);
            }
        };
        return Ok(respond(
            connection,
            &table,
            index,
            &sticky,
            response,
            lease,
            (pool_key, sender),
            client_upgrade,
        ));
    }
}

/// The pool of the first route whose condition holds for `request`.
fn route(connection: &Connection, request: &Request<Incoming>) -> Option<Arc<Shared>> {
    let routes = connection.shared.routes.load();
    if routes.is_empty() {
        return None;
    }
    let facts = crate::lb::route::Facts {
        method: request.method().as_str(),
        path: request.uri().path(),
        headers: request.headers(),
        source: connection.client.ip,
    };
    routes
        .iter()
        .find(|target| target.condition.holds(&facts))
        .map(|target| target.pool.clone())
}

/// Whether `error` came from the request body's `timeout client`.
fn is_client_timeout(error: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<body::ClientTimeout>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Records a failed attempt; `Err(503)` when no retry is left.
fn failed(
    counters: &Arc<Counters>,
    tried: &mut Vec<SocketAddr>,
    retries: u32,
) -> Result<(), StatusCode> {
    counters.failures.fetch_add(1, Ordering::Relaxed);
    tried.push(counters.addr);
    if tried.len() > retries as usize {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    counters.retries.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Reads the persistence cookie and strips what the server must not see.
/// Indexing cannot panic: `by_cookie` holds only indices of the table's
/// backend list (see `Table::build`).
fn persistence(table: &Table, headers: &mut hyper::HeaderMap) -> Sticky {
    let Some(persist) = &table.settings.options.http.cookie else {
        return Sticky { index: None };
    };
    let prefix = persist.mode == CookieMode::Prefix;
    let index = cookie::request_value(headers, &persist.name)
        .map(|value| cookie::server_part(value, prefix))
        .and_then(|server| table.by_cookie.get(server).copied())
        .filter(|&index| table.picker.backends()[index].weight > 0);
    match persist.mode {
        CookieMode::Insert { indirect: true, .. } => {
            cookie::strip_request(headers, &persist.name, false);
        }
        CookieMode::Prefix => cookie::strip_request(headers, &persist.name, true),
        _ => {}
    }
    Sticky { index }
}

/// The backend for the next attempt: the cookie's server first, then the
/// scheduler's pick among servers not yet tried, then the sorry server.
/// Indexing cannot panic: indices come from the picker or `by_cookie`,
/// both built from the table's backend list.
fn pick(
    table: &Table,
    sticky: &Sticky,
    key: Option<u64>,
    tried: &[SocketAddr],
    sorry_tried: &mut bool,
) -> Option<(Option<usize>, Arc<Counters>)> {
    if tried.is_empty()
        && let Some(index) = sticky.index
    {
        return Some((Some(index), table.counters[index].clone()));
    }
    let excluded: Vec<usize> = tried
        .iter()
        .filter_map(|addr| table.index.get(addr).copied())
        .collect();
    let picked = table.picker.pick_keyed(
        key,
        |index| table.counters[index].active.load(Ordering::Relaxed),
        &excluded,
    );
    match picked {
        Some(index) => Some((Some(index), table.counters[index].clone())),
        None => match &table.sorry {
            Some(sorry) if !*sorry_tried => {
                *sorry_tried = true;
                Some((None, sorry.clone()))
            }
            _ => None,
        },
    }
}

/// [`pick`] under servers' `maxconn`: may wait in a queue (see
/// [`crate::lb::queue`]); 503 when the wait times out or no server is left.
async fn acquire(
    connection: &Connection,
    shared: &Shared,
    table: &Table,
    (sticky, key, tried): (&Sticky, Option<u64>, &[SocketAddr]),
    sorry_tried: &mut bool,
    timed_out: &mut bool,
) -> Result<(Option<usize>, Lease), StatusCode> {
    let bound = if tried.is_empty() { sticky.index } else { None };
    let excluded: Vec<usize> = tried
        .iter()
        .filter_map(|addr| table.index.get(addr).copied())
        .collect();
    let acquired = crate::lb::queue::acquire(shared, table, bound, &excluded, |avoid| {
        table.picker.pick_keyed(
            key,
            |index| table.counters[index].active.load(Ordering::Relaxed),
            avoid,
        )
    })
    .await;
    match acquired {
        Acquired::Server(index, lease) => Ok((Some(index), lease)),
        Acquired::TimedOut => {
            *timed_out = true;
            debug!(listen = %connection.shared.listen, client = %connection.peer, "no server slot within the queue timeout");
            Err(StatusCode::SERVICE_UNAVAILABLE)
        }
        Acquired::NoneLeft => match &table.sorry {
            Some(sorry) if !*sorry_tried => {
                *sorry_tried = true;
                Ok((None, Lease::new(sorry.clone())))
            }
            _ => Err(StatusCode::SERVICE_UNAVAILABLE),
        },
    }
}

/// The PROXY protocol header for this client connection's server
/// connections, when the virtual server sends one.
fn proxy_header(
    connection: &Connection,
    version: Option<crate::config::model::ProxyProtocol>,
) -> Option<Vec<u8>> {
    version.map(|version| {
        crate::lb::proxy_protocol::header(version, connection.peer, connection.client.local)
    })
}

/// Opens a backend connection (the PROXY header first, if any, then the
/// TLS handshake when the servers speak TLS: `Some(None)` when their
/// settings could not be loaded); its hyper task runs on this thread.
async fn open(
    addr: SocketAddr,
    connect_timeout: std::time::Duration,
    upgrades: bool,
    proxy_header: Option<&[u8]>,
    server_tls: Option<Option<&upstream_tls::Upstream>>,
) -> Result<SendRequest<RequestBody>, OpenError> {
    let mut stream = proxy::connect(addr, connect_timeout).await?;
    if let Some(header) = proxy_header {
        tokio::io::AsyncWriteExt::write_all(&mut stream, header).await?;
    }
    let (sender, connection) = match server_tls {
        None => {
            hyper::client::conn::http1::Builder::new()
                .handshake(TokioIo::new(stream))
                .await?
        }
        Some(None) => return Err(OpenError::TlsSettings),
        Some(Some(upstream)) => {
            let stream = tokio::time::timeout(connect_timeout, upstream.connect(addr, stream))
                .await
                .map_err(|_| OpenError::TlsTimeout)?
                .map_err(OpenError::Tls)?;
            let (sender, connection) = hyper::client::conn::http1::Builder::new()
                .handshake(TokioIo::new(stream))
                .await?;
            spawn_connection(addr, connection, upgrades);
            return Ok(sender);
        }
    };
    spawn_connection(addr, connection, upgrades);
    Ok(sender)
}

/// Runs a backend connection's hyper task on this thread.
fn spawn_connection<T>(
    addr: SocketAddr,
    connection: hyper::client::conn::http1::Connection<T, RequestBody>,
    upgrades: bool,
) where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    if upgrades {
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                debug!(backend = %addr, %error, "http backend connection ended with an error");
            }
        });
    } else {
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(backend = %addr, %error, "http backend connection ended with an error");
            }
        });
    }
}

#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("tls handshake: {0}")]
    Tls(std::io::Error),
    #[error("tls handshake timed out")]
    TlsTimeout,
    #[error("the TLS settings towards the servers are not loaded (see the earlier warning)")]
    TlsSettings,
    #[error("handshake: {0}")]
    Handshake(#[from] hyper::Error),
}

/// The backend's response as the client gets it.
#[allow(clippy::too_many_arguments)]
fn respond(
    connection: &Arc<Connection>,
    table: &Table,
    index: Option<usize>,
    sticky: &Sticky,
    mut response: Response<Incoming>,
    lease: Lease,
    sender: (pool::Key, SendRequest<RequestBody>),
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ReplyBody> {
    let status = response.status();
    if let Some(counter) = lease.counters.responses.get(class_index(status)) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    let switching = status == StatusCode::SWITCHING_PROTOCOLS && client_upgrade.is_some();
    headers::prepare_response(response.headers_mut(), switching);
    if let (Some(persist), Some(index)) = (&table.settings.options.http.cookie, index) {
        let headers = response.headers_mut();
        let server_cookie = || {
            table
                .settings
                .options
                .http
                .server_cookies
                .get(&table.counters[index].addr)
        };
        match persist.mode {
            CookieMode::Insert { nocache, .. } => {
                if sticky.index != Some(index)
                    && let Some(Some(set)) = table.set_cookies.get(index)
                {
                    headers.append(SET_COOKIE, set.clone());
                    if nocache {
                        headers.append(CACHE_CONTROL, HeaderValue::from_static("private"));
                    }
                }
            }
            CookieMode::Prefix => {
                if let Some(value) = server_cookie() {
                    cookie::rewrite_response(headers, &persist.name, value, true);
                }
            }
            CookieMode::Rewrite => {
                if let Some(value) = server_cookie() {
                    cookie::rewrite_response(headers, &persist.name, value, false);
                }
            }
        }
    }
    *response.version_mut() = hyper::Version::HTTP_11;
    if switching && let Some(client_upgrade) = client_upgrade {
        let backend_upgrade = hyper::upgrade::on(&mut response);
        let counters = lease.counters.clone();
        let peer = connection.peer;
        tokio::spawn(async move {
            // The backend connection's hyper task hands the socket over
            // while these live.
            let (_lease, _sender) = (lease, sender);
            let (client, backend) = match tokio::try_join!(client_upgrade, backend_upgrade) {
                Ok(both) => both,
                Err(error) => {
                    debug!(client = %peer, %error, "upgrade failed");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut backend = TokioIo::new(backend);
            match tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                Ok((to_backend, to_client)) => {
                    counters.bytes_in.fetch_add(to_backend, Ordering::Relaxed);
                    counters.bytes_out.fetch_add(to_client, Ordering::Relaxed);
                }
                Err(error) => debug!(client = %peer, %error, "tunnel ended with an error"),
            }
        });
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, ReplyBody::page(hyper::body::Bytes::new()));
    }
    response.map(|body| ReplyBody::backend(body, lease, Some(sender)))
}
