//! The config the worker serves: its domain form, which deltas apply to and the digest and the
//! cache file are computed from ([`config`]); its compiled form, built with the state carried
//! over from the revision before ([`compile`]); and the live state that holds the one being
//! served ([`live`]).

pub mod compile;
pub mod config;
pub mod live;

pub use compile::{Carryover, CompileError, Compiled};
pub use config::ServedConfig;
pub use live::{NodeIdentity, Source, State};
