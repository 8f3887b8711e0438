//! The built-in `http`/`https` check of one host: a fresh HTTP/1.1 request per URL (rustls with the ring provider for https), status ranges, an optional body regex and MD5 digest, every URL of the check in turn; never pools or reuses connections.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONNECTION, HOST, USER_AGENT};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use regex::bytes::Regex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{BuiltinOptions, HostStatus, OUTPUT_CAP, tcp};
use crate::config::model::HttpCheck;

/// The User-Agent sent unless `http.monitor -a` says otherwise.
pub const DEFAULT_USER_AGENT: &str = concat!("keepmon/", env!("CARGO_PKG_VERSION"));

/// An http check with its method parsed and body regexes compiled.
pub(crate) struct Prepared {
    check: HttpCheck,
    method: Method,
    /// The check's own URL, then its `more_urls`: each must pass.
    urls: Vec<PreparedUrl>,
    match_whole_response: bool,
    user_agent: String,
}

/// One URL of a check, ready to fetch.
struct PreparedUrl {
    path: String,
    host_header: Option<String>,
    status: Vec<(u16, u16)>,
    body: Option<Regex>,
    /// Lowercase hex MD5 the body must have.
    digest: Option<String>,
}

impl Prepared {
    pub(crate) fn new(check: &HttpCheck, options: &BuiltinOptions) -> Result<Prepared, String> {
        let method = Method::from_bytes(check.method.as_bytes())
            .map_err(|_| format!("bad HTTP method {:?}", check.method))?;
        let compile = |body: Option<&str>| {
            body.map(|re| Regex::new(re).map_err(|e| format!("bad body regex {re:?}: {e}")))
                .transpose()
        };
        let mut urls = vec![PreparedUrl {
            path: check.path.clone(),
            host_header: check.host_header.clone(),
            status: check.status.clone(),
            body: compile(check.body.as_deref())?,
            digest: check.digest.as_deref().map(str::to_ascii_lowercase),
        }];
        for url in &check.more_urls {
            urls.push(PreparedUrl {
                path: url.path.clone(),
                host_header: url.host_header.clone(),
                status: url.status.clone(),
                body: compile(url.body.as_deref())?,
                digest: url.digest.as_deref().map(str::to_ascii_lowercase),
            });
        }
        Ok(Prepared {
            check: check.clone(),
            method,
            urls,
            match_whole_response: options.match_whole_response,
            user_agent: options
                .user_agent
                .clone()
                .unwrap_or_else(|| DEFAULT_USER_AGENT.to_string()),
        })
    }

    pub(crate) async fn check(&self, host: &str) -> (HostStatus, Option<Duration>) {
        let started = Instant::now();
        match tokio::time::timeout(self.check.timeout, self.probe(host, started)).await {
            Ok(Ok(latency)) => (HostStatus::Ok, Some(latency)),
            Ok(Err(Failure { reason, latency })) => (HostStatus::Fail { reason }, latency),
            Err(_) => (HostStatus::Timeout, None),
        }
    }

    /// Fetches every URL in turn (keepalived's order); the first failure
    /// ends the check. The latency is the first URL's.
    async fn probe(&self, host: &str, started: Instant) -> Result<Duration, Failure> {
        let mut latency = None;
        for url in &self.urls {
            let result = self.probe_url(url, host, started).await;
            let result = if self.urls.len() > 1 {
                result.map_err(|f| Failure {
                    reason: format!("{}: {}", url.path, f.reason),
                    latency: f.latency,
                })
            } else {
                result
            };
            latency.get_or_insert(result?);
        }
        Ok(latency.unwrap_or_default())
    }

