//! Delta pushes: only the entities that changed between a worker's revision and the latest.
//!
//! Many workers usually sit on the same base revision, so each distinct (base, target) delta is
//! built once and shared; a new latest revision makes every cached delta obsolete.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use gateway_config::{Config, Kind};
use gateway_proto::v1;
use tokio::sync::OnceCell;

use crate::snapshot::Snapshot;

/// A delta push and the digest the worker must report for its base, or it gets a full push.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub base_digest: String,
    pub push: v1::ConfigPush,
}

/// The push that turns `base` (the config at `base_revision`) into `target`.
pub fn build(base_revision: u64, base: &Config, base_digest: &str, target: &Snapshot) -> Delta {
    let latest = &target.config;
    let mut upserts = Vec::new();
    let mut removals = Vec::new();
    for (name, upstream) in &latest.upstreams {
        if base.upstreams.get(name) != Some(upstream) {
            upserts.push(v1::Resource {
                resource: Some(v1::resource::Resource::Upstream(upstream.into())),
            });
        }
    }
    for (name, route) in &latest.routes {
        if base.routes.get(name) != Some(route) {
            upserts.push(v1::Resource {
                resource: Some(v1::resource::Resource::Route(route.into())),
            });
        }
    }
    let removed = |kind: Kind, name: &String| v1::ResourceKey {
        kind: v1::Kind::from(kind).into(),
        name: name.clone(),
    };
    for name in base.upstreams.keys() {
        if !latest.upstreams.contains_key(name) {
            removals.push(removed(Kind::Upstream, name));
        }
    }
    for name in base.routes.keys() {
        if !latest.routes.contains_key(name) {
            removals.push(removed(Kind::Route, name));
        }
    }
    Delta {
        base_digest: base_digest.to_owned(),
        push: v1::ConfigPush {
            revision: target.revision,
            digest: target.digest.clone(),
            base_revision,
            upserts,
            removals,
            committed_at_unix_ms: target.committed_at_unix_ms,
        },
    }
}

type Cell = Arc<OnceCell<Arc<Delta>>>;

/// Deltas to the latest revision, by base revision.
#[derive(Debug, Default)]
pub struct DeltaCache {
    entries: Mutex<HashMap<(u64, u64), Cell>>,
}

impl DeltaCache {
    /// The cached delta from `base` to `target`, building it with `build` if no other stream has
    /// (concurrent callers wait for the one build). A failed build is not cached.
    pub async fn get_or_build<F, Fut>(&self, base: u64, target: u64, build: F) -> Option<Arc<Delta>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<Delta>>,
    {
        let cell = {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            entries.entry((base, target)).or_default().clone()
        };
        cell.get_or_try_init(|| async { build().await.map(Arc::new).ok_or(()) })
            .await
            .ok()
            .cloned()
    }

    /// Forgets every delta that does not lead to `latest`.
    pub fn retain_target(&self, latest: u64) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(_, target), _| *target == latest);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn config(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    fn snapshot(revision: i64, config: Config) -> Snapshot {
        Snapshot::of(revision, 9, config)
    }

    #[test]
    fn only_changes_are_sent() {
        let base = config(
            r#"{"upstreams": [{"name": "a", "targets": [{"address": "h:1"}]},
                              {"name": "b", "targets": [{"address": "h:2"}]}]}"#,
        );
        let next = config(
            r#"{"upstreams": [{"name": "a", "targets": [{"address": "h:1"}]},
                              {"name": "c", "targets": [{"address": "h:3"}]}],
                "routes": [{"name": "r", "backends": [{"upstream": "a"}]}]}"#,
        );
        let target = snapshot(7, next.clone());
        let delta = build(3, &base, "d3", &target);
        assert_eq!(delta.push.base_revision, 3);
        assert_eq!(delta.push.revision, 7);
        assert_eq!(delta.push.upserts.len(), 2);
        assert_eq!(delta.push.removals.len(), 1);
        assert_eq!(delta.push.removals[0].name, "b");
        let mut applied = base.clone();
        applied
            .apply_changes(delta.push.upserts, delta.push.removals, false)
            .unwrap();
        assert_eq!(applied, next);
    }

    #[tokio::test]
    async fn each_delta_is_built_once() {
        let cache = DeltaCache::default();
        let builds = AtomicUsize::new(0);
        let target = snapshot(2, Config::default());
        for _ in 0..3 {
            let delta = cache
                .get_or_build(1, 2, || async {
                    builds.fetch_add(1, Ordering::SeqCst);
                    Some(build(1, &Config::default(), "d", &target))
                })
                .await;
            assert!(delta.is_some());
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(cache.get_or_build(0, 2, || async { None }).await.is_none());
        cache.retain_target(3);
        assert!(cache.is_empty());
    }
}
