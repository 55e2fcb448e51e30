//! The limits and timings of the client side of the proxy, shared by both ways of serving a
//! connection.

use std::time::Duration;

/// Limits of the client side of the proxy.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// Time a client has to send a complete HTTP/1 request head, from its first byte (and a new
    /// connection to start its first request).
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
    /// Whether requests without a body are served by the listener's own HTTP/1 code; off, hyper
    /// serves every request.
    pub http1_fast_path: bool,
    /// How long a connection may have no request in flight before it is closed (HTTP/2 with
    /// GOAWAY). A new connection has `header_read_timeout` for its first request.
    pub idle_timeout: Duration,
    /// Requests served on one client connection before it is closed (HTTP/1 with
    /// `Connection: close` on the last response, HTTP/2 with GOAWAY); 0: no limit.
    pub max_requests_per_connection: usize,
    /// Client connections open at once; at the limit the listener stops accepting (new
    /// connections wait in the kernel's queue) until one closes.
    pub max_connections: usize,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: HYPER_DEFAULT_MAX_HEADERS,
            drain_deadline: Duration::from_secs(30),
            drain_idle_grace: Duration::from_secs(1),
            http1_fast_path: true,
            idle_timeout: Duration::from_secs(60),
            max_requests_per_connection: 1000,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The number of request headers hyper accepts when no limit is set.
pub const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// Client connections open at once when nothing else is known.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
