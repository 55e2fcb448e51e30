//! Checks of resilience policies: route retries, upstream health checks, timeouts and circuit
//! breaker limits.

use super::error::Report;
use super::fields::{Floor, Query, check_duration, check_request_path, within_count};
use super::limits::{
    MAX_EXPECTED_STATUSES, MAX_RETRY_ATTEMPTS, MAX_THRESHOLD, MIN_PROBE_INTERVAL_MS,
};
use crate::model::{
    ActiveHealthCheck, CircuitBreaker, PassiveHealthCheck, Retries, UpstreamTimeouts,
};

impl Retries {
    pub(crate) fn collect_errors(&self, report: &mut Report<'_>) {
        if self.attempts > MAX_RETRY_ATTEMPTS {
            report.invalid(
                "retries.attempts",
                format!("must be at most {MAX_RETRY_ATTEMPTS}"),
            );
        }
        // Each condition once, which also bounds the list.
        for (i, on) in self.on.iter().enumerate() {
            if self.on[..i].contains(on) {
                report.invalid(format!("retries.on[{i}]"), "is listed twice");
            }
        }
        if let Some(per_try) = self.per_try_timeout {
            check_duration(per_try, "retries.per_try_timeout", Floor::AboveZero, report);
        }
        // No wait between tries is a choice, so zero is fine here.
        if let Some(backoff) = self.backoff {
            check_duration(backoff, "retries.backoff", Floor::Zero, report);
        }
    }
}

impl ActiveHealthCheck {
    pub(crate) fn collect_errors(&self, field: &str, report: &mut Report<'_>) {
        // The path is sent as the probe's request target, a query included.
        if let Err(message) = check_request_path(&self.path, Query::Allowed) {
            report.invalid(format!("{field}.path"), message);
        }
        // The two are compared only once each is valid on its own.
        let errors_before = report.errors.len();
        check_duration(
            self.interval,
            &format!("{field}.interval"),
            Floor::Millis(MIN_PROBE_INTERVAL_MS),
            report,
        );
        check_duration(
            self.timeout,
            &format!("{field}.timeout"),
            Floor::AboveZero,
            report,
        );
        if report.errors.len() == errors_before && self.timeout > self.interval {
            report.invalid(
                format!("{field}.timeout"),
                "must not be longer than the interval",
            );
        }
        check_threshold(self.healthy, &format!("{field}.healthy"), report);
        check_threshold(self.unhealthy, &format!("{field}.unhealthy"), report);
        if within_count(
            self.expected_status.len(),
            MAX_EXPECTED_STATUSES,
            &format!("{field}.expected_status"),
            "statuses",
            report,
        ) {
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
}

impl PassiveHealthCheck {
    pub(crate) fn collect_errors(&self, field: &str, report: &mut Report<'_>) {
        check_threshold(
            self.consecutive_failures,
            &format!("{field}.consecutive_failures"),
            report,
        );
        check_duration(
            self.eject_for,
            &format!("{field}.eject_for"),
            Floor::AboveZero,
            report,
        );
    }
}

impl UpstreamTimeouts {
    pub(crate) fn collect_errors(&self, report: &mut Report<'_>) {
        if let Some(connect) = self.connect {
            check_duration(connect, "timeouts.connect", Floor::AboveZero, report);
        }
        if let Some(idle) = self.idle {
            check_duration(idle, "timeouts.idle", Floor::AboveZero, report);
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
