//! The Inbox and Leads: conversations with buyers, their messages, and the leads worth
//! following up. Adapters record inbound messages through `recordInboundMessage`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, Enum, InputObject, Object, OneofObject, SimpleObject, ID,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use cartie_domain::inbox::{
    AlbumItem, ChatContact, ConversationCommand, FileRef, MessageContent, MessageKind as DomainKind,
};
use cartie_domain::lead::{
    Interest, LeadCommand, LeadContact, LeadSource as DomainSource, LeadStatus as DomainStatus,
    Phone, TelegramUsername,
};
use cartie_domain::values::Text;
use cartie_domain::{BotId, Command, ConversationId, LeadId, ListingId, UserId};
use cartie_projections::directory::queries as directory;
use cartie_projections::inbox::queries::{
    self as inbox, ConversationCursor, ConversationFilter, ConversationRow, MessageRow,
};
use cartie_projections::leads::queries::{self as leads, LeadFilter};
use cartie_projections::leads::LeadRow;
use cartie_store::{EventLog, LogPosition};

use super::inventory::{MoneyAmount, MoneyInput};
use super::{caller, parse_id, services, RequestContext, WebSocketSession};
use crate::app::{shown, Services};
use crate::error::ApiError;

const DEFAULT_PAGE: i64 = 30;
const MAX_PAGE: i64 = 100;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "MessageKind", remote = "cartie_domain::inbox::MessageKind")]
pub enum MessageKind {
    Text,
    Photo,
    Video,
    Voice,
    Audio,
    Document,
    Animation,
    Sticker,
    Contact,
    Location,
    /// The buyer pressed one of the bot's inline buttons; `text` is the button's data.
    Callback,
    /// 2 to 10 files sent together (`album`); `text` is the caption.
    Album,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "LeadStatus", remote = "cartie_domain::lead::LeadStatus")]
pub enum LeadStatus {
    New,
    Contacted,
    Qualified,
    Won,
    Lost,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "LeadSource", remote = "cartie_domain::lead::LeadSource")]
pub enum LeadSource {
    Conversation,
    Form,
    Channel,
    Manual,
}

fn page(field: &str, size: Option<i64>) -> Result<i64, ApiError> {
    let size = size.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&size) {
        return Err(ApiError::validation(
            field,
            format!("must be 1 to {MAX_PAGE}"),
        ));
    }
    Ok(size)
}

/// The buyer as their chat shows them.
#[derive(SimpleObject)]
pub struct BuyerContact {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    /// A phone the buyer shared in the chat.
    pub phone: Option<String>,
    /// Name, or @username, or the chat id.
    pub display_name: String,
}

/// A conversation of one bot with one buyer.
#[derive(SimpleObject)]
#[graphql(name = "Conversation", complex)]
pub struct ConversationNode {
    pub id: ID,
    pub bot_id: ID,
    pub chat_id: i64,
    pub contact: BuyerContact,
    pub closed: bool,
    pub blocked: bool,
    pub assignee_id: Option<ID>,
    pub message_count: i64,
    pub unread_count: i64,
    pub last_message_preview: Option<String>,
    pub last_message_at: DateTime<Utc>,
    pub lead_id: Option<ID>,
    pub lead_status: Option<LeadStatus>,
    #[graphql(skip)]
    workspace: Uuid,
    #[graphql(skip)]
    raw_id: Uuid,
}

impl ConversationNode {
    fn from_row(row: ConversationRow) -> Self {
        let display_name = match (&row.first_name, &row.last_name, &row.username) {
            (Some(first), Some(last), _) => format!("{first} {last}"),
            (Some(first), None, _) => first.clone(),
            (None, _, Some(username)) => format!("@{username}"),
            _ => format!("chat {}", row.chat_id),
        };
        let lead_status = row
            .lead_status
            .as_deref()
            .and_then(DomainStatus::parse)
            .map(LeadStatus::from);
        Self {
            id: ID(row.conversation_id.to_string()),
            bot_id: ID(row.bot_id.to_string()),
            chat_id: row.chat_id,
            contact: BuyerContact {
                first_name: row.first_name,
                last_name: row.last_name,
                username: row.username,
                phone: row.phone,
                display_name,
            },
            closed: row.closed,
            blocked: row.blocked,
            assignee_id: row.assignee.map(|a| ID(a.to_string())),
            message_count: row.message_count,
            unread_count: row.unread_count,
            last_message_preview: row.last_message_preview,
            last_message_at: row.last_message_at,
            lead_id: row.lead_id.map(|l| ID(l.to_string())),
            lead_status,
            workspace: row.workspace_id,
            raw_id: row.conversation_id,
        }
    }
}

#[ComplexObject]
impl ConversationNode {
    /// Messages, newest first: `last` of them before message number `before` (the newest
    /// when omitted). Page backwards with `before: oldestSeq`.
    #[graphql(
        complexity = "5 + last.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE) as usize * child_complexity"
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        last: Option<i64>,
        before: Option<i64>,
    ) -> async_graphql::Result<MessagePage> {
        let limit = page("last", last)?;
        let (rows, has_older) = inbox::messages(
            &services(ctx).db,
            self.workspace,
            self.raw_id,
            before,
            limit,
        )
        .await
        .map_err(ApiError::from)?;
        let oldest_seq = rows.last().map(|r| r.seq);
        Ok(MessagePage {
            nodes: rows
                .into_iter()
                .map(MessageNode::from_row)
                .collect::<Result<_, _>>()?,
            has_older,
            oldest_seq,
        })
    }
}

