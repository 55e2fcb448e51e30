//! Entities (upstreams, routes) as the `resources` table holds them: the model each kind shares,
//! decoding rows back into a config, and reading the current state. It sits at the bottom of the
//! store so that every other part can decode with it; changing entities is [`super::write`]'s job.

use std::collections::BTreeMap;

use gateway_config::{Config, Kind, Route, Upstream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::error::StoreError;
use super::handle::Store;

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

/// Server-set metadata of a stored entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityMeta {
    pub created_at: i64,
    pub updated_at: i64,
    /// The revision that last changed the entity.
    pub revision: i64,
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
}
