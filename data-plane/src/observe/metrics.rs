//! The worker's Prometheus metrics, rendered on the status port's `/metrics`.
//!
//! Request outcomes are counted on the hot path, so each one is a plain atomic in a fixed array
//! indexed by an enum resolved at compile time: counting a request costs one relaxed `fetch_add`,
//! with no label lookup, lock or allocation. The registry only reads them when scraped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::error::ProxyError;

/// How the proxy answered a request: `Ok` for a proxied response, else the proxy's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok = 0,
    NoRoute,
    NoConfig,
    UpstreamUnavailable,
    UpstreamTimeout,
    NoHealthyTarget,
    CircuitOpen,
    BadRequest,
    UnsupportedCoding,
    RequestTimeout,
    AddressRefused,
    BodyTooLarge,
}

impl Outcome {
    pub const ALL: [Outcome; 12] = [
        Outcome::Ok,
        Outcome::NoRoute,
        Outcome::NoConfig,
        Outcome::UpstreamUnavailable,
        Outcome::UpstreamTimeout,
        Outcome::NoHealthyTarget,
        Outcome::CircuitOpen,
        Outcome::BadRequest,
        Outcome::UnsupportedCoding,
        Outcome::RequestTimeout,
        Outcome::AddressRefused,
        Outcome::BodyTooLarge,
    ];

    /// The `code` label value.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NoRoute => "no_route",
            Outcome::NoConfig => "no_config",
            Outcome::UpstreamUnavailable => "upstream_unavailable",
            Outcome::UpstreamTimeout => "upstream_timeout",
            Outcome::NoHealthyTarget => "no_healthy_target",
            Outcome::CircuitOpen => "circuit_open",
            Outcome::BadRequest => "bad_request",
            Outcome::UnsupportedCoding => "unsupported_transfer_coding",
            Outcome::RequestTimeout => "request_timeout",
            Outcome::AddressRefused => "address_refused",
            Outcome::BodyTooLarge => "body_too_large",
        }
    }
}

impl From<ProxyError> for Outcome {
    fn from(error: ProxyError) -> Self {
        match error {
            ProxyError::NoHealthyTarget => Outcome::NoHealthyTarget,
            ProxyError::CircuitOpen => Outcome::CircuitOpen,
            ProxyError::NoConfig => Outcome::NoConfig,
            ProxyError::NoRoute => Outcome::NoRoute,
            ProxyError::BadFraming
            | ProxyError::BadHost
            | ProxyError::InvalidRequest
            | ProxyError::BadBody => Outcome::BadRequest,
            ProxyError::UnsupportedCoding => Outcome::UnsupportedCoding,
            ProxyError::BodyTimeout => Outcome::RequestTimeout,
            ProxyError::UpstreamUnavailable => Outcome::UpstreamUnavailable,
            ProxyError::UpstreamTimeout => Outcome::UpstreamTimeout,
            ProxyError::AddressRefused => Outcome::AddressRefused,
            ProxyError::BodyTooLarge => Outcome::BodyTooLarge,
        }
    }
}

/// One counter per [`Outcome`], exposed as the `gateway_requests_total{code}` family.
#[derive(Debug, Default)]
struct RequestCounts([AtomicU64; Outcome::ALL.len()]);

impl Collector for RequestCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "gateway_requests",
            "Requests answered, by outcome (ok = proxied, else the proxy's error code)",
            None,
            MetricType::Counter,
        )?;
        for outcome in Outcome::ALL {
            let value = self.0[outcome as usize].load(Ordering::Relaxed);
            family
                .encode_family(&[("code", outcome.code())])?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        Ok(())
    }
}

/// How a TLS handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Completed with a full handshake.
    Full = 0,
    /// Completed by resuming a session.
    Resumed,
    /// The client named no certificate of the config (or none, without a default).
    UnknownName,
    /// The client did not finish in time.
    Timeout,
    /// The client's certificate was missing or not valid.
    ClientCertificate,
    /// Anything else: an old protocol version, no common cipher, a malformed message.
    Protocol,
}

impl Handshake {
    pub const ALL: [Handshake; 6] = [
        Handshake::Full,
        Handshake::Resumed,
        Handshake::UnknownName,
        Handshake::Timeout,
        Handshake::ClientCertificate,
        Handshake::Protocol,
    ];

    /// The `result` label value.
    pub fn label(self) -> &'static str {
        match self {
            Handshake::Full => "full",
            Handshake::Resumed => "resumed",
            Handshake::UnknownName => "unknown_server_name",
            Handshake::Timeout => "timeout",
            Handshake::ClientCertificate => "client_certificate",
            Handshake::Protocol => "protocol",
        }
    }
}

/// One counter per [`Handshake`] result: `gateway_tls_handshakes_total{result}`.
#[derive(Debug, Default)]
struct HandshakeCounts([AtomicU64; Handshake::ALL.len()]);

