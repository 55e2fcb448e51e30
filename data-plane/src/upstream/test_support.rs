//! Upstreams and connectors for the pools' and probes' tests.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gateway_config::Protocol;
use http::uri::Authority;
use tokio::net::TcpStream;

use super::circuit::Gauge;
use super::connector::UpstreamConnector;
use super::dns::DnsCache;
use super::tls::SystemRoots;

/// A loopback upstream that hands each connection to `serve`; counts the connections.
pub async fn counting_upstream<S, F>(serve: S) -> (Authority, Arc<AtomicUsize>)
where
    S: Fn(TcpStream) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream));
        }
    });
    (authority, accepted)
}

/// A plain-TCP connector without limits.
pub fn connector(protocol: Protocol) -> UpstreamConnector {
    UpstreamConnector::new(
        None,
        protocol,
        Duration::from_secs(2),
        Arc::new(Gauge::new(None)),
        Arc::new(DnsCache::default()),
        &SystemRoots::default(),
    )
}

/// A loopback address nothing listens on.
pub fn closed_authority() -> Authority {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    closed.local_addr().unwrap().to_string().parse().unwrap()
}

/// A TLS acceptor with a fresh self-signed certificate for `localhost`.
pub fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert.cert.der().to_vec())], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}
