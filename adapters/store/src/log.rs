use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use serde::de::DeserializeOwned;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::Database;
use crate::on_pool;
use crate::position::LogPosition;

/// One event as stored in the log, with its place in global order. Payload and metadata
/// stay the JSON text they were stored as: a reader decodes straight into the type it
/// needs, without building a `serde_json::Value` first.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub position: LogPosition,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload_json: String,
    pub metadata_json: String,
    pub recorded_at: DateTime<Utc>,
}

/// A row of [`SQLITE_SELECT`] or [`POSTGRES_SELECT`], read by column position. A rebuild
/// decodes every event of the log: looking each column up by name and checking its type
/// against the field's took a third of that (the statements fix both).
impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for StoredEvent
where
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database>,
    String: sqlx::Decode<'r, R::Database>,
    DateTime<Utc>: sqlx::Decode<'r, R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            position: LogPosition {
                transaction_id: row.try_get_unchecked(0)?,
                global_position: row.try_get_unchecked(1)?,
            },
            aggregate_type: row.try_get_unchecked(2)?,
            aggregate_id: row.try_get_unchecked(3)?,
            sequence: row.try_get_unchecked(4)?,
            event_type: row.try_get_unchecked(5)?,
            event_version: row.try_get_unchecked(6)?,
            payload_json: row.try_get_unchecked(7)?,
            metadata_json: row.try_get_unchecked(8)?,
            recorded_at: row.try_get_unchecked(9)?,
        })
    }
}

impl StoredEvent {
    /// The payload decoded as `T` (for cqrs-es events, the aggregate's event enum).
    pub fn payload<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.payload_json)
    }

    /// The metadata: string keys and values (see `cartie_domain::context::metadata_keys`).
    pub fn metadata(&self) -> serde_json::Result<HashMap<String, String>> {
        serde_json::from_str(&self.metadata_json)
    }

    fn metadata_uuid(&self, key: &str) -> Option<Uuid> {
        self.metadata().ok()?.get(key)?.parse().ok()
    }

    pub fn event_id(&self) -> Option<Uuid> {
        self.metadata_uuid(cartie_domain::context::metadata_keys::EVENT_ID)
    }

    pub fn workspace_id(&self) -> Option<Uuid> {
        self.metadata_uuid(cartie_domain::context::metadata_keys::WORKSPACE_ID)
    }
}

/// The log's `SELECT` on SQLite, with `$metadata` as the metadata column. [`StoredEvent`] is
/// read by the position of these columns.
macro_rules! sqlite_select {
    ($metadata:literal) => {
        concat!(
            "SELECT 0 AS transaction_id, global_position, aggregate_type, aggregate_id, ",
            "sequence, event_type, event_version, payload, ",
            $metadata,
            " AS metadata, recorded_at FROM events"
        )
    };
}

const SQLITE_SELECT: &str = sqlite_select!("metadata");
/// An empty object for each event's metadata.
const SQLITE_SELECT_WITHOUT_METADATA: &str = sqlite_select!("'{}'");

/// Columns are qualified in WHERE and ORDER BY: the output alias `transaction_id` (a bigint
/// cast) would otherwise win in ORDER BY and force a sort instead of an index walk.
/// Events below the snapshot horizon: their transactions, and every older one, are done.
const BELOW_HORIZON: &str = "transaction_id < pg_snapshot_xmin(pg_current_snapshot())";

/// The log's `SELECT` on PostgreSQL, with `$metadata` as the metadata column (text).
/// [`StoredEvent`] is read by the position of these columns.
macro_rules! postgres_select {
    ($metadata:literal) => {
        concat!(
            "SELECT transaction_id::text::bigint AS transaction_id, global_position, ",
            "aggregate_type, aggregate_id, sequence, event_type, event_version, ",
            "payload::text AS payload, ",
            $metadata,
            " AS metadata, recorded_at FROM events"
        )
    };
}

