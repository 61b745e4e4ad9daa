use std::cell::Cell;
use std::collections::HashMap;
use std::error::Error as StdError;

use cartie_domain::context::metadata_keys;
use cartie_domain::Command;
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::db::{Backend, Database};
use crate::log::{EventLog, LogNotifier};
use crate::position::LogPosition;

/// Why a command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: StdError> {
    /// The aggregate refused: a domain error for the caller.
    #[error(transparent)]
    Rejected(E),
    /// Another write reached the aggregate first and the command named the version it
    /// expected, or retries were exhausted.
    #[error("the aggregate was changed concurrently")]
    Conflict,
    /// Storage failed. Usually nothing was written, but a connection lost after the
    /// database committed cannot tell: retry with an idempotency key, or read first.
    #[error("event store failure: {0}")]
    Infrastructure(Box<dyn StdError + Send + Sync>),
}

tokio::task_local! {
    /// Where the current command's append landed in the log, set by [`LogRepository`] and
    /// read by [`CommandBus::execute`] (cqrs-es awaits `persist` inline, in the same task).
    static APPENDED_AT: Cell<Option<LogPosition>>;

    /// Set for a command on an aggregate whose id the caller has just generated
    /// ([`CommandBus::execute_new`]): [`LogRepository`] answers "no events, no snapshot"
    /// without asking the database.
    static NEW_AGGREGATE: bool;
}

/// Whether the current command is the first attempt on a just-generated aggregate id.
fn loading_new_aggregate() -> bool {
    NEW_AGGREGATE.try_with(|new| *new).unwrap_or(false)
}

/// The event repository the command bus uses: sqlite-es or postgres-es for reading
/// aggregates and for snapshots, and our own append for plain events.
///
/// The append stamps a unique, time-ordered `event_id` into each event's metadata (cqrs-es
/// gives all events of one command the same metadata) and writes all of a command's events
/// in one statement that returns their log position: one round trip instead of BEGIN,
/// INSERT and COMMIT followed by a query for the position (ADR 0008).
struct LogRepository<R> {
    inner: R,
    db: Database,
}

fn stamp_event_ids(events: &[SerializedEvent]) -> Vec<SerializedEvent> {
    events
        .iter()
        .cloned()
        .map(|mut event| {
            if let Value::Object(metadata) = &mut event.metadata {
                metadata.insert(
                    metadata_keys::EVENT_ID.to_string(),
                    Value::String(Uuid::now_v7().to_string()),
                );
            }
            event
        })
        .collect()
}

/// A violation of the events' primary key `(aggregate_type, aggregate_id, sequence)` means
/// another command appended at the same sequence first (SQLite reports it as extended code
/// 1555, PostgreSQL as 23505 on `events_pkey`). Any other failure is not a conflict.
fn persistence_error(backend: Backend, error: sqlx::Error) -> PersistenceError {
    let conflict = match (&error, backend) {
        (sqlx::Error::Database(db), Backend::Sqlite) => db.code().as_deref() == Some("1555"),
        (sqlx::Error::Database(db), Backend::Postgres) => {
            db.code().as_deref() == Some("23505") && db.constraint() == Some("events_pkey")
        }
        _ => false,
    };
    if conflict {
        return PersistenceError::OptimisticLockError;
    }
    match &error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
            PersistenceError::ConnectionError(Box::new(error))
        }
        _ => PersistenceError::UnknownError(Box::new(error)),
    }
}

/// Appends events of one aggregate (already serialised, with their sequences) in one
/// statement; answers the log position of the last one. A sequence that is taken already
/// is an optimistic-lock conflict.
pub async fn append(
    db: &Database,
    aggregate_type: &str,
    events: &[SerializedEvent],
) -> Result<Option<LogPosition>, PersistenceError> {
    append_rows(db, aggregate_type, events)
        .await
        .map_err(|error| persistence_error(db.backend(), error))
}

