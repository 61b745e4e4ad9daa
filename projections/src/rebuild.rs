//! Rebuilding a projection from the start of the log, in one transaction (ADR 0004); on
//! PostgreSQL into fresh tables without their secondary indexes, which are built once at
//! the end (ADR 0015).
//!
//! Maintaining a dozen indexes row by row is most of a PostgreSQL rebuild's cost: 50,000
//! listing rows go into `inventory_listings` in ~0.5 s without its secondary indexes and in
//! ~4 s with them, while building those indexes afterwards takes ~1 s. So a projector that
//! names its tables ([`Projector::tables`]) is rebuilt on PostgreSQL like this: fresh,
//! empty copies of its tables in a schema of the rebuild's own (`rebuild_<projection>`),
//! with their primary keys and unique indexes (upserts need them) but no other index, come
//! first on the transaction's `search_path`, so the projector's unqualified SQL writes into
//! them. At the end the remaining indexes are built on the copies, the copies are analysed
//! and get the tables' extended statistics, and they replace the tables: the old ones are
//! dropped and the copies moved into their schema. Readers keep reading the old tables
//! until then and wait only for the swap; no dead copy of every row is left behind, as
//! emptying the tables with `DELETE` did. A failure rolls everything back, the old tables
//! included.
//!
//! On SQLite the tables are emptied and refilled in place, as before.

use cartie_store::{Database, EventLog, LogPosition, Tx};

use crate::checkpoint;
use crate::runner::{ProjectionError, Projector};

/// Rebuilds a projection from the start of the log in one transaction: readers keep seeing
/// the old tables until it commits, then see the rebuilt ones (see docs/adr/0004 and 0015).
/// `on_progress` is called with the number of events applied so far.
pub async fn rebuild(
    db: &Database,
    projector: &dyn Projector,
    batch_size: i64,
    mut on_progress: impl FnMut(u64),
) -> Result<LogPosition, ProjectionError> {
    let log = EventLog::new(db.clone());
    let name = projector.name();
    checkpoint::ensure(db, name).await?;
    let mut tx = db.begin_write().await?;
    checkpoint::lock(&mut tx, name).await?;
    let set_aside = SetAside::begin(&mut tx, name, projector.tables()).await?;
    projector.reset(&mut tx).await?;
    let mut position = LogPosition::START;
    let mut applied = 0u64;
    let mut events = log.read_after(position, batch_size).await?;
    while let Some(last) = events.last().map(|e| e.position) {
        // Read the next batch (on a pool connection) while this one is applied (on the
        // transaction's): the two overlap instead of taking turns.
        let (applying, next) = tokio::join!(
            projector.apply(&mut tx, &events),
            log.read_after(last, batch_size)
        );
        applying?;
        position = last;
        applied += events.len() as u64;
        on_progress(applied);
        events = next?;
    }
    set_aside.finish(&mut tx).await?;
    checkpoint::save(&mut tx, name, position).await?;
    tx.commit().await?;
    tracing::info!(projection = name, events = applied, %position, "projection rebuilt");
    Ok(position)
}

/// What a rebuild set aside at its start, to put back at its end.
enum SetAside {
    /// Rebuilt in place, indexes maintained row by row: the projector named no tables, or
    /// the database is SQLite.
    Nothing,
    /// PostgreSQL: the fresh copies being filled.
    Copies {
        schema: String,
        search_path: String,
        tables: Vec<Copy>,
    },
}

/// One table being rebuilt as a fresh copy, on PostgreSQL.
struct Copy {
    /// The table's schema and name, quoted as PostgreSQL prints them.
    schema: String,
    name: String,
    /// `CREATE INDEX` statements for the copy, run once it is filled.
    indexes: Vec<String>,
    /// The schema and name of each extended statistics object of the table, created on
    /// the copy under the same name in the rebuild's schema.
    statistics: Vec<(String, String)>,
}

impl Copy {
    fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

impl SetAside {
    async fn begin(
        tx: &mut Tx,
        projection: &str,
        tables: &[&str],
    ) -> Result<Self, ProjectionError> {
        if tables.is_empty() {
            return Ok(Self::Nothing);
        }
        match tx {
            // Measured on 100,000 events, dropping SQLite's indexes first and creating them
            // at the end changed nothing: rebuilt in place (ADR 0015).
            Tx::Sqlite(_) => Ok(Self::Nothing),
            Tx::Postgres(_) => copy_postgres_tables(tx, projection, tables).await,
        }
    }

