use std::collections::{HashMap, HashSet};

use cartie_domain::listing::{Listing, ListingDetails, ListingEvent};
use cartie_domain::values::Money;
use cartie_store::{on_tx, Backend, StoredEvent, Tx};
use cqrs_es::Aggregate;
use sqlx::error::BoxDynError;
use sqlx::sqlite::SqliteArguments;
use sqlx::types::Json;
use sqlx::{Arguments, QueryBuilder};
use uuid::Uuid;

use super::{listing_columns, ListingRow, PriceRow, LISTING_COLUMNS};
use crate::copy::CopyRows;
use crate::runner::{PrepareAhead, Prepared, ProjectionError, Projector};

/// Rows per multi-row statement on SQLite: well under its bind limit (27 columns × 500 rows
/// = 13,500 parameters). PostgreSQL takes a batch's rows in one statement, as arrays.
const ROWS_PER_STATEMENT: usize = 500;

/// SQLite's insert of new rows. A multi-row `INSERT` that may stop at a constraint makes
/// SQLite keep a statement journal, a copy of every page the statement changes, to undo the
/// statement alone; `OR FAIL` keeps the rows before the failing one instead. A failed write
/// fails its whole transaction here, so nothing is kept either way, and the journal was
/// ~15 % of the writer's time in a rebuild (ADR 0024).
const SQLITE_INSERT: &str = "INSERT OR FAIL INTO";

/// Projects listing events into `inventory_listings` and `inventory_price_history`.
///
/// A batch is folded in memory: the rows it touches are loaded once, every event is applied
/// to them in order, and the changed rows are written back: new rows and prices with a
/// plain insert, stored rows with an upsert, one statement each (on SQLite one per few
/// hundred rows). That keeps a rebuild fast, where a round trip per event would dominate.
#[derive(Debug, Default, Clone, Copy)]
pub struct InventoryProjector;

impl InventoryProjector {
    pub const NAME: &'static str = "inventory";
}

#[async_trait::async_trait]
impl Projector for InventoryProjector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Listing::TYPE])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["inventory_listings", "inventory_price_history"]
    }

    /// A rebuild reads listing rows back (a listing whose events span batches) and replaces
    /// them; price rows it only inserts.
    fn insert_only_tables(&self) -> &'static [&'static str] {
        &["inventory_price_history"]
    }

    /// The workspace, the time and the version come from the payload, the log position
    /// and the sequence.
    fn reads_metadata_when_rebuilding(&self) -> bool {
        false
    }

    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        let folded = Folded::nothing(decode(events)?);
        apply_folded(tx, events, folded, Write::Insert).await
    }

    fn prepare_ahead(&self) -> Option<PrepareAhead> {
        Some(|events, backend| Ok(Box::new(Folded::ahead(events, backend)?)))
    }

    async fn apply_rebuilding(
        &self,
        tx: &mut Tx,
        events: &[StoredEvent],
        prepared: Option<Prepared>,
    ) -> Result<(), ProjectionError> {
        let folded = match prepared.map(|p| p.downcast::<Folded>()) {
            Some(Ok(folded)) => *folded,
            Some(Err(_)) => {
                return Err(ProjectionError::Rebuild(
                    "the inventory was handed a batch it did not prepare".to_string(),
                ))
            }
            None => Folded::ahead(events, tx.backend())?,
        };
        apply_folded(tx, events, folded, Write::Stream).await
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        on_tx!(tx, conn => {
            sqlx::query("DELETE FROM inventory_price_history").execute(&mut *conn).await?;
            sqlx::query("DELETE FROM inventory_listings").execute(&mut *conn).await?;
        });
        Ok(())
    }
}

/// A listing event of a batch, decoded.
struct Decoded {
    listing_id: Uuid,
    /// Where the event is in the batch.
    index: usize,
    event: ListingEvent,
}

