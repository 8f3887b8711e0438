//! The http proxy's forwarding fast path: bodyless keep-alive requests (plain or TLS clients) forwarded by one task per client connection over pooled backend sockets it owns, heads parsed with `httparse` and rewritten between buffers; at the first request it does not take, the connection (with the bytes already read) goes to hyper's path for good; never decides health.
//!
//! Why it exists: with hyper on both sides, each small request crossed a
//! request channel, a response oneshot and a body channel between the
//! client's task and the backend connection's task, and built two header
//! maps. That cost keepmon more CPU per request than HAProxy spends. Here a
//! request is one read from the client, one write and one read on a pooled
//! backend socket, and one write to the client, with no allocation but the
//! pooled buffers. A long body of known length goes socket to socket with
//! splice(2) on a plain connection (`splice::exact`).
//!
//! What it takes is decided per request by [`wire::classify`] (a bodyless
//! GET, HEAD, OPTIONS, TRACE, PUT or DELETE over HTTP/1.1 in origin form
//! with a `Host`, no `Expect` or upgrade) and per
//! table by [`takes_table`] (no routes, access log, queue, PROXY protocol
//! or TLS towards the servers, `hash` balancing, or cookie modes but
//! `insert`). Everything else, malformed requests included, is hyper's, so
//! hyper still answers every request it would refuse.
//!
//! The rules it keeps are those of `mod.rs`: the same pick (cookie, then
//! scheduler, then sorry server), the same retries (any failure before a
//! response head; a stale pooled socket is retried on a new one without
//! counting), the same error pages, `timeout server` on the response head,
//! `timeout client` on writes to the client (`ClientIo`), `http_request`
//! on a request head and `http_keep_alive` between requests.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use hyper::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::debug;

use super::client_io::ClientIo;
use super::wire::{self, Framing, ResponseHead, Verdict};
use super::{Alarm, Connection, Sticky, class_index, failed, intercept, pick};
use crate::config::model::{CookieMode, ProxyOptions};
use crate::lb::proxy::{self, Lease, Table};

/// Bytes read from a client per request head; a longer head goes to hyper
/// (whose limit is far larger).
const CLIENT_BUFFER: usize = 16 * 1024;

/// Bytes read from a server at a time.
const SERVER_BUFFER: usize = 64 * 1024;

/// The longest response head taken, as hyper's client allows.
const MAX_RESPONSE_HEAD: usize = 8192 + 4096 * 100;

/// A client stream the fast path serves: plain TCP or TLS, with
/// `timeout client` on writes.
pub(super) trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {
    /// The plain socket underneath (None under TLS): a request is awaited
    /// on it without holding a buffer, and long bodies are spliced into it.
    fn socket(&self) -> Option<&TcpStream>;
    /// HAProxy's `timeout client` on writes.
    fn stall_limit(&self) -> Option<std::time::Duration>;
}

impl ClientStream for ClientIo<TcpStream> {
    fn socket(&self) -> Option<&TcpStream> {
        Some(self.get_ref())
    }

    fn stall_limit(&self) -> Option<std::time::Duration> {
        self.limit()
    }
}

impl ClientStream for ClientIo<tokio_rustls::server::TlsStream<TcpStream>> {
    fn socket(&self) -> Option<&TcpStream> {
        None
    }

    fn stall_limit(&self) -> Option<std::time::Duration> {
        self.limit()
    }
}

/// How the fast path left a client connection.
pub(super) enum Outcome<C> {
    /// Closed (by either side, an error or a timeout).
    Closed,
    /// hyper's path serves the rest: `unread` is what was read of it.
    HandOff {
        io: C,
        unread: Vec<u8>,
        /// No request was served yet (the first head's deadline holds).
        first: bool,
    },
}

/// Whether the fast path serves requests under this table at all.
pub(super) fn takes_table(connection: &Connection, table: &Table) -> bool {
    let options = &table.settings.options;
    let http = &options.http;
    connection.shared.routes.load().is_empty()
        && table.settings.access_log.is_none()
        && !table.limited
        && options.send_proxy.is_none()
        && http.server_tls.is_none()
        && http.hash.is_none()
        && http
            .cookie
            .as_ref()
            .is_none_or(|cookie| matches!(cookie.mode, CookieMode::Insert { .. }))
}