const POSTGRES_SELECT: &str = postgres_select!("metadata::text");
/// An empty object for each event's metadata.
const POSTGRES_SELECT_WITHOUT_METADATA: &str = postgres_select!("'{}'::text");

/// What a reader of the log reads of each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventParts {
    /// Every column.
    All,
    /// Every column but the metadata, read as an empty object (`{}`). A rebuild of a
    /// projection that never looks at metadata reads a third less text.
    WithoutMetadata,
}

/// Reads the log in global order for projections and reactors.
///
/// On PostgreSQL a position is handed out when a row is inserted, not when its transaction
/// commits, so reading "everything after position N" could skip an event whose transaction
/// commits late. The reader therefore orders by `(transaction_id, global_position)` and only
/// returns events of transactions older than every transaction still running
/// (`pg_snapshot_xmin`): nothing can commit below that line any more.
#[derive(Debug, Clone)]
pub struct EventLog {
    db: Database,
}

impl EventLog {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Up to `limit` events after `after`, in log order.
    pub async fn read_after(
        &self,
        after: LogPosition,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        self.read_parts_after(after, limit, EventParts::All).await
    }

    /// Up to `limit` events after `after`, in log order, with the `parts` asked for.
    pub async fn read_parts_after(
        &self,
        after: LogPosition,
        limit: i64,
        parts: EventParts,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        match &self.db {
            Database::Sqlite(sqlite) => {
                let select = match parts {
                    EventParts::All => SQLITE_SELECT,
                    EventParts::WithoutMetadata => SQLITE_SELECT_WITHOUT_METADATA,
                };
                sqlx::query_as(&format!(
                    "{select} WHERE global_position > $1 ORDER BY global_position LIMIT $2"
                ))
                .bind(after.global_position)
                .bind(limit)
                .fetch_all(&sqlite.read)
                .await
            }
            Database::Postgres(pool) => {
                let select = match parts {
                    EventParts::All => POSTGRES_SELECT,
                    EventParts::WithoutMetadata => POSTGRES_SELECT_WITHOUT_METADATA,
                };
                sqlx::query_as(&format!(
                    "{select} \
                     WHERE (events.transaction_id, events.global_position) > ($1::text::xid8, $2) \
                       AND events.{BELOW_HORIZON} \
                     ORDER BY events.transaction_id, events.global_position LIMIT $3"
                ))
                .bind(after.transaction_id.to_string())
                .bind(after.global_position)
                .bind(limit)
                .fetch_all(pool)
                .await
            }
        }
    }

    /// Every event of one aggregate, in order (a lead's timeline, an audit).
    pub async fn events_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let filter = "WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence";
        match &self.db {
            Database::Sqlite(sqlite) => {
                sqlx::query_as(&format!("{SQLITE_SELECT} {filter}"))
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .fetch_all(&sqlite.read)
                    .await
            }
            Database::Postgres(pool) => {
                sqlx::query_as(&format!("{POSTGRES_SELECT} {filter}"))
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// The position of the last event a reader can see now.
    pub async fn head(&self) -> Result<LogPosition, sqlx::Error> {
        let sql = match &self.db {
            Database::Sqlite(_) => {
                "SELECT 0, COALESCE(MAX(global_position), 0) FROM events".to_string()
            }
            Database::Postgres(_) => format!(
                "SELECT transaction_id::text::bigint, global_position FROM events \
                 WHERE events.{BELOW_HORIZON} \
                 ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1"
            ),
        };
        let row: Option<(i64, i64)> =
            on_pool!(&self.db, pool => sqlx::query_as(&sql).fetch_optional(pool).await)?;
        Ok(row
            .map(|(xid, pos)| LogPosition::new(xid, pos))
            .unwrap_or(LogPosition::START))
    }

    /// How many readable events lie after `after`, counting at most `limit` (so that
    /// asking costs little however far behind a reader is).
    pub async fn count_after(&self, after: LogPosition, limit: i64) -> Result<i64, sqlx::Error> {
        match &self.db {
            Database::Sqlite(sqlite) => sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE global_position > $1 LIMIT $2)",
            )
            .bind(after.global_position)
            .bind(limit)
            .fetch_one(&sqlite.read)
            .await,
            Database::Postgres(pool) => {
                sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM events \
                     WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
                       AND {BELOW_HORIZON} LIMIT $3) AS lag"
                ))
                .bind(after.transaction_id.to_string())
                .bind(after.global_position)
                .bind(limit)
                .fetch_one(pool)
                .await
            }
        }
    }

    /// Where the newest event of one aggregate stands: what a caller waits for to read
    /// its own write.
    pub async fn latest_position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<LogPosition>, sqlx::Error> {
        let xid = match &self.db {
            Database::Sqlite(_) => "0",
            Database::Postgres(_) => "transaction_id::text::bigint",
        };
        let sql = format!(
            "SELECT {xid}, global_position FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1"
        );
        let row: Option<(i64, i64)> = on_pool!(&self.db, pool => {
            sqlx::query_as(&sql)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(xid, pos)| LogPosition::new(xid, pos)))
    }

    /// Total number of events in the log.
    pub async fn event_count(&self) -> Result<i64, sqlx::Error> {
        on_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM events").fetch_one(pool).await
        })
    }
}

