//! B2B requests and the partner network: requests with their variants, matching against
//! the inventory, proposals shared with clients, partners and their tokens, what partners
//! see and offer, and the public intake.

use std::sync::Arc;

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Datelike, Utc};
use secrecy::ExposeSecret;
use uuid::Uuid;

use cartie_domain::lead::{
    Interest, LeadCommand, LeadContact, LeadSource, Phone, TelegramUsername,
};
use cartie_domain::member::Email;
use cartie_domain::partner::{PartnerCommand, PartnerContact, PartnerProfile};
use cartie_domain::request::{
    Needs, OfferedCar, RequestAction, RequestActor, RequestClient, RequestCommand,
    RequestSource as DomainSource, Variant, VariantSource as DomainVariantSource,
};
use cartie_domain::values::{Currency as DomainCurrency, FieldError, Mileage, Text, Year};
use cartie_domain::{
    Actor, Command, CommandContext, LeadId, ListingId, PartnerId, ProposalId, RequestId, UserId,
    VariantId,
};
use cartie_projections::directory::queries as directory;
use cartie_projections::inventory::queries as inventory;
use cartie_projections::requests::queries::{self as requests, RequestFilter};
use cartie_projections::requests::{PartnerRow, RequestRow, VariantRow};

use super::inventory::{
    parse_photos, photos_of, stored, stored_opt, BodyType, Currency, Fuel, Gearbox, ListingNode,
    ListingPhoto, MoneyAmount, MoneyInput, PhotoInput,
};
use super::{caller, parse_id, services, ClientAddress, RequestContext, WebSocketSession};
use crate::app::{shown, Services};
use crate::credentials::{self, OpaqueToken};
use crate::error::ApiError;

const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;
/// Where a proposal's secret is kept in the credential store.
const PROPOSAL_KIND: &str = "proposal";
const PROPOSAL_PREFIX: &str = "cartie_pp";

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(
    name = "RequestStatus",
    remote = "cartie_domain::request::RequestStatus"
)]
pub enum RequestStatus {
    Draft,
    Published,
    Won,
    Lost,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(
    name = "VariantStatus",
    remote = "cartie_domain::request::VariantStatus"
)]
pub enum VariantStatus {
    Offered,
    Shortlisted,
    Rejected,
    Accepted,
}

/// Who offered a variant.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum VariantSource {
    /// A listing of the dealer's own inventory.
    Own,
    Partner,
}

fn page(size: Option<i64>) -> Result<i64, ApiError> {
    let size = size.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&size) {
        return Err(ApiError::validation(
            "first",
            format!("must be 1 to {MAX_PAGE}"),
        ));
    }
    Ok(size)
}

fn cursor(after: Option<String>) -> Result<Option<i64>, ApiError> {
    after
        .map(|a| {
            a.parse::<i64>()
                .map_err(|_| ApiError::validation("after", "is not a cursor from this list"))
        })
        .transpose()
}

fn optional_text(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<Text>, FieldError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| Text::parse_multiline(field, &v, max))
        .transpose()
}

/// What the client wants of a car.
#[derive(SimpleObject)]
pub struct RequestNeeds {
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year_min: Option<i64>,
    pub year_max: Option<i64>,
    pub budget: Option<MoneyAmount>,
    pub mileage_max: Option<i64>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    pub body: Option<BodyType>,
    pub city: Option<String>,
    pub notes: Option<String>,
}

fn needs_of(row: &RequestRow) -> Result<RequestNeeds, ApiError> {
    use cartie_domain::values::{BodyType as B, Fuel as F, Gearbox as G};
    let budget = match (row.budget_minor, &row.budget_currency) {
        (Some(amount_minor), Some(currency)) => Some(MoneyAmount {
            amount_minor,
            currency: stored::<DomainCurrency, Currency>(currency)?,
        }),
        _ => None,
    };
    Ok(RequestNeeds {
        brand: row.brand.clone(),
        model: row.model.clone(),
        year_min: row.year_min,
        year_max: row.year_max,
        budget,
        mileage_max: row.mileage_max,
        fuel: stored_opt::<F, Fuel>(&row.fuel)?,
        gearbox: stored_opt::<G, Gearbox>(&row.gearbox)?,
        body: stored_opt::<B, BodyType>(&row.body)?,
        city: row.city.clone(),
        notes: row.notes.clone(),
    })
}

/// Who a request is for.
#[derive(SimpleObject)]
pub struct RequestClientNode {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub telegram_username: Option<String>,
    pub lead_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct ChannelPostNode {
    pub channel: String,
    pub message_id: i64,
}

/// A car offered for a request.
#[derive(SimpleObject)]
#[graphql(name = "Variant")]
pub struct VariantNode {
    pub id: ID,
    pub request_id: ID,
    pub source: VariantSource,
    pub partner_id: Option<ID>,
    /// The dealer's own listing offered.
    pub listing_id: Option<ID>,
    /// The partner's reference or link for its car.
    pub listing_ref: Option<String>,
    pub title: String,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year: Option<i64>,
    pub mileage_km: Option<i64>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    pub body: Option<BodyType>,
    pub description: Option<String>,
    pub price: MoneyAmount,
    pub photos: Vec<ListingPhoto>,
    pub city: Option<String>,
    pub status: VariantStatus,
    pub reject_reason: Option<String>,
    pub offered_at: DateTime<Utc>,
}

impl VariantNode {
    fn from_row(row: VariantRow) -> Result<Self, ApiError> {
        use cartie_domain::request::VariantStatus as S;
        use cartie_domain::values::{BodyType as B, Fuel as F, Gearbox as G};
        Ok(Self {
            id: ID(row.variant_id.to_string()),
            request_id: ID(row.request_id.to_string()),
            source: if row.source == "OWN" {
                VariantSource::Own
            } else {
                VariantSource::Partner
            },
            partner_id: row.partner_id.map(|p| ID(p.to_string())),
            listing_id: row.listing_id.map(|l| ID(l.to_string())),
            listing_ref: row.listing_ref,
            title: row.title,
            brand: row.brand,
            model: row.model,
            year: row.year,
            mileage_km: row.mileage_km,
            fuel: stored_opt::<F, Fuel>(&row.fuel)?,
            gearbox: stored_opt::<G, Gearbox>(&row.gearbox)?,
            body: stored_opt::<B, BodyType>(&row.body)?,
            description: row.description,
            price: MoneyAmount {
                amount_minor: row.price_minor,
                currency: stored::<DomainCurrency, Currency>(&row.price_currency)?,
            },
            photos: photos_of(row.photos.0),
            city: row.city,
            status: S::parse(&row.status)
                .map(VariantStatus::from)
                .ok_or_else(|| {
                    ApiError::internal(format!("unknown variant status {:?}", row.status))
                })?,
            reject_reason: row.reject_reason,
            offered_at: row.offered_at,
        })
    }
}

fn status_of(row: &RequestRow) -> Result<RequestStatus, ApiError> {
    cartie_domain::request::RequestStatus::parse(&row.status)
        .map(RequestStatus::from)
        .ok_or_else(|| ApiError::internal(format!("unknown request status {:?}", row.status)))
}

/// A client's wish for a car, as the dealer sees it.
pub struct RequestNode(RequestRow);

#[Object(name = "Request")]
impl RequestNode {
    async fn id(&self) -> ID {
        ID(self.0.request_id.to_string())
    }

