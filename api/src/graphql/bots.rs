//! The workspace's Telegram bots: register one with its token (checked with `getMe`),
//! choose WEBHOOK or POLLING, set its command menu, rotate its token, disable it; list
//! them with what the adapters see (webhook set, last update, delivery backlog). Tokens
//! and webhook secrets are sealed before they reach the log and never come back out.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use cartie_domain::bot::{check_menu, DeliveryMode as DomainMode, MenuCommand, TelegramBotCommand};
use cartie_domain::workspace::SealedSecret;
use cartie_domain::{BotId, Command};
use cartie_projections::bots::{self, BotRow};
use cartie_store::LogPosition;
use cartie_telegram::{BotApi, BotIdentity, TelegramError};

use super::{caller, parse_id, services};
use crate::error::ApiError;
use crate::telegram::{token_secret_name, webhook_secret_name};

/// How a bot's updates reach Cartie.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "BotDeliveryMode", remote = "cartie_domain::bot::DeliveryMode")]
pub enum BotDeliveryMode {
    /// Telegram posts updates to this server (needs `CARTIE_PUBLIC_URL`).
    Webhook,
    /// A worker asks Telegram for updates.
    Polling,
}

#[derive(SimpleObject)]
pub struct BotMenuCommand {
    pub command: String,
    pub description: String,
}

/// A Telegram bot of the workspace.
pub struct BotNode(BotRow);

#[Object(name = "Bot")]
impl BotNode {
    async fn id(&self) -> ID {
        ID(self.0.bot_id.to_string())
    }

    /// The bot's Telegram user id.
    async fn telegram_id(&self) -> i64 {
        self.0.telegram_id
    }

    async fn username(&self) -> &str {
        &self.0.username
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn mode(&self) -> BotDeliveryMode {
        if self.0.mode == "WEBHOOK" {
            BotDeliveryMode::Webhook
        } else {
            BotDeliveryMode::Polling
        }
    }

    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Whether Telegram accepted the webhook for the current token and secret.
    async fn webhook_set(&self) -> bool {
        self.0.webhook_url.is_some()
    }

    async fn webhook_url(&self) -> Option<&str> {
        self.0.webhook_url.as_deref()
    }

    async fn webhook_set_at(&self) -> Option<DateTime<Utc>> {
        self.0.webhook_set_at
    }

    /// The command menu Telegram shows in chats with the bot.
    async fn commands(&self) -> Result<Vec<BotMenuCommand>, ApiError> {
        let commands: Vec<MenuCommand> = serde_json::from_str(&self.0.commands)
            .map_err(|e| ApiError::internal(format!("bot commands: {e}")))?;
        Ok(commands
            .into_iter()
            .map(|c| BotMenuCommand {
                command: c.command,
                description: c.description,
            })
            .collect())
    }

    async fn registered_at(&self) -> DateTime<Utc> {
        self.0.registered_at
    }

    /// When the last update from Telegram arrived (webhook or polling).
    async fn last_update_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_update_at
    }

    /// Messages queued for this bot and not yet delivered or failed.
    async fn delivery_backlog(&self) -> i64 {
        self.0.backlog
    }
}

#[derive(InputObject)]
pub struct BotMenuCommandInput {
    /// 1–32 lowercase letters, digits or underscores (a leading `/` is dropped).
    pub command: String,
    pub description: String,
}

#[derive(InputObject)]
pub struct RegisterBotInput {
    /// The token from @BotFather. Checked with Telegram, stored sealed, never shown again.
    pub token: String,
    pub mode: BotDeliveryMode,
    pub commands: Option<Vec<BotMenuCommandInput>>,
}

#[derive(InputObject)]
pub struct UpdateBotInput {
    pub bot_id: ID,
    pub mode: Option<BotDeliveryMode>,
    /// The new command menu (replaces the old one; an empty list clears it).
    pub commands: Option<Vec<BotMenuCommandInput>>,
}

#[derive(InputObject)]
pub struct RotateBotTokenInput {
    pub bot_id: ID,
    /// The new token from @BotFather for the same bot.
    pub token: String,
}

#[derive(Default)]
pub struct BotsQuery;

