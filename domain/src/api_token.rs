//! An API token for a bot or an integration: a name and a role in one workspace. The
//! token's secret is shown once at creation and kept only as a hash by the credential
//! store; the log records that the token exists and when it was revoked.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::context::Command;
use crate::ids::{PartnerId, WorkspaceId};
use crate::member::Role;
use crate::values::{FieldError, Text};

#[derive(Debug, Clone, PartialEq)]
pub enum ApiTokenCommand {
    CreateApiToken {
        name: Text,
        role: Role,
    },
    /// A token a partner dealer acts with (role `partner`): it sees only the published
    /// requests addressed to that partner and the partner's own variants.
    CreatePartnerToken {
        name: Text,
        partner_id: PartnerId,
    },
    RevokeApiToken,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApiTokenEvent {
    ApiTokenCreated {
        workspace_id: WorkspaceId,
        name: Text,
        role: Role,
    },
    PartnerTokenCreated {
        workspace_id: WorkspaceId,
        name: Text,
        partner_id: PartnerId,
    },
    ApiTokenRevoked,
}

impl ApiTokenEvent {
    pub const VERSION: &'static str = "1";
}

impl DomainEvent for ApiTokenEvent {
    fn event_type(&self) -> String {
        match self {
            ApiTokenEvent::ApiTokenCreated { .. } => "ApiTokenCreated",
            ApiTokenEvent::PartnerTokenCreated { .. } => "PartnerTokenCreated",
            ApiTokenEvent::ApiTokenRevoked => "ApiTokenRevoked",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        Self::VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiTokenError {
    /// No such token, or another workspace's (indistinguishable).
    #[error("API token not found")]
    NotFound,
    #[error("an API token with this id already exists")]
    AlreadyExists,
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    workspace_id: Option<WorkspaceId>,
    revoked: bool,
}

impl ApiToken {
    pub fn decide(
        &self,
        command: Command<ApiTokenCommand>,
    ) -> Result<Vec<ApiTokenEvent>, ApiTokenError> {
        let workspace_id = command.context.workspace_id;
        match command.body {
            ApiTokenCommand::CreateApiToken { name, role } => {
                if self.workspace_id.is_some() {
                    return Err(ApiTokenError::AlreadyExists);
                }
                if role == Role::Owner {
                    return Err(FieldError::new(
                        "role",
                        "an API token can be an admin or a member, not an owner",
                    )
                    .into());
                }
                Ok(vec![ApiTokenEvent::ApiTokenCreated {
                    workspace_id,
                    name,
                    role,
                }])
            }
            ApiTokenCommand::CreatePartnerToken { name, partner_id } => {
                if self.workspace_id.is_some() {
                    return Err(ApiTokenError::AlreadyExists);
                }
                Ok(vec![ApiTokenEvent::PartnerTokenCreated {
                    workspace_id,
                    name,
                    partner_id,
                }])
            }
            ApiTokenCommand::RevokeApiToken => {
                if self.workspace_id != Some(workspace_id) {
                    return Err(ApiTokenError::NotFound);
                }
                Ok(if self.revoked {
                    vec![]
                } else {
                    vec![ApiTokenEvent::ApiTokenRevoked]
                })
            }
        }
    }
}

crate::decided_aggregate!(
    ApiToken,
    "ApiToken",
    ApiTokenCommand,
    ApiTokenEvent,
    ApiTokenError
);

impl ApiToken {
    /// Applies one of its events to the state.
    fn evolve(&mut self, event: ApiTokenEvent) {
        match event {
            ApiTokenEvent::ApiTokenCreated { workspace_id, .. }
            | ApiTokenEvent::PartnerTokenCreated { workspace_id, .. } => {
                self.workspace_id = Some(workspace_id)
            }
            ApiTokenEvent::ApiTokenRevoked => self.revoked = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::context::{Actor, CommandContext};

    type TokenTest = TestFramework<ApiToken>;

    fn ws_a() -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(0xA))
    }

    fn in_ws(workspace: WorkspaceId, body: ApiTokenCommand) -> Command<ApiTokenCommand> {
        Command::new(
            CommandContext::new(workspace, Actor::System, Utc::now()),
            body,
        )
    }

    fn created() -> ApiTokenEvent {
        ApiTokenEvent::ApiTokenCreated {
            workspace_id: ws_a(),
            name: Text::parse("name", "CRM sync", 100).unwrap(),
            role: Role::Member,
        }
    }

    #[test]
    fn a_token_is_created_in_its_workspace_but_never_as_an_owner() {
        let name = Text::parse("name", "CRM sync", 100).unwrap();
        TokenTest::with(())
            .given_no_previous_events()
            .when(in_ws(
                ws_a(),
                ApiTokenCommand::CreateApiToken {
                    name: name.clone(),
                    role: Role::Member,
                },
            ))
            .then_expect_events(vec![created()]);
        TokenTest::with(())
            .given_no_previous_events()
            .when(in_ws(
                ws_a(),
                ApiTokenCommand::CreateApiToken {
                    name,
                    role: Role::Owner,
                },
            ))
            .then_expect_error(ApiTokenError::Invalid(FieldError::new(
                "role",
                "an API token can be an admin or a member, not an owner",
            )));
    }

    #[test]
    fn a_token_is_revoked_once_and_only_by_its_workspace() {
        TokenTest::with(())
            .given(vec![created()])
            .when(in_ws(ws_a(), ApiTokenCommand::RevokeApiToken))
            .then_expect_events(vec![ApiTokenEvent::ApiTokenRevoked]);
        TokenTest::with(())
            .given(vec![created(), ApiTokenEvent::ApiTokenRevoked])
            .when(in_ws(ws_a(), ApiTokenCommand::RevokeApiToken))
            .then_expect_events(vec![]);
        TokenTest::with(())
            .given(vec![created()])
            .when(in_ws(
                WorkspaceId(Uuid::from_u128(0xB)),
                ApiTokenCommand::RevokeApiToken,
            ))
            .then_expect_error(ApiTokenError::NotFound);
    }
}
