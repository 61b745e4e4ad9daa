//! One Telegram update into the Inbox, the same way for webhooks and long polling.

use cartie_domain::inbox::{ConversationCommand, ConversationError};
use cartie_domain::{Actor, BotId, Command, CommandContext, ConversationId, WorkspaceId};
use cartie_projections::bots::BotCredentials;
use cartie_store::{CommandError, LogPosition};
use cartie_telegram::Inbound;
use chrono::Utc;

use crate::app::Services;

/// Storage failed: the update must be offered again (the webhook answers 500 so Telegram
/// retries; polling does not move its offset past it).
#[derive(Debug, thiserror::Error)]
#[error("the update could not be recorded: {0}")]
pub struct IngestError(String);

/// What became of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Recorded (or recognised as a repeat) at this log position.
    Recorded(Option<LogPosition>),
    /// Nothing for the Inbox, and why.
    Ignored(String),
}

/// Records one update of `bot`. Repeats of an update change nothing: the conversation
/// remembers the update ids it has seen.
pub async fn ingest(
    services: &Services,
    bot: &BotCredentials,
    inbound: Inbound,
) -> Result<Ingested, IngestError> {
    let bot_id = BotId(bot.bot_id);
    let workspace = WorkspaceId(bot.workspace_id);
    let update_id = inbound.update_id();
    let chat_id = inbound.chat_id();
    let mut callback = None;
    let receive = |m: cartie_telegram::InboundMessage| ConversationCommand::ReceiveInboundMessage {
        bot_id,
        chat_id: m.chat_id,
        contact: m.contact,
        update_id: m.update_id,
        telegram_message_id: m.telegram_message_id,
        content: m.content,
        sent_at: m.at,
    };
    let command = match inbound {
        Inbound::Message(m) => receive(m),
        Inbound::ButtonPressed {
            callback_query_id,
            message: m,
        } => {
            callback = Some(callback_query_id);
            receive(m)
        }
        Inbound::Edited(m) => ConversationCommand::EditInboundMessage {
            update_id: m.update_id,
            telegram_message_id: m.telegram_message_id,
            content: m.content,
            edited_at: m.at,
        },
        Inbound::Blocked { update_id, .. } => ConversationCommand::RecordBotBlocked {
            update_id: Some(update_id),
        },
        Inbound::Unblocked { update_id, .. } => {
            ConversationCommand::RecordBotUnblocked { update_id }
        }
        Inbound::Ignored { update_id, reason } => {
            tracing::info!(bot = %bot_id, update_id, %reason, "update ignored");
            record(services, bot, update_id);
            return Ok(Ingested::Ignored(reason));
        }
    };
    let chat_id = chat_id.expect("every update kept by the Inbox has a chat");
    let conversation = ConversationId::for_chat(workspace, bot_id, chat_id);
    let mut context = CommandContext::new(workspace, Actor::Bot(bot.bot_id), Utc::now());
    context.idempotency_key = Some(format!("telegram-update:{bot_id}:{update_id}"));
    let outcome = match services
        .conversations
        .execute(&conversation.to_string(), Command::new(context, command))
        .await
    {
        Ok(position) => Ingested::Recorded(position),
        // An edit or a block in a chat the Inbox never saw a message of.
        Err(CommandError::Rejected(ConversationError::NotFound)) => {
            Ingested::Ignored("no conversation with this chat yet".into())
        }
        Err(CommandError::Rejected(error)) => {
            tracing::warn!(bot = %bot_id, update_id, %error, "update refused");
            Ingested::Ignored(error.to_string())
        }
        Err(error) => return Err(IngestError(error.to_string())),
    };
    if let Some(callback_query_id) = callback {
        answer_callback(services, bot, callback_query_id);
    }
    record(services, bot, update_id);
    Ok(outcome)
}

fn record(services: &Services, bot: &BotCredentials, update_id: i64) {
    services
        .update_marks
        .note(bot.bot_id, update_id, Utc::now());
}

/// Telegram shows a spinner on the button until the bot answers; answer at once, apart
/// from the update's own handling.
fn answer_callback(services: &Services, bot: &BotCredentials, callback_query_id: String) {
    let opened = match services.open_bot(bot) {
        Ok(opened) => opened,
        Err(error) => {
            tracing::warn!(bot = %bot.bot_id, %error, "cannot answer a button press");
            return;
        }
    };
    tokio::spawn(async move {
        if let Err(error) = opened.api.answer_callback(&callback_query_id).await {
            tracing::warn!(%error, "answerCallbackQuery failed");
        }
    });
}
