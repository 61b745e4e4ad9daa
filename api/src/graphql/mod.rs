//! The GraphQL schema. It knows nothing about HTTP: the HTTP layer attaches the caller
//! ([`RequestContext`]) to each request.

mod accounts;
mod bots;
mod inbox;
mod inventory;
mod query_text;
mod requests;

use std::net::IpAddr;
use std::sync::Arc;

use async_graphql::{Context, MergedObject, Schema};
use chrono::Utc;
use uuid::Uuid;

use cartie_domain::CommandContext;

use crate::app::Services;
use crate::auth::Principal;
use crate::error::ApiError;

pub use accounts::{AccountsMutation, AccountsQuery};
pub use bots::{BotsMutation, BotsQuery};
pub use inbox::{InboxMutation, InboxQuery, InboxSubscription};
pub use inventory::{InventoryMutation, InventoryQuery};
pub use requests::{RequestsMutation, RequestsQuery};

/// Deepest query accepted; deeper ones are refused before execution.
pub const MAX_DEPTH: usize = 12;
/// Most complex query accepted (each field costs 1, lists multiply by `first`): a full
/// page of 100 listings with every field fits, thirty such pages in one query do not.
pub const MAX_COMPLEXITY: usize = 5_000;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    InventoryQuery,
    InboxQuery,
    AccountsQuery,
    BotsQuery,
    RequestsQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    InventoryMutation,
    InboxMutation,
    AccountsMutation,
    BotsMutation,
    RequestsMutation,
);

pub type CartieSchema = Schema<QueryRoot, MutationRoot, InboxSubscription>;

pub fn schema(services: Arc<Services>) -> CartieSchema {
    builder().data(services).finish()
}

/// The schema in SDL, for clients and `cartie schema`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, InboxSubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        InboxSubscription,
    )
    .extension(crate::access::Enforce)
    .extension(query_text::QueryTextChecks)
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
}

/// The address the request came from, when known (for throttling sign-in).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

/// Why the bearer token sent with the request was refused (the request then runs
/// anonymously, and non-public operations answer with this reason).
#[derive(Debug, Clone)]
pub struct AuthFailure(pub String);

/// Marks a request that came over the WebSocket, with the token it authenticated with, so
/// every subscription item can check the credential still holds.
#[derive(Clone)]
pub struct WebSocketSession {
    pub token: secrecy::SecretString,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    pub principal: Principal,
    /// Correlates everything this request causes.
    pub request_id: Uuid,
}

impl RequestContext {
    pub fn new(principal: Principal) -> Self {
        Self {
            principal,
            request_id: Uuid::now_v7(),
        }
    }

    pub fn command_context(&self) -> CommandContext {
        CommandContext {
            workspace_id: self.principal.workspace_id,
            actor: self.principal.actor(),
            correlation_id: self.request_id,
            causation_id: self.request_id,
            idempotency_key: None,
            now: Utc::now(),
        }
    }
}

pub(crate) fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Arc<Services>>()
}

pub(crate) fn caller<'a>(ctx: &Context<'a>) -> Result<&'a RequestContext, ApiError> {
    ctx.data_opt::<RequestContext>()
        .ok_or_else(|| ApiError::Unauthenticated("missing bearer token".into()))
}

pub(crate) fn parse_id(field: &str, id: &async_graphql::ID) -> Result<Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::validation(field, format!("{:?} is not a valid id", id.as_str())))
}
