//! The Inventory projection and its queries, on SQLite and a real PostgreSQL.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cartie_domain::listing::{
    DetailsPatch, Listing, ListingCommand, ListingDetails, ListingStatus, Patch, Photo, Photos,
};
use cartie_domain::values::{Currency, Fuel, Gearbox, Mileage, Money, Text, Year};
use cartie_domain::{Actor, Command, CommandContext, ListingId, UserId, WorkspaceId};
use cartie_projections::inventory::queries::{self, Cursor, ListingFilter, ListingSort};
use cartie_projections::inventory::{InventoryProjector, ListingRow, PriceRow, LISTING_COLUMNS};
use cartie_projections::{rebuild, ProjectionError, ProjectionRunner, Projector};
use cartie_store::testing::TestDatabase;
use cartie_store::{
    on_pool, Backend, CommandBus, Database, EventLog, LogNotifier, StoredEvent, Tx,
};
use chrono::Utc;
use uuid::Uuid;

cartie_store::on_both_backends!(
    filters_narrow_the_inventory_as_a_dealer_expects,
    pages_cover_every_listing_exactly_once_in_every_sort,
    a_listing_shows_its_price_history,
    the_projection_resumes_after_a_crash_without_applying_anything_twice,
    a_rebuild_yields_exactly_the_tables_of_incremental_projection,
    a_rebuild_puts_back_every_index_and_statistic_of_the_tables,
    a_failed_rebuild_leaves_the_tables_and_indexes_as_they_were,
    a_runner_whose_checkpoint_was_moved_goes_on_from_there,
    batches_without_a_projectors_events_are_passed_over_without_a_write,
);

struct Fixture {
    test: TestDatabase,
    bus: CommandBus<Listing>,
    workspace: WorkspaceId,
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let test = TestDatabase::new(backend).await;
        let bus = CommandBus::new(&test.db, LogNotifier::new(), ());
        Self {
            test,
            bus,
            workspace: WorkspaceId(Uuid::now_v7()),
        }
    }

    fn db(&self) -> &Database {
        &self.test.db
    }

    async fn send(&self, workspace: WorkspaceId, id: ListingId, body: ListingCommand) {
        let context = CommandContext::new(
            workspace,
            Actor::User(UserId(Uuid::from_u128(1))),
            Utc::now(),
        );
        self.bus
            .execute(&id.to_string(), Command::new(context, body))
            .await
            .expect("command accepted");
    }

    async fn add(&self, car: Car) -> ListingId {
        self.add_in(self.workspace, car).await
    }

    async fn add_in(&self, workspace: WorkspaceId, car: Car) -> ListingId {
        let id = ListingId::generate();
        let text = |s: &str| Some(Text::parse("t", s, 10_000).unwrap());
        let details = ListingDetails {
            description: car
                .description
                .map(|s| Text::parse_multiline("description", s, Text::LONG).unwrap()),
            brand: text(car.brand),
            model: text(car.model),
            year: Some(Year::parse("year", car.year, 2026).unwrap()),
            mileage_km: Some(Mileage::parse("mileageKm", car.mileage).unwrap()),
            fuel: Some(car.fuel),
            gearbox: Some(car.gearbox),
            city: text(car.city),
            ..ListingDetails::titled(Text::parse("title", car.title, 200).unwrap())
        };
        self.send(
            workspace,
            id,
            ListingCommand::CreateListing {
                details,
                price: car
                    .price
                    .map(|(amount, currency)| Money::price("price", amount, currency).unwrap()),
                photos: Photos::default(),
                status: if car.price.is_some() {
                    ListingStatus::Available
                } else {
                    ListingStatus::Draft
                },
            },
        )
        .await;
        id
    }

    /// Runs the projection until it has caught up with the log.
    async fn project(&self) {
        let runner = ProjectionRunner::new(
            self.db().clone(),
            Arc::new(InventoryProjector),
            LogNotifier::new(),
        );
        catch_up(&runner, self.db()).await;
    }

    async fn ids(&self, filter: ListingFilter) -> Vec<ListingId> {
        let page = queries::list(
            self.db(),
            self.workspace.0,
            &filter,
            ListingSort::PriceAsc,
            100,
            None,
        )
        .await
        .unwrap();
        assert_eq!(page.total_count as usize, page.rows.len());
        page.rows
            .into_iter()
            .map(|r| ListingId(r.listing_id))
            .collect()
    }
}

