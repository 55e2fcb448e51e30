//! Entities (upstreams, routes, certificates) as the `resources` table holds them: decoding rows back into a
//! config, reading one entity or a page of them, and reading the whole current state. It sits
//! low in the store so that every other part can decode with it; changing entities is
//! [`super::write`]'s job.

use std::collections::BTreeMap;

use gateway_config::{Certificate, Config, Kind, Route, Upstream};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::error::StoreError;
use super::handle::Store;
use super::state::{Entity, EntityMeta, Record, State};
use crate::kek::Keyring;

/// The kind a stored `kind` column names; None for kinds of a newer build.
pub(super) fn kind_of(kind: &str) -> Option<Kind> {
    match kind {
        "upstream" => Some(Kind::Upstream),
        "route" => Some(Kind::Route),
        "certificate" => Some(Kind::Certificate),
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
            "certificate" => {
                let certificate: Certificate = parse_spec(&row)?;
                config.certificates.insert(row.name.to_owned(), certificate);
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
    keyring: Option<&Keyring>,
) -> Result<Config, StoreError> {
    config_from_rows(rows.iter().map(|(kind, name, spec, created_at)| StoredRow {
        kind,
        name,
        spec,
        created_at: *created_at,
        keyring,
    }))
}

/// The parts of a `resources` row needed to rebuild an entity, and the keyring that opens its
/// sealed secrets.
pub(super) struct StoredRow<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub spec: &'a str,
    pub created_at: i64,
    pub keyring: Option<&'a Keyring>,
}

pub(super) fn parse_spec<T: Entity>(row: &StoredRow<'_>) -> Result<T, StoreError> {
    T::from_spec(row.name, row.spec, row.keyring)
}

fn record_from_row<T: Entity>(
    row: &AnyRow,
    keyring: Option<&Keyring>,
) -> Result<Record<T>, StoreError> {
    let name: String = row.try_get("name")?;
    let spec: String = row.try_get("spec")?;
    let created_at: i64 = row.try_get("created_at")?;
    let mut entity: T = parse_spec(&StoredRow {
        kind: T::KIND.as_str(),
        name: &name,
        spec: &spec,
        created_at,
        keyring,
    })?;
    entity.set_created_at(created_at);
    Ok(Record {
        entity,
        created_at,
        updated_at: row.try_get("updated_at")?,
        revision: row.try_get("revision")?,
    })
}

/// The whole current state as revision `revision`, read inside a write transaction.
pub(super) async fn load_whole(
    conn: &mut AnyConnection,
    revision: i64,
    keyring: Option<&Keyring>,
) -> Result<State, StoreError> {
    let rows =
        sqlx::query("SELECT kind, name, spec, created_at, updated_at, revision FROM resources")
            .fetch_all(&mut *conn)
            .await?;
    let committed_at: Option<i64> =
        sqlx::query_scalar("SELECT created_at FROM revisions WHERE revision = $1")
            .bind(revision)
            .fetch_optional(&mut *conn)
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
    let config = config_from_decoded(&decoded, keyring)?;
    Ok(State::build(
        revision,
        committed_at.unwrap_or(0),
        config,
        &meta,
    ))
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
        row.as_ref()
            .map(|row| record_from_row(row, self.keyring()))
            .transpose()
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
            let record: Record<T> = record_from_row(row, self.keyring())?;
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
