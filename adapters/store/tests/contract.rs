//! The event-store contract, run against SQLite and a real PostgreSQL.

use std::sync::Arc;

use cartie_domain::inbox::{ChatContact, Conversation, ConversationCommand, MessageContent};
use cartie_domain::listing::{
    Listing, ListingCommand, ListingDetails, ListingError, ListingEvent, ListingStatus, Photos,
};
use cartie_domain::values::{Currency, Money, Text};
use cartie_domain::{Actor, BotId, Command, CommandContext, ListingId, UserId, WorkspaceId};
use cartie_store::testing::TestDatabase;
use cartie_store::{
    on_pool, Backend, CommandBus, CommandError, Database, EventLog, EventParts, LogNotifier,
    LogPosition,
};
use chrono::Utc;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use serde_json::json;
use uuid::Uuid;

cartie_store::on_both_backends!(
    appended_events_load_back_with_their_metadata,
    a_conflicting_append_is_an_optimistic_lock_conflict,
    concurrent_commands_without_expected_version_all_land,
    concurrent_commands_with_an_expected_version_let_exactly_one_through,
    the_log_is_read_in_one_global_order_across_aggregates,
    the_database_refuses_to_update_or_delete_events,
    a_refused_command_writes_nothing,
    a_command_on_a_new_id_skips_the_load_but_not_the_truth,
    a_remembered_aggregate_changed_elsewhere_is_decided_on_the_log,
    a_snapshot_holds_the_state_its_command_left,
);

fn context(workspace: WorkspaceId) -> CommandContext {
    CommandContext::new(
        workspace,
        Actor::User(UserId(Uuid::from_u128(7))),
        Utc::now(),
    )
}

fn create(workspace: WorkspaceId, title: &str) -> Command<ListingCommand> {
    Command::new(
        context(workspace),
        ListingCommand::CreateListing {
            details: ListingDetails::titled(Text::parse("title", title, 200).unwrap()),
            price: None,
            photos: Photos::default(),
            status: ListingStatus::Draft,
        },
    )
}

fn change_price(workspace: WorkspaceId, amount: i64) -> Command<ListingCommand> {
    Command::new(
        context(workspace),
        ListingCommand::ChangeListingPrice {
            price: Money::price("price", amount, Currency::EUR).unwrap(),
        },
    )
}

/// Reads the whole log once `expected` events are readable. On PostgreSQL an event becomes
/// readable only when every older transaction in the cluster has finished, and tests run
/// in parallel, so readers wait as a projection would.
async fn read_all(db: &Database, expected: usize) -> Vec<cartie_store::StoredEvent> {
    let log = EventLog::new(db.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = log.read_after(LogPosition::START, 10_000).await.unwrap();
        if events.len() >= expected || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn bus(db: &Database) -> CommandBus<Listing> {
    CommandBus::new(db, LogNotifier::new(), ())
}

async fn appended_events_load_back_with_their_metadata(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let bus = bus(&test.db);
    let workspace = WorkspaceId(Uuid::now_v7());
    let id = ListingId::generate().to_string();
    let command = create(workspace, "Skoda Octavia");
    let correlation = command.context.correlation_id;

    let position = bus
        .execute(&id, command)
        .await
        .unwrap()
        .expect("a position");
    bus.execute(&id, change_price(workspace, 1_200_000))
        .await
        .unwrap();

    let events = read_all(&test.db, 2).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].position, position);
    assert_eq!(events[0].aggregate_type, "Listing");
    assert_eq!(events[0].aggregate_id, id);
    assert_eq!(events[0].sequence, 1);
    assert_eq!(events[1].sequence, 2);
    assert_eq!(events[0].event_type, "ListingCreated");
    assert_eq!(events[1].event_type, "ListingPriceChanged");
    let payload: serde_json::Value = events[0].payload().unwrap();
    assert_eq!(
        payload["ListingCreated"]["details"]["title"],
        "Skoda Octavia"
    );
    assert_eq!(events[0].workspace_id(), Some(workspace.0));
    let metadata = events[0].metadata().unwrap();
    assert_eq!(metadata["actor"], format!("user:{}", Uuid::from_u128(7)));
    assert_eq!(metadata["correlation_id"], correlation.to_string());
    assert_eq!(metadata["causation_id"], correlation.to_string());
    let first_id = events[0].event_id().expect("an event id");
    let second_id = events[1].event_id().expect("an event id");
    assert_ne!(first_id, second_id, "every event gets its own id");
    assert_eq!(first_id.get_version_num(), 7);
    assert!(events[0].recorded_at <= events[1].recorded_at);

    // A reader that does not look at metadata gets the same events without it.
    let without = EventLog::new(test.db.clone())
        .read_parts_after(LogPosition::START, 10, EventParts::WithoutMetadata)
        .await
        .unwrap();
    let blanked: Vec<_> = events
        .iter()
        .map(|event| cartie_store::StoredEvent {
            metadata_json: "{}".to_string(),
            ..event.clone()
        })
        .collect();
    assert_eq!(without, blanked);
    assert_eq!(without[0].workspace_id(), None);
}

