//! Every measurement runs as a phase with a deadline, so that a control plane that slows to a
//! crawl at some size gives a cell marked as timed out instead of a benchmark that never ends.
//! A phase that could not run because an earlier one did not finish is marked as skipped.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Cell<T> {
    Done(T),
    TimedOut {
        after_seconds: f64,
        progress: Option<String>,
    },
    Failed {
        error: String,
    },
    Skipped {
        reason: String,
    },
}

impl<T> Cell<T> {
    pub fn done(&self) -> Option<&T> {
        match self {
            Cell::Done(value) => Some(value),
            _ => None,
        }
    }

    /// Splits a finished cell's value into what is reported and what the caller keeps.
    pub fn split<U, K>(self, split: impl FnOnce(T) -> (U, K)) -> (Cell<U>, Option<K>) {
        match self {
            Cell::Done(value) => {
                let (reported, kept) = split(value);
                (Cell::Done(reported), Some(kept))
            }
            Cell::TimedOut {
                after_seconds,
                progress,
            } => (
                Cell::TimedOut {
                    after_seconds,
                    progress,
                },
                None,
            ),
            Cell::Failed { error } => (Cell::Failed { error }, None),
            Cell::Skipped { reason } => (Cell::Skipped { reason }, None),
        }
    }

    pub fn skipped(reason: &str) -> Cell<T> {
        Cell::Skipped {
            reason: reason.to_owned(),
        }
    }
}

/// Runs `work` with a deadline; `progress` says how far it got when the deadline passed.
pub async fn run<T>(
    name: &str,
    deadline: Duration,
    work: impl Future<Output = anyhow::Result<T>>,
    progress: impl FnOnce() -> Option<String>,
) -> Cell<T> {
    eprintln!("  {name}…");
    let started = Instant::now();
    match tokio::time::timeout(deadline, work).await {
        Ok(Ok(value)) => Cell::Done(value),
        Ok(Err(error)) => {
            eprintln!("  {name} failed: {error:#}");
            Cell::Failed {
                error: format!("{error:#}"),
            }
        }
        Err(_) => {
            let progress = progress();
            eprintln!(
                "  {name} timed out after {:.0?}{}",
                started.elapsed(),
                progress
                    .as_deref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            );
            Cell::TimedOut {
                after_seconds: started.elapsed().as_secs_f64(),
                progress,
            }
        }
    }
}