/// Wakes readers when events were appended.
///
/// Commands of this process call [`LogNotifier::appended`], which wakes this process's
/// readers at once. On PostgreSQL, [`LogNotifier::publish_postgres`] passes the news on to
/// other processes with `NOTIFY cartie_events` (after commit, coalesced: at most one in
/// flight), and [`LogNotifier::listen_postgres`] turns their notifications into wake-ups
/// here. Readers still poll as a fallback, so a lost notification only delays them.
#[derive(Debug, Clone)]
pub struct LogNotifier {
    /// Appends made by this process: what the publisher tells other processes.
    appended: Arc<watch::Sender<u64>>,
    /// Anything readers should look at: local appends and notifications from elsewhere.
    wake: Arc<watch::Sender<u64>>,
    /// Notifications from other processes (or a reconnect): everyone looks.
    remote: Arc<watch::Sender<u64>>,
    /// Local appends by aggregate type, for readers that care about a few types only.
    typed: Arc<std::sync::Mutex<std::collections::HashMap<String, watch::Sender<u64>>>>,
    /// This process's mark on its notifications, so it does not wake itself twice.
    origin: Arc<str>,
}

/// What one reader waits on: local appends of its aggregate types (or of any, when it
/// named none) and notifications from other processes.
pub struct Wakeups {
    receivers: Vec<watch::Receiver<u64>>,
}

impl Wakeups {
    /// Forgets signals seen so far.
    pub fn mark_unchanged(&mut self) {
        for receiver in &mut self.receivers {
            receiver.mark_unchanged();
        }
    }

    /// Waits for the next signal.
    pub async fn changed(&mut self) {
        let waits = self
            .receivers
            .iter_mut()
            .map(|receiver| Box::pin(receiver.changed()));
        let _ = futures::future::select_all(waits).await;
    }
}

impl Default for LogNotifier {
    fn default() -> Self {
        Self::new()
    }
}

fn bump(sender: &watch::Sender<u64>) {
    sender.send_modify(|n| *n = n.wrapping_add(1));
}

impl LogNotifier {
    pub const CHANNEL: &'static str = "cartie_events";
    /// Shortest time between two notifications a process sends: bounds their cost under
    /// load and adds at most this much to another process's wake-up.
    pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(10);

    pub fn new() -> Self {
        Self {
            appended: Arc::new(watch::channel(0).0),
            wake: Arc::new(watch::channel(0).0),
            remote: Arc::new(watch::channel(0).0),
            typed: Arc::default(),
            origin: Uuid::now_v7().to_string().into(),
        }
    }

