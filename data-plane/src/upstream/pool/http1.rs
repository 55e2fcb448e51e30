//! Kept-alive HTTP/1 connections to an upstream's targets.
//!
//! Requests without a body go through the request task's own exchange (`upstream::exchange`),
//! which reads and writes the connection itself; requests with a body, and upgrades, through hyper's client connection,
//! which sends the body while the response comes in. Each target has a bounded lock-free queue
//! of idle connections of each kind, allocated when the target first gives one back. A request
//! takes an idle connection that is ready (or opens one), and the connection goes back when the
//! response body ends, so nothing per request is spawned, boxed or looked up by key. A reaper
//! started with the upstream's runtime closes connections idle for longer than the upstream's
//! idle timeout, and those whose target closed them.
//!
//! A pooled connection the target closed just before the request went out is a normal event
//! of keep-alive. hyper hands back a request it could not write, which then goes out on another
//! connection; a bodyless request with an idempotent method that got no byte of an answer on a
//! kept-alive connection goes out again, once, on a new one.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use http::uri::Authority;
use http::{HeaderMap, Method, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};

use crate::body::ForwardBody;
use crate::upstream::connector::UpstreamConnector;
use crate::upstream::error::SendError;
use crate::upstream::exchange::{self, ExchangeError, Lend, ResponseBody};
use crate::upstream::idle::{IdleClock, Reap};

/// Idle connections kept per target; more are closed when given back. The queue takes about
/// 40 bytes per slot once the target is first used, so a config with many upstreams stays small.
const MAX_IDLE_PER_TARGET: usize = 128;

#[derive(Debug)]
pub struct Http1Pool {
    connector: UpstreamConnector,
    builder: http1::Builder,
    targets: Box<[Idle]>,
    clock: IdleClock,
}

#[derive(Debug, Default)]
struct Idle {
    senders: OnceLock<ArrayQueue<IdleSender>>,
    connections: OnceLock<ArrayQueue<IdleConnection>>,
}

#[derive(Debug)]
struct IdleSender {
    sender: SendRequest<ForwardBody>,
    since_tick: u64,
}

#[derive(Debug)]
struct IdleConnection {
    connection: exchange::Connection,
    since_tick: u64,
}

/// Where an exchange's connection goes back once its response has ended: its target's idle
/// queue, or nowhere for a connection that is not the pool's (an active probe's), which closes.
#[derive(Debug)]
pub struct Lender {
    pool: Option<Arc<Http1Pool>>,
    target: usize,
}

impl Lend for Lender {
    fn give_back(self, connection: exchange::Connection) {
        if let Some(pool) = self.pool {
            pool.put_idle_connection(self.target, connection);
        }
    }
}

/// A connection a request is using; [`Pooled::give_back`] once its response body has ended.
#[derive(Debug)]
pub struct Pooled {
    pool: Arc<Http1Pool>,
    target: usize,
    sender: SendRequest<ForwardBody>,
}

/// hyper's client reading no more of a response head than the worker's own HTTP/1 exchange
/// would (hyper's default is about 400 KiB); the limit itself is checked on the parsed fields,
/// alike for every transport. Body reads stay within this buffer size too, which costs nothing
/// at this size.
fn response_head_limited() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.max_buf_size(exchange::MAX_HEAD_READ);
    builder
}

impl Http1Pool {
    pub fn new(connector: UpstreamConnector, targets: usize, idle_timeout: Duration) -> Self {
        Http1Pool {
            connector,
            builder: response_head_limited(),
            targets: (0..targets).map(|_| Idle::default()).collect(),
            clock: IdleClock::new(idle_timeout),
        }
    }

    /// Sends `request` (origin-form URI, `Host` set) to target `index` at `authority`.
    pub async fn send(
        self: &Arc<Self>,
        index: usize,
        authority: &Authority,
        mut request: http::Request<ForwardBody>,
    ) -> Result<(Response<Incoming>, Pooled), SendError> {
        loop {
            let (mut sender, reused) = match self.take_idle(index) {
                Some(sender) => (sender, true),
                // Boxed: connecting (TLS included) is a large future, and the request's future
                // would otherwise carry it, and copy it around, on every request.
                None => (Box::pin(self.open(authority)).await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let pooled = Pooled {
                        pool: self.clone(),
                        target: index,
                        sender,
                    };
                    return Ok((response, pooled));
                }
                Err(mut error) => match error.take_message() {
                    // The target closed a kept-alive connection before the request went out.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(SendError::Http(error.into_error())),
                },
            }
        }
    }

