//! Accounts and administration: signing in, the caller, the workspace, its members and API
//! tokens, integration secrets, and the platform's workspaces. Who may call what is decided
//! in [`crate::access`]; these resolvers scope everything to the caller's workspace.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use cartie_domain::member::{Email, MemberCommand};
use cartie_domain::values::{Currency as DomainCurrency, Text};
use cartie_domain::workspace::{SecretName, Slug, TimeZone, WorkspaceCommand};
use cartie_domain::{Command, CommandContext, UserId, WorkspaceId};
use cartie_projections::directory::queries::{self, BelongingRow, MemberRow};
use cartie_projections::directory::{ApiTokenRow, WorkspaceRow};

use super::inventory::Currency;
use super::{caller, parse_id, services, ClientAddress, RequestContext};
use crate::access::{self, Access};
use crate::accounts::{self, SessionTokens};
use crate::credentials::{self, kinds};
use crate::error::ApiError;

const MAX_WORKSPACES_PAGE: i64 = 100;

/// A member's role in a workspace.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "MemberRole", remote = "cartie_domain::member::Role")]
pub enum MemberRole {
    Owner,
    Admin,
    Member,
}

/// The role a caller acts with: a member's role, or SUPERADMIN for a platform
/// administrator looking into a workspace read-only.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "AccessRole", remote = "crate::auth::Role")]
pub enum AccessRole {
    Owner,
    Admin,
    Member,
    Superadmin,
    /// A partner dealer's token.
    Partner,
}

/// A dealer company's workspace.
pub struct WorkspaceNode(WorkspaceRow);

#[Object(name = "Workspace")]
impl WorkspaceNode {
    async fn id(&self) -> ID {
        ID(self.0.workspace_id.to_string())
    }

    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn default_currency(&self) -> async_graphql::Result<Currency> {
        let currency: DomainCurrency = self.0.default_currency.parse().map_err(|_| {
            ApiError::internal(format!(
                "unknown currency {:?} in the directory",
                self.0.default_currency
            ))
        })?;
        Ok(currency.into())
    }

    /// IANA time zone, such as `Europe/Kyiv`.
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The integration secrets that are set: names and when, never the values. Owners
    /// and admins only (null with a FORBIDDEN error for others).
    async fn secrets(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Vec<SecretStatus>>> {
        let caller = caller(ctx)?;
        access::check(Some(&caller.principal), Access::Manage)?;
        if caller.principal.workspace_id.0 != self.0.workspace_id {
            return Err(ApiError::Forbidden("secrets of another workspace".into()).into());
        }
        let rows = queries::secrets(&services(ctx).db, self.0.workspace_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Some(
            rows.into_iter()
                .map(|row| SecretStatus {
                    name: row.name,
                    set: true,
                    updated_at: Some(row.updated_at),
                })
                .collect(),
        ))
    }
}

/// Whether an integration secret is set. The value is never shown.
#[derive(SimpleObject)]
pub struct SecretStatus {
    pub name: String,
    pub set: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A person (without their memberships).
#[derive(SimpleObject)]
pub struct User {
    pub id: ID,
    pub email: String,
    pub name: String,
}

/// A workspace the caller belongs to, with their role there.
#[derive(SimpleObject)]
pub struct Belonging {
    pub workspace_id: ID,
    pub slug: String,
    pub name: String,
    pub role: MemberRole,
    pub disabled: bool,
}

impl TryFrom<BelongingRow> for Belonging {
    type Error = ApiError;

    fn try_from(row: BelongingRow) -> Result<Self, ApiError> {
        Ok(Self {
            workspace_id: ID(row.workspace_id.to_string()),
            slug: row.slug,
            name: row.name,
            role: role_of(&row.role)?,
            disabled: row.disabled,
        })
    }
}

fn role_of(role: &str) -> Result<MemberRole, ApiError> {
    cartie_domain::member::Role::parse(role)
        .map(MemberRole::from)
        .ok_or_else(|| ApiError::internal(format!("unknown role {role:?} in the directory")))
}

/// The caller.
#[derive(SimpleObject)]
pub struct Me {
    pub user: User,
    /// The workspace this session acts in.
    pub workspace: WorkspaceNode,
    pub role: AccessRole,
    /// Whether the caller administers the platform.
    pub platform_admin: bool,
    /// Every workspace the caller belongs to.
    pub workspaces: Vec<Belonging>,
}

/// A member of the workspace.
#[derive(SimpleObject)]
#[graphql(name = "Member")]
pub struct MemberNode {
    /// The person's id.
    pub id: ID,
    pub email: String,
    pub name: String,
    pub role: MemberRole,
    pub disabled: bool,
    pub joined_at: DateTime<Utc>,
}

impl TryFrom<MemberRow> for MemberNode {
    type Error = ApiError;