async fn catch_up(runner: &ProjectionRunner, db: &Database) {
    let total = EventLog::new(db.clone()).event_count().await.unwrap();
    let mut checkpoint = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // Every event of the log must lie at or before the runner's position (on PostgreSQL a
    // parallel test's open transaction may hold the horizon back for a moment).
    while events_through(db, runner.progress().position()).await < total {
        assert!(
            std::time::Instant::now() < deadline,
            "projection did not catch up"
        );
        if runner.step(&mut checkpoint).await.unwrap() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

async fn events_through(db: &Database, position: cartie_store::LogPosition) -> i64 {
    match db {
        Database::Sqlite(sqlite) => sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE global_position <= $1")
            .bind(position.global_position)
            .fetch_one(&sqlite.read)
            .await
            .unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE (transaction_id, global_position) <= ($1::text::xid8, $2)",
        )
        .bind(position.transaction_id.to_string())
        .bind(position.global_position)
        .fetch_one(pool)
        .await
        .unwrap(),
    }
}

#[derive(Clone, Copy)]
struct Car {
    title: &'static str,
    description: Option<&'static str>,
    brand: &'static str,
    model: &'static str,
    year: i32,
    mileage: i64,
    fuel: Fuel,
    gearbox: Gearbox,
    city: &'static str,
    price: Option<(i64, Currency)>,
}

const CAMRY: Car = Car {
    title: "Toyota Camry 2.5 Hybrid",
    description: Some("One owner, full service history"),
    brand: "Toyota",
    model: "Camry",
    year: 2019,
    mileage: 84_000,
    fuel: Fuel::Hybrid,
    gearbox: Gearbox::Automatic,
    city: "Київ",
    price: Some((2_150_000, Currency::USD)),
};

async fn filters_narrow_the_inventory_as_a_dealer_expects(backend: Backend) {
    let f = Fixture::new(backend).await;
    let camry = f.add(CAMRY).await;
    let old_camry = f
        .add(Car {
            title: "Toyota Camry 3.0",
            description: Some("Пробіг реальний, торг"),
            year: 2008,
            mileage: 260_000,
            fuel: Fuel::Petrol,
            price: Some((650_000, Currency::USD)),
            ..CAMRY
        })
        .await;
    let golf = f
        .add(Car {
            title: "VW Golf TDI",
            description: None,
            brand: "Volkswagen",
            model: "Golf",
            year: 2016,
            mileage: 150_000,
            fuel: Fuel::Diesel,
            gearbox: Gearbox::Manual,
            city: "Lviv",
            price: Some((1_100_000, Currency::EUR)),
        })
        .await;
    let draft = f
        .add(Car {
            title: "Draft Corolla",
            model: "Corolla",
            price: None,
            ..CAMRY
        })
        .await;
    // Another dealer's Toyota must never show up.
    f.add_in(WorkspaceId(Uuid::now_v7()), CAMRY).await;
    f.project().await;

    assert_eq!(f.ids(ListingFilter::default()).await.len(), 4);
    let toyota = ListingFilter {
        brand: Some("toyota".into()),
        ..Default::default()
    };
    assert_eq!(
        f.ids(toyota.clone()).await,
        [old_camry, camry, draft],
        "priced first, cheapest first, unpriced last"
    );
    assert_eq!(
        f.ids(ListingFilter {
            model: Some("CAMRY".into()),
            ..toyota.clone()
        })
        .await,
        [old_camry, camry]
    );
    assert_eq!(
        f.ids(ListingFilter {
            year_min: Some(2010),
            year_max: Some(2018),
            ..Default::default()
        })
        .await,
        [golf]
    );
    let usd_range = ListingFilter {
        price_currency: Some(Currency::USD),
        price_min: Some(1_000_000),
        price_max: Some(3_000_000),
        ..Default::default()
    };
    assert_eq!(
        f.ids(usd_range).await,
        [camry],
        "the EUR Golf is in range numerically but not in USD"
    );
    assert_eq!(
        f.ids(ListingFilter {
            price_currency: Some(Currency::EUR),
            ..Default::default()
        })
        .await,
        [golf]
    );
    assert_eq!(
        f.ids(ListingFilter {
            mileage_max: Some(100_000),
            ..Default::default()
        })
        .await,
        [camry, draft]
    );
    assert_eq!(
        f.ids(ListingFilter {
            statuses: vec![ListingStatus::Draft],
            ..Default::default()
        })
        .await,
        [draft]
    );
    assert_eq!(
        f.ids(ListingFilter {
            city: Some("київ".into()),
            ..Default::default()
        })
        .await,
        [old_camry, camry, draft]
    );
    assert_eq!(
        f.ids(ListingFilter {
            fuels: vec![Fuel::Diesel, Fuel::Petrol],
            ..Default::default()
        })
        .await,
        [old_camry, golf]
    );
    assert_eq!(
        f.ids(ListingFilter {
            gearboxes: vec![Gearbox::Manual],
            ..Default::default()
        })
        .await,
        [golf]
    );
    assert_eq!(
        f.ids(ListingFilter {
            text: Some("SERVICE history".into()),
            ..Default::default()
        })
        .await,
        [camry, draft]
    );
    assert_eq!(
        f.ids(ListingFilter {
            text: Some("торг".into()),
            ..Default::default()
        })
        .await,
        [old_camry],
        "Cyrillic search is case-insensitive"
    );
    assert_eq!(
        f.ids(ListingFilter {
            text: Some("ТОРГ".into()),
            ..Default::default()
        })
        .await,
        [old_camry]
    );
    assert!(
        f.ids(ListingFilter {
            text: Some("100%".into()),
            ..Default::default()
        })
        .await
        .is_empty(),
        "LIKE wildcards are literal"
    );
    assert!(
        f.ids(ListingFilter {
            text: Some("camry golf".into()),
            ..Default::default()
        })
        .await
        .is_empty(),
        "every word must match"
    );

    // Status and details changes flow through.
    f.send(
        f.workspace,
        golf,
        ListingCommand::ChangeListingStatus {
            status: ListingStatus::Sold,
        },
    )
    .await;
    let patch = DetailsPatch {
        city: Patch::Set(Text::parse("city", "Odesa", 100).unwrap()),
        ..Default::default()
    };
    f.send(
        f.workspace,
        camry,
        ListingCommand::UpdateListingDetails { patch },
    )
    .await;
    f.project().await;
    assert_eq!(
        f.ids(ListingFilter {
            statuses: vec![ListingStatus::Sold],
            ..Default::default()
        })
        .await,
        [golf]
    );
    assert_eq!(
        f.ids(ListingFilter {
            city: Some("odesa".into()),
            ..Default::default()
        })
        .await,
        [camry]
    );
    let row = queries::get(f.db(), f.workspace.0, camry.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.version, 2);
    assert_eq!(row.city.as_deref(), Some("Odesa"));
    assert!(
        queries::get(f.db(), Uuid::now_v7(), camry.0)
            .await
            .unwrap()
            .is_none(),
        "another workspace cannot read it"
    );
}

async fn pages_cover_every_listing_exactly_once_in_every_sort(backend: Backend) {
    let f = Fixture::new(backend).await;
    let mut all = Vec::new();
    for i in 0..23i64 {
        // Repeated prices and years, and some without a price, to exercise ties and NULLs.
        let price = if i % 5 == 4 {
            None
        } else {
            Some(((i % 4) * 100_000 + 500_000, Currency::USD))
        };
        let car = Car {
            year: 2000 + (i % 6) as i32,
            mileage: (i % 7) * 10_000,
            price,
            ..CAMRY
        };
        all.push(f.add(car).await);
    }
    f.project().await;
    all.sort();

    for sort in [
        ListingSort::Newest,
        ListingSort::Oldest,
        ListingSort::PriceAsc,
        ListingSort::PriceDesc,
        ListingSort::YearAsc,
        ListingSort::YearDesc,
        ListingSort::MileageAsc,
        ListingSort::MileageDesc,
    ] {
        let (mut seen, mut after, mut pages) = (Vec::<ListingRow>::new(), None, 0);
        loop {
            let page = queries::list(
                f.db(),
                f.workspace.0,
                &ListingFilter::default(),
                sort,
                5,
                after,
            )
            .await
            .unwrap();
            assert_eq!(page.total_count, 23);
            pages += 1;
            after = page.rows.last().map(|row| Cursor::after(sort, row));
            seen.extend(page.rows);
            if !page.has_next_page {
                break;
            }
        }
        assert_eq!(pages, 5, "{sort:?}");
        let mut ids: Vec<ListingId> = seen.iter().map(|r| ListingId(r.listing_id)).collect();
        ids.sort();
        assert_eq!(ids, all, "{sort:?}: every listing once");
        // The order is the one asked for, rows without a value last.
        let keys: Vec<Option<i64>> = seen
            .iter()
            .map(|r| match sort {
                ListingSort::Newest | ListingSort::Oldest => Some(r.created_position),
                ListingSort::PriceAsc | ListingSort::PriceDesc => r.price_minor,
                ListingSort::YearAsc | ListingSort::YearDesc => r.year.map(i64::from),
                ListingSort::MileageAsc | ListingSort::MileageDesc => r.mileage_km,
            })
            .collect();
        let ascending = matches!(
            sort,
            ListingSort::Oldest
                | ListingSort::PriceAsc
                | ListingSort::YearAsc
                | ListingSort::MileageAsc
        );
        for pair in keys.windows(2) {
            match (pair[0], pair[1]) {
                (Some(a), Some(b)) => assert!(
                    if ascending { a <= b } else { a >= b },
                    "{sort:?}: {keys:?}"
                ),
                (None, Some(_)) => {
                    panic!("{sort:?}: a row without a value came before one with: {keys:?}")
                }
                _ => {}
            }
        }
    }
    let cursor = Cursor::after(
        ListingSort::PriceAsc,
        &queries::get(f.db(), f.workspace.0, all[0].0)
            .await
            .unwrap()
            .unwrap(),
    );
    assert!(Cursor::decode(&cursor.encode(), ListingSort::PriceAsc).is_ok());
    assert!(Cursor::decode(&cursor.encode(), ListingSort::YearAsc).is_err());
    assert!(Cursor::decode("not-a-cursor", ListingSort::PriceAsc).is_err());
}

async fn a_listing_shows_its_price_history(backend: Backend) {
    let f = Fixture::new(backend).await;
    let id = f.add(CAMRY).await;
    for amount in [2_100_000, 1_990_000] {
        let price = Money::price("price", amount, Currency::USD).unwrap();
        f.send(
            f.workspace,
            id,
            ListingCommand::ChangeListingPrice { price },
        )
        .await;
    }
    let price = Money::price("price", 80_000_000, Currency::UAH).unwrap();
    f.send(
        f.workspace,
        id,
        ListingCommand::ChangeListingPrice { price },
    )
    .await;
    f.project().await;

    let history = queries::price_history(f.db(), f.workspace.0, id.0)
        .await
        .unwrap();
    let prices: Vec<(i64, &str)> = history
        .iter()
        .map(|p| (p.price_minor, p.price_currency.as_str()))
        .collect();
    assert_eq!(
        prices,
        [
            (2_150_000, "USD"),
            (2_100_000, "USD"),
            (1_990_000, "USD"),
            (80_000_000, "UAH")
        ]
    );
    assert!(history
        .windows(2)
        .all(|w| w[0].changed_at <= w[1].changed_at));
    let row = queries::get(f.db(), f.workspace.0, id.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.price_minor, row.price_currency.as_deref()),
        (Some(80_000_000), Some("UAH"))
    );
    assert!(queries::price_history(f.db(), Uuid::now_v7(), id.0)
        .await
        .unwrap()
        .is_empty());
}

