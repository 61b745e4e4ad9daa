//! Inventory: listings, their queries and the mutations that send listing commands.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{
    ComplexObject, Context, Enum, InputObject, MaybeUndefined, Object, OneofObject, SimpleObject,
    ID,
};
use chrono::{DateTime, Datelike, Utc};
use uuid::Uuid;

use cartie_domain::listing::{DetailsPatch, ListingCommand, ListingDetails, Patch, Photo, Photos};
use cartie_domain::values::{EngineVolume, FieldError, Mileage, Money, Text, Vin, Year};
use cartie_domain::{Command, ListingId};
use cartie_projections::inventory::queries::{self, Cursor, ListingFilter};
use cartie_projections::inventory::{ListingRow, PriceRow};

use super::{caller, parse_id, services};
use crate::error::ApiError;

/// How long a mutation waits for the Inventory to show its change before answering.
const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(
    name = "ListingStatus",
    remote = "cartie_domain::listing::ListingStatus"
)]
pub enum ListingStatus {
    Draft,
    Pending,
    Available,
    Reserved,
    Sold,
    Archived,
}

/// ISO 4217 code.
#[allow(clippy::upper_case_acronyms)] // ISO codes are the names clients see.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Currency", remote = "cartie_domain::values::Currency")]
pub enum Currency {
    USD,
    EUR,
    UAH,
    PLN,
    GBP,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Fuel", remote = "cartie_domain::values::Fuel")]
pub enum Fuel {
    Petrol,
    Diesel,
    Hybrid,
    PluginHybrid,
    Electric,
    Lpg,
    Cng,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Gearbox", remote = "cartie_domain::values::Gearbox")]
pub enum Gearbox {
    Manual,
    Automatic,
    Robot,
    Cvt,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "BodyType", remote = "cartie_domain::values::BodyType")]
pub enum BodyType {
    Sedan,
    Hatchback,
    Liftback,
    Wagon,
    Suv,
    Crossover,
    Coupe,
    Convertible,
    Minivan,
    Pickup,
    Van,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
#[graphql(
    name = "ListingSort",
    remote = "cartie_projections::inventory::queries::ListingSort"
)]
pub enum ListingSort {
    /// Most recently created first.
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

/// An amount in integer minor units (cents, kopiykas) of a currency.
#[derive(SimpleObject, Clone, Copy)]
pub struct MoneyAmount {
    pub amount_minor: i64,
    pub currency: Currency,
}

/// A photo: a public URL or a Telegram file id (exactly one is set).
#[derive(SimpleObject, Clone)]
pub struct ListingPhoto {
    pub url: Option<String>,
    pub telegram_file_id: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct PricePoint {
    pub price: MoneyAmount,
    /// The listing version the price was set at.
    pub version: i64,
    pub changed_at: DateTime<Utc>,
}

/// A car for sale.
#[derive(SimpleObject)]
#[graphql(name = "Listing", complex)]
pub struct ListingNode {
    pub id: ID,
    /// Number of changes so far; pass it back as `expectedVersion` to refuse stale edits.
    pub version: i64,
    pub status: ListingStatus,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year: Option<i32>,
    pub mileage_km: Option<i64>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    pub engine_volume_cc: Option<i32>,
    pub body: Option<BodyType>,
    pub colour: Option<String>,
    pub vin: Option<String>,
    pub city: Option<String>,
    pub price: Option<MoneyAmount>,
    pub photos: Vec<ListingPhoto>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    workspace_id: Uuid,
    #[graphql(skip)]
    listing_id: Uuid,
}

#[ComplexObject]
impl ListingNode {
    /// Every price the listing has had, oldest first.
    async fn price_history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PricePoint>> {
        let rows = queries::price_history(&services(ctx).db, self.workspace_id, self.listing_id)
            .await
            .map_err(ApiError::from)?;
        rows.into_iter()
            .map(|row: PriceRow| {
                Ok(PricePoint {
                    price: MoneyAmount {
                        amount_minor: row.price_minor,
                        currency: stored::<cartie_domain::values::Currency, Currency>(
                            &row.price_currency,
                        )?,
                    },
                    version: row.version,
                    changed_at: row.changed_at,
                })
            })
            .collect::<Result<_, ApiError>>()
            .map_err(Into::into)
    }
}

/// Photos as the API shows them.
pub(crate) fn photos_of(photos: Vec<Photo>) -> Vec<ListingPhoto> {
    photos
        .into_iter()
        .map(|photo| match photo {
            Photo::Url(url) => ListingPhoto {
                url: Some(url),
                telegram_file_id: None,
            },
            Photo::TelegramFileId(id) => ListingPhoto {
                url: None,
                telegram_file_id: Some(id),
            },
        })
        .collect()
}

/// Parses a value the projector wrote; failing means the read model is corrupt.
pub(crate) fn stored<D, G>(value: &str) -> Result<G, ApiError>
where
    D: std::str::FromStr,
    G: From<D>,
{
    value.parse::<D>().map(G::from).map_err(|_| {
        ApiError::internal(format!(
            "unreadable value {value:?} in the inventory read model"
        ))
    })
}

pub(crate) fn stored_opt<D, G>(value: &Option<String>) -> Result<Option<G>, ApiError>
where
    D: std::str::FromStr,
    G: From<D>,
{
    value.as_deref().map(stored::<D, G>).transpose()
}

impl TryFrom<ListingRow> for ListingNode {
    type Error = ApiError;

