//! One row of the report: a control plane on a fresh database of one kind, loaded with one
//! number of routes, taken through every phase in order. A phase that fails or runs out of time
//! leaves its cell marked and the row goes on with what still makes sense: nothing runs on a
//! config that was not loaded, and propagation needs every worker synced.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::admin::Admin;
use crate::apply::{self, Applied};
use crate::binaries::Binaries;
use crate::control_plane::ControlPlane;
use crate::database::{Database, Kind};
use crate::phase::{self, Cell};
use crate::procfs::Memory;
use crate::propagation::{self, Propagation};
use crate::sync::{self, Fleet, FullSync};
use crate::worker::{Worker, WorkerSettings};
use crate::workload::Changes;
use crate::writes::{self, Writes};

pub struct Settings {
    pub binaries: Binaries,
    pub workers: usize,
    pub worker_threads: usize,
    /// One-route writes after the apply, in all, before the second memory reading.
    pub writes: usize,
    /// Writes timed for each number of writers.
    pub latency_writes: usize,
    pub concurrent_writers: usize,
    pub apply_concurrency: usize,
    pub propagation: propagation::Settings,
    pub phase_timeout: Duration,
    pub request_timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub database: Kind,
    pub routes: usize,
    pub apply: Cell<Applied>,
    pub memory_after_apply: Option<Memory>,
    pub one_writer: Cell<Writes>,
    pub concurrent_writers: Cell<Writes>,
    /// The rest of `--writes`, from the concurrent writers.
    pub more_writes: Cell<Writes>,
    /// One-route writes made (whatever their answer) before the second memory reading.
    pub writes_before_memory: usize,
    /// The latest revision after those writes, against what the apply and the writes answered
    /// with 2xx account for: a write answered otherwise that was committed all the same shows
    /// up as a difference.
    pub revisions: Option<Revisions>,
    pub memory_after_writes: Option<Memory>,
    pub database_bytes: Option<u64>,
    pub full_sync: Cell<FullSync>,
    pub fleet: Cell<Fleet>,
    pub propagation: Cell<Propagation>,
    pub memory_with_workers: Option<Memory>,
    /// The largest worker at the end.
    pub largest_worker: Option<Memory>,
    /// `/proc/loadavg` when the row started and when it ended: other work on the machine shows
    /// here, and in the latencies.
    pub load_average: (Option<String>, Option<String>),
}

