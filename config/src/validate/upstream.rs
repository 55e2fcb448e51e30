//! Checks of an upstream on its own: targets, balancing, health checks, protocol and TLS.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::{FieldError, Kind, Report, ValidationErrors};
use super::fields::{
    Floor, check_duration, check_hostname, check_len, check_tags, check_token, validate_name,
    within_count,
};
use super::limits::{
    MAX_ADDRESS_LEN, MAX_CA_PEM_LEN, MAX_TARGETS_PER_UPSTREAM, MAX_WEIGHT, MIN_DNS_REFRESH_MS,
};
use crate::model::{Balance, HashOn, Protocol, Upstream, UpstreamTls};

impl Upstream {
    /// Errors in this upstream alone, without looking at other entities.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.collect_errors(&mut errors);
        ValidationErrors(errors).into_result()
    }

    pub(crate) fn collect_errors(&self, errors: &mut Vec<FieldError>) {
        let mut report = Report {
            kind: Kind::Upstream,
            name: &self.name,
            errors,
        };
        if let Err(message) = validate_name(&self.name) {
            report.invalid("name", message);
        }
        check_tags(&self.tags, &mut report);
        self.check_targets(&mut report);
        self.check_balance(&mut report);
        if let Some(health) = &self.health_check {
            if let Some(active) = &health.active {
                active.collect_errors("health_check.active", &mut report);
            }
            if let Some(passive) = &health.passive {
                passive.collect_errors("health_check.passive", &mut report);
            }
        }
        if let Some(timeouts) = &self.timeouts {
            timeouts.collect_errors(&mut report);
        }
        if let Some(breaker) = &self.circuit_breaker {
            breaker.collect_errors(&mut report);
        }
        let tls_enabled = self.tls.as_ref().is_some_and(|t| t.enabled);
        if self.protocol == Protocol::Http2 && !tls_enabled {
            report.invalid(
                "protocol",
                "http2 is negotiated over TLS; enable `tls`, or use h2c for plain-text HTTP/2",
            );
        }
        if self.protocol == Protocol::H2c && tls_enabled {
            report.invalid(
                "protocol",
                "h2c is plain-text HTTP/2; use http2 for HTTP/2 over TLS",
            );
        }
        if let Some(tls) = &self.tls {
            check_tls(tls, &mut report);
        }
        if let Some(refresh) = self.dns_refresh {
            check_duration(
                refresh,
                "dns_refresh",
                Floor::Millis(MIN_DNS_REFRESH_MS),
                &mut report,
            );
        }
    }

    fn check_targets(&self, report: &mut Report<'_>) {
        if self.targets.is_empty() {
            report.invalid("targets", "must list at least one target");
        }
        if !within_count(
            self.targets.len(),
            MAX_TARGETS_PER_UPSTREAM,
            "targets",
            "targets",
            report,
        ) {
            return;
        }
        let mut seen = HashSet::with_capacity(self.targets.len());
        let mut total_weight = 0u64;
        for (i, target) in self.targets.iter().enumerate() {
            if let Err(message) = parse_address(&target.address) {
                report.invalid(format!("targets[{i}].address"), message);
            }
            if target.weight > MAX_WEIGHT {
                report.invalid(
                    format!("targets[{i}].weight"),
                    format!("must be at most {MAX_WEIGHT}"),
                );
            }
            if !seen.insert(target.address.as_str()) {
                report.invalid(
                    format!("targets[{i}].address"),
                    format!("`{}` is listed twice", target.address),
                );
            }
            total_weight += u64::from(target.weight);
        }
        if !self.targets.is_empty() && total_weight == 0 {
            report.invalid("targets", "at least one target must have a weight above 0");
        }
    }

    fn check_balance(&self, report: &mut Report<'_>) {
        match (&self.balance, &self.hash_on) {
            (Balance::ConsistentHash, None) => report.invalid(
                "hash_on",
                "consistent_hash needs a key: {\"header\": NAME}, {\"cookie\": NAME} or {\"client_ip\": true}",
            ),
            (Balance::ConsistentHash, Some(hash_on)) => match hash_on {
                HashOn::Header(name) => {
                    if let Err(message) = check_token(name, "header name") {
                        report.invalid("hash_on.header", message);
                    }
                }
                HashOn::Cookie(name) => {
                    if let Err(message) = check_token(name, "cookie name") {
                        report.invalid("hash_on.cookie", message);
                    }
                }
                HashOn::ClientIp(false) => report.invalid(
                    "hash_on.client_ip",
                    "must be true; pick another key to hash on instead",
                ),
                HashOn::ClientIp(true) => {}
            },
            (_, Some(_)) => report.invalid(
                "hash_on",
                "is only used with `balance: consistent_hash`",
            ),
            (_, None) => {}
        }
    }
}

fn check_tls(tls: &UpstreamTls, report: &mut Report<'_>) {
    if let Some(sni) = &tls.sni
        && let Err(message) = check_hostname(sni)
    {
        report.invalid("tls.sni", message);
    }
    if let Some(ca) = &tls.ca
        && let Err(message) = check_pem_certificates(ca)
    {
        report.invalid("tls.ca", message);
    }
}