/// Applies batches like the real projector, but fails after writing the `fail_on`-th batch,
/// as a process killed before its commit would.
struct CrashingProjector {
    batches: AtomicUsize,
    fail_on: usize,
}

#[async_trait::async_trait]
impl Projector for CrashingProjector {
    fn name(&self) -> &'static str {
        InventoryProjector::NAME
    }

    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        InventoryProjector.apply(tx, events).await?;
        if self.batches.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_on {
            return Err(ProjectionError::Database(sqlx::Error::PoolClosed));
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        InventoryProjector.reset(tx).await
    }
}

async fn busy_history(f: &Fixture) {
    for i in 0..10i64 {
        let id = f
            .add(Car {
                mileage: i * 1000,
                ..CAMRY
            })
            .await;
        for step in 1..=3 {
            let price =
                Money::price("price", 2_000_000 - step * 10_000 - i, Currency::USD).unwrap();
            f.send(
                f.workspace,
                id,
                ListingCommand::ChangeListingPrice { price },
            )
            .await;
        }
        let photo = Photo::url("photos[0]", &format!("https://cdn.example.com/{i}.jpg")).unwrap();
        let photos = Photos::parse("photos", vec![photo]).unwrap();
        f.send(f.workspace, id, ListingCommand::SetListingPhotos { photos })
            .await;
        if i % 3 == 0 {
            f.send(
                f.workspace,
                id,
                ListingCommand::ChangeListingStatus {
                    status: ListingStatus::Reserved,
                },
            )
            .await;
        }
    }
}