/// Decodes a batch's listing events (passing over the others).
fn decode(events: &[StoredEvent]) -> Result<Vec<Decoded>, ProjectionError> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.aggregate_type == Listing::TYPE)
        .map(|(index, event)| {
            Ok(Decoded {
                listing_id: event
                    .aggregate_id
                    .parse()
                    .map_err(|e| ProjectionError::undecodable(event, e))?,
                index,
                event: event
                    .payload()
                    .map_err(|e| ProjectionError::undecodable(event, e))?,
            })
        })
        .collect()
}

/// A batch, folded as far as it can be without reading the tables.
#[derive(Default)]
struct Folded {
    /// The rows of listings whose first event in the batch creates them, with all of their
    /// events in the batch applied: new rows, unless the tables held them already.
    created: Vec<ListingRow>,
    /// The prices those rows had.
    prices: Vec<PriceRow>,
    /// The events of the other listings, to apply to their stored rows.
    rest: Vec<Decoded>,
    /// For a rebuild: `created` and `prices`, encoded for the backend's statements (and
    /// then left empty) while the previous batch is being written.
    encoded: Option<Encoded>,
}

impl Folded {
    /// Nothing folded: every row the batch touches is read first, and events already
    /// applied to it change nothing.
    fn nothing(decoded: Vec<Decoded>) -> Self {
        Self {
            rest: decoded,
            ..Self::default()
        }
    }

    /// For a rebuild, whose tables hold what came before the batch and nothing of it: a
    /// listing the batch creates has no row yet, so its events are applied here, on another
    /// thread than the one writing the previous batch.
    fn ahead(events: &[StoredEvent], backend: Backend) -> Result<Self, ProjectionError> {
        let mut created_here: HashMap<Uuid, bool> = HashMap::new();
        let mut rows: HashMap<Uuid, Option<ListingRow>> = HashMap::new();
        let mut folded = Self::default();
        for d in decode(events)? {
            let created = *created_here
                .entry(d.listing_id)
                .or_insert_with(|| matches!(d.event, ListingEvent::ListingCreated { .. }));
            if created {
                let row = rows.entry(d.listing_id).or_insert(None);
                fold(
                    row,
                    d.listing_id,
                    &events[d.index],
                    d.event,
                    &mut folded.prices,
                );
            } else {
                folded.rest.push(d);
            }
        }
        let mut created: Vec<ListingRow> = rows.into_values().flatten().collect();
        put_in_write_order(&mut created, &mut folded.prices);
        let prices = std::mem::take(&mut folded.prices);
        folded.encoded = Some(Encoded::new(backend, created, prices).map_err(sqlx::Error::Encode)?);
        Ok(folded)
    }
}