async fn a_conflicting_append_is_an_optimistic_lock_conflict(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let event = SerializedEvent::new(
        "listing-1".into(),
        1,
        "Listing".into(),
        "ListingCreated".into(),
        "1".into(),
        json!({"anything": 1}),
        json!({}),
    );
    async fn persist_twice<R: PersistedEventRepository>(
        repo: R,
        event: SerializedEvent,
    ) -> Result<(), PersistenceError> {
        repo.persist::<Listing>(std::slice::from_ref(&event), None)
            .await
            .expect("first append");
        repo.persist::<Listing>(&[event], None).await
    }
    let second = match &test.db {
        Database::Sqlite(sqlite) => {
            persist_twice(
                sqlite_es::SqliteEventRepository::new(sqlite.write.clone()),
                event,
            )
            .await
        }
        Database::Postgres(pool) => {
            persist_twice(
                postgres_es::PostgresEventRepository::new(pool.clone()),
                event,
            )
            .await
        }
    };
    assert!(
        matches!(second, Err(PersistenceError::OptimisticLockError)),
        "expected an optimistic-lock conflict, got {second:?}"
    );
}

async fn concurrent_commands_without_expected_version_all_land(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let bus = Arc::new(bus(&test.db));
    let workspace = WorkspaceId(Uuid::now_v7());
    let id = ListingId::generate().to_string();
    bus.execute(&id, create(workspace, "Ford Focus"))
        .await
        .unwrap();

    let writers: Vec<_> = (1..=6)
        .map(|i| {
            let (bus, id) = (bus.clone(), id.clone());
            tokio::spawn(async move { bus.execute(&id, change_price(workspace, i * 100)).await })
        })
        .collect();
    for writer in writers {
        writer
            .await
            .unwrap()
            .expect("a concurrent write is retried, not lost");
    }
    let events = read_all(&test.db, 7).await;
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=7).collect::<Vec<_>>());
}

