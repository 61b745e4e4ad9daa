//! The Directory read model: workspaces, the people in them with their roles, and API
//! tokens. Authentication reads it on every request, so a disabled member or a revoked
//! token stops working as soon as the change is projected.

mod projector;
pub mod queries;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use projector::DirectoryProjector;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkspaceRow {
    pub workspace_id: Uuid,
    pub slug: String,
    pub name: String,
    pub default_currency: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A workspace secret's presence; the sealed value is read only by [`queries::sealed_secret`].
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SecretStatusRow {
    pub name: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
}

/// A person's membership of one workspace, with what lists of members show.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MembershipRow {
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
    pub disabled: bool,
    pub joined_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiTokenRow {
    pub token_id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    /// `admin`, `member`, or `partner` for a partner's token.
    pub role: String,
    /// The partner a `partner` token acts for.
    pub partner_id: Option<Uuid>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}
