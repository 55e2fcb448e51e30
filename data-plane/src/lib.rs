//! The gateway's data-plane worker: a reverse proxy that serves whatever configuration the control
//! plane last pushed over ConfigSync.
//!
//! Requests are matched against a compiled route table that lives behind one atomic pointer
//! ([`state::State`]); the sync client compiles every new revision off the hot path and swaps it in
//! with one store, so a new revision never disturbs a client connection. Every applied revision is
//! also written to a local cache file, so that a restarted worker serves at once, before any
//! control plane answers; on SIGTERM the worker drains ([`drain`]) instead of dropping requests.

pub mod balance;
pub mod circuit;
pub mod cli;
pub mod compile;
pub mod connector;
pub mod dns;
pub mod drain;
pub mod exchange;
pub mod forward;
pub mod health;
pub mod http1_fields;
pub mod http1_pool;
pub mod http2_pool;
pub mod listener;
pub mod metrics;
pub mod proxy;
pub mod registry;
pub mod retry;
pub mod routing;
pub mod run;
pub mod served;
pub mod state;
pub mod status;
pub mod sync;
pub mod transport;
pub mod upstream;

pub use cli::Cli;
pub use run::{Exit, RunError, run};
