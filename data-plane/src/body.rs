//! Request bodies on their way through the worker: the client's body as it was received
//! ([`ClientBody`]), the same body streamed upstream while noting when the client last sent part
//! of it ([`RequestBody`]), and what an upstream connection is given to send ([`ForwardBody`]).
//! Response bodies are the upstream's (see `upstream::body`) or the worker's own answers, which
//! are always [`LocalBody`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::time::Instant;

/// A body the worker builds in memory: its own answers, and the empty body of a retried or
/// probing request.
pub type LocalBody = Full<Bytes>;

/// Request bodies sent upstream: the client's, streamed, or one built in memory.
pub type ForwardBody = Either<RequestBody, LocalBody>;

/// A client's request body as it was received: none at all (a request the listener read
/// itself), or hyper's stream.
#[derive(Debug)]
pub enum ClientBody {
    Empty,
    Streaming(Incoming),
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ClientBody::Empty => Poll::Ready(None),
            ClientBody::Streaming(incoming) => Pin::new(incoming).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Empty => true,
            ClientBody::Streaming(incoming) => incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Empty => SizeHint::with_exact(0),
            ClientBody::Streaming(incoming) => incoming.size_hint(),
        }
    }
}

/// When the client last sent part of its request body, shared between the body on its way
/// upstream and the wait for the upstream's answer.
#[derive(Debug)]
pub struct Activity {
    since: Instant,
    /// Microseconds from `since` to the last frame.
    last_us: AtomicU64,
    /// The client's body failed (malformed chunks, or the client went away mid-body).
    failed: std::sync::atomic::AtomicBool,
    /// The client sent nothing of its body for the body read timeout.
    stalled: std::sync::atomic::AtomicBool,
    /// The client's body passed the route's size limit.
    too_large: std::sync::atomic::AtomicBool,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            since: Instant::now(),
            last_us: AtomicU64::new(0),
            failed: std::sync::atomic::AtomicBool::new(false),
            stalled: std::sync::atomic::AtomicBool::new(false),
            too_large: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the client's body passed the route's size limit.
    pub fn client_too_large(&self) -> bool {
        self.too_large.load(Ordering::Relaxed)
    }

    /// Whether the client stopped sending its body for longer than the body read timeout.
    pub fn client_stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// Whether the client's body failed: then a failed exchange is the client's fault, not
    /// the upstream's.
    pub fn client_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Notes that the client sent something now.
    pub fn touch(&self) {
        let elapsed = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_us.fetch_max(elapsed, Ordering::Relaxed);
    }

    /// When the client last sent part of its body.
    pub fn last(&self) -> Instant {
        self.since + Duration::from_micros(self.last_us.load(Ordering::Relaxed))
    }
}

/// Why the client's body stopped on its way upstream.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the client's request body failed: {0}")]
    Client(#[from] hyper::Error),
    #[error("the client sent nothing of its request body for {0:?}")]
    Stalled(Duration),
    #[error("the client's request body arrived slower than {0} bytes a second")]
    TooSlow(u64),
    #[error("the client's request body is larger than the route's {0} bytes")]
    TooLarge(u64),
}

/// How fast a client must send its body: nothing for `read_timeout` at any point, and, past
/// the first `read_timeout` of waiting, at least `min_rate` bytes a second on average (0: no
/// minimum). Only time spent waiting for the client counts, not time the upstream took to
/// read what it was sent.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    pub read_timeout: Duration,
    pub min_rate: u64,
}

/// Where a body stands against its [`BodyPace`].
#[derive(Debug)]
struct PaceKept {
    pace: BodyPace,
    received: u64,
    /// Time spent waiting for the client so far, the wait in progress excluded.
    waited: Duration,
    /// When the wait in progress began.
    waiting_since: Option<Instant>,
}

impl PaceKept {
    /// When the wait beginning now must end, and the error if it does not.
    fn deadline(&self, now: Instant) -> (Instant, BodyError) {
        let read = (
            self.pace.read_timeout,
            BodyError::Stalled(self.pace.read_timeout),
        );
        if self.pace.min_rate == 0 {
            return (now + read.0, read.1);
        }
        let earned = self.pace.read_timeout
            + Duration::from_secs_f64(self.received as f64 / self.pace.min_rate as f64);
        let rate_allows = earned.saturating_sub(self.waited);
        if rate_allows < read.0 {
            (now + rate_allows, BodyError::TooSlow(self.pace.min_rate))
        } else {
            (now + read.0, read.1)
        }
    }
}

