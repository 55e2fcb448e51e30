//! The declarative apply: `PUT /v1/config` of all the routes as one revision, timed from the
//! request to the answer.
//!
//! When the admin API refuses the body as too large, the routes are loaded in two steps instead,
//! and the result says so: `PUT /v1/config` of as many routes as fit in one body, then one
//! `POST /v1/routes` per remaining route from a few concurrent writers. A declarative apply
//! deletes what its document leaves out, so the remaining routes cannot go in further applies.
//! The refusal is a 413, or, when the server answers and closes before it has read the whole
//! body, a connection that breaks while the body is being sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::admin::Admin;
use crate::numbers::thousands;
use crate::workload;

/// The first body of the fallback is kept under this size: below the admin API's 2 MiB default,
/// with room for the envelope.
const FALLBACK_BODY_BYTES: usize = 2_000_000;
/// Attempts of each single write of the fallback; a slow control plane answers 503 now and then.
const ATTEMPTS: u32 = 3;

#[derive(Debug, Serialize)]
pub struct Applied {
    pub seconds: f64,
    pub revision: u64,
    pub method: Method,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Method {
    /// One `PUT /v1/config` of everything.
    OneBody { body_bytes: usize },
    /// The whole body was refused; one smaller apply, then single writes.
    Chunked {
        refused_body_bytes: usize,
        /// `413`, or how the connection broke.
        refused_with: String,
        first_body_routes: usize,
        first_body_bytes: usize,
        first_body_seconds: f64,
        single_writes: usize,
        concurrency: usize,
        retried_writes: u64,
    },
}

/// How far an apply got, for a phase that runs out of time.
#[derive(Debug, Default)]
pub struct Progress {
    /// Routes of the first body of a chunked apply, once it is stored.
    first_body: AtomicUsize,
    /// Routes stored in all.
    stored: AtomicUsize,
}

impl Progress {
    pub fn describe(&self, routes: usize) -> String {
        let stored = self.stored.load(Ordering::Relaxed);
        match self.first_body.load(Ordering::Relaxed) {
            0 => format!(
                "{} of {} routes stored",
                thousands(stored),
                thousands(routes)
            ),
            first => format!(
                "chunked: {} routes stored in one body, then {} of the other {} by single writes",
                thousands(first),
                thousands(stored.saturating_sub(first)),
                thousands(routes - first)
            ),
        }
    }
}

/// Loads `routes` routes (and the upstreams).
pub async fn apply(
    admin: &Admin,
    routes: usize,
    concurrency: usize,
    progress: &Arc<Progress>,
) -> anyhow::Result<Applied> {
    let body = workload::config(routes).to_string().into_bytes();
    let body_bytes = body.len();
    let started = Instant::now();
    let refused_with = match admin.put("/v1/config", body).await {
        Ok(answer) if answer.is_success() => {
            progress.stored.store(routes, Ordering::Relaxed);
            return Ok(Applied {
                seconds: answer.elapsed.as_secs_f64(),
                revision: answer
                    .revision
                    .context("the apply's answer names no revision")?,
                method: Method::OneBody { body_bytes },
            });
        }
        Ok(answer) if answer.status == 413 => "413".to_owned(),
        Ok(answer) => bail!("PUT /v1/config: {}", answer.describe()),
        // Only a body over the limit explains a broken connection; anything else is an error.
        Err(error) if body_bytes > FALLBACK_BODY_BYTES => format!("{error:#}"),
        Err(error) => return Err(error),
    };
    eprintln!(
        "    {body_bytes} bytes refused after {:.1?} ({refused_with}); loading in two steps",
        started.elapsed()
    );
    chunked(
        admin,
        routes,
        concurrency,
        progress,
        body_bytes,
        refused_with,
    )
    .await
}

async fn chunked(
    admin: &Admin,
    routes: usize,
    concurrency: usize,
    progress: &Arc<Progress>,
    refused_body_bytes: usize,
    refused_with: String,
) -> anyhow::Result<Applied> {
    let started = Instant::now();
    let mut first = routes * FALLBACK_BODY_BYTES / refused_body_bytes.max(1);
    let (first_body_bytes, mut revision) = loop {
        let body = workload::config(first).to_string().into_bytes();
        if body.len() > FALLBACK_BODY_BYTES && first > 0 {
            first = first * 9 / 10;
            continue;
        }
        let bytes = body.len();
        let answer = admin.put("/v1/config", body).await?;
        if answer.is_success() {
            break (bytes, answer.revision.unwrap_or(0));
        }
        // A lower limit than the admin API's default: try half as much.
        if answer.status == 413 && first > 0 {
            first /= 2;
            continue;
        }
        bail!("PUT /v1/config of {first} routes: {}", answer.describe());
    };
    let first_body_seconds = started.elapsed().as_secs_f64();
    progress.first_body.store(first, Ordering::Relaxed);
    progress.stored.store(first, Ordering::Relaxed);
    eprintln!(
        "    first {first} routes in one body ({first_body_bytes} bytes) in {first_body_seconds:.1} s; \
         {} single writes follow",
        routes - first
    );

    let next = Arc::new(AtomicUsize::new(first));
    let retried = Arc::new(AtomicU64::new(0));
    let mut writers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (admin, next, retried, progress) = (
            admin.clone(),
            next.clone(),
            retried.clone(),
            progress.clone(),
        );
        writers.spawn(async move {
            let mut newest = 0;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= routes {
                    return anyhow::Ok(newest);
                }
                newest = newest.max(create(&admin, index, &retried).await?);
                progress.stored.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while let Some(joined) = writers.join_next().await {
        revision = revision.max(joined.context("a writer panicked")??);
    }
    Ok(Applied {
        seconds: started.elapsed().as_secs_f64(),
        revision,
        method: Method::Chunked {
            refused_body_bytes,
            refused_with,
            first_body_routes: first,
            first_body_bytes,
            first_body_seconds,
            single_writes: routes - first,
            concurrency,
            retried_writes: retried.load(Ordering::Relaxed),
        },
    })
}

/// Creates route `index`; returns the revision that made it.
async fn create(admin: &Admin, index: usize, retried: &AtomicU64) -> anyhow::Result<u64> {
    let body = workload::route(index, 0).to_string().into_bytes();
    let mut attempt = 1;
    loop {
        let answer = admin.post("/v1/routes", body.clone()).await;
        match answer {
            Ok(answer) if answer.is_success() => return Ok(answer.revision.unwrap_or(0)),
            // An earlier attempt that timed out on our side may have been committed after all.
            Ok(answer) if answer.status == 409 && attempt > 1 => return Ok(0),
            Ok(answer) if attempt >= ATTEMPTS => {
                bail!(
                    "POST /v1/routes ({}): {}",
                    workload::route_name(index),
                    answer.describe()
                )
            }
            Err(error) if attempt >= ATTEMPTS => return Err(error),
            _ => {}
        }
        attempt += 1;
        retried.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