    fn try_from(row: MemberRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: ID(row.user_id.to_string()),
            email: row.email,
            name: row.name,
            role: role_of(&row.role)?,
            disabled: row.disabled,
            joined_at: row.joined_at,
        })
    }
}

/// The role an API token acts with: a member's role, or `PARTNER` for a partner dealer's
/// token (created with `createPartnerToken`).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ApiTokenRole {
    Owner,
    Admin,
    Member,
    Partner,
}

/// An API token (never its secret).
#[derive(SimpleObject)]
#[graphql(name = "ApiToken")]
pub struct ApiTokenNode {
    pub id: ID,
    pub name: String,
    pub role: ApiTokenRole,
    /// The partner a `PARTNER` token acts for; null for the workspace's own tokens.
    pub partner_id: Option<ID>,
    /// Who created it (`user:<id>`, `api_token:<id>`, `system`).
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiTokenNode {
    fn from_row(row: ApiTokenRow, last_used_at: Option<DateTime<Utc>>) -> Result<Self, ApiError> {
        Ok(Self {
            id: ID(row.token_id.to_string()),
            name: row.name,
            role: match row.partner_id {
                Some(_) => ApiTokenRole::Partner,
                None => match role_of(&row.role)? {
                    MemberRole::Owner => ApiTokenRole::Owner,
                    MemberRole::Admin => ApiTokenRole::Admin,
                    MemberRole::Member => ApiTokenRole::Member,
                },
            },
            partner_id: row.partner_id.map(|id| ID(id.to_string())),
            created_by: row.created_by,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
            last_used_at,
        })
    }
}

/// A new API token. `token` is shown this once; only its hash is kept.
#[derive(SimpleObject)]
pub struct CreatedApiToken {
    pub token: String,
    pub api_token: ApiTokenNode,
}

/// A person invited into the workspace. `invitationToken` (shown once) lets a person
/// without a password yet set one with `acceptInvitation`; it is null for someone who
/// already signs in elsewhere (they switch to the new workspace).
#[derive(SimpleObject)]
pub struct Invitation {
    pub member: MemberNode,
    pub invitation_token: Option<String>,
}

/// A new workspace and the invitation of its first owner.
#[derive(SimpleObject)]
pub struct CreatedWorkspace {
    pub workspace: WorkspaceNode,
    pub owner: Invitation,
}

/// Tokens for a session. Send `accessToken` as `Authorization: Bearer …`; before it
/// expires, trade `refreshToken` for new ones with `refreshSession` (each refresh token
/// works once).
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub workspace: WorkspaceNode,
    pub role: AccessRole,
}

#[derive(InputObject)]
pub struct ChangeWorkspaceSettingsInput {
    pub default_currency: Option<Currency>,
    /// IANA time zone, such as `Europe/Kyiv`.
    pub time_zone: Option<String>,
}

#[derive(InputObject)]
pub struct InviteMemberInput {
    pub email: String,
    pub name: String,
    #[graphql(default_with = "MemberRole::Member")]
    pub role: MemberRole,
}

#[derive(InputObject)]
pub struct CreateWorkspaceInput {
    pub name: String,
    /// 3–40 lowercase letters, digits and single hyphens; it never changes.
    pub slug: String,
    pub default_currency: Currency,
    pub time_zone: String,
    pub owner_email: String,
    pub owner_name: String,
}

async fn workspace_node(ctx: &Context<'_>, id: WorkspaceId) -> Result<WorkspaceNode, ApiError> {
    queries::workspace(&services(ctx).db, id.0)
        .await?
        .map(WorkspaceNode)
        .ok_or(ApiError::NotFound("workspace"))
}

async fn auth_payload(ctx: &Context<'_>, tokens: SessionTokens) -> Result<AuthPayload, ApiError> {
    Ok(AuthPayload {
        access_token: tokens.access_token().to_string(),
        access_token_expires_at: tokens.access_token_expires_at,
        refresh_token: tokens.refresh_token().to_string(),
        workspace: workspace_node(ctx, tokens.workspace_id).await?,
        role: tokens.role.into(),
    })
}