#[derive(SimpleObject)]
pub struct MessagePage {
    pub nodes: Vec<MessageNode>,
    pub has_older: bool,
    /// Pass as `before` for the next (older) page.
    pub oldest_seq: Option<i64>,
}

/// A file on Telegram or at a URL.
#[derive(SimpleObject)]
pub struct MessageFile {
    pub telegram_file_id: Option<String>,
    pub url: Option<String>,
}

#[derive(SimpleObject)]
pub struct MessageContact {
    pub phone_number: String,
    pub first_name: String,
    pub last_name: Option<String>,
}

#[derive(SimpleObject)]
pub struct MessageLocation {
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum MessageDirection {
    Inbound,
    Outbound,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DeliveryStatus {
    /// An inbound message, as received.
    Received,
    /// Waiting for the bot to deliver it.
    Queued,
    Delivered,
    Failed,
}

#[derive(SimpleObject)]
#[graphql(name = "Message")]
pub struct MessageNode {
    pub conversation_id: ID,
    /// Its number in the conversation (1, 2, …).
    pub seq: i64,
    pub direction: MessageDirection,
    pub kind: MessageKind,
    /// The text, or the caption of media.
    pub text: Option<String>,
    pub file: Option<MessageFile>,
    pub file_name: Option<String>,
    pub emoji: Option<String>,
    pub contact: Option<MessageContact>,
    pub location: Option<MessageLocation>,
    /// The files of an ALBUM, in order.
    pub album: Vec<AlbumFile>,
    /// Inbound messages of one album share this id: show them together.
    pub media_group_id: Option<String>,
    /// Smaller renditions of a photo (Telegram file ids); `file` is the largest.
    pub other_sizes: Vec<String>,
    pub telegram_message_id: Option<i64>,
    pub delivery: DeliveryStatus,
    pub failure_reason: Option<String>,
    pub reply_to: Option<i64>,
    /// `buyer`, or who sent it (`user:<id>`, `api_token:<id>`).
    pub author: String,
    pub sent_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
}

/// One file of an album.
#[derive(SimpleObject)]
pub struct AlbumFile {
    pub kind: MessageKind,
    pub file: MessageFile,
}

fn message_file(file: FileRef) -> MessageFile {
    match file {
        FileRef::TelegramFileId(id) => MessageFile {
            telegram_file_id: Some(id),
            url: None,
        },
        FileRef::Url(url) => MessageFile {
            telegram_file_id: None,
            url: Some(url),
        },
    }
}

impl MessageNode {
    pub(crate) fn from_row(row: MessageRow) -> Result<Self, ApiError> {
        let content: MessageContent = serde_json::from_str(&row.content)
            .map_err(|e| ApiError::internal(format!("message content: {e}")))?;
        Ok(Self {
            conversation_id: ID(row.conversation_id.to_string()),
            seq: row.seq,
            direction: if row.direction == "INBOUND" {
                MessageDirection::Inbound
            } else {
                MessageDirection::Outbound
            },
            kind: content.kind.into(),
            text: content.text,
            file: content.file.map(message_file),
            file_name: content.file_name,
            emoji: content.emoji,
            contact: content.contact.map(|c| MessageContact {
                phone_number: c.phone_number,
                first_name: c.first_name,
                last_name: c.last_name,
            }),
            location: content.location.map(|l| MessageLocation {
                latitude: l.latitude,
                longitude: l.longitude,
            }),
            album: content
                .album
                .into_iter()
                .map(|item| AlbumFile {
                    kind: item.kind.into(),
                    file: message_file(item.file),
                })
                .collect(),
            media_group_id: content.media_group_id,
            other_sizes: content.other_sizes,
            telegram_message_id: row.telegram_message_id,
            delivery: match row.delivery.as_str() {
                "RECEIVED" => DeliveryStatus::Received,
                "DELIVERED" => DeliveryStatus::Delivered,
                "FAILED" => DeliveryStatus::Failed,
                _ => DeliveryStatus::Queued,
            },
            failure_reason: row.failure_reason,
            reply_to: row.reply_to,
            author: row.author,
            sent_at: row.sent_at,
            edited_at: row.edited_at,
        })
    }
}

#[derive(SimpleObject)]
pub struct ConversationPage {
    pub nodes: Vec<ConversationNode>,
    pub has_next_page: bool,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
}

fn encode_cursor(row: &ConversationRow) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}|{}",
        row.last_message_at.to_rfc3339(),
        row.conversation_id
    ))
}

fn decode_cursor(cursor: &str) -> Result<ConversationCursor, ApiError> {
    let invalid = || ApiError::validation("after", "is not a cursor from this list");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (at, id) = raw.split_once('|').ok_or_else(invalid)?;
    Ok(ConversationCursor {
        last_message_at: DateTime::parse_from_rfc3339(at)
            .map_err(|_| invalid())?
            .with_timezone(&Utc),
        conversation_id: id.parse().map_err(|_| invalid())?,
    })
}

