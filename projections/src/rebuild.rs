//! Rebuilding a projection from the start of the log (ADR 0004). On PostgreSQL into fresh
//! tables, built beside the live ones and swapped in (ADRs 0015 and 0022); on SQLite in
//! place, in one transaction.
//!
//! Maintaining a dozen indexes row by row is most of a PostgreSQL rebuild's cost: 50,000
//! listing rows go into `inventory_listings` in ~0.5 s without its secondary indexes and in
//! ~4 s with them, while building those indexes afterwards takes ~0.5 s. So a projector that
//! names its tables ([`Projector::tables`]) is rebuilt on PostgreSQL in four steps:
//!
//! 1. **Fill.** One transaction creates fresh, empty copies of the tables in a schema of the
//!    rebuild's own (`rebuild_<projection>`, other characters than letters and digits made
//!    `_`), with their primary keys, unique indexes (upserts and reads by key need them;
//!    not those of [`Projector::insert_only_tables`]) and extended statistics but no other
//!    index. Then the log is
//!    applied to them in transactions of a few batches each, with that schema first on their
//!    `search_path` (so the projector's unqualified SQL writes into the copies): a long
//!    transaction would hold every reader of the log in the cluster below it (ADR 0002).
//!    The live tables and the live runner carry on.
//! 2. **Index.** The remaining indexes are built on the copies, a few at once on connections
//!    of their own, and each copy is analysed: before its indexes are built unless one of
//!    them is on an expression (see [`Steps`]).
//! 3. **Catch up and swap.** One transaction locks the projection's checkpoint (the live
//!    runner waits), applies to the copies what was appended since the fill, drops the live
//!    tables, moves the copies into their schema and saves the checkpoint. Readers keep
//!    reading the old tables until then and wait only for this step.
//! 4. A session lock of PostgreSQL keeps two rebuilds of one projection apart; the schema
//!    an interrupted rebuild left behind is dropped by the next one. A failure leaves the
//!    live tables, indexes and checkpoint as they were.
//!
//! On SQLite the tables are emptied and refilled in place, in one transaction, with the
//! writer's page cache grown for it ([`WriterCache`]): measured on 100,000 events, dropping
//! SQLite's indexes first and creating them at the end changed nothing (ADRs 0015, 0024).

use std::collections::VecDeque;

use cartie_store::{Database, EventLog, EventParts, LogPosition, StoredEvent, Tx};
use sqlx::PgPool;

use crate::checkpoint;
use crate::runner::{Prepared, ProjectionError, Projector};

/// Index builds and analyses run at once during a PostgreSQL rebuild. PostgreSQL gives a
/// B-tree build parallel workers of its own; two statements keep a small server busy
/// while the trigram index, which gets none, is built.
const INDEX_STATEMENTS_AT_ONCE: usize = 2;

/// Batches a rebuild reads and prepares ahead of the one it applies.
const BATCHES_AHEAD: usize = 2;

/// Rebuilds a projection from the start of the log: readers keep seeing the old tables
/// until the rebuilt ones replace them at once (see docs/adr/0004, 0015 and 0022).
/// `on_progress` is called with the number of events applied so far.
pub async fn rebuild(
    db: &Database,
    projector: &dyn Projector,
    batch_size: i64,
    mut on_progress: impl FnMut(u64),
) -> Result<LogPosition, ProjectionError> {
    let name = projector.name();
    checkpoint::ensure(db, name).await?;
    let started = std::time::Instant::now();
    let (position, applied) = match db {
        Database::Postgres(pool) if !projector.tables().is_empty() => {
            rebuild_beside(db, pool, projector, batch_size, &mut on_progress).await?
        }
        _ => rebuild_in_place(db, projector, batch_size, &mut on_progress).await?,
    };
    tracing::info!(
        projection = name,
        events = applied,
        %position,
        elapsed = ?started.elapsed(),
        "projection rebuilt"
    );
    Ok(position)
}

