//! What a Telegram update means for the Inbox. Pure: no I/O, so every kind is tested
//! against real update JSON.

use cartie_domain::inbox::{ChatContact, FileRef, MessageContent, MessageKind};
use chrono::{DateTime, TimeZone as _, Utc};
use tgbot::types::{
    CallbackQuery, Chat, ChatMember, ChatMemberUpdated, MaybeInaccessibleMessage, Message,
    MessageData, Text, Update, UpdateType, User,
};

/// One update, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A new message from the buyer.
    Message(InboundMessage),
    /// The buyer edited one of their messages.
    Edited(InboundMessage),
    /// The buyer pressed an inline button; Telegram waits for `answerCallbackQuery`.
    ButtonPressed {
        callback_query_id: String,
        message: InboundMessage,
    },
    /// The buyer blocked the bot (`my_chat_member` → kicked).
    Blocked { chat_id: i64, update_id: i64 },
    /// The buyer restarted the bot (`my_chat_member` → member).
    Unblocked { chat_id: i64, update_id: i64 },
    /// Nothing for the Inbox; the reason is logged.
    Ignored { update_id: i64, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub update_id: i64,
    pub chat_id: i64,
    pub contact: ChatContact,
    pub telegram_message_id: i64,
    pub content: MessageContent,
    /// When the buyer sent it (or edited it, for edits).
    pub at: DateTime<Utc>,
}

impl Inbound {
    pub fn update_id(&self) -> i64 {
        match self {
            Inbound::Message(m) | Inbound::Edited(m) => m.update_id,
            Inbound::ButtonPressed { message, .. } => message.update_id,
            Inbound::Blocked { update_id, .. }
            | Inbound::Unblocked { update_id, .. }
            | Inbound::Ignored { update_id, .. } => *update_id,
        }
    }

    /// The chat the update belongs to, when it is one the Inbox keeps.
    pub fn chat_id(&self) -> Option<i64> {
        match self {
            Inbound::Message(m) | Inbound::Edited(m) => Some(m.chat_id),
            Inbound::ButtonPressed { message, .. } => Some(message.chat_id),
            Inbound::Blocked { chat_id, .. } | Inbound::Unblocked { chat_id, .. } => Some(*chat_id),
            Inbound::Ignored { .. } => None,
        }
    }
}

/// The update types a bot asks Telegram for (`allowed_updates`).
pub const ALLOWED_UPDATES: [tgbot::types::AllowedUpdate; 4] = [
    tgbot::types::AllowedUpdate::Message,
    tgbot::types::AllowedUpdate::EditedMessage,
    tgbot::types::AllowedUpdate::CallbackQuery,
    tgbot::types::AllowedUpdate::BotStatus,
];

fn ignored(update_id: i64, reason: impl Into<String>) -> Inbound {
    Inbound::Ignored {
        update_id,
        reason: reason.into(),
    }
}

/// Reads one update as Telegram sent it (JSON). Answers an error for JSON that is no
/// update at all.
///
/// Control characters other than line breaks and tabs in any of its texts are read as
/// U+FFFD: the Inbox refuses them from its API (PostgreSQL cannot store a NUL), but a
/// buyer's message is kept, not refused.
pub fn read_json(raw: &serde_json::Value) -> Result<Inbound, serde_json::Error> {
    use serde::Deserialize as _;
    let cleaned;
    let raw = if has_unprintable(raw) {
        let mut copy = raw.clone();
        make_printable(&mut copy);
        cleaned = copy;
        &cleaned
    } else {
        raw
    };
    let update = Update::deserialize(raw)?;
    let mut inbound = read_update(&update);
    // Telegram sends a GIF with both `animation` and `document` (for old clients); tgbot
    // reads it as the document. The raw update tells.
    if let Inbound::Message(m) | Inbound::Edited(m) = &mut inbound {
        let message = raw.get("message").or_else(|| raw.get("edited_message"));
        if m.content.kind == MessageKind::Document
            && message.is_some_and(|m| m.get("animation").is_some())
        {
            m.content.kind = MessageKind::Animation;
        }
    }
    Ok(inbound)
}

fn unprintable(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

fn has_unprintable(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.chars().any(unprintable),
        serde_json::Value::Array(items) => items.iter().any(has_unprintable),
        serde_json::Value::Object(fields) => fields.values().any(has_unprintable),
        _ => false,
    }
}

