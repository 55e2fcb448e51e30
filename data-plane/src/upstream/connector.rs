//! Opens connections to an upstream's targets: TCP through the upstream's DNS cache, then TLS
//! (rustls, ring provider) with the upstream's SNI, roots and verification, counted against the
//! upstream's `max_connections`.
//!
//! Every upstream has its own connector and its own pool, so a pooled connection is only ever
//! reused for the same address, scheme, SNI and verification settings.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use gateway_config::{Protocol, UpstreamTls};
use http::uri::Authority;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::circuit::{ConnectionSlot, Gauge};
use crate::dns::DnsCache;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the upstream's connection limit is reached")]
    CircuitOpen,
    #[error("connecting timed out")]
    Timeout,
    #[error("no such target")]
    NoAddress,
    #[error("cannot resolve the target: {0}")]
    Resolve(io::Error),
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("tls.ca: {0}")]
    Ca(String),
    #[error("tls: {0}")]
    Config(String),
}

#[derive(Clone)]
pub struct UpstreamConnector {
    inner: Arc<Inner>,
}

type Tls = Option<(TlsConnector, Option<ServerName<'static>>)>;

struct Inner {
    /// A setup error (which validation should have caught) fails every connection attempt
    /// with its message rather than the whole revision.
    tls: Result<Tls, TlsSetupError>,
    connect_timeout: Duration,
    connections: Arc<Gauge>,
    dns: Arc<DnsCache>,
}

impl std::fmt::Debug for UpstreamConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConnector")
            .field("tls", &matches!(self.inner.tls, Ok(Some(_))))
            .field("connect_timeout", &self.inner.connect_timeout)
            .finish()
    }
}

impl UpstreamConnector {
    pub fn new(
        tls: Option<&UpstreamTls>,
        protocol: Protocol,
        connect_timeout: Duration,
        connections: Arc<Gauge>,
        dns: Arc<DnsCache>,
    ) -> Self {
        UpstreamConnector {
            inner: Arc::new(Inner {
                tls: tls_setup(tls, protocol),
                connect_timeout,
                connections,
                dns,
            }),
        }
    }

    /// Whether connections use TLS (also when its setup failed, so nothing goes out in clear).
    pub fn is_tls(&self) -> bool {
        !matches!(self.inner.tls, Ok(None))
    }

    /// A connection to `authority` (a target's address, which always names a port).
    pub async fn open_to(&self, authority: &Authority) -> Result<UpstreamConnection, ConnectError> {
        let inner = &self.inner;
        let tls = inner
            .tls
            .as_ref()
            .map_err(|e| ConnectError::Tls(io::Error::other(e.to_string())))?;
        let slot = ConnectionSlot::acquire(&inner.connections).ok_or(ConnectError::CircuitOpen)?;
        let default_port = if tls.is_some() { 443 } else { 80 };
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(default_port);
        let opened = tokio::time::timeout(inner.connect_timeout, async {
            let addresses = inner
                .dns
                .resolve(host, port)
                .await
                .map_err(ConnectError::Resolve)?;
            let tcp = connect_any(&addresses).await?;
            match tls {
                None => Ok(Stream::Plain(tcp)),
                Some((connector, sni)) => {
                    let name = match sni {
                        Some(name) => name.clone(),
                        None => server_name(host)?,
                    };
                    let tls = connector
                        .connect(name, tcp)
                        .await
                        .map_err(ConnectError::Tls)?;
                    Ok(Stream::Tls(Box::new(tls)))
                }
            }
        })
        .await
        .map_err(|_| ConnectError::Timeout)??;
        Ok(UpstreamConnection {
            io: TokioIo::new(opened),
            _slot: slot,
        })
    }
}

fn tls_setup(tls: Option<&UpstreamTls>, protocol: Protocol) -> Result<Tls, TlsSetupError> {
    {
        let tls = match tls.filter(|t| t.enabled) {
            Some(settings) => {
                let config = client_config(settings, protocol)?;
                let sni = match &settings.sni {
                    Some(name) => Some(
                        ServerName::try_from(name.clone())
                            .map_err(|e| TlsSetupError::Config(format!("sni `{name}`: {e}")))?,
                    ),
                    None => None,
                };
                Some((TlsConnector::from(Arc::new(config)), sni))
            }
            None => None,
        };
        Ok(tls)
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, ConnectError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned())
        .map_err(|e| ConnectError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))
}

