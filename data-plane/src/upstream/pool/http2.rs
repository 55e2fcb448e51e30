//! HTTP/2 connections to an upstream's targets (`http2` over TLS, or `h2c`): one per target,
//! shared by every request to it, opened by the first request that needs it and again after
//! the target closed it, and closed once unused for the upstream's idle timeout.
//!
//! The worker opens these connections itself, so a request's `:authority` can be the host it
//! is meant for (its `Host`: a preserved or rewritten one) rather than the target's address.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::header::HOST;
use http::uri::{Authority, Parts, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::ForwardBody;
use crate::upstream::connector::{ConnectError, UpstreamConnector};
use crate::upstream::error::SendError;
use crate::upstream::exchange::MAX_HEAD_READ;
use crate::upstream::idle::{IdleClock, Reap};

#[derive(Debug)]
pub struct Http2Pool {
    connector: UpstreamConnector,
    builder: http2::Builder<TokioExecutor>,
    scheme: Scheme,
    targets: Box<[Shared]>,
    clock: IdleClock,
}

#[derive(Debug, Default)]
struct Shared {
    connection: ArcSwapOption<SendRequest<ForwardBody>>,
    /// Held while a connection is being opened, so that the requests arriving meanwhile wait
    /// for it instead of each opening one.
    opening: tokio::sync::Mutex<()>,
    last_used_tick: AtomicU64,
}

impl Shared {
    fn current(&self) -> Option<SendRequest<ForwardBody>> {
        let guard = self.connection.load();
        let sender = guard.as_deref()?;
        (!sender.is_closed()).then(|| sender.clone())
    }
}

impl Http2Pool {
    pub fn new(connector: UpstreamConnector, targets: usize, idle_timeout: Duration) -> Self {
        let scheme = if connector.is_tls() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let mut builder = http2::Builder::new(TokioExecutor::new());
        // Room for the response head limit, which is checked on the parsed fields alike for
        // every transport (hyper's default of 16 KiB would refuse heads HTTP/1 takes).
        builder
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEAD_READ as u32);
        Http2Pool {
            connector,
            builder,
            scheme,
            targets: (0..targets).map(|_| Shared::default()).collect(),
            clock: IdleClock::new(idle_timeout),
        }
    }

    /// Sends `request` (origin-form URI, `Host` set or absent) to target `index` at
    /// `authority`; its `Host` goes as `:authority`, or else the target's address.
    pub async fn send(
        &self,
        index: usize,
        authority: &Authority,
        mut request: Request<ForwardBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let shared = self
            .targets
            .get(index)
            .ok_or(SendError::Connect(ConnectError::NoAddress))?;
        let tick = self.clock.now();
        // Read first: a store on every request would bounce the cache line between cores.
        if shared.last_used_tick.load(Ordering::Relaxed) != tick {
            shared.last_used_tick.store(tick, Ordering::Relaxed);
        }
        self.set_authority(&mut request, authority);
        let mut reused = true;
        loop {
            let mut sender = match shared.current() {
                Some(sender) => sender,
                None => {
                    reused = false;
                    // Boxed: connecting is a large future that requests would otherwise carry.
                    Box::pin(self.open(shared, authority)).await?
                }
            };
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(response),
                Err(mut error) => match error.take_message() {
                    // The target closed the connection (GOAWAY) before the request went out.
                    Some(unsent) if reused => {
                        reused = false;
                        request = unsent;
                    }
                    _ => return Err(SendError::Http(error.into_error())),
                },
            }
        }
    }

    /// Sends `request` on a new connection to `authority` that the pool does not count or
    /// keep: it closes once the response has ended.
    pub async fn send_alone(
        &self,
        authority: &Authority,
        mut request: Request<ForwardBody>,
    ) -> Result<Response<Incoming>, SendError> {
        self.set_authority(&mut request, authority);
        let io = self.connector.open_uncounted(authority).await?;
        let (mut sender, connection) = self.builder.handshake(io).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream HTTP/2 probe connection ended with an error");
            }
        });
        Ok(sender.send_request(request).await?)
    }

    /// HTTP/2 carries the host in `:authority`, taken from the URI; a `Host` header beside it
    /// must not differ (RFC 9113 §8.3.1), so it goes.
    fn set_authority(&self, request: &mut Request<ForwardBody>, target: &Authority) {
        let authority = match request.headers_mut().remove(HOST) {
            // The usual case, sent as it is: the target's own address.
            Some(host) if host.as_bytes() == target.as_str().as_bytes() => target.clone(),
            Some(host) => Authority::try_from(host.as_bytes()).unwrap_or_else(|_| target.clone()),
            None => target.clone(),
        };
        let mut parts = Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(authority);
        parts.path_and_query = request.uri().path_and_query().cloned();
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }

    async fn open(
        &self,
        shared: &Shared,
        authority: &Authority,
    ) -> Result<SendRequest<ForwardBody>, SendError> {
        let _opening = shared.opening.lock().await;
        if let Some(sender) = shared.current() {
            return Ok(sender);
        }
        let io = self.connector.open_to(authority).await?;
        let (sender, connection) = self.builder.handshake(io).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream HTTP/2 connection ended with an error");
            }
        });
        shared.connection.store(Some(Arc::new(sender.clone())));
        Ok(sender)
    }

    /// Whether target `index` has an open connection.
    pub fn is_connected(&self, index: usize) -> bool {
        self.targets
            .get(index)
            .is_some_and(|shared| shared.current().is_some())
    }
}

