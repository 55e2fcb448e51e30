//! An upstream as one revision sees it: its name and its runtime state from the [`Registry`],
//! which carries health, counters and pooled connections over to the next revision while the
//! upstream's settings stay the same.

use std::sync::Arc;

use gateway_config::Upstream;

use super::registry::Registry;
use super::runtime::{UpstreamError, UpstreamRuntime};

/// Cheap to clone: the runtime state is shared.
#[derive(Debug, Clone)]
pub struct CompiledUpstream {
    pub name: Box<str>,
    runtime: Arc<UpstreamRuntime>,
}

impl CompiledUpstream {
    /// Compiles `upstream` with the runtime `registry` holds for it, or a new one.
    pub fn compile_in(registry: &Registry, upstream: &Upstream) -> Result<Self, UpstreamError> {
        Ok(CompiledUpstream {
            name: upstream.name.as_str().into(),
            runtime: registry.runtime(upstream)?,
        })
    }

    pub fn runtime(&self) -> &Arc<UpstreamRuntime> {
        &self.runtime
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::Target;

    use super::*;

    fn upstream(targets: &[(&str, u32)]) -> Upstream {
        Upstream {
            name: "upstream-rs-test".into(),
            tags: vec![],
            targets: targets
                .iter()
                .map(|(a, w)| Target {
                    address: (*a).into(),
                    weight: *w,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn compiles_targets_and_balances() {
        let registry = Registry::default();
        let u = CompiledUpstream::compile_in(
            &registry,
            &upstream(&[("10.0.0.1:80", 1), ("[::1]:8080", 1)]),
        )
        .unwrap();
        let runtime = u.runtime();
        assert_eq!(runtime.targets().len(), 2);
        assert_eq!(runtime.targets()[1].host_header, "[::1]:8080");
        let a = runtime.choose(None, 0);
        let b = runtime.choose(None, 0);
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_what_cannot_be_proxied_to() {
        let registry = Registry::default();
        assert!(matches!(
            CompiledUpstream::compile_in(&registry, &upstream(&[("no port", 1)])),
            Err(UpstreamError::BadAddress { index: 0, .. })
        ));
        assert!(matches!(
            CompiledUpstream::compile_in(&registry, &upstream(&[("h:1", 0)])),
            Err(UpstreamError::NoWeight { .. })
        ));
    }
}