fn make_printable(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => {
            *text = text
                .chars()
                .map(|c| if unprintable(c) { '\u{fffd}' } else { c })
                .collect();
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(make_printable),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(make_printable),
        _ => {}
    }
}

/// Reads one update (as tgbot parsed it; prefer [`read_json`], which knows GIFs).
pub fn read_update(update: &Update) -> Inbound {
    let update_id = update.id;
    match &update.update_type {
        UpdateType::Message(message) => match read_message(update_id, message) {
            Ok(m) => Inbound::Message(m),
            Err(reason) => ignored(update_id, reason),
        },
        UpdateType::EditedMessage(message) => match read_message(update_id, message) {
            Ok(mut m) => {
                if let Some(edit_date) = message.edit_date {
                    m.at = timestamp(edit_date);
                }
                Inbound::Edited(m)
            }
            Err(reason) => ignored(update_id, reason),
        },
        UpdateType::CallbackQuery(query) => read_callback(update_id, query),
        UpdateType::BotStatus(change) => read_status(update_id, change),
        UpdateType::Unknown(value) => {
            let kind = value
                .as_object()
                .and_then(|o| o.keys().find(|k| *k != "update_id").cloned())
                .unwrap_or_else(|| "unreadable".to_string());
            ignored(update_id, format!("update of unknown type {kind:?}"))
        }
        other => ignored(
            update_id,
            format!("{} updates are not for the Inbox", kind_name(other)),
        ),
    }
}

fn kind_name(update: &UpdateType) -> String {
    serde_json::to_value(update)
        .ok()
        .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
        .unwrap_or_else(|| "such".to_string())
}

fn timestamp(unix: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix, 0).single().unwrap_or_else(Utc::now)
}

fn private_chat(chat: &Chat) -> Result<(i64, ChatContact), String> {
    match chat {
        Chat::Private(private) => Ok((
            private.id.into(),
            ChatContact {
                first_name: Some(private.first_name.clone()).filter(|n| !n.is_empty()),
                last_name: private.last_name.clone(),
                username: private.username.clone().map(String::from),
            },
        )),
        Chat::Group(_) => Err("messages in groups are not for the Inbox".into()),
        Chat::Supergroup(_) => Err("messages in supergroups are not for the Inbox".into()),
        Chat::Channel(_) => Err("channel posts are not for the Inbox".into()),
    }
}

fn user_contact(user: &User) -> ChatContact {
    ChatContact {
        first_name: Some(user.first_name.clone()).filter(|n| !n.is_empty()),
        last_name: user.last_name.clone(),
        username: user.username.as_ref().map(|u| u.to_string()),
    }
}

fn caption(text: &Option<Text>) -> Option<&str> {
    text.as_ref().map(|t| t.data.as_str())
}

fn file(id: &str) -> Result<FileRef, String> {
    FileRef::telegram("file", id).map_err(|e| e.message)
}

