//! Sends one routed request to an upstream: choose a target (balancer, health, tries so far),
//! hold circuit-breaker slots, apply the route's timeout and per-try timeout, retry what may be
//! retried on another target after a jittered backoff, feed passive health checking, and hand
//! upgraded connections (WebSocket) to the tunnel.
//!
//! The route's timeout limits the wait for the upstream's response headers, counted from the last
//! part of the request body the client sent: a client stream (gRPC client or bidirectional
//! streaming, a long upload) is not cut while it keeps sending, and once the response headers
//! are in, the response streams for as long as it takes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{Either, Full};
use hyper::upgrade::OnUpgrade;
use tokio::time::Instant;

use super::body::ProxyBody;
use super::forwarding::readable_response_framing;
use super::tunnel;
use crate::body::{Activity, BodyPace, ClientBody, RequestBody};
use crate::error::{DisplayChain, ProxyError};
use crate::filters::rewrite::UpstreamHost;
use crate::retry::{Failure, RoutePolicy};
use crate::upstream::body::UpstreamBody;
use crate::upstream::connector::ConnectError;
use crate::upstream::error::SendError;
use crate::upstream::exchange::Interim;
use crate::upstream::in_flight::InFlight;
use crate::upstream::transport::Answer;
use crate::upstream::{Choice, UpstreamRuntime};

/// The request as it goes upstream, minus what depends on the target.
#[derive(Debug)]
pub struct Outgoing {
    pub method: Method,
    pub path: PathAndQuery,
    pub headers: HeaderMap,
    /// The `Host` to send.
    pub host: UpstreamHost,
    /// The client side of an upgrade (WebSocket), when the request asks for one.
    pub upgrade: Option<OnUpgrade>,
    /// The protocol of that upgrade.
    pub upgrade_protocol: Option<HeaderValue>,
    /// The route's limit on the body's bytes.
    pub body_limit: Option<u64>,
}

/// Waits for `answer` until `deadline`, or, while the client's body is on its way, until
/// `timeout` after the last part of it the client sent, whichever is later. `None` once the
/// time is up.
///
/// `answer` comes pinned by the caller: a future taken by value and pinned here would be stored
/// twice in this one's state (the argument and the pinned copy), which doubles the size of every
/// request's future above it.
async fn wait_for_answer<F: Future>(
    mut answer: Pin<&mut F>,
    deadline: Instant,
    timeout: Duration,
    activity: Option<&Activity>,
) -> Option<F::Output> {
    let mut deadline = deadline;
    loop {
        if let Ok(output) = tokio::time::timeout_at(deadline, answer.as_mut()).await {
            return Some(output);
        }
        let moved = activity?.last() + timeout;
        if moved <= deadline {
            return None;
        }
        deadline = moved;
    }
}

/// The time limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For the response headers, when the route sets no `timeout`.
    pub default: Duration,
    /// The client's own deadline (`grpc-timeout`), which wins when shorter.
    pub client: Option<Duration>,
    /// How fast the client must send its request body.
    pub body: BodyPace,
}

/// Whether a 101 answers the upgrade the client asked for (and the route allowed): the upstream
/// switched to that protocol.
fn switched_as_asked(answer: &Answer, asked: Option<&HeaderValue>) -> bool {
    let Some(asked) = asked else {
        return false;
    };
    answer
        .headers()
        .get(http::header::UPGRADE)
        .is_some_and(|p| {
            p.as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(asked.as_bytes().trim_ascii())
        })
}