impl Reap for Http2Pool {
    fn clock(&self) -> &IdleClock {
        &self.clock
    }

    /// Lets go of connections unused for the idle timeout; each closes once the requests
    /// still on it are done.
    fn reap_at(&self, now: u64) {
        for shared in self.targets.iter() {
            let used = shared.last_used_tick.load(Ordering::Relaxed);
            if IdleClock::expired(used, now) {
                shared.connection.store(None);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;

    use bytes::Bytes;
    use gateway_config::Protocol;
    use http::HeaderValue;
    use http_body_util::{BodyExt, Either, Full};
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::upstream::idle::REAPS_PER_IDLE_TIMEOUT;
    use crate::upstream::test_support::{closed_authority, connector, counting_upstream};

    /// An h2c upstream answering with the `:authority` it got and how many `Host` headers;
    /// counts its connections.
    async fn upstream() -> (Authority, Arc<AtomicUsize>) {
        counting_upstream(|stream| async move {
            let service = hyper::service::service_fn(|request: Request<Incoming>| {
                let authority = request.uri().authority().map(|a| a.to_string());
                let hosts = request.headers().get_all(HOST).iter().count();
                let answer = format!("{} {hosts}", authority.unwrap_or_default());
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(answer)))) }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        })
        .await
    }

    fn pool(idle_timeout: Duration) -> Arc<Http2Pool> {
        let connector = connector(Protocol::H2c);
        Arc::new(Http2Pool::new(connector, 1, idle_timeout))
    }

    fn get(host: Option<&str>) -> Request<ForwardBody> {
        let mut request = Request::get("/")
            .version(http::Version::HTTP_2)
            .body(Either::Right(Full::new(Bytes::new())))
            .unwrap();
        if let Some(host) = host {
            request
                .headers_mut()
                .insert(HOST, HeaderValue::from_str(host).unwrap());
        }
        request
    }

    async fn answer(pool: &Http2Pool, authority: &Authority, host: Option<&str>) -> String {
        let response = pool.send(0, authority, get(host)).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_host_goes_as_authority_over_one_shared_connection() {
        let (authority, accepted) = upstream().await;
        let pool = pool(Duration::from_secs(60));
        assert_eq!(
            answer(&pool, &authority, Some("api.example.com")).await,
            "api.example.com 0"
        );
        assert_eq!(
            answer(&pool, &authority, None).await,
            format!("{authority} 0")
        );
        let mut concurrent = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (pool, authority) = (pool.clone(), authority.clone());
            concurrent.spawn(async move { answer(&pool, &authority, Some("a.test")).await });
        }
        while let Some(answered) = concurrent.join_next().await {
            assert_eq!(answered.unwrap(), "a.test 0");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unused_connection_is_let_go_after_the_idle_timeout() {
        let (authority, accepted) = upstream().await;
        let pool = pool(Duration::from_secs(60));
        answer(&pool, &authority, None).await;
        assert!(pool.is_connected(0));
        for _ in 0..REAPS_PER_IDLE_TIMEOUT {
            pool.reap();
        }
        assert!(pool.is_connected(0), "idle for less than the timeout");
        pool.reap();
        assert!(!pool.is_connected(0), "idle for a whole timeout");
        answer(&pool, &authority, None).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connect_errors_are_reported_as_such() {
        let authority = closed_authority();
        let pool = pool(Duration::from_secs(60));
        let error = pool.send(0, &authority, get(None)).await.unwrap_err();
        assert!(matches!(
            error,
            SendError::Connect(ConnectError::Connect(_))
        ));
    }
}