async fn append_rows(
    db: &Database,
    aggregate_type: &str,
    events: &[SerializedEvent],
) -> Result<Option<LogPosition>, sqlx::Error> {
    // cqrs-es persists even when a decision produced no event.
    if events.is_empty() {
        return Ok(None);
    }
    const COLUMNS: &str =
        "aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata";
    match db {
        Database::Postgres(pool) => {
            let mut query =
                QueryBuilder::<Postgres>::new(format!("INSERT INTO events ({COLUMNS}) "));
            query.push_values(events, |mut row, event| {
                row.push_bind(aggregate_type)
                    .push_bind(&event.aggregate_id)
                    .push_bind(event.sequence as i64)
                    .push_bind(&event.event_type)
                    .push_bind(&event.event_version)
                    .push_bind(&event.payload)
                    .push_bind(&event.metadata);
            });
            query.push(" RETURNING transaction_id::text::bigint, global_position");
            let positions: Vec<(i64, i64)> = query.build_query_as().fetch_all(pool).await?;
            Ok(positions
                .into_iter()
                .max()
                .map(|(xid, pos)| LogPosition::new(xid, pos)))
        }
        Database::Sqlite(sqlite) => {
            // One writer: the position is the next after the largest, taken in the same
            // statement. Several events go in one transaction, one statement each, so each
            // subquery sees the row before it.
            let sql = format!(
                "INSERT INTO events ({COLUMNS}, global_position) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                 (SELECT COALESCE(MAX(global_position), 0) + 1 FROM events)) RETURNING global_position"
            );
            let insert = |event: &SerializedEvent| {
                sqlx::query_scalar::<_, i64>(&sql)
                    .bind(aggregate_type)
                    .bind(event.aggregate_id.clone())
                    .bind(event.sequence as i64)
                    .bind(event.event_type.clone())
                    .bind(event.event_version.clone())
                    .bind(event.payload.clone())
                    .bind(event.metadata.clone())
            };
            let last = match events {
                [event] => Some(insert(event).fetch_one(&sqlite.write).await?),
                _ => {
                    let mut tx = sqlite.write.begin_with("BEGIN IMMEDIATE").await?;
                    let mut last = None;
                    for event in events {
                        last = Some(insert(event).fetch_one(&mut *tx).await?);
                    }
                    tx.commit().await?;
                    last
                }
            };
            Ok(last.map(|pos| LogPosition::new(0, pos)))
        }
    }
}

impl<R: PersistedEventRepository> PersistedEventRepository for LogRepository<R> {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        if loading_new_aggregate() {
            return Ok(Vec::new());
        }
        self.inner.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        if loading_new_aggregate() {
            return Ok(Vec::new());
        }
        self.inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        if loading_new_aggregate() {
            return Ok(None);
        }
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let stamped = stamp_event_ids(events);
        if snapshot_update.is_some() {
            // Events and snapshot in the library's one transaction; the bus looks the
            // position up afterwards.
            return self.inner.persist::<A>(&stamped, snapshot_update).await;
        }
        let position = append(&self.db, A::TYPE, &stamped).await?;
        let _ = APPENDED_AT.try_with(|cell| cell.set(position));
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}

type Framework<A, R> = CqrsFramework<A, PersistedEventStore<LogRepository<R>, A>>;

fn store<R: PersistedEventRepository, A: Aggregate>(
    db: &Database,
    inner: R,
    snapshot_every: Option<usize>,
) -> PersistedEventStore<LogRepository<R>, A> {
    let repo = LogRepository {
        inner,
        db: db.clone(),
    };
    match snapshot_every {
        Some(size) => PersistedEventStore::new_snapshot_store(repo, size),
        None => PersistedEventStore::new_event_store(repo),
    }
}

enum Frameworks<A: Aggregate> {
    Sqlite(Framework<A, SqliteEventRepository>),
    Postgres(Framework<A, PostgresEventRepository>),
}

/// Sends commands to one kind of aggregate and appends the resulting events to the log.
///
/// Read models never depend on cqrs-es's in-process query dispatch (it is lost on a crash
/// between commit and dispatch); projections read the log instead, and a caller that wants
/// to read its own write waits for the position [`CommandBus::execute`] returns.
pub struct CommandBus<A: Aggregate> {
    framework: Frameworks<A>,
    log: EventLog,
    notifier: LogNotifier,
}

