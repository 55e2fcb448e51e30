//! What a route says about its upstream requests: the overall timeout and the retry policy,
//! compiled once per revision, and the decisions taken from them on the request path.

use std::time::Duration;

use gateway_config::{Retries, RetryOn, Route};
use http::Method;

/// Default base of the exponential backoff between tries.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(25);
/// The backoff stops growing after this many doublings.
const MAX_BACKOFF_DOUBLINGS: u32 = 6;

/// Why one try failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be opened.
    Connect,
    /// The connection broke before the response headers arrived.
    Reset,
    /// The try's own time limit passed.
    Timeout,
    /// The target answered with this status.
    Status(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// Bit set of [`Failure`] kinds that are retried.
    on: u8,
    pub per_try_timeout: Option<Duration>,
    backoff: Duration,
    non_idempotent: bool,
}

const ON_CONNECT: u8 = 1;
const ON_RESET: u8 = 2;
const ON_TIMEOUT: u8 = 4;
const ON_502: u8 = 8;
const ON_503: u8 = 16;
const ON_504: u8 = 32;

impl RetryPolicy {
    pub fn new(retries: &Retries) -> Self {
        let on = if retries.on.is_empty() {
            ON_CONNECT
        } else {
            retries.on.iter().fold(0, |bits, on| {
                bits | match on {
                    RetryOn::ConnectFailure => ON_CONNECT,
                    RetryOn::Reset => ON_RESET,
                    RetryOn::Timeout => ON_TIMEOUT,
                    RetryOn::Status502 => ON_502,
                    RetryOn::Status503 => ON_503,
                    RetryOn::Status504 => ON_504,
                }
            })
        };
        RetryPolicy {
            attempts: retries.attempts,
            on,
            per_try_timeout: retries.per_try_timeout.map(|d| d.as_std()),
            backoff: retries.backoff.map_or(DEFAULT_BACKOFF, |d| d.as_std()),
            non_idempotent: retries.non_idempotent,
        }
    }

    /// Whether a request may be tried more than once at all: its method is idempotent (or the
    /// route allows others) and its body is known to be empty, since a streamed body is gone.
    pub fn allows(&self, method: &Method, body_is_empty: bool) -> bool {
        self.attempts > 0 && body_is_empty && (self.non_idempotent || is_idempotent(method))
    }

    pub fn retries_on(&self, failure: Failure) -> bool {
        let bit = match failure {
            Failure::Connect => ON_CONNECT,
            Failure::Reset => ON_RESET,
            Failure::Timeout => ON_TIMEOUT,
            Failure::Status(502) => ON_502,
            Failure::Status(503) => ON_503,
            Failure::Status(504) => ON_504,
            Failure::Status(_) => 0,
        };
        self.on & bit != 0
    }

    /// The wait before retry number `retry` (1 for the first): exponential in `retry`, with
    /// ±50% jitter so that clients that failed together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let base = self.backoff * (1u32 << retry.saturating_sub(1).min(MAX_BACKOFF_DOUBLINGS));
        base.mul_f64(0.5 + fastrand::f64())
    }
}

/// RFC 9110 §9.2.2.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// A route's policy for its upstream requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoutePolicy {
    /// Until the response headers, all tries included; the worker's default when absent.
    pub timeout: Option<Duration>,
    pub retries: Option<RetryPolicy>,
}

impl RoutePolicy {
    /// `None` when the route sets neither, so such routes cost nothing to look up.
    pub fn of(route: &Route) -> Option<Self> {
        let policy = RoutePolicy {
            timeout: route.timeout.map(|d| d.as_std()),
            retries: route
                .retries
                .as_ref()
                .filter(|r| r.attempts > 0)
                .map(RetryPolicy::new),
        };
        (policy != RoutePolicy::default()).then_some(policy)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::Duration as ConfigDuration;

    use super::*;

    fn policy(on: Vec<RetryOn>, non_idempotent: bool) -> RetryPolicy {
        RetryPolicy::new(&Retries {
            attempts: 2,
            on,
            per_try_timeout: None,
            backoff: Some(ConfigDuration::from_millis(100)),
            non_idempotent,
        })
    }

    #[test]
    fn only_idempotent_bodiless_requests_are_retried_by_default() {
        let p = policy(vec![], false);
        assert!(p.allows(&Method::GET, true));
        assert!(p.allows(&Method::PUT, true));
        assert!(!p.allows(&Method::POST, true));
        assert!(!p.allows(&Method::PATCH, true));
        assert!(
            !p.allows(&Method::GET, false),
            "a streamed body cannot be sent twice"
        );
        let lenient = policy(vec![], true);
        assert!(lenient.allows(&Method::POST, true));
        assert!(!lenient.allows(&Method::POST, false));
    }

    #[test]
    fn conditions() {
        let default = policy(vec![], false);
        assert!(default.retries_on(Failure::Connect));
        assert!(!default.retries_on(Failure::Reset));
        assert!(!default.retries_on(Failure::Status(503)));
        let listed = policy(
            vec![RetryOn::Status503, RetryOn::Reset, RetryOn::Timeout],
            false,
        );
        assert!(!listed.retries_on(Failure::Connect));
        assert!(listed.retries_on(Failure::Reset));
        assert!(listed.retries_on(Failure::Timeout));
        assert!(listed.retries_on(Failure::Status(503)));
        assert!(!listed.retries_on(Failure::Status(502)));
        assert!(!listed.retries_on(Failure::Status(500)));
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = policy(vec![], false);
        for _ in 0..100 {
            let first = p.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(150));
            let third = p.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(600));
            assert!(p.backoff(40) <= Duration::from_millis(100 * 64 * 3 / 2));
        }
    }

    #[test]
    fn routes_without_policies_have_none() {
        let mut route = Route::default();
        assert_eq!(RoutePolicy::of(&route), None);
        route.retries = Some(Retries::default());
        assert_eq!(RoutePolicy::of(&route), None, "zero attempts is no policy");
        route.timeout = Some(ConfigDuration::from_millis(1500));
        assert_eq!(
            RoutePolicy::of(&route).unwrap().timeout,
            Some(Duration::from_millis(1500))
        );
    }
}
