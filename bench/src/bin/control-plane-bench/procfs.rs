//! Memory of a process from `/proc/<pid>/status`: the resident set now (VmRSS) and its peak
//! since the process started (VmHWM), which catches the spike of a large apply even when the
//! allocator has given the memory back by the time we look.

use anyhow::Context;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> anyhow::Result<Memory> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
        Ok(Memory {
            rss_kib: field(&status, "VmRSS:").with_context(|| format!("no VmRSS in {path}"))?,
            hwm_kib: field(&status, "VmHWM:").with_context(|| format!("no VmHWM in {path}"))?,
        })
    }

    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    pub fn hwm_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }
}

/// A `kB` value of `/proc/<pid>/status`, e.g. `VmRSS:     1234 kB`.
fn field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}
