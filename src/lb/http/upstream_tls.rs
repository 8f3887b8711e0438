//! TLS towards the real servers in http mode (HAProxy's `ssl` on server lines): a rustls client config built with the table's settings (the CA file is read then, never on the connection path), HAProxy's verification rule (the SNI name, else `verifyhost`, else the chain only), and the handshake on a connected socket.

use std::fmt;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::model::ServerTls;

/// A virtual server's TLS client settings, loaded.
pub struct Upstream {
    /// Unique per load: pooled server connections are reused only under
    /// the settings that verified them.
    id: u64,
    connector: TlsConnector,
    /// The SNI name sent; None: the server's address (rustls sends no SNI
    /// for an address, as HAProxy sends none without `sni`).
    sni: Option<ServerName<'static>>,
    /// What this was loaded from, and the CA file's modification time then.
    source: ServerTls,
    ca_modified: Option<SystemTime>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("source", &self.source)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot read the CA file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: no certificate in the CA file")]
    NoCertificate { path: String },
    #[error("{name:?} is not a host name")]
    BadName { name: String },
    #[error("tls settings: {0}")]
    Config(String),
}

impl Upstream {
    /// Builds the client config; reads `tls.ca_file` when verifying.
    pub fn load(tls: &ServerTls) -> Result<Upstream, UpstreamError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| UpstreamError::Config(e.to_string()))?;
        let verifier: Arc<dyn ServerCertVerifier> = match &tls.ca_file {
            None => Arc::new(crate::monitor::http::NoCertificateCheck(provider)),
            Some(path) => {
                let roots = roots(path)?;
                let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| UpstreamError::Config(e.to_string()))?;
                let expected = tls
                    .sni
                    .as_deref()
                    .or(tls.verify_host.as_deref())
                    .map(server_name)
                    .transpose()?;
                Arc::new(HaproxyRule { inner, expected })
            }
        };
        let mut config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        static LOADS: AtomicU64 = AtomicU64::new(1);
        Ok(Upstream {
            id: LOADS.fetch_add(1, Ordering::Relaxed),
            connector: TlsConnector::from(Arc::new(config)),
            sni: tls.sni.as_deref().map(server_name).transpose()?,
            source: tls.clone(),
            ca_modified: tls.ca_file.as_deref().and_then(modified),
        })
    }

    /// This load's identity (never 0).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether this was loaded from `tls` as its CA file is on disk now.
    pub fn is_current(&self, tls: &ServerTls) -> bool {
        self.source == *tls && self.ca_modified == tls.ca_file.as_deref().and_then(modified)
    }

    /// The TLS handshake on `stream`, connected to `addr`.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        stream: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = self
            .sni
            .clone()
            .unwrap_or(ServerName::IpAddress(addr.ip().into()));
        self.connector.connect(name, stream).await
    }
}

fn roots(path: &Path) -> Result<RootCertStore, UpstreamError> {
    let pem = fs::read(path).map_err(|error| UpstreamError::Read {
        path: path.display().to_string(),
        error,
    })?;
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(UpstreamError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(roots)
}

fn server_name(name: &str) -> Result<ServerName<'static>, UpstreamError> {
    ServerName::try_from(name.to_string()).map_err(|_| UpstreamError::BadName {
        name: name.to_string(),
    })
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// HAProxy's rule for a verified server certificate: the chain must lead
/// to the CA file; the name checked is the SNI name, else `verifyhost`,
/// and with neither no name is checked (the chain alone).
#[derive(Debug)]
struct HaproxyRule {
    inner: Arc<WebPkiServerVerifier>,
    expected: Option<ServerName<'static>>,
}

impl ServerCertVerifier for HaproxyRule {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.expected {
            Some(name) => {
                self.inner
                    .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
            }
            // webpki checks the name after the chain, so a name mismatch
            // means the chain itself verified.
            None => match self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