/// At least one certificate, and every PEM block of it readable.
fn check_pem_certificates(pem: &str) -> Result<(), String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    check_len(pem, MAX_CA_PEM_LEN)?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        cert.map_err(|e| format!("is not valid PEM: {e}"))?;
        count += 1;
    }
    if count == 0 {
        return Err("must hold PEM certificates (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(())
}

/// Splits `host:port` (`[v6]:port` for IPv6) into its parts.
pub(crate) fn parse_address(address: &str) -> Result<(&str, u16), String> {
    check_len(address, MAX_ADDRESS_LEN)?;
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!(
            "`{}` has no port; write it as host:port",
            address.escape_debug()
        ));
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
        format!(
            "`{}` has an invalid port; it must be 1-65535",
            address.escape_debug()
        )
    })?;
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("`{}` is not an IPv6 address", inner.escape_debug()))?;
        return Ok((host, port));
    }
    if host.contains(':') {
        return Err(format!(
            "`{}`: write an IPv6 address in brackets, e.g. [::1]:8080",
            address.escape_debug()
        ));
    }
    if host.parse::<Ipv4Addr>().is_err() {
        check_hostname(host)?;
    }
    Ok((host, port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::model::Upstream;

    fn fields(json: serde_json::Value) -> Vec<String> {
        let mut document = serde_json::json!({"name": "u", "targets": [{"address": "h:1"}]});
        if let (Some(base), Some(extra)) = (document.as_object_mut(), json.as_object()) {
            base.extend(extra.clone());
        }
        let upstream: Upstream = serde_json::from_value(document).unwrap();
        match upstream.validate() {
            Ok(()) => vec![],
            Err(errors) => errors.0.into_iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn balancing_needs_a_matching_hash_key() {
        assert!(fields(serde_json::json!({"balance": "least_request"})).is_empty());
        assert_eq!(
            fields(serde_json::json!({"balance": "consistent_hash"})),
            ["hash_on"]
        );
        assert!(
            fields(
                serde_json::json!({"balance": "consistent_hash", "hash_on": {"header": "x-user"}})
            )
            .is_empty()
        );
        assert_eq!(
            fields(
                serde_json::json!({"balance": "consistent_hash", "hash_on": {"header": "x user"}})
            ),
            ["hash_on.header"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"balance": "consistent_hash", "hash_on": {"client_ip": false}})
            ),
            ["hash_on.client_ip"]
        );
        assert_eq!(
            fields(serde_json::json!({"balance": "random", "hash_on": {"cookie": "s"}})),
            ["hash_on"]
        );
    }

    #[test]
    fn health_checks_timeouts_and_limits_name_their_fields() {
        let bad = serde_json::json!({
            "health_check": {
                "active": {"path": "health", "interval": "10ms", "timeout": "0s", "healthy": 0,
                           "expected_status": [200, 700]},
                "passive": {"consecutive_failures": 0, "eject_for": "0s"}
            },
            "timeouts": {"connect": "0s"},
            "circuit_breaker": {"max_pending": 0},
            "dns_refresh": "1ms"
        });
        assert_eq!(
            fields(bad),
            [
                "health_check.active.path",
                "health_check.active.interval",
                "health_check.active.timeout",
                "health_check.active.healthy",
                "health_check.active.expected_status[1]",
                "health_check.passive.consecutive_failures",
                "health_check.passive.eject_for",
                "timeouts.connect",
                "circuit_breaker.max_pending",
                "dns_refresh",
            ]
        );
        let defaults = serde_json::json!({"health_check": {"active": {}, "passive": {}}});
        assert!(fields(defaults).is_empty());
    }

    #[test]
    fn protocol_and_tls() {
        assert_eq!(
            fields(serde_json::json!({"protocol": "http2"})),
            ["protocol"]
        );
        assert!(fields(serde_json::json!({"protocol": "http2", "tls": {}})).is_empty());
        assert!(fields(serde_json::json!({"protocol": "h2c"})).is_empty());
        assert_eq!(
            fields(serde_json::json!({"protocol": "h2c", "tls": {}})),
            ["protocol"]
        );
        assert_eq!(
            fields(serde_json::json!({"protocol": "http2", "tls": {"enabled": false}})),
            ["protocol"]
        );
        assert_eq!(
            fields(serde_json::json!({"tls": {"sni": "bad_name", "ca": "nope"}})),
            ["tls.sni", "tls.ca"]
        );
        let broken = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert_eq!(
            fields(serde_json::json!({"tls": {"ca": broken}})),
            ["tls.ca"]
        );
        let unknown: Result<Upstream, _> = serde_json::from_value(serde_json::json!({
            "name": "u", "targets": [], "tls": {"verfy": false}
        }));
        assert!(unknown.is_err());
    }

    #[test]
    fn existing_documents_keep_their_form() {
        let json =
            r#"{"name":"u","targets":[{"address":"h:1","weight":1}],"balance":"round_robin"}"#;
        let upstream: Upstream = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&upstream).unwrap(), json);
    }
}
