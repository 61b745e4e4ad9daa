use std::collections::HashMap;
use std::error::Error as StdError;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use cartie_domain::context::metadata_keys;
use cartie_domain::Command;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use lru::LruCache;
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
    append_rows(db, aggregate_type, events, None)
        .await
        .map_err(|error| persistence_error(db.backend(), error))
}

/// An aggregate's state as of the last event appended with it.
struct Snapshot<'a> {
    aggregate_id: &'a str,
    payload: Value,
}

const COLUMNS: &str =
    "aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata";

/// Replaces the aggregate's snapshot (one row per aggregate, as the libraries keep it) or
/// takes its first. Runs after the events' insert in the same transaction: that insert
/// already refused any writer that was not at the aggregate's newest sequence, so the
/// snapshot needs no version check of its own (the libraries' count of snapshots is kept
/// up to date but not relied on).
const UPDATE_SNAPSHOT: &str = "UPDATE snapshots SET last_sequence = $3, \
     current_snapshot = current_snapshot + 1, payload = $4 \
     WHERE aggregate_type = $1 AND aggregate_id = $2 AND last_sequence < $3";
const INSERT_SNAPSHOT: &str = "INSERT INTO snapshots \
     (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload) \
     VALUES ($1, $2, $3, 1, $4)";

/// Runs [`UPDATE_SNAPSHOT`], then [`INSERT_SNAPSHOT`] if there was no row to replace, on a
/// transaction of either backend (the statements and binds are the same on both).
macro_rules! write_snapshot {
    ($conn:expr, $aggregate_type:expr, $snapshot:expr, $last_sequence:expr) => {{
        let updated = sqlx::query(UPDATE_SNAPSHOT)
            .bind($aggregate_type)
            .bind($snapshot.aggregate_id)
            .bind($last_sequence)
            .bind(&$snapshot.payload)
            .execute($conn)
            .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(INSERT_SNAPSHOT)
                .bind($aggregate_type)
                .bind($snapshot.aggregate_id)
                .bind($last_sequence)
                .bind(&$snapshot.payload)
                .execute($conn)
                .await?;
        }
    }};
}

async fn append_rows(
    db: &Database,
    aggregate_type: &str,
    events: &[SerializedEvent],
    snapshot: Option<Snapshot<'_>>,
) -> Result<Option<LogPosition>, sqlx::Error> {
    // A decision that produced no event writes nothing.
    let Some(last_sequence) = events.last().map(|event| event.sequence as i64) else {
        return Ok(None);
    };
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
            let positions: Vec<(i64, i64)> = match snapshot {
                // One statement in autocommit: the events are atomic without BEGIN/COMMIT.
                None => query.build_query_as().fetch_all(pool).await?,
                Some(snapshot) => {
                    let mut tx = pool.begin().await?;
                    let positions = query.build_query_as().fetch_all(&mut *tx).await?;
                    write_snapshot!(&mut *tx, aggregate_type, snapshot, last_sequence);
                    tx.commit().await?;
                    positions
                }
            };
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
            let last = match (events, snapshot) {
                ([event], None) => insert(event).fetch_one(&sqlite.write).await?,
                (_, snapshot) => {
                    let mut tx = sqlite.write.begin_with("BEGIN IMMEDIATE").await?;
                    let mut last = 0;
                    for event in events {
                        last = insert(event).fetch_one(&mut *tx).await?;
                    }
                    if let Some(snapshot) = snapshot {
                        write_snapshot!(&mut *tx, aggregate_type, snapshot, last_sequence);
                    }
                    tx.commit().await?;
                    last
                }
            };
            Ok(Some(LogPosition::new(0, last)))
        }
    }
}

impl<R: PersistedEventRepository> LogRepository<R> {
    /// Writes one command's events and, when one is due, the aggregate's snapshot as of the
    /// last of them, in one transaction; answers the log position of the last event.
    async fn write<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot: Option<(&str, Value)>,
    ) -> Result<Option<LogPosition>, PersistenceError> {
        let stamped = stamp_event_ids(events);
        let snapshot = snapshot.map(|(aggregate_id, payload)| Snapshot {
            aggregate_id,
            payload,
        });
        append_rows(&self.db, A::TYPE, &stamped, snapshot)
            .await
            .map_err(|error| persistence_error(self.db.backend(), error))
    }
}

