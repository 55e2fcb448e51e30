//! A data-plane worker started for the benchmark, and the two ways of telling which revision it
//! serves: its status port (`/readyz`, `/status` with `applied_revision` and `applied_digest`),
//! and its log, where it reports `applied configuration` with the revision right after it swapped
//! the new config in. Reading the log costs the worker nothing, so the propagation measurement
//! can watch 20 workers at once without taking the CPU they need to apply the change.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::sync::watch;

use crate::process::{Child, Observer};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The newest revision the worker logged as applied, and when the line arrived.
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    pub revision: u64,
    pub at: Instant,
}

/// What `/status` says the worker serves.
#[derive(Debug, Clone)]
pub struct Status {
    pub serving: bool,
    pub revision: u64,
    pub digest: String,
    /// The revision the worker's cache file holds.
    pub cached_revision: Option<u64>,
}

pub struct WorkerSettings {
    pub binary: PathBuf,
    pub sync_url: String,
    pub threads: usize,
}

pub struct Worker {
    pub node_id: String,
    status_base: String,
    applied: watch::Receiver<Applied>,
    process: Child,
}

impl Worker {
    /// Starts a worker with its config cache in `dir`; returns once its status port listens.
    pub async fn start(
        settings: &WorkerSettings,
        node_id: &str,
        dir: &Path,
    ) -> anyhow::Result<Worker> {
        let cache_file = dir.join(format!("{node_id}.pb")).display().to_string();
        let threads = settings.threads.to_string();
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--status-listen",
            "127.0.0.1:0",
            "--control-plane",
            settings.sync_url.as_str(),
            "--node-id",
            node_id,
            "--worker-threads",
            threads.as_str(),
            "--cache-file",
            cache_file.as_str(),
            "--log-format",
            "json",
        ]
        .map(str::to_owned);
        let (sender, applied) = watch::channel(Applied {
            revision: 0,
            at: Instant::now(),
        });
        let observer: Observer = Arc::new(move |message: &str, fields: &Value, at: Instant| {
            if message != "applied configuration" {
                return;
            }
            if let Some(revision) = fields.get("revision").and_then(Value::as_u64) {
                sender.send_if_modified(|current| {
                    let newer = revision > current.revision;
                    if newer {
                        *current = Applied { revision, at };
                    }
                    newer
                });
            }
        });
        let mut process = Child::spawn(node_id, &settings.binary, &args, None, Some(observer))?;
        let status_addr: SocketAddr = process
            .wait_for_message("status listening on ", START_TIMEOUT)
            .await?
            .trim()
            .parse()
            .context("the worker logged an odd status address")?;
        Ok(Worker {
            node_id: node_id.to_owned(),
            status_base: format!("http://{status_addr}"),
            applied,
            process,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Follows what the worker logs as applied.
    pub fn applied(&self) -> watch::Receiver<Applied> {
        self.applied.clone()
    }

    pub async fn ready(&self, client: &reqwest::Client) -> anyhow::Result<bool> {
        let response = client
            .get(format!("{}/readyz", self.status_base))
            .send()
            .await
            .with_context(|| format!("{}: GET /readyz", self.node_id))?;
        Ok(response.status().is_success())
    }

    pub async fn status(&self, client: &reqwest::Client) -> anyhow::Result<Status> {
        let response = client
            .get(format!("{}/status", self.status_base))
            .send()
            .await
            .with_context(|| format!("{}: GET /status", self.node_id))?;
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("{}: /status is not JSON", self.node_id))?;
        Ok(Status {
            serving: body["serving"].as_bool().unwrap_or(false),
            revision: body["applied_revision"]
                .as_u64()
                .with_context(|| format!("{}: /status has no applied_revision", self.node_id))?,
            digest: body["applied_digest"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            cached_revision: body["cached_revision"].as_u64(),
        })
    }

    /// Polls `/status` every `every` until the worker serves `revision` or a later one; returns
    /// when the answer that showed it arrived.
    pub async fn poll_until(
        &mut self,
        client: &reqwest::Client,
        revision: u64,
        every: Duration,
    ) -> anyhow::Result<Instant> {
        loop {
            // A worker that died would otherwise be polled until the phase's deadline.
            self.process.check_running()?;
            if let Ok(status) = self.status(client).await
                && status.serving
                && status.revision >= revision
            {
                return Ok(Instant::now());
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits until the worker logs `revision` or a later one as applied; returns when that line
    /// arrived.
    pub async fn logged(&self, revision: u64) -> anyhow::Result<Instant> {
        let mut applied = self.applied();
        match applied.wait_for(|a| a.revision >= revision).await {
            Ok(applied) => Ok(applied.at),
            Err(_) => bail!(
                "{} stopped before applying revision {revision}",
                self.node_id
            ),
        }
    }

    pub async fn stop(self) {
        self.process.stop().await;
    }
}
