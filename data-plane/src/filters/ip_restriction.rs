//! `ip_restriction`: a route's allow and deny lists of addresses and CIDR blocks, checked
//! against the client's address (worked out by the proxy, which knows the trusted proxies).

use std::net::IpAddr;

use gateway_config::{IpRestriction, parse_ip_rule};
use ipnet::IpNet;

#[derive(Debug)]
pub struct IpRules {
    allow: Box<[IpNet]>,
    deny: Box<[IpNet]>,
}

impl IpRules {
    /// The rules of `config`. An entry the worker cannot read (validation refuses them, so
    /// only a bug lets one through) makes the route refuse every address rather than let
    /// through ones it meant to refuse.
    pub fn compile(route: &str, config: &IpRestriction) -> Self {
        let nets = |entries: &[String]| -> Option<Box<[IpNet]>> {
            entries
                .iter()
                .map(|entry| {
                    let (address, prefix) = parse_ip_rule(entry).ok()?;
                    IpNet::new(address, prefix).ok()
                })
                .collect()
        };
        match (nets(&config.allow), nets(&config.deny)) {
            (Some(allow), Some(deny)) => IpRules { allow, deny },
            _ => {
                tracing::warn!(
                    route,
                    "ip_restriction has an entry the worker cannot read; refusing every address"
                );
                IpRules {
                    allow: Box::new([]),
                    deny: Box::new([IpNet::V4(Default::default()), IpNet::V6(Default::default())]),
                }
            }
        }
    }

    /// Whether `client` may use the route: in no `deny` entry, and in an `allow` entry when
    /// there are any.
    pub fn admits(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        if self.deny.iter().any(|net| net.contains(&client)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&client))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> IpRules {
        IpRules::compile(
            "r",
            &IpRestriction {
                allow: allow.iter().map(|s| s.to_string()).collect(),
                deny: deny.iter().map(|s| s.to_string()).collect(),
            },
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn deny_wins_and_allow_narrows() {
        let rules = rules(&["10.0.0.0/8", "2001:db8::/32"], &["10.9.0.0/16"]);
        assert!(rules.admits(ip("10.1.2.3")));
        assert!(!rules.admits(ip("10.9.1.1")));
        assert!(!rules.admits(ip("192.168.1.1")));
        assert!(rules.admits(ip("2001:db8::5")));
        assert!(!rules.admits(ip("2001:db9::5")));
        // An IPv4 client on a dual-stack socket.
        assert!(rules.admits(ip("::ffff:10.1.2.3")));
        assert!(!rules.admits(ip("::ffff:10.9.0.1")));
    }

    #[test]
    fn deny_only_lets_the_rest_through() {
        let rules = rules(&[], &["127.0.0.1", "::1"]);
        assert!(!rules.admits(ip("127.0.0.1")));
        assert!(!rules.admits(ip("::1")));
        assert!(rules.admits(ip("127.0.0.2")));
    }

    #[test]
    fn an_unreadable_entry_refuses_everyone() {
        let rules = rules(&["10.0.0.0/8", "not an address"], &[]);
        assert!(!rules.admits(ip("10.1.2.3")));
        assert!(!rules.admits(ip("::1")));
    }
}
