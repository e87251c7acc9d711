//! Certificates for herald's TLS listener in tests: a self-signed pair for
//! `localhost` and `127.0.0.1`, written where herald reads it, and clients
//! that trust only the pairs named.

use std::{path::Path, sync::Arc};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// A self-signed certificate and its key, as PEM and as the DER a
/// handshake shows.
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Pair {
    /// A new pair, unlike any other.
    pub fn new() -> Pair {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let made = rcgen::generate_simple_self_signed(names).expect("a self-signed certificate");
        Pair { cert_pem: made.cert.pem(), key_pem: made.signing_key.serialize_pem(), der: made.cert.der().clone() }
    }

    /// Writes the certificate to `cert` and the key to `key`, each whole
    /// at once (a rename), as a deployment replaces them.
    pub fn write(&self, cert: &Path, key: &Path) {
        replace(cert, &self.cert_pem);
        replace(key, &self.key_pem);
    }
}

impl Default for Pair {
    fn default() -> Self {
        Pair::new()
    }
}

/// Puts `text` at `path` in one step.
pub fn replace(path: &Path, text: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

/// A reqwest client that trusts `pair` and nothing else.
pub fn client(pair: &Pair) -> reqwest::Client {
    trusting(pair).build().unwrap()
}

/// As [`client`], to be built further.
pub fn trusting(pair: &Pair) -> reqwest::ClientBuilder {
    drop(crate::client()); // installs the TLS provider reqwest needs
    let root = reqwest::Certificate::from_pem(pair.cert_pem.as_bytes()).unwrap();
    reqwest::Client::builder().tls_certs_only([root])
}

/// The certificate herald at `addr` presents to a new connection (which
/// must be one of `trusted`).
pub async fn presented(addr: std::net::SocketAddr, trusted: &[&Pair]) -> std::io::Result<CertificateDer<'static>> {
    let mut roots = rustls::RootCertStore::empty();
    for pair in trusted {
        roots.add(pair.der.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = connector.connect(ServerName::try_from("localhost").unwrap(), TcpStream::connect(addr).await?).await?;
    Ok(tls.get_ref().1.peer_certificates().and_then(|c| c.first()).expect("a certificate").clone().into_owned())
}
