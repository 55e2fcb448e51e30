//! The changes a caller can ask for: one entity (create, replace, delete) or a whole config
//! (declarative apply, rollback). Each is turned into the next state here and validated (a
//! one-entity change: that entity, what it names and what names it, and the config-wide budgets;
//! a whole config: all of it), then handed to the transaction of [`super::commit`], so that it
//! makes exactly one revision or none. Each is a [`Job`] for a batch of [`super::batch`].

use gateway_config::{
    Certificate, Change as ConfigChange, Config, FieldError, Kind, Route, Upstream,
    ValidationErrors,
};

use std::sync::Arc;

use super::batch::{Ended, Job, Plan, Step};
use super::commit::WriteOptions;
use super::error::StoreError;
#[cfg(test)]
use super::handle::Store;
#[cfg(test)]
use super::state::Advance;
use super::state::{Entity, EntityMeta, Record, State, Stored, change_of};

/// One requested change to one entity.
#[derive(Debug, Clone)]
pub enum Change<T> {
    /// Add a new entity; fails if the name is taken.
    Create(T),
    /// Replace the entity of that name, or add it.
    Put(T),
    /// Remove the entity of that name.
    Delete(String),
}

/// What a committed (or, on a dry run, validated) change produced.
#[derive(Debug, Clone)]
pub struct WriteOutcome<T> {
    /// The new revision; the current one on a dry run.
    pub revision: i64,
    /// True when the change added an entity that did not exist.
    pub created: bool,
    /// The entity as stored now; None after a delete and on a dry run.
    pub record: Option<Record<T>>,
    /// What the change does to the config (empty when it rewrites an entity unchanged).
    pub changes: Vec<ConfigChange>,
    pub dry_run: bool,
    /// The state at the new revision; None when no revision was made. Only tests read it: the
    /// writer publishes what its batch answers.
    #[cfg(test)]
    pub latest: Option<Advance>,
}

/// What a whole-config write (declarative apply, rollback) produced.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The new revision, or the current one when nothing changed or on a dry run.
    pub revision: i64,
    pub changed: bool,
    pub changes: Vec<ConfigChange>,
    pub dry_run: bool,
    /// The state at the new revision; None when no revision was made (read by tests only).
    #[cfg(test)]
    pub latest: Option<Advance>,
}

/// A one-entity write, as a step of a batch.
pub struct EntityWrite<T> {
    change: Option<Change<T>>,
    options: WriteOptions,
    planned: Option<EntityPlanned<T>>,
}

/// What an [`EntityWrite`] found and did when it was planned.
struct EntityPlanned<T> {
    name: String,
    /// The entity before the write.
    existing: Option<Arc<Stored<T>>>,
    /// The entity the write leaves; None for a delete.
    after: Option<T>,
    /// None when the write leaves the entity as it was.
    change: Option<ConfigChange>,
}

impl<T: Entity> EntityWrite<T> {
    pub fn new(change: Change<T>, options: WriteOptions) -> Self {
        EntityWrite {
            change: Some(change),
            options,
            planned: None,
        }
    }
}

impl<T: Entity> Step for EntityWrite<T> {
    fn options(&self) -> &WriteOptions {
        &self.options
    }

