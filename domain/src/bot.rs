//! A dealer's Telegram bot as Cartie knows it: who it is on Telegram, how updates reach us
//! (webhook or long polling), its command menu, and its token — sealed, never in clear.
//!
//! The id is derived from the bot's Telegram id, so one bot belongs to one workspace: a
//! Telegram bot has one webhook and one update queue, and two workspaces reading it would
//! steal each other's messages.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::Command;
use crate::ids::{BotId, WorkspaceId, CARTIE_NAMESPACE};
use crate::values::FieldError;
use crate::workspace::SealedSecret;

impl BotId {
    /// The bot with this Telegram user id (the number before the colon of its token).
    pub fn for_telegram(telegram_id: i64) -> Self {
        Self(Uuid::new_v5(
            &CARTIE_NAMESPACE,
            format!("telegram-bot:{telegram_id}").as_bytes(),
        ))
    }
}

/// How a bot's updates reach Cartie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryMode {
    /// Telegram posts each update to `/telegram/{bot_id}/webhook` with the secret token.
    Webhook,
    /// A worker asks Telegram for updates (`getUpdates`).
    Polling,
}

impl DeliveryMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryMode::Webhook => "WEBHOOK",
            DeliveryMode::Polling => "POLLING",
        }
    }
}

/// One entry of the bot's command menu (`setMyCommands`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuCommand {
    pub command: String,
    pub description: String,
}

/// Telegram allows at most 100 commands in a menu.
pub const MAX_MENU_COMMANDS: usize = 100;

impl MenuCommand {
    /// Telegram's rules: 1–32 of lowercase letters, digits and underscores (a leading `/`
    /// is dropped); a description of 1–256 characters.
    pub fn parse(command: &str, description: &str) -> Result<Self, FieldError> {
        let command = command.trim().trim_start_matches('/');
        if command.is_empty()
            || command.len() > 32
            || !command
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(FieldError::new(
                "commands.command",
                format!("{command:?} must be 1 to 32 of lowercase letters, digits and underscores"),
            ));
        }
        let description = description.trim();
        let chars = description.chars().count();
        if chars == 0 || chars > 256 {
            return Err(FieldError::new(
                "commands.description",
                format!("the description of /{command} must be 1 to 256 characters"),
            ));
        }
        Ok(Self {
            command: command.to_string(),
            description: description.to_string(),
        })
    }
}

