//! Addresses of targets named by host name, resolved in the background every `dns_refresh` so
//! that opening a connection never waits for the resolver (except for a name's first use) and a
//! changed record is picked up without a new revision.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

/// Resolved addresses by `host:port`; read without locking.
#[derive(Debug, Default)]
pub struct DnsCache {
    entries: ArcSwap<HashMap<String, Arc<[SocketAddr]>>>,
}

impl DnsCache {
    /// Addresses of `host:port`: the literal address, the cached resolution, or a fresh one.
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Arc<[SocketAddr]>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Arc::from([SocketAddr::new(ip, port)]));
        }
        let key = format!("{host}:{port}");
        if let Some(found) = self.entries.load().get(&key) {
            return Ok(found.clone());
        }
        let resolved = lookup(&key).await?;
        self.store(key, resolved.clone());
        Ok(resolved)
    }

    pub(super) fn store(&self, key: String, addresses: Arc<[SocketAddr]>) {
        self.entries.rcu(|entries| {
            let mut entries = HashMap::clone(entries);
            entries.insert(key.clone(), addresses.clone());
            entries
        });
    }

    /// Resolves every name again; a failed lookup keeps the previous addresses.
    async fn refresh(&self, names: &[String]) {
        for key in names {
            match lookup(key).await {
                Ok(addresses) => {
                    let changed = self
                        .entries
                        .load()
                        .get(key)
                        .is_none_or(|old| **old != *addresses);
                    if changed {
                        tracing::debug!(name = %key, ?addresses, "target name resolved");
                        self.store(key.clone(), addresses);
                    }
                }
                Err(error) => {
                    tracing::warn!(name = %key, %error, "cannot resolve target name; keeping its last addresses");
                }
            }
        }
    }
}

async fn lookup(key: &str) -> std::io::Result<Arc<[SocketAddr]>> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host(key).await?.collect();
    if addresses.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("`{key}` has no addresses"),
        ));
    }
    Ok(addresses.into())
}

/// Whether `host:port` names a host rather than an IP address.
pub fn is_name(address: &str) -> bool {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    !host.starts_with('[') && host.parse::<IpAddr>().is_err()
}

/// Re-resolves `names` every `every` until the cache is dropped.
pub async fn refresh_loop(cache: Weak<DnsCache>, names: Vec<String>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(cache) = cache.upgrade() else {
            return;
        };
        cache.refresh(&names).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        assert!(is_name("localhost:80"));
        assert!(!is_name("127.0.0.1:80"));
        assert!(!is_name("[::1]:80"));
    }

    #[tokio::test]
    async fn literal_addresses_and_names_resolve() {
        let cache = Arc::new(DnsCache::default());
        let literal = cache.resolve("[::1]", 8080).await.unwrap();
        assert_eq!(literal[0], "[::1]:8080".parse().unwrap());
        let named = cache.resolve("localhost", 80).await.unwrap();
        assert!(named.iter().all(|a| a.ip().is_loopback()));
        assert!(cache.entries.load().contains_key("localhost:80"));
        cache.refresh(&["localhost:80".into()]).await;
        let task = tokio::spawn(refresh_loop(
            Arc::downgrade(&cache),
            vec!["localhost:80".into()],
            Duration::from_millis(10),
        ));
        drop(cache);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