    async fn finish(self, tx: &mut Tx) -> Result<(), ProjectionError> {
        match self {
            Self::Nothing => {}
            Self::Copies {
                schema,
                search_path,
                tables,
            } => swap_postgres_tables(tx, &schema, &search_path, &tables).await?,
        }
        Ok(())
    }
}

/// PostgreSQL: creates empty copies of `tables` in the schema `rebuild_<projection>`, with
/// their columns, defaults, checks, primary keys and unique indexes, and puts that schema
/// first on the transaction's search path.
async fn copy_postgres_tables(
    tx: &mut Tx,
    projection: &str,
    tables: &[&str],
) -> Result<SetAside, ProjectionError> {
    let Tx::Postgres(tx) = tx else {
        unreachable!("called for PostgreSQL only")
    };
    if !projection
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(ProjectionError::Rebuild(format!(
            "projection name {projection:?} is not a plain identifier"
        )));
    }
    let schema = format!("rebuild_{projection}");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut **tx)
        .await?;
    let mut copies = Vec::new();
    for table in tables {
        let found: Option<(String, String)> = sqlx::query_as(
            "SELECT quote_ident(n.nspname), quote_ident(c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
        )
        .bind(table)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((table_schema, name)) = found else {
            return Err(ProjectionError::Rebuild(format!("no table {table}")));
        };
        let mut copy = Copy {
            schema: table_schema,
            name,
            indexes: Vec::new(),
            statistics: Vec::new(),
        };
        let original = copy.qualified();
        let target = format!("{schema}.{}", copy.name);
        sqlx::query(&format!(
            "CREATE TABLE {target} (LIKE {original} \
             INCLUDING ALL EXCLUDING INDEXES EXCLUDING STATISTICS)"
        ))
        .execute(&mut **tx)
        .await?;

        let constraints: Vec<(String, String)> = sqlx::query_as(
            "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = to_regclass($1) AND contype IN ('p', 'u', 'x') ORDER BY conname",
        )
        .bind(table)
        .fetch_all(&mut **tx)
        .await?;
        for (name, definition) in constraints {
            sqlx::query(&format!(
                "ALTER TABLE {target} ADD CONSTRAINT {name} {definition}"
            ))
            .execute(&mut **tx)
            .await?;
        }

        let indexes: Vec<(String, bool)> = sqlx::query_as(
            "SELECT pg_get_indexdef(i.indexrelid), i.indisunique FROM pg_index i \
             WHERE i.indrelid = to_regclass($1) \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) \
             ORDER BY i.indexrelid",
        )
        .bind(table)
        .fetch_all(&mut **tx)
        .await?;
        for (definition, unique) in indexes {
            // pg_get_indexdef names the table schema-qualified: point it at the copy.
            let on_original = format!(" ON {original} ");
            if !definition.contains(&on_original) {
                return Err(ProjectionError::Rebuild(format!(
                    "cannot read the index definition {definition:?}"
                )));
            }
            let statement = definition.replacen(&on_original, &format!(" ON {target} "), 1);
            if unique {
                sqlx::query(&statement).execute(&mut **tx).await?;
            } else {
                copy.indexes.push(statement);
            }
        }

        // Extended statistics: created on the copy in the rebuild's schema, moved along
        // with it at the swap.
        let statistics: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT quote_ident(n.nspname), quote_ident(s.stxname), pg_get_statisticsobjdef(s.oid) \
             FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace \
             WHERE s.stxrelid = to_regclass($1) ORDER BY s.stxname",
        )
        .bind(table)
        .fetch_all(&mut **tx)
        .await?;
        for (statistics_schema, name, definition) in statistics {
            // "CREATE STATISTICS <schema>.<name> <kinds> ON <columns> FROM <table>", the
            // table qualified only when it is not on the search path.
            let named = format!("CREATE STATISTICS {statistics_schema}.{name} ");
            let body = definition
                .strip_prefix(&named)
                .and_then(|rest| rest.rsplit_once(" FROM "))
                .map(|(body, _table)| body);
            let Some(body) = body else {
                return Err(ProjectionError::Rebuild(format!(
                    "cannot read the statistics definition {definition:?}"
                )));
            };
            let statement = format!("CREATE STATISTICS {schema}.{name} {body} FROM {target}");
            sqlx::query(&statement).execute(&mut **tx).await?;
            copy.statistics.push((statistics_schema, name));
        }
        copies.push(copy);
    }
    let search_path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut **tx)
        .await?;
    sqlx::query(&format!("SET LOCAL search_path TO {schema}, {search_path}"))
        .execute(&mut **tx)
        .await?;
    Ok(SetAside::Copies {
        schema,
        search_path,
        tables: copies,
    })
}

/// PostgreSQL: builds the copies' indexes, then replaces each table with its copy.
async fn swap_postgres_tables(
    tx: &mut Tx,
    schema: &str,
    search_path: &str,
    copies: &[Copy],
) -> Result<(), ProjectionError> {
    let Tx::Postgres(tx) = tx else {
        unreachable!("called for PostgreSQL only")
    };
    for copy in copies {
        for statement in &copy.indexes {
            sqlx::query(statement).execute(&mut **tx).await?;
        }
        // Planner statistics belong to the table (they move with it); the old table's go.
        sqlx::query(&format!("ANALYZE {schema}.{}", copy.name))
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(&format!("SET LOCAL search_path TO {search_path}"))
        .execute(&mut **tx)
        .await?;
    // From here to the commit, readers of these tables wait: keep it short.
    for copy in copies {
        sqlx::query(&format!("DROP TABLE {}", copy.qualified()))
            .execute(&mut **tx)
            .await?;
        sqlx::query(&format!(
            "ALTER TABLE {schema}.{} SET SCHEMA {}",
            copy.name, copy.schema
        ))
        .execute(&mut **tx)
        .await?;
        for (statistics_schema, name) in &copy.statistics {
            sqlx::query(&format!(
                "ALTER STATISTICS {schema}.{name} SET SCHEMA {statistics_schema}"
            ))
            .execute(&mut **tx)
            .await?;
        }
    }
    sqlx::query(&format!("DROP SCHEMA {schema}"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
