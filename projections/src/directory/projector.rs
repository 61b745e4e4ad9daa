use cartie_domain::api_token::{ApiToken, ApiTokenEvent};
use cartie_domain::context::metadata_keys;
use cartie_domain::member::{Member, MemberEvent};
use cartie_domain::workspace::{Workspace, WorkspaceEvent};
use cartie_store::{on_tx, StoredEvent, Tx};
use cqrs_es::Aggregate;
use uuid::Uuid;

use crate::runner::{ProjectionError, Projector};

/// Projects workspace, member and API token events into the `directory_*` tables.
///
/// These events are few (people and settings change rarely), so each is applied with its
/// own statements; every statement sets absolute values, so applying an event twice
/// changes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectoryProjector;

impl DirectoryProjector {
    pub const NAME: &'static str = "directory";
}

fn aggregate_uuid(event: &StoredEvent) -> Result<Uuid, ProjectionError> {
    event
        .aggregate_id
        .parse()
        .map_err(|e| ProjectionError::undecodable(event, e))
}

#[async_trait::async_trait]
impl Projector for DirectoryProjector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Workspace::TYPE, Member::TYPE, ApiToken::TYPE])
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "directory_api_tokens",
            "directory_memberships",
            "directory_users",
            "directory_workspace_secrets",
            "directory_workspaces",
        ]
    }

    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        for event in events {
            match event.aggregate_type.as_str() {
                Workspace::TYPE => {
                    let payload = event
                        .payload()
                        .map_err(|e| ProjectionError::undecodable(event, e))?;
                    workspace(tx, aggregate_uuid(event)?, event, payload).await?;
                }
                Member::TYPE => {
                    let payload = event
                        .payload()
                        .map_err(|e| ProjectionError::undecodable(event, e))?;
                    member(tx, aggregate_uuid(event)?, event, payload).await?;
                }
                ApiToken::TYPE => {
                    let payload = event
                        .payload()
                        .map_err(|e| ProjectionError::undecodable(event, e))?;
                    api_token(tx, aggregate_uuid(event)?, event, payload).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        on_tx!(tx, conn => {
            for table in [
                "directory_api_tokens",
                "directory_memberships",
                "directory_users",
                "directory_workspace_secrets",
                "directory_workspaces",
            ] {
                sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *conn).await?;
            }
        });
        Ok(())
    }
}

