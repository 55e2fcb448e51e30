//! `control-plane-bench`: the control plane at scale. For each database (SQLite, PostgreSQL) and
//! each number of routes it starts a control plane on a fresh database and measures the
//! declarative apply of all the routes, the latency of one-route writes from one and from many
//! writers, the control plane's memory, the full sync of a fresh worker, and how fast a
//! one-route change reaches 20 connected workers. Every phase has a deadline; the report is a
//! markdown table (stdout and `--out`) and the raw numbers as JSON (`--json`).
//!
//! `cargo run --release -p gateway-bench --bin control-plane-bench -- --routes 1000,10000`
//! (builds the control plane and the worker in release mode unless given their paths).

mod admin;
mod apply;
mod binaries;
mod control_plane;
mod database;
mod numbers;
mod phase;
mod process;
mod procfs;
mod propagation;
mod report;
mod row;
mod stats;
mod sync;
mod worker;
mod workload;
mod writes;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::binaries::Binaries;
use crate::database::{Database, Kind};
use crate::propagation::Probe;
use crate::report::Report;

#[derive(Debug, Parser)]
#[command(about = "Benchmark the gateway's control plane with many routes and workers")]
struct Cli {
    /// Numbers of routes, each a row of the report (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    routes: Vec<usize>,
    /// Databases, each with every number of routes (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sqlite,postgres"
    )]
    database: Vec<Kind>,
    /// PostgreSQL server on which a throwaway database is created (and dropped) per row.
    #[arg(
        long,
        env = "GATEWAY_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Workers connected for the propagation measurement (the fresh one among them).
    #[arg(long, default_value_t = 20)]
    workers: usize,
    /// Runtime threads of each worker.
    #[arg(long, default_value_t = 2)]
    worker_threads: usize,
    /// One-route writes made after the apply, in all, before the second memory reading.
    #[arg(long, default_value_t = 1000)]
    writes: usize,
    /// Timed one-route writes for each number of writers.
    #[arg(long, default_value_t = 200)]
    latency_writes: usize,
    /// Concurrent writers of the second latency measurement (and of the rest of --writes).
    #[arg(long, default_value_t = 16)]
    concurrent_writers: usize,
    /// One-route changes whose propagation is timed.
    #[arg(long, default_value_t = 50)]
    changes: usize,
    /// How to see that a worker serves a change: its log line, or polling its /status.
    #[arg(long, value_enum, default_value = "log")]
    probe: Probe,
    /// Interval of the /status polls with `--probe status`.
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
    /// Concurrent single writes when the apply has to be chunked.
    #[arg(long, default_value_t = 4)]
    apply_concurrency: usize,
    /// Deadline of every phase; a phase that passes it is reported as timed out.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    phase_timeout: Duration,
    /// Deadline of each request to the admin API.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// control-plane executable (default: a release build of this workspace).
    #[arg(long)]
    control_plane: Option<PathBuf>,
    /// data-plane (worker) executable (default: a release build of this workspace).
    #[arg(long)]
    worker: Option<PathBuf>,
    /// Also write the markdown report here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the raw numbers as JSON here (default: next to --out, with `.json`).
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let binaries = Binaries::locate(cli.control_plane.clone(), cli.worker.clone())?;
    let settings = report::Settings {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        cpu: cpu_model(),
        workers: cli.workers,
        worker_threads: cli.worker_threads,
        writes: cli.writes,
        latency_writes: cli.latency_writes,
        concurrent_writers: cli.concurrent_writers,
        changes: cli.changes,
        probe: cli.probe,
        poll_interval_ms: cli.poll_interval.as_secs_f64() * 1000.0,
        phase_timeout_seconds: cli.phase_timeout.as_secs_f64(),
        control_plane: binaries.control_plane.display().to_string(),
        worker: binaries.worker.display().to_string(),
    };
    let row_settings = row::Settings {
        binaries,
        workers: cli.workers.max(1),
        worker_threads: cli.worker_threads.max(1),
        writes: cli.writes,
        latency_writes: cli.latency_writes,
        concurrent_writers: cli.concurrent_writers.max(1),
        apply_concurrency: cli.apply_concurrency.max(1),
        propagation: propagation::Settings {
            changes: cli.changes,
            probe: cli.probe,
            poll_interval: cli.poll_interval,
        },
        phase_timeout: cli.phase_timeout,
        request_timeout: cli.request_timeout,
    };
    let json_path = cli
        .json
        .clone()
        .or_else(|| cli.out.as_ref().map(|out| out.with_extension("json")));

    let mut rows = Vec::new();
    let mut interrupted = false;
    'rows: for &kind in &cli.database {
        for &routes in &cli.routes {
            eprintln!("{} with {} routes", kind.name(), numbers::thousands(routes));
            let dir = tempfile::tempdir().context("temporary directory")?;
            let database = Database::create(kind, &cli.postgres_url).await?;
            // The row owns every process it starts: when it ends, fails or is cancelled by a
            // signal, dropping it kills them, and only then does the database go.
            let outcome = tokio::select! {
                outcome = row::run(&row_settings, &database, kind, routes, dir.path()) => Some(outcome),
                () = interruption() => None,
            };
            database.drop_now().await;
            match outcome {
                Some(Ok(row)) => rows.push(row),
                Some(Err(error)) => {
                    eprintln!("{} with {routes} routes failed: {error:#}", kind.name())
                }
                None => {
                    eprintln!("interrupted; reporting the rows finished so far");
                    interrupted = true;
                    break 'rows;
                }
            }
            // Written after every row, so a long run that dies later still leaves its numbers.
            write_outputs(&settings, &rows, cli.out.as_deref(), json_path.as_deref())?;
        }
    }
    let table = report::markdown(&settings, &rows);
    println!("{table}");
    write_outputs(&settings, &rows, cli.out.as_deref(), json_path.as_deref())?;
    if let Some(path) = &json_path {
        eprintln!("raw numbers: {}", path.display());
    }
    if interrupted {
        std::process::exit(130);
    }
    Ok(())
}

fn write_outputs(
    settings: &report::Settings,
    rows: &[row::Row],
    out: Option<&std::path::Path>,
    json: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    if let Some(out) = out {
        std::fs::write(out, report::markdown(settings, rows))
            .with_context(|| format!("write {}", out.display()))?;
    }
    if let Some(json) = json {
        report::write_json(json, &Report { settings, rows })?;
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn interruption() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}
