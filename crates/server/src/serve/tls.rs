//! HTTPS on the listener: rustls with the certificate and key from
//! `[tls]`, read at start (a bad pair stops the start) and again on
//! SIGHUP (a bad pair then keeps the one in use, and says why).
//!
//! The pair is chosen per handshake by a resolver holding the current one,
//! so a reload never touches connections already open, and the next
//! handshake gets the new pair.

use std::{
    path::Path,
    sync::{Arc, RwLock},
};

use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::config::TlsConfig;

/// The listener's TLS: what it accepts with, and the pair it presents.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    keys: Arc<Keys>,
}

#[derive(Debug)]
struct Keys {
    config: TlsConfig,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Tls {
    /// Reads the pair; an error names the file and what is wrong with it.
    pub fn load(config: &TlsConfig) -> anyhow::Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pair = read(config, &provider)?;
        let keys = Arc::new(Keys { config: config.clone(), provider: provider.clone(), current: RwLock::new(pair) });
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(keys.clone());
        // herald speaks HTTP/1.1 only: say so, so that clients do not try h2.
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(server)), keys })
    }

    /// Reads the pair again: the next handshakes present it. On error the
    /// pair in use stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let pair = read(&self.keys.config, &self.keys.provider)?;
        *self.keys.current.write().unwrap_or_else(|e| e.into_inner()) = pair;
        Ok(())
    }

    pub async fn accept(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.acceptor.accept(tcp).await
    }

    /// Reloads on every SIGHUP until herald stops.
    pub fn reload_on_hangup(&self) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())?;
        let tls = self.clone();
        Ok(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!(cert = %tls.keys.config.cert.display(), "TLS certificate reloaded"),
                    Err(e) => tracing::error!("TLS certificate not reloaded, the one in use stays: {e:#}"),
                }
            }
        }))
    }
}

impl ResolvesServerCert for Keys {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn read(config: &TlsConfig, provider: &CryptoProvider) -> anyhow::Result<Arc<CertifiedKey>> {
    use anyhow::Context;
    let named = |path: &Path, what: &str| format!("TLS {what} {}", path.display());
    let chain = CertificateDer::pem_file_iter(&config.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| named(&config.cert, "certificate"))?;
    anyhow::ensure!(!chain.is_empty(), "{}: no certificate in it", named(&config.cert, "certificate"));
    let key = PrivateKeyDer::from_pem_file(&config.key).with_context(|| named(&config.key, "key"))?;
    // Also refuses a key that is not the certificate's.
    let pair = CertifiedKey::from_der(chain, key, provider)
        .with_context(|| format!("{} with {}", named(&config.key, "key"), config.cert.display()))?;
    Ok(Arc::new(pair))
}