/// Serves the requests of one client connection until it closes or
/// sends one the fast path does not take.
pub(super) async fn serve<C: ClientStream>(
    connection: &Arc<Connection>,
    mut client: C,
    options: &ProxyOptions,
    first_head_by: Instant,
) -> Outcome<C> {
    let keep_alive = options.http.timeout_http_keep_alive;
    let head_limit = options.http.timeout_http_request;
    let listen = connection.shared.listen;
    let ip_text = connection.client.ip.to_string();
    let mut inbuf: Vec<u8> = Vec::new();
    let mut scratch: Vec<u8> = Vec::new();
    let mut served = 0u64;
    let mut head_by = first_head_by;
    let mut idle_since = Instant::now();
    // One timer per side for the connection's life, moved only when it
    // fires early (see `within`), not armed anew for every request.
    let client_alarm = std::pin::pin!(tokio::time::sleep_until(first_head_by));
    let mut client_alarm = Alarm::new(client_alarm);
    let server_alarm = std::pin::pin!(tokio::time::sleep_until(first_head_by));
    let mut server_alarm = Alarm::new(server_alarm);
    loop {
        let hand_off = |io, unread: Vec<u8>| Outcome::HandOff {
            io,
            unread,
            first: served == 0,
        };
        // A whole request head, or the reason to stop.
        let (forwarded, table) = loop {
            if !inbuf.is_empty() {
                // The table as it is when the request came.
                let table = connection.shared.table.load_full();
                if !takes_table(connection, &table) {
                    buffers::give(std::mem::take(&mut scratch));
                    return hand_off(client, release(inbuf));
                }
                if scratch.capacity() == 0 {
                    scratch = buffers::take_small();
                }
                let rewrite = rewrite(connection, &table, &ip_text);
                let wants = |path: &str| intercept::wants(listen, path);
                match wire::classify(&inbuf, &rewrite, wants, &mut scratch) {
                    Verdict::Forward(forwarded) => break (forwarded, table),
                    Verdict::HandOff => {
                        buffers::give(std::mem::take(&mut scratch));
                        return hand_off(client, release(inbuf));
                    }
                    Verdict::Partial if inbuf.len() >= CLIENT_BUFFER => {
                        buffers::give(std::mem::take(&mut scratch));
                        return hand_off(client, release(inbuf));
                    }
                    Verdict::Partial => {}
                }
            }
            let idle = inbuf.is_empty();
            if idle {
                // Waiting for a request holds no buffer.
                buffers::give(std::mem::take(&mut inbuf));
                buffers::give(std::mem::take(&mut scratch));
            }
            let deadline = if idle && served > 0 {
                idle_since + keep_alive
            } else {
                head_by
            };
            let read = within(&mut client_alarm, deadline, async {
                if idle {
                    if let Some(socket) = client.socket() {
                        socket.readable().await?;
                    }
                    inbuf = buffers::take_small();
                }
                // Through `poll_read`: a short read tells tokio the socket
                // is drained, so the next wait costs no system call.
                client.read_buf(&mut inbuf).await
            })
            .await;
            match read {
                Some(Ok(0)) => return Closed.into(),
                Some(Ok(_)) => {
                    if idle && served > 0 {
                        head_by = Instant::now() + head_limit;
                    }
                }
                Some(Err(error)) => {
                    debug!(%listen, client = %connection.peer, %error, "http client connection failed");
                    return Closed.into();
                }
                None => {
                    if served == 0 || !idle {
                        debug!(%listen, client = %connection.peer, "no whole request head within http_request; closing");
                    }
                    return Closed.into();
                }
            }
        };
        served += 1;
        connection
            .shared
            .front
            .requests
            .fetch_add(1, Ordering::Relaxed);
        // Boxed: between requests the connection's task then holds only
        // this loop's few hundred bytes (a future is as large as its
        // largest state).
        let exchanged = Box::pin(exchange(
            connection,
            &table,
            &forwarded,
            (&mut client, &mut scratch),
            &mut server_alarm,
        ))
        .await;
        inbuf.drain(..forwarded.len);
        if exchanged.is_err() {
            return Outcome::Closed;
        }
        if forwarded.close {
            // As hyper does: the answer sent, the connection ends.
            let _ = client.shutdown().await;
            return Outcome::Closed;
        }
        idle_since = Instant::now();
        head_by = idle_since + head_limit;
    }
}

