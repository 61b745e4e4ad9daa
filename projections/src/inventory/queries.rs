//! Reads of the Inventory model. Filters, sorting and search run in SQL; pagination is
//! keyset-based (a cursor holds the sort value and id of the last row), so a page costs
//! the same however deep it is.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cartie_domain::listing::ListingStatus;
use cartie_domain::values::{BodyType, Currency, Fuel, Gearbox};
use cartie_store::{on_pool, Database};
use serde::{Deserialize, Serialize};
use sqlx::{Encode, QueryBuilder, Type};
use uuid::Uuid;

use super::{listing_columns, ListingRow, PriceRow};

/// Which listings to return; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListingFilter {
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year_min: Option<i32>,
    pub year_max: Option<i32>,
    /// Only listings priced in this currency. A price range is meaningful only in one
    /// currency: a range without a currency matches nothing (the API refuses it first).
    pub price_currency: Option<Currency>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub mileage_max: Option<i64>,
    pub statuses: Vec<ListingStatus>,
    pub city: Option<String>,
    pub fuels: Vec<Fuel>,
    pub gearboxes: Vec<Gearbox>,
    pub bodies: Vec<BodyType>,
    /// Words that must all appear in the title or description (case-insensitive).
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListingSort {
    #[default]
    Newest,
    Oldest,
    PriceAsc,
    PriceDesc,
    YearDesc,
    YearAsc,
    MileageAsc,
    MileageDesc,
}

impl ListingSort {
    fn column(self) -> &'static str {
        match self {
            ListingSort::Newest | ListingSort::Oldest => "created_position",
            ListingSort::PriceAsc | ListingSort::PriceDesc => "price_minor",
            ListingSort::YearAsc | ListingSort::YearDesc => "year",
            ListingSort::MileageAsc | ListingSort::MileageDesc => "mileage_km",
        }
    }

    fn ascending(self) -> bool {
        matches!(
            self,
            ListingSort::Oldest
                | ListingSort::PriceAsc
                | ListingSort::YearAsc
                | ListingSort::MileageAsc
        )
    }

    fn key(self, row: &ListingRow) -> Option<i64> {
        match self {
            ListingSort::Newest | ListingSort::Oldest => Some(row.created_position),
            ListingSort::PriceAsc | ListingSort::PriceDesc => row.price_minor,
            ListingSort::YearAsc | ListingSort::YearDesc => row.year.map(i64::from),
            ListingSort::MileageAsc | ListingSort::MileageDesc => row.mileage_km,
        }
    }
}

/// Where a page ends: the sort it belongs to, the last row's sort value and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "s")]
    pub sort: ListingSort,
    #[serde(rename = "v")]
    pub value: Option<i64>,
    #[serde(rename = "i")]
    pub id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("is not a cursor returned by this API")]
    Malformed,
    #[error("belongs to another sort order")]
    OtherSort,
}

impl Cursor {
    pub fn after(sort: ListingSort, row: &ListingRow) -> Self {
        Self {
            sort,
            value: sort.key(row),
            id: row.listing_id,
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a cursor serialises"))
    }

    pub fn decode(text: &str, sort: ListingSort) -> Result<Self, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Malformed)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
        if cursor.sort != sort {
            return Err(CursorError::OtherSort);
        }
        Ok(cursor)
    }
}

/// One page of listings.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingPage {
    pub rows: Vec<ListingRow>,
    pub total_count: i64,
    pub has_next_page: bool,
}

const SELECT_LISTINGS: &str = concat!("SELECT ", listing_columns!(), " FROM inventory_listings");

