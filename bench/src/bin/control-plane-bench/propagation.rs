//! Propagation: with every worker connected and synced, one-route writes one after another, each
//! timed from the moment its answer arrived until each worker serves the revision it made.
//!
//! Two ways to see a worker serve it. `log` (the default) reads the `applied configuration` line
//! each worker logs right after it swapped the new config in, stamped when the line reaches the
//! benchmark: it costs the workers nothing. `status` polls each worker's `/status` on a kept-alive
//! connection every `--poll-interval` until `applied_revision` reaches the revision: what an
//! outside observer sees, at the price of the polls' CPU on a machine the workers share. Either
//! way, after the last change every worker's `/status` must show the latest revision and digest.
//!
//! The control plane hands a commit to its streams before it answers, so a worker may apply a
//! change before the benchmark has read the answer; such samples count as 0 and are tallied.
//! The same times counted from sending the write (so with the write's own latency) are kept too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ValueEnum;
use futures_util::future::join_all;
use serde::Serialize;

use crate::admin::Admin;
use crate::stats::{Summary, millis};
use crate::sync::check_digest;
use crate::worker::Worker;
use crate::workload::Changes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    Log,
    Status,
}

#[derive(Debug, Serialize)]
pub struct Propagation {
    pub probe: Probe,
    pub poll_interval_ms: Option<f64>,
    pub workers: usize,
    pub changes: usize,
    /// Every worker for every change.
    pub each: Option<Summary>,
    /// The last worker of each change: until all of them served it.
    pub all: Option<Summary>,
    /// Samples where the worker already served the change when its answer arrived.
    pub before_answer: u64,
    /// As `each` and `all`, counted from sending the write rather than from its answer.
    pub each_from_request: Option<Summary>,
    pub all_from_request: Option<Summary>,
    pub write_latency: Option<Summary>,
    /// Writes answered with another status than 2xx, by status; they propagate nothing.
    pub non_2xx: BTreeMap<u16, u64>,
    /// Per change, per worker.
    pub samples_ms: Vec<Vec<f64>>,
}

pub struct Settings {
    pub changes: usize,
    pub probe: Probe,
    pub poll_interval: Duration,
}

/// Makes `settings.changes` one-route writes; `done` counts the changes measured so far.
pub async fn run(
    admin: &Admin,
    client: &reqwest::Client,
    changes: &Changes,
    workers: &mut [Worker],
    settings: &Settings,
    done: &Arc<AtomicUsize>,
) -> anyhow::Result<Propagation> {
    let mut each = Vec::new();
    let mut all = Vec::new();
    let mut each_from_request = Vec::new();
    let mut all_from_request = Vec::new();
    let mut writes = Vec::new();
    let mut samples_ms = Vec::new();
    let mut before_answer = 0;
    let mut non_2xx = BTreeMap::new();
    for _ in 0..settings.changes {
        let change = changes.next();
        let sent = Instant::now();
        let answer = admin
            .put(&format!("/v1/routes/{}", change.name), change.body)
            .await?;
        let answered = Instant::now();
        writes.push(answer.elapsed);
        if !answer.is_success() {
            *non_2xx.entry(answer.status).or_insert(0) += 1;
            continue;
        }
        let revision = answer
            .revision
            .context("the write's answer names no revision")?;
        let served: Vec<Instant> = match settings.probe {
            Probe::Log => join_all(workers.iter().map(|w| w.logged(revision))).await,
            Probe::Status => {
                let every = settings.poll_interval;
                join_all(
                    workers
                        .iter_mut()
                        .map(|w| w.poll_until(client, revision, every)),
                )
                .await
            }
        }
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
        let times: Vec<Duration> = served
            .iter()
            .map(|at| at.saturating_duration_since(answered))
            .collect();
        before_answer += served.iter().filter(|at| **at < answered).count() as u64;
        let from_request: Vec<Duration> = served
            .iter()
            .map(|at| at.saturating_duration_since(sent))
            .collect();
        all_from_request.extend(from_request.iter().max().copied());
        each_from_request.extend(from_request);
        all.extend(times.iter().max().copied());
        samples_ms.push(millis(&times));
        each.extend(times);
        done.fetch_add(1, Ordering::Relaxed);
    }
    let latest = admin.latest().await?;
    for worker in workers.iter() {
        check_digest(worker, client, &latest).await?;
    }
    Ok(Propagation {
        probe: settings.probe,
        poll_interval_ms: (settings.probe == Probe::Status)
            .then_some(settings.poll_interval.as_secs_f64() * 1000.0),
        workers: workers.len(),
        changes: settings.changes,
        each: Summary::of(&each),
        all: Summary::of(&all),
        before_answer,
        each_from_request: Summary::of(&each_from_request),
        all_from_request: Summary::of(&all_from_request),
        write_latency: Summary::of(&writes),
        non_2xx,
        samples_ms,
    })
}
