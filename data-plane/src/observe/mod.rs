//! What the worker tells about its own work: the Prometheus metrics of the status port
//! ([`metrics`]). Counting happens on the request path, so it costs an atomic add per event and
//! the text is only put together when scraped; access logs and traces belong here too.

pub mod metrics;

pub use metrics::Handshake;
