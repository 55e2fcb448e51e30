//! The changes a caller can ask for: one entity (create, replace, delete) or a whole config
//! (declarative apply, rollback). Each is turned into the next config here, validated as a whole,
//! and handed to the transaction of [`super::commit`], so that it makes exactly one revision or
//! none.

use std::collections::BTreeSet;

use gateway_config::{Change as ConfigChange, Config, Kind};

use super::commit::WriteOptions;
use super::error::StoreError;
use super::handle::Store;
use super::resources::{Entity, Record};
use super::revisions::LatestConfig;

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
    /// The whole config at the new revision, ready to publish to workers; None on a dry run.
    pub latest: Option<LatestConfig>,
}

/// What a whole-config write (declarative apply, rollback) produced.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The new revision, or the current one when nothing changed or on a dry run.
    pub revision: i64,
    pub changed: bool,
    pub changes: Vec<ConfigChange>,
    pub dry_run: bool,
    /// The config at the new revision; None when no revision was made.
    pub latest: Option<LatestConfig>,
}

impl Store {
    /// [`Store::write_with`] by `actor`, unconditionally and for real.
    #[cfg(test)]
    pub async fn write<T: Entity>(
        &self,
        change: Change<T>,
        actor: &str,
    ) -> Result<WriteOutcome<T>, StoreError> {
        self.write_with(change, &WriteOptions::by(actor)).await
    }

    /// Applies one change as one revision: validates the whole resulting config and stores
    /// nothing (and uses up no revision number) when it is invalid; `options` add a
    /// precondition, a message, or make it a dry run.
    pub async fn write_with<T: Entity>(
        &self,
        change: Change<T>,
        options: &WriteOptions,
    ) -> Result<WriteOutcome<T>, StoreError> {
        let pending = self.begin_write(options).await?;
        let now = pending.now;
        let current = &pending.current;
        let mut config = current.config.clone();
        let kind = T::KIND.as_str();
        let existing_meta = |name: &str| current.meta.get(&(T::KIND, name.to_owned())).copied();

        let (verb, name, created) = match change {
            Change::Create(mut entity) => {
                let name = entity.name().to_owned();
                if T::map(&config).contains_key(&name) {
                    return Err(StoreError::AlreadyExists { kind, name });
                }
                entity.set_created_at(now);
                T::map_mut(&mut config).insert(name.clone(), entity);
                ("create", name, true)
            }
            Change::Put(mut entity) => {
                let name = entity.name().to_owned();
                let existing = existing_meta(&name);
                entity.set_created_at(existing.map_or(now, |m| m.created_at));
                T::map_mut(&mut config).insert(name.clone(), entity);
                let verb = if existing.is_some() {
                    "update"
                } else {
                    "create"
                };
                (verb, name, existing.is_none())
            }
            Change::Delete(name) => {
                if T::map_mut(&mut config).remove(&name).is_none() {
                    return Err(StoreError::NotFound { kind, name });
                }
                if T::KIND == Kind::Upstream {
                    let references: Vec<(String, String)> = config
                        .references_to(&name)
                        .into_iter()
                        .map(|(route, field)| (route.to_owned(), field))
                        .collect();
                    if !references.is_empty() {
                        let routes = config
                            .routes_using(&name)
                            .into_iter()
                            .map(str::to_owned)
                            .collect();
                        return Err(StoreError::InUse {
                            name,
                            routes,
                            references,
                        });
                    }
                }
                ("delete", name, false)
            }
        };

        if let Err(mut errors) = config.validate() {
            // The entity being written comes first, so its problem is the one named in `field`.
            errors
                .0
                .sort_by_key(|e| !(e.kind == T::KIND && e.name == name));
            return Err(StoreError::Invalid(errors));
        }

        let entity = T::map(&config).get(&name).cloned();
        // Writing what is already stored changes nothing, so it makes no revision, as a
        // whole-config apply of the same content makes none.
        let unchanged = entity.is_some() && T::map(&current.config).get(&name) == entity.as_ref();
        let unchanged_record = if unchanged {
            existing_meta(&name)
                .zip(entity.clone())
                .map(|(meta, entity)| Record {
                    entity,
                    created_at: meta.created_at,
                    updated_at: meta.updated_at,
                    revision: meta.revision,
                })
        } else {
            None
        };
        let touched = if unchanged {
            BTreeSet::new()
        } else {
            BTreeSet::from([(T::KIND, name.clone())])
        };
        let finished = self
            .finish_write(
                pending,
                config,
                touched,
                format!("{verb} {kind} {name}"),
                options,
            )
            .await?;
        let record = match (&finished.latest, entity) {
            (Some(latest), Some(entity)) => latest.meta.get(&(T::KIND, name)).map(|meta| Record {
                entity,
                created_at: meta.created_at,
                updated_at: meta.updated_at,
                revision: meta.revision,
            }),
            _ => unchanged_record,
        };
        Ok(WriteOutcome {
            revision: finished.revision,
            created,
            record,
            changes: finished.changes,
            dry_run: options.dry_run,
            latest: finished.latest,
        })
    }

    /// Makes the config equal `next` as one revision, or changes nothing when it already does.
    /// Every validation error of `next` is reported at once.
    pub async fn apply_config(
        &self,
        mut next: Config,
        message: &str,
        options: &WriteOptions,
    ) -> Result<Applied, StoreError> {
        let pending = self.begin_write(options).await?;
        // Routes keep their creation time across applies; new ones are created now.
        for (name, route) in &mut next.routes {
            route.created_at_unix_ms = pending
                .current
                .config
                .routes
                .get(name)
                .map_or(pending.now, |r| r.created_at_unix_ms);
        }
        next.validate().map_err(StoreError::Invalid)?;
        let touched: BTreeSet<(Kind, String)> = pending
            .current
            .config
            .diff(&next)
            .into_iter()
            .map(|change| (change.kind, change.name))
            .collect();
        let finished = self
            .finish_write(pending, next, touched, message.to_owned(), options)
            .await?;
        Ok(Applied {
            revision: finished.revision,
            changed: !finished.changes.is_empty(),
            changes: finished.changes,
            dry_run: options.dry_run,
            latest: finished.latest,
        })
    }
}
