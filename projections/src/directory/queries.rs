//! Reads of the Directory model.

use cartie_store::{on_pool, Database};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ApiTokenRow, MembershipRow, SecretStatusRow, UserRow, WorkspaceRow};

const WORKSPACE_COLUMNS: &str =
    "workspace_id, slug, name, default_currency, time_zone, created_at, updated_at";

/// A member of a workspace as lists of members show them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub disabled: bool,
    pub joined_at: DateTime<Utc>,
}

/// A workspace a person belongs to, with their role there.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BelongingRow {
    pub workspace_id: Uuid,
    pub slug: String,
    pub name: String,
    pub role: String,
    pub disabled: bool,
}

pub async fn workspace(db: &Database, id: Uuid) -> Result<Option<WorkspaceRow>, sqlx::Error> {
    let sql =
        format!("SELECT {WORKSPACE_COLUMNS} FROM directory_workspaces WHERE workspace_id = $1");
    on_pool!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
}

pub async fn workspace_by_slug(
    db: &Database,
    slug: &str,
) -> Result<Option<WorkspaceRow>, sqlx::Error> {
    let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM directory_workspaces WHERE slug = $1");
    on_pool!(db, pool => sqlx::query_as(&sql).bind(slug).fetch_optional(pool).await)
}

/// Workspaces in slug order, after the given slug, at most `limit`.
pub async fn workspaces(
    db: &Database,
    after_slug: Option<&str>,
    limit: i64,
) -> Result<Vec<WorkspaceRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {WORKSPACE_COLUMNS} FROM directory_workspaces WHERE slug > $1 ORDER BY slug LIMIT $2"
    );
    on_pool!(db, pool => sqlx::query_as(&sql)
        .bind(after_slug.unwrap_or(""))
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// Names of the workspace's integration secrets that are set, never their values.
pub async fn secrets(db: &Database, workspace: Uuid) -> Result<Vec<SecretStatusRow>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_as(
        "SELECT name, updated_at FROM directory_workspace_secrets WHERE workspace_id = $1 ORDER BY name",
    )
    .bind(workspace)
    .fetch_all(pool)
    .await)
}

/// The sealed value of a secret, for the adapters that open it.
pub async fn sealed_secret(
    db: &Database,
    workspace: Uuid,
    name: &str,
) -> Result<Option<String>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_scalar(
        "SELECT sealed FROM directory_workspace_secrets WHERE workspace_id = $1 AND name = $2",
    )
    .bind(workspace)
    .bind(name)
    .fetch_optional(pool)
    .await)
}

pub async fn user(db: &Database, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_as(
        "SELECT user_id, email, name, has_password, created_at FROM directory_users WHERE user_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)
}

pub async fn membership(
    db: &Database,
    workspace: Uuid,
    user: Uuid,
) -> Result<Option<MembershipRow>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_as(
        "SELECT workspace_id, user_id, role, disabled, joined_at, updated_at \
         FROM directory_memberships WHERE workspace_id = $1 AND user_id = $2",
    )
    .bind(workspace)
    .bind(user)
    .fetch_optional(pool)
    .await)
}

/// The workspaces a person belongs to (disabled memberships included), by name.
pub async fn belongings(db: &Database, user: Uuid) -> Result<Vec<BelongingRow>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_as(
        "SELECT w.workspace_id, w.slug, w.name, m.role, m.disabled \
         FROM directory_memberships m JOIN directory_workspaces w ON w.workspace_id = m.workspace_id \
         WHERE m.user_id = $1 ORDER BY w.name, w.slug",
    )
    .bind(user)
    .fetch_all(pool)
    .await)
}

/// The members of a workspace by name.
pub async fn members(db: &Database, workspace: Uuid) -> Result<Vec<MemberRow>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_as(
        "SELECT u.user_id, u.email, u.name, m.role, m.disabled, m.joined_at \
         FROM directory_memberships m JOIN directory_users u ON u.user_id = m.user_id \
         WHERE m.workspace_id = $1 ORDER BY u.name, u.email",
    )
    .bind(workspace)
    .fetch_all(pool)
    .await)
}

pub async fn member(
    db: &Database,
    workspace: Uuid,
    user: Uuid,
) -> Result<Option<MemberRow>, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_as(
        "SELECT u.user_id, u.email, u.name, m.role, m.disabled, m.joined_at \
         FROM directory_memberships m JOIN directory_users u ON u.user_id = m.user_id \
         WHERE m.workspace_id = $1 AND m.user_id = $2",
    )
    .bind(workspace)
    .bind(user)
    .fetch_optional(pool)
    .await)
}

/// Owners of the workspace who are not disabled.
pub async fn active_owners(db: &Database, workspace: Uuid) -> Result<i64, sqlx::Error> {
    on_pool!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM directory_memberships \
         WHERE workspace_id = $1 AND role = 'owner' AND disabled = $2",
    )
    .bind(workspace)
    .bind(false)
    .fetch_one(pool)
    .await)
}

const TOKEN_COLUMNS: &str =
    "token_id, workspace_id, name, role, partner_id, created_by, created_at, revoked_at";

/// The workspace's own API tokens (partners' tokens are listed with their partner).
pub async fn api_tokens(db: &Database, workspace: Uuid) -> Result<Vec<ApiTokenRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM directory_api_tokens WHERE workspace_id = $1 \
         AND partner_id IS NULL ORDER BY created_at DESC, token_id"
    );
    on_pool!(db, pool => sqlx::query_as(&sql).bind(workspace).fetch_all(pool).await)
}

/// The API tokens of one partner of the workspace, newest first.
pub async fn partner_tokens(
    db: &Database,
    workspace: Uuid,
    partner: Uuid,
) -> Result<Vec<ApiTokenRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM directory_api_tokens WHERE workspace_id = $1 \
         AND partner_id = $2 ORDER BY created_at DESC, token_id"
    );
    on_pool!(db, pool => sqlx::query_as(&sql).bind(workspace).bind(partner).fetch_all(pool).await)
}

pub async fn api_token(db: &Database, id: Uuid) -> Result<Option<ApiTokenRow>, sqlx::Error> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM directory_api_tokens WHERE token_id = $1");
    on_pool!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
}