/// What the request rewriting takes from the table and the connection.
fn rewrite<'a>(connection: &Connection, table: &'a Table, ip_text: &'a str) -> wire::Rewrite<'a> {
    let http = &table.settings.options.http;
    wire::Rewrite {
        forwardfor: http
            .forwardfor
            .as_ref()
            .filter(|f| {
                f.except
                    .is_none_or(|net| !net.contains(connection.client.ip))
            })
            .map(|f| (f.header.as_str(), ip_text)),
        forwarded_proto: http.forwarded_proto.then(|| {
            let proto = if connection.client.tls {
                "https"
            } else {
                "http"
            };
            (proto, connection.client.local.port())
        }),
        cookie: http.cookie.as_ref().map(|cookie| {
            let indirect = matches!(cookie.mode, CookieMode::Insert { indirect: true, .. });
            (cookie.name.as_str(), indirect)
        }),
    }
}

/// Runs `work` until `deadline` (None when it passed first) on a timer the
/// connection keeps: a timer set for a later time is moved earlier, one set
/// for an earlier time is moved on only when it fires. Requests follow one
/// another far faster than their deadlines, so the timer wheel is touched
/// about once per timeout period instead of twice per request.
async fn within<F: std::future::Future>(
    alarm: &mut Alarm<'_>,
    deadline: Instant,
    work: F,
) -> Option<F::Output> {
    if alarm.deadline() > deadline {
        alarm.reset(deadline);
    }
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        while alarm.rang(cx) {
            if Instant::now() >= deadline {
                return Poll::Ready(None);
            }
            alarm.reset(deadline);
        }
        Poll::Pending
    })
    .await
}

/// The connection is over.
struct Closed;

impl<C> From<Closed> for Outcome<C> {
    fn from(_: Closed) -> Outcome<C> {
        Outcome::Closed
    }
}

/// The unread bytes, as hyper's path gets them (the pooled buffer goes back).
fn release(inbuf: Vec<u8>) -> Vec<u8> {
    let unread = inbuf.clone();
    buffers::give(inbuf);
    unread
}

/// Forwards one request whose backend head is in `scratch` and relays the
/// response; `Err` when the client connection must close.
async fn exchange<C: ClientStream>(
    connection: &Arc<Connection>,
    table: &Table,
    forwarded: &wire::Forwarded,
    (client, scratch): (&mut C, &mut Vec<u8>),
    server_alarm: &mut Alarm<'_>,
) -> Result<(), Closed> {
    let settings = &table.settings;
    let sticky = Sticky {
        index: forwarded
            .cookie_server
            .as_deref()
            .and_then(|server| table.by_cookie.get(server).copied())
            .filter(|&index| table.picker.backends()[index].weight > 0),
    };
    let key = Some(table.picker.client_key(connection.client.ip));
    let request_head = std::mem::replace(scratch, buffers::take_small());
    let mut server = buffers::take_big();
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut sorry_tried = false;
    let nocache = matches!(
        settings.options.http.cookie.as_ref().map(|c| c.mode),
        Some(CookieMode::Insert { nocache: true, .. })
    );
    let outcome = loop {
        let Some((index, counters)) = pick(table, &sticky, key, &tried, &mut sorry_tried) else {
            break Err(StatusCode::SERVICE_UNAVAILABLE);
        };
        let lease = Lease::new(counters);
        let addr = lease.counters.addr;
        let (mut backend, reused) = match idle::take(addr) {
            Some(backend) => (backend, true),
            None => match proxy::connect(addr, settings.connect_timeout).await {
                Ok(backend) => {
                    lease.counters.total.fetch_add(1, Ordering::Relaxed);
                    (backend, false)
                }
                Err(error) => {
                    debug!(listen = %connection.shared.listen, backend = %addr, %error, "http backend connect failed");
                    match failed(&lease.counters, &mut tried, settings.retries) {
                        Ok(()) => continue,
                        Err(status) => break Err(status),
                    }
                }
            },
        };
        lease.counters.requests.fetch_add(1, Ordering::Relaxed);
        let set_cookie = match (settings.options.http.cookie.as_ref(), index) {
            (Some(_), Some(index)) if sticky.index != Some(index) => table
                .set_cookies
                .get(index)
                .and_then(Option::as_ref)
                .map(|value| (value.as_bytes(), nocache)),
            _ => None,
        };
        let additions = wire::Additions {
            set_cookie,
            close: forwarded.close,
        };
        server.clear();
        let head = async {
            backend
                .write_all(&request_head)
                .await
                .map_err(HeadError::Io)?;
            read_head(
                &mut backend,
                &mut server,
                forwarded.head,
                &additions,
                scratch,
            )
            .await
        };
        let head = match settings.options.timeout_server {
            Some(limit) => within(server_alarm, Instant::now() + limit, head)
                .await
                .unwrap_or(Err(HeadError::Timeout)),
            None => head.await,
        };
        match head {
            Ok(response) => break Ok((lease, backend, response)),
            Err(HeadError::Timeout) => {
                lease.counters.failures.fetch_add(1, Ordering::Relaxed);
                debug!(listen = %connection.shared.listen, backend = %addr, "http backend timed out");
                break Err(StatusCode::GATEWAY_TIMEOUT);
            }
            Err(_) if reused && server.is_empty() => {
                // A pooled socket the server had closed: not its failure.
                continue;
            }
            Err(error) => {
                debug!(listen = %connection.shared.listen, backend = %addr, %error, "http backend failed the request");
                match failed(&lease.counters, &mut tried, settings.retries) {
                    Ok(()) => continue,
                    Err(_) => break Err(StatusCode::BAD_GATEWAY),
                }
            }
        }
    };
    buffers::give(request_head);
    let result = match outcome {
        Ok((lease, backend, response)) => {
            relay(
                connection,
                client,
                lease,
                backend,
                response,
                &mut server,
                scratch,
            )
            .await
        }
        Err(status) => {
            let (head, close) = (forwarded.head, forwarded.close);
            answer_error(connection, table, status, (head, close), client, scratch).await
        }
    };
    buffers::give_big(server);
    result
}

