//! Conversations with buyers who write to a dealer's Telegram bots.

mod content;
mod conversation;

pub use content::{
    AlbumItem, FileRef, Location, MessageContent, MessageKind, SharedContact, ALBUM_ITEMS,
    MAX_CAPTION_CHARS, MAX_TEXT_CHARS,
};
pub use conversation::{
    ChatContact, Conversation, ConversationCommand, ConversationError, ConversationEvent,
};