/// Applies the rest of a folded batch to the stored rows it touches, and writes what
/// changed: new rows and prices as `insert` says, stored rows replaced.
async fn apply_folded(
    tx: &mut Tx,
    events: &[StoredEvent],
    folded: Folded,
    insert: Write,
) -> Result<(), ProjectionError> {
    let Folded {
        mut created,
        mut prices,
        rest,
        encoded,
    } = folded;
    if let Some(encoded) = encoded {
        encoded.write(tx).await?;
    }
    let ids: Vec<Uuid> = rest
        .iter()
        .map(|d| d.listing_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut rows = load_rows(tx, &ids).await?;
    let in_table: HashSet<Uuid> = rows.keys().copied().collect();
    let mut changed = HashSet::new();
    for Decoded {
        listing_id,
        index,
        event,
    } in rest
    {
        let row = rows.entry(listing_id).or_insert(None);
        if fold(row, listing_id, &events[index], event, &mut prices) {
            changed.insert(listing_id);
        }
    }
    // A row the tables did not hold is inserted; a stored one replaced. Runners of the
    // projection take turns (they hold its checkpoint), so no other can insert it
    // meanwhile.
    let mut updated = Vec::new();
    for row in rows
        .into_iter()
        .filter(|(id, _)| changed.contains(id))
        .filter_map(|(_, row)| row)
    {
        if in_table.contains(&row.listing_id) {
            updated.push(row);
        } else {
            created.push(row);
        }
    }
    put_in_write_order(&mut created, &mut prices);
    write_rows(tx, created, insert).await?;
    write_rows(tx, updated, Write::Replace).await?;
    insert_prices(tx, prices, insert).await?;
    Ok(())
}

/// New rows in log order, prices in key order: rows, and entries of the indexes that
/// follow creation (the primary keys' time-ordered ids, recency), are appended at the end
/// of their B-trees, and a PostgreSQL index build over them finds its input sorted.
fn put_in_write_order(created: &mut [ListingRow], prices: &mut [PriceRow]) {
    created.sort_unstable_by_key(|row| row.created_position);
    prices.sort_unstable_by_key(|price| (price.listing_id, price.version));
}

/// Applies one event to the row of its listing. Answers whether the row changed. Events at
/// or below the row's version were applied already and change nothing.
fn fold(
    row: &mut Option<ListingRow>,
    listing_id: Uuid,
    stored: &StoredEvent,
    event: ListingEvent,
    prices: &mut Vec<PriceRow>,
) -> bool {
    let at = stored.recorded_at;
    if let ListingEvent::ListingCreated {
        workspace_id,
        details,
        price,
        photos,
        status,
    } = event
    {
        if row.is_some() {
            return false;
        }
        let mut created = ListingRow {
            listing_id,
            workspace_id: workspace_id.0,
            version: stored.sequence,
            status: status.as_str().to_string(),
            title: String::new(),
            description: None,
            brand: None,
            model: None,
            year: None,
            mileage_km: None,
            fuel: None,
            gearbox: None,
            engine_volume_cc: None,
            body: None,
            colour: None,
            vin: None,
            city: None,
            price_minor: None,
            price_currency: None,
            photos: Json(photos.as_slice().to_vec()),
            brand_key: None,
            model_key: None,
            city_key: None,
            search_text: String::new(),
            created_position: stored.position.global_position,
            created_at: at,
            updated_at: at,
        };
        set_details(&mut created, &details);
        if let Some(price) = price {
            set_price(&mut created, price, prices, at);
        }
        *row = Some(created);
        return true;
    }

    let Some(current) = row.as_mut() else {
        tracing::warn!(%listing_id, sequence = stored.sequence, "event for a listing that was never created; ignored");
        return false;
    };
    if stored.sequence <= current.version {
        return false;
    }
    current.version = stored.sequence;
    current.updated_at = at;
    match event {
        ListingEvent::ListingCreated { .. } => unreachable!("handled above"),
        ListingEvent::ListingDetailsUpdated { details } => set_details(current, &details),
        ListingEvent::ListingPriceChanged { price, .. } => set_price(current, price, prices, at),
        ListingEvent::ListingStatusChanged { to, .. } => current.status = to.as_str().to_string(),
        ListingEvent::ListingPhotosSet { photos } => {
            current.photos = Json(photos.as_slice().to_vec())
        }
    }
    true
}

fn set_details(row: &mut ListingRow, details: &ListingDetails) {
    let text = |t: &Option<cartie_domain::values::Text>| t.as_ref().map(|t| t.as_str().to_string());
    row.title = details.title.as_str().to_string();
    row.description = text(&details.description);
    row.brand = text(&details.brand);
    row.model = text(&details.model);
    row.year = details.year.map(|y| y.value());
    row.mileage_km = details.mileage_km.map(|m| m.km());
    row.fuel = details.fuel.map(|f| f.as_str().to_string());
    row.gearbox = details.gearbox.map(|g| g.as_str().to_string());
    row.engine_volume_cc = details.engine_volume_cc.map(|e| e.cc() as i32);
    row.body = details.body.map(|b| b.as_str().to_string());
    row.colour = text(&details.colour);
    row.vin = details.vin.as_ref().map(|v| v.as_str().to_string());
    row.city = text(&details.city);
    row.brand_key = row.brand.as_deref().map(str::to_lowercase);
    row.model_key = row.model.as_deref().map(str::to_lowercase);
    row.city_key = row.city.as_deref().map(str::to_lowercase);
    row.search_text = match &row.description {
        Some(description) => format!("{}\n{}", row.title, description).to_lowercase(),
        None => row.title.to_lowercase(),
    };
}

fn set_price(
    row: &mut ListingRow,
    price: Money,
    prices: &mut Vec<PriceRow>,
    at: chrono::DateTime<chrono::Utc>,
) {
    row.price_minor = Some(price.amount_minor);
    row.price_currency = Some(price.currency.code().to_string());
    prices.push(PriceRow {
        listing_id: row.listing_id,
        version: row.version,
        workspace_id: row.workspace_id,
        price_minor: price.amount_minor,
        price_currency: price.currency.code().to_string(),
        changed_at: at,
    });
}

async fn load_rows(
    tx: &mut Tx,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Option<ListingRow>>, sqlx::Error> {
    let mut rows: HashMap<Uuid, Option<ListingRow>> = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(rows);
    }
    let found: Vec<ListingRow> = match tx {
        // One array parameter, whatever the number of ids.
        Tx::Postgres(conn) => {
            sqlx::query_as(&format!(
                "SELECT {LISTING_COLUMNS} FROM inventory_listings WHERE listing_id = ANY($1)"
            ))
            .bind(ids)
            .fetch_all(&mut **conn)
            .await?
        }
        Tx::Sqlite(conn) => {
            let mut found = Vec::new();
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::<sqlx::Sqlite>::new(format!(
                    "SELECT {LISTING_COLUMNS} FROM inventory_listings WHERE listing_id IN ("
                ));
                let mut ids = query.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                query.push(")");
                found.extend(query.build_query_as().fetch_all(&mut **conn).await?);
            }
            found
        }
    };
    rows.extend(found.into_iter().map(|row| (row.listing_id, Some(row))));
    Ok(rows)
}

