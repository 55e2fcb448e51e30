//! The proxy's accept loop: one port serving HTTP/1.1 and HTTP/2 with prior knowledge (h2c),
//! with header limits and a header-read timeout, and a graceful stop: stop accepting, close idle
//! keep-alive connections politely (HTTP/1 `Connection: close` on the next response, HTTP/2
//! GOAWAY), and let in-flight requests and streaming bodies finish up to a deadline.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::proxy::Proxy;

/// Limits of the client side of the proxy.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// Time a client has to send a complete HTTP/1 request head.
    pub header_read_timeout: Duration,
    /// Largest request head accepted (bytes).
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// How long in-flight requests may run after accepting stopped.
    pub drain_deadline: Duration,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            drain_deadline: Duration::from_secs(30),
        }
    }
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections still busy when the deadline passed; they are abandoned.
    pub cut_off: usize,
}

/// Accepts connections until `shutdown` completes, then waits for open connections to finish
/// their requests (at most `drain_deadline`).
pub async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    settings: ListenerSettings,
    shutdown: impl Future<Output = ()>,
) -> DrainReport {
    let builder = server_builder(&settings);
    let graceful = GracefulShutdown::new();
    let open_connections = Arc::new(());
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually file-descriptor exhaustion: back off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let peer = Arc::new(proxy.peer(remote));
        let proxy = proxy.clone();
        let service = service_fn(move |request| {
            let proxy = proxy.clone();
            let peer = peer.clone();
            async move { Ok::<_, Infallible>(proxy.handle(request, &peer).await) }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        let open = open_connections.clone();
        tokio::spawn(async move {
            let _open = open;
            if let Err(error) = connection.await {
                tracing::debug!(%error, %remote, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(
        open_connections = open,
        deadline_ms = settings.drain_deadline.as_millis() as u64,
        "proxy stopped accepting; draining open connections"
    );
    let drained = tokio::time::timeout(settings.drain_deadline, graceful.shutdown()).await;
    let cut_off = if drained.is_ok() {
        0
    } else {
        // Every connection task holds one clone until it ends.
        Arc::strong_count(&open_connections) - 1
    };
    if cut_off > 0 {
        tracing::warn!(
            connections = cut_off,
            "drain deadline passed; cutting off connections still in flight"
        );
    } else {
        tracing::info!("all connections drained");
    }
    DrainReport { cut_off }
}

fn server_builder(settings: &ListenerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(settings.max_header_bytes.max(8192))
        .max_headers(settings.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
    builder
}
