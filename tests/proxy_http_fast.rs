//! The http proxy's forwarding fast path against a scripted server on loopback: each response framing a server may choose (length, chunked with trailers, until close, an interim 100, HEAD) reaches the client intact over one keep-alive connection, backend sockets are reused only after a clean response, a pooled socket the server closed (idle, or on the next request) is replaced unseen, bad chunked framing closes the client connection, pipelined requests are answered in order while the connection moves to hyper's path at the first request with a body, the proxy's own 503 keeps the connection open, `Connection: close` ends the client's connection but not the server's, and a server silent past `timeout server` gets the client a 504 on either path.
//!
//! The server is a plain TCP listener started by the test on
//! `127.0.0.1:0` that parses request heads with `httparse` and answers by
//! path with bytes written by hand, so the test controls the exact framing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keepmon::config::model::{HttpOptions, LbScheduler, ProxyMode, ProxyOptions};
use keepmon::lb::balance::Backend;
use keepmon::lb::proxy::{ProxyHandle, ProxySpec, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const TEST_LIMIT: Duration = Duration::from_secs(30);

/// A scripted server: counts its connections and answers by path.
struct Scripted {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Scripted {
    async fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let (count, cancelled) = (accepted.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => return,
                    },
                    () = cancelled.cancelled() => return,
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_scripted(stream));
            }
        });
        Scripted {
            addr,
            accepted,
            stop,
        }
    }

    fn backend(&self) -> Backend {
        Backend {
            addr: self.addr,
            weight: 1,
        }
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Answers the requests of one connection, each by its path.
async fn serve_scripted(mut stream: TcpStream) {
    let mut buf = Vec::new();
    let mut drop_next = false;
    loop {
        let (method, path, head_len, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(len)) = request.parse(&buf) {
                let body_len = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                    .unwrap_or(0usize);
                break (
                    request.method.unwrap().to_string(),
                    request.path.unwrap().to_string(),
                    len,
                    body_len,
                );
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < head_len + body_len {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        if drop_next {
            // Read the request, then close without a byte of answer.
            return;
        }
        let body = String::from_utf8_lossy(&buf[head_len..head_len + body_len]).into_owned();
        buf.drain(..head_len + body_len);
        let answer = match path.as_str() {
            "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n\
                 6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
                .to_string(),
            "/close" => {
                let _ = stream
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
                    .await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = stream.write_all(b"close").await;
                return;
            }
            "/interim" => {
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ninterim"
                    .to_string()
            }
            "/bad-chunks" => {
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
                    .to_string()
            }
            "/then-close" => {
                // Keep-alive by its headers, closed a moment later (a
                // server's keep-alive timeout racing the next request).
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsoon")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            "/hang" => {
                // Never answers (the test ends first).
                tokio::time::sleep(TEST_LIMIT).await;
                return;
            }
            "/then-drop" => {
                drop_next = true;
                "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndrop".to_string()
            }
            _ => {
                let text = format!("{method} {path} {body}");
                let length = if method == "HEAD" { 99 } else { text.len() };
                let body = if method == "HEAD" { "" } else { &text };
                format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n{body}")
            }
        };
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn spec(backends: Vec<Backend>) -> ProxySpec {
    ProxySpec {
        name: "fast".to_string(),
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
            timeout_server: Some(Duration::from_secs(5)),
            http: HttpOptions::default(),
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

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test finished in time");
}

/// One response read off a raw client connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw client connection that reads responses one by one (bodies by
/// length or chunked; `head` when the request was HEAD).
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(proxy: &ProxyHandle) -> Raw {
        Raw {
            stream: TcpStream::connect(proxy.local_addr().unwrap())
                .await
                .unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// More bytes; false when the proxy closed the connection.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response; None when the connection closed before its end.
    async fn response(&mut self, head: bool) -> Option<Answer> {
        let (status, headers, len) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut slots);
            if let httparse::Status::Complete(len) = response.parse(&self.buf).unwrap() {
                let headers = response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect::<Vec<_>>();
                break (response.code.unwrap(), headers, len);
            }
            if !self.fill().await {
                return None;
            }
        };
        self.buf.drain(..len);
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        if head {
            return Some(answer);
        }
        if answer.header("transfer-encoding").is_some() {
            loop {
                let line_end = loop {
                    if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break at;
                    }
                    if !self.fill().await {
                        return None;
                    }
                };
                let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                    .expect("a chunk size");
                self.buf.drain(..line_end + 2);
                if size == 0 {
                    // Trailers up to the empty line.
                    loop {
                        while !self.buf.windows(2).any(|w| w == b"\r\n") {
                            if !self.fill().await {
                                return None;
                            }
                        }
                        let at = self.buf.windows(2).position(|w| w == b"\r\n").unwrap();
                        self.buf.drain(..at + 2);
                        if at == 0 {
                            return Some(answer);
                        }
                    }
                }
                while self.buf.len() < size + 2 {
                    if !self.fill().await {
                        return None;
                    }
                }
                answer.body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
            }
        }
        let length: usize = answer
            .header("content-length")
            .map_or(0, |v| v.parse().unwrap());
        while self.buf.len() < length {
            if !self.fill().await {
                return None;
            }
        }
        answer.body = self.buf.drain(..length).collect();
        Some(answer)
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framing_a_server_chooses_reaches_the_client_intact() {
    bounded(async {
        let server = Scripted::start().await;
        let (proxy, _stop) = proxy(spec(vec![server.backend()])).await;
        let mut client = Raw::connect(&proxy).await;

        client.send(get("/plain").as_bytes()).await;
        let answer = client.response(false).await.unwrap();
        assert_eq!(
            (answer.status, answer.text().as_str()),
            (200, "GET /plain ")
        );

        client.send(get("/chunked").as_bytes()).await;
        let answer = client.response(false).await.unwrap();
        assert_eq!(answer.text(), "hello world");
        assert_eq!(answer.header("transfer-encoding"), Some("chunked"));

        client.send(get("/interim").as_bytes()).await;
        let answer = client.response(false).await.unwrap();
        assert_eq!(
            (answer.status, answer.text().as_str()),
            (200, "interim"),
            "the 100 is dropped"
        );

        client.send(b"HEAD /h HTTP/1.1\r\nHost: test\r\n\r\n").await;
        let answer = client.response(true).await.unwrap();
        assert_eq!(answer.header("content-length"), Some("99"));
        assert_eq!(
            server.connections(),
            1,
            "length, chunked, interim and HEAD responses leave the server connection reusable"
        );

        // Until close: re-framed as chunked, and the client connection stays.
        client.send(get("/close").as_bytes()).await;
        let answer = client.response(false).await.unwrap();
        assert_eq!(answer.text(), "until close");
        assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
        client.send(get("/after").as_bytes()).await;
        let answer = client.response(false).await.unwrap();
        assert_eq!(answer.text(), "GET /after ");
        assert_eq!(
            server.connections(),
            2,
            "a response read until close is never reused"
        );
        let stats = proxy.stats();
        assert_eq!(stats[0].requests, 6);
        assert_eq!(stats[0].responses[1], 6, "six 2xx");
        assert_eq!(stats[0].failures, 0);
        assert_eq!(proxy.front_stats().requests, 6);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_the_server_closed_is_replaced_unseen() {
    bounded(async {
        let server = Scripted::start().await;
        let (proxy, _stop) = proxy(spec(vec![server.backend()])).await;
        let mut client = Raw::connect(&proxy).await;
        for round in 0..3 {
            client.send(get("/then-close").as_bytes()).await;
            let answer = client.response(false).await.unwrap();
            assert_eq!(
                (answer.status, answer.text().as_str()),
                (200, "soon"),
                "round {round}"
            );
            // The server closes its side while the socket idles in the pool.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(server.connections(), 3);
        // A pooled socket whose server takes the next request and closes
        // without answering: sent again on a new connection.
        client.send(get("/then-drop").as_bytes()).await;
        assert_eq!(client.response(false).await.unwrap().text(), "drop");
        client.send(get("/again").as_bytes()).await;
        assert_eq!(client.response(false).await.unwrap().text(), "GET /again ");
        assert_eq!(server.connections(), 5);
        assert_eq!(
            proxy.stats()[0].failures,
            0,
            "a stale pooled socket is not the server's failure"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chunked_framing_from_a_server_closes_the_client_connection() {
    bounded(async {
        let server = Scripted::start().await;
        let (proxy, _stop) = proxy(spec(vec![server.backend()])).await;
        let mut client = Raw::connect(&proxy).await;
        client.send(get("/bad-chunks").as_bytes()).await;
        // The head and the good chunk went out; then the connection closes
        // without a last chunk, so the client cannot take it for whole.
        assert!(client.response(false).await.is_none());
        let mut rest = Vec::new();
        let read = client.stream.read_to_end(&mut rest).await;
        assert!(read.is_err() || rest.is_empty(), "closed: {rest:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_across_the_move_to_hyper() {
    bounded(async {
        let server = Scripted::start().await;
        let (proxy, _stop) = proxy(spec(vec![server.backend()])).await;
        let mut client = Raw::connect(&proxy).await;
        // Two the fast path takes, one with a body (hyper's from there on),
        // and one more after it: all in one write.
        let mut bytes = get("/one");
        bytes.push_str(&get("/two"));
        bytes.push_str("POST /three HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello");
        bytes.push_str(&get("/four"));
        client.send(bytes.as_bytes()).await;
        for expected in ["GET /one ", "GET /two ", "POST /three hello", "GET /four "] {
            let answer = client.response(false).await.expect(expected);
            assert_eq!((answer.status, answer.text().as_str()), (200, expected));
        }
        // hyper's path keeps serving the connection.
        client.send(get("/five").as_bytes()).await;
        let answer = client.response(false).await.unwrap();
        assert_eq!(answer.text(), "GET /five ");
        assert_eq!(proxy.front_stats().requests, 5);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxys_own_503_keeps_the_connection_open_and_heeds_head() {
    bounded(async {
        let (proxy, _stop) = proxy(spec(Vec::new())).await;
        let mut client = Raw::connect(&proxy).await;
        client.send(get("/").as_bytes()).await;
        let answer = client.response(false).await.unwrap();
        assert_eq!(answer.status, 503);
        assert!(answer.text().contains("No server is available"));
        assert_eq!(answer.header("cache-control"), Some("no-cache"));
        client.send(b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n").await;
        let answer = client.response(true).await.unwrap();
        assert_eq!(answer.status, 503);
        let length: usize = answer.header("content-length").unwrap().parse().unwrap();
        assert!(length > 0, "the length of the body a GET would get");
        client.send(get("/").as_bytes()).await;
        let answer = client.response(false).await.unwrap();
        assert_eq!(answer.status, 503, "no body was sent to the HEAD");
        assert_eq!(proxy.front_stats().no_server, 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_silent_past_timeout_server_gets_504_on_either_path() {
    bounded(async {
        let server = Scripted::start().await;
        let mut spec = spec(vec![server.backend()]);
        spec.options.timeout_server = Some(Duration::from_millis(300));
        let (proxy, _stop) = proxy(spec).await;
        let mut client = Raw::connect(&proxy).await;
        client.send(get("/hang").as_bytes()).await;
        let answer = client.response(false).await.unwrap();
        assert_eq!(answer.status, 504);
        assert!(answer.text().contains("did not answer in time"));
        // The client connection stays; the next request is served.
        client.send(get("/plain").as_bytes()).await;
        assert_eq!(client.response(false).await.unwrap().text(), "GET /plain ");
        // The same on hyper's path (a request with a body).
        client
            .send(b"PUT /hang HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\n\r\nx")
            .await;
        assert_eq!(client.response(false).await.unwrap().status, 504);
        assert_eq!(proxy.stats()[0].failures, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_ends_the_client_connection_only() {
    bounded(async {
        let server = Scripted::start().await;
        let (served, _stop) = proxy(spec(vec![server.backend()])).await;
        // Server connections are pooled per proxy thread (one per CPU, or
        // TOKIO_WORKER_THREADS): more client connections than threads.
        let threads = std::env::var("TOKIO_WORKER_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        for round in 0..threads + 2 {
            let mut client = Raw::connect(&served).await;
            client
                .send(b"GET /plain HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                .await;
            let answer = client.response(false).await.unwrap();
            assert_eq!(answer.text(), "GET /plain ", "round {round}");
            assert_eq!(answer.header("connection"), Some("close"));
            let mut rest = Vec::new();
            client.stream.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "closed after the answer: {rest:?}");
        }
        assert!(
            server.connections() <= threads,
            "{} server connections for {} closed client connections: each outlives its client's close and is reused",
            server.connections(),
            threads + 2
        );
        // The proxy's own answer says so too.
        let (empty, _stop) = proxy(spec(Vec::new())).await;
        let mut client = Raw::connect(&empty).await;
        client
            .send(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await;
        let answer = client.response(false).await.unwrap();
        assert_eq!(answer.status, 503);
        assert_eq!(answer.header("connection"), Some("close"));
        let mut rest = Vec::new();
        client.stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    })
    .await;
}
