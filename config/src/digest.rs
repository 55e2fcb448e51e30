//! Content digest of a whole config: equal configs have equal digests on every build of the
//! control plane and the worker, so a worker can prove it serves exactly what was committed.
//!
//! Each entity is hashed on its own (SHA-256 of its canonical JSON: fields in declaration order,
//! no whitespace). Names are unique within a kind and part of each entity's JSON, so the set of
//! a kind's entity hashes stands for its entities. Each kind's hashes fall into
//! [`BUCKETS`] buckets by their leading bits; a bucket's digest is the SHA-256 of its hashes in
//! ascending order, and the config digest is the hex SHA-256 of a layout marker, then for
//! upstreams and for routes their count and, for every bucket that is not empty, its index (two
//! bytes, big-endian) and its digest; then, only when the config has certificates, a marker and
//! the same for them (so that a config without certificates keeps the digest it had before
//! certificates existed). A certificate is hashed without its private key, which the
//! certificate determines.
//!
//! A holder of a [`DigestState`] updates the digest after a change by rehashing the one bucket
//! the entity falls in and the bucket digests above it: a few kilobytes, whatever the size of
//! the config, and cloning the state shares every bucket.

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{Certificate, Config, Route, Upstream};
use crate::validate::Kind;

/// SHA-256 of one entity's canonical JSON.
pub type EntityHash = [u8; 32];

/// Marks the digest's layout, so that a digest computed another way can never collide with it.
const LAYOUT: &[u8] = b"gateway config digest v3\n";

/// Precedes the certificates' part of the digest.
const CERTIFICATES: &[u8] = b"certificates\n";

/// Buckets per kind: enough that a bucket of a 100,000-entity config holds about a hundred
/// hashes, few enough that the digest over them stays small (at most 68 KiB for both kinds).
pub const BUCKETS: usize = 1024;

/// Hex digest of `config`.
pub fn digest(config: &Config) -> String {
    let mut state = DigestState::default();
    state.extend(Kind::Upstream, config.upstreams.values().map(entity_hash));
    state.extend(Kind::Route, config.routes.values().map(entity_hash));
    state.extend(
        Kind::Certificate,
        config.certificates.values().map(entity_hash),
    );
    state.digest()
}

/// An entity the digest covers, and the form of it that it covers.
pub trait Hashable {
    /// The JSON that is hashed.
    fn hashed_form(&self) -> impl Serialize + '_;
}

impl Hashable for Upstream {
    fn hashed_form(&self) -> impl Serialize + '_ {
        self
    }
}

impl Hashable for Route {
    fn hashed_form(&self) -> impl Serialize + '_ {
        self
    }
}

impl Hashable for Certificate {
    fn hashed_form(&self) -> impl Serialize + '_ {
        self.digest_form()
    }
}

/// The hash of one entity, the piece [`DigestState`] takes.
pub fn entity_hash(entity: &impl Hashable) -> EntityHash {
    // Serializing plain structs, vectors and strings into a Vec cannot fail.
    let json = serde_json::to_vec(&entity.hashed_form()).unwrap_or_default();
    Sha256::digest(&json).into()
}

/// The digest of a config given each entity's [`entity_hash`], in any order; equal to
/// [`digest`] of that config.
pub fn digest_of_parts<'a>(
    upstreams: impl IntoIterator<Item = &'a EntityHash>,
    routes: impl IntoIterator<Item = &'a EntityHash>,
) -> String {
    let mut state = DigestState::default();
    state.extend(Kind::Upstream, upstreams.into_iter().copied());
    state.extend(Kind::Route, routes.into_iter().copied());
    state.digest()
}

/// The digest's inputs, kept so that a change costs one bucket; cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestState {
    upstreams: KindBuckets,
    routes: KindBuckets,
    certificates: KindBuckets,
}

impl DigestState {
    /// Adds an entity's hash.
    pub fn insert(&mut self, kind: Kind, hash: EntityHash) {
        self.kind_mut(kind).insert(hash);
    }

    /// Adds many entities' hashes, rehashing each bucket they fall in once: building the state
    /// of a whole config this way costs one pass over its hashes, where inserting them one by
    /// one would rehash a bucket per entity.
    pub fn extend(&mut self, kind: Kind, hashes: impl IntoIterator<Item = EntityHash>) {
        self.kind_mut(kind).extend(hashes);
    }

    /// Removes an entity's hash; returns whether it was there.
    pub fn remove(&mut self, kind: Kind, hash: &EntityHash) -> bool {
        self.kind_mut(kind).remove(hash)
    }