#[derive(InputObject, Default)]
pub struct ConversationFilterInput {
    pub bot_id: Option<ID>,
    #[graphql(default)]
    pub unread_only: bool,
    /// Only conversations assigned to the caller.
    #[graphql(default)]
    pub assigned_to_me: bool,
    /// true: closed ones only; false: open ones only; omitted: both.
    pub closed: Option<bool>,
    /// Contact name, username, phone, or words from any message (at most 200 characters).
    pub search: Option<String>,
}

/// Longest `filter.search` of conversations: more than anyone types, and far below what
/// SQLite refuses as a `LIKE` pattern (50,000 bytes).
const SEARCH_MAX_CHARS: usize = 200;

/// A lead.
#[derive(SimpleObject)]
#[graphql(name = "Lead", complex)]
pub struct LeadNode {
    pub id: ID,
    pub source: LeadSource,
    pub name: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub telegram_username: Option<String>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub budget: Option<MoneyAmount>,
    pub listing_id: Option<ID>,
    pub conversation_id: Option<ID>,
    pub status: LeadStatus,
    pub lost_reason: Option<String>,
    pub assignee_id: Option<ID>,
    pub notes: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    raw_id: Uuid,
}

impl LeadNode {
    fn from_row(row: LeadRow) -> Result<Self, ApiError> {
        let internal =
            |what: &str, value: &str| ApiError::internal(format!("unknown {what} {value:?}"));
        let status =
            DomainStatus::parse(&row.status).ok_or_else(|| internal("status", &row.status))?;
        let source =
            DomainSource::parse(&row.source).ok_or_else(|| internal("source", &row.source))?;
        let budget = match (row.budget_minor, row.budget_currency.as_deref()) {
            (Some(amount_minor), Some(currency)) => Some(MoneyAmount {
                amount_minor,
                currency: currency
                    .parse::<cartie_domain::values::Currency>()
                    .map_err(|_| internal("currency", currency))?
                    .into(),
            }),
            _ => None,
        };
        Ok(Self {
            id: ID(row.lead_id.to_string()),
            source: source.into(),
            name: row.name,
            phone: row.phone,
            telegram_username: row.username,
            brand: row.brand,
            model: row.model,
            budget,
            listing_id: row.listing_id.map(|l| ID(l.to_string())),
            conversation_id: row.conversation_id.map(|c| ID(c.to_string())),
            status: status.into(),
            lost_reason: row.lost_reason,
            assignee_id: row.assignee.map(|a| ID(a.to_string())),
            notes: row.notes,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            raw_id: row.lead_id,
        })
    }
}

/// One thing that happened to a lead.
#[derive(SimpleObject)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// Who did it (`user:<id>`, `api_token:<id>`, `system`).
    pub actor: String,
    /// The event (`LeadCaptured`, `LeadStatusChanged`, …).
    pub event: String,
    /// What happened, in words.
    pub summary: String,
}

