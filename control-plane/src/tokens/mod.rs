//! Admin API tokens: who may call the admin API and with which role. A token is a random secret
//! shown once when it is created; the database keeps only its SHA-256 ([`secret`]). Each replica
//! keeps the tokens it has seen in memory and refreshes them from the database ([`registry`]),
//! and counts failed attempts per client address ([`attempts`]).

pub mod attempts;
pub mod registry;
pub mod role;
pub mod secret;

pub use registry::{Bootstrap, Known, Lookup, Tokens};
pub use role::Role;
