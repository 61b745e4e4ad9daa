//! A person who signs in, and their memberships: one role per workspace they belong to.
//!
//! The user id is derived from the normalised e-mail ([`UserId::for_email`]), so one
//! e-mail is one person however many workspaces invite them. The password itself never
//! enters the model: its hash lives in the credential store, and the log records only that
//! it changed.

use std::collections::BTreeMap;
use std::fmt;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::context::Command;
use crate::ids::{UserId, WorkspaceId, CARTIE_NAMESPACE};
use crate::values::{FieldError, Text};

impl UserId {
    /// The id of the person with this e-mail.
    pub fn for_email(email: &Email) -> Self {
        Self(uuid::Uuid::new_v5(
            &CARTIE_NAMESPACE,
            format!("user:{}", email.as_str()).as_bytes(),
        ))
    }
}

/// An e-mail address, trimmed and lowercased so that one address is one person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim().to_lowercase();
        if value.len() > 254 {
            return Err(FieldError::new(field, "must be at most 254 characters"));
        }
        match value.parse::<email_address::EmailAddress>() {
            Ok(_)
                if value.contains('@')
                    && value.rsplit('@').next().is_some_and(|d| d.contains('.')) =>
            {
                Ok(Self(value))
            }
            _ => Err(FieldError::new(
                field,
                format!("{value:?} is not an e-mail address"),
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A member's role in one workspace. Roles gate administration only: every member uses
/// every module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the workspace; the only role that may make or unmake owners.
    Owner,
    /// Manages members, API tokens and integration secrets.
    Admin,
    Member,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    /// Whether this role manages members, tokens and secrets.
    pub fn manages(&self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MemberCommand {
    /// Adds the person (registering them on first sight) to the workspace of the context.
    InviteMember {
        email: Email,
        name: Text,
        role: Role,
    },
    ChangeMemberRole {
        role: Role,
    },
    DisableMember,
    EnableMember,
    /// Records that the password changed; the hash is kept by the credential store.
    RecordPasswordChange,
    RenameUser {
        name: Text,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MemberEvent {
    UserRegistered {
        email: Email,
        name: Text,
    },
    MembershipGranted {
        workspace_id: WorkspaceId,
        role: Role,
    },
    MemberRoleChanged {
        workspace_id: WorkspaceId,
        role: Role,
        previous: Role,
    },
    MemberDisabled {
        workspace_id: WorkspaceId,
    },
    MemberEnabled {
        workspace_id: WorkspaceId,
    },
    /// The password was set or changed (never the password or its hash).
    PasswordChanged,
    UserRenamed {
        name: Text,
    },
}

impl MemberEvent {
    pub const VERSION: &'static str = "1";
}

impl DomainEvent for MemberEvent {
    fn event_type(&self) -> String {
        match self {
            MemberEvent::UserRegistered { .. } => "UserRegistered",
            MemberEvent::MembershipGranted { .. } => "MembershipGranted",
            MemberEvent::MemberRoleChanged { .. } => "MemberRoleChanged",
            MemberEvent::MemberDisabled { .. } => "MemberDisabled",
            MemberEvent::MemberEnabled { .. } => "MemberEnabled",
            MemberEvent::PasswordChanged => "PasswordChanged",
            MemberEvent::UserRenamed { .. } => "UserRenamed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        Self::VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// No such person, or not a member of the acting workspace (indistinguishable).
    #[error("member not found")]
    NotFound,
    #[error("{0} is already a member of this workspace")]
    AlreadyMember(String),
    #[error("the invitation's e-mail does not match the member")]
    EmailMismatch,
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub role: Role,
    pub disabled: bool,
}

/// A person's state, rebuilt from their events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    email: Option<Email>,
    name: Option<Text>,
    memberships: BTreeMap<WorkspaceId, Membership>,
}

impl Member {
    pub fn decide(&self, command: Command<MemberCommand>) -> Result<Vec<MemberEvent>, MemberError> {
        let Command { context, body, .. } = command;
        let workspace_id = context.workspace_id;
        if let MemberCommand::InviteMember { email, name, role } = body {
            let mut events = Vec::new();
            match &self.email {
                Some(known) if known != &email => return Err(MemberError::EmailMismatch),
                Some(_) => {}
                None => events.push(MemberEvent::UserRegistered {
                    email: email.clone(),
                    name,
                }),
            }
            match self.memberships.get(&workspace_id) {
                // A repeated invitation with the same role changes nothing.
                Some(m) if m.role == role && !m.disabled => {}
                Some(_) => return Err(MemberError::AlreadyMember(email.to_string())),
                None => events.push(MemberEvent::MembershipGranted { workspace_id, role }),
            }
            return Ok(events);
        }
        if self.email.is_none() {
            return Err(MemberError::NotFound);
        }
        // Commands about the person themself, not about a membership.
        match &body {
            MemberCommand::RecordPasswordChange => return Ok(vec![MemberEvent::PasswordChanged]),
            MemberCommand::RenameUser { name } => {
                return Ok(if self.name.as_ref() == Some(name) {
                    vec![]
                } else {
                    vec![MemberEvent::UserRenamed { name: name.clone() }]
                })
            }
            _ => {}
        }
        let Some(membership) = self.memberships.get(&workspace_id) else {
            return Err(MemberError::NotFound);
        };
        let events = match body {
            MemberCommand::ChangeMemberRole { role } => {
                if role == membership.role {
                    vec![]
                } else {
                    vec![MemberEvent::MemberRoleChanged {
                        workspace_id,
                        role,
                        previous: membership.role,
                    }]
                }
            }
            MemberCommand::DisableMember => {
                if membership.disabled {
                    vec![]
                } else {
                    vec![MemberEvent::MemberDisabled { workspace_id }]
                }
            }
            MemberCommand::EnableMember => {
                if membership.disabled {
                    vec![MemberEvent::MemberEnabled { workspace_id }]
                } else {
                    vec![]
                }
            }
            MemberCommand::InviteMember { .. }
            | MemberCommand::RecordPasswordChange
            | MemberCommand::RenameUser { .. } => unreachable!("handled above"),
        };
        Ok(events)
    }
}

crate::decided_aggregate!(Member, "Member", MemberCommand, MemberEvent, MemberError);

impl Member {
    /// Applies one of its events to the state.
    fn evolve(&mut self, event: MemberEvent) {
        match event {
            MemberEvent::UserRegistered { email, name } => {
                self.email = Some(email);
                self.name = Some(name);
            }
            MemberEvent::MembershipGranted { workspace_id, role } => {
                self.memberships.insert(
                    workspace_id,
                    Membership {
                        role,
                        disabled: false,
                    },
                );
            }
            MemberEvent::MemberRoleChanged {
                workspace_id, role, ..
            } => {
                if let Some(m) = self.memberships.get_mut(&workspace_id) {
                    m.role = role;
                }
            }
            MemberEvent::MemberDisabled { workspace_id } => {
                if let Some(m) = self.memberships.get_mut(&workspace_id) {
                    m.disabled = true;
                }
            }
            MemberEvent::MemberEnabled { workspace_id } => {
                if let Some(m) = self.memberships.get_mut(&workspace_id) {
                    m.disabled = false;
                }
            }
            MemberEvent::PasswordChanged => {}
            MemberEvent::UserRenamed { name } => self.name = Some(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::context::{Actor, CommandContext};

    type MemberTest = TestFramework<Member>;

    fn ws_a() -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(0xA))
    }

    fn ws_b() -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(0xB))
    }

    fn email() -> Email {
        Email::parse("email", "  Olena@Motors.example ").unwrap()
    }

    fn name() -> Text {
        Text::parse("name", "Olena", 100).unwrap()
    }

    fn in_ws(workspace: WorkspaceId, body: MemberCommand) -> Command<MemberCommand> {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        Command::new(
            CommandContext::new(workspace, Actor::User(UserId(Uuid::from_u128(1))), now),
            body,
        )
    }

    fn invite(role: Role) -> MemberCommand {
        MemberCommand::InviteMember {
            email: email(),
            name: name(),
            role,
        }
    }

    fn registered() -> MemberEvent {
        MemberEvent::UserRegistered {
            email: email(),
            name: name(),
        }
    }

    fn granted(workspace_id: WorkspaceId, role: Role) -> MemberEvent {
        MemberEvent::MembershipGranted { workspace_id, role }
    }

    #[test]
    fn e_mails_are_normalised_and_validated_and_name_the_person() {
        assert_eq!(email().as_str(), "olena@motors.example");
        assert_eq!(
            UserId::for_email(&email()),
            UserId::for_email(&Email::parse("e", "OLENA@motors.example").unwrap())
        );
        for bad in [
            "olena",
            "olena@",
            "@motors.example",
            "olena@motors",
            "a b@c.d",
        ] {
            assert_eq!(
                Email::parse("email", bad).unwrap_err().field,
                "email",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_first_invitation_registers_the_person_and_grants_the_role() {
        MemberTest::with(())
            .given_no_previous_events()
            .when(in_ws(ws_a(), invite(Role::Admin)))
            .then_expect_events(vec![registered(), granted(ws_a(), Role::Admin)]);
    }

    #[test]
    fn a_person_joins_a_second_workspace_without_registering_again() {
        MemberTest::with(())
            .given(vec![registered(), granted(ws_a(), Role::Owner)])
            .when(in_ws(ws_b(), invite(Role::Member)))
            .then_expect_events(vec![granted(ws_b(), Role::Member)]);
    }

    #[test]
    fn a_repeated_invitation_changes_nothing_and_a_different_one_is_refused() {
        MemberTest::with(())
            .given(vec![registered(), granted(ws_a(), Role::Member)])
            .when(in_ws(ws_a(), invite(Role::Member)))
            .then_expect_events(vec![]);
        MemberTest::with(())
            .given(vec![registered(), granted(ws_a(), Role::Member)])
            .when(in_ws(ws_a(), invite(Role::Admin)))
            .then_expect_error(MemberError::AlreadyMember("olena@motors.example".into()));
    }

    #[test]
    fn roles_change_and_members_are_disabled_and_enabled_in_their_workspace_only() {
        let history = vec![registered(), granted(ws_a(), Role::Member)];
        MemberTest::with(())
            .given(history.clone())
            .when(in_ws(
                ws_a(),
                MemberCommand::ChangeMemberRole { role: Role::Admin },
            ))
            .then_expect_events(vec![MemberEvent::MemberRoleChanged {
                workspace_id: ws_a(),
                role: Role::Admin,
                previous: Role::Member,
            }]);
        MemberTest::with(())
            .given(history.clone())
            .when(in_ws(ws_a(), MemberCommand::DisableMember))
            .then_expect_events(vec![MemberEvent::MemberDisabled {
                workspace_id: ws_a(),
            }]);
        let mut disabled = history.clone();
        disabled.push(MemberEvent::MemberDisabled {
            workspace_id: ws_a(),
        });
        MemberTest::with(())
            .given(disabled.clone())
            .when(in_ws(ws_a(), MemberCommand::DisableMember))
            .then_expect_events(vec![]);
        MemberTest::with(())
            .given(disabled)
            .when(in_ws(ws_a(), MemberCommand::EnableMember))
            .then_expect_events(vec![MemberEvent::MemberEnabled {
                workspace_id: ws_a(),
            }]);
        // Workspace B's admin cannot touch a member of A only.
        for command in [
            MemberCommand::ChangeMemberRole { role: Role::Owner },
            MemberCommand::DisableMember,
            MemberCommand::EnableMember,
        ] {
            MemberTest::with(())
                .given(history.clone())
                .when(in_ws(ws_b(), command))
                .then_expect_error(MemberError::NotFound);
        }
    }

    #[test]
    fn password_changes_are_recorded_without_the_password() {
        MemberTest::with(())
            .given(vec![registered(), granted(ws_a(), Role::Member)])
            .when(in_ws(ws_a(), MemberCommand::RecordPasswordChange))
            .then_expect_events(vec![MemberEvent::PasswordChanged]);
        MemberTest::with(())
            .given_no_previous_events()
            .when(in_ws(ws_a(), MemberCommand::RecordPasswordChange))
            .then_expect_error(MemberError::NotFound);
        let json = serde_json::to_string(&MemberEvent::PasswordChanged).unwrap();
        assert_eq!(json, "\"PasswordChanged\"");
    }
}
