//! The Bot API calls Cartie makes, over tgbot, with Telegram's answers sorted into what the
//! caller must do next: retry later, give up, or wait `retry_after` seconds.

use std::time::Duration;

use cartie_domain::bot::MenuCommand;
use cartie_domain::inbox::{AlbumItem, FileRef, MessageContent, MessageKind};
use tgbot::api::{Client, ExecuteError, Method, Payload, PayloadError};
use tgbot::types::{
    AnswerCallbackQuery, BotCommand, DeleteWebhook, GetBot, GetUpdates, InputFile, InputMediaAudio,
    InputMediaDocument, InputMediaPhoto, InputMediaVideo, MediaGroup, MediaGroupItem,
    ReplyParameters, SendAnimation, SendAudio, SendContact, SendDocument, SendLocation,
    SendMediaGroup, SendMessage, SendPhoto, SendSticker, SendVideo, SendVoice, SetBotCommands,
    SetWebhook,
};

use crate::inbound::ALLOWED_UPDATES;

/// Telegram's public Bot API server.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelegramError {
    /// The token is not (or no longer) a bot's token.
    #[error("Telegram rejected the bot token")]
    Unauthorized,
    /// Flood control: try again after this many seconds.
    #[error("Telegram asks to retry after {0} s")]
    RetryAfter(u64),
    /// Telegram refused the request for good (bad request, blocked by the user, chat not
    /// found…); repeating it would fail the same way.
    #[error("Telegram refused: {description}")]
    Refused { code: i64, description: String },
    /// The network or Telegram failed; the same request may succeed later.
    #[error("Telegram could not be reached: {0}")]
    Unavailable(String),
}

impl TelegramError {
    /// The buyer blocked the bot or deleted their account: the chat is closed to it.
    pub fn is_blocked(&self) -> bool {
        match self {
            TelegramError::Refused { code, description } => {
                *code == 403
                    && (description.contains("blocked")
                        || description.contains("deactivated")
                        || description.contains("kicked"))
            }
            _ => false,
        }
    }

    fn from_execute(error: ExecuteError) -> Self {
        match error {
            ExecuteError::Response(response) => {
                if let Some(seconds) = response.retry_after() {
                    return TelegramError::RetryAfter(seconds);
                }
                match response.error_code() {
                    // Telegram answers 404 Not Found to a token that names no bot.
                    Some(401) => TelegramError::Unauthorized,
                    Some(404) if response.description().contains("Not Found") => {
                        TelegramError::Unauthorized
                    }
                    Some(code) if (400..500).contains(&code) => TelegramError::Refused {
                        code,
                        description: response.description().to_string(),
                    },
                    _ => TelegramError::Unavailable(response.description().to_string()),
                }
            }
            // The URL holds the token: never let it into a message.
            ExecuteError::Http(http) => TelegramError::Unavailable(http.without_url().to_string()),
            ExecuteError::Payload(payload) => TelegramError::Refused {
                code: 400,
                description: payload.to_string(),
            },
        }
    }
}

/// Who a token belongs to (`getMe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    pub telegram_id: i64,
    pub username: String,
    pub name: String,
}

/// One bot's connection to the Bot API.
#[derive(Clone)]
pub struct BotApi {
    client: Client,
    /// The longest a call (but long polling, which adds its own wait) may take.
    timeout: Duration,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BotApi(..)")
    }
}

impl BotApi {
    /// A client for `token` on the Bot API server at `host` ([`TELEGRAM_API`], or a local
    /// Bot API server, or a fake one in tests). It never sleeps on flood control itself:
    /// `retry_after` comes back to the caller, who knows what else can go meanwhile.
    pub fn new(host: &str, token: &str, timeout: Duration) -> Result<Self, TelegramError> {
        let client = Client::new(token)
            .map_err(|e| TelegramError::Unavailable(e.to_string()))?
            .with_host(host.trim_end_matches('/'))
            .with_max_retries(0);
        Ok(Self { client, timeout })
    }

