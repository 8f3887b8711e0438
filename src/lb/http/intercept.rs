//! Requests another part of keepmon answers itself on an http virtual server's listener instead of a server (HAProxy's `stats enable` inside a frontend): the [`Intercept`] trait and the registry by listen address; never decides what is intercepted.
//!
//! The registry is process-wide (set by the web part on every apply,
//! read per request with one lock-free load), so the proxy's settings and
//! data planes stay unaware of it. An intercepted request is read whole
//! (at most [`MAX_BODY`]) and answered whole.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};

use crate::lb::http::body::ReplyBody;
use crate::lb::http::reply;

/// Largest intercepted request body read.
pub const MAX_BODY: usize = 64 * 1024;

/// A whole answer in the making.
pub type Answer = Pin<Box<dyn Future<Output = Response<Bytes>> + Send>>;

/// Answers some requests of a virtual server itself.
pub trait Intercept: Send + Sync {
    /// Whether this request is its own (from the request line alone).
    fn wants(&self, path_and_query: &str) -> bool;
    /// The answer to a whole request from `peer`.
    fn answer(&self, request: Request<Bytes>, peer: SocketAddr) -> Answer;
}

type Registry = BTreeMap<SocketAddr, Arc<dyn Intercept>>;

static INTERCEPTS: LazyLock<ArcSwap<Registry>> = LazyLock::new(ArcSwap::default);

/// Replace every intercept: each virtual server's listen address and
/// what answers there.
pub fn set_intercepts(intercepts: Registry) {
    INTERCEPTS.store(Arc::new(intercepts));
}

/// The intercept that wants this request on `listen`, if any.
pub(crate) fn find(listen: SocketAddr, request: &Request<Incoming>) -> Option<Arc<dyn Intercept>> {
    let registry = INTERCEPTS.load();
    let intercept = registry.get(&listen)?;
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    intercept.wants(target).then(|| intercept.clone())
}

/// Whether an intercept on `listen` wants the request for `path_and_query`.
pub(crate) fn wants(listen: SocketAddr, path_and_query: &str) -> bool {
    let registry = INTERCEPTS.load();
    registry
        .get(&listen)
        .is_some_and(|intercept| intercept.wants(path_and_query))
}

/// Read the request whole and let `intercept` answer it.
pub(crate) async fn answer(
    intercept: Arc<dyn Intercept>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<ReplyBody> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        return reply::error(StatusCode::BAD_REQUEST);
    };
    let request = Request::from_parts(parts, body.to_bytes());
    let (parts, bytes) = intercept.answer(request, peer).await.into_parts();
    Response::from_parts(parts, ReplyBody::page(bytes))
}
