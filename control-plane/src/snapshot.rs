//! The latest committed config inside this process, shared with every ConfigSync stream.
//!
//! Local writes publish their result at once; a poller also watches `revision_head` so that
//! changes committed by another replica (or any other process) on the same database reach this
//! replica's workers within about a second.

use std::sync::Arc;
use std::time::Duration;

use gateway_config::Config;
use gateway_proto::v1;
use tokio::sync::watch;

use crate::store::{LatestConfig, Store};

/// How often the database is asked whether the revision moved.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// One revision of the config, with its push message prebuilt once for all streams.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub revision: u64,
    pub digest: String,
    pub committed_at_unix_ms: i64,
    pub config: Config,
    pub push: v1::ConfigPush,
}

impl From<LatestConfig> for Snapshot {
    fn from(latest: LatestConfig) -> Self {
        let revision = u64::try_from(latest.revision).unwrap_or(0);
        let push = v1::ConfigPush {
            revision,
            digest: latest.digest.clone(),
            base_revision: 0,
            upserts: gateway_config::resources_from_config(&latest.config),
            removals: Vec::new(),
            committed_at_unix_ms: latest.committed_at,
        };
        Snapshot {
            revision,
            digest: latest.digest,
            committed_at_unix_ms: latest.committed_at,
            config: latest.config,
            push,
        }
    }
}

/// Publishes snapshots; revisions only ever move forward, whichever path delivers them first.
#[derive(Debug, Clone)]
pub struct SnapshotHub {
    sender: Arc<watch::Sender<Arc<Snapshot>>>,
}

impl SnapshotHub {
    pub fn new(initial: Snapshot) -> Self {
        let (sender, _) = watch::channel(Arc::new(initial));
        SnapshotHub {
            sender: Arc::new(sender),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.sender.subscribe()
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.sender.borrow().clone()
    }

    /// Replaces the snapshot if `snapshot` is newer; returns whether it did.
    pub fn publish(&self, snapshot: Snapshot) -> bool {
        let snapshot = Arc::new(snapshot);
        self.sender.send_if_modified(|current| {
            if snapshot.revision > current.revision {
                *current = snapshot;
                true
            } else {
                false
            }
        })
    }

    /// Reloads from the database whenever `revision_head` moved past the published revision,
    /// until `shutdown` turns true.
    pub async fn poll(self, store: Store, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = crate::stopping(&mut shutdown) => return,
            }
            let head = match store.head_revision().await {
                Ok(head) => head,
                Err(error) => {
                    tracing::warn!(%error, "could not read the latest revision");
                    continue;
                }
            };
            if u64::try_from(head).unwrap_or(0) <= self.current().revision {
                continue;
            }
            match store.latest_config().await {
                Ok(latest) => {
                    let revision = latest.revision;
                    if self.publish(latest.into()) {
                        tracing::info!(revision, "loaded a revision committed elsewhere");
                    }
                }
                Err(error) => tracing::warn!(%error, "could not load the latest config"),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn snapshot(revision: i64) -> Snapshot {
        let config = Config::default();
        Snapshot::from(LatestConfig {
            revision,
            committed_at: 7,
            digest: gateway_config::digest(&config),
            config,
        })
    }

    #[test]
    fn revisions_only_move_forward() {
        let hub = SnapshotHub::new(snapshot(0));
        let mut rx = hub.subscribe();
        assert!(hub.publish(snapshot(2)));
        assert!(!hub.publish(snapshot(1)));
        assert!(!hub.publish(snapshot(2)));
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().revision, 2);
        assert_eq!(hub.current().push.revision, 2);
        assert_eq!(hub.current().push.base_revision, 0);
        assert_eq!(hub.current().push.committed_at_unix_ms, 7);
    }
}
