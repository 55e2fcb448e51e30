//! ConfigSync: the gRPC stream over which workers receive config revisions and answer with
//! ACK or NACK.

mod auth;
mod server;
mod session;
pub mod tls;

pub use auth::{Peer, SyncAuth, constant_time_eq, subject_of};
pub use server::SyncService;

#[cfg(test)]
mod tests;
