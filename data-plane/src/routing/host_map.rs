//! The route table's map from host (or wildcard suffix) to its bucket, split into shards that
//! successive tables share: patching a table with 100,000 hosts copies the one shard each changed
//! host falls in, not a map of 100,000 entries. A table with few hosts has one shard and looks a
//! host up exactly as a plain hash map would; a larger one pays one more hash of the host to
//! pick the shard.

use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::HashMap;
use foldhash::fast::FixedState;

/// Hosts per shard that a full build aims for, and twice that before a patch re-shards.
const HOSTS_PER_SHARD: usize = 1024;

/// Shards at most: beyond this, shards grow instead.
const MAX_SHARDS: usize = 4096;

/// Picks shards; fixed, so that the shard of a host never depends on the process.
const SHARDING: FixedState = FixedState::with_seed(0x9e37_79b9_7f4a_7c15);

type Shard<V> = Arc<HashMap<Arc<str>, V>>;

#[derive(Debug, Clone)]
pub struct HostMap<V> {
    /// A power-of-two count.
    shards: Box<[Shard<V>]>,
    len: usize,
}

impl<V> Default for HostMap<V> {
    fn default() -> Self {
        HostMap {
            shards: vec![Arc::new(HashMap::default())].into_boxed_slice(),
            len: 0,
        }
    }
}

fn shards_for(hosts: usize) -> usize {
    (hosts / HOSTS_PER_SHARD)
        .next_power_of_two()
        .clamp(1, MAX_SHARDS)
}

impl<V: Clone + Default> HostMap<V> {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn shard_of(&self, host: &str) -> usize {
        match self.shards.len() {
            1 => 0,
            shards => (SHARDING.hash_one(host) >> 32) as usize & (shards - 1),
        }
    }

    pub fn get(&self, host: &str) -> Option<&V> {
        self.shards[self.shard_of(host)].get(host)
    }

    #[cfg(test)]
    pub fn contains_key(&self, host: &str) -> bool {
        self.get(host).is_some()
    }

    /// The entry of `host` for changing, copying its shard first if another table shares it.
    pub fn get_mut(&mut self, host: &str) -> Option<&mut V> {
        let shard = self.shard_of(host);
        if !self.shards[shard].contains_key(host) {
            return None;
        }
        Arc::make_mut(&mut self.shards[shard]).get_mut(host)
    }

    /// The entry of `host`, added empty when missing.
    pub fn get_or_default(&mut self, host: &str) -> &mut V {
        if self.len >= self.shards.len() * HOSTS_PER_SHARD * 2 && self.shards.len() < MAX_SHARDS {
            self.reshard(shards_for(self.len + 1));
        }
        let shard = self.shard_of(host);
        let map = Arc::make_mut(&mut self.shards[shard]);
        if !map.contains_key(host) {
            self.len += 1;
        }
        map.entry(Arc::from(host)).or_default()
    }

    pub fn remove(&mut self, host: &str) -> Option<V> {
        let shard = self.shard_of(host);
        if !self.shards[shard].contains_key(host) {
            return None;
        }
        let removed = Arc::make_mut(&mut self.shards[shard]).remove(host);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &V)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }

    fn reshard(&mut self, shards: usize) {
        let entries: Vec<(Arc<str>, V)> = self
            .iter()
            .map(|(host, value)| (host.clone(), value.clone()))
            .collect();
        *self = Self::with_shards(shards, entries);
    }

    fn with_shards(shards: usize, entries: impl IntoIterator<Item = (Arc<str>, V)>) -> Self {
        let mut maps: Vec<HashMap<Arc<str>, V>> = (0..shards).map(|_| HashMap::default()).collect();
        let mut map = HostMap {
            shards: Box::default(),
            len: 0,
        };
        let pick = |host: &str| match shards {
            1 => 0,
            shards => (SHARDING.hash_one(host) >> 32) as usize & (shards - 1),
        };
        for (host, value) in entries {
            if maps[pick(&host)].insert(host, value).is_none() {
                map.len += 1;
            }
        }
        map.shards = maps.into_iter().map(Arc::new).collect();
        map
    }
}

impl<V: Clone + Default> FromIterator<(Arc<str>, V)> for HostMap<V> {
    fn from_iter<I: IntoIterator<Item = (Arc<str>, V)>>(entries: I) -> Self {
        let entries: Vec<(Arc<str>, V)> = entries.into_iter().collect();
        Self::with_shards(shards_for(entries.len()), entries)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map_across_shards_and_reshards() {
        let hosts: Vec<String> = (0..10_000).map(|i| format!("h{i}.example.com")).collect();
        let built: HostMap<u32> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (Arc::from(h.as_str()), i as u32))
            .collect();
        assert_eq!(built.len, 10_000);
        assert!(built.shards.len() > 1);
        for (i, host) in hosts.iter().enumerate() {
            assert_eq!(built.get(host), Some(&(i as u32)));
        }
        assert!(built.get("other.example.com").is_none());

        // A patched copy shares every shard it does not change.
        let mut patched = built.clone();
        *patched.get_mut(&hosts[7]).unwrap() = 70;
        assert_eq!(patched.remove(&hosts[8]), Some(8));
        assert_eq!(patched.remove(&hosts[8]), None);
        *patched.get_or_default("new.example.com") += 5;
        assert_eq!(patched.len, 10_000);
        let shared = patched
            .shards
            .iter()
            .zip(built.shards.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert!(shared >= patched.shards.len() - 3, "{shared}");
        assert_eq!(built.get(&hosts[7]), Some(&7));
        assert_eq!(patched.get(&hosts[7]), Some(&70));
        assert_eq!(patched.get("new.example.com"), Some(&5));

        // Grown by patches alone, it re-shards and keeps every entry.
        let mut grown: HostMap<u32> = HostMap::default();
        for (i, host) in hosts.iter().enumerate() {
            *grown.get_or_default(host) = i as u32;
        }
        assert!(grown.shards.len() > 1);
        assert_eq!(grown.len, 10_000);
        assert_eq!(grown.iter().count(), 10_000);
        for (i, host) in hosts.iter().enumerate() {
            assert_eq!(grown.get(host), Some(&(i as u32)));
        }
    }
}
