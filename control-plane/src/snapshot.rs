//! One revision of the config as this process serves it: the config, its entities' metadata
//! and the full push message, built once when the revision is loaded so that every ConfigSync
//! stream and every read from memory shares it. [`crate::delta`] builds on it and
//! [`crate::hub`] holds the latest one.

use std::collections::BTreeMap;

use gateway_config::{Config, Kind};
use gateway_proto::v1;

use crate::store::{EntityMeta, LatestConfig};

/// One revision of the config, with its push message prebuilt once for all streams.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub revision: u64,
    pub digest: String,
    pub committed_at_unix_ms: i64,
    pub config: Config,
    /// Each entity's server-set metadata, for reads answered from memory.
    pub meta: BTreeMap<(Kind, String), EntityMeta>,
    /// The full push of this revision.
    pub push: v1::ConfigPush,
}

impl From<LatestConfig> for Snapshot {
    fn from(latest: LatestConfig) -> Self {
        let revision = u64::try_from(latest.revision).unwrap_or(0);
        let push = v1::ConfigPush {
            revision,
            digest: latest.digest.clone(),
            base_revision: 0,
            upserts: gateway_config::resources_from_config(&latest.config),
            removals: Vec::new(),
            committed_at_unix_ms: latest.committed_at,
        };
        Snapshot {
            revision,
            digest: latest.digest,
            committed_at_unix_ms: latest.committed_at,
            config: latest.config,
            meta: latest.meta,
            push,
        }
    }
}

#[cfg(test)]
impl Snapshot {
    /// `config` as revision `revision`, committed at `committed_at` (unix ms).
    pub(crate) fn of(revision: i64, committed_at: i64, config: Config) -> Snapshot {
        Snapshot::from(LatestConfig {
            revision,
            committed_at,
            digest: gateway_config::digest(&config),
            config,
            meta: Default::default(),
        })
    }
}
