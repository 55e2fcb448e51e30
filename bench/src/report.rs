//! What one run of a load generator measured, medians over rounds, and the table with ratios
//! to the reference proxy.

use std::fmt;
use std::time::Duration;

/// Linux counts CPU time in ticks of 10 ms.
const TICK_MICROS: f64 = 10_000.0;

/// What a run counts: requests on kept-alive connections, or connections each opened with a
/// TLS handshake of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Request,
    FullHandshake,
    ResumedHandshake,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Request => "req",
            Unit::FullHandshake | Unit::ResumedHandshake => "handshake",
        }
    }
}

/// One run of a load generator against one proxy.
#[derive(Debug, Clone)]
pub struct Run {
    pub unit: Unit,
    /// Requests answered, or handshakes completed.
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub errors: u64,
    /// Handshakes completed in full although resumption was asked for (0 for other units).
    pub not_resumed: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    unit: Unit,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us_per_request: f64,
    errors: u64,
    not_resumed: u64,
}

impl Sample {
    pub fn new(run: &Run, cpu_ticks: u64) -> Sample {
        Sample {
            unit: run.unit,
            rps: run.requests_per_second,
            p50_ms: run.p50.as_secs_f64() * 1000.0,
            p99_ms: run.p99.as_secs_f64() * 1000.0,
            cpu_us_per_request: cpu_ticks as f64 * TICK_MICROS / run.requests.max(1) as f64,
            errors: run.errors,
            not_resumed: run.not_resumed,
        }
    }
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.unit.name();
        write!(
            f,
            "{:>9.0} {unit}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {:>5.1} µs CPU/{unit}  errors {}",
            self.rps, self.p50_ms, self.p99_ms, self.cpu_us_per_request, self.errors
        )?;
        if self.unit == Unit::ResumedHandshake {
            write!(f, "  not resumed {}", self.not_resumed)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<(String, Vec<Sample>)>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl Table {
    pub fn add(&mut self, name: &str, sample: Sample) {
        match self.rows.iter_mut().find(|(n, _)| n == name) {
            Some((_, samples)) => samples.push(sample),
            None => self.rows.push((name.to_owned(), vec![sample])),
        }
    }

    fn medians(samples: &[Sample]) -> Sample {
        let pick = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
        Sample {
            unit: samples.first().map_or(Unit::Request, |s| s.unit),
            rps: pick(|s| s.rps),
            p50_ms: pick(|s| s.p50_ms),
            p99_ms: pick(|s| s.p99_ms),
            cpu_us_per_request: pick(|s| s.cpu_us_per_request),
            errors: samples.iter().map(|s| s.errors).sum(),
            not_resumed: samples.iter().map(|s| s.not_resumed).sum(),
        }
    }

    /// The unit of the table's samples (all are of one).
    fn unit(&self) -> Unit {
        self.rows
            .iter()
            .find_map(|(_, samples)| samples.first())
            .map_or(Unit::Request, |s| s.unit)
    }

    /// A Markdown table of medians, with ratios to the row whose name starts with `reference`.
    pub fn render(&self, reference: &str) -> String {
        let base = self
            .rows
            .iter()
            .find(|(name, _)| name.starts_with(reference))
            .map(|(_, samples)| Self::medians(samples));
        let unit = self.unit();
        let mut out = match unit {
            Unit::Request => String::from(
                "| proxy | req/s | × nginx | p50 ms | p99 ms | p99 × nginx | CPU µs/req | errors |\n|---|---|---|---|---|---|---|---|\n",
            ),
            Unit::FullHandshake => String::from(
                "| proxy | handshakes/s | × nginx | p50 ms | p99 ms | p99 × nginx | CPU µs/handshake | errors |\n|---|---|---|---|---|---|---|---|\n",
            ),
            Unit::ResumedHandshake => String::from(
                "| proxy | handshakes/s | × nginx | p50 ms | p99 ms | p99 × nginx | CPU µs/handshake | errors | not resumed |\n|---|---|---|---|---|---|---|---|---|\n",
            ),
        };
        for (name, samples) in &self.rows {
            let m = Self::medians(samples);
            let ratio = |value: f64, base: Option<f64>| match base {
                Some(b) if b > 0.0 => format!("{:.2}", value / b),
                _ => "-".into(),
            };
            out.push_str(&format!(
                "| {name} | {:.0} | {} | {:.2} | {:.2} | {} | {:.1} | {} |",
                m.rps,
                ratio(m.rps, base.map(|b| b.rps)),
                m.p50_ms,
                m.p99_ms,
                ratio(m.p99_ms, base.map(|b| b.p99_ms)),
                m.cpu_us_per_request,
                m.errors
            ));
            if unit == Unit::ResumedHandshake {
                out.push_str(&format!(" {} |", m.not_resumed));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
