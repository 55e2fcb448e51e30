//! Delta pushes: only the entities that changed between a worker's revision and the latest.
//!
//! A delta is built from the set of entities that changed between the two revisions (known from
//! the recent snapshots, or read from the history), never by comparing whole configs. Many
//! workers usually sit on the same base revision, so each distinct (base, target) delta is
//! built once and shared; a new latest revision makes every cached delta obsolete.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use gateway_config::{Certificate, Kind, Route, Upstream};
use gateway_proto::v1;
use tokio::sync::OnceCell;

use crate::snapshot::Snapshot;
use crate::store::{Entity, Key};

/// A delta push and the digest the worker must report for its base, or it gets a full push.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub base_digest: String,
    pub push: v1::ConfigPush,
}

/// The push that turns the config at `base_revision` (digest `base_digest`) into `target`,
/// given every entity that differs between the two: those `target` has are sent, the others
/// removed. It costs in proportion to the change, not to the config.
pub fn build<'a>(
    base_revision: u64,
    base_digest: &str,
    changed: impl IntoIterator<Item = &'a Key>,
    target: &Snapshot,
) -> Delta {
    let latest = &target.state;
    let mut upserts = Vec::new();
    let mut removals = Vec::new();
    for (kind, name) in changed {
        let resource = match kind {
            Kind::Upstream => latest.get::<Upstream>(name).map(|s| s.entity.resource()),
            Kind::Route => latest.get::<Route>(name).map(|s| s.entity.resource()),
            Kind::Certificate => latest.get::<Certificate>(name).map(|s| s.entity.resource()),
        };
        match resource {
            Some(resource) => upserts.push(resource),
            None => removals.push(v1::ResourceKey {
                kind: v1::Kind::from(*kind).into(),
                name: name.clone(),
            }),
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

    use gateway_config::Config;

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
        let changed: Vec<Key> = base
            .diff(&next)
            .into_iter()
            .map(|change| (change.kind, change.name))
            .collect();
        let delta = build(3, "d3", &changed, &target);
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
                    Some(build(1, "d", &[], &target))
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
