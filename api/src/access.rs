//! Authorisation in one place. Every root query and mutation is classified here; an
//! extension of the schema checks the classification before any resolver runs, and refuses
//! an operation that is not classified at all (a test keeps this table and the schema in
//! step). Resolvers then scope every read and write to the caller's workspace.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value};

use crate::auth::{Principal, Role, Subject};
use crate::error::ApiError;
use crate::graphql::{AuthFailure, RequestContext, WebSocketSession};

/// Who may run an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (signing in, refreshing, accepting an invitation).
    Public,
    /// A person signed in, whatever their role (their own account).
    User,
    /// Reading the workspace: every member, API tokens, and platform administrators
    /// looking in read-only.
    Read,
    /// Changing the workspace's business data: every member and API token; no feature
    /// flags, no module hidden by role.
    Write,
    /// Administering the workspace: members, API tokens, settings and secrets.
    Manage,
    /// Administering the platform: platform administrators only.
    Platform,
    /// What adapters do on Telegram's behalf (recording inbound messages): API tokens only.
    Integration,
    /// What partner dealers do with their partner tokens: see the requests addressed to
    /// them and offer variants. Partner tokens can do nothing else.
    Partner,
}

/// The classification of every root field, as `(parent type, field, access)`.
pub const POLICY: &[(&str, &str, Access)] = &[
    // Inventory
    ("Query", "listings", Access::Read),
    ("Query", "listing", Access::Read),
    ("Mutation", "createListing", Access::Write),
    ("Mutation", "updateListing", Access::Write),
    ("Mutation", "changeListingPrice", Access::Write),
    ("Mutation", "changeListingStatus", Access::Write),
    ("Mutation", "setListingPhotos", Access::Write),
    // Sign-in and the caller's own account
    ("Mutation", "signIn", Access::Public),
    ("Mutation", "refreshSession", Access::Public),
    ("Mutation", "signOut", Access::Public),
    ("Mutation", "acceptInvitation", Access::Public),
    ("Query", "me", Access::User),
    ("Mutation", "switchWorkspace", Access::User),
    ("Mutation", "changePassword", Access::User),
    // The workspace and its people
    ("Query", "workspace", Access::Read),
    ("Query", "members", Access::Read),
    ("Query", "apiTokens", Access::Manage),
    ("Mutation", "renameWorkspace", Access::Manage),
    ("Mutation", "changeWorkspaceSettings", Access::Manage),
    ("Mutation", "setIntegrationSecret", Access::Manage),
    ("Mutation", "clearIntegrationSecret", Access::Manage),
    ("Mutation", "inviteMember", Access::Manage),
    ("Mutation", "changeMemberRole", Access::Manage),
    ("Mutation", "disableMember", Access::Manage),
    ("Mutation", "enableMember", Access::Manage),
    ("Mutation", "createApiToken", Access::Manage),
    ("Mutation", "revokeApiToken", Access::Manage),
    // Inbox and leads
    ("Query", "conversations", Access::Read),
    ("Query", "conversation", Access::Read),
    ("Query", "leads", Access::Read),
    ("Query", "lead", Access::Read),
    ("Mutation", "sendMessage", Access::Write),
    ("Mutation", "markRead", Access::Write),
    ("Mutation", "assignConversation", Access::Write),
    ("Mutation", "closeConversation", Access::Write),
    ("Mutation", "reopenConversation", Access::Write),
    ("Mutation", "recordInboundMessage", Access::Integration),
    ("Mutation", "recordBotBlocked", Access::Integration),
    ("Query", "bots", Access::Read),
    ("Query", "bot", Access::Read),
    ("Mutation", "registerBot", Access::Manage),
    ("Mutation", "updateBot", Access::Manage),
    ("Mutation", "rotateBotToken", Access::Manage),
    ("Mutation", "disableBot", Access::Manage),
    ("Mutation", "enableBot", Access::Manage),
    ("Mutation", "captureLead", Access::Write),
    ("Mutation", "changeLeadStatus", Access::Write),
    ("Mutation", "addLeadNote", Access::Write),
    ("Mutation", "assignLead", Access::Write),
    // Requests and partners
    ("Query", "requests", Access::Read),
    ("Query", "request", Access::Read),
    ("Query", "requestMatches", Access::Read),
    ("Query", "partners", Access::Read),
    ("Query", "partner", Access::Read),
    ("Mutation", "draftRequest", Access::Write),
    ("Mutation", "editRequest", Access::Write),
    ("Mutation", "publishRequest", Access::Write),
    ("Mutation", "assignRequest", Access::Write),
    ("Mutation", "offerListing", Access::Write),
    ("Mutation", "shortlistVariant", Access::Write),
    ("Mutation", "rejectVariant", Access::Write),
    ("Mutation", "acceptVariant", Access::Write),
    ("Mutation", "shareProposal", Access::Write),
    ("Mutation", "revokeProposal", Access::Write),
    ("Mutation", "closeRequestWon", Access::Write),
    ("Mutation", "closeRequestLost", Access::Write),
    ("Mutation", "recordChannelPost", Access::Write),
    ("Mutation", "registerPartner", Access::Write),
    ("Mutation", "updatePartner", Access::Write),
    ("Mutation", "deactivatePartner", Access::Manage),
    ("Mutation", "reactivatePartner", Access::Manage),
    ("Mutation", "createPartnerToken", Access::Manage),
    ("Subscription", "requestChanged", Access::Read),
    // What partners do
    ("Query", "partnerRequests", Access::Partner),
    ("Query", "partnerRequest", Access::Partner),
    ("Mutation", "offerVariant", Access::Partner),
    // Anyone: the dealer's website and the client's proposal link
    ("Mutation", "submitRequest", Access::Public),
    ("Query", "proposal", Access::Public),
    ("Subscription", "inboxChanged", Access::Read),
    ("Subscription", "conversationMessages", Access::Read),
    // The platform
    ("Query", "platformWorkspaces", Access::Platform),
    ("Mutation", "createWorkspace", Access::Platform),
];

