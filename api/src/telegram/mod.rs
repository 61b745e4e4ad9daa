//! Telegram bots at work: webhooks and long polling turn updates into Inbox commands; the
//! delivery reactor sends what operators queue. The Bot API itself is `cartie-telegram`.

pub mod delivery;
pub mod ingest;
pub mod polling;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cartie_domain::workspace::{SealedSecret, SecretName};
use cartie_domain::{BotId, WorkspaceId};
use cartie_projections::bots::{self, BotCredentials};
use cartie_store::Database;
use cartie_telegram::{BotApi, TelegramError, TELEGRAM_API};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

use crate::app::Services;
use crate::secrets::SecretKey;

/// How Cartie reaches Telegram and paces its bots.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    /// The Bot API server (Telegram's, a local Bot API server, or a fake in tests).
    pub api_url: String,
    /// This server's public base URL; webhooks point at `{public_url}/telegram/{id}/webhook`.
    pub public_url: Option<String>,
    /// The longest one Bot API call may take.
    pub call_timeout: Duration,
    /// How long one `getUpdates` waits for updates.
    pub poll_timeout: Duration,
    /// Messages per second one bot sends at most (Telegram: about 30).
    pub bot_messages_per_second: u32,
    /// The least time between two messages to one chat (Telegram: about 1 s).
    pub chat_interval: Duration,
}

impl Default for TelegramSettings {
    fn default() -> Self {
        Self {
            api_url: TELEGRAM_API.to_string(),
            public_url: None,
            call_timeout: Duration::from_secs(15),
            poll_timeout: Duration::from_secs(25),
            bot_messages_per_second: 30,
            chat_interval: Duration::from_secs(1),
        }
    }
}

impl TelegramSettings {
    pub fn webhook_url(&self, bot: BotId) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|base| format!("{}/telegram/{bot}/webhook", base.trim_end_matches('/')))
    }
}

/// Names under which a bot's secrets are sealed (the name is bound into the ciphertext).
pub fn token_secret_name(bot: BotId) -> SecretName {
    SecretName::parse("token", &format!("telegram-bot:{bot}:token"))
        .expect("the name of a bot token is well formed")
}

pub fn webhook_secret_name(bot: BotId) -> SecretName {
    SecretName::parse("webhook", &format!("telegram-bot:{bot}:webhook"))
        .expect("the name of a webhook secret is well formed")
}

/// A bot ready to act: its Bot API client and its webhook secret, opened once per version
/// of the bot's registration.
#[derive(Clone)]
pub struct OpenedBot {
    pub version: i64,
    pub api: BotApi,
    pub webhook_secret: Option<SecretString>,
}

/// Opened bots, by bot id. Opening costs an AEAD decryption and an HTTP client; a bot's
/// new version (token rotated, mode changed) replaces its entry.
#[derive(Default)]
pub struct BotClients {
    opened: Mutex<HashMap<uuid::Uuid, OpenedBot>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenBotError {
    #[error("the bot's sealed secrets cannot be opened with this secret key")]
    Sealed,
    #[error(transparent)]
    Telegram(#[from] TelegramError),
}

impl BotClients {
    pub fn open(
        &self,
        key: &SecretKey,
        settings: &TelegramSettings,
        bot: &BotCredentials,
    ) -> Result<OpenedBot, OpenBotError> {
        if let Some(opened) = self.opened.lock().expect("not poisoned").get(&bot.bot_id) {
            if opened.version == bot.version {
                return Ok(opened.clone());
            }
        }
        let id = BotId(bot.bot_id);
        let workspace = WorkspaceId(bot.workspace_id);
        let token = key
            .open(
                workspace,
                &token_secret_name(id),
                &SealedSecret(bot.token_sealed.clone()),
            )
            .map_err(|_| OpenBotError::Sealed)?;
        let webhook_secret = bot
            .webhook_secret_sealed
            .as_ref()
            .map(|sealed| {
                key.open(
                    workspace,
                    &webhook_secret_name(id),
                    &SealedSecret(sealed.clone()),
                )
            })
            .transpose()
            .map_err(|_| OpenBotError::Sealed)?;
        let api = BotApi::new(
            &settings.api_url,
            token.expose_secret(),
            settings.call_timeout,
        )?;
        let opened = OpenedBot {
            version: bot.version,
            api,
            webhook_secret,
        };
        self.opened
            .lock()
            .expect("not poisoned")
            .insert(bot.bot_id, opened.clone());
        Ok(opened)
    }
}

/// How often the last update of each bot is written down.
const MARKS_EVERY: Duration = Duration::from_secs(1);

/// The last update each bot received, noted in memory as updates are handled and written
/// to `telegram_bot_updates` by [`UpdateMarks::flush`]. Writing it per update would make
/// every webhook request of a bot wait on that bot's one row; only long polling resumes
/// from it, and it flushes after every batch it handled.
#[derive(Default)]
pub struct UpdateMarks {
    noted: Mutex<HashMap<uuid::Uuid, (i64, DateTime<Utc>)>>,
}

impl UpdateMarks {
    pub fn note(&self, bot: uuid::Uuid, update_id: i64, at: DateTime<Utc>) {
        let mut noted = self.noted.lock().expect("not poisoned");
        let mark = noted.entry(bot).or_insert((update_id, at));
        *mark = (mark.0.max(update_id), mark.1.max(at));
    }

    /// Writes what was noted; what could not be written is kept for the next flush.
    pub async fn flush(&self, db: &Database) -> Result<(), sqlx::Error> {
        let marks: Vec<_> = std::mem::take(&mut *self.noted.lock().expect("not poisoned"))
            .into_iter()
            .collect();
        for (i, (bot, (update_id, at))) in marks.iter().enumerate() {
            if let Err(error) = bots::record_update(db, *bot, *update_id, *at).await {
                for (bot, (update_id, at)) in &marks[i..] {
                    self.note(*bot, *update_id, *at);
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// Flushes every [`MARKS_EVERY`] until `stop`, and once more then.
    pub async fn run(services: Arc<Services>, mut stop: watch::Receiver<bool>) {
        loop {
            let stopping = tokio::select! {
                _ = stop.changed() => true,
                _ = tokio::time::sleep(MARKS_EVERY) => false,
            };
            if let Err(error) = services.update_marks.flush(&services.db).await {
                tracing::warn!(%error, "cannot write the bots' last updates");
            }
            if stopping {
                break;
            }
        }
    }
}