impl<R: PersistedEventRepository> PersistedEventRepository for LogRepository<R> {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let snapshot = snapshot_update
            .as_ref()
            .map(|(aggregate_id, payload, _)| (aggregate_id.as_str(), payload.clone()));
        self.write::<A>(events, snapshot).await.map(|_| ())
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

/// One backend's way to read aggregates (cqrs-es's store over our repository: snapshot,
/// then the events after it) and to write their events.
struct Store<A: Aggregate, R: PersistedEventRepository> {
    reader: PersistedEventStore<LogRepository<R>, A>,
    writer: LogRepository<R>,
}

impl<A: Aggregate, R: PersistedEventRepository> Store<A, R> {
    fn new(db: &Database, inner: impl Fn() -> R, snapshot_every: Option<usize>) -> Self {
        let repo = || LogRepository {
            inner: inner(),
            db: db.clone(),
        };
        let reader = match snapshot_every {
            Some(size) => PersistedEventStore::new_snapshot_store(repo(), size),
            None => PersistedEventStore::new_event_store(repo()),
        };
        Self {
            reader,
            writer: repo(),
        }
    }
}

enum Stores<A: Aggregate> {
    Sqlite(Store<A, SqliteEventRepository>),
    Postgres(Store<A, PostgresEventRepository>),
}

impl<A: Aggregate> Stores<A> {
    async fn load(&self, aggregate_id: &str) -> Result<Known<A>, AggregateError<A::Error>> {
        let context = match self {
            Self::Sqlite(store) => store.reader.load_aggregate(aggregate_id).await?,
            Self::Postgres(store) => store.reader.load_aggregate(aggregate_id).await?,
        };
        Ok(Known {
            aggregate: context.aggregate,
            sequence: context.current_sequence,
        })
    }

