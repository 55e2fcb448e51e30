//! The reverse proxy: takes a request from the listener and answers it. [`handler`] orchestrates
//! (routing, the route's filters, the proxy's own rules); [`forwarding`] holds the header rules
//! of a forwarding proxy (RFC 9110 §7.6); [`attempts`] sends the request to a target, with
//! timeouts and retries; [`tunnel`] carries upgraded connections; [`mirror`] sends copies to a
//! route's mirror upstream; [`body`] is what every answer carries.

pub mod attempts;
pub mod body;
pub mod client_address;
pub mod forwarding;
pub mod handler;
pub mod mirror;
pub mod tunnel;

#[cfg(test)]
pub(crate) mod tests;

pub use handler::{Peer, Proxy, ProxySettings};