async fn dump(db: &Database) -> (Vec<ListingRow>, Vec<PriceRow>) {
    on_pool!(db, pool => {
        let listings = sqlx::query_as(&format!(
            "SELECT {LISTING_COLUMNS} FROM inventory_listings ORDER BY listing_id"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        let prices = sqlx::query_as(
            "SELECT listing_id, version, workspace_id, price_minor, price_currency, changed_at \
             FROM inventory_price_history ORDER BY listing_id, version",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        (listings, prices)
    })
}

async fn the_projection_resumes_after_a_crash_without_applying_anything_twice(backend: Backend) {
    let f = Fixture::new(backend).await;
    busy_history(&f).await;
    let total = EventLog::new(f.db().clone()).event_count().await.unwrap();
    assert_eq!(total, 54);
    // Every batch below is a full one once the whole log is readable.
    let log = EventLog::new(f.db().clone());
    wait_until_readable(&log, total).await;

    let crashing = Arc::new(CrashingProjector {
        batches: AtomicUsize::new(0),
        fail_on: 3,
    });
    let runner =
        ProjectionRunner::new(f.db().clone(), crashing, LogNotifier::new()).with_batch_size(7);
    let mut checkpoint = None;
    let mut applied = 0;
    let failure = loop {
        match runner.step(&mut checkpoint).await {
            Ok(n) => applied += n,
            Err(error) => break error,
        }
    };
    assert!(matches!(failure, ProjectionError::Database(_)));
    assert_eq!(applied, 14, "two batches committed before the crash");
    drop(runner);

    // A new process starts from the stored checkpoint.
    let restarted = ProjectionRunner::new(
        f.db().clone(),
        Arc::new(InventoryProjector),
        LogNotifier::new(),
    )
    .with_batch_size(7);
    let mut checkpoint = None;
    let mut resumed = 0;
    loop {
        let n = restarted.step(&mut checkpoint).await.unwrap();
        if n == 0 && applied + resumed >= total as usize {
            break;
        }
        resumed += n;
    }
    assert_eq!(
        applied + resumed,
        total as usize,
        "every event applied exactly once"
    );
    let (listings, prices) = dump(f.db()).await;
    assert_eq!(listings.len(), 10);
    assert_eq!(
        prices.len(),
        40,
        "one creation price and three changes per listing, none twice"
    );
    assert!(listings.iter().all(|row| row.photos.0.len() == 1));

    let incremental = dump(f.db()).await;
    rebuild(f.db(), &InventoryProjector, 1000, |_| {})
        .await
        .unwrap();
    assert_eq!(dump(f.db()).await, incremental);
}

async fn a_rebuild_yields_exactly_the_tables_of_incremental_projection(backend: Backend) {
    let f = Fixture::new(backend).await;
    busy_history(&f).await;
    // Incremental: small batches as events arrive, interleaved with writes.
    let runner = ProjectionRunner::new(
        f.db().clone(),
        Arc::new(InventoryProjector),
        LogNotifier::new(),
    )
    .with_batch_size(4);
    catch_up(&runner, f.db()).await;
    // Text a rebuild streams into PostgreSQL as it is: tabs, backslashes, new lines,
    // quotes, Cyrillic and an emoji.
    let octavia = f
        .add(Car {
            brand: "Skoda",
            model: "Octavia",
            description: Some("Tab\there, C:\\back\\slash\nnew \"line\" — Пробіг 🚗"),
            ..CAMRY
        })
        .await;
    catch_up(&runner, f.db()).await;
    let incremental = dump(f.db()).await;
    assert_eq!(incremental.0.len(), 11);
    let row = incremental.0.iter().find(|row| row.listing_id == octavia.0);
    assert_eq!(
        row.and_then(|row| row.description.as_deref()),
        Some("Tab\there, C:\\back\\slash\nnew \"line\" — Пробіг 🚗")
    );

    let mut reported = Vec::new();
    let position = rebuild(f.db(), &InventoryProjector, 10, |n| reported.push(n))
        .await
        .unwrap();
    assert_eq!(dump(f.db()).await, incremental);
    assert_eq!(reported.last().copied(), Some(55));
    assert_eq!(position, runner.progress().position());
}

/// The indexes, constraints, extended statistics, column statistics targets and storage
/// parameters of the Inventory's tables, as the database describes them (names and
/// definitions), plus any schema a rebuild left behind.
async fn catalog(db: &Database) -> Vec<(String, String)> {
    match db {
        Database::Sqlite(sqlite) => sqlx::query_as(
            "SELECT name, COALESCE(sql, '') FROM sqlite_master \
             WHERE tbl_name IN ('inventory_listings', 'inventory_price_history') ORDER BY name",
        )
        .fetch_all(&sqlite.read)
        .await
        .unwrap(),
        Database::Postgres(pool) => sqlx::query_as(
            "SELECT indexname::text, indexdef FROM pg_indexes \
             WHERE tablename IN ('inventory_listings', 'inventory_price_history') \
             UNION ALL SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid IN ('inventory_listings'::regclass, 'inventory_price_history'::regclass) \
             UNION ALL SELECT stxname::text, pg_get_statisticsobjdef(oid) FROM pg_statistic_ext \
             WHERE stxrelid = 'inventory_listings'::regclass \
             UNION ALL SELECT nspname::text, 'schema' FROM pg_namespace WHERE nspname LIKE 'rebuild%' \
             UNION ALL SELECT relname::text, 'options ' || array_to_string(reloptions, ', ') \
             FROM pg_class WHERE reloptions IS NOT NULL \
               AND oid IN ('inventory_listings'::regclass, 'inventory_price_history'::regclass) \
             UNION ALL SELECT attrelid::regclass || '.' || attname, 'statistics ' || attstattarget \
             FROM pg_attribute WHERE attstattarget >= 0 AND attnum > 0 \
               AND attrelid IN ('inventory_listings'::regclass, 'inventory_price_history'::regclass) \
             ORDER BY 1, 2",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

/// A rebuild fills the tables without their secondary indexes and builds them at the end
/// (on PostgreSQL in fresh tables swapped in): afterwards the tables have every index,
/// constraint and statistics object they had, under the same names, and queries use them.
async fn a_rebuild_puts_back_every_index_and_statistic_of_the_tables(backend: Backend) {
    let f = Fixture::new(backend).await;
    busy_history(&f).await;
    f.project().await;
    let before = catalog(f.db()).await;
    assert!(
        before
            .iter()
            .any(|(name, _)| name == "inventory_available_by_brand_and_price"),
        "the catalog lists the matching indexes: {before:?}"
    );
    if let Database::Postgres(_) = f.db() {
        assert!(
            before.iter().any(
                |(name, definition)| name == "inventory_listings.description"
                    && definition == "statistics 0"
            ),
            "the catalog lists the columns without planner statistics: {before:?}"
        );
    }
    let incremental = dump(f.db()).await;
    let writer_cache = |db: Database| async move {
        match db {
            Database::Sqlite(sqlite) => Some(
                sqlx::query_scalar::<_, i64>("PRAGMA cache_size")
                    .fetch_one(&sqlite.write)
                    .await
                    .unwrap(),
            ),
            Database::Postgres(_) => None,
        }
    };
    let cache_before = writer_cache(f.db().clone()).await;

    rebuild(f.db(), &InventoryProjector, 7, |_| {})
        .await
        .unwrap();
    assert_eq!(catalog(f.db()).await, before);
    assert_eq!(dump(f.db()).await, incremental);
    assert_eq!(
        writer_cache(f.db().clone()).await,
        cache_before,
        "the SQLite writer's page cache is back to its size"
    );
    if let Database::Postgres(pool) = f.db() {
        // The rebuilt tables come with the planner's statistics of their rows.
        let analysed: Vec<String> = sqlx::query_scalar(
            "SELECT tablename || '.' || attname FROM pg_stats \
             WHERE schemaname = current_schema() AND tablename LIKE 'inventory_%' \
               AND attname IN ('brand_key', 'listing_id') ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(
            analysed,
            [
                "inventory_listings.brand_key",
                "inventory_listings.listing_id",
                "inventory_price_history.listing_id"
            ]
            .map(String::from),
        );
        let dependencies: Option<String> = sqlx::query_scalar(
            "SELECT dependencies::text FROM pg_stats_ext \
             WHERE statistics_name = 'inventory_listings_model_within_brand'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert!(
            dependencies.is_some(),
            "the extended statistics were gathered"
        );
    }
    // A second rebuild goes the same way (nothing of the first is in its way).
    rebuild(f.db(), &InventoryProjector, 1000, |_| {})
        .await
        .unwrap();
    assert_eq!(catalog(f.db()).await, before);
    assert_eq!(dump(f.db()).await, incremental);

    let toyotas = f
        .ids(ListingFilter {
            brand: Some("toyota".into()),
            ..ListingFilter::default()
        })
        .await;
    assert_eq!(toyotas.len(), 10, "the filter still finds every Camry");
}

/// An event the projector cannot read stops the rebuild: everything rolls back, and the
/// tables keep their rows, indexes and checkpoint.
async fn a_failed_rebuild_leaves_the_tables_and_indexes_as_they_were(backend: Backend) {
    use cqrs_es::Aggregate;
    let f = Fixture::new(backend).await;
    busy_history(&f).await;
    f.project().await;
    let before = catalog(f.db()).await;
    let rows = dump(f.db()).await;
    let position = cartie_projections::checkpoint::load(f.db(), InventoryProjector::NAME)
        .await
        .unwrap();

    let broken = cqrs_es::persist::SerializedEvent {
        aggregate_id: ListingId::generate().to_string(),
        sequence: 1,
        aggregate_type: Listing::TYPE.to_string(),
        event_type: "ListingTeleported".to_string(),
        event_version: "1".to_string(),
        payload: serde_json::json!({ "ListingTeleported": { "to": "the Moon" } }),
        metadata: serde_json::json!({}),
    };
    cartie_store::append(f.db(), Listing::TYPE, &[broken])
        .await
        .unwrap();
    let total = EventLog::new(f.db().clone()).event_count().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let error = loop {
        // On PostgreSQL a parallel test may hold the horizon below the broken event.
        match rebuild(f.db(), &InventoryProjector, 5, |_| {}).await {
            Err(error) => break error,
            Ok(rebuilt) => {
                assert!(
                    events_through(f.db(), rebuilt).await < total,
                    "the broken event was applied"
                );
                assert!(
                    std::time::Instant::now() < deadline,
                    "the broken event never became readable"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    assert!(
        matches!(error, ProjectionError::Undecodable { ref event_type, .. } if event_type == "ListingTeleported"),
        "{error}"
    );
    assert_eq!(catalog(f.db()).await, before);
    assert_eq!(dump(f.db()).await, rows);
    let after = cartie_projections::checkpoint::load(f.db(), InventoryProjector::NAME)
        .await
        .unwrap();
    assert_eq!(after, position, "the checkpoint did not move");
    if let Database::Postgres(pool) = f.db() {
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(held, 0, "the failed rebuild let go of its lock");
    }
}

/// A rebuild (or another process) moved the checkpoint under a running runner: the runner
/// notices, goes on from the new checkpoint and applies only what lies after it.
async fn a_runner_whose_checkpoint_was_moved_goes_on_from_there(backend: Backend) {
    let f = Fixture::new(backend).await;
    f.add(CAMRY).await;
    let runner = ProjectionRunner::new(
        f.db().clone(),
        Arc::new(InventoryProjector),
        LogNotifier::new(),
    );
    let mut checkpoint = None;
    // The runner applies the first listing; then the log moves on and a rebuild takes the
    // checkpoint past the second one behind the runner's back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while runner.step(&mut checkpoint).await.unwrap() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first event never became readable"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let second = f
        .add(Car {
            brand: "Skoda",
            model: "Octavia",
            ..CAMRY
        })
        .await;
    // On PostgreSQL a parallel test may hold the horizon: rebuild until it covers both.
    let rebuilt = loop {
        let rebuilt = rebuild(f.db(), &InventoryProjector, 100, |_| {})
            .await
            .unwrap();
        if events_through(f.db(), rebuilt).await >= 2 {
            break rebuilt;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second event never became readable"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let third = f
        .add(Car {
            brand: "Kia",
            model: "Ceed",
            ..CAMRY
        })
        .await;

    let mut applied = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while events_through(f.db(), runner.progress().position()).await < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the runner did not go on"
        );
        applied += runner.step(&mut checkpoint).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(applied, 1, "only the event after the rebuilt checkpoint");
    assert!(runner.progress().position() > rebuilt);
    for id in [second, third] {
        assert!(queries::get(f.db(), f.workspace.0, id.0)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(dump(f.db()).await.1.len(), 3, "each creation price once");
}

/// A projector that, until told otherwise, has no interest in any event.
struct Picky {
    interested: std::sync::atomic::AtomicBool,
    applied: AtomicUsize,
}

#[async_trait::async_trait]
impl Projector for Picky {
    fn name(&self) -> &'static str {
        "picky"
    }

    fn handles(&self, _aggregate_type: &str) -> bool {
        self.interested.load(Ordering::SeqCst)
    }

    async fn apply(&self, _tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        self.applied.fetch_add(events.len(), Ordering::SeqCst);
        Ok(())
    }

    async fn reset(&self, _tx: &mut Tx) -> Result<(), ProjectionError> {
        Ok(())
    }
}

async fn batches_without_a_projectors_events_are_passed_over_without_a_write(backend: Backend) {
    let f = Fixture::new(backend).await;
    busy_history(&f).await;
    let log = EventLog::new(f.db().clone());
    let total = log.event_count().await.unwrap();
    wait_until_readable(&log, total).await;
    let picky = Arc::new(Picky {
        interested: std::sync::atomic::AtomicBool::new(false),
        applied: AtomicUsize::new(0),
    });
    let runner = ProjectionRunner::new(f.db().clone(), picky.clone(), LogNotifier::new())
        .with_batch_size(10);
    let progress = runner.progress();
    let mut checkpoint = None;
    let mut passed = 0;
    loop {
        let n = runner.step(&mut checkpoint).await.unwrap();
        if n == 0 {
            break;
        }
        passed += n;
    }
    assert_eq!(passed as i64, total);
    assert_eq!(picky.applied.load(Ordering::SeqCst), 0);
    // Progress moved (callers waiting for it are answered) but nothing was written.
    assert_eq!(progress.position(), log.head().await.unwrap());
    assert_eq!(
        cartie_projections::checkpoint::load(f.db(), "picky")
            .await
            .unwrap(),
        cartie_store::LogPosition::START
    );

    // The next batch with its events is applied and saves the checkpoint past everything.
    picky.interested.store(true, Ordering::SeqCst);
    f.add(CAMRY).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while picky.applied.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the runner never applied the new event"
        );
        if runner.step(&mut checkpoint).await.unwrap() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert_eq!(
        cartie_projections::checkpoint::load(f.db(), "picky")
            .await
            .unwrap(),
        progress.position()
    );
    assert!(progress.position() > cartie_store::LogPosition::START);
}

/// On PostgreSQL the reader sees an event once every older transaction of the cluster has
/// ended; transactions of tests running beside this one can hold a few back for a moment.
/// Waits until all `total` events are readable.
async fn wait_until_readable(log: &EventLog, total: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (log
        .read_after(cartie_store::LogPosition::START, 1_000)
        .await
        .unwrap()
        .len() as i64)
        < total
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the log never became readable"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// PostgreSQL rebuilds beside the live tables: one at a time per projection, a session
/// lock keeps a second one out, and it says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rebuild_of_a_projection_at_the_same_time_is_refused() {
    let f = Fixture::new(Backend::Postgres).await;
    busy_history(&f).await;
    f.project().await;
    let rows = dump(f.db()).await;
    let Database::Postgres(pool) = f.db() else {
        unreachable!()
    };
    // The lock a running rebuild of the Inventory holds.
    let mut running = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('cartie rebuild inventory', 0))")
        .execute(&mut *running)
        .await
        .unwrap();

    let error = rebuild(f.db(), &InventoryProjector, 100, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProjectionError::Rebuild(ref why) if why == "another rebuild of inventory is running"),
        "{error}"
    );
    assert_eq!(
        dump(f.db()).await,
        rows,
        "the refused rebuild changed nothing"
    );

    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut *running)
        .await
        .unwrap();
    rebuild(f.db(), &InventoryProjector, 100, |_| {})
        .await
        .unwrap();
    assert_eq!(dump(f.db()).await, rows);
}

/// A rebuild interrupted (the process killed) leaves its half-built tables in their schema;
/// the next one clears them away and rebuilds as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_clears_away_what_an_interrupted_one_left() {
    let f = Fixture::new(Backend::Postgres).await;
    busy_history(&f).await;
    f.project().await;
    let before = catalog(f.db()).await;
    let rows = dump(f.db()).await;
    let Database::Postgres(pool) = f.db() else {
        unreachable!()
    };
    for statement in [
        "CREATE SCHEMA rebuild_inventory",
        "CREATE TABLE rebuild_inventory.inventory_listings (LIKE public.inventory_listings)",
        "INSERT INTO rebuild_inventory.inventory_listings SELECT * FROM public.inventory_listings LIMIT 3",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }

    rebuild(f.db(), &InventoryProjector, 100, |_| {})
        .await
        .unwrap();
    assert_eq!(catalog(f.db()).await, before, "no schema left behind");
    assert_eq!(dump(f.db()).await, rows);
}

/// The Inventory's projector, which appends a listing of its own (a copy of `created` under
/// a new id) the first time it applies a batch: an event that lands while a rebuild fills.
struct AppendsWhileFilling {
    db: Database,
    created: StoredEvent,
    appended: std::sync::Mutex<Option<ListingId>>,
}

#[async_trait::async_trait]
impl Projector for AppendsWhileFilling {
    fn name(&self) -> &'static str {
        InventoryProjector.name()
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        InventoryProjector.aggregate_types()
    }

    fn tables(&self) -> &'static [&'static str] {
        InventoryProjector.tables()
    }

    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        if self.appended.lock().unwrap().is_none() {
            let id = ListingId::generate();
            let event = cqrs_es::persist::SerializedEvent {
                aggregate_id: id.to_string(),
                sequence: 1,
                aggregate_type: self.created.aggregate_type.clone(),
                event_type: self.created.event_type.clone(),
                event_version: self.created.event_version.clone(),
                payload: serde_json::from_str(&self.created.payload_json).unwrap(),
                metadata: serde_json::from_str(&self.created.metadata_json).unwrap(),
            };
            cartie_store::append(&self.db, &self.created.aggregate_type, &[event])
                .await
                .unwrap();
            *self.appended.lock().unwrap() = Some(id);
        }
        InventoryProjector.apply(tx, events).await
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        InventoryProjector.reset(tx).await
    }
}

/// PostgreSQL fills the rebuilt tables while the log goes on; what was appended meanwhile
/// is applied to them before they are swapped in, so the rebuild ends where the log is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_takes_in_what_was_appended_while_it_filled() {
    let f = Fixture::new(Backend::Postgres).await;
    busy_history(&f).await;
    let log = EventLog::new(f.db().clone());
    wait_until_readable(&log, log.event_count().await.unwrap()).await;
    let created = log
        .read_after(cartie_store::LogPosition::START, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(created.event_type, "ListingCreated");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let projector = AppendsWhileFilling {
            db: f.db().clone(),
            created: created.clone(),
            appended: std::sync::Mutex::new(None),
        };
        let position = rebuild(f.db(), &projector, 10, |_| {}).await.unwrap();
        let appended = projector.appended.lock().unwrap().expect("appended");
        let (listings, _) = dump(f.db()).await;
        let total = EventLog::new(f.db().clone()).event_count().await.unwrap();
        // The tables hold exactly the events up to the rebuild's position.
        assert_eq!(
            events_through(f.db(), position).await,
            listings.iter().map(|row| row.version).sum::<i64>(),
            "one event per version of each listing"
        );
        if listings.iter().any(|row| row.listing_id == appended.0) {
            assert_eq!(events_through(f.db(), position).await, total);
            break;
        }
        // A parallel test's open transaction held the horizon below the new event.
        assert!(
            std::time::Instant::now() < deadline,
            "the rebuild never took in the event appended while it filled"
        );
    }
}