/// Empties the projector's tables and applies the whole log to them, in one transaction
/// that holds the checkpoint.
async fn rebuild_in_place(
    db: &Database,
    projector: &dyn Projector,
    batch_size: i64,
    on_progress: &mut dyn FnMut(u64),
) -> Result<(LogPosition, u64), ProjectionError> {
    let name = projector.name();
    // The first batches are read and prepared while the writer empties the tables.
    let log = ReadAhead::start(db, projector, LogPosition::START, batch_size);
    let mut tx = db.begin_write().await?;
    let cache = WriterCache::grow(&mut tx).await?;
    let rebuilt = async {
        checkpoint::lock(&mut tx, name).await?;
        projector.reset(&mut tx).await?;
        let mut progress = Progress::new(on_progress);
        let position = log
            .apply(db, &mut tx, projector, None, &mut progress)
            .await?;
        checkpoint::save(&mut tx, name, position).await?;
        tx.commit().await?;
        Ok::<_, ProjectionError>((position, progress.applied))
    }
    .await;
    if let Some(cache) = cache {
        cache.shrink(db).await;
    }
    rebuilt
}

/// SQLite: the writer connection's page cache, grown for a rebuild. A rebuild's transaction
/// changes every page of the projection's tables and indexes; in SQLite's default cache
/// (2 MiB) most of them are written out to the WAL before the commit and read back when
/// changed again. The cache holds them for the rebuild and gives the memory back after.
struct WriterCache {
    /// `PRAGMA cache_size` before the rebuild, to restore.
    before: i64,
}

impl WriterCache {
    /// Pages of up to this many KiB stay in the writer's cache during a rebuild.
    const REBUILD_KIB: i64 = 128 * 1024;

    /// Grows the cache of the transaction's connection; `None` on PostgreSQL.
    async fn grow(tx: &mut Tx) -> Result<Option<Self>, sqlx::Error> {
        let Tx::Sqlite(conn) = tx else {
            return Ok(None);
        };
        let before: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(&mut **conn)
            .await?;
        // A negative size is in KiB, a positive one in pages.
        sqlx::query(&format!("PRAGMA cache_size = -{}", Self::REBUILD_KIB))
            .execute(&mut **conn)
            .await?;
        Ok(Some(Self { before }))
    }

    /// Restores the writer's cache size, which frees the pages above it.
    async fn shrink(self, db: &Database) {
        let Database::Sqlite(sqlite) = db else {
            return;
        };
        let restore = sqlx::query(&format!("PRAGMA cache_size = {}", self.before))
            .execute(&sqlite.write)
            .await;
        if let Err(error) = restore {
            tracing::warn!(%error, "could not restore the SQLite writer's page cache size");
        }
    }
}

/// The log after a position, read and prepared a few batches ahead of the transaction that
/// applies it ([`ReadAhead::apply`]).
///
/// Three stages overlap, each on a thread of its own where it can: a task reads the log
/// batch after batch (on a pool connection), a task per batch prepares it (see
/// [`Projector::prepare_ahead`]), and the caller applies the batches in order on the
/// transaction's connection. Reading starts at once, so the first batches are ready by the
/// time the transaction is.
struct ReadAhead {
    /// Batches read and being prepared, in log order; a few at most.
    ready: tokio::sync::mpsc::Receiver<Preparing>,
    reader: tokio::task::JoinHandle<()>,
    from: LogPosition,
}

impl ReadAhead {
    /// Starts reading every event after `from` that can be read now.
    fn start(db: &Database, projector: &dyn Projector, from: LogPosition, batch_size: i64) -> Self {
        let log = EventLog::new(db.clone());
        let parts = if projector.reads_metadata_when_rebuilding() {
            EventParts::All
        } else {
            EventParts::WithoutMetadata
        };
        let prepare = projector.prepare_ahead();
        let backend = db.backend();
        let (batches, ready) = tokio::sync::mpsc::channel::<Preparing>(BATCHES_AHEAD);
        let reader = tokio::spawn(async move {
            let mut after = from;
            loop {
                let events = match log.read_parts_after(after, batch_size, parts).await {
                    Ok(events) => events,
                    Err(error) => {
                        let _ = batches
                            .send(tokio::spawn(async { Err(error.into()) }))
                            .await;
                        return;
                    }
                };
                let Some(last) = events.last().map(|e| e.position) else {
                    return;
                };
                after = last;
                let preparing = tokio::spawn(async move {
                    let prepared = prepare
                        .map(|prepare| prepare(&events, backend))
                        .transpose()?;
                    Ok((events, prepared))
                });
                if batches.send(preparing).await.is_err() {
                    return; // the rebuild stopped
                }
            }
        });
        Self {
            ready,
            reader,
            from,
        }
    }