    /// Sends a request without a body (origin-form `path`, `Host` in `headers`) to target
    /// `index` at `authority` through the request task's own exchange.
    pub async fn send_bodyless(
        self: &Arc<Self>,
        index: usize,
        authority: &Authority,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        interim: Option<&exchange::Interim>,
    ) -> Result<Response<ResponseBody<Lender>>, SendError> {
        let mut retried = false;
        loop {
            let (connection, reused) = match self.take_idle_connection(index) {
                Some(connection) => (connection, true),
                None => {
                    let io = Box::pin(self.connector.open_to(authority)).await?;
                    (exchange::Connection::new(io), false)
                }
            };
            let lender = Lender {
                pool: Some(self.clone()),
                target: index,
            };
            match connection
                .send(method, path, headers, lender, interim)
                .await
            {
                Err(ExchangeError::ClosedBeforeAnswer)
                    if reused && !retried && method.is_idempotent() =>
                {
                    retried = true;
                }
                answer => return answer.map_err(SendError::from),
            }
        }
    }

    /// Sends a request without a body on a new connection to `authority` that the pool does
    /// not count or keep: it closes once the response has ended.
    pub async fn send_alone(
        &self,
        authority: &Authority,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Response<ResponseBody<Lender>>, SendError> {
        let io = self.connector.open_uncounted(authority).await?;
        let lender = Lender {
            pool: None,
            target: 0,
        };
        let connection = exchange::Connection::new(io);
        Ok(connection.send(method, path, headers, lender, None).await?)
    }

    fn take_idle(&self, index: usize) -> Option<SendRequest<ForwardBody>> {
        let queue = self.targets.get(index)?.senders.get()?;
        while let Some(idle) = queue.pop() {
            // An idle connection is ready until its target closes it.
            if idle.sender.is_ready() {
                return Some(idle.sender);
            }
        }
        None
    }

    fn take_idle_connection(&self, index: usize) -> Option<exchange::Connection> {
        let queue = self.targets.get(index)?.connections.get()?;
        while let Some(mut idle) = queue.pop() {
            if idle.connection.is_reusable() {
                return Some(idle.connection);
            }
        }
        None
    }

    async fn open(&self, authority: &Authority) -> Result<SendRequest<ForwardBody>, SendError> {
        let io = self.connector.open_to(authority).await?;
        let (sender, connection) = self.builder.handshake(io).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    fn put_idle(&self, index: usize, sender: SendRequest<ForwardBody>) {
        if let Some(target) = self.targets.get(index) {
            let since_tick = self.clock.now();
            park(&target.senders, IdleSender { sender, since_tick });
        }
    }

    fn put_idle_connection(&self, index: usize, connection: exchange::Connection) {
        if let Some(target) = self.targets.get(index) {
            let since_tick = self.clock.now();
            park(
                &target.connections,
                IdleConnection {
                    connection,
                    since_tick,
                },
            );
        }
    }

    /// Idle connections of target `index`.
    pub fn idle(&self, index: usize) -> usize {
        let Some(target) = self.targets.get(index) else {
            return 0;
        };
        target.senders.get().map_or(0, ArrayQueue::len)
            + target.connections.get().map_or(0, ArrayQueue::len)
    }
}

impl Reap for Http1Pool {
    fn clock(&self) -> &IdleClock {
        &self.clock
    }

    /// Closes idle connections past the idle timeout or closed by their target.
    fn reap_at(&self, now: u64) {
        for target in self.targets.iter() {
            keep_if(&target.senders, |idle| {
                !IdleClock::expired(idle.since_tick, now) && !idle.sender.is_closed()
            });
            keep_if(&target.connections, |idle| {
                !IdleClock::expired(idle.since_tick, now) && idle.connection.is_reusable()
            });
        }
    }
}

/// Puts an idle connection in its queue, allocated on first use; a full queue drops (closes) it.
fn park<T>(queue: &OnceLock<ArrayQueue<T>>, idle: T) {
    let _ = queue
        .get_or_init(|| ArrayQueue::new(MAX_IDLE_PER_TARGET))
        .push(idle);
}

/// Takes each idle connection out once and puts back those `keep` accepts.
fn keep_if<T>(queue: &OnceLock<ArrayQueue<T>>, mut keep: impl FnMut(&mut T) -> bool) {
    let Some(queue) = queue.get() else { return };
    for _ in 0..queue.len() {
        let Some(mut idle) = queue.pop() else { break };
        if keep(&mut idle) {
            let _ = queue.push(idle);
        }
    }
}

impl Pooled {
    /// Puts the connection back once the response has been read to its end; a connection whose
    /// response was not read to the end cannot carry another request and closes.
    pub fn give_back(self) {
        let Pooled {
            pool,
            target,
            mut sender,
        } = self;
        if sender.is_ready() {
            pool.put_idle(target, sender);
            return;
        }
        if sender.is_closed() {
            return;
        }
        // The connection's task has not yet noticed the end of the exchange (it runs on another
        // thread), or the request body is still on its way: wait for it off the request's path.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if sender.ready().await.is_ok() {
                    pool.put_idle(target, sender);
                }
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use gateway_config::Protocol;
    use http_body_util::{BodyExt, Either, Full};
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::upstream::connector::ConnectError;
    use crate::upstream::idle::REAPS_PER_IDLE_TIMEOUT;
    use crate::upstream::test_support::{closed_authority, connector, counting_upstream};

    /// An upstream answering `ok`, or 4 MiB for `/big`; counts the connections it accepted.
    /// With `close_after_one`, every connection closes right after its first response.
    async fn upstream(close_after_one: bool) -> (Authority, Arc<AtomicUsize>) {
        counting_upstream(move |stream| async move {
            let service = hyper::service::service_fn(|request: http::Request<_>| {
                let body = if request.uri().path() == "/big" {
                    Bytes::from(vec![b'x'; 4 << 20])
                } else {
                    Bytes::from_static(b"ok")
                };
                async { Ok::<_, Infallible>(Response::new(Full::new(body))) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(!close_after_one)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        })
        .await
    }

    fn pool(idle_timeout: Duration) -> Arc<Http1Pool> {
        let connector = connector(Protocol::Http1);
        Arc::new(Http1Pool::new(connector, 1, idle_timeout))
    }

    fn get(authority: &Authority) -> http::Request<ForwardBody> {
        get_path(authority, "/")
    }

    fn get_path(authority: &Authority, path: &str) -> http::Request<ForwardBody> {
        http::Request::get(path)
            .header(http::header::HOST, authority.as_str())
            .body(Either::Right(Full::new(Bytes::new())))
            .unwrap()
    }

    /// Sends a request, reads its body to the end and gives the connection back.
    async fn exchange(pool: &Arc<Http1Pool>, authority: &Authority) -> Bytes {
        let (response, pooled) = pool.send(0, authority, get(authority)).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        pooled.give_back();
        body
    }

    /// Polls until the pool holds `count` idle connections of target 0.
    async fn until_idle(pool: &Http1Pool, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while pool.idle(0) != count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "idle {} != {count}",
                pool.idle(0)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_is_read() {
        let (authority, accepted) = upstream(false).await;
        let pool = pool(Duration::from_secs(60));
        for _ in 0..5 {
            assert_eq!(exchange(&pool, &authority).await, "ok");
            until_idle(&pool, 1).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_response_not_read_to_its_end_does_not_return_its_connection() {
        let (authority, accepted) = upstream(false).await;
        let pool = pool(Duration::from_secs(60));
        let big = get_path(&authority, "/big");
        let (response, pooled) = pool.send(0, &authority, big).await.unwrap();
        drop(response);
        pooled.give_back();
        assert_eq!(pool.idle(0), 0);
        assert_eq!(exchange(&pool, &authority).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_target_closed_is_not_used_again() {
        let (authority, accepted) = upstream(true).await;
        let pool = pool(Duration::from_secs(60));
        for round in 1..=3 {
            assert_eq!(exchange(&pool, &authority).await, "ok");
            assert_eq!(accepted.load(Ordering::SeqCst), round);
        }
    }

    #[tokio::test]
    async fn idle_connections_are_closed_after_the_idle_timeout() {
        let (authority, _) = upstream(false).await;
        let pool = pool(Duration::from_millis(40));
        tokio::spawn(crate::upstream::idle::reap_loop(Arc::downgrade(&pool)));
        exchange(&pool, &authority).await;
        until_idle(&pool, 1).await;
        until_idle(&pool, 0).await;
    }

    #[tokio::test]
    async fn a_reaped_pool_keeps_connections_in_use_recently() {
        let (authority, _) = upstream(false).await;
        let pool = pool(Duration::from_secs(60));
        exchange(&pool, &authority).await;
        until_idle(&pool, 1).await;
        for _ in 0..REAPS_PER_IDLE_TIMEOUT {
            pool.reap();
        }
        assert_eq!(pool.idle(0), 1, "idle for less than the timeout");
        pool.reap();
        assert_eq!(pool.idle(0), 0, "idle for a whole timeout");
    }

    #[tokio::test]
    async fn connect_errors_are_reported_as_such() {
        let authority = closed_authority();
        let pool = pool(Duration::from_secs(60));
        let error = pool.send(0, &authority, get(&authority)).await.unwrap_err();
        assert!(matches!(
            error,
            SendError::Connect(ConnectError::Connect(_))
        ));
    }
}
