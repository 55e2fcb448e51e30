//! Memory and CPU time of processes, from /proc.

use anyhow::Context;

/// Resident set size in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

/// User plus system CPU time of the processes, in clock ticks (1/100 s on Linux).
pub fn cpu_ticks(pids: &[u32]) -> anyhow::Result<u64> {
    let mut total = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name may contain spaces; the fields we want follow its closing paren.
        let after_name = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .context("odd /proc stat")?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let utime: u64 = fields
            .get(11)
            .and_then(|v| v.parse().ok())
            .context("utime")?;
        let stime: u64 = fields
            .get(12)
            .and_then(|v| v.parse().ok())
            .context("stime")?;
        total += utime + stime;
    }
    Ok(total)
}