async fn connect_any(addresses: &[SocketAddr]) -> Result<TcpStream, ConnectError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) => last = error,
        }
    }
    Err(ConnectError::Connect(last))
}

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether an idle connection is still open with nothing unread on it. The readiness the
    /// runtime already tracks says whether the socket became readable, so a quiet connection
    /// costs no system call; a readable one is read without waiting: a close, a reset or bytes
    /// nobody asked for end it. On TLS, records that are not data (session tickets) are taken in
    /// by that read and leave the connection usable.
    pub(crate) fn is_open_and_quiet(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let tcp = match self {
            Stream::Plain(tcp) => &*tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        };
        match tcp.poll_read_ready(&mut cx) {
            Poll::Pending => return true,
            Poll::Ready(Err(_)) => return false,
            Poll::Ready(Ok(())) => {}
        }
        let mut probe = [0u8; 1];
        let mut probe = tokio::io::ReadBuf::new(&mut probe);
        match self {
            Stream::Plain(tcp) => {
                matches!(tcp.try_read(probe.initialize_unfilled()), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            Stream::Tls(tls) => {
                use tokio::io::AsyncRead;
                Pin::new(tls.as_mut())
                    .poll_read(&mut cx, &mut probe)
                    .is_pending()
            }
        }
    }
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// A connection to a target; its slot in `max_connections` is given back when it closes.
pub struct UpstreamConnection {
    io: TokioIo<Stream>,
    _slot: ConnectionSlot,
}

impl UpstreamConnection {
    /// The connection as tokio I/O, for the exchange that reads and writes it directly.
    pub(crate) fn stream(&mut self) -> &mut Stream {
        self.io.inner_mut()
    }

    pub(crate) fn is_open_and_quiet(&mut self) -> bool {
        self.io.inner_mut().is_open_and_quiet()
    }
}

impl Read for UpstreamConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for UpstreamConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trusted roots, loaded once per process.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "cannot load a system root certificate");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        tracing::debug!(added, ignored, "system root certificates loaded");
        roots
    })
}

fn client_config(tls: &UpstreamTls, protocol: Protocol) -> Result<ClientConfig, TlsSetupError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
    let mut config = if !tls.verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let roots = match &tls.ca {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| TlsSetupError::Ca(e.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|e| TlsSetupError::Ca(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(TlsSetupError::Ca("holds no certificate".into()));
                }
                roots
            }
            None => system_roots().clone(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = match protocol {
        Protocol::Http2 => vec![b"h2".to_vec()],
        Protocol::Http1 | Protocol::H2c => vec![b"http/1.1".to_vec()],
    };
    Ok(config)
}

/// `verify: false`: any certificate is accepted, but signatures are still checked so that the
/// handshake itself stays sound.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_build_or_explain() {
        let settings = UpstreamTls {
            verify: false,
            ..UpstreamTls::default()
        };
        let config = client_config(&settings, Protocol::Http2).unwrap();
        assert_eq!(config.alpn_protocols, [b"h2".to_vec()]);
        let bad_ca = UpstreamTls {
            ca: Some("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into()),
            ..UpstreamTls::default()
        };
        assert!(client_config(&bad_ca, Protocol::Http1).is_err());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let good_ca = UpstreamTls {
            ca: Some(cert.cert.pem()),
            ..UpstreamTls::default()
        };
        assert!(client_config(&good_ca, Protocol::Http1).is_ok());
    }

    #[tokio::test]
    async fn connections_count_against_the_limit() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gauge = Arc::new(Gauge::new(Some(1)));
        let connector = UpstreamConnector::new(
            None,
            Protocol::Http1,
            Duration::from_secs(2),
            gauge.clone(),
            Arc::new(DnsCache::default()),
        );
        assert!(!connector.is_tls());
        let target: Authority = addr.to_string().parse().unwrap();
        let first = connector.open_to(&target).await.unwrap();
        assert_eq!(gauge.get(), 1);
        assert!(matches!(
            connector.open_to(&target).await,
            Err(ConnectError::CircuitOpen)
        ));
        drop(first);
        assert_eq!(gauge.get(), 0);
        assert!(connector.open_to(&target).await.is_ok());
    }
}
