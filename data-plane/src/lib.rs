//! The gateway's data-plane worker: a reverse proxy that serves whatever configuration the control
//! plane last pushed over ConfigSync.
//!
//! Requests are matched against a compiled route table that lives behind one atomic pointer
//! (`served::State`); the sync client compiles every new revision off the hot path and swaps it in
//! with one store, so a new revision never disturbs a client connection. Every applied revision is
//! also written to a local cache file, so that a restarted worker serves at once, before any
//! control plane answers; on SIGTERM the worker drains (`drain`) instead of dropping requests.
//!
//! The modules form layers, each importing only the layers below it (checked by the workspace's
//! layer test):
//!
//! - leaves: `body`, `crypto` (the one rustls provider), `error`, `keys`, `balance`, `retry`
//!   (and, outside the crate, the `gateway-http1` codec);
//! - `filters` (a route's own filters, in their fixed order) and `observe` (metrics);
//! - `routing`, `upstream` and `tls` (certificates by server name, handshakes), which never
//!   import each other;
//! - `served`: the served config, compiled with what it carries over from the revision before;
//! - `proxy`: the request path's orchestration, forwarding rules, retries, tunnels, mirrors;
//! - `listener`: accepting connections and serving HTTP/1 and HTTP/2 on them;
//! - `sync`, `status`, `drain`, `run`, `cli` and `front_door` (the listener and proxy on their
//!   own, for harnesses): the lifecycle, the only code that knows every layer.

mod balance;
mod body;
mod crypto;
mod error;
mod filters;
mod front_door;
mod keys;
mod listener;
mod observe;
mod proxy;
mod retry;
mod routing;
mod served;
mod status;
mod sync;
mod tls;
mod upstream;

pub mod cli;
mod drain;
pub mod run;

pub use cli::Cli;
pub use run::{Exit, RunError, run};

// For harnesses that drive the request path with raw bytes (the request-path fuzz target).
pub use front_door::{FrontDoorError, FrontDoorSettings, start_front_door};

// For the benchmarks.
pub use routing::{RequestInfo, RouteTable};
pub use served::{Carryover, Compiled, ServedConfig};
pub use sync::apply::prepare;
