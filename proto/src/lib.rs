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