    /// Applies the batches in order in `tx`; answers the position of the last event (the
    /// starting position when there were none). `progress` counts them. With `chunks`,
    /// `tx` is committed and replaced by a fresh one every few batches.
    async fn apply(
        mut self,
        db: &Database,
        tx: &mut Tx,
        projector: &dyn Projector,
        chunks: Option<&FillChunks<'_>>,
        progress: &mut Progress<'_>,
    ) -> Result<LogPosition, ProjectionError> {
        let mut position = self.from;
        let mut applied_batches = 0;
        while let Some(preparing) = self.ready.recv().await {
            let (events, prepared) = preparing
                .await
                .map_err(|e| ProjectionError::Rebuild(format!("preparing a batch: {e}")))??;
            projector.apply_rebuilding(tx, &events, prepared).await?;
            position = events.last().map_or(position, |e| e.position);
            progress.applied(events.len());
            applied_batches += 1;
            if let Some(chunks) = chunks.filter(|_| applied_batches % FillChunks::BATCHES == 0) {
                let fresh = chunks.begin(db).await?;
                std::mem::replace(tx, fresh).commit().await?;
            }
        }
        Ok(position)
    }
}

impl Drop for ReadAhead {
    /// A rebuild that stops early stops reading too.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A batch of the log being prepared, as the reader hands it on.
type Preparing =
    tokio::task::JoinHandle<Result<(Vec<StoredEvent>, Option<Prepared>), ProjectionError>>;

/// Events applied so far, reported to the caller after every batch.
struct Progress<'a> {
    applied: u64,
    report: &'a mut dyn FnMut(u64),
}

impl<'a> Progress<'a> {
    fn new(report: &'a mut dyn FnMut(u64)) -> Self {
        Self { applied: 0, report }
    }

    fn applied(&mut self, events: usize) {
        self.applied += events as u64;
        (self.report)(self.applied);
    }
}

/// PostgreSQL: the fill of a rebuild beside the live tables commits every few batches.
/// Readers of the log stay below the oldest transaction running in the cluster (ADR 0002):
/// a fill in one transaction would keep every projection and reactor from seeing new
/// events until it ended. The copies are the rebuild's alone, so committing part of them
/// exposes nothing, and a crash loses nothing that matters (the next rebuild drops them):
/// these commits do not wait for the disk.
struct FillChunks<'a> {
    /// The rebuild's schema, first on each transaction's search path.
    schema: &'a str,
}

impl FillChunks<'_> {
    /// Batches per transaction; of 5,000 events, a quarter of a second or so here.
    const BATCHES: usize = 4;

    async fn begin(&self, db: &Database) -> Result<Tx, sqlx::Error> {
        let mut tx = db.begin_write().await?;
        if let Tx::Postgres(conn) = &mut tx {
            sqlx::query("SET LOCAL synchronous_commit TO OFF")
                .execute(&mut **conn)
                .await?;
        }
        put_first_on_search_path(&mut tx, self.schema).await?;
        Ok(tx)
    }
}