#[Object]
impl BotsQuery {
    /// The workspace's Telegram bots, by username.
    async fn bots(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BotNode>> {
        let workspace = caller(ctx)?.principal.workspace_id;
        let rows = bots::list(&services(ctx).db, workspace.0)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(BotNode).collect())
    }

    /// One bot of the workspace (NOT_FOUND for any other).
    async fn bot(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<BotNode> {
        Ok(bot_node(ctx, BotId(parse_id("id", &id)?)).await?)
    }
}

#[derive(Default)]
pub struct BotsMutation;

#[Object]
impl BotsMutation {
    /// Registers a bot: Telegram must accept the token (`getMe`). WEBHOOK bots get a fresh
    /// secret token and `setWebhook`; POLLING bots get `deleteWebhook`.
    async fn register_bot(
        &self,
        ctx: &Context<'_>,
        input: RegisterBotInput,
    ) -> async_graphql::Result<BotNode> {
        let services = services(ctx);
        let caller = caller(ctx)?;
        let commands = menu(input.commands)?;
        let mode: DomainMode = input.mode.into();
        // Refused before Telegram is asked anything.
        webhook_possible(ctx, mode)?;
        let token = SecretString::from(input.token.trim().to_string());
        let identity = check_token(ctx, &token).await?;
        let bot = BotId::for_telegram(identity.telegram_id);
        let webhook_secret = webhook_secret_for(ctx, bot, mode)?;
        let workspace = caller.principal.workspace_id;
        let sealed_token = services
            .secret_key
            .seal(workspace, &token_secret_name(bot), &token);
        let position = services
            .bots_bus
            .execute(
                &bot.to_string(),
                Command::new(
                    caller.command_context(),
                    TelegramBotCommand::RegisterBot {
                        telegram_id: identity.telegram_id,
                        username: identity.username,
                        name: identity.name,
                        token: sealed_token,
                        mode,
                        webhook_secret: webhook_secret.as_ref().map(|(_, sealed)| sealed.clone()),
                    },
                ),
            )
            .await
            .map_err(ApiError::from)?;
        wait(ctx, bot, position).await?;
        let api = bot_api(ctx, &token)?;
        let mut position = apply_mode(ctx, &api, bot, mode, webhook_secret.map(|(s, _)| s)).await?;
        if let Some(commands) = commands {
            position = set_menu(ctx, &api, bot, commands).await?.or(position);
        }
        wait(ctx, bot, position).await?;
        Ok(bot_node(ctx, bot).await?)
    }

    /// Changes a bot's delivery mode and/or its command menu. A new mode is recorded
    /// before Telegram is told (the webhook must know a new secret before Telegram posts
    /// with it); a failed `setWebhook` leaves `webhookSet` false and may be retried.
    async fn update_bot(
        &self,
        ctx: &Context<'_>,
        input: UpdateBotInput,
    ) -> async_graphql::Result<BotNode> {
        let bot = BotId(parse_id("botId", &input.bot_id)?);
        let commands = menu(input.commands)?;
        // Another workspace's bot is not found.
        bot_node(ctx, bot).await?;
        let api = opened_api(ctx, bot).await?;
        let mut position = None;
        if let Some(mode) = input.mode {
            let mode: DomainMode = mode.into();
            let secret = webhook_secret_for(ctx, bot, mode)?;
            let sealed = secret.as_ref().map(|(_, sealed)| sealed.clone());
            position = bot_command(
                ctx,
                bot,
                TelegramBotCommand::ChangeDeliveryMode {
                    mode,
                    webhook_secret: sealed,
                },
            )
            .await?;
            wait(ctx, bot, position).await?;
            position = apply_mode(ctx, &api, bot, mode, secret.map(|(s, _)| s))
                .await?
                .or(position);
        }
        if let Some(commands) = commands {
            position = set_menu(ctx, &api, bot, commands).await?.or(position);
        }
        wait(ctx, bot, position).await?;
        Ok(bot_node(ctx, bot).await?)
    }

