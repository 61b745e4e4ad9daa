//! Accounts: signing in and out, sessions and their refresh tokens, API tokens, invitations
//! and passwords, and provisioning workspaces and members (for the API, the seeds and
//! tests alike). Changes go through the aggregates; secrets go to the credential store.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use cartie_domain::api_token::ApiTokenCommand;
use cartie_domain::member::{Email, MemberCommand, Role as MemberRole};
use cartie_domain::values::{Currency, Text};
use cartie_domain::workspace::{Slug, TimeZone, WorkspaceCommand};
use cartie_domain::{Actor, Command, CommandContext, PartnerId, UserId, WorkspaceId};
use cartie_projections::directory::queries;
use cartie_projections::requests::queries as requests;
use cartie_store::LogPosition;

use crate::app::Services;
use crate::auth::{AccessToken, AuthError, Principal, Role, Subject, ACCESS_TOKEN_TTL};
use crate::credentials::{self, kinds, OpaqueToken, Rotation};
use crate::error::ApiError;

/// How long a session lasts without being refreshed.
pub const REFRESH_TOKEN_TTL: Duration = Duration::days(30);
/// How long an invitation can be accepted.
pub const INVITATION_TTL: Duration = Duration::days(7);
/// How long a change waits for the Directory to show it before answering.
/// An API token's last use is recorded at most this often.
const LAST_USED_RESOLUTION: Duration = Duration::seconds(60);
/// The answer to a wrong e-mail and a wrong password alike.
const WRONG_CREDENTIALS: &str = "wrong e-mail or password";

/// Throttles sign-in attempts per e-mail and per client address.
pub struct Throttle {
    by_email: DefaultKeyedRateLimiter<String>,
    by_client: DefaultKeyedRateLimiter<IpAddr>,
    /// Public request intake (`submitRequest`), per client address.
    intake: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(5, StdDuration::from_secs(60), 30, StdDuration::from_secs(2))
    }
}

impl Throttle {
    /// `email_burst` attempts per e-mail at once, then one per `email_period`; likewise
    /// per client address.
    pub fn new(
        email_burst: u32,
        email_period: StdDuration,
        client_burst: u32,
        client_period: StdDuration,
    ) -> Self {
        let quota = |burst: u32, period| {
            Quota::with_period(period)
                .expect("a non-zero period")
                .allow_burst(NonZeroU32::new(burst.max(1)).expect("non-zero"))
        };
        Self {
            by_email: RateLimiter::keyed(quota(email_burst, email_period)),
            by_client: RateLimiter::keyed(quota(client_burst, client_period)),
            intake: RateLimiter::keyed(quota(Self::INTAKE_BURST, Self::INTAKE_PERIOD)),
        }
    }

    /// Requests a client may submit at once, then one per [`Throttle::INTAKE_PERIOD`].
    pub const INTAKE_BURST: u32 = 5;
    pub const INTAKE_PERIOD: StdDuration = StdDuration::from_secs(20);

    /// Like this throttle, with `burst` public submissions per client at once, then one
    /// per `period`.
    pub fn with_intake(mut self, burst: u32, period: StdDuration) -> Self {
        self.intake = RateLimiter::keyed(
            Quota::with_period(period)
                .expect("a non-zero period")
                .allow_burst(NonZeroU32::new(burst.max(1)).expect("non-zero")),
        );
        self
    }

    /// Counts one public submission; refuses it when the client has submitted too often.
    /// Clients whose address is unknown share one allowance.
    pub fn submission(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let now = DefaultClock::default().now();
        if self.intake.len() > 100_000 {
            self.intake.retain_recent();
        }
        let client = client.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        self.intake
            .check_key(&client)
            .map_err(|not_until| ApiError::RateLimited {
                retry_after_secs: not_until.wait_time_from(now).as_secs().max(1),
            })
    }

