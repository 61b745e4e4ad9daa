//! The Leads read model: every lead of a workspace with what its list filters by.

pub mod queries;

use cartie_domain::lead::{Lead, LeadEvent, LeadStatus};
use cartie_store::{on_tx, StoredEvent, Tx};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use uuid::Uuid;

use crate::runner::{ProjectionError, Projector};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeadRow {
    pub lead_id: Uuid,
    pub workspace_id: Uuid,
    pub source: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub username: Option<String>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub budget_minor: Option<i64>,
    pub budget_currency: Option<String>,
    pub listing_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
    pub status: String,
    pub lost_reason: Option<String>,
    pub assignee: Option<Uuid>,
    pub notes: i64,
    pub version: i64,
    pub created_position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const LEAD_COLUMNS: &str = "lead_id, workspace_id, source, name, phone, username, brand, model, \
    budget_minor, budget_currency, listing_id, conversation_id, status, lost_reason, assignee, notes, \
    version, created_position, created_at, updated_at";

/// Projects lead events into `leads`. Each update applies only to a row at the version
/// before the event, so applying an event twice changes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct LeadsProjector;

impl LeadsProjector {
    pub const NAME: &'static str = "leads";
}

#[async_trait::async_trait]
impl Projector for LeadsProjector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Lead::TYPE])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["leads"]
    }

    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        for stored in events.iter().filter(|e| e.aggregate_type == Lead::TYPE) {
            let id: Uuid = stored
                .aggregate_id
                .parse()
                .map_err(|e| ProjectionError::undecodable(stored, e))?;
            let event: LeadEvent = stored
                .payload()
                .map_err(|e| ProjectionError::undecodable(stored, e))?;
            let (at, version) = (stored.recorded_at, stored.sequence);
            on_tx!(&mut *tx, conn => {
                match event {
                    LeadEvent::LeadCaptured { workspace_id, source, contact, interest, conversation_id, assignee } => {
                        sqlx::query(&format!(
                            "INSERT INTO leads ({LEAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                             $11, $12, 'NEW', NULL, $13, 0, $14, $15, $16, $16) ON CONFLICT (lead_id) DO NOTHING"
                        ))
                        .bind(id)
                        .bind(workspace_id.0)
                        .bind(source.as_str())
                        .bind(contact.name.as_ref().map(|n| n.as_str()))
                        .bind(contact.phone.as_ref().map(|p| p.as_str()))
                        .bind(contact.username.as_ref().map(|u| u.as_str()))
                        .bind(interest.brand.as_ref().map(|b| b.as_str()))
                        .bind(interest.model.as_ref().map(|m| m.as_str()))
                        .bind(interest.budget.map(|b| b.amount_minor))
                        .bind(interest.budget.map(|b| b.currency.code()))
                        .bind(interest.listing_id.map(|l| l.0))
                        .bind(conversation_id.map(|c| c.0))
                        .bind(assignee.map(|a| a.0))
                        .bind(version)
                        .bind(stored.position.global_position)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    LeadEvent::LeadStatusChanged { to, reason, .. } => {
                        sqlx::query(
                            "UPDATE leads SET status = $2, lost_reason = $3, version = $4, updated_at = $5 \
                             WHERE lead_id = $1 AND version < $4",
                        )
                        .bind(id)
                        .bind(to.as_str())
                        // Only a lost lead keeps a reason.
                        .bind(reason.as_ref().filter(|_| to == LeadStatus::Lost).map(|r| r.as_str()))
                        .bind(version)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    LeadEvent::LeadNoteAdded { .. } => {
                        sqlx::query(
                            "UPDATE leads SET notes = notes + 1, version = $2, updated_at = $3 \
                             WHERE lead_id = $1 AND version < $2",
                        )
                        .bind(id)
                        .bind(version)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    LeadEvent::LeadAssigned { assignee } => {
                        sqlx::query(
                            "UPDATE leads SET assignee = $2, version = $3, updated_at = $4 \
                             WHERE lead_id = $1 AND version < $3",
                        )
                        .bind(id)
                        .bind(assignee.map(|a| a.0))
                        .bind(version)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                    }
                }
            });
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        on_tx!(tx, conn => {
            sqlx::query("DELETE FROM leads").execute(&mut *conn).await?;
        });
        Ok(())
    }
}
