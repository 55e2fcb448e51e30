//! The config the worker serves: its domain form, which deltas apply to and the digest and the
//! cache file are computed from ([`config`]); its compiled form, built with the state carried
//! over from the revision before ([`compile`]); and the live state that holds the one being
//! served ([`live`]). Successive revisions share what did not change between them
//! ([`shared_map`]).

pub mod compile;
pub mod config;
pub mod live;
pub mod shared_map;

pub use compile::{Carryover, CompileError, Compiled};
pub use config::ServedConfig;
pub use live::{NodeIdentity, Source, State};