#[ComplexObject]
impl LeadNode {
    /// Everything that happened to the lead, oldest first.
    /// Costs as a page of 100 entries would.
    #[graphql(complexity = "5 + 100 * child_complexity")]
    async fn timeline(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TimelineEntry>> {
        use cartie_domain::lead::LeadEvent as E;
        let events = EventLog::new(services(ctx).db.clone())
            .events_of("Lead", &self.raw_id.to_string())
            .await
            .map_err(ApiError::from)?;
        let mut entries = Vec::with_capacity(events.len());
        for stored in events {
            let event: E = stored
                .payload()
                .map_err(|e| ApiError::internal(format!("lead event: {e}")))?;
            let actor = stored
                .metadata()
                .ok()
                .and_then(|m| m.get(cartie_domain::context::metadata_keys::ACTOR).cloned())
                .unwrap_or_default();
            let summary = match &event {
                E::LeadCaptured {
                    source, contact, ..
                } => format!(
                    "Captured from {} ({})",
                    source.as_str().to_lowercase(),
                    [
                        contact.name.as_ref().map(|n| n.as_str().to_string()),
                        contact.phone.as_ref().map(|p| p.as_str().to_string()),
                        contact
                            .username
                            .as_ref()
                            .map(|u| format!("@{}", u.as_str())),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ")
                ),
                E::LeadStatusChanged { from, to, reason } => match reason {
                    Some(reason) => format!("Status {from} → {to}: {}", reason.as_str()),
                    None => format!("Status {from} → {to}"),
                },
                E::LeadNoteAdded { text } => format!("Note: {}", text.as_str()),
                E::LeadAssigned { assignee: Some(a) } => format!("Assigned to user:{a}"),
                E::LeadAssigned { assignee: None } => "Unassigned".to_string(),
            };
            entries.push(TimelineEntry {
                at: stored.recorded_at,
                actor,
                event: stored.event_type.clone(),
                summary,
            });
        }
        Ok(entries)
    }
}

#[derive(SimpleObject)]
pub struct LeadPage {
    pub nodes: Vec<LeadNode>,
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(InputObject, Default)]
pub struct LeadFilterInput {
    #[graphql(default)]
    pub statuses: Vec<LeadStatus>,
    #[graphql(default)]
    pub sources: Vec<LeadSource>,
    pub assignee_id: Option<ID>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

/// A file to send: already on Telegram, or at a public URL.
#[derive(OneofObject)]
pub enum FileInput {
    TelegramFileId(String),
    Url(String),
}

#[derive(InputObject)]
pub struct ContactInput {
    pub phone_number: String,
    pub first_name: String,
    pub last_name: Option<String>,
}

#[derive(InputObject)]
pub struct LocationInput {
    pub latitude: f64,
    pub longitude: f64,
}

/// One file of an album to send: PHOTO, VIDEO, DOCUMENT or AUDIO.
#[derive(InputObject)]
pub struct AlbumFileInput {
    pub kind: MessageKind,
    pub file: FileInput,
}

/// A message's content: `text` for TEXT (and the caption of media and albums), `file` for
/// media, `contact` and `location` for those kinds, `album` for ALBUM (outbound),
/// `text` as the button's data for CALLBACK (inbound).
#[derive(InputObject)]
pub struct MessageContentInput {
    pub kind: MessageKind,
    pub text: Option<String>,
    pub file: Option<FileInput>,
    pub file_name: Option<String>,
    pub emoji: Option<String>,
    pub contact: Option<ContactInput>,
    pub location: Option<LocationInput>,
    pub album: Option<Vec<AlbumFileInput>>,
}

fn file_ref(field: &str, file: FileInput, inbound: bool) -> Result<FileRef, ApiError> {
    Ok(match file {
        FileInput::TelegramFileId(id) => FileRef::telegram(field, &id)?,
        FileInput::Url(_) if inbound => {
            return Err(ApiError::validation(
                field,
                "inbound files are Telegram file ids",
            ))
        }
        FileInput::Url(url) => FileRef::url(field, &url)?,
    })
}

impl MessageContentInput {
    fn parse(self, inbound: bool) -> Result<MessageContent, ApiError> {
        let kind: DomainKind = self.kind.into();
        let content = match kind {
            DomainKind::Text => MessageContent::text("text", self.text.as_deref().unwrap_or(""))?,
            DomainKind::Contact => {
                let c = self.contact.ok_or_else(|| {
                    ApiError::validation("contact", "a CONTACT message needs a contact")
                })?;
                MessageContent::contact(
                    "contact",
                    &c.phone_number,
                    &c.first_name,
                    c.last_name.as_deref(),
                )?
            }
            DomainKind::Location => {
                let l = self.location.ok_or_else(|| {
                    ApiError::validation("location", "a LOCATION message needs a location")
                })?;
                MessageContent::location("location", l.latitude, l.longitude)?
            }
            DomainKind::Callback if inbound => {
                MessageContent::callback(self.text.as_deref().unwrap_or(""))?
            }
            DomainKind::Callback => {
                return Err(ApiError::validation(
                    "kind",
                    "a button press comes from the buyer; it cannot be sent",
                ))
            }
            DomainKind::Album if inbound => {
                return Err(ApiError::validation(
                    "kind",
                    "inbound albums arrive as separate messages sharing a media group id",
                ))
            }
            DomainKind::Album => {
                let items = self
                    .album
                    .unwrap_or_default()
                    .into_iter()
                    .map(|item| {
                        Ok(AlbumItem {
                            kind: item.kind.into(),
                            file: file_ref("album.file", item.file, false)?,
                        })
                    })
                    .collect::<Result<Vec<_>, ApiError>>()?;
                MessageContent::album(items, self.text.as_deref())?
            }
            media => {
                let file = match self.file {
                    Some(file) => file_ref("file", file, inbound)?,
                    None => {
                        return Err(ApiError::validation(
                            "file",
                            format!("a {} message needs a file", media.as_str()),
                        ))
                    }
                };
                MessageContent::media("file", media, file, self.text.as_deref())?
                    .with_file_name(self.file_name.as_deref())
                    .with_emoji(self.emoji.as_deref())
            }
        };
        Ok(content)
    }
}

#[derive(InputObject)]
pub struct SendMessageInput {
    pub conversation_id: ID,
    pub content: MessageContentInput,
    /// The number of the message this answers.
    pub reply_to: Option<i64>,
}

#[derive(InputObject)]
pub struct TelegramSenderInput {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
}

/// A Telegram message to a bot, as an adapter received it.
#[derive(InputObject)]
pub struct InboundMessageInput {
    pub bot_id: ID,
    pub chat_id: i64,
    /// The Telegram update's id: the same update recorded again changes nothing.
    pub update_id: i64,
    pub telegram_message_id: i64,
    pub from: TelegramSenderInput,
    pub content: MessageContentInput,
    pub sent_at: DateTime<Utc>,
}

#[derive(InputObject)]
pub struct CaptureLeadInput {
    #[graphql(default_with = "LeadSource::Manual")]
    pub source: LeadSource,
    pub name: Option<String>,
    /// Any common format; stored as E.164 (numbers without a country code are read as
    /// Ukrainian).
    pub phone: Option<String>,
    pub telegram_username: Option<String>,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub budget: Option<MoneyInput>,
    pub listing_id: Option<ID>,
    /// The conversation the lead came from: one lead per conversation.
    pub conversation_id: Option<ID>,
    pub assignee_id: Option<ID>,
}

/// An assignee must be an active member of the caller's workspace.
async fn assignee(
    ctx: &Context<'_>,
    field: &str,
    id: Option<&ID>,
) -> Result<Option<UserId>, ApiError> {
    let Some(id) = id else { return Ok(None) };
    let user = parse_id(field, id)?;
    let workspace = caller(ctx)?.principal.workspace_id;
    match directory::membership(&services(ctx).db, workspace.0, user).await? {
        Some(m) if !m.disabled => Ok(Some(UserId(user))),
        _ => Err(ApiError::validation(
            field,
            "is not an active member of this workspace",
        )),
    }
}

async fn conversation_command(
    ctx: &Context<'_>,
    id: &ID,
    body: ConversationCommand,
) -> Result<ConversationNode, ApiError> {
    let caller: &RequestContext = caller(ctx)?;
    let conversation = parse_id("conversationId", id)?;
    let services = services(ctx);
    let position = services
        .conversations
        .execute(
            &conversation.to_string(),
            Command::new(caller.command_context(), body),
        )
        .await?;
    shown(&services.inbox, position, "inbox").await?;
    conversation_node(ctx, conversation).await
}

/// What an integration learns when it records an inbound message: the message is in the
/// log (or was already, for a repeated update). That is all an integration needs to
/// acknowledge an update, so the answer waits for the Inbox only when `conversation` is
/// asked for.
pub struct InboundMessageReceipt {
    conversation_id: Uuid,
    /// Where the conversation's newest event stands in the log (the message's, or an
    /// earlier one when the update had been recorded before).
    position: Option<LogPosition>,
}

#[Object]
impl InboundMessageReceipt {
    /// The conversation of the bot and chat.
    async fn conversation_id(&self) -> ID {
        ID(self.conversation_id.to_string())
    }

    /// The conversation as the Inbox shows it with this message (waits until the Inbox has
    /// caught up, as mutations do).
    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<ConversationNode> {
        shown(&services(ctx).inbox, self.position, "inbox").await?;
        Ok(conversation_node(ctx, self.conversation_id).await?)
    }
}

async fn conversation_node(ctx: &Context<'_>, id: Uuid) -> Result<ConversationNode, ApiError> {
    let workspace = caller(ctx)?.principal.workspace_id;
    inbox::conversation(&services(ctx).db, workspace.0, id)
        .await?
        .map(ConversationNode::from_row)
        .ok_or(ApiError::NotFound("conversation"))
}

async fn lead_command(
    ctx: &Context<'_>,
    id: Uuid,
    body: LeadCommand,
) -> Result<LeadNode, ApiError> {
    let caller = caller(ctx)?;
    let services = services(ctx);
    let position = services
        .leads
        .execute(
            &id.to_string(),
            Command::new(caller.command_context(), body),
        )
        .await?;
    shown(&services.leads_progress, position, "leads list").await?;
    leads::get(&services.db, caller.principal.workspace_id.0, id)
        .await?
        .ok_or(ApiError::NotFound("lead"))
        .and_then(LeadNode::from_row)
}

#[derive(Default)]
pub struct InboxQuery;

#[async_graphql::Object]
impl InboxQuery {
    /// Conversations, most recent first.
    #[graphql(
        complexity = "5 + first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE) as usize * child_complexity"
    )]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        filter: Option<ConversationFilterInput>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<ConversationPage> {
        let caller = caller(ctx)?;
        let limit = page("first", first)?;
        let filter = filter.unwrap_or_default();
        let query = ConversationFilter {
            bot: filter
                .bot_id
                .as_ref()
                .map(|b| parse_id("filter.botId", b))
                .transpose()?,
            unread_only: filter.unread_only,
            assignee: if filter.assigned_to_me {
                Some(
                    caller
                        .principal
                        .user_id()
                        .map(|u| u.0)
                        .unwrap_or(Uuid::nil()),
                )
            } else {
                None
            },
            closed: filter.closed,
            search: match filter.search {
                Some(search) if search.chars().count() > SEARCH_MAX_CHARS => {
                    return Err(ApiError::validation(
                        "filter.search",
                        format!("must be at most {SEARCH_MAX_CHARS} characters"),
                    )
                    .into());
                }
                search => search,
            },
        };
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let (rows, more) = inbox::conversations(
            &services(ctx).db,
            caller.principal.workspace_id.0,
            &query,
            after,
            limit,
        )
        .await
        .map_err(ApiError::from)?;
        let end_cursor = rows.last().map(encode_cursor);
        Ok(ConversationPage {
            nodes: rows.into_iter().map(ConversationNode::from_row).collect(),
            has_next_page: more,
            end_cursor,
        })
    }

    async fn conversation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ConversationNode> {
        let id = parse_id("id", &id)?;
        Ok(conversation_node(ctx, id).await?)
    }

    /// Leads, newest first.
    #[graphql(
        complexity = "5 + first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE) as usize * child_complexity"
    )]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        filter: Option<LeadFilterInput>,
        first: Option<i64>,
        after: Option<String>,
    ) -> async_graphql::Result<LeadPage> {
        let caller = caller(ctx)?;
        let limit = page("first", first)?;
        let filter = filter.unwrap_or_default();
        let query = LeadFilter {
            statuses: filter
                .statuses
                .into_iter()
                .map(|s| DomainStatus::from(s).as_str().to_string())
                .collect(),
            sources: filter
                .sources
                .into_iter()
                .map(|s| DomainSource::from(s).as_str().to_string())
                .collect(),
            assignee: filter
                .assignee_id
                .as_ref()
                .map(|a| parse_id("filter.assigneeId", a))
                .transpose()?,
            created_from: filter.created_from,
            created_to: filter.created_to,
        };
        let before = after
            .map(|a| {
                a.parse::<i64>()
                    .map_err(|_| ApiError::validation("after", "is not a cursor from this list"))
            })
            .transpose()?;
        let (rows, more) = leads::list(
            &services(ctx).db,
            caller.principal.workspace_id.0,
            &query,
            before,
            limit,
        )
        .await
        .map_err(ApiError::from)?;
        let end_cursor = rows.last().map(|r| r.created_position.to_string());
        Ok(LeadPage {
            nodes: rows
                .into_iter()
                .map(LeadNode::from_row)
                .collect::<Result<_, _>>()?,
            has_next_page: more,
            end_cursor,
        })
    }

    async fn lead(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<LeadNode> {
        let caller = caller(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(
            leads::get(&services(ctx).db, caller.principal.workspace_id.0, id)
                .await
                .map_err(ApiError::from)?
                .ok_or(ApiError::NotFound("lead"))
                .and_then(LeadNode::from_row)?,
        )
    }
}

#[derive(Default)]
pub struct InboxMutation;

#[async_graphql::Object]
impl InboxMutation {
    /// Queues a message to the buyer; the bot delivers it.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> async_graphql::Result<MessageNode> {
        let content = input.content.parse(false)?;
        let reply_to = input
            .reply_to
            .map(|r| {
                u64::try_from(r).map_err(|_| ApiError::validation("replyTo", "must be positive"))
            })
            .transpose()?;
        let conversation = conversation_command(
            ctx,
            &input.conversation_id,
            ConversationCommand::QueueOutboundMessage { content, reply_to },
        )
        .await?;
        let principal = caller(ctx)?.principal;
        // The caller's newest outbound message: a buyer's message that landed meanwhile is
        // newer but not this one.
        let author = principal.actor().to_string();
        let (rows, _) = inbox::messages(
            &services(ctx).db,
            principal.workspace_id.0,
            conversation.raw_id,
            None,
            MAX_PAGE,
        )
        .await
        .map_err(ApiError::from)?;
        let row = rows
            .into_iter()
            .find(|r| r.direction == "OUTBOUND" && r.author == author)
            .ok_or(ApiError::NotFound("message"))?;
        Ok(MessageNode::from_row(row)?)
    }

    /// Marks the conversation read up to message `upTo` (the newest when omitted).
    async fn mark_read(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        up_to: Option<i64>,
    ) -> async_graphql::Result<ConversationNode> {
        let up_to = up_to.map_or(u64::MAX, |u| u.max(0) as u64);
        Ok(conversation_command(
            ctx,
            &conversation_id,
            ConversationCommand::MarkRead { up_to },
        )
        .await?)
    }

    /// Assigns the conversation to a member (null unassigns).
    async fn assign_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        assignee_id: Option<ID>,
    ) -> async_graphql::Result<ConversationNode> {
        let assignee = assignee(ctx, "assigneeId", assignee_id.as_ref()).await?;
        Ok(conversation_command(
            ctx,
            &conversation_id,
            ConversationCommand::Assign { assignee },
        )
        .await?)
    }

    async fn close_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> async_graphql::Result<ConversationNode> {
        Ok(conversation_command(ctx, &conversation_id, ConversationCommand::Close).await?)
    }

    async fn reopen_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> async_graphql::Result<ConversationNode> {
        Ok(conversation_command(ctx, &conversation_id, ConversationCommand::Reopen).await?)
    }

    /// Records a message a buyer sent to a bot (for Telegram adapters, with an API token).
    /// Answers once the message is in the log; the receipt's `conversation` waits for the
    /// Inbox to show it.
    async fn record_inbound_message(
        &self,
        ctx: &Context<'_>,
        input: InboundMessageInput,
    ) -> async_graphql::Result<InboundMessageReceipt> {
        let caller = caller(ctx)?;
        let content = input.content.parse(true)?;
        let bot = BotId(parse_id("botId", &input.bot_id)?);
        let workspace = caller.principal.workspace_id;
        let conversation = ConversationId::for_chat(workspace, bot, input.chat_id);
        let trimmed = |field: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
            if v.as_deref()
                .is_some_and(|s| s.chars().any(char::is_control))
            {
                return Err(ApiError::validation(
                    field,
                    "must not contain control characters",
                ));
            }
            Ok(v.map(|s| s.trim().chars().take(256).collect::<String>())
                .filter(|s| !s.is_empty()))
        };
        let contact = ChatContact {
            first_name: trimmed("from.firstName", input.from.first_name)?,
            last_name: trimmed("from.lastName", input.from.last_name)?,
            username: trimmed("from.username", input.from.username)?,
        };
        let mut context = caller.command_context();
        context.idempotency_key = Some(format!("telegram-update:{}:{}", bot, input.update_id));
        let services = services(ctx);
        let position = services
            .conversations
            .execute(
                &conversation.to_string(),
                Command::new(
                    context,
                    ConversationCommand::ReceiveInboundMessage {
                        bot_id: bot,
                        chat_id: input.chat_id,
                        contact,
                        update_id: input.update_id,
                        telegram_message_id: input.telegram_message_id,
                        content,
                        sent_at: input.sent_at,
                    },
                ),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(InboundMessageReceipt {
            conversation_id: conversation.0,
            position,
        })
    }

    /// Records that the buyer blocked the bot (for Telegram adapters, with an API token).
    async fn record_bot_blocked(
        &self,
        ctx: &Context<'_>,
        bot_id: ID,
        chat_id: i64,
        update_id: i64,
    ) -> async_graphql::Result<ConversationNode> {
        let workspace = caller(ctx)?.principal.workspace_id;
        let bot = BotId(parse_id("botId", &bot_id)?);
        let conversation = ConversationId::for_chat(workspace, bot, chat_id);
        Ok(conversation_command(
            ctx,
            &ID(conversation.to_string()),
            ConversationCommand::RecordBotBlocked {
                update_id: Some(update_id),
            },
        )
        .await?)
    }

    async fn capture_lead(
        &self,
        ctx: &Context<'_>,
        input: CaptureLeadInput,
    ) -> async_graphql::Result<LeadNode> {
        let optional_text =
            |field: &str, value: Option<String>| -> Result<Option<Text>, ApiError> {
                value
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| Text::parse(field, &v, Text::SHORT).map_err(ApiError::from))
                    .transpose()
            };
        let contact = LeadContact {
            name: optional_text("name", input.name)?,
            phone: input
                .phone
                .filter(|p| !p.trim().is_empty())
                .map(|p| Phone::parse("phone", &p))
                .transpose()
                .map_err(ApiError::from)?,
            username: input
                .telegram_username
                .filter(|u| !u.trim().is_empty())
                .map(|u| TelegramUsername::parse("telegramUsername", &u))
                .transpose()
                .map_err(ApiError::from)?,
        };
        let interest = Interest {
            brand: optional_text("brand", input.brand)?,
            model: optional_text("model", input.model)?,
            budget: input
                .budget
                .map(|b| b.parse("budget"))
                .transpose()
                .map_err(ApiError::from)?,
            listing_id: input
                .listing_id
                .as_ref()
                .map(|l| parse_id("listingId", l).map(ListingId))
                .transpose()?,
        };
        let conversation_id = match input.conversation_id.as_ref() {
            Some(id) => {
                let id = parse_id("conversationId", id)?;
                // The conversation must be the caller's.
                conversation_node(ctx, id).await?;
                Some(ConversationId(id))
            }
            None => None,
        };
        let assignee = assignee(ctx, "assigneeId", input.assignee_id.as_ref()).await?;
        let id = match conversation_id {
            Some(conversation) => LeadId::for_conversation(conversation),
            None => LeadId::generate(),
        };
        Ok(lead_command(
            ctx,
            id.0,
            LeadCommand::CaptureLead {
                source: input.source.into(),
                contact,
                interest,
                conversation_id,
                assignee,
            },
        )
        .await?)
    }

    /// Moves a lead along NEW → CONTACTED → QUALIFIED → WON, or to LOST with a reason.
    async fn change_lead_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: LeadStatus,
        reason: Option<String>,
    ) -> async_graphql::Result<LeadNode> {
        let id = parse_id("id", &id)?;
        let reason = reason
            .filter(|r| !r.trim().is_empty())
            .map(|r| Text::parse("reason", &r, Text::TITLE))
            .transpose()
            .map_err(ApiError::from)?;
        Ok(lead_command(
            ctx,
            id,
            LeadCommand::ChangeLeadStatus {
                to: status.into(),
                reason,
            },
        )
        .await?)
    }

    async fn add_lead_note(
        &self,
        ctx: &Context<'_>,
        id: ID,
        text: String,
    ) -> async_graphql::Result<LeadNode> {
        let id = parse_id("id", &id)?;
        let text = Text::parse_multiline("text", &text, Text::LONG).map_err(ApiError::from)?;
        Ok(lead_command(ctx, id, LeadCommand::AddLeadNote { text }).await?)
    }

    async fn assign_lead(
        &self,
        ctx: &Context<'_>,
        id: ID,
        assignee_id: Option<ID>,
    ) -> async_graphql::Result<LeadNode> {
        let id = parse_id("id", &id)?;
        let assignee = assignee(ctx, "assigneeId", assignee_id.as_ref()).await?;
        Ok(lead_command(ctx, id, LeadCommand::AssignLead { assignee }).await?)
    }
}

