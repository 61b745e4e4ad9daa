use std::sync::Arc;
use std::time::Duration;

use cartie_store::{Backend, Database, EventLog, LogNotifier, LogPosition, StoredEvent, Tx};
use tokio::sync::watch;

use crate::checkpoint;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// An event the projector cannot read: the runner stops at it rather than skip it.
    #[error(
        "event {aggregate_type}/{aggregate_id}#{sequence} ({event_type}) cannot be read: {reason}"
    )]
    Undecodable {
        aggregate_type: String,
        aggregate_id: String,
        sequence: i64,
        event_type: String,
        reason: String,
    },
    /// A rebuild could not run (another rebuild of the projection is running), or could
    /// not build the projector's tables beside the live ones or put them in place.
    #[error("rebuild: {0}")]
    Rebuild(String),
}

impl ProjectionError {
    pub fn undecodable(event: &StoredEvent, reason: impl ToString) -> Self {
        Self::Undecodable {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            reason: reason.to_string(),
        }
    }
}

/// What a projector's [`Projector::prepare_ahead`] function makes of a batch; the same
/// projector's [`Projector::apply_rebuilding`] knows its type.
pub type Prepared = Box<dyn std::any::Any + Send>;

/// Work on a batch ahead of its transaction (see [`Projector::prepare_ahead`]), for the
/// backend the transaction will be on: a plain function, so that a rebuild can run it on a
/// thread of its own.
pub type PrepareAhead = fn(&[StoredEvent], Backend) -> Result<Prepared, ProjectionError>;

/// Turns events into read-model rows. Implementations are deterministic and write only
/// their own tables, inside the transaction they are given; applying the same events to
/// the same rows twice must change nothing.
#[async_trait::async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Stable name: the key of the checkpoint.
    fn name(&self) -> &'static str;

    /// The aggregate types whose events concern the projector (`None`: all). The runner
    /// wakes only for appends of these, and passes over batches without them.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Whether events of this aggregate type concern the projector. A batch with none of
    /// them is passed over without a write (the checkpoint is saved now and then).
    fn handles(&self, aggregate_type: &str) -> bool {
        self.aggregate_types()
            .is_none_or(|types| types.contains(&aggregate_type))
    }

    /// Applies a batch of events (in log order; it may hold events of other aggregates).
    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError>;

    /// Empties the projector's tables, for a rebuild.
    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError>;

    /// For rebuilds: the work on a batch that needs no database: decoding payloads,
    /// (since a rebuild's tables hold none of the batch's events) applying the events of
    /// what the batch creates, and encoding the rows that makes for the backend's
    /// statements. A rebuild runs it on a batch, on another thread, while the
    /// batches before it are written, and hands what it answers to
    /// [`Projector::apply_rebuilding`]. `None` (the default): nothing to do ahead.
    fn prepare_ahead(&self) -> Option<PrepareAhead> {
        None
    }

    /// For rebuilds: applies a batch to tables that hold what this rebuild has applied so
    /// far and nothing else, so that no event of the batch is in them yet. `prepared` is
    /// what [`Projector::prepare_ahead`]'s function made of `events`. The default applies
    /// `events` as [`Projector::apply`] does.
    async fn apply_rebuilding(
        &self,
        tx: &mut Tx,
        events: &[StoredEvent],
        prepared: Option<Prepared>,
    ) -> Result<(), ProjectionError> {
        let _ = prepared;
        self.apply(tx, events).await
    }

    /// The tables the projector writes, all of which `reset` empties and nothing else
    /// writes. On PostgreSQL a rebuild fills fresh copies of them without their secondary
    /// indexes, builds those once at the end and swaps the copies in ([`crate::rebuild()`]);
    /// a projector that names none is rebuilt in place, its indexes maintained row by row.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Of [`Projector::tables`], those [`Projector::apply_rebuilding`] only inserts into: it
    /// neither reads them nor counts on their primary key or unique indexes to meet a
    /// conflict (an upsert). On PostgreSQL a rebuild builds those indexes with the others,
    /// once the copies are filled, instead of maintaining them row by row; a duplicate then
    /// fails the rebuild when the index is built rather than when the row is written.
    fn insert_only_tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether [`Projector::apply_rebuilding`] reads events' metadata
    /// ([`StoredEvent::metadata_json`]). A rebuild of a projector that does not reads the
    /// log without it (an empty object in its place).
    fn reads_metadata_when_rebuilding(&self) -> bool {
        true
    }
}

/// How far a projection has got, for callers that want to read their own writes.
#[derive(Debug, Clone)]
pub struct ProjectionProgress {
    name: &'static str,
    position: watch::Receiver<LogPosition>,
}

impl ProjectionProgress {
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn position(&self) -> LogPosition {
        *self.position.borrow()
    }

    /// Waits until the projection moves on from what this handle last saw. Answers false
    /// when the projection has stopped for good.
    pub async fn changed(&mut self) -> bool {
        self.position.changed().await.is_ok()
    }

    /// Waits until the projection has applied `target`, up to `timeout`. Answers whether it
    /// got there.
    pub async fn wait_for(&self, target: LogPosition, timeout: Duration) -> bool {
        let mut position = self.position.clone();
        let reached = tokio::time::timeout(timeout, position.wait_for(|at| *at >= target)).await;
        matches!(reached, Ok(Ok(_)))
    }
}

