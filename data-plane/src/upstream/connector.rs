//! Opens connections to an upstream's targets: TCP through the upstream's DNS cache (each of a
//! name's addresses gets its share of the connect timeout, so one black-holed address does not
//! use it all), then TLS (see [`super::tls`]) with the upstream's SNI and roots, counted against
//! the upstream's `max_connections` unless the connection is an active probe's.
//!
//! Every upstream has its own connector and its own pool, so a pooled connection is only ever
//! reused for the same address, scheme, SNI and verification settings.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use gateway_config::{Protocol, UpstreamTls};
use http::uri::Authority;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::circuit::{Gauge, Slot};
use super::dns::DnsCache;
use super::tls::{SystemRoots, Tls, TlsSetupError, tls_setup};

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

#[derive(Clone)]
pub struct UpstreamConnector {
    inner: Arc<Inner>,
}

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
        roots: &SystemRoots,
    ) -> Self {
        UpstreamConnector {
            inner: Arc::new(Inner {
                tls: tls_setup(tls, protocol, roots),
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

    /// A connection to `authority` (a target's address, which always names a port), counted
    /// against the upstream's connection limit.
    pub async fn open_to(&self, authority: &Authority) -> Result<UpstreamConnection, ConnectError> {
        let slot = Slot::acquire(&self.inner.connections).ok_or(ConnectError::CircuitOpen)?;
        self.open(authority, Some(slot)).await
    }

    /// A connection that does not count against the connection limit: an active probe's, which
    /// must tell whether the target answers even while traffic holds every allowed connection.
    /// It is never pooled.
    pub async fn open_uncounted(
        &self,
        authority: &Authority,
    ) -> Result<UpstreamConnection, ConnectError> {
        self.open(authority, None).await
    }

    async fn open(
        &self,
        authority: &Authority,
        slot: Option<Slot>,
    ) -> Result<UpstreamConnection, ConnectError> {
        let inner = &self.inner;
        let tls = inner
            .tls
            .as_ref()
            .map_err(|e| ConnectError::Tls(io::Error::other(e.to_string())))?;
        let default_port = if tls.is_some() { 443 } else { 80 };
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(default_port);
        let deadline = Instant::now() + inner.connect_timeout;
        let opened = tokio::time::timeout_at(deadline, async {
            let addresses = inner
                .dns
                .resolve(host, port)
                .await
                .map_err(ConnectError::Resolve)?;
            let tcp = connect_any(&addresses, deadline).await?;
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

fn server_name(host: &str) -> Result<ServerName<'static>, ConnectError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned())
        .map_err(|e| ConnectError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))
}

/// Tries the addresses in turn, each with an equal share of the time left until `deadline`, so
/// that an address that never answers leaves time for the next ones.
async fn connect_any(
    addresses: &[SocketAddr],
    deadline: Instant,
) -> Result<TcpStream, ConnectError> {
    let mut last = ConnectError::Connect(io::Error::new(io::ErrorKind::NotFound, "no address"));
    for (tried, address) in addresses.iter().enumerate() {
        let left = u32::try_from(addresses.len() - tried).unwrap_or(u32::MAX);
        let share = deadline.saturating_duration_since(Instant::now()) / left;
        match tokio::time::timeout(share, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(error)) => last = ConnectError::Connect(error),
            Err(_) => last = ConnectError::Timeout,
        }
    }
    Err(last)
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

/// A connection to a target; its slot in `max_connections`, if it took one, is given back
/// when it closes.
pub struct UpstreamConnection {
    io: TokioIo<Stream>,
    _slot: Option<Slot>,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
            &SystemRoots::default(),
        );
        assert!(!connector.is_tls());
        let target: Authority = addr.to_string().parse().unwrap();
        let first = connector.open_to(&target).await.unwrap();
        assert_eq!(gauge.get(), 1);
        assert!(matches!(
            connector.open_to(&target).await,
            Err(ConnectError::CircuitOpen)
        ));
        let probe = connector.open_uncounted(&target).await.unwrap();
        assert_eq!(gauge.get(), 1, "a probe's connection takes no slot");
        drop((first, probe));
        assert_eq!(gauge.get(), 0);
        assert!(connector.open_to(&target).await.is_ok());
    }

    /// A listener that accepts nothing and whose backlog is full: connecting to it hangs, like
    /// connecting to an address that drops every packet.
    async fn black_hole() -> (SocketAddr, tokio::net::TcpListener, Vec<TcpStream>) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        // The backlog holds a connection or two before SYNs start going unanswered.
        while let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
        {
            queued.push(stream);
        }
        (addr, listener, queued)
    }

    #[tokio::test]
    async fn a_black_holed_address_leaves_time_for_the_next() {
        let (silent, _listener, _queued) = black_hole().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good = listener.local_addr().unwrap();
        let dns = Arc::new(DnsCache::default());
        dns.store("two.test:80".into(), Arc::from([silent, good]));
        let connector = UpstreamConnector::new(
            None,
            Protocol::Http1,
            Duration::from_secs(4),
            Arc::new(Gauge::new(None)),
            dns,
            &SystemRoots::default(),
        );
        let target: Authority = "two.test:80".parse().unwrap();
        assert!(connector.open_to(&target).await.is_ok());
    }
}
