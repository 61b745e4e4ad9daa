//! The Requests read model: every B2B request of a workspace with what its list filters by,
//! the count of its variants and its best offer; the variants; the partners each request
//! is addressed to; the proposals shared with clients; and the workspace's partners.

pub mod queries;

use cartie_domain::listing::Photo;
use cartie_domain::partner::{Partner, PartnerContact, PartnerEvent, PartnerProfile};
use cartie_domain::request::{Needs, Request, RequestClient, RequestEvent, Variant, VariantSource};
use cartie_domain::values::Text;
use cartie_store::{on_tx, StoredEvent, Tx};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use crate::runner::{ProjectionError, Projector};

/// A post of a request in a Telegram channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPost {
    pub channel: String,
    pub message_id: i64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RequestRow {
    pub request_id: Uuid,
    pub workspace_id: Uuid,
    pub status: String,
    pub source: String,
    pub assignee: Option<Uuid>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year_min: Option<i64>,
    pub year_max: Option<i64>,
    pub budget_minor: Option<i64>,
    pub budget_currency: Option<String>,
    pub mileage_max: Option<i64>,
    pub fuel: Option<String>,
    pub gearbox: Option<String>,
    pub body: Option<String>,
    pub city: Option<String>,
    pub notes: Option<String>,
    pub client_name: Option<String>,
    pub client_phone: Option<String>,
    pub client_username: Option<String>,
    pub lead_id: Option<Uuid>,
    pub lost_reason: Option<String>,
    pub won_variant_id: Option<Uuid>,
    pub variant_count: i64,
    pub offer_currency: Option<String>,
    pub best_offer_minor: Option<i64>,
    pub channel_posts: Json<Vec<ChannelPost>>,
    pub version: i64,
    pub created_position: i64,
    pub changed_position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

pub const REQUEST_COLUMNS: &str = "request_id, workspace_id, status, source, assignee, brand, \
    model, year_min, year_max, budget_minor, budget_currency, mileage_max, fuel, gearbox, body, \
    city, notes, client_name, client_phone, client_username, lead_id, lost_reason, won_variant_id, \
    variant_count, offer_currency, best_offer_minor, channel_posts, version, created_position, \
    changed_position, created_at, updated_at, published_at, closed_at";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VariantRow {
    pub variant_id: Uuid,
    pub request_id: Uuid,
    pub workspace_id: Uuid,
    /// `OWN` or `PARTNER`.
    pub source: String,
    pub partner_id: Option<Uuid>,
    pub listing_id: Option<Uuid>,
    pub listing_ref: Option<String>,
    pub title: String,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub year: Option<i64>,
    pub mileage_km: Option<i64>,
    pub fuel: Option<String>,
    pub gearbox: Option<String>,
    pub body: Option<String>,
    pub description: Option<String>,
    pub price_minor: i64,
    pub price_currency: String,
    pub photos: Json<Vec<Photo>>,
    pub city: Option<String>,
    pub status: String,
    pub reject_reason: Option<String>,
    pub offered_position: i64,
    pub offered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const VARIANT_COLUMNS: &str = "variant_id, request_id, workspace_id, source, partner_id, \
    listing_id, listing_ref, title, brand, model, year, mileage_km, fuel, gearbox, body, \
    description, price_minor, price_currency, photos, city, status, reject_reason, \
    offered_position, offered_at, updated_at";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProposalRow {
    pub proposal_id: Uuid,
    pub request_id: Uuid,
    pub workspace_id: Uuid,
    pub shared_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A contact of a partner as the read model keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRow {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub telegram: Option<String>,
}

impl From<&PartnerContact> for ContactRow {
    fn from(contact: &PartnerContact) -> Self {
        Self {
            name: contact.name.as_str().to_string(),
            phone: contact.phone.as_ref().map(|p| p.as_str().to_string()),
            email: contact.email.as_ref().map(|e| e.as_str().to_string()),
            telegram: contact.telegram.as_ref().map(|t| t.as_str().to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PartnerRow {
    pub partner_id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub city: Option<String>,
    pub contacts: Json<Vec<ContactRow>>,
    pub notes: Option<String>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const PARTNER_COLUMNS: &str =
    "partner_id, workspace_id, name, city, contacts, notes, active, version, created_at, updated_at";

/// Projects request and partner events. Every change to a request first moves the
/// request's version past the event's; when the row is there already at that version the
/// event was applied before and is passed over, so applying events twice changes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestsProjector;

impl RequestsProjector {
    pub const NAME: &'static str = "requests";
}

fn key(text: Option<&str>) -> Option<String> {
    text.map(str::to_lowercase)
}

#[async_trait::async_trait]
impl Projector for RequestsProjector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Request::TYPE, Partner::TYPE])
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "requests",
            "request_variants",
            "request_partners",
            "request_proposals",
            "partners",
        ]
    }

    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        for stored in events {
            let id: Uuid = match stored.aggregate_type.as_str() {
                t if t == Request::TYPE || t == Partner::TYPE => stored
                    .aggregate_id
                    .parse()
                    .map_err(|e| ProjectionError::undecodable(stored, e))?,
                _ => continue,
            };
            if stored.aggregate_type == Request::TYPE {
                let event: RequestEvent = stored
                    .payload()
                    .map_err(|e| ProjectionError::undecodable(stored, e))?;
                apply_request(tx, id, stored, event).await?;
            } else {
                let event: PartnerEvent = stored
                    .payload()
                    .map_err(|e| ProjectionError::undecodable(stored, e))?;
                apply_partner(tx, id, stored, event).await?;
            }
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        on_tx!(tx, conn => {
            for table in ["requests", "request_variants", "request_partners", "request_proposals", "partners"] {
                sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *conn).await?;
            }
        });
        Ok(())
    }
}

/// The needs and client columns, in the order `bind_needs` binds them.
const NEEDS_COLUMNS: [&str; 18] = [
    "brand",
    "model",
    "brand_key",
    "model_key",
    "year_min",
    "year_max",
    "budget_minor",
    "budget_currency",
    "mileage_max",
    "fuel",
    "gearbox",
    "body",
    "city",
    "notes",
    "client_name",
    "client_phone",
    "client_username",
    "lead_id",
];

/// Binds the values of [`NEEDS_COLUMNS`] in order.
macro_rules! bind_needs {
    ($query:expr, $needs:expr, $client:expr) => {{
        let (needs, client): (&Needs, &RequestClient) = ($needs, $client);
        let text = |t: &Option<Text>| t.as_ref().map(|t| t.as_str().to_string());
        let contact = &client.contact;
        $query
            .bind(text(&needs.brand))
            .bind(text(&needs.model))
            .bind(key(needs.brand.as_ref().map(Text::as_str)))
            .bind(key(needs.model.as_ref().map(Text::as_str)))
            .bind(needs.year_min.map(|y| y.value() as i64))
            .bind(needs.year_max.map(|y| y.value() as i64))
            .bind(needs.budget.map(|b| b.amount_minor))
            .bind(needs.budget.map(|b| b.currency.code()))
            .bind(needs.mileage_max.map(|m| m.km()))
            .bind(needs.fuel.map(|f| f.as_str()))
            .bind(needs.gearbox.map(|g| g.as_str()))
            .bind(needs.body.map(|b| b.as_str()))
            .bind(text(&needs.city))
            .bind(text(&needs.notes))
            .bind(text(&contact.name))
            .bind(contact.phone.as_ref().map(|p| p.as_str().to_string()))
            .bind(contact.username.as_ref().map(|u| u.as_str().to_string()))
            .bind(client.lead_id.map(|l| l.0))
    }};
}

async fn apply_request(
    tx: &mut Tx,
    id: Uuid,
    stored: &StoredEvent,
    event: RequestEvent,
) -> Result<(), ProjectionError> {
    let (at, version, position) = (
        stored.recorded_at,
        stored.sequence,
        stored.position.global_position,
    );
    on_tx!(&mut *tx, conn => {
        if let RequestEvent::RequestDrafted { workspace_id, needs, client, source, assignee } = &event {
            let columns = NEEDS_COLUMNS.join(", ");
            let sql = format!(
                "INSERT INTO requests (request_id, workspace_id, status, source, assignee, {columns}, \
                 variant_count, offer_currency, channel_posts, version, created_position, changed_position, \
                 created_at, updated_at) VALUES ($1, $2, 'DRAFT', $3, $4, \
                 $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
                 0, $12, $23, $24, $25, $25, $26, $26) ON CONFLICT (request_id) DO NOTHING"
            );
            let query = sqlx::query(&sql)
                .bind(id)
                .bind(workspace_id.0)
                .bind(source.as_str())
                .bind(assignee.map(|a| a.0));
            bind_needs!(query, needs, client)
                .bind(Json(Vec::<ChannelPost>::new()))
                .bind(version)
                .bind(position)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            return Ok(());
        }
        // Moves the request to this event's version; nothing moved: applied before.
        let moved = sqlx::query(
            "UPDATE requests SET version = $2, changed_position = $3, updated_at = $4 \
             WHERE request_id = $1 AND version < $2",
        )
        .bind(id)
        .bind(version)
        .bind(position)
        .bind(at)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(());
        }
        let mut recount = false;
        match event {
            RequestEvent::RequestDrafted { .. } => unreachable!("handled above"),
            RequestEvent::RequestEdited { needs, client } => {
                let assignments: Vec<String> = NEEDS_COLUMNS
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{c} = ${}", i + 2))
                    .collect();
                // A budget in another currency makes offers count in that one.
                let sql = format!(
                    "UPDATE requests SET {}, offer_currency = COALESCE($9, offer_currency) WHERE request_id = $1",
                    assignments.join(", ")
                );
                let query = sqlx::query(&sql).bind(id);
                bind_needs!(query, &needs, &client).execute(&mut *conn).await?;
                recount = true;
            }
            RequestEvent::RequestPublished { partners } | RequestEvent::RequestAddressed { partners } => {
                sqlx::query(
                    "UPDATE requests SET status = 'PUBLISHED', published_at = COALESCE(published_at, $2) \
                     WHERE request_id = $1",
                )
                .bind(id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                for partner in partners {
                    sqlx::query(
                        "INSERT INTO request_partners (request_id, partner_id, workspace_id, addressed_position, addressed_at) \
                         SELECT request_id, $2, workspace_id, $3, $4 FROM requests WHERE request_id = $1 \
                         ON CONFLICT (request_id, partner_id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(partner.0)
                    .bind(position)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            RequestEvent::RequestAssigned { assignee } => {
                sqlx::query("UPDATE requests SET assignee = $2 WHERE request_id = $1")
                    .bind(id)
                    .bind(assignee.map(|a| a.0))
                    .execute(&mut *conn)
                    .await?;
            }
            RequestEvent::VariantOffered { variant_id, variant } => {
                let Variant { source, car, price, photos, city } = variant;
                let (kind, partner, listing, listing_ref) = match source {
                    VariantSource::Own { listing_id } => ("OWN", None, Some(listing_id.0), None),
                    VariantSource::Partner { partner_id, listing_ref } => (
                        "PARTNER",
                        Some(partner_id.0),
                        None,
                        listing_ref.map(|r| r.as_str().to_string()),
                    ),
                };
                let text = |t: Option<Text>| t.map(|t| t.as_str().to_string());
                sqlx::query(&format!(
                    "INSERT INTO request_variants ({VARIANT_COLUMNS}) \
                     SELECT $1, request_id, workspace_id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                     $13, $14, $15, $16, $17, $18, 'OFFERED', NULL, $19, $20, $20 \
                     FROM requests WHERE request_id = $21 ON CONFLICT (variant_id) DO NOTHING"
                ))
                .bind(variant_id.0)
                .bind(kind)
                .bind(partner)
                .bind(listing)
                .bind(listing_ref)
                .bind(car.title.as_str().to_string())
                .bind(text(car.brand))
                .bind(text(car.model))
                .bind(car.year.map(|y| y.value() as i64))
                .bind(car.mileage.map(|m| m.km()))
                .bind(car.fuel.map(|f| f.as_str()))
                .bind(car.gearbox.map(|g| g.as_str()))
                .bind(car.body.map(|b| b.as_str()))
                .bind(text(car.description))
                .bind(price.amount_minor)
                .bind(price.currency.code())
                .bind(Json(photos.as_slice().to_vec()))
                .bind(text(city))
                .bind(position)
                .bind(at)
                .bind(id)
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE requests SET offer_currency = COALESCE(offer_currency, $2) WHERE request_id = $1")
                    .bind(id)
                    .bind(price.currency.code())
                    .execute(&mut *conn)
                    .await?;
                recount = true;
            }
            RequestEvent::VariantShortlisted { variant_id }
            | RequestEvent::VariantAccepted { variant_id } => {
                let status = if matches!(event, RequestEvent::VariantAccepted { .. }) { "ACCEPTED" } else { "SHORTLISTED" };
                sqlx::query(
                    "UPDATE request_variants SET status = $3, reject_reason = NULL, updated_at = $4 \
                     WHERE variant_id = $1 AND request_id = $2",
                )
                .bind(variant_id.0)
                .bind(id)
                .bind(status)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                recount = true;
            }
            RequestEvent::VariantRejected { variant_id, reason } => {
                sqlx::query(
                    "UPDATE request_variants SET status = 'REJECTED', reject_reason = $3, updated_at = $4 \
                     WHERE variant_id = $1 AND request_id = $2",
                )
                .bind(variant_id.0)
                .bind(id)
                .bind(reason.as_str())
                .bind(at)
                .execute(&mut *conn)
                .await?;
                recount = true;
            }
            RequestEvent::ProposalShared { proposal_id } => {
                sqlx::query(
                    "INSERT INTO request_proposals (proposal_id, request_id, workspace_id, shared_at) \
                     SELECT $1, request_id, workspace_id, $3 FROM requests WHERE request_id = $2 \
                     ON CONFLICT (proposal_id) DO NOTHING",
                )
                .bind(proposal_id.0)
                .bind(id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            RequestEvent::ProposalRevoked { proposal_id } => {
                sqlx::query(
                    "UPDATE request_proposals SET revoked_at = $3 \
                     WHERE proposal_id = $1 AND request_id = $2 AND revoked_at IS NULL",
                )
                .bind(proposal_id.0)
                .bind(id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            RequestEvent::RequestWon { variant_id } => {
                sqlx::query(
                    "UPDATE requests SET status = 'WON', won_variant_id = $2, closed_at = $3 WHERE request_id = $1",
                )
                .bind(id)
                .bind(variant_id.0)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            RequestEvent::RequestLost { reason } => {
                sqlx::query(
                    "UPDATE requests SET status = 'LOST', lost_reason = $2, closed_at = $3 WHERE request_id = $1",
                )
                .bind(id)
                .bind(reason.as_str())
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            RequestEvent::RequestPostedToChannel { channel, message_id } => {
                let posts: Option<Json<Vec<ChannelPost>>> =
                    sqlx::query_scalar("SELECT channel_posts FROM requests WHERE request_id = $1")
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                let mut posts = posts.map(|p| p.0).unwrap_or_default();
                posts.push(ChannelPost { channel: channel.as_str().to_string(), message_id });
                sqlx::query("UPDATE requests SET channel_posts = $2 WHERE request_id = $1")
                    .bind(id)
                    .bind(Json(posts))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        if recount {
            sqlx::query(
                "UPDATE requests SET \
                 variant_count = (SELECT COUNT(*) FROM request_variants v WHERE v.request_id = $1), \
                 best_offer_minor = (SELECT MIN(v.price_minor) FROM request_variants v \
                   WHERE v.request_id = $1 AND v.status <> 'REJECTED' AND v.price_currency = requests.offer_currency) \
                 WHERE request_id = $1",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
    });
    Ok(())
}

async fn apply_partner(
    tx: &mut Tx,
    id: Uuid,
    stored: &StoredEvent,
    event: PartnerEvent,
) -> Result<(), ProjectionError> {
    let (at, version) = (stored.recorded_at, stored.sequence);
    let profile_values = |profile: &PartnerProfile| {
        (
            profile.name.as_str().to_string(),
            profile.city.as_ref().map(|c| c.as_str().to_string()),
            Json(
                profile
                    .contacts
                    .iter()
                    .map(ContactRow::from)
                    .collect::<Vec<_>>(),
            ),
            profile.notes.as_ref().map(|n| n.as_str().to_string()),
        )
    };
    on_tx!(tx, conn => {
        match event {
            PartnerEvent::PartnerRegistered { workspace_id, profile } => {
                let (name, city, contacts, notes) = profile_values(&profile);
                sqlx::query(&format!(
                    "INSERT INTO partners ({PARTNER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                     ON CONFLICT (partner_id) DO NOTHING"
                ))
                .bind(id)
                .bind(workspace_id.0)
                .bind(name)
                .bind(city)
                .bind(contacts)
                .bind(notes)
                .bind(true)
                .bind(version)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            PartnerEvent::PartnerUpdated { profile } => {
                let (name, city, contacts, notes) = profile_values(&profile);
                sqlx::query(
                    "UPDATE partners SET name = $2, city = $3, contacts = $4, notes = $5, version = $6, \
                     updated_at = $7 WHERE partner_id = $1 AND version < $6",
                )
                .bind(id)
                .bind(name)
                .bind(city)
                .bind(contacts)
                .bind(notes)
                .bind(version)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            PartnerEvent::PartnerDeactivated | PartnerEvent::PartnerReactivated => {
                sqlx::query(
                    "UPDATE partners SET active = $2, version = $3, updated_at = $4 \
                     WHERE partner_id = $1 AND version < $3",
                )
                .bind(id)
                .bind(matches!(event, PartnerEvent::PartnerReactivated))
                .bind(version)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
        }
    });
    Ok(())
}