async fn workspace(
    tx: &mut Tx,
    id: Uuid,
    stored: &StoredEvent,
    event: WorkspaceEvent,
) -> Result<(), ProjectionError> {
    let at = stored.recorded_at;
    on_tx!(tx, conn => {
        match event {
            WorkspaceEvent::WorkspaceCreated { name, slug, default_currency, time_zone } => {
                sqlx::query(
                    "INSERT INTO directory_workspaces \
                     (workspace_id, slug, name, default_currency, time_zone, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (workspace_id) DO NOTHING",
                )
                .bind(id)
                .bind(slug.as_str())
                .bind(name.as_str())
                .bind(default_currency.code())
                .bind(time_zone.as_str())
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            WorkspaceEvent::WorkspaceRenamed { name, .. } => {
                sqlx::query("UPDATE directory_workspaces SET name = $2, updated_at = $3 WHERE workspace_id = $1")
                    .bind(id)
                    .bind(name.as_str())
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
            }
            WorkspaceEvent::WorkspaceSettingsChanged { default_currency, time_zone } => {
                sqlx::query(
                    "UPDATE directory_workspaces SET default_currency = $2, time_zone = $3, \
                     updated_at = $4 WHERE workspace_id = $1",
                )
                .bind(id)
                .bind(default_currency.code())
                .bind(time_zone.as_str())
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            WorkspaceEvent::IntegrationSecretSet { name, sealed } => {
                sqlx::query(
                    "INSERT INTO directory_workspace_secrets (workspace_id, name, sealed, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, name) \
                     DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                )
                .bind(id)
                .bind(name.as_str())
                .bind(&sealed.0)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            WorkspaceEvent::IntegrationSecretCleared { name } => {
                sqlx::query("DELETE FROM directory_workspace_secrets WHERE workspace_id = $1 AND name = $2")
                    .bind(id)
                    .bind(name.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
    });
    Ok(())
}

async fn member(
    tx: &mut Tx,
    user_id: Uuid,
    stored: &StoredEvent,
    event: MemberEvent,
) -> Result<(), ProjectionError> {
    let at = stored.recorded_at;
    // (workspace, role, disabled) for membership changes.
    on_tx!(tx, conn => {
        match event {
            MemberEvent::UserRegistered { email, name } => {
                sqlx::query(
                    "INSERT INTO directory_users (user_id, email, name, has_password, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user_id)
                .bind(email.as_str())
                .bind(name.as_str())
                .bind(false)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            MemberEvent::UserRenamed { name } => {
                sqlx::query("UPDATE directory_users SET name = $2 WHERE user_id = $1")
                    .bind(user_id)
                    .bind(name.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
            MemberEvent::PasswordChanged => {
                sqlx::query("UPDATE directory_users SET has_password = $2 WHERE user_id = $1")
                    .bind(user_id)
                    .bind(true)
                    .execute(&mut *conn)
                    .await?;
            }
            MemberEvent::MembershipGranted { workspace_id, role } => {
                sqlx::query(
                    "INSERT INTO directory_memberships \
                     (workspace_id, user_id, role, disabled, joined_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (workspace_id, user_id) DO NOTHING",
                )
                .bind(workspace_id.0)
                .bind(user_id)
                .bind(role.as_str())
                .bind(false)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            MemberEvent::MemberRoleChanged { workspace_id, role, .. } => {
                sqlx::query(
                    "UPDATE directory_memberships SET role = $3, updated_at = $4 \
                     WHERE workspace_id = $1 AND user_id = $2",
                )
                .bind(workspace_id.0)
                .bind(user_id)
                .bind(role.as_str())
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            MemberEvent::MemberDisabled { workspace_id } | MemberEvent::MemberEnabled { workspace_id } => {
                let disabled = stored.event_type == "MemberDisabled";
                sqlx::query(
                    "UPDATE directory_memberships SET disabled = $3, updated_at = $4 \
                     WHERE workspace_id = $1 AND user_id = $2",
                )
                .bind(workspace_id.0)
                .bind(user_id)
                .bind(disabled)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
        }
    });
    Ok(())
}

async fn api_token(
    tx: &mut Tx,
    token_id: Uuid,
    stored: &StoredEvent,
    event: ApiTokenEvent,
) -> Result<(), ProjectionError> {
    let at = stored.recorded_at;
    let created_by = stored
        .metadata()
        .ok()
        .and_then(|m| m.get(metadata_keys::ACTOR).cloned())
        .unwrap_or_default();
    on_tx!(tx, conn => {
        match event {
            ApiTokenEvent::ApiTokenCreated { workspace_id, name, role } => {
                sqlx::query(
                    "INSERT INTO directory_api_tokens \
                     (token_id, workspace_id, name, role, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_id) DO NOTHING",
                )
                .bind(token_id)
                .bind(workspace_id.0)
                .bind(name.as_str())
                .bind(role.as_str())
                .bind(&created_by)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            ApiTokenEvent::PartnerTokenCreated { workspace_id, name, partner_id } => {
                sqlx::query(
                    "INSERT INTO directory_api_tokens \
                     (token_id, workspace_id, name, role, partner_id, created_by, created_at) \
                     VALUES ($1, $2, $3, 'partner', $4, $5, $6) ON CONFLICT (token_id) DO NOTHING",
                )
                .bind(token_id)
                .bind(workspace_id.0)
                .bind(name.as_str())
                .bind(partner_id.0)
                .bind(&created_by)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            ApiTokenEvent::ApiTokenRevoked => {
                sqlx::query(
                    "UPDATE directory_api_tokens SET revoked_at = $2 \
                     WHERE token_id = $1 AND revoked_at IS NULL",
                )
                .bind(token_id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
        }
    });
    Ok(())
}
