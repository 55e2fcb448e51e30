//! The proxy's accept loop: one port serving HTTP/1.1 and HTTP/2 with prior knowledge (h2c),
//! with header limits and a header-read timeout, and a graceful stop: stop accepting, close
//! keep-alive connections politely (HTTP/2 GOAWAY at once; HTTP/1 `Connection: close` on the
//! response in flight, or a close once the connection has been idle for a short grace, so that a
//! request a client is sending right after its previous response is answered rather than lost),
//! and let in-flight requests and streaming bodies finish up to a deadline.
//!
//! Requests without a body are read and answered by the listener itself (`http1`); the first
//! request it leaves to hyper (a body, an upgrade, HTTP/2, a malformed head) hands the whole
//! connection over, with what was read of it put back in front (`rewind`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::forward::ClientBody;
use crate::proxy::Proxy;

mod http1;
mod rewind;
mod wire;

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
    /// While draining, how long an HTTP/1 connection must have been idle before it is closed. A
    /// client that got a response a moment ago may be sending its next request already; closing
    /// under it would lose that request, so it is answered with `Connection: close` instead.
    pub drain_idle_grace: Duration,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: HYPER_DEFAULT_MAX_HEADERS,
            drain_deadline: Duration::from_secs(30),
            drain_idle_grace: Duration::from_secs(1),
        }
    }
}

/// The number of request headers hyper accepts when no limit is set.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

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
    let builder = Arc::new(server_builder(&settings));
    let settings = Arc::new(settings);
    // Every connection task holds a receiver until it ends: the receivers count the open
    // connections, and the drain is over when they are all gone.
    let (drain, draining) = watch::channel(false);
    // The same news for the request path, which reads it without taking the channel's lock.
    let drain_started = Arc::new(AtomicBool::new(false));
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
        let activity = Arc::new(ConnectionActivity::new(Instant::now()));
        let peer = Arc::new(proxy.peer(remote));
        let proxy = proxy.clone();
        let builder = builder.clone();
        let settings = settings.clone();
        let mut draining = draining.clone();
        let drain_started = drain_started.clone();
        tokio::spawn(async move {
            let drain = http1::Drain {
                signal: &mut draining,
                started: &drain_started,
            };
            let ended = http1::serve(stream, &proxy, &peer, &activity, drain, &settings).await;
            let http1::Ended::HandOff(stream) = ended else {
                return;
            };
            let tracked = activity.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let proxy = proxy.clone();
                let peer = peer.clone();
                let in_flight = tracked.request_started(request.version());
                async move {
                    let response = proxy
                        .handle(request.map(ClientBody::Streaming), &peer)
                        .await;
                    Ok::<_, Infallible>(response.map(|body| TrackedBody {
                        body,
                        _in_flight: in_flight,
                    }))
                }
            });
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = closable(&mut draining, &activity, settings.drain_idle_grace) => {
                    // HTTP/1: closes an idle connection, or answers the request in flight with
                    // `Connection: close`; HTTP/2: GOAWAY, then in-flight streams finish.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, %remote, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(draining);
    tracing::info!(
        open_connections = drain.receiver_count(),
        deadline_ms = settings.drain_deadline.as_millis() as u64,
        "proxy stopped accepting; draining open connections"
    );
    drain_started.store(true, Ordering::SeqCst);
    drain.send_replace(true);
    let drained = tokio::time::timeout(settings.drain_deadline, drain.closed()).await;
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

/// Completes once the drain has begun and the connection may be closed without losing a request:
/// at once for HTTP/2 (GOAWAY tells the client which requests were taken) and for a connection
/// with a request in flight, otherwise once it has been idle for `idle_grace`.
async fn closable(
    draining: &mut watch::Receiver<bool>,
    activity: &ConnectionActivity,
    idle_grace: Duration,
) {
    // An error means the accept loop is gone without draining: the process is stopping anyway.
    let _ = draining.wait_for(|draining| *draining).await;
    while let Some(at) = activity.close_at(idle_grace, Instant::now()) {
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = activity.request_arrived.notified() => {}
        }
    }
}