impl<A, C> CommandBus<A>
where
    A: Aggregate<Command = Command<C>>,
    C: Clone + Send + Sync,
{
    /// Retries after a concurrent write when the caller named no expected version: the
    /// decision is taken again on the fresh state, so nothing stale is written.
    const CONFLICT_RETRIES: usize = 5;

    pub fn new(db: &Database, notifier: LogNotifier, services: A::Services) -> Self {
        Self::build(db, notifier, services, None)
    }

    /// Like [`CommandBus::new`], but loads aggregates from a snapshot taken every
    /// `snapshot_every` events, for aggregates that grow long.
    pub fn with_snapshots(
        db: &Database,
        notifier: LogNotifier,
        services: A::Services,
        snapshot_every: usize,
    ) -> Self {
        Self::build(db, notifier, services, Some(snapshot_every))
    }

    fn build(
        db: &Database,
        notifier: LogNotifier,
        services: A::Services,
        snapshot_every: Option<usize>,
    ) -> Self {
        let framework = match db {
            Database::Sqlite(sqlite) => Frameworks::Sqlite(CqrsFramework::new(
                store(
                    db,
                    SqliteEventRepository::new(sqlite.write.clone()),
                    snapshot_every,
                ),
                vec![],
                services,
            )),
            Database::Postgres(pool) => Frameworks::Postgres(CqrsFramework::new(
                store(
                    db,
                    PostgresEventRepository::new(pool.clone()),
                    snapshot_every,
                ),
                vec![],
                services,
            )),
        };
        Self {
            framework,
            log: EventLog::new(db.clone()),
            notifier,
        }
    }

    /// Executes a command and returns where the aggregate's newest event stands in the log
    /// (None when the aggregate still has no event).
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: Command<C>,
    ) -> Result<Option<LogPosition>, CommandError<A::Error>> {
        self.execute_loading(aggregate_id, command, false).await
    }

    /// Like [`CommandBus::execute`], for an aggregate whose id the caller has just
    /// generated (a new UUIDv7 no one else can know yet): it cannot have events, so it is
    /// not loaded — one read fewer for every creation. Should it have events after all, the
    /// append conflicts on the sequence and the retry loads it as usual.
    pub async fn execute_new(
        &self,
        aggregate_id: &str,
        command: Command<C>,
    ) -> Result<Option<LogPosition>, CommandError<A::Error>> {
        self.execute_loading(aggregate_id, command, true).await
    }

    #[tracing::instrument(name = "execute", skip(self, command), fields(aggregate = A::TYPE, %aggregate_id))]
    async fn execute_loading(
        &self,
        aggregate_id: &str,
        command: Command<C>,
        new_aggregate: bool,
    ) -> Result<Option<LogPosition>, CommandError<A::Error>> {
        let metadata = command.context.metadata();
        let may_retry = command.expected_version.is_none();
        let mut attempt = 0;
        let appended_at = loop {
            let attempt_once = self.execute_once(aggregate_id, command.clone(), metadata.clone());
            // Only the first attempt may skip the load: a retry follows a conflict.
            let skip_load = new_aggregate && attempt == 0;
            let (result, appended_at) = NEW_AGGREGATE
                .scope(
                    skip_load,
                    APPENDED_AT.scope(Cell::new(None), async {
                        (attempt_once.await, APPENDED_AT.with(Cell::get))
                    }),
                )
                .await;
            match result {
                Ok(()) => break appended_at,
                Err(AggregateError::AggregateConflict)
                    if may_retry && attempt < Self::CONFLICT_RETRIES =>
                {
                    attempt += 1;
                    tracing::debug!(attempt, "concurrent write; deciding again");
                }
                Err(AggregateError::AggregateConflict) => return Err(CommandError::Conflict),
                Err(AggregateError::UserError(error)) => return Err(CommandError::Rejected(error)),
                Err(AggregateError::DatabaseConnectionError(error))
                | Err(AggregateError::DeserializationError(error))
                | Err(AggregateError::UnexpectedError(error)) => {
                    return Err(CommandError::Infrastructure(error))
                }
            }
        };
        self.notifier.appended_to(A::TYPE);
        if let Some(position) = appended_at {
            return Ok(Some(position));
        }
        // Nothing appended (the decision changed nothing) or appended with a snapshot:
        // where the aggregate's newest event stands.
        self.log
            .latest_position_of(A::TYPE, aggregate_id)
            .await
            .map_err(|error| CommandError::Infrastructure(Box::new(error)))
    }

    async fn execute_once(
        &self,
        aggregate_id: &str,
        command: Command<C>,
        metadata: HashMap<String, String>,
    ) -> Result<(), AggregateError<A::Error>> {
        match &self.framework {
            Frameworks::Sqlite(cqrs) => {
                cqrs.execute_with_metadata(aggregate_id, command, metadata)
                    .await
            }
            Frameworks::Postgres(cqrs) => {
                cqrs.execute_with_metadata(aggregate_id, command, metadata)
                    .await
            }
        }
    }
}
