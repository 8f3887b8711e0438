//! Header rewriting between client and backend (pure): hop-by-hop headers dropped both ways, the request made HTTP/1.1 in origin form with a Host, `X-Forwarded-For` appended, `X-Forwarded-Proto`/`-Port` set, and the hash key of `hash` balancing; framing itself is hyper's.

use std::net::IpAddr;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri, Version};

use crate::config::model::{HashOn, HttpOptions};

/// What a request needs from its client connection.
pub struct ClientSide {
    pub ip: IpAddr,
    /// The address and port the client connected to (Host for a request
    /// without one).
    pub local: std::net::SocketAddr,
    pub tls: bool,
}

/// Whether the request asks to switch protocols (`Connection: upgrade`
/// with an `Upgrade` header, HTTP/1.1): a WebSocket, passed on as a tunnel.
pub fn is_upgrade<B>(request: &Request<B>) -> bool {
    request.version() == Version::HTTP_11
        && request.headers().contains_key(header::UPGRADE)
        && connection_has(request.headers(), "upgrade")
}

/// Methods a retry may send twice (RFC 9110 idempotent methods).
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Makes a client's request fit to send to a backend.
pub fn prepare_request<B>(
    request: &mut Request<B>,
    client: &ClientSide,
    options: &HttpOptions,
    upgrade: bool,
) {
    drop_hop_by_hop(request.headers_mut(), upgrade);
    request.headers_mut().remove(header::EXPECT);
    // An absolute-form target (a client talking to a proxy): origin form
    // towards the server, its authority as Host when there is none.
    if request.uri().scheme().is_some() {
        let authority = request.uri().authority().cloned();
        if !request.headers().contains_key(header::HOST)
            && let Some(authority) = authority
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            request.headers_mut().insert(header::HOST, host);
        }
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        if let Ok(uri) = path.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    if !request.headers().contains_key(header::HOST)
        && let Ok(host) = HeaderValue::from_str(&client.local.to_string())
    {
        // HTTP/1.0 without Host: HTTP/1.1 towards the server needs one.
        request.headers_mut().insert(header::HOST, host);
    }
    *request.version_mut() = Version::HTTP_11;
    let headers = request.headers_mut();
    if let Some(forwardfor) = &options.forwardfor
        && forwardfor
            .except
            .is_none_or(|network| !network.contains(client.ip))
        && let Ok(name) = HeaderName::from_bytes(forwardfor.header.as_bytes())
    {
        headers.append(name, ip_value(client.ip));
    }
    if options.forwarded_proto {
        let proto = if client.tls { "https" } else { "http" };
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(proto),
        );
        headers.insert(
            HeaderName::from_static("x-forwarded-port"),
            HeaderValue::from(client.local.port()),
        );
    }
}

/// Makes a backend's response head fit to send to the client.
pub fn prepare_response(headers: &mut HeaderMap, switching: bool) {
    drop_hop_by_hop(headers, switching);
}

/// The part of the request `hash` balancing hashes, as HAProxy 2.6 takes
/// it: the URI up to `?` (the path), the value of the first `NAME=` in the
/// query (up to `&`), or the header's first comma-separated value without
/// blanks. None when the request lacks it or the header is empty (HAProxy
/// then goes round robin; keepmon's sh and mh hash the client address).
pub fn hash_value<'r, B>(request: &'r Request<B>, on: &HashOn) -> Option<&'r [u8]> {
    match on {
        HashOn::Uri => Some(request.uri().path().as_bytes()),
        HashOn::Header(name) => {
            let value = request.headers().get(name.as_str())?.as_bytes();
            let first = value.split(|&b| b == b',').next().unwrap_or(value);
            let trimmed = first.trim_ascii();
            (!trimmed.is_empty()).then_some(trimmed)
        }
        HashOn::UrlParam(name) => request.uri().query().and_then(|query| {
            query.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key == name).then_some(value.as_bytes())
            })
        }),
    }
}

fn ip_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&ip.to_canonical().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Whether a `Connection` header lists `token`.
fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// Removes the connection-specific headers (RFC 9110 §7.6.1): those that
/// `Connection` names, and the fixed hop-by-hop set. With `upgrade`, the
/// `Connection: upgrade` and `Upgrade` headers stay (the tunnel needs them).
fn drop_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|line| line.split(','))
            .filter_map(|item| HeaderName::from_bytes(item.trim().as_bytes()).ok())
            .filter(|name| !(upgrade && name == header::UPGRADE))
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(header::CONNECTION);
        if upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    }
    for name in [
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    if headers.contains_key("keep-alive") {
        headers.remove("keep-alive");
    }
    if headers.contains_key("proxy-connection") {
        headers.remove("proxy-connection");
    }
    if !upgrade {
        headers.remove(header::UPGRADE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{ForwardFor, Network};

    fn client() -> ClientSide {
        ClientSide {
            ip: "192.0.2.7".parse().unwrap(),
            local: "10.0.0.1:8080".parse().unwrap(),
            tls: false,
        }
    }

    fn request(lines: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/a/b?x=1&id=42");
        for (name, value) in lines {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn values(request: &Request<()>, name: &str) -> Vec<String> {
        request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn hop_by_hop_headers_go_and_forwarded_headers_come() {
        let mut options = HttpOptions {
            forwardfor: Some(ForwardFor {
                header: "x-forwarded-for".into(),
                except: None,
            }),
            forwarded_proto: true,
            ..HttpOptions::default()
        };
        let mut req = request(&[
            ("host", "example.org"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "secret"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("expect", "100-continue"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        prepare_request(&mut req, &client(), &options, false);
        for gone in [
            "connection",
            "x-private",
            "keep-alive",
            "te",
            "upgrade",
            "expect",
        ] {
            assert!(values(&req, gone).is_empty(), "{gone}");
        }
        assert_eq!(
            values(&req, "x-forwarded-for"),
            ["198.51.100.1", "192.0.2.7"]
        );
        assert_eq!(values(&req, "x-forwarded-proto"), ["http"]);
        assert_eq!(values(&req, "x-forwarded-port"), ["8080"]);

        options.forwardfor = Some(ForwardFor {
            header: "x-client".into(),
            except: Some(Network::parse("192.0.2.0/24").unwrap()),
        });
        let mut req = request(&[]);
        prepare_request(&mut req, &client(), &options, false);
        assert!(values(&req, "x-client").is_empty(), "except network");
        assert_eq!(values(&req, "host"), ["10.0.0.1:8080"], "Host added");
    }

    #[test]
    fn upgrades_keep_their_headers() {
        let mut req = request(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade(&req));
        prepare_request(&mut req, &client(), &HttpOptions::default(), true);
        assert_eq!(values(&req, "connection"), ["upgrade"]);
        assert_eq!(values(&req, "upgrade"), ["websocket"]);
    }

    #[test]
    fn hash_values_follow_the_configured_part() {
        let req = request(&[("x-user", " bob , ann"), ("x-empty", " ")]);
        assert_eq!(hash_value(&req, &HashOn::Uri), Some(&b"/a/b"[..]));
        assert_eq!(
            hash_value(&req, &HashOn::Header("x-user".into())),
            Some(&b"bob"[..]),
            "the first value, as HAProxy's http_find_header gives it"
        );
        assert_eq!(hash_value(&req, &HashOn::Header("x-empty".into())), None);
        assert_eq!(hash_value(&req, &HashOn::Header("x-none".into())), None);
        assert_eq!(
            hash_value(&req, &HashOn::UrlParam("id".into())),
            Some(&b"42"[..])
        );
        assert_eq!(hash_value(&req, &HashOn::UrlParam("nope".into())), None);
    }
}
