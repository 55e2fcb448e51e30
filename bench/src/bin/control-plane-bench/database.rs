//! A fresh database for each control plane the benchmark starts: an SQLite file in a temporary
//! directory, or a throwaway PostgreSQL database created on the given server and dropped at the
//! end, so that no run sees another's revisions.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::ValueEnum;
use serde::Serialize;
use sqlx::{Connection, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "SQLite",
            Kind::Postgres => "PostgreSQL",
        }
    }
}

pub enum Database {
    /// Relative to the control plane's working directory, the temporary directory.
    Sqlite { url: String },
    Postgres {
        server_url: String,
        name: String,
        url: String,
    },
}

impl Database {
    pub async fn create(kind: Kind, server_url: &str) -> anyhow::Result<Database> {
        match kind {
            Kind::Sqlite => Ok(Database::Sqlite {
                url: "sqlite://gateway.db?mode=rwc".into(),
            }),
            Kind::Postgres => {
                let mut conn = PgConnection::connect(server_url).await.with_context(|| {
                    format!("connect to PostgreSQL at {}", redacted(server_url))
                })?;
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let name = format!("gateway_bench_{}_{nanos}", std::process::id());
                // The name is made above from numbers, never from input.
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .with_context(|| format!("create database {name}"))?;
                let _ = conn.close().await;
                Ok(Database::Postgres {
                    url: with_database(server_url, &name),
                    server_url: server_url.to_owned(),
                    name,
                })
            }
        }
    }

    /// The control plane's `--database-url`.
    pub fn url(&self) -> &str {
        match self {
            Database::Sqlite { url } | Database::Postgres { url, .. } => url,
        }
    }

    /// The database's size on disk: the SQLite file with its write-ahead log (the control plane
    /// runs in `dir`), or what PostgreSQL reports.
    pub async fn size_bytes(&self, dir: &Path) -> Option<u64> {
        match self {
            Database::Sqlite { .. } => Some(
                ["gateway.db", "gateway.db-wal"]
                    .iter()
                    .filter_map(|file| std::fs::metadata(dir.join(file)).ok())
                    .map(|meta| meta.len())
                    .sum(),
            ),
            Database::Postgres {
                server_url, name, ..
            } => {
                let mut conn = PgConnection::connect(server_url).await.ok()?;
                let size: i64 = sqlx::query_scalar("SELECT pg_database_size(CAST($1 AS name))")
                    .bind(name)
                    .fetch_one(&mut conn)
                    .await
                    .ok()?;
                let _ = conn.close().await;
                u64::try_from(size).ok()
            }
        }
    }

    /// Drops a PostgreSQL database (even while sessions are still connected to it); the SQLite
    /// file goes with its temporary directory.
    pub async fn drop_now(self) {
        if let Database::Postgres {
            server_url, name, ..
        } = self
        {
            let dropped = async {
                let mut conn = PgConnection::connect(&server_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            };
            if let Err(error) = dropped.await {
                eprintln!("could not drop database {name}: {error}");
            }
        }
    }
}

/// Replaces the database name (the path) of a PostgreSQL URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user_info = &url[scheme + 3..at];
            let user = user_info.split(':').next().unwrap_or("");
            format!("{}{user}:…{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redacted, with_database};

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }

    #[test]
    fn password_is_hidden() {
        assert_eq!(redacted("postgres://u:secret@h/db"), "postgres://u:…@h/db");
        assert_eq!(redacted("postgres://h/db"), "postgres://h/db");
    }
}