async fn concurrent_commands_with_an_expected_version_let_exactly_one_through(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let bus = Arc::new(bus(&test.db));
    let workspace = WorkspaceId(Uuid::now_v7());
    let id = ListingId::generate().to_string();
    bus.execute(&id, create(workspace, "Ford Focus"))
        .await
        .unwrap();

    let writers: Vec<_> = (1..=6)
        .map(|i| {
            let (bus, id) = (bus.clone(), id.clone());
            tokio::spawn(async move {
                bus.execute(
                    &id,
                    change_price(workspace, i * 100).expecting_version(Some(1)),
                )
                .await
            })
        })
        .collect();
    let mut succeeded = 0;
    for writer in writers {
        match writer.await.unwrap() {
            Ok(_) => succeeded += 1,
            Err(CommandError::Conflict)
            | Err(CommandError::Rejected(ListingError::VersionMismatch { .. })) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(succeeded, 1);
    assert_eq!(
        EventLog::new(test.db.clone()).event_count().await.unwrap(),
        2
    );
}

async fn the_log_is_read_in_one_global_order_across_aggregates(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let bus = bus(&test.db);
    let workspace = WorkspaceId(Uuid::now_v7());
    let ids: Vec<String> = (0..3).map(|_| ListingId::generate().to_string()).collect();
    let mut expected = Vec::new();
    for round in 0..3 {
        for id in &ids {
            let command = if round == 0 {
                create(workspace, "Car")
            } else {
                change_price(workspace, round * 1000)
            };
            bus.execute(id, command).await.unwrap();
            expected.push((id.clone(), round + 1));
        }
    }
    let log = EventLog::new(test.db.clone());
    let all = read_all(&test.db, 9).await;
    let order: Vec<(String, i64)> = all
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect();
    assert_eq!(
        order, expected,
        "the log is read in the order commands committed"
    );
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    assert!(all
        .windows(2)
        .all(|w| w[0].position.global_position < w[1].position.global_position));

    // Reading in small batches from a checkpoint yields the same sequence.
    let mut resumed = Vec::new();
    let mut checkpoint = LogPosition::START;
    loop {
        let batch = log.read_after(checkpoint, 2).await.unwrap();
        let Some(last) = batch.last() else { break };
        checkpoint = last.position;
        resumed.extend(batch);
    }
    assert_eq!(resumed, all);
    assert_eq!(log.head().await.unwrap(), all.last().unwrap().position);
    assert_eq!(log.count_after(all[4].position, 100).await.unwrap(), 4);
    assert_eq!(
        log.count_after(all[4].position, 3).await.unwrap(),
        3,
        "counting stops at the limit"
    );
}

async fn the_database_refuses_to_update_or_delete_events(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let bus = bus(&test.db);
    let id = ListingId::generate().to_string();
    bus.execute(&id, create(WorkspaceId(Uuid::now_v7()), "Audi A4"))
        .await
        .unwrap();

    for statement in [
        "UPDATE events SET payload = metadata",
        "UPDATE events SET event_type = 'Tampered'",
        "DELETE FROM events",
    ] {
        let result =
            on_pool!(&test.db, pool => sqlx::query(statement).execute(pool).await.map(|_| ()));
        let error = result.expect_err(statement).to_string();
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
    if backend == Backend::Postgres {
        let result = on_pool!(&test.db, pool => sqlx::query("TRUNCATE events").execute(pool).await.map(|_| ()));
        assert!(result
            .expect_err("TRUNCATE")
            .to_string()
            .contains("append-only"));
    }
    let events = read_all(&test.db, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "ListingCreated");
}

async fn a_refused_command_writes_nothing(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let bus = bus(&test.db);
    let id = ListingId::generate().to_string();
    let result = bus
        .execute(&id, change_price(WorkspaceId(Uuid::now_v7()), 1))
        .await;
    assert!(matches!(
        result,
        Err(CommandError::Rejected(ListingError::NotFound))
    ));
    assert_eq!(
        EventLog::new(test.db.clone()).event_count().await.unwrap(),
        0
    );
}

/// `execute_new` does not load the aggregate; used (wrongly) on an id that has events, the
/// append conflicts on the sequence and the retry decides on the loaded state.
async fn a_command_on_a_new_id_skips_the_load_but_not_the_truth(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let bus = bus(&test.db);
    let workspace = WorkspaceId(Uuid::now_v7());
    let id = ListingId::generate().to_string();
    let created = bus
        .execute_new(&id, create(workspace, "Skoda Octavia"))
        .await
        .unwrap();
    assert!(created.is_some(), "the creation is appended");

    // A bus that does not remember the listing (another process) decides on an empty
    // listing and conflicts; the retry loads the listing and decides again: a repeated
    // creation in the same workspace changes nothing, one from another workspace is refused.
    let other = bus_for(&test.db);
    let again = other
        .execute_new(&id, create(workspace, "Skoda Superb"))
        .await
        .unwrap();
    assert_eq!(
        again, created,
        "the repeat answers where the listing stands"
    );
    let foreign = bus_for(&test.db)
        .execute_new(&id, create(WorkspaceId(Uuid::now_v7()), "Skoda Kodiaq"))
        .await;
    assert!(
        matches!(
            foreign,
            Err(CommandError::Rejected(ListingError::AlreadyExists))
        ),
        "another workspace's creation on the id is refused: {foreign:?}"
    );
    let events = read_all(&test.db, 1).await;
    assert_eq!(events.len(), 1, "nothing more was written");
    assert!(events[0].payload_json.contains("Skoda Octavia"));
}

/// A transaction that took its position first but commits last must still be read: a
/// reader walking by position alone would have moved past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_reader_never_skips_an_event_whose_transaction_commits_late() {
    let test = TestDatabase::postgres().await;
    let Database::Postgres(pool) = &test.db else {
        unreachable!()
    };
    let insert = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                  event_version, payload, metadata) VALUES ('Test', $1, 1, 'Happened', '1', '{}', '{}')";

    let mut slow = pool.begin().await.unwrap();
    sqlx::query(insert)
        .bind("slow")
        .execute(&mut *slow)
        .await
        .unwrap();
    let mut fast = pool.begin().await.unwrap();
    sqlx::query(insert)
        .bind("fast")
        .execute(&mut *fast)
        .await
        .unwrap();
    fast.commit().await.unwrap();

    let log = EventLog::new(test.db.clone());
    let mut checkpoint = LogPosition::START;
    let visible_while_slow_is_open = log.read_after(checkpoint, 100).await.unwrap();
    assert!(
        visible_while_slow_is_open.is_empty(),
        "the fast event lies above the horizon of the open transaction and must wait: {visible_while_slow_is_open:?}"
    );
    if let Some(last) = visible_while_slow_is_open.last() {
        checkpoint = last.position;
    }

    slow.commit().await.unwrap();
    // Read on from the checkpoint as a projection would (other tests' transactions may
    // hold the horizon back for a moment).
    let mut after_commit = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while after_commit.len() < 2 && std::time::Instant::now() < deadline {
        let batch = log.read_after(checkpoint, 100).await.unwrap();
        if let Some(last) = batch.last() {
            checkpoint = last.position;
        }
        after_commit.extend(batch);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let ids: Vec<&str> = after_commit
        .iter()
        .map(|e| e.aggregate_id.as_str())
        .collect();
    assert_eq!(ids, ["slow", "fast"], "both events, in transaction order");
    assert!(after_commit[0].position.global_position < after_commit[1].position.global_position);
}

/// An append in one process wakes the readers of another through LISTEN/NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_in_one_process_wakes_readers_in_another_on_postgres() {
    let test = TestDatabase::postgres().await;
    let Database::Postgres(pool) = &test.db else {
        unreachable!()
    };
    let (writer, reader) = (LogNotifier::new(), LogNotifier::new());
    let publisher = writer.publish_postgres(pool.clone());
    let listener = reader.listen_postgres(pool.clone());
    let mut woken = reader.subscribe();
    // The listener wakes once when it connects; wait for that, then for the real one.
    tokio::time::timeout(std::time::Duration::from_secs(10), woken.changed())
        .await
        .expect("the listener connects")
        .unwrap();
    woken.mark_unchanged();

    let bus = CommandBus::<Listing>::new(&test.db, writer.clone(), ());
    bus.execute(
        &ListingId::generate().to_string(),
        create(WorkspaceId(Uuid::now_v7()), "Opel Astra"),
    )
    .await
    .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), woken.changed())
        .await
        .expect("the other process is woken within seconds")
        .unwrap();
    publisher.abort();
    listener.abort();
}

