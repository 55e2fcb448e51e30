//! TLS for the ConfigSync listener (and the admin API's), done here rather than inside tonic so
//! that a failed handshake (a worker with the wrong CA or certificate) is logged with the peer's
//! address.
//!
//! With a client CA, certificates are verified against it but not demanded during the
//! handshake: a worker without one reaches the service and is refused there with a gRPC
//! `Unauthenticated` it can report, instead of an opaque connection reset.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// A peer that opens a connection but does not finish the handshake is dropped after this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} from {path}: {message}")]
    Pem {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("invalid TLS settings: {0}")]
    Config(String),
}

fn pem_error(what: &'static str, path: &Path, message: impl ToString) -> TlsError {
    TlsError::Pem {
        what,
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(what, path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The server configuration: `cert`/`key` to serve, and `client_ca` to verify workers.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let chain = read_certs("the certificate", cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error("the key", key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for ca in read_certs("the client CA", path)? {
                roots
                    .add(ca)
                    .map_err(|e| pem_error("the client CA", path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The admin API's server configuration: `cert`/`key`, HTTP/2 or HTTP/1.1, no client
/// certificates (callers authenticate with tokens).
pub fn admin_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let mut config = server_config(cert, key, None)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts TCP connections and completes their handshakes concurrently (a slow peer does not
/// hold up others), yielding the TLS streams until `shutdown`.
pub fn incoming(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: watch::Receiver<bool>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
    let (sender, receiver) = mpsc::channel(16);
    let mut handshakes = handshakes(listener, config, shutdown, "config sync");
    tokio::spawn(async move {
        while let Some((stream, _)) = handshakes.recv().await {
            if sender.send(Ok(stream)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// The TLS streams of the connections to `listener`, each with its peer's address, handshakes
/// done concurrently, until `shutdown` or until the receiver is dropped. `what` names the
/// listener in the log lines of failed handshakes.
pub fn handshakes(
    listener: TcpListener,
    config: ServerConfig,
    mut shutdown: watch::Receiver<bool>,
    what: &'static str,
) -> mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)> {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = crate::shutdown::stopping(&mut shutdown) => return,
                () = sender.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::debug!(%error, "{what} accept failed");
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send((stream, peer)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%peer, %error, "refused a {what} connection: TLS handshake failed");
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "refused a {what} connection: TLS handshake timed out");
                    }
                }
            });
        }
    });
    receiver
}

/// The TLS connections of [`handshakes`] as a listener `axum::serve` takes (the admin API over
/// TLS).
#[derive(Debug)]
pub struct TlsListener {
    handshakes: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(
        listener: TcpListener,
        config: ServerConfig,
        shutdown: watch::Receiver<bool>,
        what: &'static str,
    ) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        Ok(TlsListener {
            handshakes: handshakes(listener, config, shutdown, what),
            local,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshakes.recv().await {
            Some(connection) => connection,
            // Stopped accepting: the server's graceful shutdown ends it from here.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
