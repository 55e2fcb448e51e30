//! The report: a markdown table with one row per database and number of routes, notes for the
//! cells that hold no number and for chunked applies, how each column was measured, and every
//! raw number as JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::apply::Method;
use crate::numbers::thousands;
use crate::phase::Cell;
use crate::procfs::Memory;
use crate::propagation::Probe;
use crate::row::Row;
use crate::stats::Summary;
use crate::writes::Writes;

/// What the run was asked to do, for the report's header and the JSON.
#[derive(Debug, Serialize)]
pub struct Settings {
    pub command: String,
    pub cores: usize,
    pub cpu: Option<String>,
    pub workers: usize,
    pub worker_threads: usize,
    pub writes: usize,
    pub latency_writes: usize,
    pub concurrent_writers: usize,
    pub changes: usize,
    pub probe: Probe,
    pub poll_interval_ms: f64,
    pub phase_timeout_seconds: f64,
    pub control_plane: String,
    pub worker: String,
}

#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub settings: &'a Settings,
    pub rows: &'a [Row],
}

pub fn write_json(path: &Path, report: &Report<'_>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))
}

pub fn markdown(settings: &Settings, rows: &[Row]) -> String {
    let mut notes = Vec::new();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Control plane at scale: {} cores{}, {} workers ({} runtime threads each), `{}`\n",
        settings.cores,
        settings
            .cpu
            .as_deref()
            .map(|cpu| format!(" ({cpu})"))
            .unwrap_or_default(),
        settings.workers,
        settings.worker_threads,
        settings.command
    );
    let writers = settings.concurrent_writers;
    let _ = writeln!(
        out,
        "| database | routes | apply | CP RSS after apply (peak) | write p50 / p99, 1 writer \
         | write p50 / p99, {writers} writers | non-2xx writes | CP RSS after {} writes (peak) \
         | fresh worker full sync | worker RSS | {} workers synced | propagation p50 / p99, each \
         worker | propagation p50 / p99, all workers |",
        thousands(settings.writes),
        settings.workers
    );
    let _ = writeln!(out, "|{}", "---|".repeat(13));
    for row in rows {
        let label = format!("{} {}", row.database_name(), thousands(row.routes));
        let cells = [
            row.database_name().to_owned(),
            thousands(row.routes),
            apply_cell(row, &label, &mut notes),
            memory(row.memory_after_apply.as_ref()),
            writes_cell(&row.one_writer, false, &label, "1 writer", &mut notes),
            writes_cell(
                &row.concurrent_writers,
                true,
                &label,
                "concurrent writers",
                &mut notes,
            ),
            non_2xx(row, &label, &mut notes),
            memory(row.memory_after_writes.as_ref()),
            cell(&row.full_sync, &label, "full sync", &mut notes, |s| {
                seconds(s.seconds)
            }),
            row.full_sync
                .done()
                .map_or_else(|| "–".into(), |s| memory(Some(&s.worker_memory))),
            cell(&row.fleet, &label, "workers", &mut notes, |f| {
                seconds(f.seconds)
            }),
            cell(&row.propagation, &label, "propagation", &mut notes, |p| {
                let samples = p.each.as_ref().map_or(0, |s| s.count);
                format!(
                    "{} ({} of {samples} before the answer)",
                    p50_p99(p.each.as_ref()),
                    p.before_answer
                )
            }),
            row.propagation
                .done()
                .map_or_else(|| "–".into(), |p| p50_p99(p.all.as_ref())),
        ];
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let loads: Vec<String> = rows
        .iter()
        .map(|row| {
            let (start, end) = &row.load_average;
            format!(
                "{} {}: {} → {}",
                row.database_name(),
                thousands(row.routes),
                start.as_deref().unwrap_or("?"),
                end.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if !loads.is_empty() {
        notes.push(format!(
            "Load average (1, 5, 15 min) at the start and end of each row: {}.",
            loads.join("; ")
        ));
    }
    if !notes.is_empty() {
        out.push('\n');
        for note in &notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out.push('\n');
    out.push_str(&how_measured(settings));
    out
}

impl Row {
    fn database_name(&self) -> &'static str {
        self.database.name()
    }
}

fn apply_cell(row: &Row, label: &str, notes: &mut Vec<String>) -> String {
    match &row.apply {
        Cell::Done(applied) => match &applied.method {
            Method::OneBody { .. } => seconds(applied.seconds),
            Method::Chunked {
                refused_body_bytes,
                refused_with,
                first_body_routes,
                first_body_bytes,
                first_body_seconds,
                single_writes,
                concurrency,
                retried_writes,
            } => {
                notes.push(format!(
                    "{label}: *chunked* apply. The whole body ({:.1} MB) was refused ({refused_with}); \
                     the first {} routes went in one `PUT /v1/config` ({:.1} MB, {}), the other {} \
                     as single `POST /v1/routes` from {concurrency} writers ({retried_writes} retried).",
                    *refused_body_bytes as f64 / 1e6,
                    thousands(*first_body_routes),
                    *first_body_bytes as f64 / 1e6,
                    seconds(*first_body_seconds),
                    thousands(*single_writes),
                ));
                format!("{} *chunked*", seconds(applied.seconds))
            }
        },
        other => problem(other, label, "apply", notes),
    }
}

fn writes_cell(
    writes: &Cell<Writes>,
    throughput: bool,
    label: &str,
    what: &str,
    notes: &mut Vec<String>,
) -> String {
    cell(writes, label, what, notes, |w| {
        let latency = p50_p99(w.latency.as_ref());
        if throughput {
            format!("{latency} ({:.0}/s)", w.writes_per_second)
        } else {
            latency
        }
    })
}

/// The statuses other than 2xx of every one-route write of the row.
fn non_2xx(row: &Row, label: &str, notes: &mut Vec<String>) -> String {
    let phases = [
        ("1 writer", &row.one_writer),
        ("concurrent", &row.concurrent_writers),
        ("rest", &row.more_writes),
    ];
    if phases.iter().all(|(_, writes)| writes.done().is_none()) {
        return "–".into();
    }
    let mut parts = Vec::new();
    let mut examples: Vec<&str> = Vec::new();
    for (name, writes) in phases {
        let Some(writes) = writes.done() else {
            continue;
        };
        if writes.failures() == 0 {
            continue;
        }
        for example in &writes.examples {
            if !examples.contains(&example.as_str()) {
                examples.push(example);
            }
        }
        let mut statuses: Vec<String> = writes
            .non_2xx
            .iter()
            .map(|(status, count)| format!("{status}×{count}"))
            .collect();
        if writes.unanswered > 0 {
            statuses.push(format!("no answer×{}", writes.unanswered));
        }
        parts.push(format!("{name}: {}", statuses.join(", ")));
    }
    if let Some(propagation) = row.propagation.done()
        && !propagation.non_2xx.is_empty()
    {
        notes.push(format!(
            "{label}: propagation writes answered {:?} (by status); they are not in the propagation numbers.",
            propagation.non_2xx
        ));
    }
    if let Some(revisions) = &row.revisions
        && revisions.unaccounted() > 0
    {
        notes.push(format!(
            "{label}: the latest revision after the one-route writes was {}, {} more than the apply \
             and the writes answered with 2xx account for: writes that got no 2xx answer were \
             committed all the same.",
            revisions.latest,
            revisions.unaccounted()
        ));
    }
    if !examples.is_empty() {
        let quoted: Vec<String> = examples.iter().map(|e| format!("`{e}`")).collect();
        notes.push(format!(
            "{label}: failed one-route writes answered {}.",
            quoted.join("; ")
        ));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("; ")
    }
}

fn cell<T>(
    cell: &Cell<T>,
    label: &str,
    what: &str,
    notes: &mut Vec<String>,
    show: impl FnOnce(&T) -> String,
) -> String {
    match cell {
        Cell::Done(value) => show(value),
        other => problem(other, label, what, notes),
    }
}

/// The text of a cell without a result; failures and how far a timed-out phase got go into
/// the notes. A skipped cell follows from an earlier one's note.
fn problem<T>(cell: &Cell<T>, label: &str, what: &str, notes: &mut Vec<String>) -> String {
    match cell {
        Cell::Done(_) => String::new(),
        Cell::TimedOut {
            after_seconds,
            progress,
        } => {
            if let Some(progress) = progress {
                notes.push(format!(
                    "{label}, {what}: timed out after {after_seconds:.0} s, {progress}."
                ));
            }
            format!("timed out ({after_seconds:.0} s)")
        }
        Cell::Failed { error } => {
            let first: String = error
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(300)
                .collect();
            notes.push(format!("{label}, {what}: failed: {first}"));
            "failed".into()
        }
        Cell::Skipped { .. } => "–".into(),
    }
}

fn memory(memory: Option<&Memory>) -> String {
    memory.map_or_else(
        || "–".into(),
        |m| format!("{:.0} MiB ({:.0})", m.rss_mib(), m.hwm_mib()),
    )
}

fn p50_p99(summary: Option<&Summary>) -> String {
    summary.map_or_else(
        || "–".into(),
        |s| format!("{} / {}", millis(s.p50_ms), millis(s.p99_ms)),
    )
}

fn millis(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn seconds(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.2} s")
    }
}

fn how_measured(settings: &Settings) -> String {
    let probe = match settings.probe {
        Probe::Log => "the `applied configuration` line each worker logs right after it swaps \
             the new config in, stamped when it reaches the benchmark (no polling, so the workers \
             keep their CPU)"
            .to_owned(),
        Probe::Status => format!(
            "polling each worker's `/status` every {} ms on a kept-alive connection until \
             `applied_revision` reaches the write's revision",
            settings.poll_interval_ms
        ),
    };
    format!(
        "How each column is measured (all processes on 127.0.0.1, a fresh database per row, \
         no traffic through the workers):\n\n\
         - **apply**: `PUT /v1/config` of the 50 upstreams and all routes in one body, from \
         sending the request to the end of the answer. *chunked*: see the note.\n\
         - **CP RSS**: `VmRSS` of the control plane from `/proc/PID/status`, in parentheses \
         `VmHWM` (the peak since it started); right after the apply, and after {writes} one-route \
         writes in all (the timed ones included), before any worker connects.\n\
         - **write p50 / p99**: `PUT /v1/routes/NAME` moving one route's path, timed from \
         the request to the end of the answer, {latency} writes with 1 writer, then {latency} \
         from {writers} concurrent writers (their throughput in parentheses); every answer \
         counts whatever its status. **non-2xx writes** tallies the other statuses of all one-route \
         writes of the row (and requests with no answer).\n\
         - **fresh worker full sync**: from starting a worker with no cache until its `/readyz` \
         answers 200 and its `/status` shows the control plane's latest revision (polled every \
         2 ms), digest checked against the revision's. **worker RSS**: its `VmRSS` (`VmHWM`) then.\n\
         - **{workers} workers synced**: the other workers started together; until the last one \
         serves the latest revision (`/status` polled every 20 ms). Then, untimed, until every \
         worker's cache file holds that revision, so that the propagation starts from a settled \
         fleet.\n\
         - **propagation**: {changes} one-route writes, one after another, with {workers} workers \
         connected; from the moment the write's answer arrived until each worker served the \
         revision it made (*each worker*: every worker × change; *all workers*: the last worker \
         of each change), seen through {probe}. The control plane hands a commit to the workers' \
         streams before it answers, so a worker can serve the change before the answer arrives: \
         such samples count as 0 and are tallied in parentheses; the JSON also has the times \
         counted from sending the write. Afterwards every worker's `/status` shows the latest \
         revision and digest.\n",
        writes = thousands(settings.writes),
        latency = settings.latency_writes,
        writers = settings.concurrent_writers,
        workers = settings.workers,
        changes = settings.changes,
    )
}

#[cfg(test)]
mod tests {
    use super::millis;
    use crate::numbers::thousands;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(millis(0.456), "0.46 ms");
        assert_eq!(millis(45.6), "45.6 ms");
        assert_eq!(millis(456.0), "456 ms");
        assert_eq!(millis(45_600.0), "45.6 s");
    }
}