    async fn call<M>(&self, method: M) -> Result<M::Response, TelegramError>
    where
        M: Method,
        M::Response: serde::de::DeserializeOwned + Send + 'static,
    {
        self.call_within(self.timeout, method).await
    }

    /// tgbot's HTTP client has no timeout of its own.
    async fn call_within<M>(
        &self,
        timeout: Duration,
        method: M,
    ) -> Result<M::Response, TelegramError>
    where
        M: Method,
        M::Response: serde::de::DeserializeOwned + Send + 'static,
    {
        match tokio::time::timeout(timeout, self.client.execute(method)).await {
            Ok(result) => result.map_err(TelegramError::from_execute),
            Err(_) => Err(TelegramError::Unavailable(format!(
                "no answer within {} s",
                timeout.as_secs_f32()
            ))),
        }
    }

    pub async fn get_me(&self) -> Result<BotIdentity, TelegramError> {
        let bot = self.call(GetBot).await?;
        let name = match bot.last_name {
            Some(last) => format!("{} {last}", bot.first_name),
            None => bot.first_name,
        };
        Ok(BotIdentity {
            telegram_id: bot.id,
            username: bot.username,
            name,
        })
    }

    pub async fn set_webhook(&self, url: &str, secret_token: &str) -> Result<(), TelegramError> {
        self.call(
            SetWebhook::new(url)
                .with_secret_token(secret_token)
                .with_allowed_updates(ALLOWED_UPDATES),
        )
        .await
        .map(|_| ())
    }

    /// Stops webhook delivery so `getUpdates` works; pending updates stay queued.
    pub async fn delete_webhook(&self) -> Result<(), TelegramError> {
        self.call(DeleteWebhook::default().with_drop_pending_updates(false))
            .await
            .map(|_| ())
    }

    pub async fn set_commands(&self, commands: &[MenuCommand]) -> Result<(), TelegramError> {
        let commands = commands
            .iter()
            .map(|c| BotCommand::new(c.command.as_str(), c.description.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TelegramError::Refused {
                code: 400,
                description: e.to_string(),
            })?;
        self.call(SetBotCommands::new(commands)).await.map(|_| ())
    }

    /// Long polling: updates (as JSON) from `offset` on, waiting up to `timeout` for one to
    /// arrive.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        timeout: Duration,
        limit: i64,
    ) -> Result<Vec<serde_json::Value>, TelegramError> {
        let mut method = GetUpdates::new()
            .with_allowed_updates(ALLOWED_UPDATES)
            .with_limit(limit)
            .with_timeout(timeout);
        if let Some(offset) = offset {
            method = method.with_offset(offset);
        }
        self.call_within(self.timeout + timeout, RawUpdates(method))
            .await
    }

    pub async fn answer_callback(&self, callback_query_id: &str) -> Result<(), TelegramError> {
        self.call(AnswerCallbackQuery::new(callback_query_id))
            .await
            .map(|_| ())
    }

