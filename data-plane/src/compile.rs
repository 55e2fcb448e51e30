//! Turns a validated [`Config`] into the form the request path reads: a route table and upstreams
//! with pre-parsed authorities and ready balancers. Runs off the hot path, once per revision.

use std::collections::HashMap;

use gateway_config::Config;

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
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Route(#[from] RouteError),
}

impl Compiled {
    pub fn compile(revision: u64, digest: String, config: Config) -> Result<Self, CompileError> {
        let upstreams = config
            .upstreams
            .values()
            .map(CompiledUpstream::compile)
            .collect::<Result<Vec<_>, _>>()?;
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
        })
    }
}