    /// This process appended events.
    pub fn appended(&self) {
        bump(&self.appended);
        bump(&self.wake);
        for sender in self.typed.lock().expect("not poisoned").values() {
            bump(sender);
        }
    }

    /// This process appended events of one aggregate type: wakes the readers of that type
    /// (and those of every type) only.
    pub fn appended_to(&self, aggregate_type: &str) {
        bump(&self.appended);
        bump(&self.wake);
        if let Some(sender) = self.typed.lock().expect("not poisoned").get(aggregate_type) {
            bump(sender);
        }
    }

    /// Readers should look at the log again (e.g. another process appended).
    pub fn wake(&self) {
        bump(&self.wake);
        bump(&self.remote);
    }

    /// What a reader of these aggregate types waits on (`None`: of every type).
    pub fn subscribe_for(&self, aggregate_types: Option<&[&str]>) -> Wakeups {
        let mut receivers = vec![self.remote.subscribe()];
        match aggregate_types {
            None => receivers.push(self.wake.subscribe()),
            Some(types) => {
                let mut typed = self.typed.lock().expect("not poisoned");
                for aggregate_type in types {
                    let sender = typed
                        .entry(aggregate_type.to_string())
                        .or_insert_with(|| watch::channel(0).0);
                    receivers.push(sender.subscribe());
                }
            }
        }
        Wakeups { receivers }
    }

    /// What readers wait on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Tells other processes about this process's appends until the task is aborted:
    /// at most one notification every [`Self::PUBLISH_INTERVAL`], appends made meanwhile
    /// being covered by the next one.
    pub fn publish_postgres(&self, pool: PgPool) -> tokio::task::JoinHandle<()> {
        let mut appended = self.appended.subscribe();
        let origin = self.origin.clone();
        tokio::spawn(async move {
            let mut connection = None;
            while appended.changed().await.is_ok() {
                appended.mark_unchanged();
                if let Err(error) = notify_postgres(&pool, &mut connection, &origin).await {
                    tracing::warn!(%error, "cannot NOTIFY other processes of new events");
                    connection = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                tokio::time::sleep(Self::PUBLISH_INTERVAL).await;
            }
        })
    }

    /// Relays PostgreSQL notifications until the returned task is aborted, reconnecting
    /// after a lost connection.
    pub fn listen_postgres(&self, pool: PgPool) -> tokio::task::JoinHandle<()> {
        let notifier = self.clone();
        tokio::spawn(async move {
            loop {
                // A one-connection pool of its own: the listener never takes a connection
                // from the application's pool.
                let own = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_lazy_with((*pool.connect_options()).clone());
                match PgListener::connect_with(&own).await {
                    Ok(mut listener) => {
                        if let Err(error) = listener.listen(Self::CHANNEL).await {
                            tracing::warn!(%error, "cannot LISTEN for new events");
                        } else {
                            // A reconnect may have missed notifications: wake readers once.
                            notifier.wake();
                            loop {
                                match listener.recv().await {
                                    // Its own notifications: its readers were woken already.
                                    Ok(n) if n.payload() == &*notifier.origin => {}
                                    Ok(_) => notifier.wake(),
                                    Err(error) => {
                                        tracing::warn!(%error, "lost the event notification connection");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot connect to LISTEN for new events"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }
}

/// Sends one notification on the publisher's own connection, on which commits do not wait
/// for a WAL flush (a wake-up need not be durable). The connection is opened apart from the
/// pool and never returned to it: appends must never run with that setting.
async fn notify_postgres(
    pool: &PgPool,
    connection: &mut Option<PgConnection>,
    origin: &str,
) -> Result<(), sqlx::Error> {
    let conn = match connection {
        Some(conn) => conn,
        None => {
            let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
            sqlx::query("SET synchronous_commit TO OFF")
                .execute(&mut conn)
                .await?;
            connection.insert(conn)
        }
    };
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(LogNotifier::CHANNEL)
        .bind(origin)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
