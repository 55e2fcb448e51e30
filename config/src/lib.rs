//! The one validated configuration model of the gateway.
//!
//! The control plane validates every change against it before storing anything, the worker
//! validates every push against it before compiling, and gatewayctl reads and writes its
//! user-facing (JSON/YAML) shape. Wire messages convert into it with `TryFrom`; nothing else in the
//! gateway consumes wire or storage types directly.

mod diff;
mod digest;
mod model;
mod validate;
mod wire;
pub mod x509;

pub use diff::{Change, Op};
pub use digest::{DigestState, EntityHash, Hashable, digest, digest_of_parts, entity_hash};
pub use model::{
    ActiveHealthCheck, AllUnhealthy, CircuitBreaker, HashOn, HealthCheck, PassiveHealthCheck,
    Protocol, UpstreamTimeouts, UpstreamTls,
};
pub use model::{
    Backend, Balance, Config, Duration, PathMatch, Retries, RetryOn, Route, Target, Upstream,
};
pub use model::{Certificate, ClientAuth, ClientAuthMode, Computed, PrivateKey};
pub use model::{
    DirectResponse, HeaderMatch, HeaderTransform, Mirror, QueryMatch, Redirect, Rewrite, Sticky,
};
pub use model::{IpRestriction, Plugins, RequestId, RequestSizeLimit};
pub use validate::limits;
pub use validate::server_name_conflicts_with;
pub use validate::{ErrorKind, FieldError, Kind, ValidationErrors, validate_name};
pub use validate::{REGEX_SIZE_LIMIT, compile_full_match, expansion_budget_error, parse_ip_rule};
pub use wire::{WireError, config_from_resources, resources_from_config};
