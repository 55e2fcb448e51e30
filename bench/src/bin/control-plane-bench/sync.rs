//! Full syncs: a fresh worker (no cache, revision 0) connecting to the loaded control plane gets
//! the whole config as one snapshot. Timed from starting the process until `/readyz` answers 200
//! and `/status` shows the control plane's latest revision, with its digest checked against the
//! one the control plane recorded for that revision.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;
use futures_util::future::join_all;
use serde::Serialize;

use crate::admin::{Admin, Latest};
use crate::procfs::Memory;
use crate::worker::{Worker, WorkerSettings};

/// Polling a single fresh worker this often costs it little and bounds the error of the time.
const POLL_ONE: Duration = Duration::from_millis(2);
/// Polling many workers at once, more slowly, so that the polls do not take their CPU.
const POLL_MANY: Duration = Duration::from_millis(20);

#[derive(Debug, Serialize)]
pub struct FullSync {
    /// Until `/readyz` said 200 and `/status` showed the latest revision.
    pub seconds: f64,
    /// Until the worker logged that it applied the revision.
    pub logged_seconds: Option<f64>,
    pub revision: u64,
    pub worker_memory: Memory,
}

/// Starts one worker and waits until it serves `latest`.
pub async fn fresh_worker(
    settings: &WorkerSettings,
    admin: &Admin,
    client: &reqwest::Client,
    dir: &Path,
    node_id: &str,
) -> anyhow::Result<(Worker, FullSync)> {
    let latest = admin.latest().await?;
    let started = Instant::now();
    let mut worker = Worker::start(settings, node_id, dir).await?;
    loop {
        if worker.ready(client).await.unwrap_or(false) {
            let served_at = worker.poll_until(client, latest.revision, POLL_ONE).await?;
            let seconds = served_at.duration_since(started).as_secs_f64();
            check_digest(&worker, client, &latest).await?;
            let applied = *worker.applied().borrow();
            let logged_seconds = (applied.revision >= latest.revision)
                .then(|| applied.at.saturating_duration_since(started).as_secs_f64());
            let worker_memory = Memory::of(worker.pid())?;
            let sync = FullSync {
                seconds,
                logged_seconds,
                revision: latest.revision,
                worker_memory,
            };
            return Ok((worker, sync));
        }
        tokio::time::sleep(POLL_ONE).await;
    }
}

#[derive(Debug, Serialize)]
pub struct Fleet {
    pub workers: usize,
    /// From starting them (together) until the last one served the latest revision.
    pub seconds: f64,
}

/// Starts `count` more workers at once and waits until every one serves the latest revision.
pub async fn fleet(
    settings: &WorkerSettings,
    admin: &Admin,
    client: &reqwest::Client,
    dir: &Path,
    count: usize,
    workers: &mut Vec<Worker>,
) -> anyhow::Result<Fleet> {
    let latest = admin.latest().await?;
    let started = Instant::now();
    let first_new = workers.len();
    for i in first_new..first_new + count {
        workers.push(Worker::start(settings, &format!("bench-worker-{i}"), dir).await?);
    }
    let polls = workers[first_new..]
        .iter_mut()
        .map(|worker| worker.poll_until(client, latest.revision, POLL_MANY));
    for served in join_all(polls).await {
        served?;
    }
    let seconds = started.elapsed().as_secs_f64();
    for worker in workers.iter() {
        check_digest(worker, client, &latest).await?;
    }
    // What a worker does once after its first sync (its cache file is the largest) is not part
    // of what the next phase measures: it starts from a settled fleet.
    for worker in workers.iter() {
        while worker.status(client).await?.cached_revision != Some(latest.revision) {
            tokio::time::sleep(POLL_MANY).await;
        }
    }
    Ok(Fleet {
        workers: workers.len(),
        seconds,
    })
}

/// Fails unless the worker serves exactly `latest` (revision and digest).
pub async fn check_digest(
    worker: &Worker,
    client: &reqwest::Client,
    latest: &Latest,
) -> anyhow::Result<()> {
    let status = worker.status(client).await?;
    ensure!(
        status.revision == latest.revision && status.digest == latest.digest,
        "{} serves revision {} ({}), the control plane's latest is {} ({})",
        worker.node_id,
        status.revision,
        status.digest,
        latest.revision,
        latest.digest
    );
    Ok(())
}