    async fn probe_url(
        &self,
        url: &PreparedUrl,
        host: &str,
        started: Instant,
    ) -> Result<Duration, Failure> {
        // `NAME:PORT` hosts are checked at their own port.
        let (host, port) = super::split_host_port(host);
        let port = port.unwrap_or(self.check.port);
        let host_header = url
            .host_header
            .clone()
            .unwrap_or_else(|| default_host_header(host, port, self.check.tls));
        let stream = tcp::connect(host, port).await.map_err(Failure::new)?;
        if !self.check.tls {
            return self.exchange(url, stream, &host_header, started).await;
        }
        let config = tls_config(self.check.insecure)
            .await
            .map_err(Failure::new)?;
        // Verify the certificate against the name the request is for: the
        // Host header when set (a backend reached by address), else the host.
        let name = tls_name(url.host_header.as_deref().unwrap_or(host));
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|e| Failure::new(format!("bad TLS server name {name:?}: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(server_name, stream)
            .await
            .map_err(|e| Failure::new(format!("tls: {e}")))?;
        self.exchange(url, stream, &host_header, started).await
    }

    async fn exchange<S>(
        &self,
        url: &PreparedUrl,
        stream: S,
        host_header: &str,
        started: Instant,
    ) -> Result<Duration, Failure>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| Failure::new(format!("http: {e}")))?;
        let _connection = AbortOnDrop(tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%error, "http health-check connection ended");
            }
        }));
        let request = Request::builder()
            .method(self.method.clone())
            .uri(url.path.as_str())
            .header(HOST, host_header)
            .header(USER_AGENT, self.user_agent.as_str())
            .header(ACCEPT, "*/*")
            .header(CONNECTION, "close")
            .body(Empty::new())
            .map_err(|e| Failure::new(format!("bad request: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Failure::new(format!("http: {e}")))?;
        let latency = started.elapsed();
        let failure = |reason: String| Failure {
            reason,
            latency: Some(latency),
        };
        let code = response.status().as_u16();
        if !url
            .status
            .iter()
            .any(|&(low, high)| (low..=high).contains(&code))
        {
            return Err(failure(format!(
                "status {code} (expected {})",
                show_ranges(&url.status)
            )));
        }
        if url.body.is_none() && url.digest.is_none() {
            return Ok(latency);
        }
        let head = self.match_whole_response.then(|| response_head(&response));
        let (body, md5) = read_body_digest(response, url.digest.is_some())
            .await
            .map_err(failure)?;
        if let (Some(wanted), Some(md5)) = (&url.digest, md5)
            && *wanted != md5
        {
            return Err(failure(format!("MD5 digest {md5} (expected {wanted})")));
        }
        if let Some(body_regex) = &url.body {
            let text = match head {
                Some(mut text) => {
                    text.extend(body);
                    text
                }
                None => body,
            };
            if !body_regex.is_match(&text) {
                return Err(failure(format!(
                    "body did not match /{}/",
                    body_regex.as_str()
                )));
            }
        }
        Ok(latency)
    }
}

struct Failure {
    reason: String,
    latency: Option<Duration>,
}

impl Failure {
    fn new(reason: String) -> Failure {
        Failure {
            reason,
            latency: None,
        }
    }
}

/// Aborts the connection task when the check ends, however it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `host`, `host:port` when the port is not the scheme's default, with
/// brackets around IPv6 literals (RFC 9110 §7.2).
fn default_host_header(host: &str, port: u16, tls: bool) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if port == if tls { 443 } else { 80 } {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// The name part of a Host header value (no port, no IPv6 brackets).
pub(crate) fn tls_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // One colon: `name:port`. More than one: a bare IPv6 literal.
        Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn show_ranges(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|&(low, high)| {
            if low == high {
                low.to_string()
            } else {
                format!("{low}-{high}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The status line and headers as text, for `http.monitor -m`, which
/// matches its regex against the raw response.
fn response_head(response: &Response<Incoming>) -> Vec<u8> {
    let status = response.status();
    let mut head = format!(
        "{:?} {} {}\r\n",
        response.version(),
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in response.headers() {
        head.extend_from_slice(title_case(name.as_str()).as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// `content-type` → `Content-Type`. hyper keeps header names lowercase;
/// servers send them (and mon users' regexes expect them) in title case.
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

/// The body, at most [`OUTPUT_CAP`] bytes of it, and with `digest` the
/// MD5 of all of it as lowercase hex (keepalived hashes the whole body;
/// the check's timeout bounds how long that takes).
async fn read_body_digest(
    response: Response<Incoming>,
    digest: bool,
) -> Result<(Vec<u8>, Option<String>), String> {
    use md5::Digest;
    let mut body = response.into_body();
    let mut data = Vec::new();
    let mut md5 = digest.then(md5::Md5::new);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("read body: {e}"))?;
        if let Some(chunk) = frame.data_ref() {
            let room = OUTPUT_CAP - data.len();
            data.extend_from_slice(&chunk[..chunk.len().min(room)]);
            match &mut md5 {
                Some(md5) => md5.update(chunk),
                None if data.len() >= OUTPUT_CAP => break,
                None => {}
            }
        }
    }
    let hex = md5.map(|md5| {
        md5.finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    });
    Ok((data, hex))
}

/// The shared client TLS configs, built once (reading the system CA store
/// is slow, so it happens on a blocking thread). A failure is remembered
/// until restart.
pub(crate) async fn tls_config(insecure: bool) -> Result<Arc<ClientConfig>, String> {
    static VERIFIED: OnceCell<Result<Arc<ClientConfig>, String>> = OnceCell::const_new();
    static INSECURE: OnceCell<Result<Arc<ClientConfig>, String>> = OnceCell::const_new();
    let cell = if insecure { &INSECURE } else { &VERIFIED };
    cell.get_or_init(|| async move {
        tokio::task::spawn_blocking(move || build_tls_config(insecure))
            .await
            .unwrap_or_else(|e| Err(format!("tls setup: {e}")))
    })
    .await
    .clone()
}

fn build_tls_config(insecure: bool) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls setup: {e}"))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
            .with_no_client_auth()
    } else {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            warn!(%error, "could not load system CA certificates");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            warn!(
                ignored,
                "no system CA certificates found: https checks that verify certificates will fail (install ca-certificates, or set insecure = true)"
            );
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `insecure = true`: accept any certificate, but still check that the
/// handshake is signed by the key in the certificate presented.
#[derive(Debug)]
pub(crate) struct NoCertificateCheck(pub(crate) Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_adds_non_default_ports() {
        assert_eq!(default_host_header("web1", 80, false), "web1");
        assert_eq!(default_host_header("web1", 443, true), "web1");
        assert_eq!(default_host_header("web1", 8080, false), "web1:8080");
        assert_eq!(default_host_header("web1", 80, true), "web1:80");
        assert_eq!(default_host_header("::1", 8443, true), "[::1]:8443");
        assert_eq!(default_host_header("::1", 443, true), "[::1]");
    }

    #[test]
    fn tls_name_strips_port_and_brackets() {
        for (header, name) in [
            ("www.example.com", "www.example.com"),
            ("www.example.com:8443", "www.example.com"),
            ("[::1]:8443", "::1"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("10.0.0.1:443", "10.0.0.1"),
        ] {
            assert_eq!(tls_name(header), name, "{header}");
        }
    }

    #[test]
    fn header_names_in_title_case() {
        assert_eq!(title_case("content-type"), "Content-Type");
        assert_eq!(title_case("x-served-by"), "X-Served-By");
        assert_eq!(title_case("etag"), "Etag");
    }

    #[test]
    fn ranges_are_shown_compactly() {
        assert_eq!(show_ranges(&[(200, 299)]), "200-299");
        assert_eq!(
            show_ranges(&[(200, 200), (301, 302), (401, 401)]),
            "200, 301-302, 401"
        );
    }
}
