//! Sends one routed request to an upstream: choose a target (balancer, health, tries so far),
//! hold circuit-breaker slots, apply the route's timeout and per-try timeout, retry what may be
//! retried on another target after a jittered backoff, feed passive health checking, and tunnel
//! upgraded connections (WebSocket) end to end.
//!
//! The route's timeout limits the wait for the upstream's response headers, counted from the last
//! part of the request body the client sent: a client stream (gRPC client or bidirectional
//! streaming, a long upload) is not cut while it keeps sending, and once the response headers
//! are in, the response streams for as long as it takes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use gateway_config::HashOn;
use http::header::{COOKIE, HOST, HeaderMap, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::balance::hash_key;
use crate::connector::ConnectError;
use crate::exchange::{ExchangeError, ResponseBody};
use crate::http1_pool::Pooled;
use crate::proxy::error::ProxyError;
use crate::registry::{Choice, UpstreamRuntime};
use crate::retry::{Failure, RoutePolicy};
use crate::transport::{Answer, SendError};

/// The request as it goes upstream, minus what depends on the target.
#[derive(Debug)]
pub struct Outgoing {
    pub method: Method,
    pub path: PathAndQuery,
    pub headers: HeaderMap,
    /// `Host` to send; `None` sends each target's own address.
    pub host: Option<Option<HeaderValue>>,
    /// The client side of an upgrade (WebSocket), when the request asks for one.
    pub upgrade: Option<OnUpgrade>,
}

/// The key `consistent_hash` hashes for this request, when the request carries one.
pub fn request_key(hash_on: Option<&HashOn>, headers: &HeaderMap, client: &str) -> Option<u64> {
    match hash_on? {
        HashOn::Header(name) => headers.get(name.as_str()).map(|v| hash_key(v.as_bytes())),
        HashOn::Cookie(name) => headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then(|| hash_key(value.as_bytes()))
            }),
        HashOn::ClientIp(_) => Some(hash_key(client.as_bytes())),
    }
}

/// Circuit-breaker and load slots of one request, given back when its response body ends.
#[derive(Debug)]
pub struct InFlight {
    upstream: Arc<UpstreamRuntime>,
    target: usize,
    pending: bool,
}

