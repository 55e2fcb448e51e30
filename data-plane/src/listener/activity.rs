//! What a client connection is doing, as far as the drain needs to know, and when a draining
//! connection may be closed without losing a request: at once for HTTP/2 (GOAWAY tells the
//! client which requests were taken) and for a connection with a request in flight (it answers
//! with `Connection: close`), otherwise once it has been idle for a short grace.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Version;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Completes once the drain has begun and the connection may be closed without losing a request:
/// at once for HTTP/2 (GOAWAY tells the client which requests were taken) and for a connection
/// with a request in flight, otherwise once it has been idle for `idle_grace`.
pub async fn closable(
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

/// Completes once the connection has had no request in flight for `timeout` (HTTP/2 above all:
/// hyper closes an idle HTTP/1 connection itself, when its header timeout passes).
pub async fn idle_for(activity: &ConnectionActivity, timeout: Duration) {
    loop {
        let now = Instant::now();
        let at = match activity.idle_since() {
            Some(since) => since + timeout,
            // Busy: look again a timeout later; a request that ends meanwhile starts the count.
            None => now + timeout,
        };
        if at <= now {
            return;
        }
        tokio::time::sleep_until(at).await;
        if activity
            .idle_since()
            .is_some_and(|since| since + timeout <= Instant::now())
        {
            return;
        }
    }
}

/// What a client connection is doing, as far as the drain needs to know: requests in flight (a
/// request counts until its response body has been sent), since when it has been idle, and
/// whether it speaks HTTP/2.
#[derive(Debug)]
pub struct ConnectionActivity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// When the last response ended, in nanoseconds after `opened`.
    idle_since_nanos: AtomicU64,
    http2: AtomicBool,
    request_arrived: Notify,
    /// Requests started on the connection, on either path.
    started: AtomicUsize,
    /// Told when the connection's last allowed request has started.
    last_request: Notify,
}

impl ConnectionActivity {
    pub fn new(opened: Instant) -> ConnectionActivity {
        ConnectionActivity {
            opened,
            in_flight: AtomicUsize::new(0),
            idle_since_nanos: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            request_arrived: Notify::new(),
            started: AtomicUsize::new(0),
            last_request: Notify::new(),
        }
    }

    pub fn request_started(self: &Arc<Self>, version: Version) -> RequestInFlight {
        if version == Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::Relaxed);
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

    /// Whether the requests started on the connection have reached `limit` (0: no limit).
    pub fn at_request_limit(&self, limit: usize) -> bool {
        limit > 0 && self.started.load(Ordering::Relaxed) >= limit
    }

    /// Says that the connection's last allowed request has started.
    pub fn last_request_started(&self) {
        self.last_request.notify_one();
    }

    /// Completes once [`ConnectionActivity::last_request_started`] has been called.
    pub async fn last_request(&self) {
        self.last_request.notified().await;
    }

    /// Since when no request has been in flight; `None` while one is.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(self.opened + Duration::from_nanos(self.idle_since_nanos.load(Ordering::SeqCst)))
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
pub struct RequestInFlight {
    activity: Arc<ConnectionActivity>,
}

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        self.activity.request_ended(Instant::now());
    }
}

/// A response body that keeps its request counted as in flight until hyper is done with it.
#[derive(Debug)]
pub struct TrackedBody<B> {
    body: B,
    _in_flight: RequestInFlight,
}

impl<B> TrackedBody<B> {
    pub fn new(body: B, in_flight: RequestInFlight) -> Self {
        TrackedBody {
            body,
            _in_flight: in_flight,
        }
    }
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