/// Feeds one projector the log, batch by batch, forever.
pub struct ProjectionRunner {
    db: Database,
    log: EventLog,
    projector: Arc<dyn Projector>,
    notifier: LogNotifier,
    batch_size: i64,
    poll_interval: Duration,
    progress: watch::Sender<LogPosition>,
    /// Events passed over (none of them the projector's) since the checkpoint was saved.
    passed_over: std::sync::atomic::AtomicUsize,
    /// The checkpoint as this runner last stored or read it (reading may be ahead of it
    /// after passing over events).
    saved: std::sync::Mutex<Option<LogPosition>>,
}

impl ProjectionRunner {
    /// Passed-over events after which the checkpoint is saved anyway, so a restart does not
    /// read them all again.
    const SAVE_AFTER_PASSED_OVER: usize = 10_000;

    pub const DEFAULT_BATCH: i64 = 1000;

    pub fn new(db: Database, projector: Arc<dyn Projector>, notifier: LogNotifier) -> Self {
        Self {
            log: EventLog::new(db.clone()),
            db,
            projector,
            notifier,
            batch_size: Self::DEFAULT_BATCH,
            poll_interval: Duration::from_millis(500),
            progress: watch::channel(LogPosition::START).0,
            passed_over: std::sync::atomic::AtomicUsize::new(0),
            saved: std::sync::Mutex::new(None),
        }
    }

    pub fn with_batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn progress(&self) -> ProjectionProgress {
        ProjectionProgress {
            name: self.projector.name(),
            position: self.progress.subscribe(),
        }
    }

    /// Runs until `shutdown` turns true. Errors are logged and retried with back-off; the
    /// checkpoint never moves past an event that was not applied.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let name = self.projector.name();
        let mut wake = self
            .notifier
            .subscribe_for(self.projector.aggregate_types());
        let mut checkpoint = None;
        let mut backoff = Duration::from_millis(100);
        tracing::info!(projection = name, "projection runner started");
        while !*shutdown.borrow() {
            // Taken before reading the log: an append made while the step runs leaves the
            // signal set, so the runner looks again at once instead of sleeping past it.
            wake.mark_unchanged();
            match self.step(&mut checkpoint).await {
                Ok(applied) => {
                    backoff = Duration::from_millis(100);
                    if applied > 0 {
                        continue;
                    }
                    tokio::select! {
                        _ = wake.changed() => {}
                        _ = tokio::time::sleep(self.poll_interval) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(error) => {
                    tracing::error!(projection = name, %error, retry_in = ?backoff, "projection failed; retrying");
                    checkpoint = None;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        tracing::info!(projection = name, "projection runner stopped");
    }

    fn set_saved(&self, position: LogPosition) {
        *self.saved.lock().expect("not poisoned") = Some(position);
    }

    /// Applies the next batch, if any; answers how many events it applied (or passed over).
    #[tracing::instrument(skip_all, fields(projection = self.projector.name()))]
    pub async fn step(&self, cached: &mut Option<LogPosition>) -> Result<usize, ProjectionError> {
        let name = self.projector.name();
        if cached.is_none() {
            checkpoint::ensure(&self.db, name).await?;
        }
        let (mut tx, events, last) = loop {
            let from = match *cached {
                Some(position) => position,
                None => {
                    let position = checkpoint::load(&self.db, name).await?;
                    self.progress.send_replace(position);
                    *cached = Some(position);
                    self.set_saved(position);
                    position
                }
            };
            let events = self.log.read_after(from, self.batch_size).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(0);
            };
            // Nothing here for this projector: move on without a transaction. Every runner
            // wakes for every append, so this keeps the other projections' commands from
            // paying for a checkpoint write of each projector.
            use std::sync::atomic::Ordering::Relaxed;
            let relevant = events
                .iter()
                .any(|e| self.projector.handles(&e.aggregate_type));
            if !relevant
                && self.passed_over.load(Relaxed) + events.len() < Self::SAVE_AFTER_PASSED_OVER
            {
                self.passed_over.fetch_add(events.len(), Relaxed);
                *cached = Some(last);
                self.progress.send_replace(last);
                return Ok(events.len());
            }
            let mut tx = self.db.begin_write().await?;
            let locked = checkpoint::lock(&mut tx, name).await?;
            let expected = self.saved.lock().expect("not poisoned").unwrap_or(from);
            if locked == expected {
                break (tx, events, last);
            }
            // Someone else (another process, a rebuild) moved the checkpoint: go on from
            // there at once.
            tx.rollback().await?;
            self.progress.send_replace(locked);
            *cached = Some(locked);
            self.set_saved(locked);
        };
        self.projector.apply(&mut tx, &events).await?;
        checkpoint::save(&mut tx, name, last).await?;
        tx.commit().await?;
        self.passed_over
            .store(0, std::sync::atomic::Ordering::Relaxed);
        self.set_saved(last);
        *cached = Some(last);
        self.progress.send_replace(last);
        tracing::debug!(events = events.len(), position = %last, "applied batch");
        Ok(events.len())
    }
}
