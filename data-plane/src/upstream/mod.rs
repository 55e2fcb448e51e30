//! Everything about the upstreams a revision forwards to, and nothing about routes: the runtime
//! state each upstream keeps across revisions ([`registry`], [`runtime`]: targets, balancer,
//! health and its active probes, circuit breaker, DNS), how connections are opened
//! ([`connector`], [`tls`]) and kept ([`pool`], [`idle`]), how a request travels on them
//! ([`transport`], [`exchange`]), and the response body that holds a request's slots until it
//! ends ([`body`], [`in_flight`]).

pub mod body;
pub mod circuit;
pub mod compiled;
pub mod connector;
pub mod dns;
pub mod error;
pub mod exchange;
pub mod health;
pub mod idle;
pub mod in_flight;
pub mod pool;
pub mod probe;
pub mod registry;
pub mod runtime;
pub mod tls;
pub mod transport;

#[cfg(test)]
pub(crate) mod test_support;

pub use compiled::CompiledUpstream;
pub use registry::Registry;
pub use runtime::{Choice, UpstreamError, UpstreamRuntime};