    /// Sends one message of the Inbox to a chat with the matching method; answers the
    /// Telegram message id (the first one of an album).
    pub async fn send(
        &self,
        chat_id: i64,
        content: &MessageContent,
        reply_to: Option<i64>,
    ) -> Result<i64, TelegramError> {
        let reply = reply_to.map(ReplyParameters::new);
        let caption = content.text.clone();
        let file = || -> Result<InputFile, TelegramError> {
            content
                .file
                .as_ref()
                .map(input_file)
                .ok_or_else(|| TelegramError::Refused {
                    code: 400,
                    description: format!("a {} message without a file", content.kind.as_str()),
                })
        };
        macro_rules! media {
            ($method:expr) => {{
                let mut method = $method;
                if let Some(caption) = caption.clone() {
                    method = method.with_caption(caption);
                }
                if let Some(reply) = reply.clone() {
                    method = method.with_reply_parameters(reply);
                }
                self.call(method).await.map(|m| m.id)
            }};
        }
        macro_rules! plain {
            ($method:expr) => {{
                let mut method = $method;
                if let Some(reply) = reply.clone() {
                    method = method.with_reply_parameters(reply);
                }
                self.call(method).await.map(|m| m.id)
            }};
        }
        match content.kind {
            MessageKind::Text | MessageKind::Callback => {
                plain!(SendMessage::new(chat_id, caption.unwrap_or_default()))
            }
            MessageKind::Photo => media!(SendPhoto::new(chat_id, file()?)),
            MessageKind::Video => media!(SendVideo::new(chat_id, file()?)),
            MessageKind::Voice => media!(SendVoice::new(chat_id, file()?)),
            MessageKind::Audio => media!(SendAudio::new(chat_id, file()?)),
            MessageKind::Document => media!(SendDocument::new(chat_id, file()?)),
            MessageKind::Animation => media!(SendAnimation::new(file()?, chat_id)),
            MessageKind::Sticker => plain!(SendSticker::new(chat_id, file()?)),
            MessageKind::Contact => {
                let contact = content.contact.as_ref().ok_or(TelegramError::Refused {
                    code: 400,
                    description: "a CONTACT message without a contact".into(),
                })?;
                plain!(SendContact::new(
                    chat_id,
                    contact.first_name.as_str(),
                    contact.phone_number.as_str()
                ))
            }
            MessageKind::Location => {
                let location = content.location.ok_or(TelegramError::Refused {
                    code: 400,
                    description: "a LOCATION message without a location".into(),
                })?;
                plain!(SendLocation::new(
                    chat_id,
                    location.latitude as f32,
                    location.longitude as f32
                ))
            }
            MessageKind::Album => {
                let group = album(&content.album, caption)?;
                let mut method = SendMediaGroup::new(chat_id, group);
                if let Some(reply) = reply {
                    method = method.with_reply_parameters(reply);
                }
                let messages = self.call(method).await?;
                messages
                    .first()
                    .map(|m| m.id)
                    .ok_or_else(|| TelegramError::Unavailable("an album sent as nothing".into()))
            }
        }
    }
}

/// `getUpdates` answering the updates as JSON, for [`crate::read_json`]: tgbot's own
/// types lose what tells a GIF from a document.
struct RawUpdates(GetUpdates);

impl Method for RawUpdates {
    type Response = Vec<serde_json::Value>;

    fn into_payload(self) -> Result<Payload, PayloadError> {
        self.0.into_payload()
    }
}

fn input_file(file: &FileRef) -> InputFile {
    match file {
        FileRef::TelegramFileId(id) => InputFile::file_id(id.as_str()),
        FileRef::Url(url) => InputFile::url(url.as_str()),
    }
}

fn album(items: &[AlbumItem], caption: Option<String>) -> Result<MediaGroup, TelegramError> {
    let mut group: Vec<MediaGroupItem> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        // Telegram shows the first item's caption as the album's.
        let caption = if i == 0 { caption.clone() } else { None };
        let file = input_file(&item.file);
        macro_rules! with_caption {
            ($media:expr) => {{
                let media = $media;
                match caption {
                    Some(c) => media.with_caption(c).into(),
                    None => media.into(),
                }
            }};
        }
        group.push(match item.kind {
            MessageKind::Photo => with_caption!(InputMediaPhoto::from(file)),
            MessageKind::Video => with_caption!(InputMediaVideo::from(file)),
            MessageKind::Document => with_caption!(InputMediaDocument::from(file)),
            MessageKind::Audio => with_caption!(InputMediaAudio::from(file)),
            other => {
                return Err(TelegramError::Refused {
                    code: 400,
                    description: format!("{} cannot be part of an album", other.as_str()),
                })
            }
        });
    }
    MediaGroup::new(group).map_err(|e| TelegramError::Refused {
        code: 400,
        description: e.to_string(),
    })
}