    /// The hex digest, equal to [`digest`] of the config whose hashes were inserted.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(LAYOUT);
        self.upstreams.feed(&mut hasher);
        self.routes.feed(&mut hasher);
        if self.certificates.count > 0 {
            hasher.update(CERTIFICATES);
            self.certificates.feed(&mut hasher);
        }
        hex::encode(hasher.finalize())
    }

    fn kind_mut(&mut self, kind: Kind) -> &mut KindBuckets {
        match kind {
            Kind::Upstream => &mut self.upstreams,
            Kind::Route => &mut self.routes,
            Kind::Certificate => &mut self.certificates,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KindBuckets {
    count: u64,
    buckets: Vec<Arc<Bucket>>,
}

impl Default for KindBuckets {
    fn default() -> Self {
        let empty = Arc::new(Bucket::default());
        KindBuckets {
            count: 0,
            buckets: vec![empty; BUCKETS],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Bucket {
    /// Ascending.
    hashes: Vec<EntityHash>,
    digest: [u8; 32],
}

impl Bucket {
    fn rehash(&mut self) {
        let mut hasher = Sha256::new();
        for hash in &self.hashes {
            hasher.update(hash);
        }
        self.digest = hasher.finalize().into();
    }
}

fn bucket_of(hash: &EntityHash) -> usize {
    (usize::from(hash[0]) << 2 | usize::from(hash[1] >> 6)) % BUCKETS
}

impl KindBuckets {
    fn insert(&mut self, hash: EntityHash) {
        let bucket = Arc::make_mut(&mut self.buckets[bucket_of(&hash)]);
        if let Err(at) = bucket.hashes.binary_search(&hash) {
            bucket.hashes.insert(at, hash);
            bucket.rehash();
            self.count += 1;
        }
    }

    fn extend(&mut self, hashes: impl IntoIterator<Item = EntityHash>) {
        let mut touched = vec![false; BUCKETS];
        for hash in hashes {
            let index = bucket_of(&hash);
            Arc::make_mut(&mut self.buckets[index]).hashes.push(hash);
            touched[index] = true;
        }
        for (slot, touched) in self.buckets.iter_mut().zip(touched) {
            if touched {
                let bucket = Arc::make_mut(slot);
                bucket.hashes.sort_unstable();
                bucket.hashes.dedup();
                bucket.rehash();
            }
        }
        self.count = self.buckets.iter().map(|b| b.hashes.len() as u64).sum();
    }

    fn remove(&mut self, hash: &EntityHash) -> bool {
        let slot = &mut self.buckets[bucket_of(hash)];
        let Ok(at) = slot.hashes.binary_search(hash) else {
            return false;
        };
        let bucket = Arc::make_mut(slot);
        bucket.hashes.remove(at);
        bucket.rehash();
        self.count -= 1;
        true
    }

    fn feed(&self, hasher: &mut Sha256) {
        hasher.update(self.count.to_be_bytes());
        for (index, bucket) in self.buckets.iter().enumerate() {
            if !bucket.hashes.is_empty() {
                // BUCKETS fits in 16 bits.
                hasher.update((index as u16).to_be_bytes());
                hasher.update(bucket.digest);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{Backend, PathMatch, Route, Target, Upstream};

    #[test]
    fn digest_depends_on_content_only() {
        let mut a = Config::default();
        let empty = digest(&a);
        assert_eq!(empty.len(), 64);
        let upstream = Upstream {
            name: "api".into(),
            tags: vec![],
            targets: vec![Target {
                address: "127.0.0.1:80".into(),
                weight: 1,
            }],
            ..Default::default()
        };
        a.upstreams.insert("api".into(), upstream.clone());
        let mut b = Config::default();
        b.upstreams.insert("api".into(), upstream);
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), empty);
    }

    #[test]
    fn every_entity_and_its_kind_count() {
        let upstream = |name: &str| Upstream {
            name: name.into(),
            targets: vec![Target {
                address: format!("{name}.internal:80"),
                weight: 2,
            }],
            ..Default::default()
        };
        let route = |name: &str| Route {
            name: name.into(),
            paths: vec![PathMatch::Prefix(format!("/{name}"))],
            backends: vec![Backend {
                upstream: "a".into(),
                weight: 1,
            }],
            ..Default::default()
        };
        let mut config = Config::default();
        config.upstreams.insert("a".into(), upstream("a"));
        config.routes.insert("r".into(), route("r"));
        let base = digest(&config);
        assert_eq!(
            base,
            digest_of_parts(&[entity_hash(&upstream("a"))], &[entity_hash(&route("r"))])
        );

        // Kept incrementally, the digest follows every insertion and removal, in any order.
        let mut state = DigestState::default();
        state.insert(Kind::Route, entity_hash(&route("r")));
        let mut extra = upstream("x");
        extra.targets[0].weight = 9;
        state.insert(Kind::Upstream, entity_hash(&extra));
        state.insert(Kind::Upstream, entity_hash(&upstream("a")));
        assert!(state.remove(Kind::Upstream, &entity_hash(&extra)));
        assert!(!state.remove(Kind::Upstream, &entity_hash(&extra)));
        assert_eq!(state.digest(), base);

        let mut changed = config.clone();
        changed.routes.get_mut("r").unwrap().priority = 1;
        assert_ne!(digest(&changed), base);

        // The same entity bytes counted as another kind give another digest.
        let hashes = [entity_hash(&upstream("a")), entity_hash(&route("r"))];
        assert_ne!(
            digest_of_parts(&hashes[..1], &hashes[1..]),
            digest_of_parts(&hashes[..0], &hashes[..])
        );
        assert_ne!(
            digest_of_parts(&hashes[..0], &hashes[..]),
            digest_of_parts(&hashes[..], &hashes[..0])
        );
    }

    #[test]
    fn extending_in_bulk_equals_inserting_one_by_one() {
        let hash = |i: u32| -> EntityHash { Sha256::digest(i.to_be_bytes()).into() };
        let mut one_by_one = DigestState::default();
        for i in 0..5000 {
            one_by_one.insert(Kind::Route, hash(i));
        }
        one_by_one.insert(Kind::Upstream, hash(7));
        // In two parts, with repeats, on top of a state that has some already.
        let mut bulk = DigestState::default();
        bulk.insert(Kind::Route, hash(3));
        bulk.extend(Kind::Route, (0..2500).chain(0..10).map(hash));
        bulk.extend(Kind::Route, (2500..5000).rev().map(hash));
        bulk.extend(Kind::Upstream, [hash(7), hash(7)]);
        assert_eq!(bulk, one_by_one);
        assert_eq!(bulk.digest(), one_by_one.digest());
        let routes: Vec<EntityHash> = (0..5000).map(hash).collect();
        assert_eq!(digest_of_parts(&[hash(7)], &routes), bulk.digest());
    }
}