/// How far back (in log positions) a subscriber looks again for changes, so a change whose
/// transaction committed late (PostgreSQL hands out positions at insert) is not missed.
/// What was already sent is not sent again.
const LOOKBACK: i64 = 200;
const CHANGES_PER_QUERY: i64 = 500;

/// The caller of a subscription, allowed by the access policy.
pub(crate) fn subscriber<'a>(
    ctx: &Context<'a>,
    field: &str,
) -> Result<&'a RequestContext, ApiError> {
    let caller = caller(ctx)?;
    let access = crate::access::access_of("Subscription", field)
        .ok_or_else(|| ApiError::Forbidden("this operation is not open to anyone".into()))?;
    crate::access::check(Some(&caller.principal), access)?;
    Ok(caller)
}

/// Whether the subscriber's credential still holds (not signed out, disabled or revoked):
/// checked before every item, since the WebSocket authenticated only at its start.
pub(crate) async fn still_authorised(
    services: &Services,
    token: Option<&secrecy::SecretString>,
) -> bool {
    use secrecy::ExposeSecret;
    match token {
        Some(token) => crate::accounts::authenticate(services, token.expose_secret())
            .await
            .is_ok(),
        None => true,
    }
}

/// Changes after `last` not yet sent, by key (the newest change of each), oldest first.
fn unsent<K: std::hash::Hash + Eq + Copy, R>(
    rows: Vec<R>,
    key: impl Fn(&R) -> (K, i64),
    sent: &mut HashMap<K, i64>,
    last: &mut i64,
) -> Vec<R> {
    let mut fresh = Vec::new();
    for row in rows {
        let (k, position) = key(&row);
        if sent.get(&k).is_none_or(|&at| at < position) {
            sent.insert(k, position);
            *last = (*last).max(position);
            fresh.push(row);
        }
    }
    let horizon = *last - LOOKBACK;
    sent.retain(|_, at| *at >= horizon);
    fresh
}

