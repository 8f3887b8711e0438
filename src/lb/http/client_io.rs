//! The client connection's byte stream in http mode with HAProxy's `timeout client` on the sending side: a client that stops reading the response for that long gets its connection closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `inner` whose writes fail with `TimedOut` once one has waited `limit`
/// for the client to make room (no limit: `inner` as it is). Reads pass
/// through: the request head and the keep-alive wait have their own
/// timeouts, and the request body's is in `body.rs`.
pub(crate) struct ClientIo<I> {
    inner: I,
    limit: Option<Duration>,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<I> ClientIo<I> {
    pub(crate) fn new(inner: I, limit: Option<Duration>) -> ClientIo<I> {
        ClientIo {
            inner,
            limit,
            stalled: None,
        }
    }

    /// How long a write may wait for the client (`timeout client`).
    pub(crate) fn limit(&self) -> Option<Duration> {
        self.limit
    }

    /// The stream itself (for readiness and non-blocking reads).
    pub(crate) fn get_ref(&self) -> &I {
        &self.inner
    }

    /// After the inner write returned `polled`: start or check the stall
    /// timer while pending, forget it on progress.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let Some(limit) = self.limit else {
            return Poll::Pending;
        };
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if stalled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("client timeout: the client read nothing for {limit:?}"),
            )));
        }
        Poll::Pending
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ClientIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ClientIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}
