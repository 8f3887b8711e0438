//! The answers the http proxy gives itself (400, 502, 503, 504): a short HTML page a browser shows, marked not cacheable.

use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use crate::lb::http::body::ReplyBody;

/// A complete error response for `status`.
pub fn error(status: StatusCode) -> Response<ReplyBody> {
    let text = match status {
        StatusCode::BAD_REQUEST => "Your browser sent a request the proxy could not understand.",
        StatusCode::BAD_GATEWAY => "The server gave an invalid answer or closed the connection.",
        StatusCode::SERVICE_UNAVAILABLE => "No server is available to handle this request.",
        StatusCode::GATEWAY_TIMEOUT => "The server did not answer in time.",
        _ => "The request could not be served.",
    };
    let page = format!(
        "<html><body><h1>{} {}</h1>\n{text}\n</body></html>\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut response = Response::new(ReplyBody::page(Bytes::from(page)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}
