//! One-route writes: `PUT /v1/routes/NAME` replacing one route with a moved path, from a given
//! number of concurrent writers, each timed from the request to the end of the answer. Every
//! answer counts, whatever its status, and the statuses other than 2xx are tallied (a 503 is
//! the control plane giving up on its database within its write deadline).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::admin::Admin;
use crate::stats::{Summary, millis};
use crate::workload::Changes;

#[derive(Debug, Serialize)]
pub struct Writes {
    pub writers: usize,
    pub writes: usize,
    pub seconds: f64,
    pub writes_per_second: f64,
    /// Over every answered write, whatever its status; `None` when none was answered.
    pub latency: Option<Summary>,
    /// Answers other than 2xx, by status.
    pub non_2xx: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection failed, or no answer within the request timeout).
    pub unanswered: u64,
    /// The first few distinct answers other than 2xx, and why requests got none.
    pub examples: Vec<String>,
    pub samples_ms: Vec<f64>,
}

impl Writes {
    pub fn failures(&self) -> u64 {
        self.non_2xx.values().sum::<u64>() + self.unanswered
    }
}

/// Distinct failures kept as examples.
const EXAMPLES: usize = 3;

enum Outcome {
    Answered {
        status: u16,
        elapsed: Duration,
        /// The body of an answer other than 2xx.
        error: Option<String>,
    },
    Unanswered(String),
}

/// Makes `writes` one-route writes from `writers` concurrent writers; `done` counts those that
/// finished, for a phase that runs out of time.
pub async fn run(
    admin: &Admin,
    changes: &Arc<Changes>,
    writers: usize,
    writes: usize,
    done: &Arc<AtomicUsize>,
) -> anyhow::Result<Writes> {
    let claimed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..writers.max(1) {
        let (admin, changes, claimed, done) = (
            admin.clone(),
            changes.clone(),
            claimed.clone(),
            done.clone(),
        );
        tasks.spawn(async move {
            let mut outcomes = Vec::new();
            while claimed.fetch_add(1, Ordering::Relaxed) < writes {
                let change = changes.next();
                let path = format!("/v1/routes/{}", change.name);
                outcomes.push(match admin.put(&path, change.body).await {
                    Ok(answer) => Outcome::Answered {
                        status: answer.status,
                        elapsed: answer.elapsed,
                        error: (!answer.is_success()).then(|| answer.describe()),
                    },
                    Err(error) => Outcome::Unanswered(format!("{error:#}")),
                });
                done.fetch_add(1, Ordering::Relaxed);
            }
            outcomes
        });
    }
    let mut samples = Vec::with_capacity(writes);
    let mut non_2xx = BTreeMap::new();
    let mut unanswered = 0;
    let mut examples = Vec::new();
    let mut example = |text: String| {
        if examples.len() < EXAMPLES && !examples.contains(&text) {
            examples.push(text);
        }
    };
    while let Some(joined) = tasks.join_next().await {
        for outcome in joined.context("a writer panicked")? {
            match outcome {
                Outcome::Answered {
                    status,
                    elapsed,
                    error,
                } => {
                    samples.push(elapsed);
                    if let Some(error) = error {
                        *non_2xx.entry(status).or_insert(0) += 1;
                        example(error);
                    }
                }
                Outcome::Unanswered(error) => {
                    unanswered += 1;
                    example(error);
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Writes {
        writers,
        writes,
        seconds,
        writes_per_second: writes as f64 / seconds.max(f64::EPSILON),
        latency: Summary::of(&samples),
        non_2xx,
        unanswered,
        examples,
        samples_ms: millis(&samples),
    })
}