/// PostgreSQL: fills fresh copies of the projector's tables beside the live ones, indexes
/// them, and swaps them in (the module's documentation tells the steps).
async fn rebuild_beside(
    db: &Database,
    pool: &PgPool,
    projector: &dyn Projector,
    batch_size: i64,
    on_progress: &mut dyn FnMut(u64),
) -> Result<(LogPosition, u64), ProjectionError> {
    let name = projector.name();
    // A plain identifier: "telegram-delivery" is rebuilt in `rebuild_telegram_delivery`.
    let schema: String = "rebuild_"
        .chars()
        .chain(name.chars().map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        }))
        .collect();
    // A connection of its own holds the session lock; closing it (or the process ending)
    // releases the lock.
    let mut guard = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("cartie rebuild {name}"))
        .fetch_one(&mut guard)
        .await?;
    if !locked {
        return Err(ProjectionError::Rebuild(format!(
            "another rebuild of {name} is running"
        )));
    }
    let rebuilt = async {
        // What an interrupted rebuild left behind.
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut guard)
            .await?;
        let started = std::time::Instant::now();
        let mut progress = Progress::new(on_progress);
        let search_path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
            .fetch_one(&mut guard)
            .await?;
        // The first batches are read and prepared while the copies are made.
        let log = ReadAhead::start(db, projector, LogPosition::START, batch_size);
        let mut tx = db.begin_write().await?;
        let copies = copy_postgres_tables(
            &mut tx,
            &schema,
            projector.tables(),
            projector.insert_only_tables(),
        )
        .await?;
        tx.commit().await?;
        let chunks = FillChunks { schema: &schema };
        let mut tx = chunks.begin(db).await?;
        let filled = log
            .apply(db, &mut tx, projector, Some(&chunks), &mut progress)
            .await?;
        tx.commit().await?;
        let fill_took = started.elapsed();

        let started = std::time::Instant::now();
        build_indexes(pool, &schema, &copies).await?;
        let index_took = started.elapsed();

        let started = std::time::Instant::now();
        let mut tx = db.begin_write().await?;
        checkpoint::lock(&mut tx, name).await?;
        put_first_on_search_path(&mut tx, &schema).await?;
        let position = ReadAhead::start(db, projector, filled, batch_size)
            .apply(db, &mut tx, projector, None, &mut progress)
            .await?;
        swap_postgres_tables(&mut tx, &schema, &search_path, &copies).await?;
        checkpoint::save(&mut tx, name, position).await?;
        tx.commit().await?;
        tracing::debug!(
            projection = name,
            fill = ?fill_took,
            index = ?index_took,
            swap = ?started.elapsed(),
            "rebuild steps"
        );
        Ok::<_, ProjectionError>((position, progress.applied))
    }
    .await;
    if rebuilt.is_err() {
        // The copies are of no use: leave nothing behind (the next rebuild would drop them).
        if let Err(error) = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut guard)
            .await
        {
            tracing::warn!(%error, schema, "could not drop a failed rebuild's tables");
        }
    }
    if let Err(error) = sqlx::Connection::close(guard).await {
        tracing::warn!(%error, "closing the rebuild's lock connection");
    }
    rebuilt
}

/// One table being rebuilt as a fresh copy, on PostgreSQL.
struct Copy {
    /// The table's schema and name, quoted as PostgreSQL prints them.
    schema: String,
    name: String,
    /// `CREATE INDEX` statements for the copy, run once it is filled, costliest first.
    indexes: Vec<String>,
    /// `ALTER TABLE … ADD CONSTRAINT … USING INDEX` statements, run once `indexes` stand:
    /// the primary key and unique constraints of an insert-only table, made of indexes
    /// built with the others.
    constraints: Vec<String>,
    /// Whether the table's planner statistics can be gathered before its indexes are
    /// built: only an index on an expression has statistics of its own, which need it.
    analyse_first: bool,
    /// The table's storage parameters (`name=value`), given to the copy at the swap.
    options: Vec<String>,
    /// The schema and name of each extended statistics object of the table, created on
    /// the copy under the same name in the rebuild's schema.
    statistics: Vec<(String, String)>,
}