/// The rows that change after a subscriber starts, as a stream: each time the Inbox
/// projection moves, reads what changed (`fetch(after)`), sends what was not sent yet,
/// and re-checks the subscriber's credential before every item.
async fn changes<R, K, N, F, Fut>(
    services: Arc<Services>,
    token: Option<secrecy::SecretString>,
    fetch: F,
    key: fn(&R) -> (K, i64),
    node: fn(R) -> Option<N>,
) -> Result<impl futures::Stream<Item = N>, ApiError>
where
    R: Send + 'static,
    K: std::hash::Hash + Eq + Copy + Send + 'static,
    N: Send + 'static,
    F: Fn(Arc<Services>, i64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Vec<R>, sqlx::Error>> + Send,
{
    let progress = services.inbox.clone();
    let mut last = progress.position().global_position;
    // What is there already is not news: only later changes are sent.
    let mut sent = HashMap::new();
    let existing = fetch(services.clone(), last - LOOKBACK).await?;
    unsent(existing, key, &mut sent, &mut last);
    let state = (services, progress, last, sent, VecDeque::new());
    Ok(futures::stream::unfold(
        state,
        move |(services, mut progress, mut last, mut sent, mut pending)| {
            let (token, fetch) = (token.clone(), fetch.clone());
            async move {
                loop {
                    if let Some(row) = pending.pop_front() {
                        if !still_authorised(&services, token.as_ref()).await {
                            return None;
                        }
                        match node(row) {
                            Some(item) => {
                                return Some((item, (services, progress, last, sent, pending)))
                            }
                            None => continue,
                        }
                    }
                    match fetch(services.clone(), last - LOOKBACK).await {
                        Ok(rows) => pending.extend(unsent(rows, key, &mut sent, &mut last)),
                        Err(error) => tracing::warn!(%error, "subscription: cannot read changes"),
                    }
                    if pending.is_empty() && !progress.changed().await {
                        return None;
                    }
                }
            }
        },
    ))
}

#[derive(Default)]
pub struct InboxSubscription;

#[async_graphql::Subscription(name = "Subscription")]
impl InboxSubscription {
    /// Conversation summaries of the workspace as they change (new messages, reads,
    /// assignment, closing).
    async fn inbox_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl futures::Stream<Item = ConversationNode>> {
        let workspace = subscriber(ctx, "inboxChanged")?.principal.workspace_id.0;
        let token = ctx.data_opt::<WebSocketSession>().map(|s| s.token.clone());
        let services = ctx.data_unchecked::<Arc<Services>>().clone();
        Ok(changes(
            services,
            token,
            move |services: Arc<Services>, after| async move {
                inbox::changed_after(&services.db, workspace, after, CHANGES_PER_QUERY).await
            },
            |row: &ConversationRow| (row.conversation_id, row.changed_position),
            |row| Some(ConversationNode::from_row(row)),
        )
        .await?)
    }

    /// One request as it changes: new variants, their status, publishing, closing.
    async fn request_changed(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl futures::Stream<Item = super::requests::RequestNode>> {
        super::requests::request_changes(ctx, id).await
    }

    /// Messages of one conversation as they arrive or change (delivered, failed, edited).
    async fn conversation_messages(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl futures::Stream<Item = MessageNode>> {
        let workspace = subscriber(ctx, "conversationMessages")?
            .principal
            .workspace_id
            .0;
        let token = ctx.data_opt::<WebSocketSession>().map(|s| s.token.clone());
        let conversation = parse_id("id", &id)?;
        let services = ctx.data_unchecked::<Arc<Services>>().clone();
        if inbox::conversation(&services.db, workspace, conversation)
            .await
            .map_err(ApiError::from)?
            .is_none()
        {
            return Err(ApiError::NotFound("conversation").into());
        }
        Ok(changes(
            services,
            token,
            move |services: Arc<Services>, after| async move {
                inbox::messages_after(
                    &services.db,
                    workspace,
                    conversation,
                    after,
                    CHANGES_PER_QUERY,
                )
                .await
            },
            |row: &MessageRow| (row.seq, row.position),
            |row| MessageNode::from_row(row).ok(),
        )
        .await?)
    }
}
