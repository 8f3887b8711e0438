//! The built-in proxy in http mode against real servers on loopback: per-request spreading over one client connection, X-Forwarded-For, cookie persistence (insert, prefix, rewrite, a down server's cookie), keep-alive reuse of backend connections, streamed chunked bodies, WebSocket-style upgrades, HEAD and 304 framing, 100-continue, retries on connect failure, smuggling attempts refused, a client without a whole request head closed at `http_request`, no failed request while a backend dies and returns, TLS termination with a certificate per SNI name, keep-alive over TLS on both request paths, TLS to servers verified as HAProxy verifies (verify none, a CA file, the SNI name or verifyhost), and a 100 MiB body streamed without growing memory.
//!
//! Each backend is a small hyper server started by the test on
//! `127.0.0.1:0`: it answers with its name and the request's headers, counts
//! the TCP connections it accepted, echoes bodies back (`/echo`), sets
//! cookies (`/login`), and on an `Upgrade` request answers 101 and echoes
//! the raw bytes that follow.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use keepmon::config::model::{
    CookieMode, CookiePersistence, ForwardFor, HttpOptions, LbScheduler, ProxyMode, ProxyOptions,
    ServerTls, TlsCert,
};
use keepmon::lb::balance::Backend;
use keepmon::lb::proxy::{ProxyHandle, ProxySpec, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const TEST_LIMIT: Duration = Duration::from_secs(30);

/// One test backend.
struct Server {
    name: &'static str,
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Server {
    async fn start(name: &'static str) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Server::serve(name, listener)
    }

    fn serve(name: &'static str, listener: TcpListener) -> Server {
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let (count, token) = (connections.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => accepted.unwrap(),
                };
                count.fetch_add(1, Ordering::SeqCst);
                let token = token.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(name, peer, req));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    tokio::select! {
                        _ = conn => {}
                        () = token.cancelled() => {}
                    }
                });
            }
        });
        Server {
            name,
            addr,
            connections,
            stop,
        }
    }

    fn backend(&self) -> Backend {
        Backend {
            addr: self.addr,
            weight: 1,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

type TestBody = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

async fn answer(
    name: &'static str,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    let full = |text: String| Full::new(Bytes::from(text)).map_err(|e| match e {}).boxed();
    if req.headers().contains_key("upgrade") {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buffer = [0u8; 1024];
                while let Ok(n) = io.read(&mut buffer).await {
                    if n == 0 || io.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(full(String::new()))
            .unwrap();
        return Ok(response);
    }
    if req.uri().path() == "/304" {
        let response = Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header("etag", "\"v1\"")
            .body(full(String::new()))
            .unwrap();
        return Ok(response);
    }
    if req.uri().path() == "/echo" {
        // Streams the body back as it arrives.
        let body = req.into_body();
        return Ok(Response::new(body.boxed()));
    }
    let mut text = format!("server {name}\npeer {peer}\n");
    for (key, value) in req.headers() {
        text.push_str(&format!("{key}: {}\n", value.to_str().unwrap_or("?")));
    }
    let mut response = Response::builder().header("x-server", name);
    if req.uri().path() == "/login" {
        response = response.header("set-cookie", "JSESSIONID=abc123; Path=/");
    }
    Ok(response.body(full(text)).unwrap())
}

fn http_spec(backends: Vec<Backend>, http: HttpOptions) -> ProxySpec {
    ProxySpec {
        name: "test".to_string(),
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        scheduler: LbScheduler::RoundRobin,
        config_servers: Default::default(),
        backends,
        persistence: None,
        retries: 2,
        connect_timeout: Duration::from_secs(2),
        sorry: None,
        options: ProxyOptions {
            mode: ProxyMode::Http,
            timeout_server: Some(Duration::from_secs(10)),
            http,
            ..ProxyOptions::default()
        },
        limits: Default::default(),
    }
}

async fn proxy(spec: ProxySpec) -> (ProxyHandle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let proxy = start(spec, shutdown.clone()).await.expect("proxy starts");
    (proxy, shutdown)
}

/// A keep-alive client connection to the proxy.
struct Client {
    sender: hyper::client::conn::http1::SendRequest<TestBody>,
}

impl Client {
    async fn connect(proxy: &ProxyHandle) -> Client {
        let stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn.with_upgrades());
        Client { sender }
    }

    async fn send(&mut self, req: Request<TestBody>) -> Response<Incoming> {
        self.sender.ready().await.expect("client connection open");
        self.sender.send_request(req).await.expect("a response")
    }

    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> (Response<()>, String) {
        let mut builder = Request::get(path).header("host", "test");
        for (key, value) in headers {
            builder = builder.header(*key, *value);
        }
        let response = self.send(builder.body(empty()).unwrap()).await;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            Response::from_parts(parts, ()),
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }
}

fn empty() -> TestBody {
    Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
}

fn server_of(text: &str) -> &str {
    text.lines()
        .next()
        .and_then(|line| line.strip_prefix("server "))
        .unwrap_or("?")
}

/// Header lines the backend saw, by name.
fn seen_headers(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().skip(2) {
        if let Some((key, value)) = line.split_once(": ") {
            map.entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
    }
    map
}

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_one_connection_are_spread_and_backend_connections_reused() {
    bounded(async {
        let a = Server::start("a").await;
        let b = Server::start("b").await;
        let (proxy, _stop) = proxy(http_spec(
            vec![a.backend(), b.backend()],
            HttpOptions::default(),
        ))
        .await;
        let mut client = Client::connect(&proxy).await;
        let mut names = Vec::new();
        for _ in 0..20 {
            let (response, text) = client.get("/", &[]).await;
            assert_eq!(response.status(), StatusCode::OK);
            names.push(server_of(&text).to_string());
        }
        assert_eq!(names.iter().filter(|n| *n == "a").count(), 10, "{names:?}");
        assert_eq!(names.iter().filter(|n| *n == "b").count(), 10, "{names:?}");
        // 20 requests, but each backend saw very few connections: they were pooled.
        let opened = a.connections.load(Ordering::SeqCst) + b.connections.load(Ordering::SeqCst);
        assert!(
            opened <= 4,
            "{opened} backend connections for 20 sequential requests"
        );
        let stats = proxy.stats();
        assert_eq!(stats.iter().map(|s| s.requests).sum::<u64>(), 20);
        assert_eq!(stats.iter().map(|s| s.responses[1]).sum::<u64>(), 20);
        assert_eq!(proxy.front_stats().requests, 20);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_are_added_and_hop_by_hop_ones_dropped() {
    bounded(async {
        let a = Server::start("a").await;
        let http = HttpOptions {
            forwardfor: Some(ForwardFor {
                header: "x-forwarded-for".into(),
                except: None,
            }),
            forwarded_proto: true,
            ..HttpOptions::default()
        };
        let (proxy, _stop) = proxy(http_spec(vec![a.backend()], http)).await;
        let mut client = Client::connect(&proxy).await;
        let (_, text) = client
            .get(
                "/",
                &[
                    ("x-forwarded-for", "198.51.100.9"),
                    ("connection", "x-secret"),
                    ("x-secret", "1"),
                ],
            )
            .await;
        let seen = seen_headers(&text);
        assert_eq!(seen["x-forwarded-for"], ["198.51.100.9", "127.0.0.1"]);
        assert_eq!(seen["x-forwarded-proto"], ["http"]);
        let port = proxy.local_addr().unwrap().port().to_string();
        assert_eq!(seen["x-forwarded-port"], [port]);
        assert!(!seen.contains_key("x-secret"));
        assert!(!seen.contains_key("connection"));
    })
    .await;
}

fn cookie_options(mode: CookieMode, servers: &[&Server]) -> HttpOptions {
    HttpOptions {
        cookie: Some(CookiePersistence {
            name: if mode == CookieMode::Prefix {
                "JSESSIONID".into()
            } else {
                "SERVERID".into()
            },
            mode,
        }),
        server_cookies: servers
            .iter()
            .map(|s| (s.addr, s.name.to_string()))
            .collect(),
        ..HttpOptions::default()
    }
}

fn set_cookies(response: &Response<()>) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_cookie_sticks_and_a_down_servers_cookie_is_replaced() {
    bounded(async {
        let a = Server::start("a").await;
        let b = Server::start("b").await;
        let mode = CookieMode::Insert {
            indirect: true,
            nocache: true,
            httponly: true,
            secure: false,
        };
        let spec = http_spec(
            vec![a.backend(), b.backend()],
            cookie_options(mode, &[&a, &b]),
        );
        let (proxy, _stop) = proxy(spec.clone()).await;
        let mut client = Client::connect(&proxy).await;
        let (first, text) = client.get("/", &[]).await;
        let server = server_of(&text).to_string();
        assert_eq!(
            set_cookies(&first),
            [format!("SERVERID={server}; path=/; HttpOnly")]
        );
        assert_eq!(first.headers()["cache-control"], "private");
        let cookie = format!("SERVERID={server}; theme=dark");
        for _ in 0..6 {
            let (response, text) = client.get("/", &[("cookie", &cookie)]).await;
            assert_eq!(server_of(&text), server, "sticks to its server");
            assert!(set_cookies(&response).is_empty(), "indirect: not set again");
            // indirect: the server never sees the proxy's cookie.
            assert_eq!(seen_headers(&text)["cookie"], ["theme=dark"]);
        }
        // The cookie's server goes down (leaves the table): elsewhere, re-set.
        let other = if server == "a" { &b } else { &a };
        proxy.update(vec![other.backend()]);
        let (response, text) = client.get("/", &[("cookie", &cookie)]).await;
        assert_eq!(server_of(&text), other.name);
        assert_eq!(
            set_cookies(&response),
            [format!("SERVERID={}; path=/; HttpOnly", other.name)]
        );
        // Drained (weight 0) counts as down too.
        proxy.update(vec![
            Backend {
                addr: other.addr,
                weight: 1,
            },
            Backend {
                addr: if server == "a" { a.addr } else { b.addr },
                weight: 0,
            },
        ]);
        let (_, text) = client.get("/", &[("cookie", &cookie)]).await;
        assert_eq!(server_of(&text), other.name);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_and_rewrite_cookies() {
    bounded(async {
        let a = Server::start("a").await;
        let b = Server::start("b").await;
        let (proxy_prefix, _stop1) = proxy(http_spec(
            vec![a.backend(), b.backend()],
            cookie_options(CookieMode::Prefix, &[&a, &b]),
        ))
        .await;
        let mut client = Client::connect(&proxy_prefix).await;
        let (login, text) = client.get("/login", &[]).await;
        let server = server_of(&text).to_string();
        assert_eq!(
            set_cookies(&login),
            [format!("JSESSIONID={server}~abc123; Path=/")]
        );
        let cookie = format!("JSESSIONID={server}~abc123");
        for _ in 0..4 {
            let (_, text) = client.get("/", &[("cookie", &cookie)]).await;
            assert_eq!(server_of(&text), server);
            assert_eq!(seen_headers(&text)["cookie"], ["JSESSIONID=abc123"]);
        }

        let (proxy_rewrite, _stop2) = proxy(http_spec(
            vec![a.backend(), b.backend()],
            HttpOptions {
                cookie: Some(CookiePersistence {
                    name: "JSESSIONID".into(),
                    mode: CookieMode::Rewrite,
                }),
                ..cookie_options(CookieMode::Rewrite, &[&a, &b])
            },
        ))
        .await;
        let mut client = Client::connect(&proxy_rewrite).await;
        let (login, text) = client.get("/login", &[]).await;
        let server = server_of(&text).to_string();
        assert_eq!(
            set_cookies(&login),
            [format!("JSESSIONID={server}; Path=/")]
        );
        for _ in 0..4 {
            let cookie = format!("JSESSIONID={server}");
            let (_, text) = client.get("/", &[("cookie", &cookie)]).await;
            assert_eq!(server_of(&text), server);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_stream_both_ways() {
    bounded(async {
        let a = Server::start("a").await;
        let (proxy, _stop) = proxy(http_spec(vec![a.backend()], HttpOptions::default())).await;
        let mut client = Client::connect(&proxy).await;
        // 8 MiB in 64 KiB chunks of unknown total length (chunked on the wire).
        let chunk = Bytes::from(vec![b'z'; 64 * 1024]);
        let frames = futures_util::stream::iter(
            (0..128).map(move |_| Ok::<_, hyper::Error>(Frame::data(chunk.clone()))),
        );
        let body = StreamBody::new(frames).boxed();
        let response = client
            .send(
                Request::post("/echo")
                    .header("host", "t")
                    .body(body)
                    .unwrap(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut received = 0usize;
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                assert!(data.iter().all(|&b| b == b'z'));
                received += data.len();
            }
        }
        assert_eq!(received, 8 * 1024 * 1024);
        // The connection is still usable.
        let (response, _) = client.get("/", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_become_tunnels() {
    bounded(async {
        let a = Server::start("a").await;
        let (proxy, _stop) = proxy(http_spec(vec![a.backend()], HttpOptions::default())).await;
        let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        stream
            .write_all(
                b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
            )
            .await
            .unwrap();
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        stream.write_all(b"ping through the tunnel").await.unwrap();
        let mut echoed = [0u8; 23];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ping through the tunnel");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_answered_before_the_body() {
    bounded(async {
        let a = Server::start("a").await;
        let (proxy, _stop) = proxy(http_spec(vec![a.backend()], HttpOptions::default())).await;
        let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 100"), "{head}");
        stream.write_all(b"hello").await.unwrap();
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let mut body = [0u8; 5];
        stream.read_exact(&mut body).await.unwrap();
        assert_eq!(&body, b"hello");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_is_retried_elsewhere_and_none_left_is_503() {
    bounded(async {
        let a = Server::start("a").await;
        let dead = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let backends = vec![
            Backend {
                addr: dead,
                weight: 1,
            },
            a.backend(),
        ];
        let (proxy, _stop) = proxy(http_spec(backends, HttpOptions::default())).await;
        let mut client = Client::connect(&proxy).await;
        for _ in 0..6 {
            let (response, text) = client.get("/", &[]).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(server_of(&text), "a");
        }
        let stats = proxy.stats();
        let dead_stats = stats.iter().find(|s| s.addr == dead).unwrap();
        // rr's turn lands on the dead server for every request (no health
        // check removes it here); each time the request goes on to a.
        assert_eq!(dead_stats.failures, 6);
        assert_eq!(dead_stats.retries, 6);

        proxy.update(vec![Backend {
            addr: dead,
            weight: 1,
        }]);
        let (response, text) = client.get("/", &[]).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(text.contains("503"), "{text}");
        proxy.update(Vec::new());
        let (response, _) = client.get("/", &[]).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(proxy.front_stats().no_server, 2);
    })
    .await;
}

/// `http_request` bounds the wait for the first request head from the
/// accept, as before the proxy waited for the client's first byte to build
/// its http connection (memory per idle connection): a client that sends
/// nothing, or only part of a head, is closed without an answer and no
/// server sees it; a whole request is served as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_whole_request_head_is_closed_at_http_request() {
    bounded(async {
        let a = Server::start("a").await;
        let http = HttpOptions {
            timeout_http_request: Duration::from_millis(300),
            ..HttpOptions::default()
        };
        let (proxy, _shutdown) = proxy(http_spec(vec![a.backend()], http)).await;
        for sent in [&b""[..], b"GET / HTTP/1.1\r\nHost: t"] {
            let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
                .await
                .unwrap();
            stream.write_all(sent).await.unwrap();
            let mut answer = Vec::new();
            // Ends when the proxy closes (a reset counts as closed too).
            let _ = stream.read_to_end(&mut answer).await;
            assert!(
                answer.is_empty(),
                "after {sent:?}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        let mut client = Client::connect(&proxy).await;
        let (response, text) = client.get("/", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(server_of(&text), "a");
        assert_eq!(
            a.connections.load(Ordering::SeqCst),
            1,
            "only the whole request reached the server"
        );
    })
    .await;
}

/// `http_keep_alive` closes a client connection that has had no request in
/// flight for that long (checked once per period, so after one to two
/// periods), and never one that keeps sending requests. Real time: the
/// proxy runs on its own threads' runtimes, which a paused test clock does
/// not reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_at_http_keep_alive() {
    bounded(async {
        let a = Server::start("a").await;
        let period = Duration::from_millis(500);
        let http = HttpOptions {
            timeout_http_keep_alive: period,
            ..HttpOptions::default()
        };
        let (proxy, _shutdown) = proxy(http_spec(vec![a.backend()], http)).await;

        let mut busy = Client::connect(&proxy).await;
        let since = std::time::Instant::now();
        let mut served = 0;
        while since.elapsed() < period * 4 {
            let (response, _) = busy.get("/", &[]).await;
            assert_eq!(response.status(), StatusCode::OK);
            served += 1;
            // Well inside a period, even on a loaded machine.
            tokio::time::sleep(period / 5).await;
        }
        assert!(served >= 4, "{served} requests over four periods");

        let mut idle = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let since = std::time::Instant::now();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut answer))
            .await
            .expect("the idle connection is closed")
            .expect("a clean close");
        let idle_for = since.elapsed();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            idle_for >= period && idle_for < period * 2 + Duration::from_secs(1),
            "closed after {idle_for:?}"
        );
    })
    .await;
}

/// Sends raw bytes; returns the status line of the answer, or "" when the
/// proxy closed without one.
async fn raw_exchange(proxy: &ProxyHandle, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_are_refused_and_never_reach_a_server() {
    bounded(async {
        let a = Server::start("a").await;
        let (proxy, _stop) = proxy(http_spec(vec![a.backend()], HttpOptions::default())).await;
        let cases: [&[u8]; 5] = [
            // Two different lengths.
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            // A length that is not a number.
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello",
            // Chunked not last.
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            // obs-fold.
            b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
            // Transfer-Encoding on HTTP/1.0.
            b"POST / HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ];
        for case in cases {
            let status = raw_exchange(&proxy, case).await;
            assert!(
                status.starts_with("HTTP/1.1 400"),
                "{:?} -> {status:?}",
                String::from_utf8_lossy(case)
            );
        }
        // A bad chunk size: the body fails; no complete request reaches the server.
        let status = raw_exchange(
            &proxy,
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        )
        .await;
        assert!(!status.starts_with("HTTP/1.1 200"), "{status:?}");
        // CL + TE: read as chunked, the length dropped; the smuggled second
        // request inside the body never becomes a request of its own.
        let status = raw_exchange(
            &proxy,
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
        let stats = proxy.stats();
        assert_eq!(stats[0].requests, 2, "only the chunked body and the CL+TE request were sent on");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_fails_while_a_backend_dies_and_returns() {
    bounded(async {
        let a = Server::start("a").await;
        let b = Server::start("b").await;
        let b_addr = b.addr;
        let (proxy, _stop) = proxy(http_spec(
            vec![a.backend(), b.backend()],
            HttpOptions::default(),
        ))
        .await;
        let done = CancellationToken::new();
        let mut clients = Vec::new();
        for _ in 0..4 {
            let mut client = Client::connect(&proxy).await;
            let done = done.clone();
            clients.push(tokio::spawn(async move {
                let (mut ok, mut failed) = (0, 0);
                while !done.is_cancelled() {
                    let (response, _) = client.get("/", &[]).await;
                    if response.status() == StatusCode::OK {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                }
                (ok, failed)
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(b); // dies: its listener and every connection close
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = TcpListener::bind(b_addr).await.unwrap();
        let b = Server::serve("b", listener);
        tokio::time::sleep(Duration::from_millis(300)).await;
        done.cancel();
        let mut total_ok = 0;
        for client in clients {
            let (ok, failed) = client.await.unwrap();
            assert_eq!(failed, 0);
            total_ok += ok;
        }
        assert!(total_ok > 100, "{total_ok} requests");
        assert!(b.connections.load(Ordering::SeqCst) > 0, "b serves again");
    })
    .await;
}

async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("a response head"));
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Certificates written for one test, removed at its end.
struct CertDir(std::path::PathBuf);

impl CertDir {
    fn new() -> CertDir {
        // One directory per test: the tests of this file run in parallel.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "keepmon-test-proxy-http-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        CertDir(dir)
    }

    /// A self-signed certificate for `name`: its files and its DER form.
    fn cert(&self, name: &str) -> (TlsCert, rustls::pki_types::CertificateDer<'static>) {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let cert = self.0.join(format!("{name}.pem"));
        let key = self.0.join(format!("{name}.key"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
        (TlsCert { cert, key }, certified.cert.der().clone())
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TLS client that trusts only `trusted`.
fn tls_connector(
    trusted: &rustls::pki_types::CertificateDer<'static>,
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// An HTTPS GET through the proxy with SNI `name`, trusting only `trusted`:
/// the handshake succeeds only if the proxy chose that certificate.
async fn https_get(
    proxy: &ProxyHandle,
    name: &str,
    trusted: &rustls::pki_types::CertificateDer<'static>,
) -> Result<String, std::io::Error> {
    let connector = tls_connector(trusted);
    let tcp = TcpStream::connect(proxy.local_addr().unwrap()).await?;
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut tls = connector.connect(server_name, tcp).await?;
    tls.write_all(
        format!("GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_terminated_with_the_certificate_the_sni_name_asks_for() {
    bounded(async {
        let a = Server::start("a").await;
        let dir = CertDir::new();
        let (cert_one, der_one) = dir.cert("one.test");
        let (cert_two, der_two) = dir.cert("two.test");
        let http = HttpOptions {
            forwarded_proto: true,
            tls: vec![cert_one, cert_two],
            ..HttpOptions::default()
        };
        let (proxy, _stop) = proxy(http_spec(vec![a.backend()], http)).await;
        let answer = https_get(&proxy, "one.test", &der_one).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("x-forwarded-proto: https"), "{answer}");
        let answer = https_get(&proxy, "two.test", &der_two).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // The second name's certificate is not served for the first name.
        assert!(https_get(&proxy, "one.test", &der_two).await.is_err());
    })
    .await;
}

/// Keep-alive over TLS: bodyless requests (the fast path) and a request
/// with a body (hyper's path, from then on) on one TLS connection, each
/// with `X-Forwarded-Proto: https`, over one pooled server connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_keep_alive_serves_both_paths_on_one_connection() {
    bounded(async {
        let a = Server::start("a").await;
        let dir = CertDir::new();
        let (cert, der) = dir.cert("one.test");
        let http = HttpOptions {
            forwarded_proto: true,
            tls: vec![cert],
            ..HttpOptions::default()
        };
        let (proxy, _stop) = proxy(http_spec(vec![a.backend()], http)).await;
        let connector = tls_connector(&der);
        let tcp = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("one.test").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut client = Client { sender };
        for _ in 0..3 {
            let (response, text) = client.get("/", &[]).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(seen_headers(&text)["x-forwarded-proto"], ["https"]);
        }
        let request = Request::post("/echo")
            .header("host", "one.test")
            .body(
                Full::new(Bytes::from_static(b"over tls"))
                    .map_err(|e| match e {})
                    .boxed(),
            )
            .unwrap();
        let response = client.send(request).await;
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"over tls");
        let (response, text) = client.get("/", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(seen_headers(&text)["x-forwarded-proto"], ["https"]);
        assert_eq!(proxy.front_stats().requests, 5);
    })
    .await;
}

/// The process's resident set size in KiB (`VmRSS` of /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_body_streams_through_without_growing_memory() {
    bounded(async {
        let a = Server::start("a").await;
        let (proxy, _stop) = proxy(http_spec(vec![a.backend()], HttpOptions::default())).await;
        let mut client = Client::connect(&proxy).await;
        // Warm up: one small echo, so buffers and pools exist before the baseline.
        let (response, _) = client.get("/", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let before = rss_kib();
        const CHUNK: usize = 256 * 1024;
        const CHUNKS: usize = 400; // 100 MiB
        let chunk = Bytes::from(vec![b'm'; CHUNK]);
        let frames = futures_util::stream::iter(
            (0..CHUNKS).map(move |_| Ok::<_, hyper::Error>(Frame::data(chunk.clone()))),
        );
        let request = Request::post("/echo")
            .header("host", "t")
            .header("content-length", (CHUNK * CHUNKS).to_string())
            .body(StreamBody::new(frames).boxed())
            .unwrap();
        let response = client.send(request).await;
        let mut body = response.into_body();
        let (mut received, mut peak) = (0usize, before);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                received += data.len();
                peak = peak.max(rss_kib());
            }
        }
        assert_eq!(received, CHUNK * CHUNKS);
        let growth_mib = (peak.saturating_sub(before)) / 1024;
        eprintln!("RSS {before} KiB before, peak {peak} KiB while streaming 100 MiB");
        // The client, the proxy and the server all run in this process;
        // 100 MiB went through each. Streaming keeps a few buffers per hop.
        assert!(
            growth_mib < 32,
            "RSS grew by {growth_mib} MiB while streaming 100 MiB"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_304_keep_their_framing() {
    bounded(async {
        let a = Server::start("a").await;
        let (proxy, _stop) = proxy(http_spec(vec![a.backend()], HttpOptions::default())).await;
        let mut stream = TcpStream::connect(proxy.local_addr().unwrap())
            .await
            .unwrap();
        // HEAD: the length of the body a GET would get, and no body.
        stream
            .write_all(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("content-length: "),
            "{head}"
        );
        // 304: no body either; the next response on the connection follows at once.
        stream
            .write_all(b"GET /304 HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 304"), "{head}");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut stream).await;
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "no stray body bytes before: {head}"
        );
        let mut rest = String::new();
        stream.read_to_string(&mut rest).await.unwrap();
        assert!(rest.starts_with("server a"), "{rest}");
    })
    .await;
}

/// A backend that speaks HTTPS with a certificate for `backend.test`
/// signed by its own test authority; it records the SNI name of each
/// handshake and counts the requests it answered.
struct TlsServer {
    addr: SocketAddr,
    /// The SNI name of each handshake that completed (None: no SNI).
    sni: Arc<std::sync::Mutex<Vec<Option<String>>>>,
    requests: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl TlsServer {
    /// Starts the server; returns it with the PEM of its authority.
    async fn start() -> (TlsServer, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "keepmon test authority");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["backend.test".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sni = Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let (seen, count, token) = (sni.clone(), requests.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => accepted.unwrap(),
                };
                let (acceptor, seen, count) = (acceptor.clone(), seen.clone(), count.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let name = tls.get_ref().1.server_name().map(str::to_string);
                    seen.lock().unwrap().push(name);
                    let service = hyper::service::service_fn(move |req| {
                        count.fetch_add(1, Ordering::SeqCst);
                        answer("tls", peer, req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let server = TlsServer {
            addr,
            sni,
            requests,
            stop,
        };
        (server, ca.pem())
    }

    fn backend(&self) -> Backend {
        Backend {
            addr: self.addr,
            weight: 1,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One GET through a proxy whose servers speak TLS with `server_tls`.
async fn get_over_server_tls(backend: Backend, server_tls: ServerTls) -> (StatusCode, String) {
    let http = HttpOptions {
        server_tls: Some(server_tls),
        ..HttpOptions::default()
    };
    let (proxy, _stop) = proxy(http_spec(vec![backend], http)).await;
    let mut client = Client::connect(&proxy).await;
    let (response, text) = client.get("/", &[]).await;
    (response.status(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_tls_servers_verified_as_haproxy_verifies() {
    bounded(async {
        let (server, ca_pem) = TlsServer::start().await;
        let dir = CertDir::new();
        let ca_file = dir.0.join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).unwrap();
        let (other_ca, _) = dir.cert("other-authority.test");
        let tls = |ca: Option<&std::path::Path>, sni: Option<&str>, host: Option<&str>| ServerTls {
            ca_file: ca.map(std::path::Path::to_path_buf),
            sni: sni.map(str::to_string),
            verify_host: host.map(str::to_string),
        };

        // `verify none`: any certificate, no SNI.
        let (status, text) = get_over_server_tls(server.backend(), tls(None, None, None)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(server_of(&text), "tls");
        let last_sni = || server.sni.lock().unwrap().last().cloned().flatten();
        assert_eq!(last_sni(), None, "no SNI unless one is set");
        // The test authority and the SNI name: the name is sent and checked.
        let (status, text) = get_over_server_tls(
            server.backend(),
            tls(Some(&ca_file), Some("backend.test"), None),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(last_sni().as_deref(), Some("backend.test"));
        // The authority alone: HAProxy checks the chain, not a name.
        let (status, text) =
            get_over_server_tls(server.backend(), tls(Some(&ca_file), None, None)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(last_sni(), None);
        // `verifyhost` naming another host, or the SNI name of another host.
        let (status, _) = get_over_server_tls(
            server.backend(),
            tls(Some(&ca_file), None, Some("other.test")),
        )
        .await;
        assert!(status.is_server_error(), "{status}");
        let (status, _) = get_over_server_tls(
            server.backend(),
            tls(Some(&ca_file), Some("other.test"), None),
        )
        .await;
        assert!(status.is_server_error(), "{status}");
        // Another authority.
        let (status, _) =
            get_over_server_tls(server.backend(), tls(Some(&other_ca.cert), None, None)).await;
        assert!(status.is_server_error(), "{status}");
        assert_eq!(
            server.requests.load(Ordering::SeqCst),
            3,
            "only the verified connections carried a request"
        );
        // A plain HTTP server behind `ssl`: no request goes out in clear.
        let plain = Server::start("plain").await;
        let (status, _) = get_over_server_tls(plain.backend(), tls(None, None, None)).await;
        assert!(status.is_server_error(), "{status}");
    })
    .await;
}