    async fn write(
        &self,
        events: &[SerializedEvent],
        snapshot: Option<(&str, Value)>,
    ) -> Result<Option<LogPosition>, PersistenceError> {
        match self {
            Self::Sqlite(store) => store.writer.write::<A>(events, snapshot).await,
            Self::Postgres(store) => store.writer.write::<A>(events, snapshot).await,
        }
    }
}

/// An aggregate's state as of its `sequence`-th event.
#[derive(Clone)]
struct Known<A> {
    aggregate: A,
    sequence: usize,
}

impl<A: Default> Known<A> {
    fn empty() -> Self {
        Self {
            aggregate: A::default(),
            sequence: 0,
        }
    }
}

/// The aggregates this bus wrote last, as its own commands left them, so that the next
/// command on one of them decides without reading it back (ADR 0016).
///
/// What is remembered may be stale: another process (or another bus) may have appended
/// since. A decision that appends is checked by the append itself (the next sequence is
/// taken: a conflict, and the command is decided again on the loaded state); a decision
/// that appends nothing — a refusal or a no-op — is not trusted and is taken again on the
/// loaded state.
struct Remembered<A> {
    entries: Mutex<LruCache<String, Arc<Known<A>>>>,
}

impl<A: Clone> Remembered<A> {
    fn new(capacity: NonZeroUsize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<Known<A>>>> {
        // A panic while holding the lock leaves the cache consistent (every operation is
        // one call into the LRU), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, aggregate_id: &str) -> Option<Known<A>> {
        let known = self.lock().get(aggregate_id).cloned()?;
        Some(Known::clone(&known))
    }

    /// Keeps the newer of what is remembered and `known`.
    fn put(&self, aggregate_id: &str, known: Known<A>) {
        let mut entries = self.lock();
        if let Some(current) = entries.get(aggregate_id) {
            if current.sequence >= known.sequence {
                return;
            }
        }
        entries.put(aggregate_id.to_string(), Arc::new(known));
    }

    fn forget(&self, aggregate_id: &str) {
        self.lock().pop(aggregate_id);
    }
}

/// How one attempt at a command ended.
enum Attempt<E: StdError> {
    /// Appended (at this position, when known without a query) or, decided on the loaded
    /// state, nothing to append.
    Done(Option<LogPosition>),
    /// Decided on an assumed state (remembered, or empty for a new id) and appended
    /// nothing, or the append found the state stale: to be decided again on the loaded
    /// state (not counted as a retry).
    Unverified,
    Failed(AggregateError<E>),
}

/// Sends commands to one kind of aggregate and appends the resulting events to the log.
///
/// Read models never depend on cqrs-es's in-process query dispatch (it is lost on a crash
/// between commit and dispatch); projections read the log instead, and a caller that wants
/// to read its own write waits for the position [`CommandBus::execute`] returns.
///
/// The bus drives cqrs-es's pieces itself (load, `handle`, write) rather than through
/// `CqrsFramework`, so that it can decide on an aggregate it remembers and snapshot the
/// state the command left (ADR 0016).
pub struct CommandBus<A: Aggregate> {
    stores: Stores<A>,
    services: A::Services,
    snapshot_every: Option<usize>,
    remembered: Remembered<A>,
    log: EventLog,
    notifier: LogNotifier,
}

/// How many aggregates each bus remembers (least recently used forgotten first).
const REMEMBERED_AGGREGATES: NonZeroUsize = match NonZeroUsize::new(4096) {
    Some(n) => n,
    None => unreachable!(),
};

impl<A, C> CommandBus<A>
where
    A: Aggregate<Command = Command<C>> + Clone,
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
        let stores = match db {
            Database::Sqlite(sqlite) => Stores::Sqlite(Store::new(
                db,
                || SqliteEventRepository::new(sqlite.write.clone()),
                snapshot_every,
            )),
            Database::Postgres(pool) => Stores::Postgres(Store::new(
                db,
                || PostgresEventRepository::new(pool.clone()),
                snapshot_every,
            )),
        };
        Self {
            stores,
            services,
            snapshot_every: snapshot_every.filter(|every| *every > 0),
            remembered: Remembered::new(REMEMBERED_AGGREGATES),
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
        self.execute_assuming(aggregate_id, command, false).await
    }

    /// Like [`CommandBus::execute`], for an aggregate whose id the caller has just
    /// generated (a new UUIDv7 no one else can know yet): it cannot have events, so it is
    /// not loaded — one read fewer for every creation. Should it have events after all, the
    /// append conflicts on the sequence (or the decision appends nothing and is not
    /// trusted) and the command is decided again on the loaded state.
    pub async fn execute_new(
        &self,
        aggregate_id: &str,
        command: Command<C>,
    ) -> Result<Option<LogPosition>, CommandError<A::Error>> {
        self.execute_assuming(aggregate_id, command, true).await
    }

    #[tracing::instrument(name = "execute", skip(self, command), fields(aggregate = A::TYPE, %aggregate_id))]
    async fn execute_assuming(
        &self,
        aggregate_id: &str,
        command: Command<C>,
        new_aggregate: bool,
    ) -> Result<Option<LogPosition>, CommandError<A::Error>> {
        let metadata = command.context.metadata();
        let may_retry = command.expected_version.is_none();
        let mut conflicts = 0;
        // Until a decision on an assumed state fails to verify itself or conflicts.
        let mut may_assume = true;
        let appended_at = loop {
            let assumed = if may_assume {
                self.remembered
                    .get(aggregate_id)
                    .or_else(|| new_aggregate.then(Known::empty))
            } else {
                None
            };
            let attempt = self
                .attempt(aggregate_id, command.clone(), &metadata, assumed)
                .await;
            match attempt {
                Attempt::Done(appended_at) => break appended_at,
                Attempt::Unverified => {
                    tracing::debug!("decided on an assumed state without appending; loading");
                    may_assume = false;
                }
                Attempt::Failed(AggregateError::AggregateConflict)
                    if may_retry && conflicts < Self::CONFLICT_RETRIES =>
                {
                    conflicts += 1;
                    may_assume = false;
                    tracing::debug!(conflicts, "concurrent write; deciding again");
                }
                Attempt::Failed(AggregateError::AggregateConflict) => {
                    return Err(CommandError::Conflict)
                }
                Attempt::Failed(AggregateError::UserError(error)) => {
                    return Err(CommandError::Rejected(error))
                }
                Attempt::Failed(AggregateError::DatabaseConnectionError(error))
                | Attempt::Failed(AggregateError::DeserializationError(error))
                | Attempt::Failed(AggregateError::UnexpectedError(error)) => {
                    return Err(CommandError::Infrastructure(error))
                }
            }
        };
        self.notifier.appended_to(A::TYPE);
        if let Some(position) = appended_at {
            return Ok(Some(position));
        }
        // Nothing appended (the decision changed nothing): where the aggregate's newest
        // event stands.
        self.log
            .latest_position_of(A::TYPE, aggregate_id)
            .await
            .map_err(|error| CommandError::Infrastructure(Box::new(error)))
    }

