//! A buyer worth following up: contact, interest, and where they stand in the pipeline.

use std::fmt;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::context::Command;
use crate::ids::{ConversationId, ListingId, UserId, WorkspaceId};
use crate::values::{FieldError, Money, Text};

/// A phone number in E.164 (`+380671234567`). Numbers without a country code are read as
/// Ukrainian, the platform's home market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub const DEFAULT_REGION: phonenumber::country::Id = phonenumber::country::Id::UA;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        let region = (!value.starts_with('+')).then_some(Self::DEFAULT_REGION);
        let number = phonenumber::parse(region, value)
            .map_err(|_| FieldError::new(field, format!("{value:?} is not a phone number")))?;
        if !phonenumber::is_valid(&number) {
            return Err(FieldError::new(
                field,
                format!("{value:?} is not a valid phone number"),
            ));
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Telegram username, without the `@`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TelegramUsername(String);

impl TelegramUsername {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim().trim_start_matches('@');
        let ok = (4..=32).contains(&value.len())
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && value
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
        if !ok {
            return Err(FieldError::new(
                field,
                "a Telegram username is 4 to 32 letters, digits and '_', starting with a letter",
            ));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a lead came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LeadSource {
    Conversation,
    Form,
    Channel,
    Manual,
}

impl LeadSource {
    pub const ALL: [LeadSource; 4] = [
        LeadSource::Conversation,
        LeadSource::Form,
        LeadSource::Channel,
        LeadSource::Manual,
    ];

    /// The source its `as_str` names.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            LeadSource::Conversation => "CONVERSATION",
            LeadSource::Form => "FORM",
            LeadSource::Channel => "CHANNEL",
            LeadSource::Manual => "MANUAL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LeadStatus {
    New,
    Contacted,
    Qualified,
    Won,
    Lost,
}

impl LeadStatus {
    pub const ALL: [LeadStatus; 5] = [
        LeadStatus::New,
        LeadStatus::Contacted,
        LeadStatus::Qualified,
        LeadStatus::Won,
        LeadStatus::Lost,
    ];

    /// The status its `as_str` names.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            LeadStatus::New => "NEW",
            LeadStatus::Contacted => "CONTACTED",
            LeadStatus::Qualified => "QUALIFIED",
            LeadStatus::Won => "WON",
            LeadStatus::Lost => "LOST",
        }
    }

    /// The pipeline: NEW → CONTACTED → QUALIFIED → WON, and LOST from any open stage.
    pub fn can_become(self, to: LeadStatus) -> bool {
        use LeadStatus::*;
        matches!(
            (self, to),
            (New, Contacted)
                | (Contacted, Qualified)
                | (Qualified, Won)
                | (New | Contacted | Qualified, Lost)
        )
    }
}

impl fmt::Display for LeadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadContact {
    pub name: Option<Text>,
    pub phone: Option<Phone>,
    pub username: Option<TelegramUsername>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interest {
    pub brand: Option<Text>,
    pub model: Option<Text>,
    pub budget: Option<Money>,
    pub listing_id: Option<ListingId>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LeadCommand {
    CaptureLead {
        source: LeadSource,
        contact: LeadContact,
        interest: Interest,
        conversation_id: Option<ConversationId>,
        assignee: Option<UserId>,
    },
    ChangeLeadStatus {
        to: LeadStatus,
        reason: Option<Text>,
    },
    AddLeadNote {
        text: Text,
    },
    AssignLead {
        assignee: Option<UserId>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LeadEvent {
    LeadCaptured {
        workspace_id: WorkspaceId,
        source: LeadSource,
        contact: LeadContact,
        interest: Interest,
        conversation_id: Option<ConversationId>,
        assignee: Option<UserId>,
    },
    LeadStatusChanged {
        from: LeadStatus,
        to: LeadStatus,
        reason: Option<Text>,
    },
    LeadNoteAdded {
        text: Text,
    },
    LeadAssigned {
        assignee: Option<UserId>,
    },
}

impl LeadEvent {
    pub const VERSION: &'static str = "1";
}

impl DomainEvent for LeadEvent {
    fn event_type(&self) -> String {
        match self {
            LeadEvent::LeadCaptured { .. } => "LeadCaptured",
            LeadEvent::LeadStatusChanged { .. } => "LeadStatusChanged",
            LeadEvent::LeadNoteAdded { .. } => "LeadNoteAdded",
            LeadEvent::LeadAssigned { .. } => "LeadAssigned",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        Self::VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadError {
    #[error("lead not found")]
    NotFound,
    #[error("a lead with this id already exists")]
    AlreadyExists,
    #[error("a lead cannot go from {from} to {to}")]
    IllegalTransition { from: LeadStatus, to: LeadStatus },
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    workspace_id: Option<WorkspaceId>,
    status: Option<LeadStatus>,
    assignee: Option<UserId>,
}

impl Lead {
    pub fn decide(&self, command: Command<LeadCommand>) -> Result<Vec<LeadEvent>, LeadError> {
        let workspace_id = command.context.workspace_id;
        if let LeadCommand::CaptureLead {
            source,
            contact,
            interest,
            conversation_id,
            assignee,
        } = command.body
        {
            return match self.workspace_id {
                // Capturing a conversation's lead again finds the first.
                Some(owner) if owner == workspace_id => Ok(vec![]),
                Some(_) => Err(LeadError::AlreadyExists),
                None => {
                    if contact.name.is_none()
                        && contact.phone.is_none()
                        && contact.username.is_none()
                    {
                        return Err(FieldError::new(
                            "contact",
                            "a lead needs a name, a phone or a Telegram username",
                        )
                        .into());
                    }
                    Ok(vec![LeadEvent::LeadCaptured {
                        workspace_id,
                        source,
                        contact,
                        interest,
                        conversation_id,
                        assignee,
                    }])
                }
            };
        }
        let (Some(owner), Some(status)) = (self.workspace_id, self.status) else {
            return Err(LeadError::NotFound);
        };
        if owner != workspace_id {
            return Err(LeadError::NotFound);
        }
        let events = match command.body {
            LeadCommand::CaptureLead { .. } => unreachable!("handled above"),
            LeadCommand::ChangeLeadStatus { to, reason } => {
                if to == status {
                    return Ok(vec![]);
                }
                if !status.can_become(to) {
                    return Err(LeadError::IllegalTransition { from: status, to });
                }
                if to == LeadStatus::Lost && reason.is_none() {
                    return Err(FieldError::new("reason", "say why the lead was lost").into());
                }
                vec![LeadEvent::LeadStatusChanged {
                    from: status,
                    to,
                    reason,
                }]
            }
            LeadCommand::AddLeadNote { text } => vec![LeadEvent::LeadNoteAdded { text }],
            LeadCommand::AssignLead { assignee } => {
                if assignee == self.assignee {
                    vec![]
                } else {
                    vec![LeadEvent::LeadAssigned { assignee }]
                }
            }
        };
        Ok(events)
    }

    /// Applies one of its events to the state.
    fn evolve(&mut self, event: LeadEvent) {
        match event {
            LeadEvent::LeadCaptured {
                workspace_id,
                assignee,
                ..
            } => {
                self.workspace_id = Some(workspace_id);
                self.status = Some(LeadStatus::New);
                self.assignee = assignee;
            }
            LeadEvent::LeadStatusChanged { to, .. } => self.status = Some(to),
            LeadEvent::LeadNoteAdded { .. } => {}
            LeadEvent::LeadAssigned { assignee } => self.assignee = assignee,
        }
    }
}

crate::decided_aggregate!(Lead, "Lead", LeadCommand, LeadEvent, LeadError);

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::context::{Actor, CommandContext};
    use crate::values::Currency;

    type LeadTest = TestFramework<Lead>;

    fn ws() -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(0xA))
    }

    fn cmd(body: LeadCommand) -> Command<LeadCommand> {
        Command::new(CommandContext::new(ws(), Actor::System, Utc::now()), body)
    }

    fn text(value: &str) -> Text {
        Text::parse("t", value, 200).unwrap()
    }

    fn contact() -> LeadContact {
        LeadContact {
            name: Some(text("Ivan")),
            phone: Some(Phone::parse("phone", "067 123 45 67").unwrap()),
            username: None,
        }
    }

    fn captured() -> LeadEvent {
        LeadEvent::LeadCaptured {
            workspace_id: ws(),
            source: LeadSource::Manual,
            contact: contact(),
            interest: Interest {
                brand: Some(text("Toyota")),
                budget: Some(Money::price("budget", 2_000_000, Currency::USD).unwrap()),
                ..Interest::default()
            },
            conversation_id: None,
            assignee: None,
        }
    }

    fn to(status: LeadStatus, reason: Option<&str>) -> Command<LeadCommand> {
        cmd(LeadCommand::ChangeLeadStatus {
            to: status,
            reason: reason.map(text),
        })
    }

    fn changed(from: LeadStatus, to: LeadStatus) -> LeadEvent {
        LeadEvent::LeadStatusChanged {
            from,
            to,
            reason: None,
        }
    }

    #[test]
    fn phones_are_normalised_to_e164_or_refused() {
        assert_eq!(
            Phone::parse("phone", "067 123 45 67").unwrap().as_str(),
            "+380671234567"
        );
        assert_eq!(
            Phone::parse("phone", "+48 512 345 678").unwrap().as_str(),
            "+48512345678"
        );
        for bad in ["12", "not a phone", "+380 12"] {
            assert_eq!(
                Phone::parse("phone", bad).unwrap_err().field,
                "phone",
                "{bad}"
            );
        }
        assert_eq!(
            TelegramUsername::parse("u", "@ivan_buyer")
                .unwrap()
                .as_str(),
            "ivan_buyer"
        );
        assert!(TelegramUsername::parse("u", "1van").is_err());
    }

    #[test]
    fn a_lead_is_captured_with_some_way_to_reach_the_buyer() {
        let LeadEvent::LeadCaptured { interest, .. } = captured() else {
            unreachable!()
        };
        LeadTest::with(())
            .given_no_previous_events()
            .when(cmd(LeadCommand::CaptureLead {
                source: LeadSource::Manual,
                contact: contact(),
                interest,
                conversation_id: None,
                assignee: None,
            }))
            .then_expect_events(vec![captured()]);
        LeadTest::with(())
            .given_no_previous_events()
            .when(cmd(LeadCommand::CaptureLead {
                source: LeadSource::Form,
                contact: LeadContact::default(),
                interest: Interest::default(),
                conversation_id: None,
                assignee: None,
            }))
            .then_expect_error(LeadError::Invalid(FieldError::new(
                "contact",
                "a lead needs a name, a phone or a Telegram username",
            )));
    }

    #[test]
    fn the_pipeline_moves_forward_and_lost_needs_a_reason() {
        use LeadStatus::*;
        LeadTest::with(())
            .given(vec![captured()])
            .when(to(Contacted, None))
            .then_expect_events(vec![changed(New, Contacted)]);
        LeadTest::with(())
            .given(vec![captured()])
            .when(to(Won, None))
            .then_expect_error(LeadError::IllegalTransition { from: New, to: Won });
        LeadTest::with(())
            .given(vec![
                captured(),
                changed(New, Contacted),
                changed(Contacted, Qualified),
            ])
            .when(to(Won, None))
            .then_expect_events(vec![changed(Qualified, Won)]);
        LeadTest::with(())
            .given(vec![captured()])
            .when(to(Lost, None))
            .then_expect_error(LeadError::Invalid(FieldError::new(
                "reason",
                "say why the lead was lost",
            )));
        LeadTest::with(())
            .given(vec![captured()])
            .when(to(Lost, Some("bought elsewhere")))
            .then_expect_events(vec![LeadEvent::LeadStatusChanged {
                from: New,
                to: Lost,
                reason: Some(text("bought elsewhere")),
            }]);
        LeadTest::with(())
            .given(vec![captured(), changed(New, Lost)])
            .when(to(Contacted, None))
            .then_expect_error(LeadError::IllegalTransition {
                from: Lost,
                to: Contacted,
            });
        // Every pair outside the pipeline is refused.
        let all = LeadStatus::ALL;
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (New, Contacted),
                (New, Lost),
                (Contacted, Qualified),
                (Contacted, Lost),
                (Qualified, Won),
                (Qualified, Lost)
            ]
        );
    }

    #[test]
    fn notes_and_assignment_and_isolation() {
        let member = UserId(Uuid::from_u128(9));
        LeadTest::with(())
            .given(vec![captured()])
            .when(cmd(LeadCommand::AddLeadNote {
                text: text("Calls after 18:00"),
            }))
            .then_expect_events(vec![LeadEvent::LeadNoteAdded {
                text: text("Calls after 18:00"),
            }]);
        LeadTest::with(())
            .given(vec![captured()])
            .when(cmd(LeadCommand::AssignLead {
                assignee: Some(member),
            }))
            .then_expect_events(vec![LeadEvent::LeadAssigned {
                assignee: Some(member),
            }]);
        LeadTest::with(())
            .given(vec![captured()])
            .when(Command::new(
                CommandContext::new(WorkspaceId(Uuid::from_u128(0xB)), Actor::System, Utc::now()),
                LeadCommand::AddLeadNote { text: text("x") },
            ))
            .then_expect_error(LeadError::NotFound);
    }
}