impl Copy {
    fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// Puts `schema` first on the transaction's search path.
async fn put_first_on_search_path(tx: &mut Tx, schema: &str) -> Result<(), sqlx::Error> {
    let Tx::Postgres(tx) = tx else {
        unreachable!("called for PostgreSQL only")
    };
    let search_path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut **tx)
        .await?;
    let path = if search_path.trim().is_empty() {
        schema.to_string()
    } else {
        format!("{schema}, {search_path}")
    };
    sqlx::query(&format!("SET LOCAL search_path TO {path}"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// PostgreSQL: creates the schema `schema` and in it empty copies of `tables`, with their
/// columns, defaults, checks, statistics targets, primary keys, unique indexes and extended
/// statistics; the other indexes are answered, to be built once the copies are filled, and
/// so are the primary keys and unique indexes of the `insert_only` tables (see
/// [`Projector::insert_only_tables`]). Autovacuum leaves the copies alone until they are
/// swapped in: its analysis would hold up the index builds.
async fn copy_postgres_tables(
    tx: &mut Tx,
    schema: &str,
    tables: &[&str],
    insert_only: &[&str],
) -> Result<Vec<Copy>, ProjectionError> {
    let Tx::Postgres(tx) = tx else {
        unreachable!("called for PostgreSQL only")
    };
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut **tx)
        .await?;
    let mut copies = Vec::new();
    for table in tables {
        let found: Option<(String, String, Vec<String>)> = sqlx::query_as(
            "SELECT quote_ident(n.nspname), quote_ident(c.relname), \
                    COALESCE(c.reloptions, ARRAY[]::text[]) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
        )
        .bind(table)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((table_schema, name, options)) = found else {
            return Err(ProjectionError::Rebuild(format!("no table {table}")));
        };
        let analyse_first: bool = sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_index \
             WHERE indrelid = to_regclass($1) AND indexprs IS NOT NULL)",
        )
        .bind(table)
        .fetch_one(&mut **tx)
        .await?;
        let deferred = insert_only.contains(table);
        let mut copy = Copy {
            schema: table_schema,
            name,
            options,
            indexes: Vec::new(),
            constraints: Vec::new(),
            analyse_first,
            statistics: Vec::new(),
        };
        let original = copy.qualified();
        let target = format!("{schema}.{}", copy.name);
        sqlx::query(&format!(
            "CREATE TABLE {target} (LIKE {original} \
             INCLUDING ALL EXCLUDING INDEXES EXCLUDING STATISTICS) \
             WITH (autovacuum_enabled = false)"
        ))
        .execute(&mut **tx)
        .await?;

        // Per-column statistics targets: `LIKE` does not copy them.
        let targets: Vec<(String, i32)> = sqlx::query_as(
            "SELECT quote_ident(attname), attstattarget::int4 FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped \
               AND attstattarget >= 0 ORDER BY attnum",
        )
        .bind(table)
        .fetch_all(&mut **tx)
        .await?;
        if !targets.is_empty() {
            let columns: Vec<String> = targets
                .iter()
                .map(|(column, target)| format!("ALTER COLUMN {column} SET STATISTICS {target}"))
                .collect();
            sqlx::query(&format!("ALTER TABLE {target} {}", columns.join(", ")))
                .execute(&mut **tx)
                .await?;
        }

        let on_original = format!(" ON {original} ");
        // pg_get_indexdef names the table schema-qualified: point it at the copy.
        let on_copy = |definition: String| {
            if definition.contains(&on_original) {
                Ok(definition.replacen(&on_original, &format!(" ON {target} "), 1))
            } else {
                Err(ProjectionError::Rebuild(format!(
                    "cannot read the index definition {definition:?}"
                )))
            }
        };
        // Name and definition; for a primary key or unique constraint an insert-only table
        // can have built later, its kind and its index's definition and name.
        type Constraint = (String, String, Option<String>, String, String);
        let constraints: Vec<Constraint> = sqlx::query_as(
            "SELECT quote_ident(c.conname), pg_get_constraintdef(c.oid), \
                    CASE WHEN NOT c.condeferrable THEN \
                      CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' END \
                    END, \
                    COALESCE(pg_get_indexdef(c.conindid), ''), COALESCE(quote_ident(i.relname), '') \
             FROM pg_constraint c LEFT JOIN pg_class i ON i.oid = c.conindid \
             WHERE c.conrelid = to_regclass($1) AND c.contype IN ('p', 'u', 'x') \
             ORDER BY c.conname",
        )
        .bind(table)
        .fetch_all(&mut **tx)
        .await?;
        for (name, definition, kind, index, index_name) in constraints {
            match kind {
                Some(kind) if deferred => {
                    copy.indexes.push(on_copy(index)?);
                    copy.constraints.push(format!(
                        "ALTER TABLE {target} ADD CONSTRAINT {name} {kind} USING INDEX {index_name}"
                    ));
                }
                _ => {
                    sqlx::query(&format!(
                        "ALTER TABLE {target} ADD CONSTRAINT {name} {definition}"
                    ))
                    .execute(&mut **tx)
                    .await?;
                }
            }
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
            let statement = on_copy(definition)?;
            if unique && !deferred {
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
        // Costliest first: a trigram (GIN) index gets no parallel workers, then the
        // widest B-trees.
        copy.indexes.sort_by_key(|statement| {
            let generalized =
                statement.contains(" USING gin ") || statement.contains(" USING gist ");
            (
                !generalized,
                std::cmp::Reverse(statement.matches(',').count()),
            )
        });
        copies.push(copy);
    }
    Ok(copies)
}

/// PostgreSQL: builds the copies' indexes and constraints and analyses the copies,
/// [`INDEX_STATEMENTS_AT_ONCE`] statements at a time on pool connections (see [`Steps`] for
/// their order). Planner statistics belong to the table and move with it.
async fn build_indexes(
    pool: &PgPool,
    schema: &str,
    copies: &[Copy],
) -> Result<(), ProjectionError> {
    let mut tables: Vec<Steps> = copies.iter().map(|copy| Steps::of(schema, copy)).collect();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < INDEX_STATEMENTS_AT_ONCE {
            let next = tables
                .iter_mut()
                .enumerate()
                .find_map(|(table, steps)| steps.next().map(|step| (table, step)));
            let Some((table, statement)) = next else {
                break;
            };
            let pool = pool.clone();
            running.spawn(async move {
                let started = std::time::Instant::now();
                let done = sqlx::query(&statement).execute(&pool).await;
                tracing::debug!(took = ?started.elapsed(), statement, "rebuild step");
                done.map(|_| table)
            });
        }
        let Some(done) = running.join_next().await else {
            return Ok(());
        };
        let done = match done {
            Ok(built) => built.map_err(ProjectionError::from),
            Err(error) => Err(ProjectionError::Rebuild(format!("index build: {error}"))),
        };
        match done {
            Ok(table) => tables[table].done(),
            Err(error) => {
                // Let the builds under way end (dropping their tasks would not stop them in
                // the server, and dropping the copies would then wait for them anyway).
                while running.join_next().await.is_some() {}
                return Err(error);
            }
        }
    }
}

/// What is left to do on one copy once it is filled, and what is under way. `ANALYZE` takes
/// a lock that `CREATE INDEX`'s excludes, so a table is analysed alone: first when it can
/// be (statistics of the rows alone), and the other tables' statements run meanwhile;
/// after its indexes when one is on an expression. Constraints are made of their built
/// indexes once all of them stand.
struct Steps {
    analyse: Option<String>,
    analyse_first: bool,
    /// Costliest first.
    builds: VecDeque<String>,
    constraints: Vec<String>,
    running: usize,
    analysing: bool,
}

impl Steps {
    fn of(schema: &str, copy: &Copy) -> Self {
        Self {
            analyse: Some(format!("ANALYZE {schema}.{}", copy.name)),
            analyse_first: copy.analyse_first,
            builds: copy.indexes.iter().cloned().collect(),
            constraints: copy.constraints.clone(),
            running: 0,
            analysing: false,
        }
    }

