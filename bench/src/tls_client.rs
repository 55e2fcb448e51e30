//! One TLS client connection (tokio-rustls) that makes a handshake and one HTTP/1.1 exchange,
//! all the handshake load generator needs, and the client configs the generator and the
//! handshake check use.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, NamedGroup, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How the client treats the server's certificate.
pub enum Trust<'a> {
    /// Verified against this CA file, for the server name sent.
    Ca(&'a Path),
    /// Taken as it comes, as wrk and h2load take it: the load core is the scarce one, and
    /// verifying is the client's work, not the proxy's. The handshake check verifies instead.
    Anything,
}

/// What the client remembers of earlier connections.
pub enum Sessions {
    /// Nothing: every handshake is a full one.
    None,
    /// TLS 1.3 tickets, up to this many, shared by every connection made with the config.
    Tickets(usize),
}

/// A client config offering HTTP/1.1 by ALPN, TLS 1.3 and 1.2.
pub fn config(trust: Trust<'_>, sessions: Sessions) -> anyhow::Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?;
    let mut config = match trust {
        Trust::Ca(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("read {}", path.display()))?
            {
                roots.add(cert.with_context(|| format!("a certificate in {}", path.display()))?)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Anything => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider())))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = match sessions {
        Sessions::None => Resumption::disabled(),
        Sessions::Tickets(capacity) => Resumption::store(Arc::new(TicketPool::new(capacity))),
    };
    Ok(Arc::new(config))
}

/// Accepts every certificate and signature; see [`Trust::Anything`].
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
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
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Session tickets of the one server the benchmark talks to, shared by all its connections.
/// rustls's in-memory store keeps 8 tickets per server name, fewer than the concurrent
/// connections take, so most would find it empty and handshake in full.
#[derive(Debug)]
struct TicketPool {
    capacity: usize,
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: VecDeque<Tls13ClientSessionValue>,
}

impl TicketPool {
    fn new(capacity: usize) -> TicketPool {
        TicketPool {
            capacity: capacity.max(1),
            state: Mutex::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut PoolState) -> T) -> T {
        // A panic while holding the lock leaves tickets no worse than before it.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }
}

impl ClientSessionStore for TicketPool {
    fn set_kx_hint(&self, _server_name: ServerName<'static>, group: NamedGroup) {
        self.with(|s| s.kx_hint = Some(group));
    }

    fn kx_hint(&self, _server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.with(|s| s.kx_hint)
    }

    fn set_tls12_session(&self, _server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.with(|s| s.tls12 = Some(value));
    }

    fn tls12_session(&self, _server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.with(|s| s.tls12.clone())
    }

    fn remove_tls12_session(&self, _server_name: &ServerName<'static>) {
        self.with(|s| s.tls12 = None);
    }

    fn insert_tls13_ticket(
        &self,
        _server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.with(|s| {
            if s.tls13.len() >= self.capacity {
                s.tls13.pop_front();
            }
            s.tls13.push_back(value);
        });
    }

    fn take_tls13_ticket(
        &self,
        _server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        // The newest: the oldest are the likeliest to have expired.
        self.with(|s| s.tls13.pop_back())
    }
}

/// A TLS connection whose handshake has completed.
pub struct TlsClient {
    stream: TlsStream<TcpStream>,
}

impl TlsClient {
    /// Connects to `address` and completes a handshake for `name`.
    pub async fn connect(
        address: SocketAddr,
        config: &Arc<ClientConfig>,
        name: &ServerName<'static>,
    ) -> anyhow::Result<TlsClient> {
        let tcp = TcpStream::connect(address).await.context("connect")?;
        tcp.set_nodelay(true)?;
        let stream = TlsConnector::from(config.clone())
            .connect(name.clone(), tcp)
            .await
            .context("handshake")?;
        Ok(TlsClient { stream })
    }

    /// The connection's rustls state: its protocol version, handshake kind and so on.
    pub fn tls(&self) -> &ClientConnection {
        self.stream.get_ref().1
    }

    /// Sends `request` and reads one HTTP/1.1 response to it, which must be a 200; session
    /// tickets the server sends meanwhile reach the config's session store.
    pub async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(request).await?;
        let mut response = Vec::new();
        let mut chunk = [0u8; 4096];
        while !response_complete(&response)? {
            let n = self.stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "the server closed before the response ended");
            response.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    }

    /// Sends `close_notify` and closes; the server may already have gone, which is no failure
    /// of what was measured.
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// Whether `received` holds a whole response (`Content-Length` or chunked); an error for any
/// status but 200.
fn response_complete(received: &[u8]) -> anyhow::Result<bool> {
    let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(false);
    };
    let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
    anyhow::ensure!(head.starts_with("http/1.1 200"), "answered {head}");
    let body = &received[end + 4..];
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    Ok(match length {
        Some(length) => body.len() >= length,
        None => body.ends_with(b"0\r\n\r\n"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::response_complete;

    #[test]
    fn responses_end_where_their_framing_says() {
        assert!(!response_complete(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n").unwrap());
        assert!(!response_complete(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok").unwrap());
        assert!(response_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n").unwrap());
        assert!(
            response_complete(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nok\n\r\n0\r\n\r\n"
            )
            .unwrap()
        );
        assert!(response_complete(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").is_err());
    }
}
