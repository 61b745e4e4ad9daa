//! Cartie's Telegram Bot API adapter (tgbot): reading updates into what the Inbox records,
//! and the Bot API calls Cartie makes — registration checks, webhooks, long polling and the
//! delivery of operators' messages.

pub mod bot_api;
pub mod inbound;

pub use bot_api::{BotApi, BotIdentity, TelegramError, TELEGRAM_API};
pub use inbound::{read_json, read_update, Inbound, InboundMessage, ALLOWED_UPDATES};

/// The Bot API types, for callers that read raw updates (webhooks).
pub use tgbot::types::Update;
