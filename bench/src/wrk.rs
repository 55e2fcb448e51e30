//! Runs wrk and reads its report.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::report::{Run, Unit};

pub fn check_reachable(url: &str, script: Option<&Path>) -> anyhow::Result<()> {
    let mut command = Command::new("wrk");
    command.args(["-t1", "-c1", "-d1s"]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let run = parse(&text)?;
    anyhow::ensure!(
        run.requests > 0 && run.errors == 0,
        "no clean responses: {text}"
    );
    Ok(())
}

/// One run of wrk with one thread, pinned to `cpu`, optionally with a Lua `script` that shapes
/// the requests.
pub fn run(
    url: &str,
    connections: u32,
    duration: Duration,
    cpu: usize,
    script: Option<&Path>,
) -> anyhow::Result<Run> {
    let mut command = Command::new("taskset");
    command
        .args(["-c", &cpu.to_string(), "wrk", "-t1", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs()));
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output().context("run wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

fn parse(text: &str) -> anyhow::Result<Run> {
    let mut requests = None;
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0;
    for line in text.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["50%", value] => p50 = duration(value),
            ["99%", value] => p99 = duration(value),
            ["Requests/sec:", value] => rps = value.parse().ok(),
            [count, "requests", "in", ..] => requests = count.parse().ok(),
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                errors += count.parse::<u64>().unwrap_or(0)
            }
            ["Socket", "errors:", rest @ ..] => {
                errors += rest
                    .iter()
                    .filter_map(|v| v.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    Ok(Run {
        unit: Unit::Request,
        requests: requests.context("request count")?,
        requests_per_second: rps.context("Requests/sec")?,
        p50: p50.unwrap_or_default(),
        p99: p99.unwrap_or_default(),
        errors,
        not_resumed: 0,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let text = "Running 10s test @ http://127.0.0.1:1/\n  1 threads and 50 connections\n  Latency Distribution\n     50%  841.00us\n     75%    1.02ms\n     90%    1.20ms\n     99%    2.31ms\n  452301 requests in 10.00s, 60.39MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\nRequests/sec:  45228.54\nTransfer/sec:      6.04MB\n";
        let run = parse(text).unwrap();
        assert_eq!(run.requests, 452_301);
        assert_eq!(run.p50, Duration::from_micros(841));
        assert_eq!(run.p99, Duration::from_micros(2310));
        assert_eq!(run.errors, 3);
        assert!((run.requests_per_second - 45_228.54).abs() < 0.01);
    }
}
