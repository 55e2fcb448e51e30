//! Writing the served config to the cache file in the background, off the stream: a push is
//! answered and the next one read while the file is written, and the writes of a burst of
//! revisions coalesce into one. At 100,000 routes the file is several megabytes with an fsync, so
//! writing it for every revision would cost each worker more than applying the revision did.
//!
//! After a write, the writer rests for [`COOL_DOWN`] (up to half as long again); whatever was applied meanwhile is written
//! once, as the latest revision, when it wakes. The file therefore trails the served config by
//! at most that long (plus the write itself), which is all a restart without a control plane
//! can lose: a worker that reaches a control plane catches up at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::served::Compiled;
use crate::sync::cache::Cache;

/// The rest between two writes of the cache file.
pub const COOL_DOWN: Duration = Duration::from_secs(5);

/// The latest applied config, with its commit time, waiting to be written.
type Latest = Option<(Arc<Compiled>, i64)>;

/// Hands applied configs to the writer task, which runs until this is dropped.
#[derive(Debug)]
pub struct CacheWriter {
    latest: watch::Sender<Latest>,
}

impl CacheWriter {
    /// Starts the writer; `cached` is the revision and digest the file already holds.
    pub fn start(cache: Cache, cached: Option<(u64, String)>) -> CacheWriter {
        let (latest, receiver) = watch::channel(None);
        tokio::spawn(write_latest(cache, receiver, cached));
        CacheWriter { latest }
    }

    /// Asks for `compiled` to be written, in place of anything not written yet.
    pub fn offer(&self, compiled: Arc<Compiled>, committed_at_unix_ms: i64) {
        self.latest
            .send_replace(Some((compiled, committed_at_unix_ms)));
    }
}

async fn write_latest(
    cache: Cache,
    mut receiver: watch::Receiver<Latest>,
    mut cached: Option<(u64, String)>,
) {
    loop {
        // Also returns when the sender is gone, so that a last offer is still written.
        let open = receiver.changed().await.is_ok();
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
                    Ok(Ok(())) => cached = Some(key),
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "cannot update the configuration cache")
                    }
                    Err(error) => tracing::warn!(%error, "the cache writer failed"),
                }
            }
        }
        if !open {
            return;
        }
        // Up to half as long again, at random: workers that applied the same revisions together
        // do not all write their files at the same moment.
        tokio::time::sleep(COOL_DOWN.mul_f64(1.0 + fastrand::f64() / 2.0)).await;
    }
}