    /// Replaces a bot's token (after revoking the old one with @BotFather). The new token
    /// must belong to the same bot; a WEBHOOK bot gets a new secret and `setWebhook`.
    async fn rotate_bot_token(
        &self,
        ctx: &Context<'_>,
        input: RotateBotTokenInput,
    ) -> async_graphql::Result<BotNode> {
        let services = services(ctx);
        let bot = BotId(parse_id("botId", &input.bot_id)?);
        let current = bot_node(ctx, bot).await?;
        let token = SecretString::from(input.token.trim().to_string());
        let identity = check_token(ctx, &token).await?;
        let mode = if current.0.mode == "WEBHOOK" {
            DomainMode::Webhook
        } else {
            DomainMode::Polling
        };
        let secret = webhook_secret_for(ctx, bot, mode)?;
        let workspace = caller(ctx)?.principal.workspace_id;
        let position = bot_command(
            ctx,
            bot,
            TelegramBotCommand::RotateToken {
                telegram_id: identity.telegram_id,
                token: services
                    .secret_key
                    .seal(workspace, &token_secret_name(bot), &token),
                webhook_secret: secret.as_ref().map(|(_, sealed)| sealed.clone()),
            },
        )
        .await?;
        wait(ctx, bot, position).await?;
        let api = bot_api(ctx, &token)?;
        let position = apply_mode(ctx, &api, bot, mode, secret.map(|(s, _)| s))
            .await?
            .or(position);
        wait(ctx, bot, position).await?;
        Ok(bot_node(ctx, bot).await?)
    }

    /// Stops the bot: its webhook answers 404, polling and delivery pause (queued messages
    /// wait until it is enabled again).
    async fn disable_bot(&self, ctx: &Context<'_>, bot_id: ID) -> async_graphql::Result<BotNode> {
        let bot = BotId(parse_id("botId", &bot_id)?);
        let position = bot_command(ctx, bot, TelegramBotCommand::DisableBot).await?;
        wait(ctx, bot, position).await?;
        Ok(bot_node(ctx, bot).await?)
    }

    async fn enable_bot(&self, ctx: &Context<'_>, bot_id: ID) -> async_graphql::Result<BotNode> {
        let bot = BotId(parse_id("botId", &bot_id)?);
        let position = bot_command(ctx, bot, TelegramBotCommand::EnableBot).await?;
        wait(ctx, bot, position).await?;
        Ok(bot_node(ctx, bot).await?)
    }
}

/// The menu, checked whole before Telegram is asked to show it.
fn menu(commands: Option<Vec<BotMenuCommandInput>>) -> Result<Option<Vec<MenuCommand>>, ApiError> {
    commands
        .map(|commands| {
            let menu = commands
                .iter()
                .map(|c| MenuCommand::parse(&c.command, &c.description))
                .collect::<Result<Vec<_>, _>>()?;
            check_menu(&menu)?;
            Ok(menu)
        })
        .transpose()
}

/// Telegram's tokens look like `123456789:AA…` (the bot's id, a colon, 35 characters).
fn token_shape(token: &SecretString) -> Result<(), ApiError> {
    let token = token.expose_secret();
    let ok = token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.chars().all(|c| c.is_ascii_digit())
            && (30..=100).contains(&secret.len())
            && secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "token",
            "is not a bot token (expected the form 123456789:AA… from @BotFather)",
        ))
    }
}

fn bot_api(ctx: &Context<'_>, token: &SecretString) -> Result<BotApi, ApiError> {
    let settings = &services(ctx).telegram;
    BotApi::new(
        &settings.api_url,
        token.expose_secret(),
        settings.call_timeout,
    )
    .map_err(telegram_error)
}

fn telegram_error(error: TelegramError) -> ApiError {
    match error {
        TelegramError::Unauthorized => {
            ApiError::validation("token", "Telegram rejected this token")
        }
        TelegramError::Refused { description, .. } => {
            ApiError::Conflict(format!("Telegram refused: {description}"))
        }
        TelegramError::RetryAfter(seconds) => ApiError::RateLimited {
            retry_after_secs: seconds,
        },
        TelegramError::Unavailable(reason) => {
            ApiError::Unavailable(format!("Telegram could not be reached: {reason}"))
        }
    }
}

async fn check_token(ctx: &Context<'_>, token: &SecretString) -> Result<BotIdentity, ApiError> {
    token_shape(token)?;
    let identity = bot_api(ctx, token)?
        .get_me()
        .await
        .map_err(telegram_error)?;
    // The token's first part is the bot's id; Telegram must agree.
    let claimed = token.expose_secret().split(':').next().unwrap_or_default();
    if claimed != identity.telegram_id.to_string() {
        return Err(ApiError::validation(
            "token",
            "Telegram answered for another bot than the token names",
        ));
    }
    Ok(identity)
}