impl InFlight {
    fn acquire(upstream: &Arc<UpstreamRuntime>, target: usize) -> Option<Self> {
        let breaker = &upstream.breaker;
        if !breaker.requests.try_acquire() {
            return None;
        }
        if !breaker.pending.try_acquire() {
            breaker.requests.release();
            return None;
        }
        if let Some(t) = upstream.targets().get(target) {
            t.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        Some(InFlight {
            upstream: upstream.clone(),
            target,
            pending: true,
        })
    }

    fn headers_received(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.upstream.breaker.pending.release();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.headers_received();
        self.upstream.breaker.requests.release();
        if let Some(t) = self.upstream.targets().get(self.target) {
            t.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// An upstream response body, streamed through; it holds the request's slots and its HTTP/1
/// connection until it ends, and the connection goes back to the pool then.
#[derive(Debug)]
pub struct UpstreamBody {
    inner: Received,
    in_flight: Option<InFlight>,
}

#[derive(Debug)]
enum Received {
    Hyper(Incoming, Option<Pooled>),
    /// Gives its connection back by itself.
    Exchange(ResponseBody),
}

/// Why a response body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamBodyError {
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}

impl UpstreamBody {
    /// The response of `answer`, its body holding `in_flight` until it ends.
    pub fn response(answer: Answer, in_flight: Option<InFlight>) -> Response<UpstreamBody> {
        let (parts, inner) = match answer {
            Answer::Hyper(response, pooled) => {
                let (parts, body) = response.into_parts();
                (parts, Received::Hyper(body, pooled))
            }
            Answer::Exchange(response) => {
                let (parts, body) = response.into_parts();
                (parts, Received::Exchange(body))
            }
        };
        Response::from_parts(parts, UpstreamBody { inner, in_flight })
    }

    fn ended(&mut self) {
        self.in_flight = None;
        if let Received::Hyper(_, pooled) = &mut self.inner
            && let Some(pooled) = pooled.take()
        {
            pooled.give_back();
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A server that knows the body is over (its length is reached) stops polling it.
        if self.is_end_stream() {
            self.ended();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Received::Hyper(body, _) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Received::Exchange(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        };
        if matches!(polled, Poll::Ready(None)) {
            this.ended();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Received::Hyper(body, _) => body.is_end_stream(),
            Received::Exchange(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Received::Hyper(body, _) => body.size_hint(),
            Received::Exchange(body) => body.size_hint(),
        }
    }
}

pub type ProxyBody = Either<UpstreamBody, Full<Bytes>>;

/// When the client last sent part of its request body, shared between the body on its way
/// upstream and the wait for the upstream's answer.
#[derive(Debug)]
struct Activity {
    since: Instant,
    /// Microseconds from `since` to the last frame.
    last_us: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            since: Instant::now(),
            last_us: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_us.fetch_max(elapsed, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.since + Duration::from_micros(self.last_us.load(Ordering::Relaxed))
    }
}

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

/// The client's request body, streamed upstream; every frame it yields, and its end, is noted
/// so that the route's timeout counts from the last thing the client sent.
#[derive(Debug)]
pub struct RequestBody {
    inner: ClientBody,
    activity: Option<Arc<Activity>>,
}

impl RequestBody {
    /// Wraps `inner`, with the activity the wait for the answer watches when the body is not
    /// already over (a request without a body needs none).
    fn new(inner: ClientBody) -> (Self, Option<Arc<Activity>>) {
        let activity = (!inner.is_end_stream()).then(|| Arc::new(Activity::new()));
        let body = RequestBody {
            inner,
            activity: activity.clone(),
        };
        (body, activity)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_ready()
            && let Some(activity) = &this.activity
        {
            activity.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Waits for `answer` until `deadline`, or, while the client's body is on its way, until
/// `timeout` after the last part of it the client sent, whichever is later. `None` once the
/// time is up.
async fn wait_for_answer<F: Future>(
    answer: F,
    deadline: Instant,
    timeout: Duration,
    activity: Option<&Activity>,
) -> Option<F::Output> {
    tokio::pin!(answer);
    let mut deadline = deadline;
    loop {
        if let Ok(output) = tokio::time::timeout_at(deadline, &mut answer).await {
            return Some(output);
        }
        let moved = activity?.last() + timeout;
        if moved <= deadline {
            return None;
        }
        deadline = moved;
    }
}

/// Sends `request` to `upstream` and returns its response, trying again where the route allows.
pub async fn forward(
    upstream: &Arc<UpstreamRuntime>,
    mut request: Outgoing,
    body: ClientBody,
    key: Option<u64>,
    policy: Option<RoutePolicy>,
    default_timeout: Duration,
) -> Result<Response<ProxyBody>, ProxyError> {
    let policy = policy.unwrap_or_default();
    let timeout = policy.timeout.unwrap_or(default_timeout);
    let deadline = Instant::now() + timeout;
    let retries = policy
        .retries
        .filter(|r| request.upgrade.is_none() && r.allows(&request.method, body.is_end_stream()));
    let tries = 1 + retries.map_or(0, |r| r.attempts);
    let (body, activity) = RequestBody::new(body);
    let mut body = Some(body);
    let mut tried: u64 = 0;
    let mut last_error = ProxyError::UpstreamUnavailable;
    for attempt in 0..tries {
        if attempt > 0
            && let Some(retries) = retries
        {
            let wait = retries.backoff(attempt);
            if Instant::now() + wait >= deadline {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        let index = match upstream.choose(key, tried) {
            Choice::Target(index) => index,
            Choice::NoHealthyTarget => return Err(ProxyError::NoHealthyTarget),
        };
        if index < 64 {
            tried |= 1 << index;
        }
        let target = &upstream.targets()[index];
        let mut in_flight = InFlight::acquire(upstream, index).ok_or(ProxyError::CircuitOpen)?;
        let last = attempt + 1 == tries;
        let mut headers = if last {
            std::mem::take(&mut request.headers)
        } else {
            request.headers.clone()
        };
        match &request.host {
            None => {
                headers.insert(HOST, target.host_header.clone());
            }
            Some(Some(host)) => {
                headers.insert(HOST, host.clone());
            }
            Some(None) => {
                headers.remove(HOST);
            }
        }
        let mut outgoing = Request::new(match body.take() {
            Some(body) => Either::Left(body),
            None => Either::Right(Full::new(Bytes::new())),
        });
        *outgoing.method_mut() = request.method.clone();
        *outgoing.uri_mut() = Uri::from(request.path.clone());
        *outgoing.version_mut() = upstream.version;
        *outgoing.headers_mut() = headers;

        let try_deadline = retries
            .and_then(|r| r.per_try_timeout)
            .map_or(deadline, |t| (Instant::now() + t).min(deadline));
        let answer = upstream.transport.send(index, target, outgoing);
        let failure = match wait_for_answer(answer, try_deadline, timeout, activity.as_deref())
            .await
        {
            Some(Ok(answer)) => {
                in_flight.headers_received();
                let status = answer.status();
                let failed = status.is_server_error();
                upstream.record(index, failed);
                let failure = Failure::Status(status.as_u16());
                if failed && !last && retries.is_some_and(|r| r.retries_on(failure)) {
                    tracing::debug!(upstream = %upstream.name, %status, attempt, "retrying");
                    last_error = ProxyError::UpstreamUnavailable;
                    continue;
                }
                let switched = status == StatusCode::SWITCHING_PROTOCOLS;
                let response = match (answer, request.upgrade.take().filter(|_| switched)) {
                    (Answer::Hyper(mut response, pooled), Some(client)) => {
                        let server = hyper::upgrade::on(&mut response);
                        tokio::spawn(tunnel(client, server, in_flight));
                        // The connection now belongs to the tunnel.
                        drop(pooled);
                        UpstreamBody::response(Answer::Hyper(response, None), None)
                    }
                    (answer, _) => UpstreamBody::response(answer, Some(in_flight)),
                };
                return Ok(response.map(Either::Left));
            }
            Some(Err(error)) => {
                if let SendError::Connect(ConnectError::CircuitOpen) = error {
                    return Err(ProxyError::CircuitOpen);
                }
                tracing::debug!(upstream = %upstream.name, target = %target.authority,
                    error = %crate::proxy::handler::DisplayChain(&error), "upstream request failed");
                match error {
                    SendError::Connect(ConnectError::Timeout) => {
                        last_error = ProxyError::UpstreamTimeout;
                        Failure::Connect
                    }
                    SendError::Connect(_) => {
                        last_error = ProxyError::UpstreamUnavailable;
                        Failure::Connect
                    }
                    SendError::Http(_) | SendError::Exchange(_) => {
                        last_error = ProxyError::UpstreamUnavailable;
                        Failure::Reset
                    }
                }
            }
            None => {
                tracing::debug!(upstream = %upstream.name, target = %target.authority, "upstream try timed out");
                last_error = ProxyError::UpstreamTimeout;
                Failure::Timeout
            }
        };
        upstream.record(index, true);
        drop(in_flight);
        let retry = !last && retries.is_some_and(|r| r.retries_on(failure));
        if !retry || Instant::now() >= deadline {
            return Err(last_error);
        }
        tracing::debug!(upstream = %upstream.name, ?failure, attempt, "retrying");
    }
    Err(last_error)
}

/// Copies bytes both ways between the client's and the target's upgraded connections until
/// either side closes; the request keeps its slots meanwhile.
async fn tunnel(client: OnUpgrade, server: OnUpgrade, in_flight: InFlight) {
    let (client, server) = match tokio::try_join!(client, server) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(%error, "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut server = TokioIo::new(server);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
        tracing::debug!(%error, "upgraded connection ended with an error");
    }
    drop(in_flight);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_keys() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", HeaderValue::from_static("alice"));
        headers.append(COOKIE, HeaderValue::from_static("a=1; session=abc"));
        let header = request_key(Some(&HashOn::Header("x-user".into())), &headers, "1.2.3.4");
        assert_eq!(header, Some(hash_key(b"alice")));
        let cookie = request_key(Some(&HashOn::Cookie("session".into())), &headers, "");
        assert_eq!(cookie, Some(hash_key(b"abc")));
        assert_eq!(
            request_key(Some(&HashOn::Cookie("other".into())), &headers, ""),
            None
        );
        assert_eq!(
            request_key(Some(&HashOn::ClientIp(true)), &headers, "1.2.3.4"),
            Some(hash_key(b"1.2.3.4"))
        );
        assert_eq!(request_key(None, &headers, "1.2.3.4"), None);
    }

    #[tokio::test]
    async fn an_answer_in_time_is_returned_and_a_late_one_times_out() {
        let soon = Instant::now() + Duration::from_secs(5);
        let answer = wait_for_answer(async { 7 }, soon, Duration::from_secs(5), None).await;
        assert_eq!(answer, Some(7));
        let now = Instant::now();
        let never = std::future::pending::<()>();
        assert_eq!(
            wait_for_answer(never, now, Duration::ZERO, None).await,
            None
        );
    }

    #[tokio::test]
    async fn a_silent_client_does_not_hold_off_the_timeout() {
        let activity = Activity::new();
        activity.touch();
        let timeout = Duration::from_millis(20);
        let never = std::future::pending::<()>();
        let waited = wait_for_answer(never, Instant::now() + timeout, timeout, Some(&activity));
        assert_eq!(waited.await, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_keeps_sending_is_waited_for_past_the_timeout() {
        let activity = Arc::new(Activity::new());
        let timeout = Duration::from_millis(300);
        let (answered, answer) = tokio::sync::oneshot::channel();
        let sender = activity.clone();
        tokio::spawn(async move {
            // The client sends something every 10 ms for three times the timeout; the upstream
            // answers once it has everything.
            let mut pace = tokio::time::interval(Duration::from_millis(10));
            for _ in 0..90 {
                pace.tick().await;
                sender.touch();
            }
            let _ = answered.send("done");
        });
        let deadline = Instant::now() + timeout;
        let waited = wait_for_answer(answer, deadline, timeout, Some(&activity)).await;
        assert_eq!(waited.map(Result::ok), Some(Some("done")));
    }

    #[tokio::test]
    async fn the_request_body_notes_each_frame_and_its_end() {
        use http_body_util::BodyExt;

        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let tx = tx.clone();
                async move {
                    let (mut body, activity) =
                        RequestBody::new(ClientBody::Streaming(request.into_body()));
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
                    let _ = tx.send(noted);
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                }
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server_io), service)
                .await
                .unwrap();
            rx.recv().await.unwrap()
        });
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(client_io))
                .await
                .unwrap();
        tokio::spawn(connection);
        let chunks = tokio_stream::iter(["one", "two", "three"].map(|chunk| {
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(chunk.as_bytes())))
        }));
        let request = Request::post("/")
            .body(http_body_util::StreamBody::new(chunks))
            .unwrap();
        assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
        drop(sender);
        let noted = server.await.unwrap();
        assert!(noted.len() >= 2, "{noted:?}");
        assert!(noted.iter().all(|&n| n), "{noted:?}");
    }

    #[tokio::test]
    async fn a_request_without_a_body_is_not_watched() {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (_, activity) = RequestBody::new(ClientBody::Streaming(request.into_body()));
                let _ = tx.send(activity.is_none());
                async { Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new()))) }
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server_io), service)
                .await
                .unwrap();
            rx.recv().await.unwrap()
        });
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(client_io))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = Request::get("/").body(Full::new(Bytes::new())).unwrap();
        assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
        drop(sender);
        assert!(
            server.await.unwrap(),
            "a GET without a body needs no watching"
        );
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
