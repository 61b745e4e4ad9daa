//! A partner dealer company: a name, a city and the people to reach there. Requests are
//! published to partners, who offer variants through their own API tokens (role
//! `partner`). A deactivated partner cannot be addressed and its tokens stop working.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::context::Command;
use crate::ids::WorkspaceId;
use crate::lead::{Phone, TelegramUsername};
use crate::member::Email;
use crate::values::{FieldError, Text};

/// One person to reach at a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerContact {
    pub name: Text,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub telegram: Option<TelegramUsername>,
}

/// What a partner is known by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerProfile {
    pub name: Text,
    pub city: Option<Text>,
    pub contacts: Vec<PartnerContact>,
    pub notes: Option<Text>,
}

impl PartnerProfile {
    pub const MAX_CONTACTS: usize = 20;

    pub fn check(&self) -> Result<(), FieldError> {
        if self.contacts.len() > Self::MAX_CONTACTS {
            return Err(FieldError::new(
                "contacts",
                format!("at most {} contacts", Self::MAX_CONTACTS),
            ));
        }
        for (i, contact) in self.contacts.iter().enumerate() {
            if contact.phone.is_none() && contact.email.is_none() && contact.telegram.is_none() {
                return Err(FieldError::new(
                    format!("contacts[{i}]"),
                    "give a phone, an e-mail or a Telegram username",
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PartnerCommand {
    RegisterPartner { profile: PartnerProfile },
    UpdatePartner { profile: PartnerProfile },
    DeactivatePartner,
    ReactivatePartner,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PartnerEvent {
    PartnerRegistered {
        workspace_id: WorkspaceId,
        profile: PartnerProfile,
    },
    PartnerUpdated {
        profile: PartnerProfile,
    },
    PartnerDeactivated,
    PartnerReactivated,
}

impl PartnerEvent {
    pub const VERSION: &'static str = "1";
}

impl DomainEvent for PartnerEvent {
    fn event_type(&self) -> String {
        match self {
            PartnerEvent::PartnerRegistered { .. } => "PartnerRegistered",
            PartnerEvent::PartnerUpdated { .. } => "PartnerUpdated",
            PartnerEvent::PartnerDeactivated => "PartnerDeactivated",
            PartnerEvent::PartnerReactivated => "PartnerReactivated",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        Self::VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerError {
    /// No such partner, or another workspace's (indistinguishable).
    #[error("partner not found")]
    NotFound,
    #[error("a partner with this id already exists")]
    AlreadyExists,
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    workspace_id: Option<WorkspaceId>,
    profile: Option<PartnerProfile>,
    active: bool,
}

impl Partner {
    pub fn decide(
        &self,
        command: Command<PartnerCommand>,
    ) -> Result<Vec<PartnerEvent>, PartnerError> {
        let workspace_id = command.context.workspace_id;
        if let PartnerCommand::RegisterPartner { profile } = command.body {
            if self.workspace_id.is_some() {
                return Err(PartnerError::AlreadyExists);
            }
            profile.check()?;
            return Ok(vec![PartnerEvent::PartnerRegistered {
                workspace_id,
                profile,
            }]);
        }
        if self.workspace_id != Some(workspace_id) {
            return Err(PartnerError::NotFound);
        }
        Ok(match command.body {
            PartnerCommand::RegisterPartner { .. } => unreachable!("handled above"),
            PartnerCommand::UpdatePartner { profile } => {
                profile.check()?;
                if self.profile.as_ref() == Some(&profile) {
                    vec![]
                } else {
                    vec![PartnerEvent::PartnerUpdated { profile }]
                }
            }
            PartnerCommand::DeactivatePartner if self.active => {
                vec![PartnerEvent::PartnerDeactivated]
            }
            PartnerCommand::ReactivatePartner if !self.active => {
                vec![PartnerEvent::PartnerReactivated]
            }
            PartnerCommand::DeactivatePartner | PartnerCommand::ReactivatePartner => vec![],
        })
    }

    /// Applies one of its events to the state.
    fn evolve(&mut self, event: PartnerEvent) {
        match event {
            PartnerEvent::PartnerRegistered {
                workspace_id,
                profile,
            } => {
                self.workspace_id = Some(workspace_id);
                self.profile = Some(profile);
                self.active = true;
            }
            PartnerEvent::PartnerUpdated { profile } => self.profile = Some(profile),
            PartnerEvent::PartnerDeactivated => self.active = false,
            PartnerEvent::PartnerReactivated => self.active = true,
        }
    }
}

crate::decided_aggregate!(
    Partner,
    "Partner",
    PartnerCommand,
    PartnerEvent,
    PartnerError
);

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::context::{Actor, CommandContext};

    trait FieldIs {
        fn field_is(self, field: &str);
    }

    impl FieldIs for PartnerError {
        fn field_is(self, field: &str) {
            match self {
                PartnerError::Invalid(error) => assert_eq!(error.field, field, "{error}"),
                other => panic!("expected a refusal of {field}, got {other:?}"),
            }
        }
    }

    type Test = TestFramework<Partner>;

    fn ws(n: u128) -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(n))
    }

    fn cmd(workspace: WorkspaceId, body: PartnerCommand) -> Command<PartnerCommand> {
        Command::new(
            CommandContext::new(workspace, Actor::System, Utc::now()),
            body,
        )
    }

    fn profile(name: &str) -> PartnerProfile {
        PartnerProfile {
            name: Text::parse("name", name, 200).unwrap(),
            city: None,
            contacts: vec![PartnerContact {
                name: Text::parse("name", "Taras", 100).unwrap(),
                phone: Some(Phone::parse("phone", "+380671234567").unwrap()),
                email: None,
                telegram: None,
            }],
            notes: None,
        }
    }

    fn registered() -> PartnerEvent {
        PartnerEvent::PartnerRegistered {
            workspace_id: ws(1),
            profile: profile("Lviv Auto"),
        }
    }

    #[test]
    fn a_partner_is_registered_updated_deactivated_and_reactivated() {
        Test::with(())
            .given_no_previous_events()
            .when(cmd(
                ws(1),
                PartnerCommand::RegisterPartner {
                    profile: profile("Lviv Auto"),
                },
            ))
            .then_expect_events(vec![registered()]);
        Test::with(())
            .given(vec![registered()])
            .when(cmd(
                ws(1),
                PartnerCommand::UpdatePartner {
                    profile: profile("Lviv Auto Group"),
                },
            ))
            .then_expect_events(vec![PartnerEvent::PartnerUpdated {
                profile: profile("Lviv Auto Group"),
            }]);
        Test::with(())
            .given(vec![registered()])
            .when(cmd(
                ws(1),
                PartnerCommand::UpdatePartner {
                    profile: profile("Lviv Auto"),
                },
            ))
            .then_expect_events(vec![]);
        Test::with(())
            .given(vec![registered()])
            .when(cmd(ws(1), PartnerCommand::DeactivatePartner))
            .then_expect_events(vec![PartnerEvent::PartnerDeactivated]);
        Test::with(())
            .given(vec![registered()])
            .when(cmd(ws(1), PartnerCommand::ReactivatePartner))
            .then_expect_events(vec![]);
        Test::with(())
            .given(vec![registered(), PartnerEvent::PartnerDeactivated])
            .when(cmd(ws(1), PartnerCommand::ReactivatePartner))
            .then_expect_events(vec![PartnerEvent::PartnerReactivated]);
    }

    #[test]
    fn a_contact_without_a_way_to_reach_them_is_refused() {
        let mut unreachable = profile("Lviv Auto");
        unreachable.contacts[0].phone = None;
        Test::with(())
            .given_no_previous_events()
            .when(cmd(
                ws(1),
                PartnerCommand::RegisterPartner {
                    profile: unreachable,
                },
            ))
            .inspect_result()
            .expect_err("refused")
            .field_is("contacts[0]");
    }

    #[test]
    fn another_workspaces_partner_is_not_found() {
        Test::with(())
            .given(vec![registered()])
            .when(cmd(ws(2), PartnerCommand::DeactivatePartner))
            .then_expect_error(PartnerError::NotFound);
        Test::with(())
            .given(vec![registered()])
            .when(cmd(
                ws(2),
                PartnerCommand::RegisterPartner {
                    profile: profile("X"),
                },
            ))
            .then_expect_error(PartnerError::AlreadyExists);
    }
}