/// Why no response head came.
#[derive(Debug, thiserror::Error)]
enum HeadError {
    #[error("{0}")]
    Io(io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("timeout server")]
    Timeout,
}

/// Reads the response head into `server` (interim 1xx responses dropped)
/// and writes the client's head into `scratch`.
async fn read_head(
    backend: &mut TcpStream,
    server: &mut Vec<u8>,
    head: bool,
    additions: &wire::Additions<'_>,
    scratch: &mut Vec<u8>,
) -> Result<wire::Response, HeadError> {
    loop {
        if server.len() == server.capacity() {
            if server.len() >= MAX_RESPONSE_HEAD {
                return Err(HeadError::Invalid("response head too large"));
            }
            server.reserve(server.capacity());
        }
        if backend.read_buf(server).await.map_err(HeadError::Io)? == 0 {
            return Err(HeadError::Closed);
        }
        loop {
            match wire::response_head(server, head, additions, scratch) {
                ResponseHead::Partial => break,
                ResponseHead::Invalid(why) => return Err(HeadError::Invalid(why)),
                ResponseHead::Interim { len } => {
                    server.drain(..len);
                    if server.is_empty() {
                        break;
                    }
                }
                ResponseHead::Final(response) => return Ok(response),
            }
        }
    }
}

/// Sends the response (its client head in `scratch`, the server's bytes
/// so far in `server`) and its body; the backend socket goes back to the
/// pool when the response ended cleanly.
async fn relay<C: ClientStream>(
    connection: &Arc<Connection>,
    client: &mut C,
    lease: Lease,
    mut backend: TcpStream,
    response: wire::Response,
    server: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(), Closed> {
    let class = class_index(StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK));
    if let Some(counter) = lease.counters.responses.get(class) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(counter) = connection.shared.front.responses.get(class) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    let peer = connection.peer;
    let after_head = &server[response.len..];
    let (clean, body_bytes) = match response.framing {
        Framing::Empty => {
            write_all(client, scratch, &[]).await?;
            (after_head.is_empty(), 0)
        }
        Framing::Length(length) => {
            let first = after_head
                .len()
                .min(usize::try_from(length).unwrap_or(usize::MAX));
            write_all(client, scratch, &after_head[..first]).await?;
            let mut extra = after_head.len() > first;
            let mut left = length - first as u64;
            if left >= crate::lb::splice::SPLICE_AFTER
                && let Some(to) = client.socket()
                && let Some(pipe) = crate::lb::splice::Pipe::take(proxy::global_limit())
            {
                // A long body: socket to socket through a pipe, as tcp
                // mode moves long streams (and as HAProxy does).
                let stall = client.stall_limit();
                let spliced = crate::lb::splice::exact(&backend, to, &pipe, left, stall);
                if let Err(error) = spliced.await {
                    debug!(client = %peer, backend = %lease.counters.addr, %error, "response body not relayed whole");
                    return Err(Closed);
                }
                left = 0;
            }
            while left > 0 {
                server.clear();
                let read = backend.read_buf(server).await;
                let n = match read {
                    Ok(0) | Err(_) => {
                        debug!(client = %peer, backend = %lease.counters.addr, "the server closed the connection inside a response body");
                        return Err(Closed);
                    }
                    Ok(n) => n,
                };
                let take = n.min(usize::try_from(left).unwrap_or(usize::MAX));
                extra = n > take;
                write_all(client, &mut Vec::new(), &server[..take]).await?;
                left -= take as u64;
            }
            (!extra, length)
        }
        Framing::Chunked => {
            let mut chunks = wire::Chunks::default();
            let mut total = 0u64;
            let body = after_head;
            let taken = chunks
                .scan(body)
                .map_err(|error| body_failed(peer, &error))?;
            write_all(client, scratch, &body[..taken]).await?;
            total += taken as u64;
            let mut extra = taken < body.len();
            while !chunks.done() {
                server.clear();
                let n = match backend.read_buf(server).await {
                    Ok(0) | Err(_) => {
                        debug!(client = %peer, backend = %lease.counters.addr, "the server closed the connection inside a chunked body");
                        return Err(Closed);
                    }
                    Ok(n) => n,
                };
                let taken = chunks
                    .scan(&server[..n])
                    .map_err(|error| body_failed(peer, &error))?;
                extra = taken < n;
                write_all(client, &mut Vec::new(), &server[..taken]).await?;
                total += taken as u64;
            }
            (!extra, total)
        }
        Framing::UntilClose => {
            let mut total = after_head.len() as u64;
            if !after_head.is_empty() {
                wire::chunk_size_line(after_head.len(), scratch);
            }
            write_all(client, scratch, after_head).await?;
            let mut pending_crlf = !after_head.is_empty();
            loop {
                server.clear();
                let n = match backend.read_buf(server).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(error) => {
                        debug!(client = %peer, backend = %lease.counters.addr, %error, "the server failed inside a body read until close");
                        return Err(Closed);
                    }
                };
                scratch.clear();
                if pending_crlf {
                    scratch.extend_from_slice(b"\r\n");
                }
                wire::chunk_size_line(n, scratch);
                write_all(client, scratch, &server[..n]).await?;
                pending_crlf = true;
                total += n as u64;
            }
            scratch.clear();
            if pending_crlf {
                scratch.extend_from_slice(b"\r\n");
            }
            scratch.extend_from_slice(b"0\r\n\r\n");
            write_all(client, scratch, &[]).await?;
            (false, total)
        }
    };
    lease
        .counters
        .bytes_out
        .fetch_add(body_bytes, Ordering::Relaxed);
    if clean && response.reusable {
        idle::put(lease.counters.addr, backend);
    }
    Ok(())
}

