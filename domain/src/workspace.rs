//! A dealer company's workspace: its name, unique slug, settings and integration secrets.
//!
//! The workspace id is derived from the slug ([`WorkspaceId::for_slug`]), so the slug's
//! uniqueness is the aggregate id's uniqueness: two creations with one slug meet on one
//! aggregate and the second is refused. The slug never changes; the name does.

use std::collections::BTreeMap;
use std::fmt;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::context::{Actor, Command};
use crate::ids::{WorkspaceId, CARTIE_NAMESPACE};
use crate::values::{Currency, FieldError, Text};

/// The slug of the platform's own workspace, whose owners and admins administer the
/// platform. Nobody but the platform itself (seeds) may create it.
pub const PLATFORM_SLUG: &str = "platform";

impl WorkspaceId {
    /// The id of the workspace with this slug.
    pub fn for_slug(slug: &Slug) -> Self {
        Self(uuid::Uuid::new_v5(
            &CARTIE_NAMESPACE,
            format!("workspace:{}", slug.as_str()).as_bytes(),
        ))
    }

    /// The platform workspace's id.
    pub fn platform() -> Self {
        Self::for_slug(&Slug(PLATFORM_SLUG.to_string()))
    }
}

/// A workspace's address: 3–40 lowercase letters, digits and single hyphens, starting and
/// ending with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        let len = value.chars().count();
        if !(3..=40).contains(&len) {
            return Err(FieldError::new(
                field,
                format!("must be 3 to 40 characters (got {len})"),
            ));
        }
        let allowed = value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !allowed || value.starts_with('-') || value.ends_with('-') || value.contains("--") {
            return Err(FieldError::new(
                field,
                "may hold only lowercase letters, digits and single hyphens, and must start and end with a letter or digit",
            ));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_platform(&self) -> bool {
        self.0 == PLATFORM_SLUG
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IANA time zone name (`Europe/Kyiv`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimeZone(String);

impl TimeZone {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        value
            .parse::<chrono_tz::Tz>()
            .map(|tz| Self(tz.name().to_string()))
            .map_err(|_| {
                FieldError::new(
                    field,
                    format!("{value:?} is not an IANA time zone (such as Europe/Kyiv)"),
                )
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of an integration secret (`telegram_bot_token`, `crm.api_key`): 1–64 of
/// lowercase letters, digits, `_`, `.`, `:` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretName(String);

impl SecretName {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        let ok = (1..=64).contains(&value.len())
            && value.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | ':' | '-')
            });
        if !ok {
            return Err(FieldError::new(
                field,
                "must be 1 to 64 of lowercase letters, digits, '_', '.', ':' and '-'",
            ));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A secret sealed with the platform's secret key (an AEAD ciphertext, base64). The model
/// only stores and moves it; sealing and opening happen at the edge. Its `Debug` never
/// shows the ciphertext either.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(pub String);

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecret(..)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WorkspaceCommand {
    CreateWorkspace {
        name: Text,
        slug: Slug,
        default_currency: Currency,
        time_zone: TimeZone,
    },
    RenameWorkspace {
        name: Text,
    },
    /// Changes the settings given; `None` keeps a setting.
    ChangeWorkspaceSettings {
        default_currency: Option<Currency>,
        time_zone: Option<TimeZone>,
    },
    SetIntegrationSecret {
        name: SecretName,
        sealed: SealedSecret,
    },
    ClearIntegrationSecret {
        name: SecretName,
    },
}

/// What happened to a workspace. Secrets appear only sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkspaceEvent {
    WorkspaceCreated {
        name: Text,
        slug: Slug,
        default_currency: Currency,
        time_zone: TimeZone,
    },
    WorkspaceRenamed {
        name: Text,
        previous: Text,
    },
    WorkspaceSettingsChanged {
        default_currency: Currency,
        time_zone: TimeZone,
    },
    IntegrationSecretSet {
        name: SecretName,
        sealed: SealedSecret,
    },
    IntegrationSecretCleared {
        name: SecretName,
    },
}

impl WorkspaceEvent {
    pub const VERSION: &'static str = "1";
}

impl DomainEvent for WorkspaceEvent {
    fn event_type(&self) -> String {
        match self {
            WorkspaceEvent::WorkspaceCreated { .. } => "WorkspaceCreated",
            WorkspaceEvent::WorkspaceRenamed { .. } => "WorkspaceRenamed",
            WorkspaceEvent::WorkspaceSettingsChanged { .. } => "WorkspaceSettingsChanged",
            WorkspaceEvent::IntegrationSecretSet { .. } => "IntegrationSecretSet",
            WorkspaceEvent::IntegrationSecretCleared { .. } => "IntegrationSecretCleared",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        Self::VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    #[error("workspace not found")]
    NotFound,
    #[error("the slug {0:?} is taken")]
    SlugTaken(String),
    #[error("the slug {0:?} is reserved for the platform")]
    SlugReserved(String),
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
    #[error("no integration secret named {0:?} is set")]
    NoSuchSecret(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    name: Text,
    slug: Slug,
    default_currency: Currency,
    time_zone: TimeZone,
}

/// A workspace's state, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    settings: Option<Settings>,
    secrets: BTreeMap<SecretName, SealedSecret>,
}

impl Workspace {
    /// Takes a decision. The aggregate id must be [`WorkspaceId::for_slug`] of the slug;
    /// later commands act only on the workspace of their context, so nobody reaches
    /// another workspace through them.
    pub fn decide(
        &self,
        command: Command<WorkspaceCommand>,
    ) -> Result<Vec<WorkspaceEvent>, WorkspaceError> {
        let Command { context, body, .. } = command;
        if let WorkspaceCommand::CreateWorkspace {
            name,
            slug,
            default_currency,
            time_zone,
        } = body
        {
            if self.settings.is_some() {
                return Err(WorkspaceError::SlugTaken(slug.to_string()));
            }
            if slug.is_platform() && context.actor != Actor::System {
                return Err(WorkspaceError::SlugReserved(slug.to_string()));
            }
            return Ok(vec![WorkspaceEvent::WorkspaceCreated {
                name,
                slug,
                default_currency,
                time_zone,
            }]);
        }
        let Some(settings) = &self.settings else {
            return Err(WorkspaceError::NotFound);
        };
        if context.workspace_id != WorkspaceId::for_slug(&settings.slug) {
            return Err(WorkspaceError::NotFound);
        }
        let events = match body {
            WorkspaceCommand::CreateWorkspace { .. } => unreachable!("handled above"),
            WorkspaceCommand::RenameWorkspace { name } => {
                if name == settings.name {
                    vec![]
                } else {
                    vec![WorkspaceEvent::WorkspaceRenamed {
                        name,
                        previous: settings.name.clone(),
                    }]
                }
            }
            WorkspaceCommand::ChangeWorkspaceSettings {
                default_currency,
                time_zone,
            } => {
                let default_currency = default_currency.unwrap_or(settings.default_currency);
                let time_zone = time_zone.unwrap_or_else(|| settings.time_zone.clone());
                if default_currency == settings.default_currency && time_zone == settings.time_zone
                {
                    vec![]
                } else {
                    vec![WorkspaceEvent::WorkspaceSettingsChanged {
                        default_currency,
                        time_zone,
                    }]
                }
            }
            // Sealing uses a fresh nonce each time, so an unchanged value still gives a
            // new ciphertext: every set is recorded.
            WorkspaceCommand::SetIntegrationSecret { name, sealed } => {
                vec![WorkspaceEvent::IntegrationSecretSet { name, sealed }]
            }
            WorkspaceCommand::ClearIntegrationSecret { name } => {
                if !self.secrets.contains_key(&name) {
                    return Err(WorkspaceError::NoSuchSecret(name.as_str().to_string()));
                }
                vec![WorkspaceEvent::IntegrationSecretCleared { name }]
            }
        };
        Ok(events)
    }
}

crate::decided_aggregate!(
    Workspace,
    "Workspace",
    WorkspaceCommand,
    WorkspaceEvent,
    WorkspaceError
);

impl Workspace {
    /// Applies one of its events to the state.
    fn evolve(&mut self, event: WorkspaceEvent) {
        match event {
            WorkspaceEvent::WorkspaceCreated {
                name,
                slug,
                default_currency,
                time_zone,
            } => {
                self.settings = Some(Settings {
                    name,
                    slug,
                    default_currency,
                    time_zone,
                });
            }
            WorkspaceEvent::WorkspaceRenamed { name, .. } => {
                if let Some(settings) = &mut self.settings {
                    settings.name = name;
                }
            }
            WorkspaceEvent::WorkspaceSettingsChanged {
                default_currency,
                time_zone,
            } => {
                if let Some(settings) = &mut self.settings {
                    settings.default_currency = default_currency;
                    settings.time_zone = time_zone;
                }
            }
            WorkspaceEvent::IntegrationSecretSet { name, sealed } => {
                self.secrets.insert(name, sealed);
            }
            WorkspaceEvent::IntegrationSecretCleared { name } => {
                self.secrets.remove(&name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::context::CommandContext;
    use crate::ids::UserId;

    type WorkspaceTest = TestFramework<Workspace>;

    fn slug(value: &str) -> Slug {
        Slug::parse("slug", value).unwrap()
    }

    fn kyiv() -> TimeZone {
        TimeZone::parse("timeZone", "Europe/Kyiv").unwrap()
    }

    fn text(value: &str) -> Text {
        Text::parse("name", value, 100).unwrap()
    }

    fn by(
        actor: Actor,
        workspace: WorkspaceId,
        body: WorkspaceCommand,
    ) -> Command<WorkspaceCommand> {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        Command::new(CommandContext::new(workspace, actor, now), body)
    }

    fn admin() -> Actor {
        Actor::User(UserId(Uuid::from_u128(1)))
    }

    fn in_motors(body: WorkspaceCommand) -> Command<WorkspaceCommand> {
        by(admin(), WorkspaceId::for_slug(&slug("motors")), body)
    }

    fn created() -> WorkspaceEvent {
        WorkspaceEvent::WorkspaceCreated {
            name: text("Motors"),
            slug: slug("motors"),
            default_currency: Currency::UAH,
            time_zone: kyiv(),
        }
    }

    fn create(name: &str, s: &str) -> WorkspaceCommand {
        WorkspaceCommand::CreateWorkspace {
            name: text(name),
            slug: slug(s),
            default_currency: Currency::UAH,
            time_zone: kyiv(),
        }
    }

    #[test]
    fn slugs_and_time_zones_are_validated() {
        assert!(Slug::parse("slug", "kyiv-motors-2").is_ok());
        for bad in [
            "ab",
            "Motors",
            "-motors",
            "motors-",
            "mo--tors",
            "mo tors",
            "моторс",
        ] {
            assert!(Slug::parse("slug", bad).is_err(), "{bad}");
        }
        assert_eq!(kyiv().as_str(), "Europe/Kyiv");
        let error = TimeZone::parse("timeZone", "Mars/Olympus").unwrap_err();
        assert_eq!(error.field, "timeZone");
        assert!(SecretName::parse("name", "telegram_bot_token").is_ok());
        assert!(SecretName::parse("name", "Bad Name").is_err());
    }

    #[test]
    fn a_workspace_is_created_once_per_slug() {
        WorkspaceTest::with(())
            .given_no_previous_events()
            .when(in_motors(create("Motors", "motors")))
            .then_expect_events(vec![created()]);
        WorkspaceTest::with(())
            .given(vec![created()])
            .when(in_motors(create("Other Motors", "motors")))
            .then_expect_error(WorkspaceError::SlugTaken("motors".into()));
    }

    #[test]
    fn only_the_platform_itself_creates_the_platform_workspace() {
        WorkspaceTest::with(())
            .given_no_previous_events()
            .when(by(
                admin(),
                WorkspaceId::platform(),
                create("Platform", "platform"),
            ))
            .then_expect_error(WorkspaceError::SlugReserved("platform".into()));
        WorkspaceTest::with(())
            .given_no_previous_events()
            .when(by(
                Actor::System,
                WorkspaceId::platform(),
                create("Platform", "platform"),
            ))
            .then_expect_events(vec![WorkspaceEvent::WorkspaceCreated {
                name: text("Platform"),
                slug: slug("platform"),
                default_currency: Currency::UAH,
                time_zone: kyiv(),
            }]);
    }

    #[test]
    fn a_rename_records_the_previous_name_and_a_same_name_rename_changes_nothing() {
        WorkspaceTest::with(())
            .given(vec![created()])
            .when(in_motors(WorkspaceCommand::RenameWorkspace {
                name: text("Kyiv Motors"),
            }))
            .then_expect_events(vec![WorkspaceEvent::WorkspaceRenamed {
                name: text("Kyiv Motors"),
                previous: text("Motors"),
            }]);
        WorkspaceTest::with(())
            .given(vec![created()])
            .when(in_motors(WorkspaceCommand::RenameWorkspace {
                name: text("Motors"),
            }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn settings_change_keeps_what_is_not_given() {
        WorkspaceTest::with(())
            .given(vec![created()])
            .when(in_motors(WorkspaceCommand::ChangeWorkspaceSettings {
                default_currency: Some(Currency::EUR),
                time_zone: None,
            }))
            .then_expect_events(vec![WorkspaceEvent::WorkspaceSettingsChanged {
                default_currency: Currency::EUR,
                time_zone: kyiv(),
            }]);
    }

    #[test]
    fn another_workspace_cannot_change_this_one_or_a_missing_one() {
        let other = WorkspaceId::for_slug(&slug("others"));
        WorkspaceTest::with(())
            .given(vec![created()])
            .when(by(
                admin(),
                other,
                WorkspaceCommand::RenameWorkspace { name: text("Mine") },
            ))
            .then_expect_error(WorkspaceError::NotFound);
        WorkspaceTest::with(())
            .given_no_previous_events()
            .when(in_motors(WorkspaceCommand::RenameWorkspace {
                name: text("Ghost"),
            }))
            .then_expect_error(WorkspaceError::NotFound);
    }

    #[test]
    fn secrets_are_set_sealed_and_only_set_secrets_can_be_cleared() {
        let name = SecretName::parse("name", "crm.api_key").unwrap();
        let sealed = SealedSecret("c2VhbGVk".into());
        assert_eq!(format!("{sealed:?}"), "SealedSecret(..)");
        WorkspaceTest::with(())
            .given(vec![created()])
            .when(in_motors(WorkspaceCommand::SetIntegrationSecret {
                name: name.clone(),
                sealed: sealed.clone(),
            }))
            .then_expect_events(vec![WorkspaceEvent::IntegrationSecretSet {
                name: name.clone(),
                sealed: sealed.clone(),
            }]);
        WorkspaceTest::with(())
            .given(vec![created()])
            .when(in_motors(WorkspaceCommand::ClearIntegrationSecret {
                name: name.clone(),
            }))
            .then_expect_error(WorkspaceError::NoSuchSecret("crm.api_key".into()));
        WorkspaceTest::with(())
            .given(vec![
                created(),
                WorkspaceEvent::IntegrationSecretSet {
                    name: name.clone(),
                    sealed,
                },
            ])
            .when(in_motors(WorkspaceCommand::ClearIntegrationSecret {
                name: name.clone(),
            }))
            .then_expect_events(vec![WorkspaceEvent::IntegrationSecretCleared { name }]);
    }
}
