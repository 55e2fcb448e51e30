//! How requests reach an upstream's targets: HTTP/1 over a pool of kept-alive connections
//! per target ([`crate::http1_pool`]), HTTP/2 (over TLS, or h2c) over one shared connection per
//! target ([`crate::http2_pool`]). Both pools close connections left unused for the upstream's
//! idle timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::header::UPGRADE;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;

use crate::connector::ConnectError;
use crate::exchange::{ExchangeError, ResponseBody};
use crate::http1_pool::{Http1Pool, Pooled};
use crate::http2_pool::Http2Pool;
use crate::registry::{ForwardBody, RuntimeTarget};

/// The reapers run this many times per idle timeout, so a connection is closed after between
/// one and `1 + 1 / REAPS_PER_IDLE_TIMEOUT` idle timeouts.
pub const REAPS_PER_IDLE_TIMEOUT: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection to the target could be made, so the request never reached it.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
}

/// A response as it came from the target, with what its body needs to end properly.
#[derive(Debug)]
pub enum Answer {
    /// Through hyper's client; an HTTP/1 connection comes along, to be given back when the
    /// response body has ended.
    Hyper(Response<Incoming>, Option<Pooled>),
    /// Through the request's own exchange; the body gives its connection back itself.
    Exchange(Response<ResponseBody>),
}

impl Answer {
    pub fn status(&self) -> http::StatusCode {
        match self {
            Answer::Hyper(response, _) => response.status(),
            Answer::Exchange(response) => response.status(),
        }
    }
}

#[derive(Debug)]
pub enum Transport {
    Http1(Arc<Http1Pool>),
    Http2(Arc<Http2Pool>),
}

impl Transport {
    /// Sends `request`, whose URI is in origin form and which carries its `Host`, to the target
    /// at `index`.
    pub async fn send(
        &self,
        index: usize,
        target: &RuntimeTarget,
        request: Request<ForwardBody>,
    ) -> Result<Answer, SendError> {
        match self {
            Transport::Http1(pool)
                if request.body().is_end_stream() && !request.headers().contains_key(UPGRADE) =>
            {
                let (parts, _) = request.into_parts();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let response = pool
                    .send_bodyless(
                        index,
                        &target.authority,
                        &parts.method,
                        path,
                        &parts.headers,
                    )
                    .await?;
                Ok(Answer::Exchange(response))
            }
            Transport::Http1(pool) => {
                let (response, pooled) = pool.send(index, &target.authority, request).await?;
                Ok(Answer::Hyper(response, Some(pooled)))
            }
            Transport::Http2(pool) => {
                let response = pool.send(index, &target.authority, request).await?;
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

/// A pool's sense of idleness: the reaper ticks it [`REAPS_PER_IDLE_TIMEOUT`] times per idle
/// timeout, and connections remember the tick they were last used in, which costs a load
/// instead of reading the clock on every request.
#[derive(Debug)]
pub struct IdleClock {
    idle_timeout: Duration,
    tick: AtomicU64,
}

impl IdleClock {
    pub fn new(idle_timeout: Duration) -> Self {
        IdleClock {
            idle_timeout,
            tick: AtomicU64::new(0),
        }
    }

    pub fn now(&self) -> u64 {
        self.tick.load(Ordering::Relaxed)
    }

    /// Moves to the next tick and returns it.
    fn advance(&self) -> u64 {
        self.tick.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether something last used during tick `since` has been idle for at least the idle
    /// timeout at tick `now` (it has been idle for at least `now - since - 1` whole ticks).
    pub fn expired(since: u64, now: u64) -> bool {
        now.saturating_sub(since) > u64::from(REAPS_PER_IDLE_TIMEOUT)
    }
}

/// A pool that closes connections left idle.
pub trait Reap: Send + Sync + 'static {
    fn clock(&self) -> &IdleClock;
    /// Closes what has been idle for the idle timeout at tick `now`.
    fn reap_at(&self, now: u64);

    /// One of the [`REAPS_PER_IDLE_TIMEOUT`] rounds per idle timeout.
    fn reap(&self) {
        self.reap_at(self.clock().advance());
    }
}

/// Reaps `pool` until it is dropped.
pub async fn reap_loop<P: Reap>(pool: Weak<P>) {
    let Some(idle_timeout) = pool.upgrade().map(|p| p.clock().idle_timeout) else {
        return;
    };
    let period = (idle_timeout / REAPS_PER_IDLE_TIMEOUT).max(Duration::from_millis(10));
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.reap();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_support {
    //! Upstreams and connectors for the pools' tests.

    use std::future::Future;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use gateway_config::Protocol;
    use http::uri::Authority;
    use tokio::net::TcpStream;

    use crate::circuit::Gauge;
    use crate::connector::UpstreamConnector;
    use crate::dns::DnsCache;

    /// A loopback upstream that hands each connection to `serve`; counts the connections.
    pub async fn counting_upstream<S, F>(serve: S) -> (Authority, Arc<AtomicUsize>)
    where
        S: Fn(TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream));
            }
        });
        (authority, accepted)
    }

    /// A plain-TCP connector without limits.
    pub fn connector(protocol: Protocol) -> UpstreamConnector {
        UpstreamConnector::new(
            None,
            protocol,
            Duration::from_secs(2),
            Arc::new(Gauge::new(None)),
            Arc::new(DnsCache::default()),
        )
    }

    /// A loopback address nothing listens on.
    pub fn closed_authority() -> Authority {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        closed.local_addr().unwrap().to_string().parse().unwrap()
    }
}