async fn member_node(
    ctx: &Context<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<MemberNode, ApiError> {
    queries::member(&services(ctx).db, workspace.0, user.0)
        .await?
        .ok_or(ApiError::NotFound("member"))?
        .try_into()
}

fn command_context<'a>(
    ctx: &Context<'a>,
) -> Result<(CommandContext, &'a RequestContext), ApiError> {
    let caller = caller(ctx)?;
    Ok((caller.command_context(), caller))
}

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The caller: who they are, the workspace they act in and every workspace they belong to.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let caller = caller(ctx)?;
        let db = &services(ctx).db;
        let user_id = caller
            .principal
            .user_id()
            .ok_or_else(|| ApiError::Forbidden("API tokens are not people".into()))?;
        let user = queries::user(db, user_id.0)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("member"))?;
        let workspaces = queries::belongings(db, user_id.0)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(Belonging::try_from)
            .collect::<Result<_, _>>()?;
        Ok(Me {
            user: User {
                id: ID(user.user_id.to_string()),
                email: user.email,
                name: user.name,
            },
            workspace: workspace_node(ctx, caller.principal.workspace_id).await?,
            role: caller.principal.role.into(),
            platform_admin: caller.principal.platform_admin,
            workspaces,
        })
    }

    /// The workspace the caller acts in.
    async fn workspace(&self, ctx: &Context<'_>) -> async_graphql::Result<WorkspaceNode> {
        Ok(workspace_node(ctx, caller(ctx)?.principal.workspace_id).await?)
    }

    /// The workspace's members, by name.
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MemberNode>> {
        let workspace = caller(ctx)?.principal.workspace_id;
        let rows = queries::members(&services(ctx).db, workspace.0)
            .await
            .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .map(MemberNode::try_from)
            .collect::<Result<_, _>>()?)
    }

    /// The workspace's API tokens, newest first, revoked ones included.
    async fn api_tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiTokenNode>> {
        let workspace = caller(ctx)?.principal.workspace_id;
        let db = &services(ctx).db;
        let rows = queries::api_tokens(db, workspace.0)
            .await
            .map_err(ApiError::from)?;
        let ids: Vec<_> = rows.iter().map(|r| r.token_id).collect();
        let used = credentials::last_used(db, &ids, kinds::API_TOKEN)
            .await
            .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .zip(used)
            .map(|(row, (_, used))| ApiTokenNode::from_row(row, used))
            .collect::<Result<_, _>>()?)
    }

    /// Every workspace on the platform, by slug (platform administrators only).
    async fn platform_workspaces(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most this many (1–100).", default = 50)] first: i64,
        #[graphql(desc = "The slug of the last workspace of the previous page.")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<Vec<WorkspaceNode>> {
        if !(1..=MAX_WORKSPACES_PAGE).contains(&first) {
            return Err(ApiError::validation(
                "first",
                format!("must be 1 to {MAX_WORKSPACES_PAGE}"),
            )
            .into());
        }
        let rows = queries::workspaces(&services(ctx).db, after.as_deref(), first)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(WorkspaceNode).collect())
    }
}