    /// Counts one attempt; refuses it when the e-mail or the client has tried too often.
    fn attempt(&self, email: &str, client: Option<IpAddr>) -> Result<(), ApiError> {
        let now = DefaultClock::default().now();
        let limited = |wait: StdDuration| ApiError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        };
        if let Some(client) = client {
            if self.by_client.len() > 100_000 {
                self.by_client.retain_recent();
            }
            if let Err(not_until) = self.by_client.check_key(&client) {
                return Err(limited(not_until.wait_time_from(now)));
            }
        }
        if self.by_email.len() > 100_000 {
            self.by_email.retain_recent();
        }
        self.by_email
            .check_key(&email.trim().to_lowercase())
            .map_err(|not_until| limited(not_until.wait_time_from(now)))
    }
}

/// What signing in (or refreshing, switching, accepting an invitation) hands out.
pub struct SessionTokens {
    pub access_token: SecretString,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: SecretString,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub role: Role,
}

/// Establishes the caller from a bearer token (an access token or an API token), checked
/// against the directory on every request: a disabled member, a revoked token or an ended
/// session stops working at once (an integration's API token, in another process, within a
/// second: ADR 0020).
pub async fn authenticate(services: &Services, token: &str) -> Result<Principal, ApiError> {
    if token.starts_with(OpaqueToken::API_TOKEN) {
        return authenticate_api_token(services, token).await;
    }
    let access = services.keys.verify(token).map_err(refused)?;
    let session = credentials::session(&services.db, access.session_id).await?;
    match session {
        Some(s) if s.revoked_at.is_none() && s.user_id == access.user_id.0 => {}
        Some(_) => return Err(refused(AuthError::Revoked)),
        None => return Err(refused(AuthError::Invalid)),
    }
    principal_in(
        services,
        access.user_id,
        access.workspace_id,
        access.session_id,
    )
    .await?
    .ok_or_else(|| refused(AuthError::NoLongerMember))
}

fn refused(error: AuthError) -> ApiError {
    ApiError::Unauthenticated(error.to_string())
}

/// An integration's token (not a partner's) that this process read within the last second
/// is accepted on that read (ADR 0020); anything else is decided on the read model.
async fn authenticate_api_token(services: &Services, token: &str) -> Result<Principal, ApiError> {
    let presented =
        OpaqueToken::parse(OpaqueToken::API_TOKEN, token).ok_or(refused(AuthError::Invalid))?;
    if let Some(recent) = services.recent_api_tokens.get(&presented.id) {
        if presented.matches(&recent.secret_hash) {
            if let Some(role) = Role::parse(&recent.role) {
                return Ok(Principal {
                    workspace_id: WorkspaceId(recent.workspace_id),
                    subject: Subject::ApiToken(presented.id),
                    role,
                    platform_admin: false,
                });
            }
        }
    }
    let read = services.recent_api_tokens.start_read();
    let row = presented_api_token(&services.db, presented.id).await?;
    let Some(row) = row.filter(|r| presented.matches(&r.secret_hash)) else {
        return Err(refused(AuthError::Invalid));
    };
    if row.revoked_at.is_some() {
        return Err(refused(AuthError::Revoked));
    }
    let subject = match row.partner_id {
        // A partner's token works while the partner is active.
        Some(partner_id) => {
            let partner = requests::partner(&services.db, row.workspace_id, partner_id).await?;
            if !partner.is_some_and(|p| p.active) {
                return Err(refused(AuthError::PartnerInactive));
            }
            Subject::Partner {
                token_id: presented.id,
                partner_id: PartnerId(partner_id),
            }
        }
        None => Subject::ApiToken(presented.id),
    };
    let role = match subject {
        Subject::Partner { .. } => Role::Partner,
        _ => Role::parse(&row.role).ok_or(refused(AuthError::Invalid))?,
    };
    let now = Utc::now();
    if row
        .last_used_at
        .is_none_or(|at| now - at > LAST_USED_RESOLUTION)
    {
        credentials::touch(&services.db, presented.id, kinds::API_TOKEN, now).await?;
    }
    let workspace_id = WorkspaceId(row.workspace_id);
    if row.partner_id.is_none() {
        services.recent_api_tokens.keep(read, presented.id, row);
    }
    Ok(Principal {
        workspace_id,
        subject,
        role,
        platform_admin: false,
    })
}