fn body_failed(peer: SocketAddr, error: &wire::ChunkError) -> Closed {
    debug!(client = %peer, %error, "closing the client connection");
    Closed
}

/// Writes `head` then `body` to the client: one system call when they fit
/// (vectored on a socket; joined under TLS, which writes a record per call).
async fn write_all<C: ClientStream>(
    client: &mut C,
    head: &mut Vec<u8>,
    body: &[u8],
) -> Result<(), Closed> {
    let join = !client.is_write_vectored() && !body.is_empty() && body.len() <= CLIENT_BUFFER;
    if join {
        head.extend_from_slice(body);
    }
    let (mut head, mut body) = (&head[..], if join { &[][..] } else { body });
    while !head.is_empty() || !body.is_empty() {
        let slices = [io::IoSlice::new(head), io::IoSlice::new(body)];
        let written = match client.write_vectored(&slices).await {
            Ok(0) | Err(_) => return Err(Closed),
            Ok(written) => written,
        };
        let from_head = written.min(head.len());
        head = &head[from_head..];
        body = &body[written - from_head..];
    }
    client.flush().await.map_err(|_| Closed)
}

/// The proxy's own answer (an error file's or keepmon's page), framed as
/// hyper frames it on the other path.
async fn answer_error<C: ClientStream>(
    connection: &Arc<Connection>,
    table: &Table,
    status: StatusCode,
    (head, close): (bool, bool),
    client: &mut C,
    scratch: &mut Vec<u8>,
) -> Result<(), Closed> {
    let front = &connection.shared.front;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        front.no_server.fetch_add(1, Ordering::Relaxed);
    }
    let response = match table.settings.options.error_files.get(&status.as_u16()) {
        Some(file) => super::reply::from_file(file),
        None => super::reply::error(status),
    };
    if let Some(counter) = front.responses.get(class_index(response.status())) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    let closes = super::reply::serialize(&response, head, close, scratch);
    write_all(client, scratch, &[]).await?;
    if closes { Err(Closed) } else { Ok(()) }
}

