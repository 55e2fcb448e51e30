//! The reverse proxy: takes a request from the listener, routes it with the live config, rewrites
//! it per RFC 9110 ([`headers`]) and streams it to a target and the answer back ([`handler`]).
//! Failures become static JSON answers ([`error`]).

pub mod actions;
pub mod error;
pub mod handler;
pub mod headers;

#[cfg(test)]
pub(crate) mod tests;

pub use error::ProxyError;
pub use handler::{Peer, Proxy, ProxyBody, ProxySettings};