/// Listings of `workspace` matching `filter`, `first` at most, after `after`.
pub async fn list(
    db: &Database,
    workspace: Uuid,
    filter: &ListingFilter,
    sort: ListingSort,
    first: i64,
    after: Option<Cursor>,
) -> Result<ListingPage, sqlx::Error> {
    let (mut rows, total_count): (Vec<ListingRow>, i64) = on_pool!(db, pool, DB => {
        let mut count = QueryBuilder::<DB>::new("SELECT COUNT(*) FROM inventory_listings");
        push_filters(&mut count, workspace, filter);
        let total: i64 = count.build_query_scalar().fetch_one(pool).await?;

        let mut query = QueryBuilder::<DB>::new(SELECT_LISTINGS);
        push_filters(&mut query, workspace, filter);
        if let Some(cursor) = after {
            push_after(&mut query, sort, cursor);
        }
        let (column, direction) = (sort.column(), if sort.ascending() { "ASC" } else { "DESC" });
        query.push(format!(
            " ORDER BY {column} {direction} NULLS LAST, listing_id {direction} LIMIT "
        ));
        query.push_bind(first + 1);
        (query.build_query_as().fetch_all(pool).await?, total)
    });
    let has_next_page = rows.len() as i64 > first;
    rows.truncate(first.max(0) as usize);
    Ok(ListingPage {
        rows,
        total_count,
        has_next_page,
    })
}

/// One listing of `workspace`; another workspace's listing is not found.
pub async fn get(
    db: &Database,
    workspace: Uuid,
    listing_id: Uuid,
) -> Result<Option<ListingRow>, sqlx::Error> {
    // By the primary key alone, the workspace checked on the row (ADR 0019).
    let row: Option<ListingRow> = on_pool!(db, pool => {
        sqlx::query_as(&format!("{SELECT_LISTINGS} WHERE listing_id = $1"))
            .bind(listing_id)
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.filter(|r| r.workspace_id == workspace))
}

/// The prices a listing has had, oldest first.
pub async fn price_history(
    db: &Database,
    workspace: Uuid,
    listing_id: Uuid,
) -> Result<Vec<PriceRow>, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT listing_id, version, workspace_id, price_minor, price_currency, changed_at \
             FROM inventory_price_history WHERE workspace_id = $1 AND listing_id = $2 ORDER BY version",
        )
        .bind(workspace)
        .bind(listing_id)
        .fetch_all(pool)
        .await
    })
}

fn push_filters<'a, DB>(query: &mut QueryBuilder<'a, DB>, workspace: Uuid, filter: &ListingFilter)
where
    DB: sqlx::Database,
    Uuid: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    query.push(" WHERE workspace_id = ").push_bind(workspace);
    let equals = |query: &mut QueryBuilder<'a, DB>, column: &str, value: &Option<String>| {
        if let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            query
                .push(format!(" AND {column} = "))
                .push_bind(value.to_lowercase());
        }
    };
    equals(query, "brand_key", &filter.brand);
    equals(query, "model_key", &filter.model);
    equals(query, "city_key", &filter.city);
    let at_least =
        |query: &mut QueryBuilder<'a, DB>, column: &str, value: Option<i64>, op: &str| {
            if let Some(value) = value {
                query.push(format!(" AND {column} {op} ")).push_bind(value);
            }
        };
    at_least(query, "year", filter.year_min.map(i64::from), ">=");
    at_least(query, "year", filter.year_max.map(i64::from), "<=");
    at_least(query, "price_minor", filter.price_min, ">=");
    at_least(query, "price_minor", filter.price_max, "<=");
    at_least(query, "mileage_km", filter.mileage_max, "<=");
    if let Some(currency) = filter.price_currency {
        query
            .push(" AND price_currency = ")
            .push_bind(currency.code().to_string());
    } else if filter.price_min.is_some() || filter.price_max.is_some() {
        // Callers validate that a range names its currency; never compare across currencies.
        query.push(" AND 1 = 0");
    }
    let one_of = |query: &mut QueryBuilder<'a, DB>, column: &str, values: Vec<&'static str>| {
        if values.is_empty() {
            return;
        }
        query.push(format!(" AND {column} IN ("));
        let mut list = query.separated(", ");
        for value in values {
            list.push_bind(value.to_string());
        }
        list.push_unseparated(")");
    };
    one_of(
        query,
        "status",
        filter.statuses.iter().map(|s| s.as_str()).collect(),
    );
    one_of(
        query,
        "fuel",
        filter.fuels.iter().map(|f| f.as_str()).collect(),
    );
    one_of(
        query,
        "gearbox",
        filter.gearboxes.iter().map(|g| g.as_str()).collect(),
    );
    one_of(
        query,
        "body",
        filter.bodies.iter().map(|b| b.as_str()).collect(),
    );
    if let Some(text) = &filter.text {
        for word in text.split_whitespace() {
            let pattern = format!("%{}%", escape_like(&word.to_lowercase()));
            query
                .push(" AND search_text LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\'");
        }
    }
}