    /// Validates the changed entity, what it names and what names it, and the config-wide
    /// budgets, looking at nothing else.
    fn plan(&mut self, current: &State, revision: i64, now: i64) -> Result<Plan, StoreError> {
        let change = self
            .change
            .take()
            .ok_or_else(|| StoreError::Database("a write was planned twice".into()))?;
        let kind = T::KIND.as_str();
        let (verb, name, after) = match change {
            Change::Create(mut entity) => {
                let name = entity.name().to_owned();
                if current.get::<T>(&name).is_some() {
                    return Err(StoreError::AlreadyExists { kind, name });
                }
                entity.keep_stored_secrets(current);
                entity.set_created_at(now);
                ("create", name, Some((entity, now)))
            }
            Change::Put(mut entity) => {
                let name = entity.name().to_owned();
                entity.keep_stored_secrets(current);
                let existing = current.get::<T>(&name);
                let created_at = existing.map_or(now, |s| s.meta.created_at);
                entity.set_created_at(created_at);
                let verb = if existing.is_some() {
                    "update"
                } else {
                    "create"
                };
                (verb, name, Some((entity, created_at)))
            }
            Change::Delete(name) => {
                if current.get::<T>(&name).is_none() {
                    return Err(StoreError::NotFound { kind, name });
                }
                if T::KIND == Kind::Upstream {
                    let references = current.references_to(&name);
                    if !references.is_empty() {
                        let mut routes: Vec<String> =
                            references.iter().map(|(route, _)| route.clone()).collect();
                        routes.dedup();
                        return Err(StoreError::InUse {
                            name,
                            routes,
                            references,
                        });
                    }
                }
                ("delete", name, None)
            }
        };

        let existing = current.get::<T>(&name).cloned();
        let mut next = current.clone();
        match &after {
            Some((entity, created_at)) => {
                let mut errors = entity.errors_in(current);
                let meta = EntityMeta {
                    created_at: *created_at,
                    updated_at: now,
                    revision,
                };
                next.put(Stored::new(entity.clone(), meta));
                errors.extend(budget_errors::<T>(&next, &name));
                if !errors.is_empty() {
                    return Err(StoreError::Invalid(ValidationErrors(errors)));
                }
            }
            None => {
                next.remove::<T>(&name);
            }
        }

        let after = after.map(|(entity, _)| entity);
        // Writing what is already stored changes nothing, so it makes no revision, as a
        // whole-config apply of the same content makes none.
        let change = change_of(&name, existing.as_ref().map(|s| &s.entity), after.as_ref());
        let touched = match change {
            Some(_) => vec![(T::KIND, name.clone())],
            None => Vec::new(),
        };
        let message = format!("{verb} {kind} {name}");
        self.planned = Some(EntityPlanned {
            name,
            existing,
            after,
            change,
        });
        Ok(Plan {
            next,
            touched,
            message,
        })
    }
}

impl<T: Entity> Job for EntityWrite<T> {
    type Output = WriteOutcome<T>;

    fn whole(&self) -> bool {
        false
    }

    fn outcome(self, ended: Ended) -> WriteOutcome<T> {
        let dry_run = self.options.dry_run;
        let Some(planned) = self.planned else {
            return WriteOutcome {
                revision: ended.revision,
                created: false,
                record: None,
                changes: Vec::new(),
                dry_run,
                #[cfg(test)]
                latest: ended.latest,
            };
        };
        let EntityPlanned {
            name,
            existing,
            after,
            change,
        } = planned;
        let record = match (&ended.latest, &after) {
            (Some(latest), Some(_)) => latest.state.get::<T>(&name).map(|s| s.record()),
            (None, Some(_)) if change.is_none() => existing.as_ref().map(|s| s.record()),
            _ => None,
        };
        WriteOutcome {
            revision: ended.revision,
            created: after.is_some() && existing.is_none(),
            record,
            changes: change.into_iter().collect(),
            dry_run,
            #[cfg(test)]
            latest: ended.latest,
        }
    }
}

/// A whole-config write (declarative apply, rollback), as a step of a batch.
pub struct ConfigWrite {
    next: Option<Config>,
    message: String,
    options: WriteOptions,
    changes: Vec<ConfigChange>,
}

impl ConfigWrite {
    /// Makes the config equal `next`, or changes nothing when it already does.
    pub fn new(next: Config, message: impl Into<String>, options: WriteOptions) -> Self {
        ConfigWrite {
            next: Some(next),
            message: message.into(),
            options,
            changes: Vec::new(),
        }
    }
}

impl Step for ConfigWrite {
    fn options(&self) -> &WriteOptions {
        &self.options
    }