/// The content of a message, or why the Inbox cannot keep it.
pub fn read_content(message: &Message) -> Result<MessageContent, String> {
    use MessageKind as K;
    let content = match &message.data {
        MessageData::Text(text) => MessageContent::text("text", &text.data),
        MessageData::Photo(photo) => {
            // Telegram lists the sizes smallest first; keep the largest as the file.
            let mut sizes: Vec<_> = photo.data.iter().collect();
            sizes.sort_by_key(|s| (s.width * s.height, s.file_size.unwrap_or(0)));
            let largest = sizes.pop().ok_or("a photo without sizes")?;
            MessageContent::media(
                "photo",
                K::Photo,
                file(&largest.file_id)?,
                caption(&photo.caption),
            )
            .map(|c| c.with_other_sizes(sizes.iter().map(|s| s.file_id.clone()).collect()))
        }
        MessageData::Video(video) => MessageContent::media(
            "video",
            K::Video,
            file(&video.data.file_id)?,
            caption(&video.caption),
        )
        .map(|c| c.with_file_name(video.data.file_name.as_deref())),
        MessageData::VideoNote(note) => {
            MessageContent::media("video_note", K::Video, file(&note.file_id)?, None)
        }
        MessageData::Voice(voice) => MessageContent::media(
            "voice",
            K::Voice,
            file(&voice.data.file_id)?,
            caption(&voice.caption),
        ),
        MessageData::Audio(audio) => MessageContent::media(
            "audio",
            K::Audio,
            file(&audio.data.file_id)?,
            caption(&audio.caption),
        )
        .map(|c| c.with_file_name(audio.data.file_name.as_deref())),
        MessageData::Document(document) => MessageContent::media(
            "document",
            K::Document,
            file(&document.data.file_id)?,
            caption(&document.caption),
        )
        .map(|c| c.with_file_name(document.data.file_name.as_deref())),
        MessageData::Animation(animation) => MessageContent::media(
            "animation",
            K::Animation,
            file(&animation.file_id)?,
            message.get_text().map(|t| t.data.as_str()),
        )
        .map(|c| c.with_file_name(animation.file_name.as_deref())),
        MessageData::Sticker(sticker) => {
            MessageContent::media("sticker", K::Sticker, file(&sticker.file_id)?, None)
                .map(|c| c.with_emoji(sticker.emoji.as_deref()))
        }
        MessageData::Contact(contact) => MessageContent::contact(
            "contact",
            &contact.phone_number,
            &contact.first_name,
            contact.last_name.as_deref(),
        ),
        MessageData::Location(location) => MessageContent::location(
            "location",
            f64::from(location.latitude),
            f64::from(location.longitude),
        ),
        MessageData::Venue(venue) => MessageContent::location(
            "venue",
            f64::from(venue.location.latitude),
            f64::from(venue.location.longitude),
        ),
        MessageData::Unknown(value) => {
            return Err(format!(
                "a message of unknown content ({})",
                value
                    .as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            ))
        }
        other => {
            let name = serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
                .unwrap_or_else(|| "service".to_string());
            return Err(format!("{name} messages are not for the Inbox"));
        }
    };
    content
        .map(|c| c.with_media_group(message.media_group_id.as_deref()))
        .map_err(|e| format!("{}: {}", e.field, e.message))
}

fn read_message(update_id: i64, message: &Message) -> Result<InboundMessage, String> {
    let (chat_id, contact) = private_chat(&message.chat)?;
    Ok(InboundMessage {
        update_id,
        chat_id,
        contact,
        telegram_message_id: message.id,
        content: read_content(message)?,
        at: timestamp(message.date),
    })
}

fn read_callback(update_id: i64, query: &CallbackQuery) -> Inbound {
    let Some(data) = query.data.as_deref() else {
        return ignored(update_id, "a button press without data (a game)");
    };
    let (chat_id, telegram_message_id, contact) = match &query.message {
        Some(MaybeInaccessibleMessage::Message(message)) => match private_chat(&message.chat) {
            Ok((chat_id, contact)) => (chat_id, message.id, contact),
            Err(reason) => return ignored(update_id, reason),
        },
        Some(MaybeInaccessibleMessage::InaccessibleMessage(message)) => {
            match private_chat(&message.chat) {
                Ok((chat_id, contact)) => (chat_id, message.message_id, contact),
                Err(reason) => return ignored(update_id, reason),
            }
        }
        // An inline-mode button: no chat with the bot to keep it in.
        None => return ignored(update_id, "a button press outside a chat with the bot"),
    };
    let content = match MessageContent::callback(data) {
        Ok(content) => content,
        Err(e) => return ignored(update_id, e.message),
    };
    let contact = if contact.first_name.is_some() {
        contact
    } else {
        user_contact(&query.from)
    };
    Inbound::ButtonPressed {
        callback_query_id: query.id.clone(),
        message: InboundMessage {
            update_id,
            chat_id,
            contact,
            telegram_message_id,
            content,
            // A button press carries no date of its own; it arrives as it happens.
            at: Utc::now(),
        },
    }
}

fn read_status(update_id: i64, change: &ChatMemberUpdated) -> Inbound {
    let chat_id = match private_chat(&change.chat) {
        Ok((chat_id, _)) => chat_id,
        Err(_) => return ignored(update_id, "the bot's membership of a group changed"),
    };
    match &change.new_chat_member {
        ChatMember::Kicked(_) => Inbound::Blocked { chat_id, update_id },
        ChatMember::Member { .. } => Inbound::Unblocked { chat_id, update_id },
        _ => ignored(
            update_id,
            "a membership change that is neither block nor restart",
        ),
    }
}
