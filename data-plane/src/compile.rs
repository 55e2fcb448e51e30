//! Turns a validated [`Config`] into the form the request path reads: a route table, upstreams
//! with their runtime state from the [`Registry`], and the routes' timeout and retry policies.
//! Runs off the hot path, once per revision.

use std::collections::HashMap;

use gateway_config::Config;

use crate::registry::Registry;
use crate::retry::RoutePolicy;
use crate::routing::{RouteError, RouteTable};
use crate::upstream::{CompiledUpstream, UpstreamError};

/// One revision of the configuration, in its domain form (kept for deltas and digests) and its
/// compiled form.
#[derive(Debug)]
pub struct Compiled {
    pub revision: u64,
    pub digest: String,
    pub config: Config,
    pub routes: RouteTable,
    /// Indexed by the upstream indices stored in the route table.
    pub upstreams: Vec<CompiledUpstream>,
    /// Timeout and retry policies of the routes that set one, by route name.
    policies: HashMap<Box<str>, RoutePolicy>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Route(#[from] RouteError),
}

impl Compiled {
    /// Compiles with the worker's upstream registry.
    pub fn compile(revision: u64, digest: String, config: Config) -> Result<Self, CompileError> {
        Self::compile_in(Registry::global(), revision, digest, config)
    }

    pub fn compile_in(
        registry: &Registry,
        revision: u64,
        digest: String,
        config: Config,
    ) -> Result<Self, CompileError> {
        let upstreams = config
            .upstreams
            .values()
            .map(|u| CompiledUpstream::compile_in(registry, u))
            .collect::<Result<Vec<_>, _>>()?;
        let policies = config
            .routes
            .values()
            .filter_map(|r| Some((r.name.as_str().into(), RoutePolicy::of(r)?)))
            .collect();
        let index: HashMap<&str, usize> = config
            .upstreams
            .keys()
            .enumerate()
            .map(|(i, name)| (name.as_str(), i))
            .collect();
        let routes = RouteTable::build(&config, |name| index.get(name).copied())?;
        Ok(Compiled {
            revision,
            digest,
            config,
            routes,
            upstreams,
            policies,
        })
    }

    /// The timeout and retry policy of route `name`, when it sets one.
    #[inline]
    pub fn route_policy(&self, name: &str) -> Option<RoutePolicy> {
        if self.policies.is_empty() {
            return None;
        }
        self.policies.get(name).copied()
    }
}