pub async fn run(
    settings: &Settings,
    database: &Database,
    kind: Kind,
    routes: usize,
    dir: &Path,
) -> anyhow::Result<Row> {
    let load_at_start = load_average();
    let mut control_plane =
        ControlPlane::start(&settings.binaries.control_plane, database.url(), dir).await?;
    let client = http_client(settings.request_timeout)?;
    let admin = Admin::new(control_plane.admin_url.clone(), client.clone());
    let deadline = settings.phase_timeout;

    let progress = Arc::new(apply::Progress::default());
    let apply = phase::run(
        "declarative apply",
        deadline,
        apply::apply(&admin, routes, settings.apply_concurrency, &progress),
        || Some(progress.describe(routes)),
    )
    .await;
    let memory_after_apply = control_plane.memory().ok();
    let mut row = Row {
        database: kind,
        routes,
        apply,
        memory_after_apply,
        one_writer: Cell::skipped("the routes were not loaded"),
        concurrent_writers: Cell::skipped("the routes were not loaded"),
        more_writes: Cell::skipped("the routes were not loaded"),
        writes_before_memory: 0,
        revisions: None,
        memory_after_writes: None,
        database_bytes: None,
        full_sync: Cell::skipped("the routes were not loaded"),
        fleet: Cell::skipped("the routes were not loaded"),
        propagation: Cell::skipped("the routes were not loaded"),
        memory_with_workers: None,
        largest_worker: None,
        load_average: (load_at_start, None),
    };
    if row.apply.done().is_none() {
        row.load_average.1 = load_average();
        control_plane.stop().await;
        return Ok(row);
    }

    let changes = Arc::new(Changes::new(routes));
    let answered = Arc::new(AtomicUsize::new(0));
    row.one_writer = timed_writes(
        settings,
        &admin,
        &changes,
        1,
        settings.latency_writes,
        &answered,
    )
    .await;
    let writers = settings.concurrent_writers;
    row.concurrent_writers = timed_writes(
        settings,
        &admin,
        &changes,
        writers,
        settings.latency_writes,
        &answered,
    )
    .await;
    let rest = settings
        .writes
        .saturating_sub(answered.load(Ordering::Relaxed));
    row.more_writes = if rest == 0 {
        Cell::skipped("--writes were already made")
    } else {
        timed_writes(settings, &admin, &changes, writers, rest, &answered).await
    };
    row.writes_before_memory = answered.load(Ordering::Relaxed);
    row.memory_after_writes = control_plane.memory().ok();
    row.revisions = revisions(&admin, &row).await;
    row.database_bytes = database.size_bytes(dir).await;
    control_plane.check_running()?;

    let worker_settings = WorkerSettings {
        binary: settings.binaries.worker.clone(),
        sync_url: control_plane.sync_url.clone(),
        threads: settings.worker_threads,
    };
    let mut workers: Vec<Worker> = Vec::new();
    let full_sync = phase::run(
        "fresh worker full sync",
        deadline,
        sync::fresh_worker(&worker_settings, &admin, &client, dir, "bench-worker-0"),
        || None,
    )
    .await;
    let (full_sync, first) = full_sync.split(|(worker, sync)| (sync, worker));
    row.full_sync = full_sync;
    workers.extend(first);

    let more = settings.workers.saturating_sub(workers.len());
    row.fleet = phase::run(
        &format!("{more} more workers"),
        deadline,
        sync::fleet(&worker_settings, &admin, &client, dir, more, &mut workers),
        || None,
    )
    .await;
    if row.fleet.done().is_some() {
        let done = Arc::new(AtomicUsize::new(0));
        let changes_made = settings.propagation.changes;
        row.propagation = phase::run(
            "propagation",
            deadline,
            propagation::run(
                &admin,
                &client,
                &changes,
                &mut workers,
                &settings.propagation,
                &done,
            ),
            || {
                Some(format!(
                    "{} of {changes_made} changes measured",
                    done.load(Ordering::Relaxed)
                ))
            },
        )
        .await;
    } else {
        row.propagation = Cell::skipped("not every worker synced");
    }
    row.memory_with_workers = control_plane.memory().ok();
    row.largest_worker = workers
        .iter()
        .filter_map(|w| Memory::of(w.pid()).ok())
        .max_by_key(|m| m.rss_kib);
    for worker in workers {
        worker.stop().await;
    }
    row.load_average.1 = load_average();
    control_plane.check_running()?;
    control_plane.stop().await;
    Ok(row)
}

#[derive(Debug, Serialize)]
pub struct Revisions {
    pub latest: u64,
    /// The apply's revision plus one for every one-route write answered with 2xx.
    pub accounted_for: u64,
}

impl Revisions {
    /// Revisions made by writes that were not answered with 2xx.
    pub fn unaccounted(&self) -> u64 {
        self.latest.saturating_sub(self.accounted_for)
    }
}

async fn revisions(admin: &Admin, row: &Row) -> Option<Revisions> {
    let applied = row.apply.done()?.revision;
    let mut succeeded = 0;
    for writes in [&row.one_writer, &row.concurrent_writers, &row.more_writes] {
        // A timed-out phase leaves no count of its successes.
        match writes {
            Cell::Done(writes) => {
                succeeded += writes.writes as u64 - writes.failures();
            }
            Cell::Skipped { .. } => {}
            _ => return None,
        }
    }
    let latest = admin.latest().await.ok()?.revision;
    Some(Revisions {
        latest,
        accounted_for: applied + succeeded,
    })
}

async fn timed_writes(
    settings: &Settings,
    admin: &Admin,
    changes: &Arc<Changes>,
    writers: usize,
    writes: usize,
    answered: &Arc<AtomicUsize>,
) -> Cell<Writes> {
    let done = Arc::new(AtomicUsize::new(0));
    let name = format!("{writes} one-route writes from {writers} writer(s)");
    let cell = phase::run(
        &name,
        settings.phase_timeout,
        writes::run(admin, changes, writers, writes, &done),
        || {
            Some(format!(
                "{} of {writes} writes made",
                done.load(Ordering::Relaxed)
            ))
        },
    )
    .await;
    answered.fetch_add(done.load(Ordering::Relaxed), Ordering::Relaxed);
    cell
}

fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a TLS provider and wants one even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()?)
}
