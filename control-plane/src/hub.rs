//! The latest committed config inside this process, shared with every ConfigSync stream.
//!
//! Local writes publish their result at once (see [`crate::service`]). Changes committed by
//! another replica reach this one through Postgres NOTIFY (a LISTEN task wakes the loader at once)
//! and, as a fallback and on SQLite, a poll of `revision_head` every second.
//!
//! The hub also keeps the last few snapshots (sharing their entities), so that deltas from recent
//! revisions are built from what each revision changed, with no database read, and the deltas
//! built from them.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::delta::DeltaCache;
use crate::snapshot::Snapshot;
use crate::store::{Key, Store};

/// How often the database is asked whether the revision moved.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How many recent snapshots are kept in memory as delta bases.
pub const RECENT: usize = 16;
/// Pause before listening again after the LISTEN connection failed.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// Publishes snapshots; revisions only ever move forward, whichever path delivers them first.
#[derive(Debug, Clone)]
pub struct SnapshotHub {
    sender: Arc<watch::Sender<Arc<Snapshot>>>,
    recent: Arc<Mutex<VecDeque<Arc<Snapshot>>>>,
    deltas: Arc<DeltaCache>,
    /// Woken by NOTIFY to reload without waiting for the next poll.
    wake: Arc<Notify>,
}

impl SnapshotHub {
    pub fn new(initial: Snapshot) -> Self {
        let initial = Arc::new(initial);
        let (sender, _) = watch::channel(initial.clone());
        SnapshotHub {
            sender: Arc::new(sender),
            recent: Arc::new(Mutex::new(VecDeque::from([initial]))),
            deltas: Arc::new(DeltaCache::default()),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Every entity that differs between revision `base` and `target`, when the recent snapshots
    /// chain back to `base`; None otherwise.
    pub fn changed_between(&self, base: u64, target: &Snapshot) -> Option<BTreeSet<Key>> {
        let mut keys = BTreeSet::new();
        let (mut since, mut changed) = target.changed.clone()?;
        loop {
            keys.extend(changed.iter().cloned());
            if since == base {
                return Some(keys);
            }
            if since < base {
                return None;
            }
            (since, changed) = self.recent(since)?.changed.clone()?;
        }
    }

    /// A recent snapshot of `revision`, if it is still in memory.
    pub fn recent(&self, revision: u64) -> Option<Arc<Snapshot>> {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|s| s.revision == revision)
            .cloned()
    }

    pub fn deltas(&self) -> &DeltaCache {
        &self.deltas
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
        let published = self.sender.send_if_modified(|current| {
            if snapshot.revision > current.revision {
                *current = snapshot.clone();
                true
            } else {
                false
            }
        });
        if published {
            let mut recent = self
                .recent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Kept as a delta base only: its full push, if any is built, stays with the
            // current snapshot and goes when the streams move past it.
            recent.push_back(Arc::new(snapshot.without_push()));
            while recent.len() > RECENT {
                recent.pop_front();
            }
            drop(recent);
            self.deltas.retain_target(snapshot.revision);
        }
        published
    }

    /// Follows Postgres NOTIFY on `url` and wakes the loader for each new revision committed by
    /// another replica than `replica` (whose writes are published as they commit), until
    /// `shutdown`. A lost connection also wakes it, since notifications may have been missed.
    pub async fn listen(self, url: String, replica: Arc<str>, mut shutdown: watch::Receiver<bool>) {
        use sqlx::postgres::PgListener;
        loop {
            let connected = async {
                let mut listener = PgListener::connect(&url).await?;
                listener.listen(crate::store::NOTIFY_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                result = connected => match result {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::warn!(%error, "cannot LISTEN for new revisions; polling meanwhile");
                        tokio::select! {
                            () = tokio::time::sleep(LISTEN_RETRY) => continue,
                            () = crate::shutdown::stopping(&mut shutdown) => return,
                        }
                    }
                },
                () = crate::shutdown::stopping(&mut shutdown) => return,
            };
            tracing::debug!("listening for new revisions");
            loop {
                tokio::select! {
                    received = listener.try_recv() => match received {
                        Ok(Some(notification)) => {
                            let payload = notification.payload();
                            tracing::debug!(payload, "revision notified");
                            // Loading our own write again would only compete with pushing it.
                            if !crate::store::notified_by(payload, &replica) {
                                self.wake.notify_one();
                            }
                        }
                        Ok(None) => self.wake.notify_one(),
                        Err(error) => {
                            tracing::warn!(%error, "lost the LISTEN connection");
                            self.wake.notify_one();
                            break;
                        }
                    },
                    () = crate::shutdown::stopping(&mut shutdown) => return,
                }
            }
        }
    }

    /// Reloads from the database whenever `revision_head` moved past the published revision,
    /// until `shutdown` turns true.
    pub async fn poll(self, store: Store, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = self.wake.notified() => {}
                () = crate::shutdown::stopping(&mut shutdown) => return,
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
            match store.catch_up(&self.current().state).await {
                Ok(latest) => {
                    let revision = latest.state.revision;
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
    use gateway_config::Config;

    use super::*;

    fn snapshot(revision: i64) -> Snapshot {
        Snapshot::of(revision, 7, Config::default())
    }

    #[test]
    fn recent_snapshots_are_kept() {
        let hub = SnapshotHub::new(snapshot(0));
        for revision in 1..=20 {
            hub.publish(snapshot(revision));
        }
        assert!(hub.recent(20).is_some());
        assert!(hub.recent(5).is_some());
        assert!(hub.recent(4).is_none());
    }

    #[tokio::test]
    async fn revisions_only_move_forward() {
        let hub = SnapshotHub::new(snapshot(0));
        let mut rx = hub.subscribe();
        assert!(hub.publish(snapshot(2)));
        assert!(!hub.publish(snapshot(1)));
        assert!(!hub.publish(snapshot(2)));
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().revision, 2);
        let push = hub.current().full_push().await;
        assert_eq!(push.revision, 2);
        assert_eq!(push.base_revision, 0);
        assert_eq!(push.committed_at_unix_ms, 7);
    }
}
