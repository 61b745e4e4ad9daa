use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// Which database holds the log and the read models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// Names only the URL's scheme: the rest may hold a password.
    #[error("unsupported database URL scheme {0:?}: expected sqlite:<path> or postgres://…")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// SQLite allows one writer at a time. Writes go through a single-connection pool, so
/// concurrent writers of this process queue fairly instead of spinning in SQLite's busy
/// handler; reads use their own pool and run beside the writer (WAL).
#[derive(Debug, Clone)]
pub struct SqliteDb {
    pub read: SqlitePool,
    pub write: SqlitePool,
}

/// A pool on one of the two backends. Code that runs the same SQL on both matches on it
/// with [`on_pool!`](crate::on_pool); the arms are type-checked separately, so one source
/// serves both drivers.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// One open transaction on either backend.
#[derive(Debug)]
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$pool` bound to the concrete pool of either backend (and, in the
/// second form, `$DB` naming that backend's `sqlx::Database` type).
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        $crate::on_pool!($db, $pool, _DB => $body)
    };
    ($db:expr, $pool:ident, $DB:ident => $body:expr) => {
        match $db {
            $crate::Database::Sqlite(sqlite) => {
                #[allow(dead_code)]
                type $DB = ::sqlx::Sqlite;
                let $pool = &sqlite.read;
                $body
            }
            $crate::Database::Postgres($pool) => {
                #[allow(dead_code)]
                type $DB = ::sqlx::Postgres;
                $body
            }
        }
    };
}

/// Runs `$body` with `$conn` bound to the concrete connection of a [`Tx`] (and, in the
/// second form, `$DB` naming that backend's `sqlx::Database` type).
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        $crate::on_tx!($tx, $conn, _DB => $body)
    };
    ($tx:expr, $conn:ident, $DB:ident => $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite(tx) => {
                #[allow(dead_code)]
                type $DB = ::sqlx::Sqlite;
                let $conn = &mut **tx;
                $body
            }
            $crate::Tx::Postgres(tx) => {
                #[allow(dead_code)]
                type $DB = ::sqlx::Postgres;
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

impl Database {
    /// Connects to `sqlite:<path>` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DatabaseError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            // The writer first: it creates the file and sets WAL mode for everyone.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(options.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            Ok(Database::Sqlite(SqliteDb { read, write }))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            // One connection first: a server that refuses or cannot be found says so at
            // once, where the pool would retry until its timeout and say only that.
            PgConnection::connect_with(&options).await?.close().await?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(2))
                .acquire_timeout(Duration::from_secs(10))
                // A ping per checkout costs a round trip on every query.
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            Ok(Database::Postgres(pool))
        } else {
            let scheme = url.split(':').next().unwrap_or_default().to_string();
            Err(DatabaseError::UnsupportedUrl(scheme))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies our migrations (`migrations/sqlite` or `migrations/postgres`).
    pub async fn migrate(&self) -> Result<(), DatabaseError> {
        match self {
            Database::Sqlite(sqlite) => {
                sqlx::migrate!("../../migrations/sqlite")
                    .run(&sqlite.write)
                    .await?
            }
            Database::Postgres(pool) => {
                sqlx::migrate!("../../migrations/postgres")
                    .run(pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Opens a transaction that writes. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write never fails to upgrade its lock.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Database::Sqlite(sqlite) => {
                Tx::Sqlite(sqlite.write.begin_with("BEGIN IMMEDIATE").await?)
            }
            Database::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Answers whether the database can be reached.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    pub async fn close(&self) {
        match self {
            Database::Sqlite(sqlite) => {
                sqlite.read.close().await;
                sqlite.write.close().await;
            }
            Database::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await,
            Tx::Postgres(tx) => tx.rollback().await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
}
