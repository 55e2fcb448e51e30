//! The gateway's data-plane worker: a reverse proxy that serves whatever configuration the control
//! plane last pushed over ConfigSync.
//!
//! Requests are matched against a compiled route table that lives behind one atomic pointer
//! ([`state::State`]); the sync client compiles every new revision off the hot path and swaps it in
//! with one store, so a new revision never disturbs a client connection.

pub mod balance;
pub mod cli;
pub mod compile;
pub mod listener;
pub mod proxy;
pub mod routing;
pub mod run;
pub mod state;
pub mod status;
pub mod sync;
pub mod upstream;

pub use cli::Cli;
pub use run::{RunError, run};
