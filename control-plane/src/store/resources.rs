//! Entities (upstreams, routes): reading the current state and changing it, one revision per
//! committed change.

use std::collections::{BTreeMap, BTreeSet};

use gateway_config::{Change as ConfigChange, Config, Kind, Route, Upstream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::commit::WriteOptions;
use super::revisions::LatestConfig;
use super::{Store, StoreError};

/// An entity kind stored in the `resources` table.
pub trait Entity: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static {
    const KIND: Kind;

    fn name(&self) -> &str;

    /// Entities that carry their creation time in the model (routes, for precedence ties).
    fn set_created_at(&mut self, _unix_ms: i64) {}

    fn tags(&self) -> &[String];

    fn map(config: &Config) -> &BTreeMap<String, Self>;

    fn map_mut(config: &mut Config) -> &mut BTreeMap<String, Self>;
}

impl Entity for Upstream {
    const KIND: Kind = Kind::Upstream;

    fn name(&self) -> &str {
        &self.name
    }

    fn tags(&self) -> &[String] {
        &self.tags
    }

    fn map(config: &Config) -> &BTreeMap<String, Self> {
        &config.upstreams
    }

    fn map_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.upstreams
    }
}

impl Entity for Route {
    const KIND: Kind = Kind::Route;

    fn name(&self) -> &str {
        &self.name
    }

    fn set_created_at(&mut self, unix_ms: i64) {
        self.created_at_unix_ms = unix_ms;
    }

    fn tags(&self) -> &[String] {
        &self.tags
    }

    fn map(config: &Config) -> &BTreeMap<String, Self> {
        &config.routes
    }

    fn map_mut(config: &mut Config) -> &mut BTreeMap<String, Self> {
        &mut config.routes
    }
}

/// A stored entity with its server-set metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    pub entity: T,
    pub created_at: i64,
    pub updated_at: i64,
    /// The revision that last changed the entity.
    pub revision: i64,
}

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

/// Server-set metadata of a stored entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityMeta {
    pub created_at: i64,
    pub updated_at: i64,
    /// The revision that last changed the entity.
    pub revision: i64,
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

/// The kind a stored `kind` column names; None for kinds of a newer build.
pub(super) fn kind_of(kind: &str) -> Option<Kind> {
    match kind {
        "upstream" => Some(Kind::Upstream),
        "route" => Some(Kind::Route),
        _ => None,
    }
}

/// Reads `resources` rows into a config; every route gets its row's creation time.
pub(super) fn config_from_rows<'a>(
    rows: impl IntoIterator<Item = StoredRow<'a>>,
) -> Result<Config, StoreError> {
    let mut config = Config::default();
    for row in rows {
        match row.kind {
            "upstream" => {
                let upstream: Upstream = parse_spec(&row)?;
                config.upstreams.insert(row.name.to_owned(), upstream);
            }
            "route" => {
                let mut route: Route = parse_spec(&row)?;
                route.created_at_unix_ms = row.created_at;
                config.routes.insert(row.name.to_owned(), route);
            }
            // Kinds written by a newer control plane are not part of this build's config.
            _ => {}
        }
    }
    Ok(config)
}

/// Rows decoded as `(kind, name, spec, created_at)`, into a config.
pub(super) fn config_from_decoded(
    rows: &[(String, String, String, i64)],
) -> Result<Config, StoreError> {
    config_from_rows(rows.iter().map(|(kind, name, spec, created_at)| StoredRow {
        kind,
        name,
        spec,
        created_at: *created_at,
    }))
}

/// The parts of a `resources` row needed to rebuild an entity.
pub(super) struct StoredRow<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub spec: &'a str,
    pub created_at: i64,
}

fn parse_spec<T: DeserializeOwned>(row: &StoredRow<'_>) -> Result<T, StoreError> {
    serde_json::from_str(row.spec).map_err(|e| StoreError::Corrupt {
        kind: row.kind.to_owned(),
        name: row.name.to_owned(),
        message: e.to_string(),
    })
}

fn record_from_row<T: Entity>(row: &AnyRow) -> Result<Record<T>, StoreError> {
    let name: String = row.try_get("name")?;
    let spec: String = row.try_get("spec")?;
    let created_at: i64 = row.try_get("created_at")?;
    let mut entity: T = parse_spec(&StoredRow {
        kind: T::KIND.as_str(),
        name: &name,
        spec: &spec,
        created_at,
    })?;
    entity.set_created_at(created_at);
    Ok(Record {
        entity,
        created_at,
        updated_at: row.try_get("updated_at")?,
        revision: row.try_get("revision")?,
    })
}

/// The current state, read inside a write transaction.
pub(super) struct Current {
    pub config: Config,
    pub meta: BTreeMap<(Kind, String), EntityMeta>,
}

pub(super) async fn load_current(
    tx: &mut Transaction<'static, Any>,
) -> Result<Current, StoreError> {
    let rows =
        sqlx::query("SELECT kind, name, spec, created_at, updated_at, revision FROM resources")
            .fetch_all(&mut **tx)
            .await?;
    let mut decoded = Vec::with_capacity(rows.len());
    let mut meta = BTreeMap::new();
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let name: String = row.try_get("name")?;
        let spec: String = row.try_get("spec")?;
        let created_at: i64 = row.try_get("created_at")?;
        if let Some(k) = kind_of(&kind) {
            meta.insert(
                (k, name.clone()),
                EntityMeta {
                    created_at,
                    updated_at: row.try_get("updated_at")?,
                    revision: row.try_get("revision")?,
                },
            );
        }
        decoded.push((kind, name, spec, created_at));
    }
    let config = config_from_decoded(&decoded)?;
    Ok(Current { config, meta })
}

impl Store {
    /// One entity by name.
    pub async fn get<T: Entity>(&self, name: &str) -> Result<Option<Record<T>>, StoreError> {
        let row = sqlx::query(
            "SELECT name, spec, created_at, updated_at, revision FROM resources \
             WHERE kind = $1 AND name = $2",
        )
        .bind(T::KIND.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Entities sorted by name, starting after `after`, at most `limit`, only those carrying
    /// `tag` if given. The flag says whether more entities follow.
    pub async fn list<T: Entity>(
        &self,
        after: Option<&str>,
        limit: usize,
        tag: Option<&str>,
    ) -> Result<(Vec<Record<T>>, bool), StoreError> {
        // Tags live inside the JSON spec, so a tag filter is applied here rather than in SQL,
        // which stays portable between Postgres and SQLite.
        let sql_limit: i64 = match tag {
            Some(_) => i64::MAX,
            None => i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1,
        };
        let rows = sqlx::query(
            "SELECT name, spec, created_at, updated_at, revision FROM resources \
             WHERE kind = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(T::KIND.as_str())
        .bind(after.unwrap_or(""))
        .bind(sql_limit)
        .fetch_all(&self.pool)
        .await?;
        let mut items = Vec::new();
        for row in &rows {
            let record: Record<T> = record_from_row(row)?;
            if let Some(tag) = tag
                && !record.entity.tags().iter().any(|t| t == tag)
            {
                continue;
            }
            if items.len() == limit {
                return Ok((items, true));
            }
            items.push(record);
        }
        Ok((items, false))
    }

    /// Applies one change as one revision: validates the whole resulting config and stores
    /// nothing (and uses up no revision number) when it is invalid.
    pub async fn write<T: Entity>(
        &self,
        change: Change<T>,
        actor: &str,
    ) -> Result<WriteOutcome<T>, StoreError> {
        self.write_with(change, &WriteOptions::by(actor)).await
    }

    /// [`Store::write`] with a precondition, a message, or as a dry run.
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
}
