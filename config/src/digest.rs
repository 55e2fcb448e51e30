//! Content digest of a whole config: equal configs have equal digests on every build of the
//! control plane and the worker, so a worker can prove it serves exactly what was committed.
//!
//! Each entity is hashed on its own (SHA-256 of its canonical JSON: fields in declaration order,
//! no whitespace), and the digest is the hex SHA-256 of those entity hashes, upstreams then
//! routes, each in name order and preceded by their count. A holder that keeps every entity's
//! hash (see [`entity_hash`]) digests a changed config by hashing 32 bytes per entity instead of
//! serializing the whole config again.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::Config;

/// SHA-256 of one entity's canonical JSON.
pub type EntityHash = [u8; 32];

/// Marks the digest's layout, so that a digest computed another way can never collide with it.
const LAYOUT: &[u8] = b"gateway config digest v2\n";

/// Hex digest of `config`.
pub fn digest(config: &Config) -> String {
    let upstreams: Vec<EntityHash> = config.upstreams.values().map(entity_hash).collect();
    let routes: Vec<EntityHash> = config.routes.values().map(entity_hash).collect();
    digest_of_parts(&upstreams, &routes)
}

/// The hash of one entity, the piece [`digest_of_parts`] takes.
pub fn entity_hash(entity: &impl Serialize) -> EntityHash {
    // Serializing plain structs, vectors and strings into a Vec cannot fail.
    let json = serde_json::to_vec(entity).unwrap_or_default();
    Sha256::digest(&json).into()
}

/// The digest of a config given each entity's [`entity_hash`], upstreams and routes each in
/// name order; equal to [`digest`] of that config.
pub fn digest_of_parts<'a>(
    upstreams: impl IntoIterator<Item = &'a EntityHash, IntoIter: ExactSizeIterator>,
    routes: impl IntoIterator<Item = &'a EntityHash, IntoIter: ExactSizeIterator>,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(LAYOUT);
    hash_list(&mut hasher, upstreams.into_iter());
    hash_list(&mut hasher, routes.into_iter());
    hex::encode(hasher.finalize())
}

fn hash_list<'a>(hasher: &mut Sha256, list: impl ExactSizeIterator<Item = &'a EntityHash>) {
    hasher.update((list.len() as u64).to_be_bytes());
    for hash in list {
        hasher.update(hash);
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
}
