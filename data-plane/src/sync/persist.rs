//! Writing the served config to the cache file in the background, off the stream: a push is
//! answered and the next one read while the file is written, and the writes of a burst of
//! revisions coalesce into one. At 100,000 routes the file is several megabytes with an fsync, so
//! writing it for every revision would cost each worker more than applying the revision did.
//!
//! After a write, the writer rests for [`COOL_DOWN`] (up to half as long again); whatever was
//! applied meanwhile is written once, as the latest revision, when it wakes. The file therefore
//! trails the served config by at most that long (plus the write itself), which is all a crash
//! without a control plane can lose: a worker that reaches a control plane catches up at once. A
//! worker that stops on a signal loses nothing: [`CacheFlush::finish`] writes the latest revision
//! without waiting out the rest. The status port reports the revision the file holds.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::served::{Compiled, State};
use crate::sync::cache::Cache;

/// The rest between two writes of the cache file.
pub const COOL_DOWN: Duration = Duration::from_secs(5);

/// The latest applied config, with its commit time, waiting to be written.
type Latest = Option<(Arc<Compiled>, i64)>;

/// Hands applied configs to the writer task, which runs until every clone is dropped or
/// [`CacheFlush::finish`] is called.
#[derive(Debug, Clone)]
pub struct CacheWriter {
    latest: Arc<watch::Sender<Latest>>,
}

/// Ends the writer task once the latest offer is on disk.
#[derive(Debug)]
pub struct CacheFlush {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl CacheWriter {
    /// Starts the writer for `cache`, which already holds what `state` serves now (restored
    /// from it, or nothing); `state` learns the revision of every file written.
    pub fn start(cache: Cache, state: Arc<State>) -> (CacheWriter, CacheFlush) {
        let cached = state.current().map(|c| (c.revision, c.digest.clone()));
        if let Some((revision, _)) = &cached {
            state.set_cached_revision(*revision);
        }
        let (latest, receiver) = watch::channel(None);
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(write_latest(cache, receiver, cached, state, stop.clone()));
        (
            CacheWriter {
                latest: Arc::new(latest),
            },
            CacheFlush { stop, task },
        )
    }

    /// Asks for `compiled` to be written, in place of anything not written yet.
    pub fn offer(&self, compiled: Arc<Compiled>, committed_at_unix_ms: i64) {
        self.latest
            .send_replace(Some((compiled, committed_at_unix_ms)));
    }
}

impl CacheFlush {
    /// Writes what was offered last and not written yet, then ends the writer; gives up after
    /// `limit`, so that a stuck disk cannot hold a worker's exit.
    pub async fn finish(self, limit: Duration) {
        self.stop.notify_one();
        if tokio::time::timeout(limit, self.task).await.is_err() {
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "the configuration cache was not written before the exit"
            );
        }
    }
}

async fn write_latest(
    cache: Cache,
    mut receiver: watch::Receiver<Latest>,
    mut cached: Option<(u64, String)>,
    state: Arc<State>,
    stop: Arc<Notify>,
) {
    let mut stopping = false;
    loop {
        if !stopping {
            tokio::select! {
                // An error means every sender is gone: the last offer is still written.
                changed = receiver.changed() => stopping = changed.is_err(),
                () = stop.notified() => stopping = true,
            }
        }
        let latest = receiver.borrow_and_update().clone();
        if let Some((compiled, committed_at)) = latest {
            let key = (compiled.revision, compiled.digest.clone());
            if cached.as_ref() != Some(&key) {
                let cache = cache.clone();
                let written = tokio::task::spawn_blocking(move || {
                    cache.write(&Cache::snapshot(&compiled, committed_at))
                })
                .await;
                match written {
                    Ok(Ok(())) => {
                        state.set_cached_revision(key.0);
                        cached = Some(key);
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "cannot update the configuration cache")
                    }
                    Err(error) => tracing::warn!(%error, "the cache writer failed"),
                }
            }
        }
        if stopping {
            return;
        }
        // Up to half as long again, at random: workers that applied the same revisions together
        // do not all write their files at the same moment.
        let rest = COOL_DOWN.mul_f64(1.0 + fastrand::f64() / 2.0);
        tokio::select! {
            () = tokio::time::sleep(rest) => {}
            () = stop.notified() => stopping = true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::{Config, digest};

    use super::*;
    use crate::served::NodeIdentity;

    fn compiled(revision: u64, prefix: &str) -> Arc<Compiled> {
        let json = format!(
            r#"{{"upstreams": [{{"name": "api", "targets": [{{"address": "127.0.0.1:1"}}]}}],
                "routes": [{{"name": "r", "paths": [{{"prefix": "{prefix}"}}],
                             "backends": [{{"upstream": "api"}}]}}]}}"#
        );
        let config: Config = serde_json::from_str(&json).unwrap();
        Arc::new(Compiled::compile(revision, digest(&config), config).unwrap())
    }

    fn revision_on_disk(cache: &Cache) -> Option<u64> {
        cache.load(&Arc::default()).unwrap().map(|c| c.revision)
    }

    async fn wait_for(state: &State, revision: u64) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while state.cached_revision() != Some(revision) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_burst_is_written_once_after_the_rest_and_a_flush_writes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("g.pb"));
        let state = Arc::new(State::new(NodeIdentity {
            id: "n".into(),
            group: "g".into(),
        }));
        let (writer, flush) = CacheWriter::start(cache.clone(), state.clone());
        assert_eq!(state.cached_revision(), None);

        // The first offer is written at once; the ones during the rest wait for its end.
        writer.offer(compiled(1, "/a"), 0);
        wait_for(&state, 1).await;
        assert_eq!(revision_on_disk(&cache), Some(1));
        writer.offer(compiled(2, "/b"), 0);
        writer.offer(compiled(3, "/c"), 0);
        tokio::task::yield_now().await;
        assert_eq!(state.cached_revision(), Some(1));
        assert_eq!(revision_on_disk(&cache), Some(1));

        // Stopping does not wait out the rest: the latest offer is on disk when finish returns.
        flush.finish(Duration::from_secs(10)).await;
        assert_eq!(state.cached_revision(), Some(3));
        assert_eq!(revision_on_disk(&cache), Some(3));
    }

    #[tokio::test]
    async fn a_restored_file_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("g.pb"));
        let served = compiled(4, "/a");
        cache.write(&Cache::snapshot(&served, 0)).unwrap();
        let state = Arc::new(State::new(NodeIdentity {
            id: "n".into(),
            group: "g".into(),
        }));
        assert!(cache.restore(&state));
        let (writer, flush) = CacheWriter::start(cache.clone(), state.clone());
        assert_eq!(state.cached_revision(), Some(4));
        std::fs::remove_file(cache.path()).unwrap();
        writer.offer(state.current().unwrap(), 0);
        flush.finish(Duration::from_secs(10)).await;
        assert!(cache.load(&Arc::default()).unwrap().is_none());
    }
}