cartie_store::on_both_backends!(the_append_returns_positions_and_refuses_a_taken_sequence);

fn serialized(aggregate_id: &str, sequence: usize) -> SerializedEvent {
    SerializedEvent::new(
        aggregate_id.into(),
        sequence,
        "Test".into(),
        "Happened".into(),
        "1".into(),
        json!({ "n": sequence }),
        json!({}),
    )
}

async fn the_append_returns_positions_and_refuses_a_taken_sequence(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let first = cartie_store::append(&test.db, "Test", &[serialized("a", 1)])
        .await
        .unwrap()
        .expect("a position");
    // Several events of one command land together, in order, after the first.
    let last = cartie_store::append(
        &test.db,
        "Test",
        &[serialized("b", 1), serialized("b", 2), serialized("b", 3)],
    )
    .await
    .unwrap()
    .expect("a position");
    let events = read_all(&test.db, 4).await;
    let order: Vec<(&str, i64)> = events
        .iter()
        .map(|e| (e.aggregate_id.as_str(), e.sequence))
        .collect();
    assert_eq!(order, [("a", 1), ("b", 1), ("b", 2), ("b", 3)]);
    assert_eq!(events[0].position, first);
    assert_eq!(events[3].position, last);

    let taken =
        cartie_store::append(&test.db, "Test", &[serialized("b", 3), serialized("b", 4)]).await;
    assert!(
        matches!(taken, Err(PersistenceError::OptimisticLockError)),
        "{taken:?}"
    );
    assert_eq!(
        EventLog::new(test.db.clone()).event_count().await.unwrap(),
        4,
        "a refused append writes none of its events"
    );
}

#[tokio::test]
async fn an_empty_append_writes_nothing() {
    let test = TestDatabase::sqlite().await;
    assert_eq!(
        cartie_store::append(&test.db, "Test", &[]).await.unwrap(),
        None
    );
    assert_eq!(
        EventLog::new(test.db.clone()).event_count().await.unwrap(),
        0
    );
}

cartie_store::on_both_backends!(commands_with_snapshots_keep_one_order_and_report_positions);