/// An API token's stored secret with its Directory row.
#[derive(Clone, sqlx::FromRow)]
pub struct PresentedApiToken {
    secret_hash: String,
    last_used_at: Option<DateTime<Utc>>,
    workspace_id: Uuid,
    role: String,
    partner_id: Option<Uuid>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Both halves of an API token in one read (every request with a token makes it): the
/// secret's hash from the credential store and the token's row in the Directory. A token
/// the Directory does not show yet is unknown, as is one without a credential.
async fn presented_api_token(
    db: &cartie_store::Database,
    id: Uuid,
) -> Result<Option<PresentedApiToken>, sqlx::Error> {
    cartie_store::on_pool!(db, pool => sqlx::query_as(
        "SELECT c.secret_hash, c.last_used_at, t.workspace_id, t.role, t.partner_id, t.revoked_at \
         FROM credentials c JOIN directory_api_tokens t ON t.token_id = c.subject_id \
         WHERE c.subject_id = $1 AND c.kind = $2",
    )
    .bind(id)
    .bind(kinds::API_TOKEN)
    .fetch_optional(pool)
    .await)
}

/// The principal of a person in a workspace, by the directory: their role there, or a
/// read-only look for a platform administrator; `None` when neither.
async fn principal_in(
    services: &Services,
    user: UserId,
    workspace: WorkspaceId,
    session_id: Uuid,
) -> Result<Option<Principal>, ApiError> {
    let db = &services.db;
    let platform_admin = queries::membership(db, WorkspaceId::platform().0, user.0)
        .await?
        .is_some_and(|m| !m.disabled && MemberRole::parse(&m.role).is_some_and(|r| r.manages()));
    let membership = queries::membership(db, workspace.0, user.0)
        .await?
        .filter(|m| !m.disabled);
    let role = match membership.and_then(|m| Role::parse(&m.role)) {
        Some(role) => role,
        None if platform_admin && queries::workspace(db, workspace.0).await?.is_some() => {
            Role::Superadmin
        }
        None => return Ok(None),
    };
    Ok(Some(Principal {
        workspace_id: workspace,
        subject: Subject::User {
            user_id: user,
            session_id,
        },
        role,
        platform_admin,
    }))
}

/// The workspace a person signs in to: the one named (by slug), or the first they are an
/// active member of.
async fn choose_workspace(
    services: &Services,
    user: UserId,
    named: Option<&str>,
) -> Result<WorkspaceId, ApiError> {
    let belongings = queries::belongings(&services.db, user.0).await?;
    let active = || belongings.iter().filter(|b| !b.disabled);
    match named.map(str::trim).filter(|s| !s.is_empty()) {
        Some(slug) => {
            if let Some(found) = active().find(|b| b.slug == slug) {
                return Ok(WorkspaceId(found.workspace_id));
            }
            let workspace = queries::workspace_by_slug(&services.db, slug).await?;
            let platform_admin = active().any(|b| {
                b.workspace_id == WorkspaceId::platform().0
                    && MemberRole::parse(&b.role).is_some_and(|r| r.manages())
            });
            match workspace {
                Some(w) if platform_admin => Ok(WorkspaceId(w.workspace_id)),
                _ => Err(ApiError::Forbidden(format!(
                    "you are not an active member of a workspace {slug:?}"
                ))),
            }
        }
        None => active()
            .find(|b| b.workspace_id != WorkspaceId::platform().0)
            .or_else(|| active().next())
            .map(|b| WorkspaceId(b.workspace_id))
            .ok_or_else(|| {
                ApiError::Forbidden("you are not an active member of any workspace".into())
            }),
    }
}

/// Starts a session for a person in a workspace and signs its first access token. No
/// password is checked: callers have established who the person is (sign-in, invitations,
/// tools and tests).
pub async fn open_session(
    services: &Services,
    user: UserId,
    workspace: WorkspaceId,
) -> Result<SessionTokens, ApiError> {
    let (session_id, refresh) =
        credentials::start_session(&services.db, user.0, workspace.0, REFRESH_TOKEN_TTL).await?;
    session_tokens(services, user, workspace, session_id, refresh).await
}

async fn session_tokens(
    services: &Services,
    user: UserId,
    workspace: WorkspaceId,
    session_id: Uuid,
    refresh: OpaqueToken,
) -> Result<SessionTokens, ApiError> {
    let principal = principal_in(services, user, workspace, session_id)
        .await?
        .ok_or_else(|| refused(AuthError::NoLongerMember))?;
    let (access_token, expires) = services
        .keys
        .issue(
            AccessToken {
                workspace_id: workspace,
                user_id: user,
                role: principal.role,
                session_id,
            },
            ACCESS_TOKEN_TTL,
        )
        .map_err(ApiError::internal)?;
    Ok(SessionTokens {
        access_token: SecretString::from(access_token),
        access_token_expires_at: expires,
        refresh_token: refresh.reveal(OpaqueToken::REFRESH),
        workspace_id: workspace,
        user_id: user,
        role: principal.role,
    })
}

/// Signs a person in. A wrong password and an unknown e-mail get the same answer after
/// the same work; attempts are throttled per e-mail and per client address.
pub async fn sign_in(
    services: &Services,
    email: &str,
    password: SecretString,
    workspace: Option<&str>,
    client: Option<IpAddr>,
) -> Result<SessionTokens, ApiError> {
    let email = Email::parse("email", email)?;
    services.throttle.attempt(email.as_str(), client)?;
    let user = UserId::for_email(&email);
    let stored = credentials::get(&services.db, user.0, kinds::PASSWORD).await?;
    if !credentials::verify_password(password, stored.map(|c| c.secret_hash)).await {
        metrics::counter!("cartie_sign_in_failures_total").increment(1);
        return Err(ApiError::Unauthenticated(WRONG_CREDENTIALS.into()));
    }
    let workspace = choose_workspace(services, user, workspace).await?;
    open_session(services, user, workspace).await
}

/// Renews an access token with a refresh token, which is used up and replaced. A refresh
/// token presented twice ends its session: one of the two holders is not its owner.
pub async fn refresh_session(services: &Services, token: &str) -> Result<SessionTokens, ApiError> {
    let presented = OpaqueToken::parse(OpaqueToken::REFRESH, token)
        .ok_or_else(|| refused(AuthError::Invalid))?;
    match credentials::rotate_refresh_token(&services.db, &presented, REFRESH_TOKEN_TTL).await? {
        Rotation::Rotated { session, next } => {
            session_tokens(
                services,
                UserId(session.user_id),
                WorkspaceId(session.workspace_id),
                session.session_id,
                next,
            )
            .await
        }
        Rotation::Refused => Err(refused(AuthError::Invalid)),
        Rotation::Reused => {
            tracing::warn!(token_id = %presented.id, "a refresh token was used twice; its session is ended");
            Err(refused(AuthError::Revoked))
        }
    }
}

/// Ends the session of the refresh token given and the caller's own session. Answers
/// whether a session was ended.
pub async fn sign_out(
    services: &Services,
    refresh_token: Option<&str>,
    caller: Option<&Principal>,
) -> Result<bool, ApiError> {
    let mut ended = 0;
    if let Some(token) = refresh_token {
        let presented = OpaqueToken::parse(OpaqueToken::REFRESH, token)
            .ok_or_else(|| ApiError::validation("refreshToken", "is not a refresh token"))?;
        if let Some(session) =
            credentials::session_of_refresh_token(&services.db, &presented).await?
        {
            ended += credentials::revoke_sessions(
                &services.db,
                session.user_id,
                Some(session.session_id),
                None,
                "signed out",
            )
            .await?;
        }
    }
    if let Some(Subject::User {
        user_id,
        session_id,
    }) = caller.map(|p| p.subject)
    {
        ended += credentials::revoke_sessions(
            &services.db,
            user_id.0,
            Some(session_id),
            None,
            "signed out",
        )
        .await?;
    }
    Ok(ended > 0)
}

/// A new session in another workspace of the same person.
pub async fn switch_workspace(
    services: &Services,
    caller: &Principal,
    workspace: &str,
) -> Result<SessionTokens, ApiError> {
    let user = caller
        .user_id()
        .ok_or_else(|| ApiError::Forbidden("API tokens belong to one workspace".into()))?;
    let workspace = choose_workspace(services, user, Some(workspace)).await?;
    open_session(services, user, workspace).await
}

/// Replaces the caller's password after checking the current one, and ends their other
/// sessions.
pub async fn change_password(
    services: &Services,
    context: CommandContext,
    caller: &Principal,
    current: SecretString,
    new: SecretString,
) -> Result<(), ApiError> {
    let Subject::User {
        user_id,
        session_id,
    } = caller.subject
    else {
        return Err(ApiError::Forbidden("API tokens have no password".into()));
    };
    let user = queries::user(&services.db, user_id.0)
        .await?
        .ok_or(ApiError::NotFound("member"))?;
    services.throttle.attempt(&user.email, None)?;
    let stored = credentials::get(&services.db, user_id.0, kinds::PASSWORD).await?;
    if !credentials::verify_password(current, stored.map(|c| c.secret_hash)).await {
        return Err(ApiError::validation(
            "currentPassword",
            "is not your current password",
        ));
    }
    set_password(
        services,
        context,
        user_id,
        &user.email,
        &user.name,
        "newPassword",
        new,
    )
    .await?;
    credentials::revoke_sessions(
        &services.db,
        user_id.0,
        None,
        Some(session_id),
        "password changed",
    )
    .await?;
    Ok(())
}

/// Checks the password's strength, keeps its hash, and records the change.
pub async fn set_password(
    services: &Services,
    context: CommandContext,
    user: UserId,
    email: &str,
    name: &str,
    field: &str,
    password: SecretString,
) -> Result<(), ApiError> {
    check_new_password(field, &password, email, name)?;
    let hash = credentials::hash_password(password)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    credentials::put(&services.db, user.0, kinds::PASSWORD, &hash, None).await?;
    let position = services
        .members
        .execute(
            &user.to_string(),
            Command::new(context, MemberCommand::RecordPasswordChange),
        )
        .await?;
    wait(services, position).await
}

/// Refuses a password that is weak for this person (judged with their e-mail and name).
pub fn check_new_password(
    field: &str,
    password: &SecretString,
    email: &str,
    name: &str,
) -> Result<(), cartie_domain::values::FieldError> {
    let local_part = email.split('@').next().unwrap_or_default();
    credentials::check_password_strength(field, password, &[email, local_part, name])
}

/// Sets the password of an invited person and signs them in.
pub async fn accept_invitation(
    services: &Services,
    token: &str,
    password: SecretString,
    name: Option<&str>,
) -> Result<SessionTokens, ApiError> {
    let invalid = || ApiError::validation("token", "is not a valid, unexpired invitation");
    let presented = OpaqueToken::parse(OpaqueToken::INVITATION, token).ok_or_else(invalid)?;
    let stored = credentials::get(&services.db, presented.id, kinds::INVITATION)
        .await?
        .filter(|c| presented.matches(&c.secret_hash))
        .filter(|c| c.expires_at.is_none_or(|at| at > Utc::now()))
        .ok_or_else(invalid)?;
    drop(stored);
    let user_id = UserId(presented.id);
    let user = queries::user(&services.db, user_id.0)
        .await?
        .ok_or_else(invalid)?;
    let belongings = queries::belongings(&services.db, user_id.0).await?;
    let workspace = belongings
        .iter()
        .find(|b| !b.disabled)
        .map(|b| WorkspaceId(b.workspace_id))
        .ok_or_else(|| ApiError::Forbidden("the invitation's membership was disabled".into()))?;
    let context = CommandContext::new(workspace, Actor::User(user_id), Utc::now());
    let mut display_name = user.name.clone();
    if let Some(name) = name {
        let name = Text::parse("name", name, Text::SHORT)?;
        display_name = name.as_str().to_string();
        let position = services
            .members
            .execute(
                &user_id.to_string(),
                Command::new(context.clone(), MemberCommand::RenameUser { name }),
            )
            .await?;
        wait(services, position).await?;
    }
    set_password(
        services,
        context,
        user_id,
        &user.email,
        &display_name,
        "password",
        password,
    )
    .await?;
    credentials::delete(&services.db, user_id.0, kinds::INVITATION).await?;
    open_session(services, user_id, workspace).await
}

/// Waits until the Directory shows a change.
pub async fn wait(services: &Services, position: Option<LogPosition>) -> Result<(), ApiError> {
    crate::app::shown(&services.directory, position, "directory").await
}

/// Creates a workspace; its slug decides its id.
pub async fn create_workspace(
    services: &Services,
    context: CommandContext,
    name: Text,
    slug: Slug,
    default_currency: Currency,
    time_zone: TimeZone,
) -> Result<WorkspaceId, ApiError> {
    let id = WorkspaceId::for_slug(&slug);
    let position = services
        .workspaces
        .execute(
            &id.to_string(),
            Command::new(
                context,
                WorkspaceCommand::CreateWorkspace {
                    name,
                    slug,
                    default_currency,
                    time_zone,
                },
            ),
        )
        .await?;
    wait(services, position).await?;
    Ok(id)
}

/// A person invited into a workspace, with the invitation to hand them when they have no
/// password yet (shown once).
pub struct Invitation {
    pub user_id: UserId,
    pub token: Option<SecretString>,
}

/// Adds a person to the workspace of `context` (registering them on first sight).
pub async fn invite_member(
    services: &Services,
    context: CommandContext,
    email: Email,
    name: Text,
    role: MemberRole,
) -> Result<Invitation, ApiError> {
    let user_id = UserId::for_email(&email);
    let workspace = context.workspace_id;
    let position = services
        .members
        .execute(
            &user_id.to_string(),
            Command::new(context, MemberCommand::InviteMember { email, name, role }),
        )
        .await?;
    wait(services, position).await?;
    let has_password = credentials::get(&services.db, user_id.0, kinds::PASSWORD)
        .await?
        .is_some();
    // A person who belongs to another workspace too is that workspace's to invite: handing
    // an invitation (which sets the password) to this one would let it take the account.
    let elsewhere = queries::belongings(&services.db, user_id.0)
        .await?
        .iter()
        .any(|b| b.workspace_id != workspace.0);
    let token = if has_password || elsewhere {
        None
    } else {
        let invitation = OpaqueToken::generate(user_id.0);
        credentials::put(
            &services.db,
            user_id.0,
            kinds::INVITATION,
            &invitation.hash(),
            Some(Utc::now() + INVITATION_TTL),
        )
        .await?;
        Some(invitation.reveal(OpaqueToken::INVITATION))
    };
    Ok(Invitation { user_id, token })
}

/// Creates an API token in the workspace of `context`; answers its id and the token,
/// which is shown this once and kept only as a hash.
pub async fn create_api_token(
    services: &Services,
    context: CommandContext,
    name: Text,
    role: MemberRole,
) -> Result<(Uuid, SecretString), ApiError> {
    issue_api_token(
        services,
        context,
        ApiTokenCommand::CreateApiToken { name, role },
    )
    .await
}

/// Creates an API token a partner acts with (role `partner`); answers as
/// [`create_api_token`].
pub async fn create_partner_token(
    services: &Services,
    context: CommandContext,
    name: Text,
    partner_id: PartnerId,
) -> Result<(Uuid, SecretString), ApiError> {
    issue_api_token(
        services,
        context,
        ApiTokenCommand::CreatePartnerToken { name, partner_id },
    )
    .await
}

async fn issue_api_token(
    services: &Services,
    context: CommandContext,
    command: ApiTokenCommand,
) -> Result<(Uuid, SecretString), ApiError> {
    let token = OpaqueToken::generate(Uuid::now_v7());
    // The hash first: a token the log knows of always has one. A hash without its event
    // (a crash in between) authenticates nobody, since authentication needs both.
    credentials::put(
        &services.db,
        token.id,
        kinds::API_TOKEN,
        &token.hash(),
        None,
    )
    .await?;
    let position = services
        .api_tokens
        .execute(&token.id.to_string(), Command::new(context, command))
        .await;
    let position = match position {
        Ok(position) => position,
        Err(error) => {
            credentials::delete(&services.db, token.id, kinds::API_TOKEN).await?;
            return Err(error.into());
        }
    };
    wait(services, position).await?;
    Ok((token.id, token.reveal(OpaqueToken::API_TOKEN)))
}

/// Revokes an API token of the workspace of `context`; it stops working before this
/// answers.
pub async fn revoke_api_token(
    services: &Services,
    context: CommandContext,
    id: Uuid,
) -> Result<(), ApiError> {
    let position = services
        .api_tokens
        .execute(
            &id.to_string(),
            Command::new(context, ApiTokenCommand::RevokeApiToken),
        )
        .await?;
    wait(services, position).await?;
    credentials::delete(&services.db, id, kinds::API_TOKEN).await?;
    services.recent_api_tokens.forget(&id);
    Ok(())
}

/// Refuses a change to a member that the caller's role does not allow, or that would
/// leave the workspace without an active owner.
pub async fn check_member_change(
    services: &Services,
    caller: &Principal,
    target: UserId,
    new_role: Option<MemberRole>,
    disabling: bool,
) -> Result<(), ApiError> {
    let db = &services.db;
    let workspace = caller.workspace_id.0;
    let current = queries::membership(db, workspace, target.0)
        .await?
        .ok_or(ApiError::NotFound("member"))?;
    let current_role = MemberRole::parse(&current.role).ok_or_else(|| {
        ApiError::internal(format!("unknown role {:?} in the directory", current.role))
    })?;
    let touches_owner = current_role == MemberRole::Owner || new_role == Some(MemberRole::Owner);
    if touches_owner && caller.role != Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner can make, change or disable an owner".into(),
        ));
    }
    let loses_owner = current_role == MemberRole::Owner
        && !current.disabled
        && (disabling || new_role.is_some_and(|r| r != MemberRole::Owner));
    if loses_owner && queries::active_owners(db, workspace).await? <= 1 {
        return Err(ApiError::Conflict(
            "the workspace would be left without an active owner; make someone else an owner first"
                .into(),
        ));
    }
    Ok(())
}

/// Whether the secret in `value` is acceptable to store.
pub fn secret_value(field: &str, value: &str) -> Result<SecretString, ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::validation(field, "must not be empty"));
    }
    if value.len() > 4096 {
        return Err(ApiError::validation(field, "must be at most 4096 bytes"));
    }
    Ok(SecretString::from(value.to_string()))
}

impl SessionTokens {
    pub fn access_token(&self) -> &str {
        self.access_token.expose_secret()
    }

    pub fn refresh_token(&self) -> &str {
        self.refresh_token.expose_secret()
    }
}
