//! Content digest of a whole config: equal configs have equal digests on every build of the
//! control plane and the worker, so a worker can prove it serves exactly what was committed.

use sha2::{Digest, Sha256};

use crate::model::Config;

/// Hex SHA-256 of the canonical JSON form (entities sorted by name, fields in declaration order).
pub fn digest(config: &Config) -> String {
    // Serializing plain structs and BTreeMaps into a Vec cannot fail.
    let canonical = serde_json::to_vec(config).unwrap_or_default();
    hex::encode(Sha256::digest(&canonical))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{Target, Upstream};

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
}