/// Rows strictly after the cursor in `sort` order, rows without a sort value coming last.
fn push_after<'a, DB>(query: &mut QueryBuilder<'a, DB>, sort: ListingSort, cursor: Cursor)
where
    DB: sqlx::Database,
    Uuid: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let column = sort.column();
    let beyond = if sort.ascending() { ">" } else { "<" };
    match cursor.value {
        Some(value) => {
            query
                .push(format!(" AND ({column} {beyond} "))
                .push_bind(value)
                .push(format!(" OR ({column} = "))
                .push_bind(value)
                .push(format!(" AND listing_id {beyond} "))
                .push_bind(cursor.id)
                .push(format!(") OR {column} IS NULL)"));
        }
        None => {
            query
                .push(format!(" AND ({column} IS NULL AND listing_id {beyond} "))
                .push_bind(cursor.id)
                .push(")");
        }
    }
}

fn escape_like(word: &str) -> String {
    let mut escaped = String::with_capacity(word.len());
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// What a request needs of a car, for matching it against the inventory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchNeeds {
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year_min: Option<i64>,
    pub year_max: Option<i64>,
    /// The most the client pays: a match is priced in this currency, at most this much.
    pub budget: Option<(Currency, i64)>,
    pub mileage_max: Option<i64>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    pub body: Option<BodyType>,
    pub city: Option<String>,
}

/// The available listings of `workspace` inside every constraint of `needs`, best first:
/// with a budget the cheapest first (then the newest); without one the newest first. A
/// constraint a listing has no value for (no year, no price) excludes it.
///
/// The ids are chosen first from the matching indexes alone (migration 0008: they carry
/// every column a need constrains, for available cars only), then only the chosen rows are
/// read; the status is written into the query, not bound, so both databases see that the
/// indexes' condition holds.
pub async fn matching(
    db: &Database,
    workspace: Uuid,
    needs: &MatchNeeds,
    first: i64,
) -> Result<Vec<ListingRow>, sqlx::Error> {
    let filter = ListingFilter {
        brand: needs.brand.clone(),
        model: needs.model.clone(),
        year_min: needs.year_min.map(|y| y as i32),
        year_max: needs.year_max.map(|y| y as i32),
        price_currency: needs.budget.map(|(currency, _)| currency),
        price_max: needs.budget.map(|(_, max)| max),
        mileage_max: needs.mileage_max,
        city: needs.city.clone(),
        fuels: needs.fuel.into_iter().collect(),
        gearboxes: needs.gearbox.into_iter().collect(),
        bodies: needs.body.into_iter().collect(),
        ..ListingFilter::default()
    };
    let order = if needs.budget.is_some() {
        " ORDER BY price_minor ASC, created_position DESC"
    } else {
        " ORDER BY created_position DESC"
    };
    on_pool!(db, pool, DB => {
        let mut query = QueryBuilder::<DB>::new(SELECT_LISTINGS);
        query.push(" WHERE listing_id IN (SELECT listing_id FROM inventory_listings");
        push_filters(&mut query, workspace, &filter);
        query
            .push(format!(" AND status = '{}'", ListingStatus::Available.as_str()))
            .push(order)
            .push(" LIMIT ")
            .push_bind(first.max(0))
            .push(")")
            .push(order);
        query.build_query_as().fetch_all(pool).await
    })
}