/// How [`write_rows`] and [`insert_prices`] write their rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// New rows: a plain insert.
    Insert,
    /// Many new rows: on PostgreSQL a binary `COPY`, which costs the server a third of an
    /// insert of the same rows from arrays but takes a round trip more; elsewhere an insert.
    Stream,
    /// Stored rows: an upsert replacing every column but the ones set at creation.
    Replace,
}

impl Write {
    /// The statement's tail.
    fn on_conflict(self) -> String {
        match self {
            Write::Insert | Write::Stream => String::new(),
            Write::Replace => {
                let updates = LISTING_COLUMNS
                    .split(", ")
                    .filter(|c| {
                        !matches!(
                            *c,
                            "listing_id" | "workspace_id" | "created_position" | "created_at"
                        )
                    })
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(" ON CONFLICT (listing_id) DO UPDATE SET {updates}")
            }
        }
    }
}

/// The new rows and prices of a batch, encoded for their backend's statements: what a
/// rebuild prepares ahead of its transaction.
enum Encoded {
    /// SQLite: multi-row inserts.
    Sqlite(Vec<SqliteInsert>),
    /// PostgreSQL: binary `COPY` payloads, each with the table and columns it fills.
    Postgres(Vec<(CopyRows, &'static str)>),
}

impl Encoded {
    /// New rows and prices as a rebuild writes them: on PostgreSQL streamed in.
    fn new(
        backend: Backend,
        created: Vec<ListingRow>,
        prices: Vec<PriceRow>,
    ) -> Result<Self, BoxDynError> {
        Ok(match backend {
            Backend::Sqlite => {
                let mut inserts = sqlite_listing_inserts(created, Write::Stream)?;
                inserts.extend(sqlite_price_inserts(prices)?);
                Encoded::Sqlite(inserts)
            }
            Backend::Postgres => {
                let mut copies = Vec::new();
                if !created.is_empty() {
                    copies.push((copy_listings(&created)?, LISTINGS_TARGET));
                }
                if !prices.is_empty() {
                    copies.push((copy_prices(&prices)?, PRICES_TARGET));
                }
                Encoded::Postgres(copies)
            }
        })
    }

    async fn write(self, tx: &mut Tx) -> Result<(), ProjectionError> {
        match (self, tx) {
            (Encoded::Sqlite(inserts), Tx::Sqlite(conn)) => {
                for insert in inserts {
                    insert.execute(conn).await?;
                }
            }
            (Encoded::Postgres(copies), Tx::Postgres(conn)) => {
                for (copy, target) in copies {
                    copy.send(conn, target).await?;
                }
            }
            _ => {
                return Err(ProjectionError::Rebuild(
                    "a batch was prepared for another database".to_string(),
                ))
            }
        }
        Ok(())
    }
}

/// One multi-row SQLite statement and its arguments.
struct SqliteInsert {
    sql: String,
    arguments: SqliteArguments<'static>,
}

impl SqliteInsert {
    /// `head`, then `VALUES` with `rows` rows of `columns` placeholders each, then `tail`;
    /// the arguments are added after.
    fn new(head: &str, columns: usize, rows: usize, tail: &str) -> Self {
        let row = format!("({})", vec!["?"; columns].join(", "));
        let mut sql = String::with_capacity(head.len() + rows * (row.len() + 2) + tail.len() + 8);
        sql.push_str(head);
        sql.push_str(" VALUES ");
        for i in 0..rows {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&row);
        }
        sql.push_str(tail);
        let mut arguments = SqliteArguments::default();
        arguments.reserve(rows * columns, 0);
        Self { sql, arguments }
    }

    fn add<T>(&mut self, value: T) -> Result<&mut Self, BoxDynError>
    where
        T: sqlx::Encode<'static, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + 'static,
    {
        self.arguments.add(value)?;
        Ok(self)
    }

    async fn execute(self, conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
        sqlx::query_with(&self.sql, self.arguments)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// SQLite: `rows` in statements of [`ROWS_PER_STATEMENT`] rows each: `head`, the rows'
/// values (`columns` of them, which `add` gives for a row), then `tail`.
fn sqlite_inserts<R>(
    rows: Vec<R>,
    head: &str,
    columns: usize,
    tail: &str,
    add: impl Fn(&mut SqliteInsert, R) -> Result<(), BoxDynError>,
) -> Result<Vec<SqliteInsert>, BoxDynError> {
    let mut inserts = Vec::with_capacity(rows.len().div_ceil(ROWS_PER_STATEMENT));
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<R> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
        let mut insert = SqliteInsert::new(head, columns, chunk.len(), tail);
        for row in chunk {
            add(&mut insert, row)?;
        }
        inserts.push(insert);
    }
    Ok(inserts)
}

/// SQLite: listing rows, written as `write` says.
fn sqlite_listing_inserts(
    rows: Vec<ListingRow>,
    write: Write,
) -> Result<Vec<SqliteInsert>, BoxDynError> {
    let insert = match write {
        Write::Insert | Write::Stream => SQLITE_INSERT,
        // An upsert: the conflict it expects is its own to resolve.
        Write::Replace => "INSERT INTO",
    };
    let head = format!("{insert} {LISTINGS_TARGET}");
    sqlite_inserts(rows, &head, 27, &write.on_conflict(), |insert, r| {
        insert
            .add(r.listing_id)?
            .add(r.workspace_id)?
            .add(r.version)?
            .add(r.status)?
            .add(r.title)?
            .add(r.description)?
            .add(r.brand)?
            .add(r.model)?
            .add(r.year)?
            .add(r.mileage_km)?
            .add(r.fuel)?
            .add(r.gearbox)?
            .add(r.engine_volume_cc)?
            .add(r.body)?
            .add(r.colour)?
            .add(r.vin)?
            .add(r.city)?
            .add(r.price_minor)?
            .add(r.price_currency)?
            .add(r.photos)?
            .add(r.brand_key)?
            .add(r.model_key)?
            .add(r.city_key)?
            .add(r.search_text)?
            .add(r.created_position)?
            .add(r.created_at)?
            .add(r.updated_at)?;
        Ok(())
    })
}

/// SQLite: new price rows.
fn sqlite_price_inserts(prices: Vec<PriceRow>) -> Result<Vec<SqliteInsert>, BoxDynError> {
    let head = format!("{SQLITE_INSERT} {PRICES_TARGET}");
    sqlite_inserts(prices, &head, 6, "", |insert, p| {
        insert
            .add(p.listing_id)?
            .add(p.version)?
            .add(p.workspace_id)?
            .add(p.price_minor)?
            .add(p.price_currency)?
            .add(p.changed_at)?;
        Ok(())
    })
}

/// `inventory_listings` and its columns, in the order rows are encoded.
const LISTINGS_TARGET: &str = concat!("inventory_listings (", listing_columns!(), ")");
/// `inventory_price_history` and its columns, in the order rows are encoded.
const PRICES_TARGET: &str = "inventory_price_history \
     (listing_id, version, workspace_id, price_minor, price_currency, changed_at)";

async fn write_rows(tx: &mut Tx, rows: Vec<ListingRow>, write: Write) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Postgres(conn) if write == Write::Stream => {
            copy_listings(&rows)
                .map_err(sqlx::Error::Encode)?
                .send(conn, LISTINGS_TARGET)
                .await?;
        }
        Tx::Postgres(conn) => write_rows_postgres(conn, &rows, write).await?,
        Tx::Sqlite(conn) => {
            for insert in sqlite_listing_inserts(rows, write).map_err(sqlx::Error::Encode)? {
                insert.execute(conn).await?;
            }
        }
    }
    Ok(())
}

