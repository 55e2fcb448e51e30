//! Turns a validated config into the form the request path reads: a route table and upstreams
//! with their runtime state from the [`Registry`]. Runs off the hot path, once per revision.
//!
//! A revision that keeps every upstream name is compiled as a patch of the one before: only the
//! changed routes are compiled, and unchanged upstreams keep their compiled form.

use std::collections::HashMap;
use std::sync::Arc;

use gateway_config::Config;

use crate::registry::Registry;
use crate::routing::{RouteError, RouteTable};
use crate::served::{Changes, ServedConfig};
use crate::upstream::{CompiledUpstream, UpstreamError};

/// One revision of the configuration, in its domain form (kept for deltas, digests and the
/// cache) and its compiled form.
#[derive(Debug)]
pub struct Compiled {
    pub revision: u64,
    pub digest: String,
    pub config: ServedConfig,
    pub routes: RouteTable,
    /// Indexed by the upstream indices stored in the route table: upstreams in name order.
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
    /// Compiles a plain config with the worker's upstream registry.
    pub fn compile(revision: u64, digest: String, config: Config) -> Result<Self, CompileError> {
        Self::build(revision, digest, ServedConfig::from_config(&config))
    }

    /// Compiles everything with the worker's upstream registry.
    pub fn build(
        revision: u64,
        digest: String,
        config: ServedConfig,
    ) -> Result<Self, CompileError> {
        Self::build_in(Registry::global(), revision, digest, config)
    }

    pub fn build_in(
        registry: &Registry,
        revision: u64,
        digest: String,
        config: ServedConfig,
    ) -> Result<Self, CompileError> {
        let upstreams = config
            .upstreams()
            .map(|u| CompiledUpstream::compile_in(registry, &u.value))
            .collect::<Result<Vec<_>, _>>()?;
        let index = upstream_index(&config);
        let routes = RouteTable::build_from(config.routes(), |name| index.get(name).copied())?;
        Ok(Compiled {
            revision,
            digest,
            config,
            routes,
            upstreams,
        })
    }

    /// Compiles `config`, which is `self.config` with `changes` applied, reusing everything the
    /// changes do not touch.
    pub fn patch(
        &self,
        revision: u64,
        digest: String,
        config: ServedConfig,
        changes: &Changes,
    ) -> Result<Self, CompileError> {
        if changes.upstream_names_changed(&self.config) {
            // Upstream indices move: every route refers to them.
            return Self::build(revision, digest, config);
        }
        let registry = Registry::global();
        let upstreams = config
            .upstreams()
            .zip(self.config.upstreams().zip(&self.upstreams))
            .map(|(now, (before, compiled))| {
                if Arc::ptr_eq(now, before) {
                    Ok(compiled.clone())
                } else {
                    CompiledUpstream::compile_in(registry, &now.value)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let index = upstream_index(&config);
        let routes = self.routes.patch(
            changes.routes_before.iter().map(|r| &r.value),
            changes.routes_after.iter().map(|r| &r.value),
            |name| index.get(name).copied(),
        )?;
        Ok(Compiled {
            revision,
            digest,
            config,
            routes,
            upstreams,
        })
    }
}

fn upstream_index(config: &ServedConfig) -> HashMap<&str, usize> {
    config
        .upstreams()
        .enumerate()
        .map(|(i, u)| (u.value.name.as_str(), i))
        .collect()
}
