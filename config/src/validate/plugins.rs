//! Checks of a route's policies (`plugins`), and the one reading of an `ip_restriction` entry
//! that the control plane and the workers share.

use std::net::IpAddr;

use super::error::Report;
use super::fields::within_count;
use super::limits::{MAX_IP_RULES, MAX_REQUEST_SIZE_LIMIT};
use super::route::check_editable_header;
use crate::model::{IpRestriction, Plugins, RequestId, RequestSizeLimit};

/// An `ip_restriction` entry as an address and a prefix length: `10.0.0.0/8`, `2001:db8::/32`,
/// or a bare address (all of its bits). Bits set past the prefix are refused, since
/// `10.1.2.3/8` more likely means a typo than `10.0.0.0/8`.
pub fn parse_ip_rule(text: &str) -> Result<(IpAddr, u8), String> {
    let shown = text.escape_debug();
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address
        .parse()
        .map_err(|_| format!("`{shown}` is not an IPv4 or IPv6 address or CIDR block"))?;
    let bits: u8 = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => bits,
        Some(prefix) => match prefix.parse::<u8>() {
            Ok(length) if length <= bits && prefix.bytes().all(|b| b.is_ascii_digit()) => length,
            _ => {
                return Err(format!(
                    "`{shown}`: the prefix length must be a number from 0 to {bits}"
                ));
            }
        },
    };
    let host_bits = match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) & mask(32 - prefix),
        IpAddr::V6(v6) => u128::from(v6) & mask(128 - prefix),
    };
    if host_bits != 0 {
        return Err(format!(
            "`{shown}` has bits set past its /{prefix} prefix; write the block's first address"
        ));
    }
    Ok((address, prefix))
}

/// The low `bits` bits set.
fn mask(bits: u8) -> u128 {
    match bits {
        0 => 0,
        128.. => u128::MAX,
        n => (1u128 << n) - 1,
    }
}

impl Plugins {
    pub(crate) fn collect_errors(&self, report: &mut Report<'_>) {
        if let Some(request_id) = &self.request_id {
            request_id.collect_errors(report);
        }
        if let Some(restriction) = &self.ip_restriction {
            restriction.collect_errors(report);
        }
        if let Some(limit) = &self.request_size_limit {
            limit.collect_errors(report);
        }
    }
}

impl RequestId {
    fn collect_errors(&self, report: &mut Report<'_>) {
        if let Err(message) = check_editable_header(&self.header) {
            report.invalid("plugins.request_id.header", message);
        }
    }
}

impl IpRestriction {
    fn collect_errors(&self, report: &mut Report<'_>) {
        if self.allow.is_empty() && self.deny.is_empty() {
            report.invalid(
                "plugins.ip_restriction",
                "needs `allow`, `deny` or both; without either it would let every request through",
            );
        }
        for (list, entries) in [("allow", &self.allow), ("deny", &self.deny)] {
            let at = format!("plugins.ip_restriction.{list}");
            if !within_count(entries.len(), MAX_IP_RULES, &at, "entries", report) {
                continue;
            }
            for (i, entry) in entries.iter().enumerate() {
                if let Err(message) = parse_ip_rule(entry) {
                    report.invalid(format!("{at}[{i}]"), message);
                }
            }
        }
    }
}

impl RequestSizeLimit {
    fn collect_errors(&self, report: &mut Report<'_>) {
        if self.max_bytes == 0 || self.max_bytes > MAX_REQUEST_SIZE_LIMIT {
            report.invalid(
                "plugins.request_size_limit.max_bytes",
                format!("must be from 1 to {MAX_REQUEST_SIZE_LIMIT}"),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Route;

    #[test]
    fn ip_rules_are_addresses_or_exact_blocks() {
        assert_eq!(
            parse_ip_rule("10.0.0.0/8").unwrap(),
            ("10.0.0.0".parse().unwrap(), 8)
        );
        assert_eq!(
            parse_ip_rule("192.0.2.7").unwrap(),
            ("192.0.2.7".parse().unwrap(), 32)
        );
        assert_eq!(
            parse_ip_rule("2001:db8::/32").unwrap(),
            ("2001:db8::".parse().unwrap(), 32)
        );
        assert_eq!(parse_ip_rule("::1").unwrap(), ("::1".parse().unwrap(), 128));
        assert_eq!(
            parse_ip_rule("0.0.0.0/0").unwrap(),
            ("0.0.0.0".parse().unwrap(), 0)
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.1.2.3/8",
            "2001:db8::1/32",
            "::/129",
            "example.com",
            "10.0.0.0/8/8",
            "10.0.0",
        ] {
            assert!(parse_ip_rule(bad).is_err(), "{bad:?}");
        }
    }

    fn errors(plugins: serde_json::Value) -> Vec<(String, String)> {
        let route: Route = serde_json::from_value(serde_json::json!({
            "name": "r",
            "paths": [{"prefix": "/"}],
            "backends": [{"upstream": "u"}],
            "plugins": plugins,
        }))
        .unwrap();
        match route.validate() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.0.into_iter().map(|e| (e.field, e.message)).collect(),
        }
    }

    #[test]
    fn plugins_are_checked_field_by_field() {
        assert!(
            errors(serde_json::json!({
                "request_id": {},
                "ip_restriction": {"allow": ["10.0.0.0/8", "::1"], "deny": ["10.9.0.0/16"]},
                "request_size_limit": {"max_bytes": 1024},
            }))
            .is_empty()
        );
        let fields = |plugins| {
            errors(plugins)
                .into_iter()
                .map(|(field, _)| field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields(serde_json::json!({"request_id": {"header": "bad header"}})),
            ["plugins.request_id.header"]
        );
        assert_eq!(
            fields(serde_json::json!({"request_id": {"header": "content-length"}})),
            ["plugins.request_id.header"]
        );
        assert_eq!(
            fields(serde_json::json!({"ip_restriction": {}})),
            ["plugins.ip_restriction"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"ip_restriction": {"allow": ["10.0.0.0/8", "300.0.0.1"], "deny": ["x"]}})
            ),
            [
                "plugins.ip_restriction.allow[1]",
                "plugins.ip_restriction.deny[0]"
            ]
        );
        let many: Vec<String> = (0..=MAX_IP_RULES)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        assert_eq!(
            fields(serde_json::json!({"ip_restriction": {"deny": many}})),
            ["plugins.ip_restriction.deny"]
        );
        for bad in [0, MAX_REQUEST_SIZE_LIMIT + 1] {
            assert_eq!(
                fields(serde_json::json!({"request_size_limit": {"max_bytes": bad}})),
                ["plugins.request_size_limit.max_bytes"]
            );
        }
    }

    #[test]
    fn unknown_plugins_and_fields_are_refused() {
        for plugins in [
            serde_json::json!({"rate_limiting": {}}),
            serde_json::json!({"request_id": {"headr": "x-id"}}),
            serde_json::json!({"request_size_limit": {}}),
        ] {
            let parsed = serde_json::from_value::<Route>(serde_json::json!({
                "name": "r", "backends": [{"upstream": "u"}], "plugins": plugins,
            }));
            assert!(parsed.is_err(), "{plugins}");
        }
    }
}
