//! One TLS handshake of a client connection: read the ClientHello, pick the certificate for the
//! name it sends from the table current at that moment, and finish the handshake with that
//! certificate's configuration. What the connection then carries upstream (that it is TLS, and
//! a verified client certificate's subject and fingerprint) is worked out here once.

use std::sync::Arc;
use std::time::Duration;

use gateway_config::x509::parse_certificate;
use http::{HeaderName, HeaderValue};
use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::table::{CertTable, subject_value};
use crate::observe::Handshake;

/// What a TLS connection adds to every request on it.
#[derive(Debug, Default)]
pub struct TlsPeer {
    /// Client-sent headers removed from every request: the ones the certificate's
    /// `client_auth` names.
    pub strip: Vec<HeaderName>,
    /// The verified client certificate's subject and fingerprint, in the headers named for them.
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// The protocol agreed by ALPN.
    pub h2: bool,
}

/// A handshake that did not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeFailure {
    #[error("no certificate for server name {0:?}")]
    UnknownName(Option<String>),
    #[error("the handshake timed out")]
    Timeout,
    #[error("the client certificate was refused: {0}")]
    ClientCertificate(String),
    #[error("{0}")]
    Protocol(String),
}

impl HandshakeFailure {
    pub fn outcome(&self) -> Handshake {
        match self {
            HandshakeFailure::UnknownName(_) => Handshake::UnknownName,
            HandshakeFailure::Timeout => Handshake::Timeout,
            HandshakeFailure::ClientCertificate(_) => Handshake::ClientCertificate,
            HandshakeFailure::Protocol(_) => Handshake::Protocol,
        }
    }
}

/// Runs the server side of a handshake on `io` within `timeout`, with the certificate `table`
/// gives for the client's server name.
pub async fn accept<IO>(
    io: IO,
    table: impl FnOnce() -> Option<Arc<CertTable>>,
    timeout: Duration,
) -> Result<(TlsStream<IO>, TlsPeer), HandshakeFailure>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, handshake(io, table)).await {
        Ok(result) => result,
        Err(_) => Err(HandshakeFailure::Timeout),
    }
}

async fn handshake<IO>(
    io: IO,
    table: impl FnOnce() -> Option<Arc<CertTable>>,
) -> Result<(TlsStream<IO>, TlsPeer), HandshakeFailure>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start = LazyConfigAcceptor::new(Acceptor::default(), io)
        .await
        .map_err(|e| HandshakeFailure::Protocol(e.to_string()))?;
    let hello = start.client_hello();
    let server_name = hello.server_name().map(str::to_owned);
    let table = table();
    let Some(entry) = table
        .as_ref()
        .and_then(|t| t.lookup(server_name.as_deref()))
        .cloned()
    else {
        refuse_unknown_name(start.io).await;
        return Err(HandshakeFailure::UnknownName(server_name));
    };
    let stream = start.into_stream(entry.config.clone()).await.map_err(|e| {
        let text = e.to_string();
        if is_client_certificate_error(&e) {
            HandshakeFailure::ClientCertificate(text)
        } else {
            HandshakeFailure::Protocol(text)
        }
    })?;
    let (_, connection) = stream.get_ref();
    let mut peer = TlsPeer {
        strip: entry.client_headers.names().cloned().collect(),
        add: Vec::new(),
        h2: connection.alpn_protocol() == Some(b"h2"),
    };
    let verified = connection
        .peer_certificates()
        .and_then(|c| c.first())
        .filter(|_| !peer.strip.is_empty())
        .and_then(|leaf| parse_certificate(leaf.clone().into_owned()).ok());
    if let Some(leaf) = verified {
        if let Some(name) = &entry.client_headers.subject {
            peer.add
                .push((name.clone(), subject_value(&leaf.info.subject)));
        }
        if let Some(name) = &entry.client_headers.fingerprint
            && let Ok(value) = HeaderValue::try_from(leaf.info.fingerprint_sha256)
        {
            peer.add.push((name.clone(), value));
        }
    }
    Ok((stream, peer))
}

/// A fatal `unrecognized_name` alert (RFC 6066 §3) in a plaintext record, as a server sends it
/// before its ServerHello in TLS 1.2 and 1.3 alike: content type 21, record version 3.3, length
/// 2, level fatal (2), description 112.
const UNRECOGNIZED_NAME_ALERT: [u8; 7] = [21, 3, 3, 0, 2, 2, 112];

/// Tells a client why there is no handshake (so that it shows "unrecognized name" rather than
/// a reset), then closes the connection. Best effort: the client may be gone already.
async fn refuse_unknown_name<IO: AsyncWrite + Unpin>(mut io: IO) {
    use tokio::io::AsyncWriteExt;
    let _ = io.write_all(&UNRECOGNIZED_NAME_ALERT).await;
    let _ = io.shutdown().await;
}

fn is_client_certificate_error(error: &std::io::Error) -> bool {
    let Some(inner) = error.get_ref() else {
        return false;
    };
    matches!(
        inner.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}
