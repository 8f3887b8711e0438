//! The answers the http proxy gives itself (400, 408, 502, 503, 504): a short HTML page a browser shows, marked not cacheable — or the response of the virtual server's error file for that status (HAProxy's `errorfile`).

use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use crate::config::model::ErrorFile;
use crate::lb::http::body::ReplyBody;

/// The response an error file holds, sent as it is written (its own
/// status, headers and body; hyper frames it, so `Content-Length` and
/// `Transfer-Encoding` are its own, and a `Connection: close` in the file
/// closes the client connection after it).
pub fn from_file(file: &ErrorFile) -> Response<ReplyBody> {
    let mut response = Response::new(ReplyBody::page(Bytes::from(file.body.clone())));
    // The config checked the status is 200..=599.
    *response.status_mut() =
        StatusCode::from_u16(file.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let headers = response.headers_mut();
    for (name, value) in &file.headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if name == hyper::header::CONTENT_LENGTH || name == hyper::header::TRANSFER_ENCODING {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(name, value);
        }
    }
    response
}

/// A complete error response for `status`.
pub fn error(status: StatusCode) -> Response<ReplyBody> {
    let text = match status {
        StatusCode::BAD_REQUEST => "Your browser sent a request the proxy could not understand.",
        StatusCode::REQUEST_TIMEOUT => "Your browser did not send the request in time.",
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

/// Writes `response` (one of the above) into `out` as hyper's server would
/// send it (no body to a HEAD request; `Connection: close` when the client
/// asked to `close`); true when it closes the connection.
pub fn serialize(
    response: &Response<ReplyBody>,
    head: bool,
    close: bool,
    out: &mut Vec<u8>,
) -> bool {
    let status = response.status();
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut closes = close;
    for (name, value) in response.headers() {
        if name == hyper::header::CONNECTION {
            closes |= value
                .as_bytes()
                .split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close && !response.headers().contains_key(hyper::header::CONNECTION) {
        out.extend_from_slice(b"connection: close\r\n");
    }
    let body = response.body().page_bytes();
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    if !head {
        out.extend_from_slice(body);
    }
    closes
}
