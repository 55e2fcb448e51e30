//! Checks of resilience policies: route retries, upstream health checks, timeouts and circuit
//! breaker limits.

use super::error::Report;
use crate::model::{
    ActiveHealthCheck, CircuitBreaker, Duration, PassiveHealthCheck, Retries, UpstreamTimeouts,
};

/// More tries than this only multiply the load on a failing upstream.
const MAX_RETRY_ATTEMPTS: u32 = 10;
/// Probing more often than this is load, not information.
const MIN_PROBE_INTERVAL_MS: u64 = 100;
/// Upper bound of the probe thresholds and of `consecutive_failures`.
const MAX_THRESHOLD: u32 = 1_000;

impl Retries {
    pub(crate) fn collect_errors(&self, report: &mut Report<'_>) {
        if self.attempts > MAX_RETRY_ATTEMPTS {
            report.invalid(
                "retries.attempts",
                format!("must be at most {MAX_RETRY_ATTEMPTS}"),
            );
        }
        if self.per_try_timeout.is_some_and(|t| t.as_std().is_zero()) {
            report.invalid("retries.per_try_timeout", "must be above 0");
        }
    }
}

impl ActiveHealthCheck {
    pub(crate) fn collect_errors(&self, field: &str, report: &mut Report<'_>) {
        if !self.path.starts_with('/')
            || self
                .path
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '#')
        {
            report.invalid(
                format!("{field}.path"),
                format!("`{}` must be a request path starting with `/`", self.path),
            );
        }
        if self.interval.as_millis() < MIN_PROBE_INTERVAL_MS {
            report.invalid(
                format!("{field}.interval"),
                format!("must be at least {MIN_PROBE_INTERVAL_MS}ms"),
            );
        }
        if self.timeout.as_std().is_zero() {
            report.invalid(format!("{field}.timeout"), "must be above 0");
        } else if self.timeout > self.interval {
            report.invalid(
                format!("{field}.timeout"),
                "must not be longer than the interval",
            );
        }
        check_threshold(self.healthy, &format!("{field}.healthy"), report);
        check_threshold(self.unhealthy, &format!("{field}.unhealthy"), report);
        for (i, status) in self.expected_status.iter().enumerate() {
            if !(100..=599).contains(status) {
                report.invalid(
                    format!("{field}.expected_status[{i}]"),
                    format!("{status} is not an HTTP status (100-599)"),
                );
            }
        }
    }
}

impl PassiveHealthCheck {
    pub(crate) fn collect_errors(&self, field: &str, report: &mut Report<'_>) {
        check_threshold(
            self.consecutive_failures,
            &format!("{field}.consecutive_failures"),
            report,
        );
        check_positive(self.eject_for, &format!("{field}.eject_for"), report);
    }
}

impl UpstreamTimeouts {
    pub(crate) fn collect_errors(&self, report: &mut Report<'_>) {
        if let Some(connect) = self.connect {
            check_positive(connect, "timeouts.connect", report);
        }
        if let Some(idle) = self.idle {
            check_positive(idle, "timeouts.idle", report);
        }
    }
}

impl CircuitBreaker {
    pub(crate) fn collect_errors(&self, report: &mut Report<'_>) {
        for (name, value) in [
            ("max_connections", self.max_connections),
            ("max_pending", self.max_pending),
            ("max_requests", self.max_requests),
        ] {
            if value == Some(0) {
                report.invalid(
                    format!("circuit_breaker.{name}"),
                    "must be at least 1; leave it out for no limit",
                );
            }
        }
    }
}

fn check_threshold(value: u32, field: &str, report: &mut Report<'_>) {
    if !(1..=MAX_THRESHOLD).contains(&value) {
        report.invalid(field, format!("must be between 1 and {MAX_THRESHOLD}"));
    }
}

pub(crate) fn check_positive(value: Duration, field: &str, report: &mut Report<'_>) {
    if value.as_std().is_zero() {
        report.invalid(field, "must be above 0");
    }
}