    /// The next statement that can start now, if any.
    fn next(&mut self) -> Option<String> {
        if self.analysing {
            return None;
        }
        let (statement, analyse) = if self.analyse_first && self.analyse.is_some() {
            // Before anything else of the table has started.
            (self.analyse.take()?, true)
        } else if let Some(build) = self.builds.pop_front() {
            (build, false)
        } else if self.running > 0 {
            return None; // constraints and a late analysis wait for every build
        } else if let Some(constraint) = self.constraints.pop() {
            (constraint, false)
        } else {
            (self.analyse.take()?, true)
        };
        self.analysing = analyse;
        self.running += 1;
        Some(statement)
    }

    fn done(&mut self) {
        self.running -= 1;
        self.analysing = false;
    }
}

/// PostgreSQL: replaces each table with its copy (which takes the table's storage
/// parameters), then drops the rebuild's schema.
async fn swap_postgres_tables(
    tx: &mut Tx,
    schema: &str,
    search_path: &str,
    copies: &[Copy],
) -> Result<(), ProjectionError> {
    let Tx::Postgres(tx) = tx else {
        unreachable!("called for PostgreSQL only")
    };
    let search_path = if search_path.trim().is_empty() {
        "''"
    } else {
        search_path
    };
    sqlx::query(&format!("SET LOCAL search_path TO {search_path}"))
        .execute(&mut **tx)
        .await?;
    // From here to the commit, readers of these tables wait: keep it short.
    for copy in copies {
        sqlx::query(&format!("DROP TABLE {}", copy.qualified()))
            .execute(&mut **tx)
            .await?;
        sqlx::query(&format!(
            "ALTER TABLE {schema}.{} RESET (autovacuum_enabled)",
            copy.name
        ))
        .execute(&mut **tx)
        .await?;
        if !copy.options.is_empty() {
            sqlx::query(&format!(
                "ALTER TABLE {schema}.{} SET ({})",
                copy.name,
                copy.options.join(", ")
            ))
            .execute(&mut **tx)
            .await?;
        }
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
