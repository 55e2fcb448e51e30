//! The proxy's accept loop: one port serving HTTP/1.1 and HTTP/2 with prior knowledge (h2c),
//! with header limits and a header-read timeout, and a graceful stop: stop accepting, close
//! keep-alive connections politely (HTTP/2 GOAWAY at once; HTTP/1 `Connection: close` on the
//! response in flight, or a close once the connection has been idle for a short grace, so that a
//! request a client is sending right after its previous response is answered rather than lost),
//! and let in-flight requests and streaming bodies finish up to a deadline ([`activity`]).
//!
//! Requests without a body are read and answered by the listener itself ([`http1`]); the first
//! request it leaves to hyper (a body, an upgrade, HTTP/2, a malformed head) hands the whole
//! connection over, with what was read of it put back in front ([`rewind`]). A connection is
//! served the same way whatever carries it (plain TCP now, TLS alike), and with
//! `http1_fast_path` off hyper serves every request. Between requests an HTTP/1 connection the
//! listener serves lets go of its buffers and request state ([`idle`]); the head timeout runs
//! from a head's first byte, the idle timeout between requests.

pub mod activity;
pub mod http1;
pub mod idle;
pub mod informational;
pub mod rewind;
pub mod settings;

#[cfg(test)]
#[path = "front_door_tests.rs"]
mod front_door_tests;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::ext::InformationalSender;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::rustls::HandshakeKind;

use crate::body::ClientBody;
use crate::observe::Handshake;
use crate::proxy::Proxy;
use crate::tls::TlsPeer;
use crate::upstream::exchange::Interim;
use activity::{ConnectionActivity, TrackedBody, closable, idle_for};
use informational::Relayed;
use rewind::Rewind;
use settings::HYPER_DEFAULT_MAX_HEADERS;
pub use settings::ListenerSettings;

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections still busy when the deadline passed; they are abandoned.
    pub cut_off: usize,
}

/// What every connection of one listener shares.
struct Shared {
    proxy: Arc<Proxy>,
    builder: auto::Builder<TokioExecutor>,
    settings: ListenerSettings,
    /// The drain has begun; read once per response, without the watch channel's lock.
    drain_started: AtomicBool,
}

/// One listening socket, and whether its connections start with a TLS handshake.
#[derive(Debug)]
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: bool,
}

/// Accepts connections until `shutdown` completes, then waits for open connections to finish
/// their requests (at most `drain_deadline`).
pub async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    settings: ListenerSettings,
    shutdown: impl Future<Output = ()>,
) -> DrainReport {
    let listener = Listener {
        tcp: listener,
        tls: false,
    };
    serve_all(vec![listener], proxy, settings, shutdown).await
}

/// [`serve`] on several listeners at once, plain and TLS, sharing the connection limit and one
/// drain.
pub async fn serve_all(
    listeners: Vec<Listener>,
    proxy: Arc<Proxy>,
    settings: ListenerSettings,
    shutdown: impl Future<Output = ()>,
) -> DrainReport {
    let drain_deadline = settings.drain_deadline;
    let shared = Arc::new(Shared {
        proxy,
        builder: server_builder(&settings),
        settings,
        drain_started: AtomicBool::new(false),
    });
    // Every connection task holds a receiver until it ends: the receivers count the open
    // connections, and the drain is over when they are all gone.
    let (drain, draining) = watch::channel(false);
    let open = Arc::new(tokio::sync::Semaphore::new(
        shared.settings.max_connections.max(1),
    ));
    let (stop, stopped) = watch::channel(false);
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            tokio::spawn(accept_loop(
                listener,
                shared.clone(),
                open.clone(),
                draining.clone(),
                stopped.clone(),
            ))
        })
        .collect();
    shutdown.await;
    stop.send_replace(true);
    for accepting in loops {
        // An accept loop that panicked has dropped its listener and receiver all the same.
        let _ = accepting.await;
    }
    drop(draining);
    tracing::info!(
        open_connections = drain.receiver_count(),
        deadline_ms = drain_deadline.as_millis() as u64,
        "proxy stopped accepting; draining open connections"
    );
    shared.drain_started.store(true, Ordering::SeqCst);
    drain.send_replace(true);
    let drained = tokio::time::timeout(drain_deadline, drain.closed()).await;
    let cut_off = if drained.is_ok() {
        0
    } else {
        drain.receiver_count()
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

/// Accepts connections on one listener until `stopped`, each served by a task of its own.
async fn accept_loop(
    listener: Listener,
    shared: Arc<Shared>,
    open: Arc<tokio::sync::Semaphore>,
    draining: watch::Receiver<bool>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut limit_logged: Option<Instant> = None;
    let stop = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop);
    loop {
        // Back-pressure at the limit: nothing is accepted until a connection closes.
        let permit = match open.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Once a minute at most, however often the limit is reached.
                if limit_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(
                        max_connections = shared.settings.max_connections,
                        "connection limit reached; new connections wait until one closes"
                    );
                    limit_logged = Some(Instant::now());
                }
                tokio::select! {
                    () = &mut stop => break,
                    permit = open.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, remote) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.tcp.accept() => match accepted {
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
        let shared = shared.clone();
        let draining = draining.clone();
        if listener.tls {
            tokio::spawn(async move {
                serve_tls_connection(stream, remote, shared, draining).await;
                drop(permit);
            });
        } else {
            let connection = serve_connection(stream, remote, shared, draining, None);
            tokio::spawn(async move {
                connection.await;
                drop(permit);
            });
        }
    }
}