    fn try_from(row: ListingRow) -> Result<Self, ApiError> {
        use cartie_domain::listing::ListingStatus as S;
        use cartie_domain::values::{BodyType as B, Currency as C, Fuel as F, Gearbox as G};
        let price = match (row.price_minor, &row.price_currency) {
            (Some(amount_minor), Some(currency)) => Some(MoneyAmount {
                amount_minor,
                currency: stored::<C, Currency>(currency)?,
            }),
            _ => None,
        };
        Ok(ListingNode {
            id: ID(row.listing_id.to_string()),
            version: row.version,
            status: stored::<S, ListingStatus>(&row.status)?,
            title: row.title,
            description: row.description,
            brand: row.brand,
            model: row.model,
            year: row.year,
            mileage_km: row.mileage_km,
            fuel: stored_opt::<F, Fuel>(&row.fuel)?,
            gearbox: stored_opt::<G, Gearbox>(&row.gearbox)?,
            engine_volume_cc: row.engine_volume_cc,
            body: stored_opt::<B, BodyType>(&row.body)?,
            colour: row.colour,
            vin: row.vin,
            city: row.city,
            price,
            photos: photos_of(row.photos.0),
            created_at: row.created_at,
            updated_at: row.updated_at,
            workspace_id: row.workspace_id,
            listing_id: row.listing_id,
        })
    }
}

#[derive(SimpleObject)]
pub struct ListingTotals {
    /// Listings matching the filter, across all pages.
    pub total_count: i64,
}

pub type ListingConnection = Connection<String, ListingNode, ListingTotals, EmptyFields>;

#[derive(InputObject, Default)]
pub struct ListingFilterInput {
    /// Case-insensitive exact brand, e.g. "toyota".
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year_min: Option<i32>,
    pub year_max: Option<i32>,
    /// Required with `priceMin`/`priceMax`: prices are compared in one currency only.
    pub price_currency: Option<Currency>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub mileage_max: Option<i64>,
    /// Any of these statuses; left out, `null` or empty: every status.
    pub statuses: Option<Vec<ListingStatus>>,
    pub city: Option<String>,
    /// Any of these fuels; left out, `null` or empty: any fuel (and none).
    pub fuels: Option<Vec<Fuel>>,
    /// Any of these gearboxes; left out, `null` or empty: any gearbox (and none).
    pub gearboxes: Option<Vec<Gearbox>>,
    /// Any of these bodies; left out, `null` or empty: any body (and none).
    pub bodies: Option<Vec<BodyType>>,
    /// Words that must all appear in the title or description.
    pub text: Option<String>,
}

impl ListingFilterInput {
    fn parse(self) -> Result<ListingFilter, ApiError> {
        if let (Some(min), Some(max)) = (self.year_min, self.year_max) {
            if min > max {
                return Err(ApiError::validation(
                    "filter.yearMin",
                    "must not be after yearMax",
                ));
            }
        }
        if let (Some(min), Some(max)) = (self.price_min, self.price_max) {
            if min > max {
                return Err(ApiError::validation(
                    "filter.priceMin",
                    "must not exceed priceMax",
                ));
            }
        }
        if (self.price_min.is_some() || self.price_max.is_some()) && self.price_currency.is_none() {
            return Err(ApiError::validation(
                "filter.priceCurrency",
                "is required with a price range: prices are compared in one currency",
            ));
        }
        for (field, value) in [
            ("filter.priceMin", self.price_min),
            ("filter.priceMax", self.price_max),
            ("filter.mileageMax", self.mileage_max),
        ] {
            if value.is_some_and(|v| v < 0) {
                return Err(ApiError::validation(field, "must not be negative"));
            }
        }
        if self.text.as_ref().is_some_and(|t| t.chars().count() > 200) {
            return Err(ApiError::validation(
                "filter.text",
                "must be at most 200 characters",
            ));
        }
        Ok(ListingFilter {
            brand: self.brand,
            model: self.model,
            year_min: self.year_min,
            year_max: self.year_max,
            price_currency: self.price_currency.map(Into::into),
            price_min: self.price_min,
            price_max: self.price_max,
            mileage_max: self.mileage_max,
            statuses: self
                .statuses
                .into_iter()
                .flatten()
                .map(Into::into)
                .collect(),
            city: self.city,
            fuels: self.fuels.into_iter().flatten().map(Into::into).collect(),
            gearboxes: self
                .gearboxes
                .into_iter()
                .flatten()
                .map(Into::into)
                .collect(),
            bodies: self.bodies.into_iter().flatten().map(Into::into).collect(),
            text: self.text,
        })
    }
}

#[derive(Default)]
pub struct InventoryQuery;

#[Object]
impl InventoryQuery {
    /// Listings of the caller's workspace.
    #[graphql(
        complexity = "5 + first.unwrap_or(DEFAULT_PAGE as i32).max(0) as usize * child_complexity"
    )]
    async fn listings(
        &self,
        ctx: &Context<'_>,
        filter: Option<ListingFilterInput>,
        #[graphql(default)] sort: ListingSort,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ListingConnection> {
        let caller = caller(ctx)?;
        let first = i64::from(first.unwrap_or(DEFAULT_PAGE as i32));
        if !(0..=MAX_PAGE).contains(&first) {
            return Err(
                ApiError::validation("first", format!("must be between 0 and {MAX_PAGE}")).into(),
            );
        }
        let sort: queries::ListingSort = sort.into();
        let after = after
            .map(|cursor| Cursor::decode(&cursor, sort))
            .transpose()
            .map_err(|e| ApiError::validation("after", e.to_string()))?;
        let filter = filter.unwrap_or_default().parse()?;
        let page = queries::list(
            &services(ctx).db,
            caller.principal.workspace_id.0,
            &filter,
            sort,
            first,
            after,
        )
        .await
        .map_err(ApiError::from)?;
        let mut connection = Connection::with_additional_fields(
            after.is_some(),
            page.has_next_page,
            ListingTotals {
                total_count: page.total_count,
            },
        );
        for row in page.rows {
            let cursor = Cursor::after(sort, &row).encode();
            connection
                .edges
                .push(Edge::new(cursor, ListingNode::try_from(row)?));
        }
        Ok(connection)
    }

