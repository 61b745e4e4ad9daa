//! Databases for tests: a fresh SQLite file, or a fresh database on the PostgreSQL server
//! named by `CARTIE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`;
//! `ops/test.sh` finds or starts one). Tests never skip when PostgreSQL is missing: they fail
//! saying so.

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::db::{Backend, Database};

/// Declares one test per backend for each `async fn name(backend: Backend)` named:
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await;
            }
        }
    )+};
}

pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A migrated, empty database that is removed when dropped.
pub struct TestDatabase {
    pub db: Database,
    pub url: String,
    drop_postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite:{}", dir.path().join("cartie.db").display());
        let db = Database::connect(&url, 8).await.expect("open SQLite");
        db.migrate().await.expect("migrate SQLite");
        Self {
            db,
            url,
            drop_postgres: None,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> Self {
        let admin_url = std::env::var("CARTIE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_string());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for this test and {admin_url} does not answer ({e}). \
                 Run the tests with ops/test.sh, which finds or starts a server, or set \
                 CARTIE_TEST_DATABASE_URL."
            )
        });
        let name = format!("cartie_test_{}", Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE for the test");
        let _ = admin.close().await;
        let url = database_url(&admin_url, &name);
        let db = Database::connect(&url, 16)
            .await
            .expect("open test database");
        db.migrate().await.expect("migrate PostgreSQL");
        Self {
            db,
            url,
            drop_postgres: Some((admin_url, name)),
            _dir: None,
        }
    }
}

/// The URL of database `name` on the server of `base_url`.
fn database_url(base_url: &str, name: &str) -> String {
    let (without_query, query) = match base_url.split_once('?') {
        Some((url, query)) => (url, Some(query)),
        None => (base_url, None),
    };
    let scheme_end = without_query.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match without_query[scheme_end..].find('/') {
        Some(slash) => &without_query[..scheme_end + slash],
        None => without_query,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.drop_postgres.take() else {
            return;
        };
        // Drop may run inside or outside a runtime: use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn it_points_the_url_at_another_database_on_the_same_server() {
        assert_eq!(
            database_url("postgres://u:p@h:5/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(database_url("postgres://h", "x"), "postgres://h/x");
    }
}
