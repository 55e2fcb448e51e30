//! The changes a caller can ask for: one entity (create, replace, delete) or a whole config
//! (declarative apply, rollback). Each is turned into the next state here and validated (a
//! one-entity change: that entity, what it names and what names it, and the config-wide budgets;
//! a whole config: all of it), then handed to the transaction of [`super::commit`], so that it
//! makes exactly one revision or none.

use gateway_config::{
    Change as ConfigChange, Config, FieldError, Kind, Route, Upstream, ValidationErrors,
};

use super::commit::WriteOptions;
use super::error::StoreError;
use super::handle::Store;
use super::state::{Advance, Entity, EntityMeta, Record, State, Stored, change_of};

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
    /// The state at the new revision, ready to publish to workers; None when no revision was
    /// made.
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
    /// The state at the new revision; None when no revision was made.
    pub latest: Option<Advance>,
}

impl Store {
    /// [`Store::write_with`] by `actor`, unconditionally and for real, on top of the latest
    /// state read whole.
    #[cfg(test)]
    pub async fn write<T: Entity>(
        &self,
        change: Change<T>,
        actor: &str,
    ) -> Result<WriteOutcome<T>, StoreError> {
        let base = self.latest_config().await?;
        self.write_with(&base, change, &WriteOptions::by(actor))
            .await
    }

    /// Applies one change as one revision: validates the changed entity and what refers to it,
    /// and stores nothing (and uses up no revision number) when that fails; `options` add a
    /// precondition, a message, or make it a dry run. `base` is the caller's latest known state:
    /// the work is in proportion to the change when it is current, and it is brought forward
    /// from the history when it is not.
    pub async fn write_with<T: Entity>(
        &self,
        base: &State,
        change: Change<T>,
        options: &WriteOptions,
    ) -> Result<WriteOutcome<T>, StoreError> {
        let pending = self.begin_write(base, options).await?;
        let (now, revision) = (pending.now, pending.revision);
        let current = &pending.current;
        let kind = T::KIND.as_str();

        let (verb, name, after) = match change {
            Change::Create(mut entity) => {
                let name = entity.name().to_owned();
                if current.get::<T>(&name).is_some() {
                    return Err(StoreError::AlreadyExists { kind, name });
                }
                entity.set_created_at(now);
                ("create", name, Some((entity, now)))
            }
            Change::Put(mut entity) => {
                let name = entity.name().to_owned();
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

        let existed = existing.is_some();
        let after = after.map(|(entity, _)| entity);
        // Writing what is already stored changes nothing, so it makes no revision, as a
        // whole-config apply of the same content makes none.
        let change = change_of(&name, existing.as_ref().map(|s| &s.entity), after.as_ref());
        let touched = match change {
            Some(_) => vec![(T::KIND, name.clone())],
            None => Vec::new(),
        };
        let finished = self
            .finish_write(
                pending,
                next,
                touched,
                format!("{verb} {kind} {name}"),
                options,
            )
            .await?;
        let record = match (&finished.latest, &after) {
            (Some(latest), Some(_)) => latest.state.get::<T>(&name).map(|s| s.record()),
            (None, Some(_)) if change.is_none() => existing.map(|s| s.record()),
            _ => None,
        };
        Ok(WriteOutcome {
            revision: finished.revision,
            created: after.is_some() && !existed,
            record,
            changes: change.into_iter().collect(),
            dry_run: options.dry_run,
            latest: finished.latest,
        })
    }

    /// [`Store::apply_config_on`] on top of the latest state read whole.
    #[cfg(test)]
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
    /// Every validation error of `next` is reported at once.
    pub async fn apply_config_on(
        &self,
        base: &State,
        mut next: Config,
        message: &str,
        options: &WriteOptions,
    ) -> Result<Applied, StoreError> {
        let pending = self.begin_write(base, options).await?;
        let (now, revision) = (pending.now, pending.revision);
        let current = &pending.current;
        // Routes keep their creation time across applies; new ones are created now.
        for (name, route) in &mut next.routes {
            route.created_at_unix_ms = current
                .get::<Route>(name)
                .map_or(now, |stored| stored.meta.created_at);
        }
        next.validate().map_err(StoreError::Invalid)?;
        let changes = current.diff_to(&next);
        let mut state = current.clone();
        let mut touched = Vec::with_capacity(changes.len());
        if !options.dry_run {
            for change in &changes {
                match change.kind {
                    Kind::Upstream => {
                        replace::<Upstream>(&mut state, &mut next, change, now, revision)
                    }
                    Kind::Route => replace::<Route>(&mut state, &mut next, change, now, revision),
                }
                touched.push((change.kind, change.name.clone()));
            }
        }
        let finished = self
            .finish_write(pending, state, touched, message.to_owned(), options)
            .await?;
        Ok(Applied {
            revision: finished.revision,
            changed: !changes.is_empty(),
            changes,
            dry_run: options.dry_run,
            latest: finished.latest,
        })
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