/// With snapshots, some appends write the snapshot in the same transaction and the others
/// do not; the log stays in one order and every command reports where its event stands.
async fn commands_with_snapshots_keep_one_order_and_report_positions(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let bus = CommandBus::<Listing>::with_snapshots(&test.db, LogNotifier::new(), (), 2);
    let workspace = WorkspaceId(Uuid::now_v7());
    let id = ListingId::generate().to_string();
    let mut reported = vec![bus
        .execute(&id, create(workspace, "Mazda 6"))
        .await
        .unwrap()];
    for amount in 1..=4 {
        reported.push(
            bus.execute(&id, change_price(workspace, amount * 100))
                .await
                .unwrap(),
        );
    }
    // A bus without snapshots goes on from the same stream.
    let plain = bus_for(&test.db);
    reported.push(
        plain
            .execute(&id, change_price(workspace, 999))
            .await
            .unwrap(),
    );

    let events = read_all(&test.db, 6).await;
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=6).collect::<Vec<_>>());
    let positions: Vec<_> = events.iter().map(|e| Some(e.position)).collect();
    assert_eq!(
        reported, positions,
        "each command reported its own event's position"
    );
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
}

fn bus_for(db: &Database) -> CommandBus<Listing> {
    CommandBus::new(db, LogNotifier::new(), ())
}

/// Each bus remembers the aggregates it wrote. A second bus (another process, say) writing
/// to the same listing makes that stale: every decision must still be taken on what the
/// log holds — an append on a stale state conflicts and is decided again, and a refusal or
/// a no-op on a stale state is not trusted.
async fn a_remembered_aggregate_changed_elsewhere_is_decided_on_the_log(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let (here, elsewhere) = (bus(&test.db), bus(&test.db));
    let workspace = WorkspaceId(Uuid::now_v7());
    let id = ListingId::generate().to_string();
    here.execute(&id, create(workspace, "Audi A4"))
        .await
        .unwrap();
    here.execute(&id, change_price(workspace, 100))
        .await
        .unwrap();
    elsewhere
        .execute(&id, change_price(workspace, 200))
        .await
        .unwrap();

    // `here` remembers the price at 100: setting 100 again is no change for it, but the
    // log says 200, so it is a change.
    here.execute(&id, change_price(workspace, 100))
        .await
        .unwrap();
    // A change decided on a stale state takes a taken sequence; decided again, it lands.
    elsewhere
        .execute(&id, change_price(workspace, 300))
        .await
        .unwrap();
    here.execute(&id, change_price(workspace, 400))
        .await
        .unwrap();
    // A version the caller read from the log (7) is not the remembered one (6).
    elsewhere
        .execute(&id, change_price(workspace, 500))
        .await
        .unwrap();
    here.execute(&id, change_price(workspace, 600).expecting_version(Some(7)))
        .await
        .expect("the current version is accepted");
    // A version the caller and `here` both hold (8) passes on the remembered state, but
    // the log has moved on (9): the append finds it stale and the command is decided on
    // the log, which refuses it.
    elsewhere
        .execute(&id, change_price(workspace, 650))
        .await
        .unwrap();
    let stale = here
        .execute(&id, change_price(workspace, 700).expecting_version(Some(8)))
        .await;
    assert!(
        matches!(
            stale,
            Err(CommandError::Rejected(ListingError::VersionMismatch {
                expected: 8,
                actual: 9
            }))
        ),
        "{stale:?}"
    );
    // A refusal on a stale remembered state (10, the log at 11) is answered from the log.
    here.execute(&id, change_price(workspace, 750))
        .await
        .unwrap();
    elsewhere
        .execute(&id, change_price(workspace, 800))
        .await
        .unwrap();
    let refused = here
        .execute(&id, change_price(workspace, 900).expecting_version(Some(3)))
        .await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Rejected(ListingError::VersionMismatch {
                expected: 3,
                actual: 11
            }))
        ),
        "{refused:?}"
    );

    let events = read_all(&test.db, 11).await;
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=11).collect::<Vec<_>>());
    let prices: Vec<i64> = events[1..]
        .iter()
        .map(|e| match serde_json::from_str(&e.payload_json).unwrap() {
            ListingEvent::ListingPriceChanged { price, .. } => price.amount_minor,
            other => panic!("a price change, not {other:?}"),
        })
        .collect();
    assert_eq!(prices, [100, 200, 100, 300, 400, 500, 600, 650, 750, 800]);
}