    /// Decides `command` on `assumed` (or on the loaded aggregate) and writes its events.
    async fn attempt(
        &self,
        aggregate_id: &str,
        command: Command<C>,
        metadata: &HashMap<String, String>,
        assumed: Option<Known<A>>,
    ) -> Attempt<A::Error> {
        let assuming = assumed.is_some();
        let known = match assumed {
            Some(known) => known,
            None => match self.stores.load(aggregate_id).await {
                Ok(known) => known,
                Err(error) => return Attempt::Failed(error),
            },
        };
        // `handle` applies each event it decides (cqrs-es's event sink), so `after` ends as
        // the state the command leaves.
        let mut after = known.aggregate.clone();
        let sink = EventSink::<A>::default();
        let decided = after.handle(command, &self.services, &sink).await;
        let events = sink.collect().await;
        match decided {
            Err(_) if assuming => return Attempt::Unverified,
            Err(error) => return Attempt::Failed(AggregateError::UserError(error)),
            Ok(()) if events.is_empty() && assuming => return Attempt::Unverified,
            Ok(()) if events.is_empty() => {
                self.remembered.put(aggregate_id, known);
                return Attempt::Done(None);
            }
            Ok(()) => {}
        }

        let sequence = known.sequence + events.len();
        let serialized = match serialize::<A>(aggregate_id, known.sequence, events, metadata) {
            Ok(serialized) => serialized,
            Err(error) => return Attempt::Failed(error.into()),
        };
        // A snapshot is due when the command's events reach a multiple of the interval;
        // it is the state after all of them, stored under the last one's sequence.
        let snapshot_due = self
            .snapshot_every
            .is_some_and(|every| sequence / every > known.sequence / every);
        let snapshot = if snapshot_due {
            match serde_json::to_value(&after) {
                Ok(payload) => Some((aggregate_id, payload)),
                Err(error) => return Attempt::Failed(error.into()),
            }
        } else {
            None
        };
        match self.stores.write(&serialized, snapshot).await {
            Ok(appended_at) => {
                self.remembered.put(
                    aggregate_id,
                    Known {
                        aggregate: after,
                        sequence,
                    },
                );
                Attempt::Done(appended_at)
            }
            Err(error) => {
                // A conflict means what was known is stale; any other failure may or may
                // not have written.
                self.remembered.forget(aggregate_id);
                match AggregateError::from(error) {
                    AggregateError::AggregateConflict if assuming => Attempt::Unverified,
                    error => Attempt::Failed(error),
                }
            }
        }
    }
}

/// The command's events as the log stores them, numbered after `last_sequence`, each with
/// the command's metadata.
fn serialize<A: Aggregate>(
    aggregate_id: &str,
    last_sequence: usize,
    events: Vec<A::Event>,
    metadata: &HashMap<String, String>,
) -> Result<Vec<SerializedEvent>, PersistenceError> {
    events
        .into_iter()
        .zip(last_sequence + 1..)
        .map(|(payload, sequence)| {
            let envelope = EventEnvelope::<A> {
                aggregate_id: aggregate_id.to_string(),
                sequence,
                payload,
                metadata: metadata.clone(),
            };
            SerializedEvent::try_from(&envelope)
        })
        .collect()
}