/// Refuses WEBHOOK on a server that does not know its public URL.
fn webhook_possible(ctx: &Context<'_>, mode: DomainMode) -> Result<(), ApiError> {
    if mode == DomainMode::Webhook && services(ctx).telegram.public_url.is_none() {
        return Err(ApiError::validation(
            "mode",
            "WEBHOOK needs the server's public URL (CARTIE_PUBLIC_URL); use POLLING",
        ));
    }
    Ok(())
}

/// A new webhook secret (plain for Telegram, sealed for the log) when the mode needs one.
fn webhook_secret_for(
    ctx: &Context<'_>,
    bot: BotId,
    mode: DomainMode,
) -> Result<Option<(SecretString, SealedSecret)>, ApiError> {
    let services = services(ctx);
    if mode != DomainMode::Webhook {
        return Ok(None);
    }
    webhook_possible(ctx, mode)?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = SecretString::from(hex::encode(bytes));
    let workspace = caller(ctx)?.principal.workspace_id;
    let sealed = services
        .secret_key
        .seal(workspace, &webhook_secret_name(bot), &secret);
    Ok(Some((secret, sealed)))
}

/// Tells Telegram how updates are to flow, and records a webhook Telegram accepted.
async fn apply_mode(
    ctx: &Context<'_>,
    api: &BotApi,
    bot: BotId,
    mode: DomainMode,
    secret: Option<SecretString>,
) -> Result<Option<LogPosition>, ApiError> {
    match (mode, secret) {
        (DomainMode::Webhook, Some(secret)) => {
            let url = services(ctx)
                .telegram
                .webhook_url(bot)
                .ok_or_else(|| ApiError::validation("mode", "no public URL is configured"))?;
            api.set_webhook(&url, secret.expose_secret())
                .await
                .map_err(telegram_error)?;
            bot_command(ctx, bot, TelegramBotCommand::RecordWebhookSet { url }).await
        }
        _ => {
            api.delete_webhook().await.map_err(telegram_error)?;
            Ok(None)
        }
    }
}

async fn set_menu(
    ctx: &Context<'_>,
    api: &BotApi,
    bot: BotId,
    commands: Vec<MenuCommand>,
) -> Result<Option<LogPosition>, ApiError> {
    api.set_commands(&commands).await.map_err(telegram_error)?;
    bot_command(ctx, bot, TelegramBotCommand::SetMenu { commands }).await
}

async fn bot_command(
    ctx: &Context<'_>,
    bot: BotId,
    body: TelegramBotCommand,
) -> Result<Option<LogPosition>, ApiError> {
    let caller = caller(ctx)?;
    Ok(services(ctx)
        .bots_bus
        .execute(
            &bot.to_string(),
            Command::new(caller.command_context(), body),
        )
        .await?)
}

/// The Bot API client of a registered bot of the caller's workspace.
async fn opened_api(ctx: &Context<'_>, bot: BotId) -> Result<BotApi, ApiError> {
    let services = services(ctx);
    let workspace = caller(ctx)?.principal.workspace_id;
    let credentials = bots::credentials(&services.db, bot.0)
        .await?
        .filter(|c| c.workspace_id == workspace.0)
        .ok_or(ApiError::NotFound("bot"))?;
    services
        .open_bot(&credentials)
        .map(|opened| opened.api)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Waits until the bots list shows the change; the webhook then reads the bot afresh.
async fn wait(
    ctx: &Context<'_>,
    bot: BotId,
    position: Option<LogPosition>,
) -> Result<(), ApiError> {
    let shown = crate::app::shown(&services(ctx).bots, position, "bots list").await;
    services(ctx).webhook_bots.forget(&bot.0);
    shown
}

async fn bot_node(ctx: &Context<'_>, bot: BotId) -> Result<BotNode, ApiError> {
    let workspace = caller(ctx)?.principal.workspace_id;
    bots::get(&services(ctx).db, workspace.0, bot.0)
        .await?
        .map(BotNode)
        .ok_or(ApiError::NotFound("bot"))
}