    /// One listing of the caller's workspace, with its price history.
    async fn listing(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ListingNode> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        let row = queries::get(&services(ctx).db, caller.principal.workspace_id.0, id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("listing"))?;
        Ok(ListingNode::try_from(row)?)
    }
}

#[derive(InputObject, Clone, Copy)]
pub struct MoneyInput {
    /// Integer minor units: 1850000 with USD is $18,500.00.
    pub amount_minor: i64,
    pub currency: Currency,
}

impl MoneyInput {
    pub(crate) fn parse(self, field: &str) -> Result<Money, FieldError> {
        Money::price(
            &format!("{field}.amountMinor"),
            self.amount_minor,
            self.currency.into(),
        )
    }
}

/// A photo by public URL or by Telegram file id.
#[derive(OneofObject, Clone)]
pub enum PhotoInput {
    Url(String),
    TelegramFileId(String),
}

pub(crate) fn parse_photos(photos: Vec<PhotoInput>) -> Result<Photos, FieldError> {
    let parsed = photos
        .into_iter()
        .enumerate()
        .map(|(i, photo)| match photo {
            PhotoInput::Url(url) => Photo::url(&format!("photos[{i}].url"), &url),
            PhotoInput::TelegramFileId(id) => {
                Photo::telegram_file_id(&format!("photos[{i}].telegramFileId"), &id)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Photos::parse("photos", parsed)
}

fn short(field: &str, value: &str) -> Result<Text, FieldError> {
    Text::parse(field, value, Text::SHORT)
}

fn description(value: &str) -> Result<Text, FieldError> {
    Text::parse_multiline("description", value, Text::LONG)
}

fn year(value: i32) -> Result<Year, FieldError> {
    Year::parse("year", value, Utc::now().year())
}

#[derive(InputObject)]
pub struct CreateListingInput {
    /// Makes retries safe: creating again with the same key returns the listing the first
    /// attempt created.
    pub idempotency_key: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year: Option<i32>,
    pub mileage_km: Option<i64>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    /// Engine displacement in cm³.
    pub engine_volume_cc: Option<i32>,
    pub body: Option<BodyType>,
    pub colour: Option<String>,
    pub vin: Option<String>,
    pub city: Option<String>,
    pub price: Option<MoneyInput>,
    #[graphql(default)]
    pub photos: Vec<PhotoInput>,
    /// DRAFT (default), PENDING (awaiting review) or AVAILABLE (needs brand, model, year, price).
    #[graphql(default_with = "ListingStatus::Draft")]
    pub status: ListingStatus,
}

impl CreateListingInput {
    fn parse(self) -> Result<ListingCommand, FieldError> {
        let details = ListingDetails {
            title: Text::parse("title", &self.title, Text::TITLE)?,
            description: self.description.as_deref().map(description).transpose()?,
            brand: self
                .brand
                .as_deref()
                .map(|v| short("brand", v))
                .transpose()?,
            model: self
                .model
                .as_deref()
                .map(|v| short("model", v))
                .transpose()?,
            year: self.year.map(year).transpose()?,
            mileage_km: self
                .mileage_km
                .map(|km| Mileage::parse("mileageKm", km))
                .transpose()?,
            fuel: self.fuel.map(Into::into),
            gearbox: self.gearbox.map(Into::into),
            engine_volume_cc: self
                .engine_volume_cc
                .map(|cc| EngineVolume::parse("engineVolumeCc", cc.into()))
                .transpose()?,
            body: self.body.map(Into::into),
            colour: self
                .colour
                .as_deref()
                .map(|v| short("colour", v))
                .transpose()?,
            vin: self
                .vin
                .as_deref()
                .map(|v| Vin::parse("vin", v))
                .transpose()?,
            city: self.city.as_deref().map(|v| short("city", v)).transpose()?,
        };
        Ok(ListingCommand::CreateListing {
            details,
            price: self.price.map(|p| p.parse("price")).transpose()?,
            photos: parse_photos(self.photos)?,
            status: self.status.into(),
        })
    }
}

/// Fields left out stay as they are; `null` clears a field (the title cannot be cleared).
#[derive(InputObject)]
pub struct UpdateListingInput {
    pub id: ID,
    pub expected_version: Option<i64>,
    pub title: MaybeUndefined<String>,
    pub description: MaybeUndefined<String>,
    pub brand: MaybeUndefined<String>,
    pub model: MaybeUndefined<String>,
    pub year: MaybeUndefined<i32>,
    pub mileage_km: MaybeUndefined<i64>,
    pub fuel: MaybeUndefined<Fuel>,
    pub gearbox: MaybeUndefined<Gearbox>,
    pub engine_volume_cc: MaybeUndefined<i32>,
    pub body: MaybeUndefined<BodyType>,
    pub colour: MaybeUndefined<String>,
    pub vin: MaybeUndefined<String>,
    pub city: MaybeUndefined<String>,
}

fn patch<I, T>(
    value: MaybeUndefined<I>,
    parse: impl FnOnce(I) -> Result<T, FieldError>,
) -> Result<Patch<T>, FieldError> {
    Ok(match value {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(value) => Patch::Set(parse(value)?),
    })
}

impl UpdateListingInput {
    fn parse(self) -> Result<DetailsPatch, FieldError> {
        let title = match self.title {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => return Err(FieldError::new("title", "cannot be cleared")),
            MaybeUndefined::Value(title) => Some(Text::parse("title", &title, Text::TITLE)?),
        };
        Ok(DetailsPatch {
            title,
            description: patch(self.description, |v| description(&v))?,
            brand: patch(self.brand, |v| short("brand", &v))?,
            model: patch(self.model, |v| short("model", &v))?,
            year: patch(self.year, year)?,
            mileage_km: patch(self.mileage_km, |km| Mileage::parse("mileageKm", km))?,
            fuel: patch(self.fuel, |v| Ok(v.into()))?,
            gearbox: patch(self.gearbox, |v| Ok(v.into()))?,
            engine_volume_cc: patch(self.engine_volume_cc, |cc| {
                EngineVolume::parse("engineVolumeCc", cc.into())
            })?,
            body: patch(self.body, |v| Ok(v.into()))?,
            colour: patch(self.colour, |v| short("colour", &v))?,
            vin: patch(self.vin, |v| Vin::parse("vin", &v))?,
            city: patch(self.city, |v| short("city", &v))?,
        })
    }
}

#[derive(InputObject)]
pub struct ChangeListingPriceInput {
    pub id: ID,
    pub expected_version: Option<i64>,
    pub price: MoneyInput,
}

#[derive(InputObject)]
pub struct ChangeListingStatusInput {
    pub id: ID,
    pub expected_version: Option<i64>,
    pub status: ListingStatus,
}

#[derive(InputObject)]
pub struct SetListingPhotosInput {
    pub id: ID,
    pub expected_version: Option<i64>,
    /// The complete, ordered list: the first photo is the cover. Adding, removing and
    /// reordering are all done by sending the new list.
    pub photos: Vec<PhotoInput>,
}

#[derive(Default)]
pub struct InventoryMutation;

#[Object]
impl InventoryMutation {
    /// Adds a car to the inventory.
    async fn create_listing(
        &self,
        ctx: &Context<'_>,
        input: CreateListingInput,
    ) -> async_graphql::Result<ListingNode> {
        let workspace = caller(ctx)?.principal.workspace_id;
        let key = input
            .idempotency_key
            .as_deref()
            .map(str::trim)
            .map(str::to_string);
        let (id, new_id) = match key.as_deref() {
            Some("") => {
                return Err(ApiError::validation("idempotencyKey", "must not be empty").into())
            }
            Some(key) if key.chars().count() > 200 => {
                return Err(ApiError::validation(
                    "idempotencyKey",
                    "must be at most 200 characters",
                )
                .into())
            }
            Some(key) => (ListingId::for_idempotency_key(workspace, key), false),
            None => (ListingId::generate(), true),
        };
        let body = input.parse().map_err(ApiError::from)?;
        let target = Target {
            listing_id: id.0,
            new_id,
        };
        Ok(execute(ctx, target, None, key, body).await?)
    }

    /// Changes a listing's details; see `UpdateListingInput`.
    async fn update_listing(
        &self,
        ctx: &Context<'_>,
        input: UpdateListingInput,
    ) -> async_graphql::Result<ListingNode> {
        let id = parse_id("id", &input.id)?;
        let expected = input.expected_version;
        let patch = input.parse().map_err(ApiError::from)?;
        Ok(execute(
            ctx,
            id,
            expected,
            None,
            ListingCommand::UpdateListingDetails { patch },
        )
        .await?)
    }

    /// Sets a new price; the previous one stays in the price history.
    async fn change_listing_price(
        &self,
        ctx: &Context<'_>,
        input: ChangeListingPriceInput,
    ) -> async_graphql::Result<ListingNode> {
        let id = parse_id("id", &input.id)?;
        let price = input.price.parse("price").map_err(ApiError::from)?;
        Ok(execute(
            ctx,
            id,
            input.expected_version,
            None,
            ListingCommand::ChangeListingPrice { price },
        )
        .await?)
    }

    /// Moves a listing through DRAFT → AVAILABLE → RESERVED → SOLD (or ARCHIVED).
    async fn change_listing_status(
        &self,
        ctx: &Context<'_>,
        input: ChangeListingStatusInput,
    ) -> async_graphql::Result<ListingNode> {
        let id = parse_id("id", &input.id)?;
        let status = input.status.into();
        Ok(execute(
            ctx,
            id,
            input.expected_version,
            None,
            ListingCommand::ChangeListingStatus { status },
        )
        .await?)
    }

    /// Replaces the listing's photos with the given ordered list.
    async fn set_listing_photos(
        &self,
        ctx: &Context<'_>,
        input: SetListingPhotosInput,
    ) -> async_graphql::Result<ListingNode> {
        let id = parse_id("id", &input.id)?;
        let photos = parse_photos(input.photos).map_err(ApiError::from)?;
        Ok(execute(
            ctx,
            id,
            input.expected_version,
            None,
            ListingCommand::SetListingPhotos { photos },
        )
        .await?)
    }
}

/// The listing a command is for; `new_id` when the id was generated for this very command
/// (nothing to load).
struct Target {
    listing_id: Uuid,
    new_id: bool,
}

impl From<Uuid> for Target {
    fn from(listing_id: Uuid) -> Self {
        Self {
            listing_id,
            new_id: false,
        }
    }
}

/// Sends a listing command, waits until the Inventory shows its effect, and answers from
/// the read model.
async fn execute(
    ctx: &Context<'_>,
    target: impl Into<Target>,
    expected_version: Option<i64>,
    idempotency_key: Option<String>,
    body: ListingCommand,
) -> Result<ListingNode, ApiError> {
    let caller = caller(ctx)?;
    let services = services(ctx);
    let expected_version = expected_version
        .map(|v| {
            u64::try_from(v)
                .map_err(|_| ApiError::validation("expectedVersion", "must not be negative"))
        })
        .transpose()?;
    let mut context = caller.command_context();
    context.idempotency_key = idempotency_key;
    let command = Command::new(context, body).expecting_version(expected_version);
    let Target { listing_id, new_id } = target.into();
    let aggregate_id = listing_id.to_string();
    let position = if new_id {
        services.listings.execute_new(&aggregate_id, command).await
    } else {
        services.listings.execute(&aggregate_id, command).await
    }
    .map_err(ApiError::from)?;
    if let Some(position) = position {
        if !services
            .inventory
            .wait_for(position, crate::app::READ_YOUR_WRITES)
            .await
        {
            // Answering from the read model now could show the listing as it was before
            // the change, as if the change had not happened.
            tracing::warn!(%listing_id, %position, "inventory did not catch up in time");
            return Err(catching_up());
        }
    }
    let workspace = caller.principal.workspace_id.0;
    match queries::get(&services.db, workspace, listing_id).await? {
        Some(row) => ListingNode::try_from(row),
        None if position.is_none() => Err(ApiError::NotFound("listing")),
        None => Err(catching_up()),
    }
}

fn catching_up() -> ApiError {
    ApiError::CatchingUp(
        "the change was recorded but the inventory has not caught up yet; read the listing again shortly".into(),
    )
}
