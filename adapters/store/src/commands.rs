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
use uuid::Uuid;

use crate::db::Database;
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
    /// Storage failed; nothing was written.
    #[error("event store failure: {0}")]
    Infrastructure(Box<dyn StdError + Send + Sync>),
}

/// Adds a unique, time-ordered `event_id` to each event's metadata. cqrs-es gives all
/// events of one command the same metadata; the id must be per event.
struct StampEventIds<R>(R);

impl<R: PersistedEventRepository> PersistedEventRepository for StampEventIds<R> {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.0.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.0
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.0.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let stamped: Vec<SerializedEvent> = events
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
            .collect();
        self.0.persist::<A>(&stamped, snapshot_update).await
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.0.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.0.stream_all_events::<A>().await
    }
}

type Framework<A, R> = CqrsFramework<A, PersistedEventStore<StampEventIds<R>, A>>;

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
        fn store<R: PersistedEventRepository, A: Aggregate>(
            repo: R,
            snapshot_every: Option<usize>,
        ) -> PersistedEventStore<StampEventIds<R>, A> {
            match snapshot_every {
                Some(size) => PersistedEventStore::new_snapshot_store(StampEventIds(repo), size),
                None => PersistedEventStore::new_event_store(StampEventIds(repo)),
            }
        }
        let framework = match db {
            Database::Sqlite(sqlite) => Frameworks::Sqlite(CqrsFramework::new(
                store(
                    SqliteEventRepository::new(sqlite.write.clone()),
                    snapshot_every,
                ),
                vec![],
                services,
            )),
            Database::Postgres(pool) => Frameworks::Postgres(CqrsFramework::new(
                store(PostgresEventRepository::new(pool.clone()), snapshot_every),
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
    #[tracing::instrument(skip(self, command), fields(aggregate = A::TYPE, %aggregate_id))]
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: Command<C>,
    ) -> Result<Option<LogPosition>, CommandError<A::Error>> {
        let metadata = command.context.metadata();
        let may_retry = command.expected_version.is_none();
        let mut attempt = 0;
        loop {
            let result = self
                .execute_once(aggregate_id, command.clone(), metadata.clone())
                .await;
            match result {
                Ok(()) => break,
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
        }
        self.notifier.appended();
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