/// Telegram's rules for a whole menu: at most [`MAX_MENU_COMMANDS`], each command once.
pub fn check_menu(commands: &[MenuCommand]) -> Result<(), FieldError> {
    if commands.len() > MAX_MENU_COMMANDS {
        return Err(FieldError::new(
            "commands",
            format!("at most {MAX_MENU_COMMANDS} commands"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in commands {
        if !seen.insert(c.command.as_str()) {
            return Err(FieldError::new(
                "commands.command",
                format!("/{} appears twice", c.command),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub enum TelegramBotCommand {
    /// Registers a bot whose token Telegram accepted (`getMe` answered with these details).
    RegisterBot {
        telegram_id: i64,
        username: String,
        name: String,
        token: SealedSecret,
        mode: DeliveryMode,
        /// Required for WEBHOOK: what Telegram must send in
        /// `X-Telegram-Bot-Api-Secret-Token`.
        webhook_secret: Option<SealedSecret>,
    },
    ChangeDeliveryMode {
        mode: DeliveryMode,
        webhook_secret: Option<SealedSecret>,
    },
    /// Telegram accepted `setWebhook` for this URL.
    RecordWebhookSet {
        url: String,
    },
    DisableBot,
    EnableBot,
    SetMenu {
        commands: Vec<MenuCommand>,
    },
    /// A new token for the same bot (the old one was revoked with @BotFather).
    RotateToken {
        telegram_id: i64,
        token: SealedSecret,
        webhook_secret: Option<SealedSecret>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TelegramBotEvent {
    BotRegistered {
        workspace_id: WorkspaceId,
        telegram_id: i64,
        username: String,
        name: String,
        token: SealedSecret,
        mode: DeliveryMode,
        webhook_secret: Option<SealedSecret>,
    },
    BotDeliveryModeChanged {
        mode: DeliveryMode,
        webhook_secret: Option<SealedSecret>,
    },
    BotWebhookSet {
        url: String,
        at: DateTime<Utc>,
    },
    BotDisabled,
    BotEnabled,
    BotMenuSet {
        commands: Vec<MenuCommand>,
    },
    BotTokenRotated {
        token: SealedSecret,
        webhook_secret: Option<SealedSecret>,
    },
}

impl DomainEvent for TelegramBotEvent {
    fn event_type(&self) -> String {
        match self {
            TelegramBotEvent::BotRegistered { .. } => "BotRegistered",
            TelegramBotEvent::BotDeliveryModeChanged { .. } => "BotDeliveryModeChanged",
            TelegramBotEvent::BotWebhookSet { .. } => "BotWebhookSet",
            TelegramBotEvent::BotDisabled => "BotDisabled",
            TelegramBotEvent::BotEnabled => "BotEnabled",
            TelegramBotEvent::BotMenuSet { .. } => "BotMenuSet",
            TelegramBotEvent::BotTokenRotated { .. } => "BotTokenRotated",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelegramBotError {
    /// No such bot, or another workspace's (indistinguishable).
    #[error("bot not found")]
    NotFound,
    #[error("this bot is already registered; rotate its token to replace it")]
    AlreadyRegistered,
    #[error("this bot is registered by another workspace")]
    RegisteredElsewhere,
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Registration {
    workspace_id: WorkspaceId,
    telegram_id: i64,
    mode: DeliveryMode,
    enabled: bool,
    commands: Vec<MenuCommand>,
    webhook_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TelegramBot {
    registration: Option<Registration>,
}

fn webhook_secret_for(mode: DeliveryMode, secret: &Option<SealedSecret>) -> Result<(), FieldError> {
    if mode == DeliveryMode::Webhook && secret.is_none() {
        return Err(FieldError::new(
            "mode",
            "a WEBHOOK bot needs a secret token for Telegram to send",
        ));
    }
    Ok(())
}

impl TelegramBot {
    pub fn decide(
        &self,
        command: Command<TelegramBotCommand>,
    ) -> Result<Vec<TelegramBotEvent>, TelegramBotError> {
        use TelegramBotCommand as C;
        use TelegramBotEvent as E;
        let workspace_id = command.context.workspace_id;
        if let C::RegisterBot {
            telegram_id,
            username,
            name,
            token,
            mode,
            webhook_secret,
        } = command.body
        {
            return match &self.registration {
                Some(r) if r.workspace_id == workspace_id => {
                    Err(TelegramBotError::AlreadyRegistered)
                }
                Some(_) => Err(TelegramBotError::RegisteredElsewhere),
                None => {
                    webhook_secret_for(mode, &webhook_secret)?;
                    Ok(vec![E::BotRegistered {
                        workspace_id,
                        telegram_id,
                        username,
                        name,
                        token,
                        mode,
                        webhook_secret,
                    }])
                }
            };
        }
        let Some(registration) = &self.registration else {
            return Err(TelegramBotError::NotFound);
        };
        if registration.workspace_id != workspace_id {
            return Err(TelegramBotError::NotFound);
        }
        let events = match command.body {
            C::RegisterBot { .. } => unreachable!("handled above"),
            C::ChangeDeliveryMode {
                mode,
                webhook_secret,
            } => {
                webhook_secret_for(mode, &webhook_secret)?;
                vec![E::BotDeliveryModeChanged {
                    mode,
                    webhook_secret,
                }]
            }
            C::RecordWebhookSet { url } => {
                if registration.mode != DeliveryMode::Webhook {
                    return Err(FieldError::new("mode", "the bot is not in WEBHOOK mode").into());
                }
                if registration.webhook_url.as_deref() == Some(url.as_str()) {
                    vec![]
                } else {
                    vec![E::BotWebhookSet {
                        url,
                        at: command.context.now,
                    }]
                }
            }
            C::DisableBot => {
                if registration.enabled {
                    vec![E::BotDisabled]
                } else {
                    vec![]
                }
            }
            C::EnableBot => {
                if registration.enabled {
                    vec![]
                } else {
                    vec![E::BotEnabled]
                }
            }
            C::SetMenu { commands } => {
                check_menu(&commands)?;
                if commands == registration.commands {
                    vec![]
                } else {
                    vec![E::BotMenuSet { commands }]
                }
            }
            C::RotateToken {
                telegram_id,
                token,
                webhook_secret,
            } => {
                if telegram_id != registration.telegram_id {
                    return Err(FieldError::new(
                        "token",
                        "belongs to another bot than the one registered",
                    )
                    .into());
                }
                webhook_secret_for(registration.mode, &webhook_secret)?;
                vec![E::BotTokenRotated {
                    token,
                    webhook_secret,
                }]
            }
        };
        Ok(events)
    }

    fn evolve(&mut self, event: TelegramBotEvent) {
        use TelegramBotEvent as E;
        if let E::BotRegistered {
            workspace_id,
            telegram_id,
            mode,
            ..
        } = event
        {
            self.registration = Some(Registration {
                workspace_id,
                telegram_id,
                mode,
                enabled: true,
                commands: vec![],
                webhook_url: None,
            });
            return;
        }
        let Some(r) = &mut self.registration else {
            return;
        };
        match event {
            E::BotRegistered { .. } => {}
            E::BotDeliveryModeChanged { mode, .. } => {
                r.mode = mode;
                r.webhook_url = None;
            }
            E::BotWebhookSet { url, .. } => r.webhook_url = Some(url),
            E::BotDisabled => r.enabled = false,
            E::BotEnabled => r.enabled = true,
            E::BotMenuSet { commands } => r.commands = commands,
            // A new secret means Telegram must be told again.
            E::BotTokenRotated { .. } => r.webhook_url = None,
        }
    }
}

crate::decided_aggregate!(
    TelegramBot,
    "TelegramBot",
    TelegramBotCommand,
    TelegramBotEvent,
    TelegramBotError
);

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::context::{Actor, CommandContext};
    use crate::ids::UserId;

    type BotTest = TestFramework<TelegramBot>;

    fn ws(n: u128) -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(n))
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn in_ws(workspace: WorkspaceId, body: TelegramBotCommand) -> Command<TelegramBotCommand> {
        Command::new(
            CommandContext::new(workspace, Actor::User(UserId(Uuid::from_u128(1))), at()),
            body,
        )
    }

    fn sealed(s: &str) -> SealedSecret {
        SealedSecret(format!("sealed:{s}"))
    }

    fn register(mode: DeliveryMode) -> TelegramBotCommand {
        TelegramBotCommand::RegisterBot {
            telegram_id: 7_000_001,
            username: "autohaus_bot".into(),
            name: "Autohaus".into(),
            token: sealed("token"),
            mode,
            webhook_secret: (mode == DeliveryMode::Webhook).then(|| sealed("hook")),
        }
    }

    fn registered(mode: DeliveryMode) -> TelegramBotEvent {
        TelegramBotEvent::BotRegistered {
            workspace_id: ws(1),
            telegram_id: 7_000_001,
            username: "autohaus_bot".into(),
            name: "Autohaus".into(),
            token: sealed("token"),
            mode,
            webhook_secret: (mode == DeliveryMode::Webhook).then(|| sealed("hook")),
        }
    }

    #[test]
    fn bot_ids_follow_the_telegram_id() {
        assert_eq!(BotId::for_telegram(42), BotId::for_telegram(42));
        assert_ne!(BotId::for_telegram(42), BotId::for_telegram(43));
    }

    #[test]
    fn registers_once_per_platform() {
        BotTest::with(())
            .given_no_previous_events()
            .when(in_ws(ws(1), register(DeliveryMode::Webhook)))
            .then_expect_events(vec![registered(DeliveryMode::Webhook)]);
        BotTest::with(())
            .given(vec![registered(DeliveryMode::Polling)])
            .when(in_ws(ws(1), register(DeliveryMode::Polling)))
            .then_expect_error(TelegramBotError::AlreadyRegistered);
        BotTest::with(())
            .given(vec![registered(DeliveryMode::Polling)])
            .when(in_ws(ws(2), register(DeliveryMode::Polling)))
            .then_expect_error(TelegramBotError::RegisteredElsewhere);
    }

    #[test]
    fn a_webhook_bot_needs_a_secret() {
        let mut command = register(DeliveryMode::Webhook);
        if let TelegramBotCommand::RegisterBot { webhook_secret, .. } = &mut command {
            *webhook_secret = None;
        }
        let error = BotTest::with(())
            .given_no_previous_events()
            .when(in_ws(ws(1), command))
            .inspect_result()
            .unwrap_err();
        assert!(matches!(error, TelegramBotError::Invalid(e) if e.field == "mode"));
        let error = BotTest::with(())
            .given(vec![registered(DeliveryMode::Polling)])
            .when(in_ws(
                ws(1),
                TelegramBotCommand::ChangeDeliveryMode {
                    mode: DeliveryMode::Webhook,
                    webhook_secret: None,
                },
            ))
            .inspect_result()
            .unwrap_err();
        assert!(matches!(error, TelegramBotError::Invalid(e) if e.field == "mode"));
    }

    #[test]
    fn other_workspaces_find_nothing() {
        for command in [
            TelegramBotCommand::DisableBot,
            TelegramBotCommand::EnableBot,
            TelegramBotCommand::SetMenu { commands: vec![] },
            TelegramBotCommand::RecordWebhookSet {
                url: "https://x.example/telegram".into(),
            },
        ] {
            BotTest::with(())
                .given(vec![registered(DeliveryMode::Webhook)])
                .when(in_ws(ws(2), command.clone()))
                .then_expect_error(TelegramBotError::NotFound);
            BotTest::with(())
                .given_no_previous_events()
                .when(in_ws(ws(1), command))
                .then_expect_error(TelegramBotError::NotFound);
        }
    }

    #[test]
    fn disable_enable_and_webhook_records_are_idempotent() {
        BotTest::with(())
            .given(vec![registered(DeliveryMode::Webhook)])
            .when(in_ws(ws(1), TelegramBotCommand::EnableBot))
            .then_expect_events(vec![]);
        BotTest::with(())
            .given(vec![registered(DeliveryMode::Webhook)])
            .when(in_ws(ws(1), TelegramBotCommand::DisableBot))
            .then_expect_events(vec![TelegramBotEvent::BotDisabled]);
        BotTest::with(())
            .given(vec![
                registered(DeliveryMode::Webhook),
                TelegramBotEvent::BotDisabled,
            ])
            .when(in_ws(ws(1), TelegramBotCommand::EnableBot))
            .then_expect_events(vec![TelegramBotEvent::BotEnabled]);
        let url = "https://cartie.example/telegram/x/webhook".to_string();
        BotTest::with(())
            .given(vec![
                registered(DeliveryMode::Webhook),
                TelegramBotEvent::BotWebhookSet {
                    url: url.clone(),
                    at: at(),
                },
            ])
            .when(in_ws(ws(1), TelegramBotCommand::RecordWebhookSet { url }))
            .then_expect_events(vec![]);
        let error = BotTest::with(())
            .given(vec![registered(DeliveryMode::Polling)])
            .when(in_ws(
                ws(1),
                TelegramBotCommand::RecordWebhookSet {
                    url: "https://x.example".into(),
                },
            ))
            .inspect_result()
            .unwrap_err();
        assert!(matches!(error, TelegramBotError::Invalid(_)));
    }

    #[test]
    fn menus_follow_telegram_rules() {
        assert_eq!(
            MenuCommand::parse("/Start", "x").unwrap_err().field,
            "commands.command"
        );
        assert!(MenuCommand::parse("/start", "").is_err());
        let start = MenuCommand::parse("/start", "Begin").unwrap();
        assert_eq!(start.command, "start");
        BotTest::with(())
            .given(vec![registered(DeliveryMode::Polling)])
            .when(in_ws(
                ws(1),
                TelegramBotCommand::SetMenu {
                    commands: vec![start.clone()],
                },
            ))
            .then_expect_events(vec![TelegramBotEvent::BotMenuSet {
                commands: vec![start.clone()],
            }]);
        let error = BotTest::with(())
            .given(vec![registered(DeliveryMode::Polling)])
            .when(in_ws(
                ws(1),
                TelegramBotCommand::SetMenu {
                    commands: vec![start.clone(), start],
                },
            ))
            .inspect_result()
            .unwrap_err();
        assert!(matches!(error, TelegramBotError::Invalid(e) if e.message.contains("twice")));
    }

    #[test]
    fn a_rotated_token_must_belong_to_the_same_bot() {
        BotTest::with(())
            .given(vec![registered(DeliveryMode::Polling)])
            .when(in_ws(
                ws(1),
                TelegramBotCommand::RotateToken {
                    telegram_id: 7_000_001,
                    token: sealed("new"),
                    webhook_secret: None,
                },
            ))
            .then_expect_events(vec![TelegramBotEvent::BotTokenRotated {
                token: sealed("new"),
                webhook_secret: None,
            }]);
        let error = BotTest::with(())
            .given(vec![registered(DeliveryMode::Polling)])
            .when(in_ws(
                ws(1),
                TelegramBotCommand::RotateToken {
                    telegram_id: 9,
                    token: sealed("new"),
                    webhook_secret: None,
                },
            ))
            .inspect_result()
            .unwrap_err();
        assert!(matches!(error, TelegramBotError::Invalid(e) if e.field == "token"));
    }
}
