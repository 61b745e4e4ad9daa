//! The Inventory read model: every listing of a workspace with the columns dealers filter
//! and sort by, and each listing's price history.

mod projector;
pub mod queries;

use cartie_domain::listing::Photo;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

pub use projector::InventoryProjector;

/// The columns of `inventory_listings`, in the order of [`ListingRow`]'s fields.
macro_rules! listing_columns {
    () => {
        "listing_id, workspace_id, version, status, title, description, \
    brand, model, year, mileage_km, fuel, gearbox, engine_volume_cc, body, colour, vin, city, \
    price_minor, price_currency, photos, brand_key, model_key, city_key, search_text, \
    created_position, created_at, updated_at"
    };
}
pub(crate) use listing_columns;

pub const LISTING_COLUMNS: &str = listing_columns!();

/// One row of `inventory_listings`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ListingRow {
    pub listing_id: Uuid,
    pub workspace_id: Uuid,
    pub version: i64,
    pub status: String,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year: Option<i32>,
    pub mileage_km: Option<i64>,
    pub fuel: Option<String>,
    pub gearbox: Option<String>,
    pub engine_volume_cc: Option<i32>,
    pub body: Option<String>,
    pub colour: Option<String>,
    pub vin: Option<String>,
    pub city: Option<String>,
    pub price_minor: Option<i64>,
    pub price_currency: Option<String>,
    pub photos: Json<Vec<Photo>>,
    pub brand_key: Option<String>,
    pub model_key: Option<String>,
    pub city_key: Option<String>,
    pub search_text: String,
    pub created_position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One row of `inventory_price_history`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PriceRow {
    pub listing_id: Uuid,
    pub version: i64,
    pub workspace_id: Uuid,
    pub price_minor: i64,
    pub price_currency: String,
    pub changed_at: DateTime<Utc>,
}
