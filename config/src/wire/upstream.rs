//! Upstreams on the wire.

use gateway_proto::v1;

use super::WireError;
use crate::Kind;
use crate::model::{
    AllUnhealthy, Balance, Duration, HashOn, HealthCheck, Protocol, Target, Upstream, UpstreamTls,
};

impl From<&Upstream> for v1::Upstream {
    fn from(u: &Upstream) -> Self {
        v1::Upstream {
            name: u.name.clone(),
            tags: u.tags.clone(),
            targets: u
                .targets
                .iter()
                .map(|t| v1::Target {
                    address: t.address.clone(),
                    weight: t.weight,
                })
                .collect(),
            balance: match u.balance {
                Balance::RoundRobin => v1::Balance::RoundRobin,
                Balance::LeastRequest => v1::Balance::LeastRequest,
                Balance::Random => v1::Balance::Random,
                Balance::ConsistentHash => v1::Balance::ConsistentHash,
            }
            .into(),
            hash_on: u.hash_on.as_ref().map(|h| v1::HashOn {
                key: Some(match h {
                    HashOn::Header(name) => v1::hash_on::Key::Header(name.clone()),
                    HashOn::Cookie(name) => v1::hash_on::Key::Cookie(name.clone()),
                    HashOn::ClientIp(on) => v1::hash_on::Key::ClientIp(*on),
                }),
            }),
            health_check: u.health_check.as_ref().map(v1::HealthCheck::from),
            all_unhealthy: match u.all_unhealthy {
                AllUnhealthy::FailOpen => v1::AllUnhealthy::FailOpen,
                AllUnhealthy::Reject => v1::AllUnhealthy::Reject,
            }
            .into(),
            timeouts: u.timeouts.as_ref().map(v1::UpstreamTimeouts::from),
            circuit_breaker: u.circuit_breaker.as_ref().map(v1::CircuitBreaker::from),
            protocol: match u.protocol {
                Protocol::Http1 => v1::Protocol::Http1,
                Protocol::Http2 => v1::Protocol::Http2,
                Protocol::H2c => v1::Protocol::H2c,
            }
            .into(),
            tls: u.tls.as_ref().map(|t| v1::UpstreamTls {
                enabled: t.enabled,
                sni: t.sni.clone(),
                verify: t.verify,
                ca: t.ca.clone(),
            }),
            dns_refresh_ms: u.dns_refresh.map(Duration::as_millis),
        }
    }
}

impl TryFrom<v1::Upstream> for Upstream {
    type Error = WireError;

