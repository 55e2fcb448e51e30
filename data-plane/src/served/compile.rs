//! Turns a validated config into the form the request path reads: a route table, upstreams
//! with their runtime state from the registry, and the certificates ready for TLS handshakes.
//! Runs off the hot path, once per revision.
//!
//! A revision that keeps every upstream name is compiled as a patch of the one before: only the
//! changed routes are compiled, and unchanged upstreams keep their compiled form. What survives
//! from one revision to the next (upstream runtimes, compiled regexes) lives in a [`Carryover`]
//! that every compiled revision keeps a handle to, so a patch uses exactly what the revision it
//! patches was built with.

use std::collections::HashMap;
use std::sync::Arc;

use gateway_config::Config;

use super::config::{Changes, ServedConfig};
use crate::routing::{RegexMemo, RouteError, RouteTable};
use crate::tls::{CertTable, Fallback, Sessions, TableError};
use crate::upstream::{CompiledUpstream, Registry, UpstreamError};

/// State carried from one revision to the next: the runtime of each upstream, the compiled
/// regexes, and the TLS sessions clients may resume. A worker has one, owned by its live state.
#[derive(Debug, Default)]
pub struct Carryover {
    pub upstreams: Registry,
    pub regexes: Arc<RegexMemo>,
    pub tls_sessions: Sessions,
    /// What a TLS client that names no certificate of the config gets.
    pub tls_fallback: Fallback,
}

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
    /// The certificates, for the TLS listeners.
    pub tls: Arc<CertTable>,
    carryover: Arc<Carryover>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Certificate(#[from] TableError),
}

impl Compiled {
    /// Compiles a plain config with a carryover of its own (for tests and benchmarks; a worker
    /// compiles with the carryover of its live state).
    pub fn compile(revision: u64, digest: String, config: Config) -> Result<Self, CompileError> {
        Self::build(
            &Arc::default(),
            revision,
            digest,
            ServedConfig::from_config(&config),
        )
    }

    /// Compiles everything, with the upstream runtimes and regexes of `carryover`.
    pub fn build(
        carryover: &Arc<Carryover>,
        revision: u64,
        digest: String,
        config: ServedConfig,
    ) -> Result<Self, CompileError> {
        let upstreams = config
            .upstreams()
            .map(|u| CompiledUpstream::compile_in(&carryover.upstreams, &u.value))
            .collect::<Result<Vec<_>, _>>()?;
        let index = upstream_index(&config);
        let routes = RouteTable::build_from(
            config.routes(),
            |name| index.get(name).copied(),
            carryover.regexes.clone(),
        )?;
        let tls = Arc::new(CertTable::build(
            config.certificates(),
            None,
            &carryover.tls_sessions,
            &carryover.tls_fallback,
        )?);
        Ok(Compiled {
            revision,
            digest,
            config,
            routes,
            upstreams,
            tls,
            carryover: carryover.clone(),
        })
    }

    /// Compiles `config`, which is `self.config` with `changes` applied, reusing everything the
    /// changes do not touch, with the carryover `self` was built with.
    pub fn patch(
        &self,
        revision: u64,
        digest: String,
        config: ServedConfig,
        changes: &Changes,
    ) -> Result<Self, CompileError> {
        if changes.upstream_names_changed(&self.config) {
            // Upstream indices move: every route refers to them.
            return Self::build(&self.carryover, revision, digest, config);
        }
        let registry = &self.carryover.upstreams;
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
        let tls = if changes.certificates_changed {
            Arc::new(CertTable::build(
                config.certificates(),
                Some(&self.tls),
                &self.carryover.tls_sessions,
                &self.carryover.tls_fallback,
            )?)
        } else {
            self.tls.clone()
        };
        Ok(Compiled {
            revision,
            digest,
            config,
            routes,
            upstreams,
            tls,
            carryover: self.carryover.clone(),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::{Backend, PathMatch, Route, Target, Upstream, digest};
    use gateway_proto::v1;

    use super::*;

    fn config(address: &str) -> Config {
        let mut config = Config::default();
        config.upstreams.insert(
            "u".into(),
            Upstream {
                name: "u".into(),
                targets: vec![Target {
                    address: address.into(),
                    weight: 1,
                }],
                ..Default::default()
            },
        );
        config.routes.insert(
            "r".into(),
            Route {
                name: "r".into(),
                paths: vec![PathMatch::Prefix("/".into())],
                backends: vec![Backend {
                    upstream: "u".into(),
                    weight: 1,
                }],
                ..Default::default()
            },
        );
        config
    }

    #[test]
    fn a_patch_takes_upstream_runtimes_from_the_carryover_it_was_built_with() {
        let carryover = Arc::new(Carryover::default());
        let before = config("127.0.0.1:1");
        let base = Compiled::build(
            &carryover,
            1,
            digest(&before),
            ServedConfig::from_config(&before),
        )
        .unwrap();
        let after = config("127.0.0.1:2");
        let upsert = v1::Resource {
            resource: Some(v1::resource::Resource::Upstream(
                (&after.upstreams["u"]).into(),
            )),
        };
        let (next, changes) = base.config.with_changes(vec![upsert], vec![]).unwrap();
        let patched = base.patch(2, digest(&after), next, &changes).unwrap();
        let runtime = carryover.upstreams.runtime(&after.upstreams["u"]).unwrap();
        assert!(
            Arc::ptr_eq(patched.upstreams[0].runtime(), &runtime),
            "the patched upstream's runtime is not the carryover's"
        );
    }
}