#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Signs in with e-mail and password, into the workspace named by its slug (or the
    /// first one the person belongs to).
    async fn sign_in(
        &self,
        ctx: &Context<'_>,
        email: String,
        #[graphql(secret)] password: String,
        workspace: Option<String>,
    ) -> async_graphql::Result<AuthPayload> {
        let client = ctx.data_opt::<ClientAddress>().and_then(|c| c.0);
        let tokens = accounts::sign_in(
            services(ctx),
            &email,
            SecretString::from(password),
            workspace.as_deref(),
            client,
        )
        .await?;
        Ok(auth_payload(ctx, tokens).await?)
    }

    /// Trades a refresh token (used up) for new tokens.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let tokens = accounts::refresh_session(services(ctx), &refresh_token).await?;
        Ok(auth_payload(ctx, tokens).await?)
    }

    /// Ends the session of the refresh token given, and the caller's own session. Access
    /// tokens of an ended session stop working at once.
    async fn sign_out(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] refresh_token: Option<String>,
    ) -> async_graphql::Result<bool> {
        let principal = ctx.data_opt::<RequestContext>().map(|c| &c.principal);
        Ok(accounts::sign_out(services(ctx), refresh_token.as_deref(), principal).await?)
    }

    /// Sets the password of an invited person and signs them in.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] token: String,
        #[graphql(secret)] password: String,
        name: Option<String>,
    ) -> async_graphql::Result<AuthPayload> {
        let tokens = accounts::accept_invitation(
            services(ctx),
            &token,
            SecretString::from(password),
            name.as_deref(),
        )
        .await?;
        Ok(auth_payload(ctx, tokens).await?)
    }

    /// A session in another workspace the caller belongs to (by slug). Platform
    /// administrators may look into any workspace, read-only.
    async fn switch_workspace(
        &self,
        ctx: &Context<'_>,
        workspace: String,
    ) -> async_graphql::Result<AuthPayload> {
        let caller = caller(ctx)?;
        let tokens =
            accounts::switch_workspace(services(ctx), &caller.principal, &workspace).await?;
        Ok(auth_payload(ctx, tokens).await?)
    }

    /// Changes the caller's password; their other sessions end.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] current_password: String,
        #[graphql(secret)] new_password: String,
    ) -> async_graphql::Result<bool> {
        let (context, caller) = command_context(ctx)?;
        accounts::change_password(
            services(ctx),
            context,
            &caller.principal,
            SecretString::from(current_password),
            SecretString::from(new_password),
        )
        .await?;
        Ok(true)
    }

    async fn rename_workspace(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<WorkspaceNode> {
        let name = Text::parse("name", &name, Text::SHORT).map_err(ApiError::from)?;
        workspace_command(ctx, WorkspaceCommand::RenameWorkspace { name }).await
    }

    async fn change_workspace_settings(
        &self,
        ctx: &Context<'_>,
        input: ChangeWorkspaceSettingsInput,
    ) -> async_graphql::Result<WorkspaceNode> {
        let time_zone = input
            .time_zone
            .map(|tz| TimeZone::parse("timeZone", &tz))
            .transpose()
            .map_err(ApiError::from)?;
        workspace_command(
            ctx,
            WorkspaceCommand::ChangeWorkspaceSettings {
                default_currency: input.default_currency.map(Into::into),
                time_zone,
            },
        )
        .await
    }

    /// Stores an integration secret sealed; it is never shown again, only whether it is set.
    async fn set_integration_secret(
        &self,
        ctx: &Context<'_>,
        name: String,
        #[graphql(secret)] value: String,
    ) -> async_graphql::Result<SecretStatus> {
        let name = SecretName::parse("name", &name).map_err(ApiError::from)?;
        let value = accounts::secret_value("value", &value)?;
        let workspace = caller(ctx)?.principal.workspace_id;
        let sealed = services(ctx).secret_key.seal(workspace, &name, &value);
        drop(value);
        workspace_command(
            ctx,
            WorkspaceCommand::SetIntegrationSecret {
                name: name.clone(),
                sealed,
            },
        )
        .await?;
        let updated_at = queries::secrets(&services(ctx).db, workspace.0)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .find(|s| s.name == name.as_str())
            .map(|s| s.updated_at);
        Ok(SecretStatus {
            name: name.as_str().to_string(),
            set: true,
            updated_at,
        })
    }

    async fn clear_integration_secret(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<bool> {
        let name = SecretName::parse("name", &name).map_err(ApiError::from)?;
        workspace_command(ctx, WorkspaceCommand::ClearIntegrationSecret { name }).await?;
        Ok(true)
    }

    /// Adds a person to the workspace. Only owners invite owners.
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        input: InviteMemberInput,
    ) -> async_graphql::Result<Invitation> {
        let (context, caller) = command_context(ctx)?;
        let email = Email::parse("email", &input.email).map_err(ApiError::from)?;
        let name = Text::parse("name", &input.name, Text::SHORT).map_err(ApiError::from)?;
        let role: cartie_domain::member::Role = input.role.into();
        if role == cartie_domain::member::Role::Owner
            && caller.principal.role != crate::auth::Role::Owner
        {
            return Err(ApiError::Forbidden("only an owner can invite an owner".into()).into());
        }
        let workspace = caller.principal.workspace_id;
        let invitation = accounts::invite_member(services(ctx), context, email, name, role).await?;
        Ok(Invitation {
            member: member_node(ctx, workspace, invitation.user_id).await?,
            invitation_token: invitation.token.map(|t| t.expose_secret().to_string()),
        })
    }

    async fn change_member_role(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        role: MemberRole,
    ) -> async_graphql::Result<MemberNode> {
        let role: cartie_domain::member::Role = role.into();
        Ok(member_command(
            ctx,
            &member_id,
            Some(role),
            false,
            MemberCommand::ChangeMemberRole { role },
        )
        .await?)
    }

    /// Disables a member here: their sessions stop working in this workspace at once.
    async fn disable_member(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
    ) -> async_graphql::Result<MemberNode> {
        Ok(member_command(ctx, &member_id, None, true, MemberCommand::DisableMember).await?)
    }

    async fn enable_member(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
    ) -> async_graphql::Result<MemberNode> {
        Ok(member_command(ctx, &member_id, None, false, MemberCommand::EnableMember).await?)
    }

    /// Creates an API token for a bot or an integration.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        #[graphql(default_with = "MemberRole::Member")] role: MemberRole,
    ) -> async_graphql::Result<CreatedApiToken> {
        let (context, caller) = command_context(ctx)?;
        let name = Text::parse("name", &name, Text::SHORT).map_err(ApiError::from)?;
        let workspace = caller.principal.workspace_id;
        let (id, token) =
            accounts::create_api_token(services(ctx), context, name, role.into()).await?;
        let row = queries::api_token(&services(ctx).db, id)
            .await
            .map_err(ApiError::from)?
            .filter(|r| r.workspace_id == workspace.0)
            .ok_or(ApiError::NotFound("API token"))?;
        Ok(CreatedApiToken {
            token: token.expose_secret().to_string(),
            api_token: ApiTokenNode::from_row(row, None)?,
        })
    }

    /// Revokes an API token; it stops working before this answers.
    async fn revoke_api_token(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ApiTokenNode> {
        let (context, caller) = command_context(ctx)?;
        let id = parse_id("id", &id)?;
        let workspace = caller.principal.workspace_id;
        accounts::revoke_api_token(services(ctx), context, id).await?;
        let row = queries::api_token(&services(ctx).db, id)
            .await
            .map_err(ApiError::from)?
            .filter(|r| r.workspace_id == workspace.0)
            .ok_or(ApiError::NotFound("API token"))?;
        Ok(ApiTokenNode::from_row(row, None)?)
    }

    /// Creates a dealer workspace and invites its first owner (platform administrators).
    async fn create_workspace(
        &self,
        ctx: &Context<'_>,
        input: CreateWorkspaceInput,
    ) -> async_graphql::Result<CreatedWorkspace> {
        let (context, _) = command_context(ctx)?;
        let name = Text::parse("name", &input.name, Text::SHORT).map_err(ApiError::from)?;
        let slug = Slug::parse("slug", &input.slug).map_err(ApiError::from)?;
        let time_zone = TimeZone::parse("timeZone", &input.time_zone).map_err(ApiError::from)?;
        let email = Email::parse("ownerEmail", &input.owner_email).map_err(ApiError::from)?;
        let owner_name =
            Text::parse("ownerName", &input.owner_name, Text::SHORT).map_err(ApiError::from)?;
        let services = services(ctx);
        let id = accounts::create_workspace(
            services,
            context.clone(),
            name,
            slug,
            input.default_currency.into(),
            time_zone,
        )
        .await?;
        // The owner is invited into the new workspace, on the administrator's behalf.
        let owner_context = CommandContext {
            workspace_id: id,
            ..context
        };
        let invitation = accounts::invite_member(
            services,
            owner_context,
            email,
            owner_name,
            cartie_domain::member::Role::Owner,
        )
        .await?;
        Ok(CreatedWorkspace {
            workspace: workspace_node(ctx, id).await?,
            owner: Invitation {
                member: member_node(ctx, id, invitation.user_id).await?,
                invitation_token: invitation.token.map(|t| t.expose_secret().to_string()),
            },
        })
    }
}