    /// Validates the whole config, reporting every error at once.
    fn plan(&mut self, current: &State, revision: i64, now: i64) -> Result<Plan, StoreError> {
        let mut next = self
            .next
            .take()
            .ok_or_else(|| StoreError::Database("a write was planned twice".into()))?;
        // Routes keep their creation time across applies; new ones are created now.
        for (name, route) in &mut next.routes {
            route.created_at_unix_ms = current
                .get::<Route>(name)
                .map_or(now, |stored| stored.meta.created_at);
        }
        current.keep_stored_secrets(&mut next);
        next.validate().map_err(StoreError::Invalid)?;
        // Certificates are checked against the clock when they are written, not when they are
        // written again unchanged: a rollback or an apply that keeps an expiring certificate
        // as it is must not fail on it.
        let clock = gateway_config::x509::unix_now();
        let expired: Vec<FieldError> = next
            .certificates
            .values()
            .filter(|c| current.get::<Certificate>(&c.name).map(|s| &s.entity) != Some(*c))
            .flat_map(|c| c.validity_errors(clock))
            .collect();
        if !expired.is_empty() {
            return Err(StoreError::Invalid(ValidationErrors(expired)));
        }
        let changes = current.diff_to(&next);
        let mut state = current.clone();
        let mut touched = Vec::with_capacity(changes.len());
        if !self.options.dry_run {
            for change in &changes {
                match change.kind {
                    Kind::Upstream => {
                        replace::<Upstream>(&mut state, &mut next, change, now, revision)
                    }
                    Kind::Route => replace::<Route>(&mut state, &mut next, change, now, revision),
                    Kind::Certificate => {
                        replace::<Certificate>(&mut state, &mut next, change, now, revision)
                    }
                }
                touched.push((change.kind, change.name.clone()));
            }
        }
        self.changes = changes;
        Ok(Plan {
            next: state,
            touched,
            message: self.message.clone(),
        })
    }
}

impl Job for ConfigWrite {
    type Output = Applied;

    fn whole(&self) -> bool {
        true
    }

    fn outcome(self, ended: Ended) -> Applied {
        Applied {
            revision: ended.revision,
            changed: !self.changes.is_empty(),
            changes: self.changes,
            dry_run: self.options.dry_run,
            #[cfg(test)]
            latest: ended.latest,
        }
    }
}

#[cfg(test)]
impl Store {
    /// Runs `job` as a batch of its own.
    async fn run_one<J: Job>(&self, base: &State, mut job: J) -> Result<J::Output, StoreError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut ended = self.run_batch(base, &mut [&mut job], deadline).await;
        let ended = ended
            .pop()
            .ok_or_else(|| StoreError::Database("a batch of one ended empty".into()))??;
        Ok(job.outcome(ended))
    }

    /// [`Store::write_with`] by `actor`, unconditionally and for real, on top of the latest
    /// state read whole.
    pub async fn write<T: Entity>(
        &self,
        change: Change<T>,
        actor: &str,
    ) -> Result<WriteOutcome<T>, StoreError> {
        let base = self.latest_config().await?;
        self.write_with(&base, change, &WriteOptions::by(actor))
            .await
    }

    /// One change as one revision on top of `base` (brought forward when behind); `options`
    /// add a precondition, a message, or make it a dry run.
    pub async fn write_with<T: Entity>(
        &self,
        base: &State,
        change: Change<T>,
        options: &WriteOptions,
    ) -> Result<WriteOutcome<T>, StoreError> {
        self.run_one(base, EntityWrite::new(change, options.clone()))
            .await
    }

    /// [`Store::apply_config_on`] on top of the latest state read whole.
    pub async fn apply_config(
        &self,
        next: Config,
        message: &str,
        options: &WriteOptions,
    ) -> Result<Applied, StoreError> {
        let base = self.latest_config().await?;
        self.apply_config_on(&base, next, message, options).await
    }

    /// Makes the config equal `next` as one revision, or changes nothing when it already does.
    pub async fn apply_config_on(
        &self,
        base: &State,
        next: Config,
        message: &str,
        options: &WriteOptions,
    ) -> Result<Applied, StoreError> {
        self.run_one(base, ConfigWrite::new(next, message, options.clone()))
            .await
    }
}

/// Makes `state` hold the entity of `change` as `next` has it (moved out of `next`), or not at
/// all.
fn replace<T: Entity>(
    state: &mut State,
    next: &mut Config,
    change: &ConfigChange,
    now: i64,
    revision: i64,
) {
    match T::map_mut(next).remove(&change.name) {
        Some(entity) => {
            let created_at = state
                .get::<T>(&change.name)
                .map_or(now, |stored| stored.meta.created_at);
            let meta = EntityMeta {
                created_at,
                updated_at: now,
                revision,
            };
            state.put(Stored::new(entity, meta));
        }
        None => {
            state.remove::<T>(&change.name);
        }
    }
}

/// The config-wide limits a one-entity write can push `next` over, reported on entity `name`:
/// checked from the running totals, without looking at any other entity.
fn budget_errors<T: Entity>(next: &State, name: &str) -> Vec<FieldError> {
    if T::KIND != Kind::Route {
        return Vec::new();
    }
    gateway_config::expansion_budget_error(next.expansion(), name)
        .into_iter()
        .collect()
}
