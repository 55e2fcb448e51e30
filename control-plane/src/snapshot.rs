//! One revision of the config as this process serves it: the shared-entity state, what changed
//! since an earlier revision (what deltas are built from), and the full push message, built the
//! first time a worker needs one and then shared by every ConfigSync stream. [`crate::delta`]
//! builds on it and [`crate::hub`] holds the latest one.

use std::sync::Arc;

use gateway_proto::v1;
use tokio::sync::OnceCell;

use crate::store::{Advance, Key, State};

/// One revision of the config.
#[derive(Debug)]
pub struct Snapshot {
    pub revision: u64,
    pub digest: String,
    pub committed_at_unix_ms: i64,
    pub state: State,
    /// The entities that differ from revision `since` (each once); None when the state was read
    /// whole, so that nothing is known about the revisions before it.
    pub changed: Option<(u64, Arc<[Key]>)>,
    /// The full push, built on first use.
    full: OnceCell<Arc<v1::ConfigPush>>,
}

impl Snapshot {
    /// A revision read whole.
    pub fn whole(state: State) -> Snapshot {
        Snapshot::new(state, None)
    }

    fn new(state: State, changed: Option<(u64, Arc<[Key]>)>) -> Snapshot {
        Snapshot {
            revision: u64::try_from(state.revision).unwrap_or(0),
            digest: state.digest.clone(),
            committed_at_unix_ms: state.committed_at,
            state,
            changed,
            full: OnceCell::new(),
        }
    }

    /// The same revision without its full push, to keep as a delta base.
    pub fn without_push(&self) -> Snapshot {
        Snapshot::new(self.state.clone(), self.changed.clone())
    }

    /// The full push of this revision. Building it converts every entity, so it happens off the
    /// async threads, once, whichever stream asks first.
    pub async fn full_push(&self) -> Arc<v1::ConfigPush> {
        self.full
            .get_or_init(|| async {
                let state = self.state.clone();
                let build = move || Arc::new(full_push_of(&state));
                match tokio::task::spawn_blocking(build).await {
                    Ok(push) => push,
                    // Only a panic ends the task early; building on this thread is the
                    // fallback.
                    Err(_) => Arc::new(full_push_of(&self.state)),
                }
            })
            .await
            .clone()
    }
}

impl From<State> for Snapshot {
    fn from(state: State) -> Snapshot {
        Snapshot::whole(state)
    }
}

impl From<Advance> for Snapshot {
    fn from(advance: Advance) -> Snapshot {
        let since = u64::try_from(advance.since).unwrap_or(0);
        let changed = advance.changed.map(|keys| (since, keys.into()));
        Snapshot::new(advance.state, changed)
    }
}

fn full_push_of(state: &State) -> v1::ConfigPush {
    v1::ConfigPush {
        revision: u64::try_from(state.revision).unwrap_or(0),
        digest: state.digest.clone(),
        base_revision: 0,
        upserts: state.resources(),
        removals: Vec::new(),
        committed_at_unix_ms: state.committed_at,
    }
}

#[cfg(test)]
impl Snapshot {
    /// `config` as revision `revision`, committed at `committed_at` (unix ms).
    pub(crate) fn of(revision: i64, committed_at: i64, config: gateway_config::Config) -> Snapshot {
        Snapshot::whole(State::build(
            revision,
            committed_at,
            config,
            &Default::default(),
        ))
    }
}
