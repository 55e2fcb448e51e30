//! Throwaway Postgres databases, one per test, dropped when the test ends.
//!
//! The server comes from `GATEWAY_TEST_POSTGRES_URL` (default
//! `postgres://postgres:postgres@127.0.0.1:5432/postgres`). There is no fallback: a test that needs Postgres
//! fails when it cannot be reached.

use sqlx::{Connection, PgConnection};

const DEFAULT_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

pub struct TestDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

fn admin_url() -> String {
    std::env::var("GATEWAY_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Replaces the database name (the path) of a Postgres URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let admin_url = admin_url();
        let mut conn = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "Postgres is required for the end-to-end tests and is not reachable at {admin_url}: {e}\n\
                 Start it, or point GATEWAY_TEST_POSTGRES_URL at a server (scripts/test.sh does both)."
            )
        });
        let name = format!("gateway_e2e_{}", uuid::Uuid::new_v4().simple());
        // The name is generated above from a UUID, never from input.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = with_database(&admin_url, &name);
        TestDatabase {
            admin_url,
            name,
            url,
        }
    }

    /// `host:port` of the server, as written in the URL.
    pub fn host_port(&self) -> String {
        let after_scheme = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, rest)| rest);
        let after_user = after_scheme
            .rsplit_once('@')
            .map_or(after_scheme, |(_, rest)| rest);
        let host_port = after_user.split(['/', '?']).next().unwrap_or(after_user);
        if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:5432")
        }
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("connect to test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; use a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        });
        let _ = dropped.join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
