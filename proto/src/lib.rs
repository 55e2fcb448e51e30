//! Generated types for the ConfigSync protocol (`gateway.config.v1`): the bidirectional stream over
//! which the control plane pushes numbered config revisions and workers answer with ACK or NACK.
//! The validated domain model lives in `gateway-config`; these are only the wire shapes.

#![allow(clippy::all, clippy::pedantic)]

pub mod config {
    pub mod v1 {
        tonic::include_proto!("gateway.config.v1");
    }
}

pub use config::v1;

/// The largest ConfigSync push the control plane sends; it refuses a change that would make the
/// full config larger, and workers accept pushes up to it.
pub const MAX_CONFIG_PUSH_BYTES: usize = 256 * 1024 * 1024;