/// PostgreSQL: new rows as one binary `COPY`'s payload.
fn copy_listings(rows: &[ListingRow]) -> Result<CopyRows, BoxDynError> {
    let mut copy = CopyRows::new(27);
    for r in rows {
        copy.row()
            .field(&r.listing_id)
            .and_then(|c| c.field(&r.workspace_id))
            .and_then(|c| c.field(&r.version))
            .and_then(|c| c.field(&r.status.as_str()))
            .and_then(|c| c.field(&r.title.as_str()))
            .and_then(|c| c.field(&r.description.as_deref()))
            .and_then(|c| c.field(&r.brand.as_deref()))
            .and_then(|c| c.field(&r.model.as_deref()))
            .and_then(|c| c.field(&r.year))
            .and_then(|c| c.field(&r.mileage_km))
            .and_then(|c| c.field(&r.fuel.as_deref()))
            .and_then(|c| c.field(&r.gearbox.as_deref()))
            .and_then(|c| c.field(&r.engine_volume_cc))
            .and_then(|c| c.field(&r.body.as_deref()))
            .and_then(|c| c.field(&r.colour.as_deref()))
            .and_then(|c| c.field(&r.vin.as_deref()))
            .and_then(|c| c.field(&r.city.as_deref()))
            .and_then(|c| c.field(&r.price_minor))
            .and_then(|c| c.field(&r.price_currency.as_deref()))
            .and_then(|c| c.jsonb_field(&r.photos.0))
            .and_then(|c| c.field(&r.brand_key.as_deref()))
            .and_then(|c| c.field(&r.model_key.as_deref()))
            .and_then(|c| c.field(&r.city_key.as_deref()))
            .and_then(|c| c.field(&r.search_text.as_str()))
            .and_then(|c| c.field(&r.created_position))
            .and_then(|c| c.field(&r.created_at))
            .and_then(|c| c.field(&r.updated_at))?;
    }
    Ok(copy)
}

