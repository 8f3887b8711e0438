//! TLS termination for http mode: the virtual server's certificates loaded from PEM files into a rustls server config (ring, as the https checks use), the certificate chosen per handshake by the client's SNI name (the first one when none matches); never reads a file on the connection path.

use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::model::TlsCert;

/// A loaded set of certificates, with what it was loaded from (to know
/// when a reload must read the files again).
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    /// The configured files and their modification times when read.
    source: Vec<(TlsCert, Option<SystemTime>, Option<SystemTime>)>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("certs", &self.source.len())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: no certificate in the file")]
    NoCertificate { path: String },
    #[error("{path}: no private key in the file ({error})")]
    NoKey { path: String, error: String },
    #[error("{cert} and {key} do not fit together: {error}")]
    Mismatch {
        cert: String,
        key: String,
        error: rustls::Error,
    },
    #[error("tls settings: {0}")]
    Config(rustls::Error),
}

impl Tls {
    /// Loads `certs` (at least one).
    pub fn load(certs: &[TlsCert]) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut keys = Vec::with_capacity(certs.len());
        for cert in certs {
            keys.push(Arc::new(certified_key(cert, &provider)?));
        }
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(BySni { keys }));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            source: certs
                .iter()
                .map(|c| (c.clone(), modified(&c.cert), modified(&c.key)))
                .collect(),
        })
    }

    /// Whether this was loaded from `certs` as they are on disk now (same
    /// files, unchanged modification times).
    pub fn is_current(&self, certs: &[TlsCert]) -> bool {
        self.source.len() == certs.len()
            && self
                .source
                .iter()
                .zip(certs)
                .all(|((loaded, cert_time, key_time), wanted)| {
                    loaded == wanted
                        && *cert_time == modified(&wanted.cert)
                        && *key_time == modified(&wanted.key)
                })
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn certified_key(
    cert: &TlsCert,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|error| TlsError::Read {
            path: path.display().to_string(),
            error,
        })
    };
    let chain_pem = read(&cert.cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.cert.display().to_string(),
        });
    }
    let key_pem = read(&cert.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| TlsError::NoKey {
        path: cert.key.display().to_string(),
        error: error.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|error| TlsError::Mismatch {
        cert: cert.cert.display().to_string(),
        key: cert.key.display().to_string(),
        error,
    })
}

/// Picks the first certificate valid for the SNI name, else the first one.
#[derive(Debug)]
struct BySni {
    keys: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_name = hello
            .server_name()
            .and_then(|name| ServerName::try_from(name).ok())
            .and_then(|name| {
                self.keys.iter().find(|key| {
                    key.end_entity_cert().ok().is_some_and(|der| {
                        webpki::EndEntityCert::try_from(der)
                            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
                    })
                })
            });
        by_name.or_else(|| self.keys.first()).cloned()
    }
}