/// The latest snapshot of an aggregate, as `(last_sequence, payload)`.
async fn latest_snapshot(db: &Database, aggregate_type: &str, id: &str) -> (i64, String) {
    let sql = match db.backend() {
        Backend::Sqlite => {
            "SELECT last_sequence, payload FROM snapshots WHERE aggregate_type = $1 \
             AND aggregate_id = $2 ORDER BY last_sequence DESC LIMIT 1"
        }
        Backend::Postgres => {
            "SELECT last_sequence, payload::text FROM snapshots WHERE aggregate_type = $1 \
             AND aggregate_id = $2 ORDER BY last_sequence DESC LIMIT 1"
        }
    };
    on_pool!(db, pool => sqlx::query_as::<_, (i64, String)>(sql)
        .bind(aggregate_type)
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("a snapshot was taken"))
}

/// The aggregate as its first `up_to` events in the log build it.
fn fold<A: cqrs_es::Aggregate>(events: &[cartie_store::StoredEvent], id: &str, up_to: i64) -> A {
    let mut aggregate = A::default();
    for event in events
        .iter()
        .filter(|e| e.aggregate_id == id && e.sequence <= up_to)
    {
        aggregate.apply(serde_json::from_str(&event.payload_json).unwrap());
    }
    aggregate
}

/// A snapshot is the state after the events up to its `last_sequence`, each applied once —
/// also when one command's events cross the point where a snapshot is due.
async fn a_snapshot_holds_the_state_its_command_left(backend: Backend) {
    let test = TestDatabase::new(backend).await;
    let workspace = WorkspaceId(Uuid::now_v7());

    // Snapshot every 2 events; after 5, the latest covers 4.
    let listings = CommandBus::<Listing>::with_snapshots(&test.db, LogNotifier::new(), (), 2);
    let listing = ListingId::generate().to_string();
    listings
        .execute(&listing, create(workspace, "Volvo XC60"))
        .await
        .unwrap();
    for amount in 1..=4 {
        listings
            .execute(&listing, change_price(workspace, amount * 1000))
            .await
            .unwrap();
    }
    // A message into a closed conversation is two events (reopened, received). Snapshots
    // every 2 events: the first message (started, received) takes one at 2, the closing
    // is 3, and the next message's events 4 and 5 cross the point at 4 — the snapshot must
    // hold both, under 5.
    let conversations =
        CommandBus::<Conversation>::with_snapshots(&test.db, LogNotifier::new(), (), 2);
    let conversation = Uuid::now_v7().to_string();
    conversations
        .execute(&conversation, receive(workspace, 1))
        .await
        .unwrap();
    conversations
        .execute(
            &conversation,
            Command::new(context(workspace), ConversationCommand::Close),
        )
        .await
        .unwrap();
    conversations
        .execute(&conversation, receive(workspace, 2))
        .await
        .unwrap();

    let events = read_all(&test.db, 10).await;
    let (last, payload) = latest_snapshot(&test.db, "Listing", &listing).await;
    assert_eq!(last, 4);
    assert_eq!(
        serde_json::from_str::<Listing>(&payload).unwrap(),
        fold::<Listing>(&events, &listing, last)
    );
    let (last, payload) = latest_snapshot(&test.db, "Conversation", &conversation).await;
    assert_eq!(last, 5);
    assert_eq!(
        serde_json::from_str::<Conversation>(&payload).unwrap(),
        fold::<Conversation>(&events, &conversation, last)
    );

    // A bus that remembers nothing loads from the snapshot and knows the last update.
    let fresh = CommandBus::<Conversation>::with_snapshots(&test.db, LogNotifier::new(), (), 2);
    fresh
        .execute(&conversation, receive(workspace, 2))
        .await
        .unwrap();
    assert_eq!(
        EventLog::new(test.db.clone()).event_count().await.unwrap(),
        10,
        "a repeated update changes nothing"
    );
}

fn receive(workspace: WorkspaceId, update_id: i64) -> Command<ConversationCommand> {
    Command::new(
        context(workspace),
        ConversationCommand::ReceiveInboundMessage {
            bot_id: BotId(Uuid::from_u128(0xB07)),
            chat_id: 42,
            contact: ChatContact {
                first_name: Some("Ivan".into()),
                last_name: None,
                username: None,
            },
            update_id,
            telegram_message_id: update_id * 10,
            content: MessageContent::text("text", "Is the Volvo still for sale?").unwrap(),
            sent_at: Utc::now(),
        },
    )
}
