//! ConfigSync, worker side: a client that keeps one stream open to the control plane
//! ([`client`]) and the logic that turns each push into a served config or a NACK ([`apply`]).

pub mod apply;
pub mod client;

pub use apply::{ApplyError, apply_push, handle_push};
pub use client::{SyncSettings, run};

#[cfg(test)]
mod tests;