/// PostgreSQL: new price rows as one binary `COPY`'s payload.
fn copy_prices(prices: &[PriceRow]) -> Result<CopyRows, BoxDynError> {
    let mut copy = CopyRows::new(6);
    for p in prices {
        copy.row()
            .field(&p.listing_id)
            .and_then(|c| c.field(&p.version))
            .and_then(|c| c.field(&p.workspace_id))
            .and_then(|c| c.field(&p.price_minor))
            .and_then(|c| c.field(&p.price_currency.as_str()))
            .and_then(|c| c.field(&p.changed_at))?;
    }
    Ok(copy)
}

/// One column of `rows`, as an array parameter for `unnest`.
fn column<'a, R, T>(rows: &'a [R], value: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

/// PostgreSQL: every row in one statement, a column an array (`unnest` zips them back into
/// rows). Parsing and binding 27 arrays costs far less than 27 parameters a row.
async fn write_rows_postgres(
    conn: &mut sqlx::PgConnection,
    rows: &[ListingRow],
    write: Write,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO inventory_listings ({LISTING_COLUMNS}) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::text[], \
           $6::text[], $7::text[], $8::text[], $9::int4[], $10::int8[], $11::text[], $12::text[], \
           $13::int4[], $14::text[], $15::text[], $16::text[], $17::text[], $18::int8[], \
           $19::text[], $20::jsonb[], $21::text[], $22::text[], $23::text[], $24::text[], \
           $25::int8[], $26::timestamptz[], $27::timestamptz[]){}",
        write.on_conflict()
    ))
    .bind(column(rows, |r| r.listing_id))
    .bind(column(rows, |r| r.workspace_id))
    .bind(column(rows, |r| r.version))
    .bind(column(rows, |r| r.status.as_str()))
    .bind(column(rows, |r| r.title.as_str()))
    .bind(column(rows, |r| r.description.as_deref()))
    .bind(column(rows, |r| r.brand.as_deref()))
    .bind(column(rows, |r| r.model.as_deref()))
    .bind(column(rows, |r| r.year))
    .bind(column(rows, |r| r.mileage_km))
    .bind(column(rows, |r| r.fuel.as_deref()))
    .bind(column(rows, |r| r.gearbox.as_deref()))
    .bind(column(rows, |r| r.engine_volume_cc))
    .bind(column(rows, |r| r.body.as_deref()))
    .bind(column(rows, |r| r.colour.as_deref()))
    .bind(column(rows, |r| r.vin.as_deref()))
    .bind(column(rows, |r| r.city.as_deref()))
    .bind(column(rows, |r| r.price_minor))
    .bind(column(rows, |r| r.price_currency.as_deref()))
    .bind(column(rows, |r| Json(&r.photos.0)))
    .bind(column(rows, |r| r.brand_key.as_deref()))
    .bind(column(rows, |r| r.model_key.as_deref()))
    .bind(column(rows, |r| r.city_key.as_deref()))
    .bind(column(rows, |r| r.search_text.as_str()))
    .bind(column(rows, |r| r.created_position))
    .bind(column(rows, |r| r.created_at))
    .bind(column(rows, |r| r.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts new price-history rows. A row is made only by an event newer than its listing's
/// row, which is written in the same transaction: it cannot be stored already.
async fn insert_prices(
    tx: &mut Tx,
    prices: Vec<PriceRow>,
    write: Write,
) -> Result<(), sqlx::Error> {
    if prices.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Postgres(conn) if write == Write::Stream => {
            copy_prices(&prices)
                .map_err(sqlx::Error::Encode)?
                .send(conn, PRICES_TARGET)
                .await?;
        }
        Tx::Postgres(conn) => {
            sqlx::query(
                "INSERT INTO inventory_price_history \
                 (listing_id, version, workspace_id, price_minor, price_currency, changed_at) \
                 SELECT * FROM unnest($1::uuid[], $2::int8[], $3::uuid[], $4::int8[], $5::text[], \
                   $6::timestamptz[])",
            )
            .bind(column(&prices, |p| p.listing_id))
            .bind(column(&prices, |p| p.version))
            .bind(column(&prices, |p| p.workspace_id))
            .bind(column(&prices, |p| p.price_minor))
            .bind(column(&prices, |p| p.price_currency.as_str()))
            .bind(column(&prices, |p| p.changed_at))
            .execute(&mut **conn)
            .await?;
        }
        Tx::Sqlite(conn) => {
            for insert in sqlite_price_inserts(prices).map_err(sqlx::Error::Encode)? {
                insert.execute(conn).await?;
            }
        }
    }
    Ok(())
}