/// Runs the TLS handshake of a connection, with the certificates of the config served when it
/// starts, then serves it like any other.
async fn serve_tls_connection(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    draining: watch::Receiver<bool>,
) {
    let state = shared.proxy.state().clone();
    let metrics_state = state.clone();
    let handshake = crate::tls::accept(
        stream,
        move || state.current().map(|compiled| compiled.tls.clone()),
        shared.settings.header_read_timeout,
    );
    match handshake.await {
        Ok((stream, peer)) => {
            let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
            metrics_state.metrics().handshake(if resumed {
                Handshake::Resumed
            } else {
                Handshake::Full
            });
            Box::pin(serve_connection(
                stream,
                remote,
                shared,
                draining,
                Some(Arc::new(peer)),
            ))
            .await;
        }
        Err(failure) => {
            metrics_state.metrics().handshake(failure.outcome());
            tracing::debug!(%remote, error = %failure, "TLS handshake failed");
        }
    }
}

/// Serves one client connection until it ends: by the listener's own HTTP/1 code while its
/// requests have no body, then by hyper. `draining` is held until the connection ends.
///
/// While the connection waits for a request this future holds only the connection and a few
/// shared handles ([`idle`]); serving requests (and hyper's whole connection) lives in
/// allocations of its own, made when bytes arrive.
async fn serve_connection<S>(
    mut stream: S,
    remote: SocketAddr,
    shared: Arc<Shared>,
    mut draining: watch::Receiver<bool>,
    tls: Option<Arc<TlsPeer>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(ConnectionActivity::new(Instant::now()));
    // HTTP/2 agreed by ALPN goes to hyper at once: the listener's own code serves HTTP/1 only.
    let h2 = tls.as_ref().is_some_and(|t| t.h2);
    let peer = Arc::new(shared.proxy.peer_over(remote, tls));
    let settings = &shared.settings;
    // A new connection has the head timeout to start its first request; one kept open between
    // requests has the idle timeout, the first moments of which it spent holding its buffers.
    let mut wait = settings.header_read_timeout;
    // One timer for the connection's life, moved rather than made anew for every wait.
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    let handed_off = loop {
        deadline.as_mut().reset(Instant::now() + wait);
        let first = tokio::select! {
            biased;
            first = idle::first_bytes(&mut stream) => first,
            () = deadline.as_mut() => return,
            () = closable(&mut draining, &activity, settings.drain_idle_grace) => return,
        };
        let read = match first {
            Ok(read) if !read.is_empty() => read,
            _ => return,
        };
        if !settings.http1_fast_path || h2 {
            break Rewind::new(read.freeze(), stream);
        }
        let drain = http1::Drain {
            signal: &mut draining,
            started: &shared.drain_started,
        };
        let serving = http1::serve(
            stream,
            read,
            deadline.as_mut(),
            http1::Shared {
                proxy: &shared.proxy,
                peer: &peer,
                activity: &activity,
                settings,
            },
            drain,
        );
        match Box::pin(serving).await {
            http1::Ended::Closed => return,
            http1::Ended::HandOff(stream) => break stream,
            http1::Ended::Idle(idle) => {
                stream = idle;
                wait = settings.idle_timeout.saturating_sub(idle::RELEASE_AFTER);
            }
        }
    };
    Box::pin(serve_with_hyper(
        handed_off, remote, &shared, draining, activity, peer,
    ))
    .await;
}

