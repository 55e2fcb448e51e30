//! ConfigSync, worker side: a client that keeps one stream open to one of the control planes
//! ([`client`]), the logic that turns each push into a served config or a NACK ([`apply`]), and
//! the local cache that lets a restarted worker serve before any control plane answers
//! ([`cache`]), written in the background ([`persist`]).

pub mod apply;
pub mod cache;
pub mod client;
pub mod persist;

pub use cache::Cache;
pub use client::{ClientSecurity, SyncSettings, run};

#[cfg(test)]
mod tests;