/// What a client connection is doing, as far as the drain needs to know: requests in flight (a
/// request counts until its response body has been sent), since when it has been idle, and
/// whether it speaks HTTP/2.
#[derive(Debug)]
struct ConnectionActivity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// When the last response ended, in nanoseconds after `opened`.
    idle_since_nanos: AtomicU64,
    http2: AtomicBool,
    request_arrived: Notify,
}

impl ConnectionActivity {
    fn new(opened: Instant) -> ConnectionActivity {
        ConnectionActivity {
            opened,
            in_flight: AtomicUsize::new(0),
            idle_since_nanos: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            request_arrived: Notify::new(),
        }
    }

    fn request_started(self: &Arc<Self>, version: Version) -> RequestInFlight {
        if version == Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.request_arrived.notify_one();
        RequestInFlight {
            activity: self.clone(),
        }
    }

    fn request_ended(&self, now: Instant) {
        let nanos = u64::try_from(now.saturating_duration_since(self.opened).as_nanos());
        self.idle_since_nanos
            .store(nanos.unwrap_or(u64::MAX), Ordering::SeqCst);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// When a draining connection may be closed: `None` for now, or the moment its idle grace
    /// runs out (a request arriving before then moves it to now).
    fn close_at(&self, idle_grace: Duration, now: Instant) -> Option<Instant> {
        if self.http2.load(Ordering::Relaxed) || self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let idle_since =
            self.opened + Duration::from_nanos(self.idle_since_nanos.load(Ordering::SeqCst));
        let at = idle_since + idle_grace;
        (at > now).then_some(at)
    }
}

/// Counts one request as in flight on its connection until dropped.
#[derive(Debug)]
struct RequestInFlight {
    activity: Arc<ConnectionActivity>,
}

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        self.activity.request_ended(Instant::now());
    }
}

/// A response body that keeps its request counted as in flight until hyper is done with it.
#[derive(Debug)]
struct TrackedBody<B> {
    body: B,
    _in_flight: RequestInFlight,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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

    const GRACE: Duration = Duration::from_secs(1);

    #[test]
    fn http2_and_requests_in_flight_may_be_closed_at_once() {
        let opened = Instant::now();
        let activity = Arc::new(ConnectionActivity::new(opened));
        let in_flight = activity.request_started(Version::HTTP_11);
        assert_eq!(activity.close_at(GRACE, opened), None);
        drop(in_flight);

        let http2 = Arc::new(ConnectionActivity::new(opened));
        drop(http2.request_started(Version::HTTP_2));
        assert_eq!(http2.close_at(GRACE, Instant::now()), None);
    }

    #[test]
    fn an_idle_http1_connection_waits_out_its_grace_from_its_last_response() {
        let opened = Instant::now();
        let activity = Arc::new(ConnectionActivity::new(opened));
        // No request yet: idle since it was opened.
        assert_eq!(activity.close_at(GRACE, opened), Some(opened + GRACE));
        assert_eq!(activity.close_at(GRACE, opened + GRACE), None);

        drop(activity.request_started(Version::HTTP_11));
        let ended = Instant::now();
        let at = activity
            .close_at(GRACE, ended)
            .expect("a response just ended");
        assert!(at > ended && at <= ended + GRACE, "{at:?} vs {ended:?}");
        assert_eq!(activity.close_at(GRACE, at), None);
    }

    #[test]
    fn a_request_arriving_wakes_the_drain() {
        let activity = Arc::new(ConnectionActivity::new(Instant::now()));
        let _in_flight = activity.request_started(Version::HTTP_11);
        // The permit is kept for a drain that starts waiting only afterwards.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), activity.request_arrived.notified())
                .await
                .unwrap();
        });
    }
}