/// Sends `request` to `upstream` and returns its response, trying again where the route allows.
pub async fn forward(
    upstream: &Arc<UpstreamRuntime>,
    mut request: Outgoing,
    body: ClientBody,
    key: Option<u64>,
    policy: Option<RoutePolicy>,
    timeouts: Timeouts,
    interim: Option<&Interim>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let policy = policy.unwrap_or_default();
    let timeout = policy.timeout.unwrap_or(timeouts.default);
    // A client's own deadline (gRPC's `grpc-timeout`) when it is the shorter one.
    let timeout = timeouts
        .client
        .map_or(timeout, |client| client.min(timeout));
    let deadline = Instant::now() + timeout;
    let retries = policy
        .retries
        .filter(|r| request.upgrade.is_none() && r.allows(&request.method, body.is_end_stream()));
    let tries = 1 + retries.map_or(0, |r| r.attempts);
    let (body, activity) = RequestBody::new(body, timeouts.body, request.body_limit);
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
            UpstreamHost::Target => {
                headers.insert(HOST, target.host_header.clone());
            }
            UpstreamHost::Fixed(Some(host)) => {
                headers.insert(HOST, host.clone());
            }
            UpstreamHost::Fixed(None) => {
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
        let answer = std::pin::pin!(upstream.transport.send(
            index,
            &target.authority,
            outgoing,
            interim
        ));
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
                if !readable_response_framing(answer.headers()) {
                    tracing::debug!(upstream = %upstream.name, target = %target.authority,
                        "the upstream's response uses a transfer coding the worker does not decode");
                    upstream.record(index, true);
                    return Err(ProxyError::UpstreamUnavailable);
                }
                let switched = status == StatusCode::SWITCHING_PROTOCOLS;
                if switched && !switched_as_asked(&answer, request.upgrade_protocol.as_ref()) {
                    // The connection would carry a protocol nobody asked for: never relayed.
                    tracing::debug!(upstream = %upstream.name, target = %target.authority,
                        "the upstream switched protocols unasked");
                    upstream.record(index, true);
                    return Err(ProxyError::UpstreamUnavailable);
                }
                let response = match (answer, request.upgrade.take().filter(|_| switched)) {
                    (Answer::Hyper(mut response, pooled), Some(client)) => {
                        let server = hyper::upgrade::on(&mut response);
                        tokio::spawn(tunnel::tunnel(client, server, in_flight));
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
                if let Some(activity) = activity.as_deref()
                    && activity.client_failed()
                {
                    // The client's body broke the exchange: its error, not the target's.
                    tracing::debug!(upstream = %upstream.name, target = %target.authority,
                        error = %DisplayChain(&error), "the client's request body failed");
                    return Err(if activity.client_too_large() {
                        ProxyError::BodyTooLarge
                    } else if activity.client_stalled() {
                        ProxyError::BodyTimeout
                    } else {
                        ProxyError::BadBody
                    });
                }
                tracing::debug!(upstream = %upstream.name, target = %target.authority,
                    error = %DisplayChain(&error), "upstream request failed");
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::pin::pin;

    use super::*;

    #[tokio::test]
    async fn an_answer_in_time_is_returned_and_a_late_one_times_out() {
        let soon = Instant::now() + Duration::from_secs(5);
        let answer = wait_for_answer(pin!(async { 7 }), soon, Duration::from_secs(5), None).await;
        assert_eq!(answer, Some(7));
        let now = Instant::now();
        let never = std::future::pending::<()>();
        assert_eq!(
            wait_for_answer(pin!(never), now, Duration::ZERO, None).await,
            None
        );
    }

    /// The future a request waits on is held by reference: a by-value copy would put it in
    /// every request's state twice.
    #[test]
    fn waiting_for_an_answer_does_not_hold_a_copy_of_it() {
        let large = async {
            let buffer = [0u8; 4096];
            std::future::ready(()).await;
            buffer.len()
        };
        let answer = pin!(large);
        let answer_size = std::mem::size_of_val(&*answer);
        assert!(answer_size >= 4096);
        let waiting = wait_for_answer(answer, Instant::now(), Duration::ZERO, None);
        assert!(
            std::mem::size_of_val(&waiting) < 1024,
            "{} bytes around a {answer_size}-byte answer",
            std::mem::size_of_val(&waiting)
        );
    }

    #[tokio::test]
    async fn a_silent_client_does_not_hold_off_the_timeout() {
        let activity = Activity::new();
        activity.touch();
        let timeout = Duration::from_millis(20);
        let never = pin!(std::future::pending::<()>());
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
        let waited = wait_for_answer(pin!(answer), deadline, timeout, Some(&activity)).await;
        assert_eq!(waited.map(Result::ok), Some(Some("done")));
    }
}