/// The client's request body, streamed upstream; every frame it yields, and its end, is noted
/// so that the route's timeout counts from the last thing the client sent. A client that keeps
/// to no [`BodyPace`] ends it with [`BodyError::Stalled`] or [`BodyError::TooSlow`], so that a
/// trickling client holds neither a connection of its own nor an upstream one for ever.
#[derive(Debug)]
pub struct RequestBody {
    inner: ClientBody,
    activity: Option<Arc<Activity>>,
    pace: PaceKept,
    /// The route's size limit, against the bytes `pace` counts.
    limit: Option<u64>,
    /// Armed while the body is waited for; `None` once it has ended (or for none at all).
    stall: Option<(Pin<Box<tokio::time::Sleep>>, Option<BodyError>)>,
}

impl RequestBody {
    /// Wraps `inner`, with the activity the wait for the answer watches when the body is not
    /// already over (a request without a body needs none). A body longer than `limit` bytes
    /// ends with [`BodyError::TooLarge`] as soon as it passes it.
    pub fn new(
        inner: ClientBody,
        pace: BodyPace,
        limit: Option<u64>,
    ) -> (Self, Option<Arc<Activity>>) {
        let streaming = !inner.is_end_stream();
        let activity = streaming.then(|| Arc::new(Activity::new()));
        let body = RequestBody {
            inner,
            activity: activity.clone(),
            pace: PaceKept {
                pace,
                received: 0,
                waited: Duration::ZERO,
                waiting_since: None,
            },
            limit,
            stall: streaming.then(|| (Box::pin(tokio::time::sleep(pace.read_timeout)), None)),
        };
        (body, activity)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match polled {
            Poll::Pending => {
                let Some((stall, error)) = &mut this.stall else {
                    return Poll::Pending;
                };
                if this.pace.waiting_since.is_none() {
                    let now = Instant::now();
                    let (deadline, why) = this.pace.deadline(now);
                    this.pace.waiting_since = Some(now);
                    stall.as_mut().reset(deadline);
                    *error = Some(why);
                }
                if stall.as_mut().poll(cx).is_ready() {
                    let error = error
                        .take()
                        .unwrap_or(BodyError::Stalled(this.pace.pace.read_timeout));
                    this.stall = None;
                    if let Some(activity) = &this.activity {
                        activity.stalled.store(true, Ordering::Relaxed);
                        activity.failed.store(true, Ordering::Relaxed);
                    }
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Pending
            }
            Poll::Ready(frame) => {
                if let Some(activity) = &this.activity {
                    activity.touch();
                    if matches!(frame, Some(Err(_))) {
                        activity.failed.store(true, Ordering::Relaxed);
                    }
                }
                if let Some(since) = this.pace.waiting_since.take() {
                    this.pace.waited += since.elapsed();
                }
                match &frame {
                    Some(Ok(frame)) if this.stall.is_some() => {
                        if let Some(data) = frame.data_ref() {
                            this.pace.received += data.len() as u64;
                            if let Some(limit) = this.limit
                                && this.pace.received > limit
                            {
                                this.stall = None;
                                if let Some(activity) = &this.activity {
                                    activity.too_large.store(true, Ordering::Relaxed);
                                    activity.failed.store(true, Ordering::Relaxed);
                                }
                                return Poll::Ready(Some(Err(BodyError::TooLarge(limit))));
                            }
                        }
                    }
                    _ => this.stall = None,
                }
                Poll::Ready(frame.map(|frame| frame.map_err(BodyError::from)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::{Request, Response};
    use hyper_util::rt::TokioIo;

    use super::*;

    const TEST_PACE: BodyPace = BodyPace {
        read_timeout: Duration::from_secs(30),
        min_rate: 0,
    };

    fn kept(min_rate: u64, received: u64, waited: Duration) -> PaceKept {
        PaceKept {
            pace: BodyPace {
                read_timeout: Duration::from_secs(10),
                min_rate,
            },
            received,
            waited,
            waiting_since: None,
        }
    }

    #[test]
    fn the_pace_allows_the_read_timeout_and_then_what_the_rate_earned() {
        let now = Instant::now();
        let wait = |kept: PaceKept| {
            let (deadline, why) = kept.deadline(now);
            (deadline - now, matches!(why, BodyError::TooSlow(_)))
        };
        let secs = Duration::from_secs;
        // No minimum: the read timeout, however long the body has been waited for.
        assert_eq!(wait(kept(0, 0, secs(1000))), (secs(10), false));
        // Within the first read timeout of waiting, the read timeout.
        assert_eq!(wait(kept(100, 0, Duration::ZERO)), (secs(10), false));
        // 8 s waited, nothing received: 2 s left of the grace.
        assert_eq!(wait(kept(100, 0, secs(8))), (secs(2), true));
        // 500 bytes at 100 B/s earned 5 s more.
        assert_eq!(wait(kept(100, 500, secs(8))), (secs(7), true));
        // Waited longer than earned: no time at all.
        assert_eq!(wait(kept(100, 500, secs(20))), (Duration::ZERO, true));
        // Plenty earned: the read timeout again.
        assert_eq!(wait(kept(100, 1_000_000, secs(20))), (secs(10), false));
    }

    /// Sends `request` over a real hyper HTTP/1 connection and returns what `inspect` made of
    /// the body the server received.
    async fn as_received<B, F, Fut, T>(request: Request<B>, inspect: F) -> T
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        F: Fn(Incoming) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = T> + Send,
        T: Send + 'static,
    {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let inspect = Arc::new(inspect);
        let server = tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (tx, inspect) = (tx.clone(), inspect.clone());
                async move {
                    let _ = tx.send(inspect(request.into_body()).await);
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                }
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server_io), service)
                .await
                .unwrap();
        });
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(client_io))
                .await
                .unwrap();
        tokio::spawn(connection);
        assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
        drop(sender);
        server.await.unwrap();
        rx.recv().await.unwrap()
    }

    #[tokio::test]
    async fn the_request_body_notes_each_frame_and_its_end() {
        use http_body_util::BodyExt;

        let chunks = tokio_stream::iter(["one", "two", "three"].map(|chunk| {
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(chunk.as_bytes())))
        }));
        let request = Request::post("/")
            .body(http_body_util::StreamBody::new(chunks))
            .unwrap();
        let noted = as_received(request, |incoming| async move {
            let (mut body, activity) =
                RequestBody::new(ClientBody::Streaming(incoming), TEST_PACE, None);
            let activity = activity.unwrap();
            let mut noted = Vec::new();
            loop {
                // Let the clock move past the last note first, so a missed one shows.
                let before = loop {
                    let now = Instant::now();
                    if now > activity.last() + Duration::from_micros(2) {
                        break now;
                    }
                    std::hint::spin_loop();
                };
                let frame = body.frame().await;
                // `last` is kept in whole microseconds.
                noted.push(activity.last() + Duration::from_micros(1) >= before);
                if frame.is_none() {
                    break;
                }
            }
            noted
        })
        .await;
        assert!(noted.len() >= 2, "{noted:?}");
        assert!(noted.iter().all(|&n| n), "{noted:?}");
    }

    #[tokio::test]
    async fn a_request_without_a_body_is_not_watched() {
        let request = Request::get("/").body(Full::new(Bytes::new())).unwrap();
        let unwatched = as_received(request, |incoming| async move {
            let (_, activity) = RequestBody::new(ClientBody::Streaming(incoming), TEST_PACE, None);
            activity.is_none()
        })
        .await;
        assert!(unwatched, "a GET without a body needs no watching");
    }

    #[test]
    fn activity_only_moves_forward() {
        let activity = Activity::new();
        let start = activity.last();
        activity.touch();
        let touched = activity.last();
        assert!(touched >= start);
        activity.last_us.store(u64::MAX / 2, Ordering::Relaxed);
        activity.touch();
        assert_eq!(activity.last_us.load(Ordering::Relaxed), u64::MAX / 2);
    }
}
