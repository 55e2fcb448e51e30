//! A map from names to values, in name order, whose copies share everything but what changed
//! since: the entries sit in chunks of consecutive names, each chunk behind an `Arc`. Copying the
//! map copies one pointer per chunk; changing an entry copies the one chunk that holds it. A
//! revision that changes a few entities of a large config then costs in proportion to the change
//! (plus a pointer per chunk), where a plain map would copy, and later free, every entry.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Chunks split when they grow past this many entries, so that a copy of one costs a few
/// microseconds and the pointer list stays a few hundredths of the entry count.
const CHUNK_MAX: usize = 512;

type Chunk<V> = BTreeMap<Arc<str>, V>;

#[derive(Debug, Clone)]
pub struct SharedMap<V> {
    /// Non-empty chunks in name order: every name of a chunk sorts before every name of the next.
    chunks: Vec<Arc<Chunk<V>>>,
    len: usize,
}

impl<V> Default for SharedMap<V> {
    fn default() -> Self {
        SharedMap {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<V: PartialEq> PartialEq for SharedMap<V> {
    /// Equal entries; where the chunks split does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<V: Eq> Eq for SharedMap<V> {}

impl<V: Clone> SharedMap<V> {
    /// The chunk `name` belongs in: the last one whose first name is not after it (the first
    /// chunk for names before every chunk). `None` only when there is no chunk.
    fn chunk_for(&self, name: &str) -> Option<usize> {
        if self.chunks.is_empty() {
            return None;
        }
        let after = self
            .chunks
            .partition_point(|chunk| chunk.keys().next().is_some_and(|first| &**first <= name));
        Some(after.saturating_sub(1))
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.chunks[self.chunk_for(name)?].get(name)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Inserts or replaces; returns the replaced value.
    pub fn insert(&mut self, name: Arc<str>, value: V) -> Option<V> {
        let Some(at) = self.chunk_for(&name) else {
            self.chunks.push(Arc::new(Chunk::from([(name, value)])));
            self.len = 1;
            return None;
        };
        let chunk = Arc::make_mut(&mut self.chunks[at]);
        let old = chunk.insert(name, value);
        if old.is_none() {
            self.len += 1;
        }
        if chunk.len() > CHUNK_MAX {
            let middle = chunk.keys().nth(chunk.len() / 2).cloned();
            if let Some(middle) = middle {
                let upper = chunk.split_off(&middle);
                self.chunks.insert(at + 1, Arc::new(upper));
            }
        }
        old
    }

    /// Removes `name`; returns its stored name and value.
    pub fn remove_entry(&mut self, name: &str) -> Option<(Arc<str>, V)> {
        let at = self.chunk_for(name)?;
        // Checked first, so that removing an absent name copies nothing.
        if !self.chunks[at].contains_key(name) {
            return None;
        }
        let chunk = Arc::make_mut(&mut self.chunks[at]);
        let removed = chunk.remove_entry(name);
        if chunk.is_empty() {
            self.chunks.remove(at);
        }
        self.len -= 1;
        removed
    }

    pub fn remove(&mut self, name: &str) -> Option<V> {
        self.remove_entry(name).map(|(_, value)| value)
    }
}

impl<V> SharedMap<V> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Entries in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Arc<str>, &V)> + Clone {
        Counted {
            inner: self.chunks.iter().flat_map(|chunk| chunk.iter()),
            left: self.len,
        }
    }

    /// Values in name order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> + Clone {
        Counted {
            inner: self.chunks.iter().flat_map(|chunk| chunk.values()),
            left: self.len,
        }
    }
}

/// An iterator that knows how many items are left (the digest takes counts first).
#[derive(Clone)]
struct Counted<I> {
    inner: I,
    left: usize,
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next()?;
        self.left = self.left.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_btree_map_and_copies_share_untouched_chunks() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut map: SharedMap<u32> = SharedMap::default();
        let mut model: BTreeMap<String, u32> = BTreeMap::new();
        for step in 0..20_000u32 {
            let name = format!("n{:05}", rng.u32(0..6_000));
            if rng.u8(0..4) == 0 {
                assert_eq!(map.remove(&name), model.remove(&name), "step {step}");
            } else {
                assert_eq!(
                    map.insert(name.as_str().into(), step),
                    model.insert(name, step),
                    "step {step}"
                );
            }
        }
        assert_eq!(map.len(), model.len());
        assert!(
            map.iter()
                .map(|(k, v)| (&**k, *v))
                .eq(model.iter().map(|(k, v)| (k.as_str(), *v)))
        );
        assert!(
            map.chunks
                .iter()
                .all(|c| !c.is_empty() && c.len() <= CHUNK_MAX)
        );
        for name in model.keys().take(50) {
            assert_eq!(map.get(name), model.get(name));
        }
        assert!(!map.contains_key("absent"));

        let before = map.clone();
        let first = model.keys().next().unwrap().clone();
        map.insert(first.as_str().into(), 0);
        let shared = map
            .chunks
            .iter()
            .zip(&before.chunks)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(
            shared,
            before.chunks.len() - 1,
            "only the changed chunk is copied"
        );
        assert_ne!(map, before);
        assert_eq!(before.get(&first), model.get(&first));
        map.insert(first.as_str().into(), model[&first]);
        assert_eq!(map, before);
        assert_eq!(map.remove("absent"), None);
    }
}
