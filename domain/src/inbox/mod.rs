//! Conversations with buyers who write to a dealer's Telegram bots.

mod content;
mod conversation;

pub use content::{
    FileRef, Location, MessageContent, MessageKind, SharedContact, MAX_CAPTION_CHARS,
    MAX_TEXT_CHARS,
};
pub use conversation::{
    ChatContact, Conversation, ConversationCommand, ConversationError, ConversationEvent,
};