pub fn access_of(parent: &str, field: &str) -> Option<Access> {
    POLICY
        .iter()
        .find(|(p, f, _)| *p == parent && *f == field)
        .map(|(_, _, access)| *access)
}

/// Whether the caller (`None` when anonymous) may run an operation of this access.
pub fn check(principal: Option<&Principal>, access: Access) -> Result<(), ApiError> {
    if access == Access::Public {
        return Ok(());
    }
    let Some(principal) = principal else {
        return Err(ApiError::Unauthenticated(
            "sign in first (send Authorization: Bearer <token>)".into(),
        ));
    };
    let partner = principal.role == Role::Partner;
    if partner != (access == Access::Partner) {
        return Err(ApiError::Forbidden(if partner {
            "a partner's token sees only the requests addressed to it (partnerRequests) and offers variants (offerVariant)".into()
        } else {
            "only partners (with their partner tokens) can do this".into()
        }));
    }
    let allowed = match access {
        Access::Public | Access::Partner => true,
        Access::User => matches!(principal.subject, Subject::User { .. }),
        Access::Read => true,
        Access::Write => principal.role != Role::Superadmin,
        Access::Manage => matches!(principal.role, Role::Owner | Role::Admin),
        Access::Platform => {
            principal.platform_admin && matches!(principal.subject, Subject::User { .. })
        }
        Access::Integration => matches!(principal.subject, Subject::ApiToken(_)),
    };
    if allowed {
        return Ok(());
    }
    Err(ApiError::Forbidden(match access {
        Access::User => "only a person signed in can do this, not an API token".into(),
        Access::Write => "platform administrators look into other workspaces read-only".into(),
        Access::Manage => "only the workspace's owners and admins can do this".into(),
        Access::Platform => "only platform administrators can do this".into(),
        Access::Integration => "only integrations (API tokens) record what Telegram reports".into(),
        Access::Public | Access::Read | Access::Partner => unreachable!("always allowed"),
    }))
}

/// The schema extension enforcing [`POLICY`] on root fields.
pub struct Enforce;

impl ExtensionFactory for Enforce {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(EnforceExtension)
    }
}

struct EnforceExtension;

#[async_trait::async_trait]
impl Extension for EnforceExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let root = matches!(info.parent_type, "Query" | "Mutation" | "Subscription");
        // Where the refused field is written in the query (its alias when it has one).
        let pos = info
            .field
            .alias
            .as_ref()
            .map_or(info.field.name.pos, |alias| alias.pos);
        // The WebSocket authenticates once, at connection init: it serves subscriptions
        // only (each item re-checks the credential); queries and mutations go to POST.
        if matches!(info.parent_type, "Query" | "Mutation")
            && ctx.data_opt::<WebSocketSession>().is_some()
        {
            let error: async_graphql::Error = ApiError::Forbidden(
                "the WebSocket serves subscriptions only; send queries and mutations to POST /graphql".into(),
            )
            .into();
            return Err(error.into_server_error(pos));
        }
        if root && !info.is_for_introspection && !info.name.starts_with("__") {
            let principal = ctx.data_opt::<RequestContext>().map(|c| &c.principal);
            let verdict = match access_of(info.parent_type, info.name) {
                Some(access) if access != Access::Public && principal.is_none() => {
                    Err(match ctx.data_opt::<AuthFailure>() {
                        Some(failure) => ApiError::Unauthenticated(failure.0.clone()),
                        None => ApiError::Unauthenticated(
                            "sign in first (send Authorization: Bearer <token>)".into(),
                        ),
                    })
                }
                Some(access) => check(principal, access),
                None => {
                    tracing::error!(
                        operation = info.name,
                        "operation missing from the access policy"
                    );
                    Err(ApiError::Forbidden(
                        "this operation is not open to anyone".into(),
                    ))
                }
            };
            if let Err(error) = verdict {
                let error: async_graphql::Error = error.into();
                let mut server_error = error.into_server_error(pos);
                server_error.path = vec![async_graphql::PathSegment::Field(
                    info.alias.unwrap_or(info.name).to_string(),
                )];
                return Err(server_error);
            }
        }
        next.run(ctx, info).await
    }
}