    fn try_from(u: v1::Upstream) -> Result<Self, WireError> {
        let invalid = |field: &'static str, message: String| WireError::Invalid {
            kind: Kind::Upstream,
            name: u.name.clone(),
            field,
            message,
        };
        let balance = match v1::Balance::try_from(u.balance) {
            Ok(v1::Balance::RoundRobin | v1::Balance::Unspecified) => Balance::RoundRobin,
            Ok(v1::Balance::LeastRequest) => Balance::LeastRequest,
            Ok(v1::Balance::Random) => Balance::Random,
            Ok(v1::Balance::ConsistentHash) => Balance::ConsistentHash,
            Err(_) => {
                return Err(WireError::UnknownBalance {
                    name: u.name,
                    value: u.balance,
                });
            }
        };
        let hash_on = match u.hash_on.map(|h| h.key) {
            None => None,
            Some(Some(v1::hash_on::Key::Header(name))) => Some(HashOn::Header(name)),
            Some(Some(v1::hash_on::Key::Cookie(name))) => Some(HashOn::Cookie(name)),
            Some(Some(v1::hash_on::Key::ClientIp(on))) => Some(HashOn::ClientIp(on)),
            Some(None) => return Err(invalid("hash_on", "has no key".into())),
        };
        let all_unhealthy = match v1::AllUnhealthy::try_from(u.all_unhealthy) {
            Ok(v1::AllUnhealthy::FailOpen | v1::AllUnhealthy::Unspecified) => {
                AllUnhealthy::FailOpen
            }
            Ok(v1::AllUnhealthy::Reject) => AllUnhealthy::Reject,
            Err(_) => {
                return Err(invalid(
                    "all_unhealthy",
                    format!("unknown value {}", u.all_unhealthy),
                ));
            }
        };
        let protocol = match v1::Protocol::try_from(u.protocol) {
            Ok(v1::Protocol::Http1 | v1::Protocol::Unspecified) => Protocol::Http1,
            Ok(v1::Protocol::Http2) => Protocol::Http2,
            Ok(v1::Protocol::H2c) => Protocol::H2c,
            Err(_) => {
                return Err(invalid(
                    "protocol",
                    format!("unknown protocol {}", u.protocol),
                ));
            }
        };
        let health_check = match u.health_check.clone() {
            Some(h) => {
                Some(HealthCheck::try_from(h).map_err(|message| invalid("health_check", message))?)
            }
            None => None,
        };
        Ok(Upstream {
            name: u.name,
            tags: u.tags,
            targets: u
                .targets
                .into_iter()
                .map(|t| Target {
                    address: t.address,
                    weight: t.weight,
                })
                .collect(),
            balance,
            hash_on,
            health_check,
            all_unhealthy,
            timeouts: u.timeouts.map(Into::into),
            circuit_breaker: u.circuit_breaker.map(Into::into),
            protocol,
            tls: u.tls.map(|t| UpstreamTls {
                enabled: t.enabled,
                sni: t.sni,
                verify: t.verify,
                ca: t.ca,
            }),
            dns_refresh: u.dns_refresh_ms.map(Duration::from_millis),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn full() -> Upstream {
        serde_json::from_value(serde_json::json!({
            "name": "api",
            "targets": [{"address": "a.internal:443", "weight": 2}, {"address": "10.0.0.2:443"}],
            "balance": "consistent_hash",
            "hash_on": {"cookie": "session"},
            "health_check": {
                "active": {"path": "/healthz", "interval": "2s", "timeout": "500ms",
                           "healthy": 1, "unhealthy": 4, "expected_status": [200, 204]},
                "passive": {"consecutive_failures": 3, "eject_for": "10s"}
            },
            "all_unhealthy": "reject",
            "timeouts": {"connect": "1s", "idle": "1m"},
            "circuit_breaker": {"max_connections": 10, "max_requests": 100},
            "protocol": "http2",
            "tls": {"sni": "api.example.com", "verify": false,
                    "ca": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
            "dns_refresh": "5s"
        }))
        .unwrap()
    }

    #[test]
    fn every_field_survives_the_wire() {
        let upstream = full();
        assert!(upstream.validate().is_ok(), "{:?}", upstream.validate());
        let back = Upstream::try_from(v1::Upstream::from(&upstream)).unwrap();
        assert_eq!(back, upstream);
        for hash_on in [HashOn::Header("x-user".into()), HashOn::ClientIp(true)] {
            let u = Upstream {
                hash_on: Some(hash_on),
                ..upstream.clone()
            };
            assert_eq!(Upstream::try_from(v1::Upstream::from(&u)).unwrap(), u);
        }
        let plain = Upstream {
            name: "p".into(),
            targets: vec![Target {
                address: "h:1".into(),
                weight: 1,
            }],
            balance: Balance::LeastRequest,
            protocol: Protocol::H2c,
            ..Default::default()
        };
        assert_eq!(
            Upstream::try_from(v1::Upstream::from(&plain)).unwrap(),
            plain
        );
    }

    #[test]
    fn unknown_enum_values_are_refused() {
        let mut wire = v1::Upstream::from(&full());
        wire.protocol = 99;
        assert!(matches!(
            Upstream::try_from(wire),
            Err(WireError::Invalid {
                field: "protocol",
                ..
            })
        ));
        let mut wire = v1::Upstream::from(&full());
        wire.hash_on = Some(v1::HashOn { key: None });
        assert!(Upstream::try_from(wire).is_err());
    }
}
