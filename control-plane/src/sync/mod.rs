//! ConfigSync: the gRPC stream over which workers receive config revisions and answer with
//! ACK or NACK.

mod answers;
mod auth;
mod server;
mod session;
pub mod tls;

pub use auth::SyncAuth;
pub use server::SyncService;

#[cfg(test)]
mod tests;
