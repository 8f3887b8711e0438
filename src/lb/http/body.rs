//! Bodies as the http proxy passes them on: the client's request body and the backend's response body streamed frame by frame (never buffered) and counted into the backend's byte counters, small error pages, and the hand-back of a backend connection to the per-thread pool once its response was read to the end.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use std::future::Future;
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use tokio::time::Sleep;

use crate::lb::access_log::{AccessLogger, Entry};
use crate::lb::http::pool;
use crate::lb::proxy::{Counters, Lease};

/// What a request body's error is (hyper's, or [`ClientTimeout`]).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body on its way to a backend: the client's, or none (a
/// replayed bodyless request).
pub(crate) struct RequestBody {
    inner: Option<Incoming>,
    /// Where the bytes are counted; set when a backend is chosen.
    counters: Option<Arc<Counters>>,
    /// HAProxy's `timeout client`: the longest the client may keep the
    /// backend waiting for the next piece of the body.
    idle_limit: Option<Duration>,
    idle: Option<Pin<Box<Sleep>>>,
}

/// The client sent no body bytes for `timeout client` while the backend
/// was ready for them.
#[derive(Debug, thiserror::Error)]
#[error("client timeout: no request body data for {0:?}")]
pub(crate) struct ClientTimeout(Duration);

impl RequestBody {
    pub(crate) fn client(inner: Incoming, idle_limit: Option<Duration>) -> RequestBody {
        RequestBody {
            inner: Some(inner),
            counters: None,
            idle_limit,
            idle: None,
        }
    }

    pub(crate) fn empty() -> RequestBody {
        RequestBody {
            inner: None,
            counters: None,
            idle_limit: None,
            idle: None,
        }
    }

    /// Count the bytes still to come on `counters` (a retry rebinds).
    pub(crate) fn bind(&mut self, counters: &Arc<Counters>) {
        self.counters = Some(counters.clone());
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if polled.is_pending() {
            if let Some(limit) = this.idle_limit {
                let idle = this
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if idle.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(Box::new(ClientTimeout(limit)))));
                }
            }
            return Poll::Pending;
        }
        this.idle = None;
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let (Some(data), Some(counters)) = (frame.data_ref(), &this.counters)
        {
            counters
                .bytes_in
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled.map(|frame| frame.map(|result| result.map_err(BoxError::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

/// An access log line waiting for the end of its response.
pub(crate) struct PendingLog {
    logger: Arc<AccessLogger>,
    entry: Entry,
    start: tokio::time::Instant,
    bytes: u64,
    ended: bool,
}

impl PendingLog {
    pub(crate) fn new(
        logger: Arc<AccessLogger>,
        entry: Entry,
        start: tokio::time::Instant,
    ) -> Box<PendingLog> {
        Box::new(PendingLog {
            logger,
            entry,
            start,
            bytes: 0,
            ended: false,
        })
    }
}

impl Drop for PendingLog {
    /// The response is sent (or abandoned): write the line.
    fn drop(&mut self) {
        self.entry.t_total = Some(self.start.elapsed());
        self.entry.bytes = self.bytes;
        if !self.ended && self.entry.termination == *b"--" {
            // The client went away before the whole body.
            self.entry.termination = *b"CD";
        }
        self.logger.write(&self.entry.httplog());
    }
}

/// A response body on its way to the client.
pub(crate) struct ReplyBody {
    /// The access log line, written when this body is dropped.
    access: Option<Box<PendingLog>>,
    kind: Kind,
    /// Dropped with the body: the client connection's count of requests in
    /// flight (its keep-alive clock starts when this reaches zero).
    _in_flight: Option<super::InFlight>,
}

enum Kind {
    Backend(BackendReply),
    Page(Option<Bytes>),
}

/// A backend's response being relayed; the connection goes back to the
/// pool when the body was read to its end.
struct BackendReply {
    inner: Incoming,
    lease: Lease,
    sender: Option<(pool::Key, SendRequest<RequestBody>)>,
    done: bool,
}

impl ReplyBody {
    /// The backend's body; `sender` (its connection) is pooled again once
    /// the body is complete, `lease` counts the request as active until then.
    pub(crate) fn backend(
        inner: Incoming,
        lease: Lease,
        sender: Option<(pool::Key, SendRequest<RequestBody>)>,
    ) -> ReplyBody {
        ReplyBody {
            kind: Kind::Backend(BackendReply {
                inner,
                lease,
                sender,
                done: false,
            }),
            _in_flight: None,
            access: None,
        }
    }

    /// A fixed body (error pages).
    pub(crate) fn page(bytes: Bytes) -> ReplyBody {
        ReplyBody {
            kind: Kind::Page((!bytes.is_empty()).then_some(bytes)),
            _in_flight: None,
            access: None,
        }
    }

    /// A fixed body's bytes (empty for a backend's).
    pub(crate) fn page_bytes(&self) -> &[u8] {
        match &self.kind {
            Kind::Page(Some(bytes)) => bytes,
            _ => &[],
        }
    }

    pub(crate) fn set_in_flight(&mut self, in_flight: super::InFlight) {
        self._in_flight = Some(in_flight);
    }

    pub(crate) fn set_access(&mut self, log: Box<PendingLog>) {
        let mut log = log;
        log.ended = self.is_end_stream();
        self.access = Some(log);
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = this.poll_kind(cx);
        let ended = this.kind_ended();
        if let Some(log) = &mut this.access {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        log.bytes += data.len() as u64;
                    }
                }
                Poll::Ready(None) => log.ended = true,
                _ => {}
            }
            if ended {
                log.ended = true;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.kind_ended()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Page(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Backend(reply) => reply.inner.size_hint(),
        }
    }
}

impl ReplyBody {
    fn kind_ended(&self) -> bool {
        match &self.kind {
            Kind::Page(bytes) => bytes.is_none(),
            Kind::Backend(reply) => reply.inner.is_end_stream(),
        }
    }

    fn poll_kind(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.kind {
            Kind::Page(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Backend(reply) => {
                let polled = Pin::new(&mut reply.inner).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(data) = frame.data_ref() {
                            reply
                                .lease
                                .counters
                                .bytes_out
                                .fetch_add(data.len() as u64, Ordering::Relaxed);
                        }
                        if reply.inner.is_end_stream() {
                            reply.done = true;
                        }
                    }
                    Poll::Ready(None) => reply.done = true,
                    _ => {}
                }
                polled
            }
        }
    }
}

impl Drop for BackendReply {
    fn drop(&mut self) {
        if (self.done || self.inner.is_end_stream())
            && let Some((key, sender)) = self.sender.take()
        {
            pool::put(key, sender);
        }
    }
}
