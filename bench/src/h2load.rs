//! Runs h2load (nghttp2's load generator) for HTTP/2 over TLS and reads its report. h2load's
//! report gives latency only as min, max, mean and deviation, so p50 and p99 come from its
//! per-request log (`--log-file`: start time, status, microseconds to the end of the response).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::certs::SERVER_NAME;
use crate::report::{Run, Unit};

/// Concurrent streams on each connection.
pub const STREAMS: u32 = 10;

/// The arguments that point h2load at the proxy at `address` and ask for `path` on the
/// benchmark's server name, which h2load then sends as SNI (wrk cannot: it sends the host it
/// connects to).
fn target(address: SocketAddr, path: &str) -> [String; 2] {
    [
        format!("--connect-to={address}"),
        format!("https://{SERVER_NAME}:{}{path}", address.port()),
    ]
}

/// What the TLS session of a run agreed on, as h2load prints it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Agreed {
    pub protocol: String,
    pub cipher: String,
    pub key_exchange: String,
    pub application_protocol: String,
}

/// The request body h2load sends (a POST), with its content type.
fn body_args(command: &mut Command, body: Option<&Path>) {
    if let Some(body) = body {
        command
            .arg("-d")
            .arg(body)
            .args(["-H", "content-type: application/json"]);
    }
}

/// A few requests on one connection, all of which must succeed over HTTP/2.
pub fn check(address: SocketAddr, path: &str, body: Option<&Path>) -> anyhow::Result<Agreed> {
    let mut command = Command::new("h2load");
    command.args(["-n", "20", "-c", "1", "-m", "10"]);
    let (report, text) = finish(&mut command, address, path, body)?;
    anyhow::ensure!(
        report.succeeded == 20 && report.failed == 0 && report.ok == 20,
        "no clean responses: {text}"
    );
    anyhow::ensure!(
        report.agreed.application_protocol == "h2",
        "ALPN agreed on {:?}, not h2",
        report.agreed.application_protocol
    );
    Ok(report.agreed)
}

/// One run of h2load with one thread pinned to `cpu`: `connections` connections with
/// [`STREAMS`] concurrent streams each, for `duration`; the per-request log goes to `log`.
pub fn run(
    address: SocketAddr,
    path: &str,
    connections: u32,
    duration: Duration,
    cpu: usize,
    body: Option<&Path>,
    log: &Path,
) -> anyhow::Result<Run> {
    let mut command = Command::new("taskset");
    command
        .args(["-c", &cpu.to_string(), "h2load", "-t", "1"])
        .arg(format!("-c{connections}"))
        .arg(format!("-m{STREAMS}"))
        .arg(format!("-D{}", duration.as_secs()))
        .arg(format!("--log-file={}", log.display()));
    let (report, _) = finish(&mut command, address, path, body)?;
    let log_text =
        std::fs::read_to_string(log).with_context(|| format!("read {}", log.display()))?;
    let (p50, p99) = latencies(&log_text);
    Ok(Run {
        unit: Unit::Request,
        requests: report.succeeded,
        requests_per_second: report.requests_per_second,
        p50,
        p99,
        // `failed` counts 4xx and 5xx as well as broken streams; what else is not a 2xx, too.
        errors: report.failed + report.succeeded.saturating_sub(report.ok),
        not_resumed: 0,
    })
}

/// Adds the body and target to `command`, runs it and reads its summary; also returns what it
/// printed.
fn finish(
    command: &mut Command,
    address: SocketAddr,
    path: &str,
    body: Option<&Path>,
) -> anyhow::Result<(Report, String)> {
    body_args(command, body);
    let output = command
        .args(target(address, path))
        .output()
        .context("run h2load")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = parse(&text).with_context(|| format!("unexpected h2load output:\n{text}"))?;
    Ok((report, text))
}

#[derive(Debug, Default)]
struct Report {
    requests_per_second: f64,
    succeeded: u64,
    failed: u64,
    /// Responses with a 2xx status.
    ok: u64,
    agreed: Agreed,
}

/// The count before `word` in a line like `requests: 10 total, 10 started, 9 succeeded`.
fn count_before(fields: &[&str], word: &str) -> Option<u64> {
    fields
        .windows(2)
        .find(|pair| pair[1].trim_end_matches(',') == word)
        .and_then(|pair| pair[0].parse().ok())
}

fn parse(text: &str) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let (mut rps, mut requests) = (None, None);
    for line in text.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let Some(rest) = line.strip_prefix("TLS Protocol:") {
            report.agreed.protocol = rest.trim().to_owned();
        } else if let Some(rest) = line.strip_prefix("Cipher:") {
            report.agreed.cipher = rest.trim().to_owned();
        } else if let Some(rest) = line.strip_prefix("Server Temp Key:") {
            report.agreed.key_exchange = rest.trim().to_owned();
        } else if let Some(rest) = line.strip_prefix("Application protocol:") {
            report.agreed.application_protocol = rest.trim().to_owned();
        } else if let ["finished", "in", _, value, ..] = fields.as_slice() {
            rps = value.parse::<f64>().ok();
        } else if fields.first() == Some(&"requests:") {
            requests = count_before(&fields, "succeeded");
            report.failed = count_before(&fields, "failed").unwrap_or(0);
        } else if line.starts_with("status codes:") {
            report.ok = count_before(&fields, "2xx").unwrap_or(0);
        }
    }
    report.requests_per_second = rps.context("req/s")?;
    report.succeeded = requests.context("succeeded requests")?;
    Ok(report)
}

/// p50 and p99 of the third column of h2load's log (microseconds per request).
fn latencies(log: &str) -> (Duration, Duration) {
    let mut micros: Vec<u64> = log
        .lines()
        .filter_map(|line| line.split('\t').nth(2)?.trim().parse().ok())
        .collect();
    micros.sort_unstable();
    let quantile = |q: f64| {
        let n = micros.len();
        if n == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(micros[((n as f64 * q) as usize).min(n - 1)])
    };
    (quantile(0.50), quantile(0.99))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_h2load_report() {
        let text = "starting benchmark...\nTLS Protocol: TLSv1.3\nCipher: TLS_AES_128_GCM_SHA256\n\
            Server Temp Key: X25519 253 bits\nApplication protocol: h2\n\n\
            finished in 2.01s, 2000.00 req/s, 134.89KB/s\n\
            requests: 4015 total, 4036 started, 4015 done, 4000 succeeded, 15 failed, 15 errored, 0 timeout\n\
            status codes: 4000 2xx, 0 3xx, 0 4xx, 0 5xx\n";
        let report = parse(text).unwrap();
        assert!((report.requests_per_second - 2000.0).abs() < 0.01);
        assert_eq!(
            (report.succeeded, report.failed, report.ok),
            (4000, 15, 4000)
        );
        assert_eq!(report.agreed.protocol, "TLSv1.3");
        assert_eq!(report.agreed.cipher, "TLS_AES_128_GCM_SHA256");
        assert_eq!(report.agreed.key_exchange, "X25519 253 bits");
        assert_eq!(report.agreed.application_protocol, "h2");
    }

    #[test]
    fn percentiles_come_from_the_log() {
        let log: String = (1..=100)
            .map(|i| format!("1796655554085325\t200\t{i}\n"))
            .collect();
        let (p50, p99) = latencies(&log);
        assert_eq!(p50, Duration::from_micros(51));
        assert_eq!(p99, Duration::from_micros(100));
    }
}