    /// Number of changes so far.
    async fn version(&self) -> i64 {
        self.0.version
    }

    async fn status(&self) -> async_graphql::Result<RequestStatus> {
        Ok(status_of(&self.0)?)
    }

    /// MANUAL or PUBLIC_INTAKE.
    async fn source(&self) -> &str {
        &self.0.source
    }

    async fn needs(&self) -> async_graphql::Result<RequestNeeds> {
        Ok(needs_of(&self.0)?)
    }

    async fn client(&self) -> RequestClientNode {
        RequestClientNode {
            name: self.0.client_name.clone(),
            phone: self.0.client_phone.clone(),
            telegram_username: self.0.client_username.clone(),
            lead_id: self.0.lead_id.map(|l| ID(l.to_string())),
        }
    }

    async fn assignee_id(&self) -> Option<ID> {
        self.0.assignee.map(|a| ID(a.to_string()))
    }

    /// Variants offered, rejected ones included.
    async fn variant_count(&self) -> i64 {
        self.0.variant_count
    }

    /// The cheapest variant not rejected, in the budget's currency (without a budget, in
    /// the first variant's).
    async fn best_offer(&self) -> async_graphql::Result<Option<MoneyAmount>> {
        Ok(match (self.0.best_offer_minor, &self.0.offer_currency) {
            (Some(amount_minor), Some(currency)) => Some(MoneyAmount {
                amount_minor,
                currency: stored::<DomainCurrency, Currency>(currency)?,
            }),
            _ => None,
        })
    }

    async fn lost_reason(&self) -> Option<&str> {
        self.0.lost_reason.as_deref()
    }

    async fn won_variant_id(&self) -> Option<ID> {
        self.0.won_variant_id.map(|v| ID(v.to_string()))
    }

    /// Where the request was posted in Telegram channels.
    async fn channel_posts(&self) -> Vec<ChannelPostNode> {
        self.0
            .channel_posts
            .0
            .iter()
            .map(|p| ChannelPostNode {
                channel: p.channel.clone(),
                message_id: p.message_id,
            })
            .collect()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.0.published_at
    }

    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }

    /// Every variant, in the order offered.
    async fn variants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VariantNode>> {
        let rows = requests::variants(
            &services(ctx).db,
            self.0.workspace_id,
            self.0.request_id,
            None,
        )
        .await
        .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .map(VariantNode::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// The partners the request is addressed to.
    async fn partner_ids(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ID>> {
        let ids = requests::addressees(&services(ctx).db, self.0.request_id)
            .await
            .map_err(ApiError::from)?;
        Ok(ids.into_iter().map(|id| ID(id.to_string())).collect())
    }

    /// Proposals shared with the client (their links are shown only when shared).
    async fn proposals(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProposalNode>> {
        let rows = requests::proposals(&services(ctx).db, self.0.workspace_id, self.0.request_id)
            .await
            .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .map(|r| ProposalNode {
                id: ID(r.proposal_id.to_string()),
                shared_at: r.shared_at,
                revoked_at: r.revoked_at,
            })
            .collect())
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Proposal")]
pub struct ProposalNode {
    pub id: ID,
    pub shared_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A proposal just shared: `token` (shown this once) opens it with `proposal(token:)`.
#[derive(SimpleObject)]
pub struct SharedProposal {
    pub proposal: ProposalNode,
    pub token: String,
}

#[derive(SimpleObject)]
pub struct RequestPage {
    pub nodes: Vec<RequestNode>,
    /// Requests matching the filter, across all pages.
    pub total_count: i64,
    pub has_next_page: bool,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

#[derive(InputObject, Default)]
pub struct RequestFilterInput {
    #[graphql(default)]
    pub statuses: Vec<RequestStatus>,
    pub assignee_id: Option<ID>,
    /// Case-insensitive exact brand.
    pub brand: Option<String>,
    /// Required with `budgetMin`/`budgetMax`: budgets are compared in one currency.
    pub budget_currency: Option<Currency>,
    pub budget_min: Option<i64>,
    pub budget_max: Option<i64>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

impl RequestFilterInput {
    fn parse(self) -> Result<RequestFilter, ApiError> {
        if (self.budget_min.is_some() || self.budget_max.is_some())
            && self.budget_currency.is_none()
        {
            return Err(ApiError::validation(
                "filter.budgetCurrency",
                "is required with a budget range: budgets are compared in one currency",
            ));
        }
        for (field, value) in [
            ("filter.budgetMin", self.budget_min),
            ("filter.budgetMax", self.budget_max),
        ] {
            if value.is_some_and(|v| v < 0) {
                return Err(ApiError::validation(field, "must not be negative"));
            }
        }
        if let (Some(min), Some(max)) = (self.budget_min, self.budget_max) {
            if min > max {
                return Err(ApiError::validation(
                    "filter.budgetMin",
                    "must not exceed budgetMax",
                ));
            }
        }
        Ok(RequestFilter {
            statuses: self
                .statuses
                .into_iter()
                .map(|s| {
                    cartie_domain::request::RequestStatus::from(s)
                        .as_str()
                        .to_string()
                })
                .collect(),
            assignee: self
                .assignee_id
                .as_ref()
                .map(|a| parse_id("filter.assigneeId", a))
                .transpose()?,
            brand: self.brand,
            budget_currency: self.budget_currency.map(Into::into),
            budget_min: self.budget_min,
            budget_max: self.budget_max,
            created_from: self.created_from,
            created_to: self.created_to,
        })
    }
}

/// The client's needs; every field is optional and those given constrain the matches.
#[derive(InputObject, Default)]
pub struct NeedsInput {
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year_min: Option<i32>,
    pub year_max: Option<i32>,
    /// More than zero.
    pub budget: Option<MoneyInput>,
    pub mileage_max: Option<i64>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    pub body: Option<BodyType>,
    pub city: Option<String>,
    pub notes: Option<String>,
}

impl NeedsInput {
    fn parse(self) -> Result<Needs, FieldError> {
        let year = Utc::now().year();
        let needs = Needs {
            brand: optional_text("needs.brand", self.brand, Text::SHORT)?,
            model: optional_text("needs.model", self.model, Text::SHORT)?,
            year_min: self
                .year_min
                .map(|y| Year::parse("needs.yearMin", y, year))
                .transpose()?,
            year_max: self
                .year_max
                .map(|y| Year::parse("needs.yearMax", y, year))
                .transpose()?,
            budget: self.budget.map(|b| b.parse("needs.budget")).transpose()?,
            mileage_max: self
                .mileage_max
                .map(|m| Mileage::parse("needs.mileageMax", m))
                .transpose()?,
            fuel: self.fuel.map(Into::into),
            gearbox: self.gearbox.map(Into::into),
            body: self.body.map(Into::into),
            city: optional_text("needs.city", self.city, Text::SHORT)?,
            notes: optional_text("needs.notes", self.notes, Text::LONG)?,
        };
        needs
            .check()
            .map_err(|e| FieldError::new(format!("needs.{}", e.field), e.message))?;
        Ok(needs)
    }
}

#[derive(InputObject, Default)]
pub struct ClientInput {
    pub name: Option<String>,
    /// Any common format; stored as E.164.
    pub phone: Option<String>,
    pub telegram_username: Option<String>,
    /// A lead of the workspace the request is for.
    pub lead_id: Option<ID>,
}

fn contact(
    name: Option<String>,
    phone: Option<String>,
    username: Option<String>,
    prefix: &str,
) -> Result<LeadContact, FieldError> {
    Ok(LeadContact {
        name: optional_text(&format!("{prefix}name"), name, Text::SHORT)?,
        phone: phone
            .filter(|p| !p.trim().is_empty())
            .map(|p| Phone::parse(&format!("{prefix}phone"), &p))
            .transpose()?,
        username: username
            .filter(|u| !u.trim().is_empty())
            .map(|u| TelegramUsername::parse(&format!("{prefix}telegramUsername"), &u))
            .transpose()?,
    })
}

impl ClientInput {
    async fn parse(self, ctx: &Context<'_>) -> Result<RequestClient, ApiError> {
        let lead_id = match self.lead_id.as_ref() {
            Some(id) => {
                let id = parse_id("client.leadId", id)?;
                let workspace = caller(ctx)?.principal.workspace_id;
                cartie_projections::leads::queries::get(&services(ctx).db, workspace.0, id)
                    .await?
                    .ok_or_else(|| {
                        ApiError::validation("client.leadId", "is not a lead of this workspace")
                    })?;
                Some(LeadId(id))
            }
            None => None,
        };
        let client = RequestClient {
            contact: contact(self.name, self.phone, self.telegram_username, "client.")?,
            lead_id,
        };
        client.check()?;
        Ok(client)
    }
}

#[derive(InputObject)]
pub struct DraftRequestInput {
    #[graphql(default)]
    pub needs: NeedsInput,
    #[graphql(default)]
    pub client: ClientInput,
    pub assignee_id: Option<ID>,
}

#[derive(InputObject)]
pub struct EditRequestInput {
    pub id: ID,
    #[graphql(default)]
    pub needs: NeedsInput,
    #[graphql(default)]
    pub client: ClientInput,
}

#[derive(InputObject)]
pub struct PublishRequestInput {
    pub id: ID,
    /// The partners to open the request to.
    #[graphql(default)]
    pub partner_ids: Vec<ID>,
    /// Open it to every active partner instead.
    #[graphql(default)]
    pub all_partners: bool,
}

#[derive(InputObject)]
pub struct OfferListingInput {
    pub request_id: ID,
    pub listing_id: ID,
    /// The price offered to the client; the listing's price when not given.
    pub price: Option<MoneyInput>,
}

/// A partner's car, offered for a request.
#[derive(InputObject)]
pub struct OfferVariantInput {
    pub request_id: ID,
    pub title: String,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year: Option<i32>,
    pub mileage_km: Option<i64>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    pub body: Option<BodyType>,
    pub description: Option<String>,
    pub price: MoneyInput,
    #[graphql(default)]
    pub photos: Vec<PhotoInput>,
    /// Where the car stands.
    pub city: Option<String>,
    /// The partner's own reference or link for the car.
    pub listing_ref: Option<String>,
}

#[derive(InputObject)]
pub struct PartnerContactInput {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub telegram_username: Option<String>,
}

#[derive(InputObject)]
pub struct PartnerInput {
    pub name: String,
    pub city: Option<String>,
    #[graphql(default)]
    pub contacts: Vec<PartnerContactInput>,
    pub notes: Option<String>,
}

impl PartnerInput {
    fn parse(self) -> Result<PartnerProfile, FieldError> {
        let contacts = self
            .contacts
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let prefix = format!("contacts[{i}].");
                Ok(PartnerContact {
                    name: Text::parse(&format!("{prefix}name"), &c.name, Text::SHORT)?,
                    phone: c
                        .phone
                        .filter(|p| !p.trim().is_empty())
                        .map(|p| Phone::parse(&format!("{prefix}phone"), &p))
                        .transpose()?,
                    email: c
                        .email
                        .filter(|e| !e.trim().is_empty())
                        .map(|e| Email::parse(&format!("{prefix}email"), &e))
                        .transpose()?,
                    telegram: c
                        .telegram_username
                        .filter(|u| !u.trim().is_empty())
                        .map(|u| TelegramUsername::parse(&format!("{prefix}telegramUsername"), &u))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, FieldError>>()?;
        let profile = PartnerProfile {
            name: Text::parse("name", &self.name, Text::SHORT)?,
            city: optional_text("city", self.city, Text::SHORT)?,
            contacts,
            notes: optional_text("notes", self.notes, Text::LONG)?,
        };
        profile.check()?;
        Ok(profile)
    }
}

/// What the dealer's website or Mini App sends for a client.
#[derive(InputObject)]
pub struct SubmitRequestInput {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub telegram_username: Option<String>,
    #[graphql(default)]
    pub needs: NeedsInput,
}

#[derive(SimpleObject)]
pub struct SubmittedRequest {
    /// The request's reference, to quote to the dealer.
    pub reference: ID,
}

#[derive(SimpleObject)]
pub struct PartnerContactNode {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub telegram_username: Option<String>,
}

/// A token a partner acts with.
#[derive(SimpleObject)]
pub struct PartnerToken {
    pub id: ID,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A partner dealer company.
pub struct PartnerNode(PartnerRow);

#[Object(name = "Partner")]
impl PartnerNode {
    async fn id(&self) -> ID {
        ID(self.0.partner_id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn city(&self) -> Option<&str> {
        self.0.city.as_deref()
    }

    async fn contacts(&self) -> Vec<PartnerContactNode> {
        self.0
            .contacts
            .0
            .iter()
            .map(|c| PartnerContactNode {
                name: c.name.clone(),
                phone: c.phone.clone(),
                email: c.email.clone(),
                telegram_username: c.telegram.clone(),
            })
            .collect()
    }

    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }

    /// A deactivated partner cannot be addressed and its tokens stop working.
    async fn active(&self) -> bool {
        self.0.active
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The partner's API tokens (revoke one with `revokeApiToken`).
    async fn tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PartnerToken>> {
        let rows =
            directory::partner_tokens(&services(ctx).db, self.0.workspace_id, self.0.partner_id)
                .await
                .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .map(|r| PartnerToken {
                id: ID(r.token_id.to_string()),
                name: r.name,
                created_at: r.created_at,
                revoked_at: r.revoked_at,
            })
            .collect())
    }
}

/// A partner's token just created: `token` is shown this once.
#[derive(SimpleObject)]
pub struct CreatedPartnerToken {
    pub token: String,
    pub partner: PartnerNode,
}

/// A request as a partner sees it: the needs, never the client.
pub struct PartnerRequestNode {
    row: RequestRow,
    partner: Uuid,
}

#[Object(name = "PartnerRequest")]
impl PartnerRequestNode {
    async fn id(&self) -> ID {
        ID(self.row.request_id.to_string())
    }

    async fn status(&self) -> async_graphql::Result<RequestStatus> {
        Ok(status_of(&self.row)?)
    }

    async fn needs(&self) -> async_graphql::Result<RequestNeeds> {
        Ok(needs_of(&self.row)?)
    }

    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.row.published_at
    }

    /// The variants this partner offered, none of anyone else's.
    async fn my_variants(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VariantNode>> {
        let rows = requests::variants(
            &services(ctx).db,
            self.row.workspace_id,
            self.row.request_id,
            Some(self.partner),
        )
        .await
        .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .map(VariantNode::from_row)
            .collect::<Result<_, _>>()?)
    }
}

#[derive(SimpleObject)]
pub struct PartnerRequestPage {
    pub nodes: Vec<PartnerRequestNode>,
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// A car of a proposal, as the client sees it.
#[derive(SimpleObject)]
pub struct ProposedCar {
    pub title: String,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year: Option<i64>,
    pub mileage_km: Option<i64>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    pub body: Option<BodyType>,
    pub description: Option<String>,
    pub price: MoneyAmount,
    pub photos: Vec<ListingPhoto>,
    pub city: Option<String>,
    /// The car the client chose.
    pub accepted: bool,
}

/// The read-only page a proposal link opens.
#[derive(SimpleObject)]
pub struct PublicProposal {
    /// The dealer's name.
    pub dealer: String,
    pub status: RequestStatus,
    pub needs: RequestNeeds,
    pub cars: Vec<ProposedCar>,
    pub shared_at: DateTime<Utc>,
}

async fn request_node(ctx: &Context<'_>, id: Uuid) -> Result<RequestNode, ApiError> {
    let workspace = caller(ctx)?.principal.workspace_id;
    requests::get(&services(ctx).db, workspace.0, id)
        .await?
        .map(RequestNode)
        .ok_or(ApiError::NotFound("request"))
}

/// Sends a command to a request as `by`; answers the position of its events.
async fn execute(
    services: &Services,
    context: CommandContext,
    id: Uuid,
    by: RequestActor,
    command: RequestCommand,
) -> Result<Option<cartie_store::LogPosition>, ApiError> {
    Ok(services
        .requests
        .execute(
            &id.to_string(),
            Command::new(context, RequestAction { by, command }),
        )
        .await?)
}

/// A dealer's command on a request; answers the request once the list shows it.
async fn request_command(
    ctx: &Context<'_>,
    id: &ID,
    field: &str,
    command: RequestCommand,
) -> Result<RequestNode, ApiError> {
    let caller: &RequestContext = caller(ctx)?;
    let id = parse_id(field, id)?;
    let services = services(ctx);
    let position = execute(
        services,
        caller.command_context(),
        id,
        RequestActor::Dealer,
        command,
    )
    .await?;
    shown(&services.requests_progress, position, "requests list").await?;
    request_node(ctx, id).await
}

async fn partner_command(
    ctx: &Context<'_>,
    id: Uuid,
    command: PartnerCommand,
) -> Result<PartnerNode, ApiError> {
    let caller = caller(ctx)?;
    let services = services(ctx);
    let position = services
        .partners
        .execute(
            &id.to_string(),
            Command::new(caller.command_context(), command),
        )
        .await?;
    shown(&services.requests_progress, position, "partners list").await?;
    requests::partner(&services.db, caller.principal.workspace_id.0, id)
        .await?
        .map(PartnerNode)
        .ok_or(ApiError::NotFound("partner"))
}

async fn assignee(ctx: &Context<'_>, id: Option<&ID>) -> Result<Option<UserId>, ApiError> {
    let Some(id) = id else { return Ok(None) };
    let user = parse_id("assigneeId", id)?;
    let workspace = caller(ctx)?.principal.workspace_id;
    match directory::membership(&services(ctx).db, workspace.0, user).await? {
        Some(m) if !m.disabled => Ok(Some(UserId(user))),
        _ => Err(ApiError::validation(
            "assigneeId",
            "is not an active member of this workspace",
        )),
    }
}

fn variant_id(id: &ID) -> Result<VariantId, ApiError> {
    parse_id("variantId", id).map(VariantId)
}

/// The variant's request, for a command naming only the variant.
async fn request_of_variant(ctx: &Context<'_>, variant: VariantId) -> Result<ID, ApiError> {
    let workspace = caller(ctx)?.principal.workspace_id;
    requests::variant(&services(ctx).db, workspace.0, variant.0)
        .await?
        .map(|v| ID(v.request_id.to_string()))
        .ok_or(ApiError::NotFound("variant"))
}

/// A dealer's command on one variant (found by its id); answers the variant as shown.
async fn variant_command(
    ctx: &Context<'_>,
    variant: &ID,
    command: impl FnOnce(VariantId) -> RequestCommand,
) -> async_graphql::Result<VariantNode> {
    let id = variant_id(variant)?;
    let request = request_of_variant(ctx, id).await?;
    request_command(ctx, &request, "variantId", command(id)).await?;
    variant_node(ctx, id).await
}

#[derive(Default)]
pub struct RequestsQuery;

#[Object]
impl RequestsQuery {
    /// Requests, newest first.
    #[graphql(
        complexity = "5 + first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE) as usize * child_complexity"
    )]
    async fn requests(
        &self,
        ctx: &Context<'_>,
        filter: Option<RequestFilterInput>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<RequestPage> {
        let workspace = caller(ctx)?.principal.workspace_id.0;
        let limit = page(first)?;
        let filter = filter.unwrap_or_default().parse()?;
        let before = cursor(after)?;
        let db = &services(ctx).db;
        // The count walks every matching request: only when asked for, and beside the page.
        let counted = ctx.look_ahead().field("totalCount").exists();
        let ((rows, more), total_count) = tokio::try_join!(
            requests::list(db, workspace, &filter, before, limit),
            async {
                if counted {
                    requests::count(db, workspace, &filter).await
                } else {
                    Ok(0)
                }
            }
        )
        .map_err(ApiError::from)?;
        let end_cursor = rows.last().map(|r| r.created_position.to_string());
        Ok(RequestPage {
            nodes: rows.into_iter().map(RequestNode).collect(),
            total_count,
            has_next_page: more,
            end_cursor,
        })
    }

    async fn request(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<RequestNode> {
        let id = parse_id("id", &id)?;
        Ok(request_node(ctx, id).await?)
    }

    /// The available listings of the inventory inside every need of the request, best
    /// first: with a budget the cheapest first, without one the newest first.
    #[graphql(
        complexity = "5 + first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE) as usize * child_complexity"
    )]
    async fn request_matches(
        &self,
        ctx: &Context<'_>,
        id: ID,
        first: Option<i64>,
    ) -> async_graphql::Result<Vec<ListingNode>> {
        let limit = page(first)?;
        let request = request_node(ctx, parse_id("id", &id)?).await?.0;
        let budget = match (request.budget_minor, &request.budget_currency) {
            (Some(max), Some(currency)) => Some((
                currency
                    .parse::<DomainCurrency>()
                    .map_err(|_| ApiError::internal(format!("unknown currency {currency:?}")))?,
                max,
            )),
            _ => None,
        };
        let needs = inventory::MatchNeeds {
            brand: request.brand.clone(),
            model: request.model.clone(),
            year_min: request.year_min,
            year_max: request.year_max,
            budget,
            mileage_max: request.mileage_max,
            fuel: request.fuel.as_deref().and_then(|v| v.parse().ok()),
            gearbox: request.gearbox.as_deref().and_then(|v| v.parse().ok()),
            body: request.body.as_deref().and_then(|v| v.parse().ok()),
            city: request.city.clone(),
        };
        let rows = inventory::matching(&services(ctx).db, request.workspace_id, &needs, limit)
            .await
            .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .map(ListingNode::try_from)
            .collect::<Result<_, _>>()?)
    }

    /// The workspace's partner dealers by name.
    async fn partners(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PartnerNode>> {
        let workspace = caller(ctx)?.principal.workspace_id.0;
        let rows = requests::partners(&services(ctx).db, workspace)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(PartnerNode).collect())
    }

    async fn partner(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<PartnerNode> {
        let workspace = caller(ctx)?.principal.workspace_id.0;
        let id = parse_id("id", &id)?;
        Ok(requests::partner(&services(ctx).db, workspace, id)
            .await
            .map_err(ApiError::from)?
            .map(PartnerNode)
            .ok_or(ApiError::NotFound("partner"))?)
    }

    /// The requests addressed to the calling partner, most recently addressed first.
    async fn partner_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<PartnerRequestPage> {
        let principal = caller(ctx)?.principal;
        let partner = principal
            .partner_id()
            .ok_or_else(|| ApiError::Forbidden("only partners can do this".into()))?;
        let limit = page(first)?;
        let (rows, more) = requests::for_partner(
            &services(ctx).db,
            principal.workspace_id.0,
            partner.0,
            cursor(after)?,
            limit,
        )
        .await
        .map_err(ApiError::from)?;
        let end_cursor = rows.last().map(|(at, _)| at.to_string());
        Ok(PartnerRequestPage {
            nodes: rows
                .into_iter()
                .map(|(_, row)| PartnerRequestNode {
                    row,
                    partner: partner.0,
                })
                .collect(),
            has_next_page: more,
            end_cursor,
        })
    }

    /// One request addressed to the calling partner; any other is not found.
    async fn partner_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<PartnerRequestNode> {
        let principal = caller(ctx)?.principal;
        let partner = principal
            .partner_id()
            .ok_or_else(|| ApiError::Forbidden("only partners can do this".into()))?;
        let id = parse_id("id", &id)?;
        let db = &services(ctx).db;
        if !requests::addressed_to(db, id, partner.0)
            .await
            .map_err(ApiError::from)?
        {
            return Err(ApiError::NotFound("request").into());
        }
        let row = requests::get(db, principal.workspace_id.0, id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("request"))?;
        Ok(PartnerRequestNode {
            row,
            partner: partner.0,
        })
    }

    /// The proposal a link's token opens: the shortlisted cars, read-only. A revoked or
    /// unknown token is not found.
    async fn proposal(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<PublicProposal> {
        Ok(public_proposal(services(ctx), &token).await?)
    }
}

async fn public_proposal(services: &Services, token: &str) -> Result<PublicProposal, ApiError> {
    let presented =
        OpaqueToken::parse(PROPOSAL_PREFIX, token).ok_or(ApiError::NotFound("proposal"))?;
    let stored = credentials::get(&services.db, presented.id, PROPOSAL_KIND).await?;
    if !stored.is_some_and(|c| presented.matches(&c.secret_hash)) {
        return Err(ApiError::NotFound("proposal"));
    }
    let proposal = requests::proposal(&services.db, presented.id)
        .await?
        .filter(|p| p.revoked_at.is_none())
        .ok_or(ApiError::NotFound("proposal"))?;
    let request = requests::get(&services.db, proposal.workspace_id, proposal.request_id)
        .await?
        .ok_or(ApiError::NotFound("proposal"))?;
    let dealer = directory::workspace(&services.db, proposal.workspace_id)
        .await?
        .map(|w| w.name)
        .unwrap_or_default();
    let cars =
        requests::proposed_variants(&services.db, proposal.workspace_id, proposal.request_id)
            .await?
            .into_iter()
            .map(|row| {
                let accepted = row.status == "ACCEPTED";
                let v = VariantNode::from_row(row)?;
                Ok(ProposedCar {
                    title: v.title,
                    brand: v.brand,
                    model: v.model,
                    year: v.year,
                    mileage_km: v.mileage_km,
                    fuel: v.fuel,
                    gearbox: v.gearbox,
                    body: v.body,
                    description: v.description,
                    price: v.price,
                    photos: v.photos,
                    city: v.city,
                    accepted,
                })
            })
            .collect::<Result<_, ApiError>>()?;
    let mut needs = needs_of(&request)?;
    // The dealer's notes stay with the dealer.
    needs.notes = None;
    Ok(PublicProposal {
        dealer,
        status: status_of(&request)?,
        needs,
        cars,
        shared_at: proposal.shared_at,
    })
}

#[derive(Default)]
pub struct RequestsMutation;

#[Object]
impl RequestsMutation {
    /// Drafts a request with the client's needs.
    async fn draft_request(
        &self,
        ctx: &Context<'_>,
        input: DraftRequestInput,
    ) -> async_graphql::Result<RequestNode> {
        let needs = input.needs.parse().map_err(ApiError::from)?;
        let client = input.client.parse(ctx).await?;
        let assignee = assignee(ctx, input.assignee_id.as_ref()).await?;
        let id = ID(RequestId::generate().to_string());
        Ok(request_command(
            ctx,
            &id,
            "id",
            RequestCommand::DraftRequest {
                needs,
                client,
                source: DomainSource::Manual,
                assignee,
            },
        )
        .await?)
    }

    /// Replaces a draft's needs and client.
    async fn edit_request(
        &self,
        ctx: &Context<'_>,
        input: EditRequestInput,
    ) -> async_graphql::Result<RequestNode> {
        let needs = input.needs.parse().map_err(ApiError::from)?;
        let client = input.client.parse(ctx).await?;
        Ok(request_command(
            ctx,
            &input.id,
            "id",
            RequestCommand::EditRequest { needs, client },
        )
        .await?)
    }

    /// Opens a request to partners (a published request to more of them).
    async fn publish_request(
        &self,
        ctx: &Context<'_>,
        input: PublishRequestInput,
    ) -> async_graphql::Result<RequestNode> {
        if input.all_partners && !input.partner_ids.is_empty() {
            return Err(ApiError::validation(
                "allPartners",
                "name partners or open it to all of them, not both",
            )
            .into());
        }
        let workspace = caller(ctx)?.principal.workspace_id.0;
        let active: Vec<Uuid> = requests::partners(&services(ctx).db, workspace)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .filter(|p| p.active)
            .map(|p| p.partner_id)
            .collect();
        let partners = if input.all_partners {
            active
        } else {
            let mut named = Vec::new();
            for (i, id) in input.partner_ids.iter().enumerate() {
                let field = format!("partnerIds[{i}]");
                let id = parse_id(&field, id)?;
                if !active.contains(&id) {
                    return Err(ApiError::validation(
                        &field,
                        "is not an active partner of this workspace",
                    )
                    .into());
                }
                named.push(id);
            }
            named
        };
        let partners = partners.into_iter().map(PartnerId).collect();
        Ok(request_command(
            ctx,
            &input.id,
            "id",
            RequestCommand::PublishRequest { partners },
        )
        .await?)
    }

    async fn assign_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
        assignee_id: Option<ID>,
    ) -> async_graphql::Result<RequestNode> {
        let assignee = assignee(ctx, assignee_id.as_ref()).await?;
        Ok(request_command(ctx, &id, "id", RequestCommand::AssignRequest { assignee }).await?)
    }

    /// Offers a listing of the dealer's own inventory for a request.
    async fn offer_listing(
        &self,
        ctx: &Context<'_>,
        input: OfferListingInput,
    ) -> async_graphql::Result<VariantNode> {
        let workspace = caller(ctx)?.principal.workspace_id.0;
        let listing_id = parse_id("listingId", &input.listing_id)?;
        let listing = inventory::get(&services(ctx).db, workspace, listing_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("listing"))?;
        let price = match input.price {
            Some(price) => price.parse("price").map_err(ApiError::from)?,
            None => match (listing.price_minor, &listing.price_currency) {
                (Some(amount), Some(currency)) => cartie_domain::values::Money {
                    amount_minor: amount,
                    currency: currency
                        .parse()
                        .map_err(|_| ApiError::internal("unknown currency in the inventory"))?,
                },
                _ => {
                    return Err(
                        ApiError::validation("price", "the listing has no price: give one").into(),
                    )
                }
            },
        };
        let now = Utc::now().year();
        let text = |field: &str, v: &Option<String>, max| -> Result<Option<Text>, FieldError> {
            v.as_deref()
                .map(|v| Text::parse_multiline(field, v, max))
                .transpose()
        };
        let photos = cartie_domain::listing::Photos::parse("photos", listing.photos.0.clone())
            .map_err(ApiError::from)?;
        let car = OfferedCar {
            title: Text::parse("title", &listing.title, Text::TITLE).map_err(ApiError::from)?,
            brand: text("brand", &listing.brand, Text::SHORT).map_err(ApiError::from)?,
            model: text("model", &listing.model, Text::SHORT).map_err(ApiError::from)?,
            // Stored values were valid when written; a year past the range is dropped.
            year: listing
                .year
                .and_then(|y| Year::parse("year", y, now.max(y)).ok()),
            mileage: listing
                .mileage_km
                .and_then(|m| Mileage::parse("mileageKm", m).ok()),
            fuel: listing.fuel.as_deref().and_then(|f| f.parse().ok()),
            gearbox: listing.gearbox.as_deref().and_then(|g| g.parse().ok()),
            body: listing.body.as_deref().and_then(|b| b.parse().ok()),
            description: text("description", &listing.description, Text::LONG)
                .map_err(ApiError::from)?,
        };
        let variant = Variant {
            source: DomainVariantSource::Own {
                listing_id: ListingId(listing_id),
            },
            car,
            price,
            photos,
            city: text("city", &listing.city, Text::SHORT).map_err(ApiError::from)?,
        };
        let variant_id = VariantId::generate();
        request_command(
            ctx,
            &input.request_id,
            "requestId",
            RequestCommand::OfferVariant {
                variant_id,
                variant,
            },
        )
        .await?;
        variant_node(ctx, variant_id).await
    }

    async fn shortlist_variant(
        &self,
        ctx: &Context<'_>,
        variant_id: ID,
    ) -> async_graphql::Result<VariantNode> {
        variant_command(ctx, &variant_id, |variant_id| {
            RequestCommand::ShortlistVariant { variant_id }
        })
        .await
    }

    async fn reject_variant(
        &self,
        ctx: &Context<'_>,
        variant_id: ID,
        reason: String,
    ) -> async_graphql::Result<VariantNode> {
        let reason =
            Text::parse_multiline("reason", &reason, Text::TITLE).map_err(ApiError::from)?;
        variant_command(ctx, &variant_id, |variant_id| {
            RequestCommand::RejectVariant { variant_id, reason }
        })
        .await
    }

    async fn accept_variant(
        &self,
        ctx: &Context<'_>,
        variant_id: ID,
    ) -> async_graphql::Result<VariantNode> {
        variant_command(ctx, &variant_id, |variant_id| {
            RequestCommand::AcceptVariant { variant_id }
        })
        .await
    }

    /// Shares the shortlisted and accepted variants with the client: the token (shown this
    /// once) opens them read-only with `proposal(token:)` until revoked.
    async fn share_proposal(
        &self,
        ctx: &Context<'_>,
        request_id: ID,
    ) -> async_graphql::Result<SharedProposal> {
        let caller = caller(ctx)?;
        let request = parse_id("requestId", &request_id)?;
        let services = services(ctx);
        let proposal_id = ProposalId::generate();
        let token = OpaqueToken::generate(proposal_id.0);
        // The secret's hash first: a proposal the log knows of always has one.
        credentials::put(
            &services.db,
            proposal_id.0,
            PROPOSAL_KIND,
            &token.hash(),
            None,
        )
        .await
        .map_err(ApiError::from)?;
        let position = execute(
            services,
            caller.command_context(),
            request,
            RequestActor::Dealer,
            RequestCommand::ShareProposal { proposal_id },
        )
        .await;
        let position = match position {
            Ok(position) => position,
            Err(error) => {
                credentials::delete(&services.db, proposal_id.0, PROPOSAL_KIND)
                    .await
                    .map_err(ApiError::from)?;
                return Err(error.into());
            }
        };
        shown(&services.requests_progress, position, "requests list").await?;
        let row = requests::proposal(&services.db, proposal_id.0)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("proposal"))?;
        Ok(SharedProposal {
            proposal: ProposalNode {
                id: ID(row.proposal_id.to_string()),
                shared_at: row.shared_at,
                revoked_at: row.revoked_at,
            },
            token: token.reveal(PROPOSAL_PREFIX).expose_secret().to_string(),
        })
    }

    /// Revokes a proposal link: it stops opening before this answers.
    async fn revoke_proposal(
        &self,
        ctx: &Context<'_>,
        request_id: ID,
        proposal_id: ID,
    ) -> async_graphql::Result<RequestNode> {
        let proposal = ProposalId(parse_id("proposalId", &proposal_id)?);
        let node = request_command(
            ctx,
            &request_id,
            "requestId",
            RequestCommand::RevokeProposal {
                proposal_id: proposal,
            },
        )
        .await?;
        credentials::delete(&services(ctx).db, proposal.0, PROPOSAL_KIND)
            .await
            .map_err(ApiError::from)?;
        Ok(node)
    }

    /// Closes a request as won with its accepted variant.
    async fn close_request_won(
        &self,
        ctx: &Context<'_>,
        id: ID,
        variant_id: ID,
    ) -> async_graphql::Result<RequestNode> {
        let variant_id = self::variant_id(&variant_id)?;
        Ok(request_command(ctx, &id, "id", RequestCommand::CloseWon { variant_id }).await?)
    }

    async fn close_request_lost(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> async_graphql::Result<RequestNode> {
        let reason =
            Text::parse_multiline("reason", &reason, Text::TITLE).map_err(ApiError::from)?;
        Ok(request_command(ctx, &id, "id", RequestCommand::CloseLost { reason }).await?)
    }

    /// Records that the request was posted to a Telegram channel.
    async fn record_channel_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        channel: String,
        message_id: i64,
    ) -> async_graphql::Result<RequestNode> {
        let channel = Text::parse("channel", &channel, Text::SHORT).map_err(ApiError::from)?;
        Ok(request_command(
            ctx,
            &id,
            "id",
            RequestCommand::RecordChannelPost {
                channel,
                message_id,
            },
        )
        .await?)
    }

    async fn register_partner(
        &self,
        ctx: &Context<'_>,
        input: PartnerInput,
    ) -> async_graphql::Result<PartnerNode> {
        let profile = input.parse().map_err(ApiError::from)?;
        Ok(partner_command(
            ctx,
            PartnerId::generate().0,
            PartnerCommand::RegisterPartner { profile },
        )
        .await?)
    }

    async fn update_partner(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: PartnerInput,
    ) -> async_graphql::Result<PartnerNode> {
        let id = parse_id("id", &id)?;
        let profile = input.parse().map_err(ApiError::from)?;
        Ok(partner_command(ctx, id, PartnerCommand::UpdatePartner { profile }).await?)
    }

    /// Deactivates a partner: it cannot be addressed and its tokens stop working.
    async fn deactivate_partner(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<PartnerNode> {
        let id = parse_id("id", &id)?;
        Ok(partner_command(ctx, id, PartnerCommand::DeactivatePartner).await?)
    }

    async fn reactivate_partner(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<PartnerNode> {
        let id = parse_id("id", &id)?;
        Ok(partner_command(ctx, id, PartnerCommand::ReactivatePartner).await?)
    }

    /// Creates an API token the partner acts with (role PARTNER), shown this once.
    async fn create_partner_token(
        &self,
        ctx: &Context<'_>,
        partner_id: ID,
        name: String,
    ) -> async_graphql::Result<CreatedPartnerToken> {
        let caller = caller(ctx)?;
        let id = parse_id("partnerId", &partner_id)?;
        let name = Text::parse("name", &name, Text::SHORT).map_err(ApiError::from)?;
        let services = services(ctx);
        let partner = requests::partner(&services.db, caller.principal.workspace_id.0, id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("partner"))?;
        let (_, token) = crate::accounts::create_partner_token(
            services,
            caller.command_context(),
            name,
            PartnerId(id),
        )
        .await?;
        Ok(CreatedPartnerToken {
            token: token.expose_secret().to_string(),
            partner: PartnerNode(partner),
        })
    }

    /// A partner offers a car for a request addressed to it.
    async fn offer_variant(
        &self,
        ctx: &Context<'_>,
        input: OfferVariantInput,
    ) -> async_graphql::Result<VariantNode> {
        let caller = caller(ctx)?;
        let partner = caller
            .principal
            .partner_id()
            .ok_or_else(|| ApiError::Forbidden("only partners can do this".into()))?;
        let request = parse_id("requestId", &input.request_id)?;
        let now = Utc::now().year();
        let car = OfferedCar {
            title: Text::parse("title", &input.title, Text::TITLE).map_err(ApiError::from)?,
            brand: optional_text("brand", input.brand, Text::SHORT).map_err(ApiError::from)?,
            model: optional_text("model", input.model, Text::SHORT).map_err(ApiError::from)?,
            year: input
                .year
                .map(|y| Year::parse("year", y, now))
                .transpose()
                .map_err(ApiError::from)?,
            mileage: input
                .mileage_km
                .map(|m| Mileage::parse("mileageKm", m))
                .transpose()
                .map_err(ApiError::from)?,
            fuel: input.fuel.map(Into::into),
            gearbox: input.gearbox.map(Into::into),
            body: input.body.map(Into::into),
            description: optional_text("description", input.description, Text::LONG)
                .map_err(ApiError::from)?,
        };
        let variant = Variant {
            source: DomainVariantSource::Partner {
                partner_id: partner,
                listing_ref: optional_text("listingRef", input.listing_ref, Text::TITLE)
                    .map_err(ApiError::from)?,
            },
            car,
            price: input.price.parse("price").map_err(ApiError::from)?,
            photos: parse_photos(input.photos).map_err(ApiError::from)?,
            city: optional_text("city", input.city, Text::SHORT).map_err(ApiError::from)?,
        };
        let services = services(ctx);
        let variant_id = VariantId::generate();
        let position = execute(
            services,
            caller.command_context(),
            request,
            RequestActor::Partner(partner),
            RequestCommand::OfferVariant {
                variant_id,
                variant,
            },
        )
        .await
        // A request not addressed to the partner is, to the partner, not there at all.
        .map_err(|error| match error {
            ApiError::NotFound(_) => {
                ApiError::Forbidden("the request is not addressed to this partner".into())
            }
            other => other,
        })?;
        shown(&services.requests_progress, position, "requests list").await?;
        variant_node(ctx, variant_id).await
    }

    /// The dealer's website or Mini App submits a client's request: it becomes a lead and a
    /// draft request. No sign-in; limited per client address.
    async fn submit_request(
        &self,
        ctx: &Context<'_>,
        workspace_slug: String,
        input: SubmitRequestInput,
    ) -> async_graphql::Result<SubmittedRequest> {
        let services = services(ctx);
        let client_address = ctx.data_opt::<ClientAddress>().and_then(|c| c.0);
        services.throttle.submission(client_address)?;
        // The platform's own workspace is no dealer: it takes no requests from the public.
        let workspace = directory::workspace_by_slug(&services.db, workspace_slug.trim())
            .await
            .map_err(ApiError::from)?
            .filter(|w| w.slug != cartie_domain::workspace::PLATFORM_SLUG)
            .ok_or(ApiError::NotFound("workspace"))?;
        let needs = input.needs.parse().map_err(ApiError::from)?;
        let contact = contact(input.name, input.phone, input.telegram_username, "")
            .map_err(ApiError::from)?;
        if contact.phone.is_none() && contact.username.is_none() {
            return Err(ApiError::validation(
                "phone",
                "give a phone or a Telegram username to be reached at",
            )
            .into());
        }
        let context = CommandContext::new(workspace.workspace_id.into(), Actor::System, Utc::now());
        let lead_id = LeadId::generate();
        services
            .leads
            .execute(
                &lead_id.to_string(),
                Command::new(
                    context.clone(),
                    LeadCommand::CaptureLead {
                        source: LeadSource::Form,
                        contact: contact.clone(),
                        interest: Interest {
                            brand: needs.brand.clone(),
                            model: needs.model.clone(),
                            budget: needs.budget,
                            listing_id: None,
                        },
                        conversation_id: None,
                        assignee: None,
                    },
                ),
            )
            .await
            .map_err(ApiError::from)?;
        let request_id = RequestId::generate();
        execute(
            services,
            context,
            request_id.0,
            RequestActor::Dealer,
            RequestCommand::DraftRequest {
                needs,
                client: RequestClient {
                    contact,
                    lead_id: Some(lead_id),
                },
                source: DomainSource::PublicIntake,
                assignee: None,
            },
        )
        .await?;
        Ok(SubmittedRequest {
            reference: ID(request_id.to_string()),
        })
    }
}

async fn variant_node(ctx: &Context<'_>, id: VariantId) -> async_graphql::Result<VariantNode> {
    let workspace = caller(ctx)?.principal.workspace_id.0;
    let row = requests::variant(&services(ctx).db, workspace, id.0)
        .await
        .map_err(ApiError::from)?
        .ok_or(ApiError::NotFound("variant"))?;
    Ok(VariantNode::from_row(row)?)
}

/// The request as it changes (new variants, their status, publishing, closing), from the
/// Requests read model.
pub(crate) async fn request_changes(
    ctx: &Context<'_>,
    id: ID,
) -> async_graphql::Result<impl futures::Stream<Item = RequestNode>> {
    let caller = super::inbox::subscriber(ctx, "requestChanged")?;
    let workspace = caller.principal.workspace_id.0;
    let token = ctx.data_opt::<WebSocketSession>().map(|s| s.token.clone());
    let request = parse_id("id", &id)?;
    let services = ctx.data_unchecked::<Arc<Services>>().clone();
    let last = requests::changed_position(&services.db, workspace, request)
        .await
        .map_err(ApiError::from)?
        .ok_or(ApiError::NotFound("request"))?;
    let progress = services.requests_progress.clone();
    Ok(futures::stream::unfold(
        (services, progress, last, token),
        move |(services, mut progress, last, token)| async move {
            loop {
                if !super::inbox::still_authorised(&services, token.as_ref()).await {
                    return None;
                }
                match requests::get(&services.db, workspace, request).await {
                    Ok(Some(row)) if row.changed_position > last => {
                        let at = row.changed_position;
                        return Some((RequestNode(row), (services, progress, at, token)));
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "subscription: cannot read the request"),
                }
                if !progress.changed().await {
                    return None;
                }
            }
        },
    ))
}
