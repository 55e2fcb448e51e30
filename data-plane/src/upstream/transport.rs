//! How requests reach an upstream's targets: HTTP/1 over a pool of kept-alive connections
//! per target (`pool::http1`), HTTP/2 (over TLS, or h2c) over one shared connection per target
//! (`pool::http2`). Both pools close connections left unused for the upstream's idle timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use http::header::UPGRADE;
use http::uri::Authority;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;

use super::error::SendError;
use super::exchange::{ExchangeError, Interim, MAX_HEAD_BYTES, ResponseBody};
use super::idle::reap_loop;
use super::pool::http1::{Http1Pool, Lender, Pooled};
use super::pool::http2::Http2Pool;
use crate::body::ForwardBody;

/// A response as it came from the target, with what its body needs to end properly.
#[derive(Debug)]
pub enum Answer {
    /// Through hyper's client; an HTTP/1 connection comes along, to be given back when the
    /// response body has ended.
    Hyper(Response<Incoming>, Option<Pooled>),
    /// Through the request's own exchange; the body gives its connection back itself.
    Exchange(Response<ResponseBody<Lender>>),
}

impl Answer {
    pub fn status(&self) -> http::StatusCode {
        match self {
            Answer::Hyper(response, _) => response.status(),
            Answer::Exchange(response) => response.status(),
        }
    }

    pub fn headers(&self) -> &http::HeaderMap {
        match self {
            Answer::Hyper(response, _) => response.headers(),
            Answer::Exchange(response) => response.headers(),
        }
    }
}

#[derive(Debug)]
pub enum Transport {
    Http1(Arc<Http1Pool>),
    Http2(Arc<Http2Pool>),
}

/// The size of a response head's fields as HTTP/1 writes them (`name: value` and a line end):
/// one measure for every transport, as each client reads heads into buffers of its own
/// making, whose limits alone would let different heads through.
fn head_size(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// Whether an HTTP/1 request goes through the request's own exchange: it has no body and asks
/// for no upgrade, so nothing needs to be sent while the response comes in.
fn is_bodyless(request: &Request<ForwardBody>) -> bool {
    request.body().is_end_stream() && !request.headers().contains_key(UPGRADE)
}

/// Most informational responses kept per request while they wait to be passed on; an upstream
/// sending more only loses them.
const MAX_INTERIM: usize = 16;

/// The informational responses hyper's client reads for a request, on its connection's task,
/// waiting for the request's own task.
#[derive(Default)]
struct Queued(Mutex<QueuedHeads>);

#[derive(Default)]
struct QueuedHeads {
    heads: Vec<http::response::Parts>,
    waker: Option<Waker>,
}

/// `request`, with hyper's client told to queue the informational responses it reads, when
/// there is somewhere to pass them on to.
fn passing_on(
    mut request: Request<ForwardBody>,
    interim: Option<&Interim>,
) -> (Request<ForwardBody>, Option<Arc<Queued>>) {
    if interim.is_none() {
        return (request, None);
    }
    let queued = Arc::new(Queued::default());
    let queue = queued.clone();
    hyper::ext::on_informational(&mut request, move |response| {
        let Ok(mut queue) = queue.0.lock() else {
            return;
        };
        if queue.heads.len() < MAX_INTERIM {
            let mut head = Response::new(());
            *head.status_mut() = response.status();
            *head.version_mut() = response.version();
            *head.headers_mut() = response.headers().clone();
            queue.heads.push(head.into_parts().0);
        }
        if let Some(waker) = queue.waker.take() {
            waker.wake();
        }
    });
    (request, Some(queued))
}

/// Awaits `sending`, whose request [`passing_on`] made, moving the informational responses
/// queued meanwhile to `interim` on the request's own task, as they come and before the answer
/// (hyper's client reads them before it hands the answer over). `sending` comes pinned by the
/// caller, so that this future does not hold a second copy of it.
async fn relayed<F: Future>(
    mut sending: Pin<&mut F>,
    queued: Option<Arc<Queued>>,
    interim: Option<&Interim>,
) -> F::Output {
    let (Some(queued), Some(interim)) = (queued, interim) else {
        return sending.await;
    };
    std::future::poll_fn(|cx| {
        let polled = sending.as_mut().poll(cx);
        // Taken and waited for under one lock, so that none comes unseen in between.
        if let Ok(mut queue) = queued.0.lock() {
            for head in queue.heads.drain(..) {
                interim.push(head);
            }
            if polled.is_pending()
                && !queue
                    .waker
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
            {
                queue.waker = Some(cx.waker().clone());
            }
        }
        polled
    })
    .await
}

impl Transport {
    /// Sends `request`, whose URI is in origin form and which carries its `Host`, to the target
    /// at `index`, whose address is `authority`. The informational responses that come before
    /// the answer go to `interim`: read by the exchange itself (HTTP/1 without a request body),
    /// or queued by hyper's clients.
    pub async fn send(
        &self,
        index: usize,
        authority: &Authority,
        request: Request<ForwardBody>,
        interim: Option<&Interim>,
    ) -> Result<Answer, SendError> {
        let answer = match self {
            Transport::Http1(pool) if is_bodyless(&request) => {
                let (parts, _) = request.into_parts();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let response = pool
                    .send_bodyless(
                        index,
                        authority,
                        &parts.method,
                        path,
                        &parts.headers,
                        interim,
                    )
                    .await?;
                Answer::Exchange(response)
            }
            Transport::Http1(pool) => {
                let (request, queued) = passing_on(request, interim);
                let sending = std::pin::pin!(pool.send(index, authority, request));
                let (response, pooled) = relayed(sending, queued, interim).await?;
                Answer::Hyper(response, Some(pooled))
            }
            Transport::Http2(pool) => {
                let (request, queued) = passing_on(request, interim);
                let sending = std::pin::pin!(pool.send(index, authority, request));
                let response = relayed(sending, queued, interim).await?;
                Answer::Hyper(response, None)
            }
        };
        // Dropped unread, the answer's connection is closed rather than reused.
        let fields = answer.headers();
        if fields.len() > gateway_http1::fields::MAX_FIELDS || head_size(fields) > MAX_HEAD_BYTES {
            return Err(ExchangeError::HeadTooLarge.into());
        }
        Ok(answer)
    }

    /// Sends a request without a body on a connection of its own to `authority`, outside the
    /// pool and the connection limit, closed after the answer: an active health check's.
    pub async fn send_alone(
        &self,
        authority: &Authority,
        request: Request<ForwardBody>,
    ) -> Result<Answer, SendError> {
        match self {
            Transport::Http1(pool) => {
                let (parts, _) = request.into_parts();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let response = pool
                    .send_alone(authority, &parts.method, path, &parts.headers)
                    .await?;
                Ok(Answer::Exchange(response))
            }
            Transport::Http2(pool) => {
                let response = pool.send_alone(authority, request).await?;
                Ok(Answer::Hyper(response, None))
            }
        }
    }

    /// Starts closing idle connections, until the transport is dropped.
    pub fn start_reaper(&self, runtime: &tokio::runtime::Handle) {
        match self {
            Transport::Http1(pool) => runtime.spawn(reap_loop(Arc::downgrade(pool))),
            Transport::Http2(pool) => runtime.spawn(reap_loop(Arc::downgrade(pool))),
        };
    }
}
