//! The state every handler of the admin API is given. A leaf of its own, so that handlers take it
//! from here and the module that composes them into a router is imported by none of them.

use crate::metrics::Metrics;
use crate::service::ConfigService;
use crate::tokens::Tokens;

/// Which endpoints need no token at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenEndpoints {
    /// `/healthz` and `/readyz` only.
    Probes,
    /// Also `/metrics` and `/openapi.json`.
    #[default]
    ProbesMetricsAndSchema,
}

/// What every handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Every write goes through it; reads use its store and its latest snapshot.
    pub service: ConfigService,
    pub metrics: Metrics,
    /// Who may call, once any token exists.
    pub tokens: Tokens,
    pub open_endpoints: OpenEndpoints,
}
