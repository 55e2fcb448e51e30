//! The control plane under test: one process on a fresh database, both its listeners on
//! loopback ports the operating system picks, found in its log.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::process::Child;
use crate::procfs::Memory;

/// Generous: on PostgreSQL the migrations run first.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ControlPlane {
    pub admin_url: String,
    pub sync_url: String,
    process: Child,
}

impl ControlPlane {
    pub async fn start(
        binary: &Path,
        database_url: &str,
        cwd: &Path,
    ) -> anyhow::Result<ControlPlane> {
        let args = [
            "--database-url",
            database_url,
            "--admin-listen",
            "127.0.0.1:0",
            "--sync-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ]
        .map(str::to_owned);
        let mut process = Child::spawn("control-plane", binary, &args, Some(cwd), None)?;
        let admin = address(&mut process, "admin API listening on ").await?;
        let sync = address(&mut process, "config sync listening on ").await?;
        Ok(ControlPlane {
            admin_url: format!("http://{admin}"),
            sync_url: format!("http://{sync}"),
            process,
        })
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of(self.process.pid())
    }

    /// An error naming the exit and the last log lines if the process is gone.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.process.check_running()
    }

    pub async fn stop(self) {
        self.process.stop().await;
    }
}

async fn address(process: &mut Child, prefix: &str) -> anyhow::Result<SocketAddr> {
    process
        .wait_for_message(prefix, START_TIMEOUT)
        .await?
        .trim()
        .parse()
        .with_context(|| format!("the control plane logged an odd address after {prefix:?}"))
}
