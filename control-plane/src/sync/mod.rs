//! ConfigSync: the gRPC stream over which workers receive config revisions and answer with
//! ACK or NACK.

mod server;
mod session;

pub use server::SyncService;

#[cfg(test)]
mod tests;
