//! Percentiles of latency samples, in milliseconds.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    /// `None` without samples.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let max_ms = *ms.last()?;
        Some(Summary {
            count: ms.len(),
            p50_ms: percentile(&ms, 0.50),
            p99_ms: percentile(&ms, 0.99),
            max_ms,
            mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
        })
    }
}

/// Nearest rank on sorted samples: the smallest sample with at least `p` of them at or below it.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds, for the raw numbers in the JSON output.
pub fn millis(samples: &[Duration]) -> Vec<f64> {
    samples
        .iter()
        .map(|d| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let summary = Summary::of(&samples).expect("samples");
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.max_ms, 100.0);
        assert!(Summary::of(&[]).is_none());
        let one = Summary::of(&[Duration::from_millis(7)]).expect("one sample");
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
    }
}