/// Sends a command to the caller's workspace and answers it as the Directory shows it.
async fn workspace_command(
    ctx: &Context<'_>,
    body: WorkspaceCommand,
) -> async_graphql::Result<WorkspaceNode> {
    let (context, caller) = command_context(ctx)?;
    let workspace = caller.principal.workspace_id;
    let services = services(ctx);
    let position = services
        .workspaces
        .execute(&workspace.to_string(), Command::new(context, body))
        .await
        .map_err(ApiError::from)?;
    accounts::wait(services, position).await?;
    Ok(workspace_node(ctx, workspace).await?)
}

/// Changes a member of the caller's workspace, after the checks the aggregate cannot make
/// alone (owners, the last owner).
async fn member_command(
    ctx: &Context<'_>,
    member_id: &ID,
    new_role: Option<cartie_domain::member::Role>,
    disabling: bool,
    body: MemberCommand,
) -> Result<MemberNode, ApiError> {
    let (context, caller) = command_context(ctx)?;
    let user = UserId(parse_id("memberId", member_id)?);
    let services = services(ctx);
    accounts::check_member_change(services, &caller.principal, user, new_role, disabling).await?;
    let position = services
        .members
        .execute(&user.to_string(), Command::new(context, body))
        .await?;
    accounts::wait(services, position).await?;
    member_node(ctx, caller.principal.workspace_id, user).await
}