impl Collector for HandshakeCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "gateway_tls_handshakes",
            "TLS handshakes on the proxy's TLS listeners, by result (full and resumed succeeded; \
             the others are failures by reason)",
            None,
            MetricType::Counter,
        )?;
        for result in Handshake::ALL {
            let value = self.0[result as usize].load(Ordering::Relaxed);
            family
                .encode_family(&[("result", result.label())])?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        Ok(())
    }
}

/// The expiry of each certificate served, as `(name, not_after_unix)`; turned into seconds
/// left when scraped. Set when a revision is applied; read only by scrapes.
#[derive(Debug, Default)]
struct CertificateExpiry(Mutex<Vec<(String, i64)>>);

impl Collector for CertificateExpiry {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let certificates = self.0.lock().map(|c| c.clone()).unwrap_or_default();
        let mut family = encoder.encode_descriptor(
            "gateway_tls_certificate_expiry_seconds",
            "Seconds until each served certificate expires (negative once it has)",
            None,
            MetricType::Gauge,
        )?;
        let now = gateway_config::x509::unix_now();
        for (name, not_after) in &certificates {
            family
                .encode_family(&[("certificate", name.as_str())])?
                .encode_gauge(&not_after.saturating_sub(now))?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct Metrics {
    requests: Arc<RequestCounts>,
    handshakes: Arc<HandshakeCounts>,
    expiry: Arc<CertificateExpiry>,
    applies: Counter,
    rejects: Counter,
    revision: Gauge,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let requests = Arc::new(RequestCounts::default());
        let handshakes = Arc::new(HandshakeCounts::default());
        let expiry = Arc::new(CertificateExpiry::default());
        let applies = Counter::default();
        let rejects = Counter::default();
        let revision = Gauge::default();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(requests.clone()));
        registry.register_collector(Box::new(handshakes.clone()));
        registry.register_collector(Box::new(expiry.clone()));
        registry.register(
            "gateway_config_revision",
            "Revision of the configuration served now (0 while none is served)",
            revision.clone(),
        );
        registry.register(
            "gateway_config_applies",
            "Configuration pushes applied",
            applies.clone(),
        );
        registry.register(
            "gateway_config_rejects",
            "Configuration pushes rejected (NACKed)",
            rejects.clone(),
        );
        Metrics {
            requests,
            handshakes,
            expiry,
            applies,
            rejects,
            revision,
            registry,
        }
    }

    /// Counts one answered request; safe to call on the request path.
    #[inline]
    pub fn request(&self, outcome: Outcome) {
        self.requests.0[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn requests(&self, outcome: Outcome) -> u64 {
        self.requests.0[outcome as usize].load(Ordering::Relaxed)
    }

    /// Counts one TLS handshake's end.
    #[inline]
    pub fn handshake(&self, result: Handshake) {
        self.handshakes.0[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The certificates served now, as `(name, not_after_unix)`.
    pub fn set_certificates(&self, certificates: Vec<(String, i64)>) {
        if let Ok(mut held) = self.expiry.0.lock() {
            *held = certificates;
        }
    }

    pub fn config_applied(&self) {
        self.applies.inc();
    }

    pub fn config_rejected(&self) {
        self.rejects.inc();
    }

    pub fn set_revision(&self, revision: u64) {
        self.revision
            .set(i64::try_from(revision).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail, and every metric here encodes without error.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_values() {
        let metrics = Metrics::new();
        metrics.request(Outcome::Ok);
        metrics.request(Outcome::Ok);
        metrics.request(Outcome::NoRoute);
        metrics.config_applied();
        metrics.config_rejected();
        metrics.config_rejected();
        metrics.set_revision(42);
        metrics.handshake(Handshake::Resumed);
        metrics.set_certificates(vec![("site".into(), i64::MAX)]);
        let text = metrics.render();
        for line in [
            "# TYPE gateway_requests counter",
            "gateway_requests_total{code=\"ok\"} 2",
            "gateway_requests_total{code=\"no_route\"} 1",
            "gateway_requests_total{code=\"no_config\"} 0",
            "gateway_requests_total{code=\"upstream_unavailable\"} 0",
            "gateway_requests_total{code=\"upstream_timeout\"} 0",
            "gateway_requests_total{code=\"bad_request\"} 0",
            "gateway_config_revision 42",
            "gateway_config_applies_total 1",
            "gateway_config_rejects_total 2",
            "gateway_tls_handshakes_total{result=\"resumed\"} 1",
            "gateway_tls_handshakes_total{result=\"unknown_server_name\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(metrics.requests(Outcome::Ok), 2);
        assert!(
            text.contains("gateway_tls_certificate_expiry_seconds{certificate=\"site\"} "),
            "{text}"
        );
    }

    #[test]
    fn an_error_is_counted_under_its_own_code() {
        for error in ProxyError::ALL {
            assert_eq!(Outcome::from(error).code(), error.code());
        }
    }

    #[test]
    fn outcome_codes_are_distinct() {
        let mut codes: Vec<_> = Outcome::ALL.iter().map(|o| o.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Outcome::ALL.len());
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, i);
        }
    }
}
