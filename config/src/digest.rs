//! Content digest of a whole config: equal configs have equal digests on every build of the
//! control plane and the worker, so a worker can prove it serves exactly what was committed.
//!
//! The digest is the hex SHA-256 of the config's canonical JSON form: `{"upstreams":[...],
//! "routes":[...]}`, entities sorted by name, fields in declaration order, no whitespace. That
//! form is the concatenation of each entity's own canonical JSON, so a holder that keeps every
//! entity's JSON (see [`canonical_json`]) digests a changed config without serializing it again.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::Config;

/// Hex SHA-256 of the canonical JSON form of `config`.
pub fn digest(config: &Config) -> String {
    let upstreams: Vec<Vec<u8>> = config.upstreams.values().map(canonical_json).collect();
    let routes: Vec<Vec<u8>> = config.routes.values().map(canonical_json).collect();
    digest_of_parts(
        upstreams.iter().map(Vec::as_slice),
        routes.iter().map(Vec::as_slice),
    )
}

/// The canonical JSON of one entity, the piece [`digest_of_parts`] takes.
pub fn canonical_json(entity: &impl Serialize) -> Vec<u8> {
    // Serializing plain structs, vectors and strings into a Vec cannot fail.
    serde_json::to_vec(entity).unwrap_or_default()
}

/// The digest of a config given each entity's [`canonical_json`], upstreams and routes each in
/// name order; equal to [`digest`] of that config.
pub fn digest_of_parts<'a>(
    upstreams: impl IntoIterator<Item = &'a [u8]>,
    routes: impl IntoIterator<Item = &'a [u8]>,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"{\"upstreams\":[");
    hash_list(&mut hasher, upstreams);
    hasher.update(b"],\"routes\":[");
    hash_list(&mut hasher, routes);
    hasher.update(b"]}");
    hex::encode(hasher.finalize())
}

fn hash_list<'a>(hasher: &mut Sha256, parts: impl IntoIterator<Item = &'a [u8]>) {
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            hasher.update(b",");
        }
        hasher.update(part);
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

    /// Stored revisions carry digests of the serialized whole config; the piecewise form must
    /// give exactly the same value.
    #[test]
    fn digest_is_the_hash_of_the_whole_serialized_config() {
        let mut config = Config::default();
        let whole =
            |config: &Config| hex::encode(Sha256::digest(serde_json::to_vec(config).unwrap()));
        assert_eq!(digest(&config), whole(&config));
        for name in ["b", "a", "c"] {
            config.upstreams.insert(
                name.into(),
                Upstream {
                    name: name.into(),
                    targets: vec![Target {
                        address: format!("{name}.internal:80"),
                        weight: 2,
                    }],
                    ..Default::default()
                },
            );
            config.routes.insert(
                format!("r-{name}"),
                Route {
                    name: format!("r-{name}"),
                    paths: vec![PathMatch::Prefix(format!("/{name}"))],
                    backends: vec![Backend {
                        upstream: name.into(),
                        weight: 1,
                    }],
                    ..Default::default()
                },
            );
            assert_eq!(digest(&config), whole(&config));
        }
    }
}