/// Serves the rest of a connection with hyper, starting with the bytes already read from it.
async fn serve_with_hyper<S>(
    stream: Rewind<S>,
    remote: SocketAddr,
    shared: &Shared,
    mut draining: watch::Receiver<bool>,
    activity: Arc<ConnectionActivity>,
    peer: Arc<crate::proxy::Peer>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tracked = activity.clone();
    let proxy = shared.proxy.clone();
    let max_requests = shared.settings.max_requests_per_connection;
    let service = service_fn(move |mut request: Request<Incoming>| {
        let proxy = proxy.clone();
        let peer = peer.clone();
        let in_flight = tracked.request_started(request.version());
        if tracked.at_request_limit(max_requests) {
            tracked.last_request_started();
        }
        // Boxed: hyper keeps room for the request's future for the connection's whole life, and
        // a pointer is all it then holds while the connection is idle.
        Box::pin(async move {
            // hyper gives one to requests whose client takes informational responses.
            let sender = request.extensions_mut().remove::<InformationalSender>();
            let relayed = Relayed::for_request(request.version(), request.headers());
            let request = request.map(ClientBody::Streaming);
            let response = match &sender {
                Some(sender) => {
                    let interim = Interim::default();
                    let handled =
                        std::pin::pin!(proxy.handle_with_interim(request, &peer, Some(&interim)));
                    informational::relay(handled, &interim, sender, relayed).await
                }
                None => proxy.handle(request, &peer).await,
            };
            Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, in_flight)))
        })
    });
    let connection = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = closable(&mut draining, &activity, shared.settings.drain_idle_grace) => {
            // HTTP/1: closes an idle connection, or answers the request in flight with
            // `Connection: close`; HTTP/2: GOAWAY, then in-flight streams finish.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = idle_for(&activity, shared.settings.idle_timeout) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        // HTTP/1: the response in flight says `Connection: close`; HTTP/2: GOAWAY.
        () = activity.last_request() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = ended {
        tracing::debug!(%error, %remote, "client connection ended with an error");
    }
}

fn server_builder(settings: &ListenerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(settings.max_header_bytes.max(8192));
    // hyper parses up to its default number of headers into an uninitialised stack array; any
    // explicit limit, even the same number, makes it fill a buffer of that size on every request.
    if settings.max_headers != HYPER_DEFAULT_MAX_HEADERS {
        builder.http1().max_headers(settings.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
    builder
}
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// What a connection holds while it waits for a request is, for the most part, the future
    /// serving it: the state of serving a request must not be part of it.
    #[tokio::test]
    async fn a_waiting_connection_holds_a_small_future() {
        let state = Arc::new(crate::served::State::new(crate::served::NodeIdentity {
            id: "test".into(),
            group: "default".into(),
        }));
        let proxy = Arc::new(Proxy::new(state, crate::proxy::ProxySettings::default()));
        let settings = ListenerSettings::default();
        let shared = Arc::new(Shared {
            proxy: proxy.clone(),
            builder: server_builder(&settings),
            settings,
            drain_started: AtomicBool::new(false),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (_drain, draining) = watch::channel(false);
        let connection = serve_connection(stream, addr, shared, draining, None);
        let held = std::mem::size_of_val(&connection);
        assert!(
            held <= 1024,
            "a waiting connection's future is {held} bytes"
        );
        let peer = proxy.peer(addr);
        let request = proxy.handle(Request::new(ClientBody::Empty), &peer);
        assert!(
            std::mem::size_of_val(&request) > 4 * held,
            "the test would not notice a request's state in the connection's future"
        );
    }
}