/// Idle backend sockets of the fast path, per proxy thread and server
/// (the rules of `pool.rs`: most recent first, at most
/// [`super::pool::MAX_IDLE`] idle, at most
/// [`super::pool::MAX_IDLE_PER_SERVER`] per server).
mod idle {
    use super::*;
    use crate::lb::http::pool::{MAX_IDLE, MAX_IDLE_PER_SERVER};

    thread_local! {
        static IDLE: RefCell<HashMap<SocketAddr, Vec<(TcpStream, Instant)>>> =
            RefCell::new(HashMap::new());
    }

    /// An idle socket to `addr` that has not been closed or sent anything
    /// since (tokio's readiness says so without a system call).
    pub(super) fn take(addr: SocketAddr) -> Option<TcpStream> {
        IDLE.try_with(|idle| {
            let mut idle = idle.borrow_mut();
            let list = idle.get_mut(&addr)?;
            let now = Instant::now();
            while let Some((stream, since)) = list.pop() {
                let quiet = matches!(
                    stream.try_read(&mut [0u8; 1]),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock
                );
                if quiet && now.duration_since(since) < MAX_IDLE {
                    return Some(stream);
                }
            }
            None
        })
        .ok()
        .flatten()
    }

    pub(super) fn put(addr: SocketAddr, stream: TcpStream) {
        let _ = IDLE.try_with(|idle| {
            let mut idle = idle.borrow_mut();
            let list = idle.entry(addr).or_default();
            if list.len() >= MAX_IDLE_PER_SERVER {
                let now = Instant::now();
                list.retain(|(_, since)| now.duration_since(*since) < MAX_IDLE);
                if list.len() >= MAX_IDLE_PER_SERVER {
                    list.remove(0);
                }
            }
            list.push((stream, Instant::now()));
        });
    }
}

/// Buffers reused across requests and connections of one proxy thread, so
/// that an idle connection holds none and a request allocates none.
mod buffers {
    use super::*;

    /// Buffers kept per thread and size.
    const KEPT: usize = 64;

    thread_local! {
        static SMALL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
        static BIG: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    type Kept = std::thread::LocalKey<RefCell<Vec<Vec<u8>>>>;

    pub(super) fn take_small() -> Vec<u8> {
        take(&SMALL, CLIENT_BUFFER)
    }

    pub(super) fn take_big() -> Vec<u8> {
        take(&BIG, SERVER_BUFFER)
    }

    /// Keeps a small buffer (one that grew or was never taken is dropped).
    pub(super) fn give(buffer: Vec<u8>) {
        keep(&SMALL, CLIENT_BUFFER, buffer);
    }

    pub(super) fn give_big(buffer: Vec<u8>) {
        keep(&BIG, SERVER_BUFFER, buffer);
    }

    fn take(kept: &'static Kept, size: usize) -> Vec<u8> {
        kept.try_with(|kept| kept.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| Vec::with_capacity(size))
    }

    /// Keeps `buffer` when it still has its pool's `size` and there is room.
    fn keep(kept: &'static Kept, size: usize, mut buffer: Vec<u8>) {
        if buffer.capacity() != size {
            return;
        }
        buffer.clear();
        let _ = kept.try_with(|kept| {
            let mut kept = kept.borrow_mut();
            if kept.len() < KEPT {
                kept.push(buffer);
            }
        });
    }
}

/// A client stream whose first bytes were already read: they are read
/// again first (hyper's path gets the connection as it was).
pub(super) struct Prefixed<I> {
    unread: Vec<u8>,
    at: usize,
    inner: I,
}

impl<I> Prefixed<I> {
    pub(super) fn new(unread: Vec<u8>, inner: I) -> Prefixed<I> {
        Prefixed {
            unread,
            at: 0,
            inner,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.unread.len() {
            let take = (this.unread.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.unread[this.at..this.at + take]);
            this.at += take;
            if this.at == this.unread.len() {
                this.unread = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
