use std::collections::HashSet;

use cartie_domain::context::metadata_keys;
use cartie_domain::inbox::{
    ChatContact, Conversation, ConversationEvent, MessageContent, MessageKind,
};
use cartie_store::{on_tx, StoredEvent, Tx};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::runner::{ProjectionError, Projector};

/// Marks the conversation changed at `position` (for subscribers).
macro_rules! touch {
    ($conn:expr, $id:expr, $position:expr) => {
        sqlx::query(
            "UPDATE inbox_conversations SET changed_position = $2 WHERE conversation_id = $1",
        )
        .bind($id)
        .bind($position)
        .execute($conn)
        .await?
    };
}

/// Projects conversation events into `inbox_conversations` and `inbox_messages`.
///
/// A new message (received or queued) is held back and written with the batch's other new
/// messages: one multi-row insert of the messages and one statement moving the summaries
/// of their conversations, at most one message per conversation in each, so every summary
/// moves exactly as message by message. A message that changes the contact, and any other
/// event, writes what is held back first, then its own statements. A message is inserted
/// once (by its number), and counters move only for a message the row has not counted
/// yet, so applying an event twice changes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct InboxProjector;

impl InboxProjector {
    pub const NAME: &'static str = "inbox";
}

#[async_trait::async_trait]
impl Projector for InboxProjector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Conversation::TYPE])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["inbox_messages", "inbox_conversations"]
    }

    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        let mut pending = Pending::default();
        for event in events
            .iter()
            .filter(|e| e.aggregate_type == Conversation::TYPE)
        {
            let id: Uuid = event
                .aggregate_id
                .parse()
                .map_err(|e| ProjectionError::undecodable(event, e))?;
            let payload: ConversationEvent = event
                .payload()
                .map_err(|e| ProjectionError::undecodable(event, e))?;
            match new_message(id, event, &payload)? {
                Some(AddedMessage {
                    message,
                    summary,
                    contact,
                }) => {
                    if pending.summarises(id) {
                        pending.flush(tx).await?;
                    }
                    pending.hold(message, summary);
                    if let Some(change) = contact {
                        pending.flush(tx).await?;
                        change_contact(tx, id, change).await?;
                    }
                }
                None => {
                    pending.flush(tx).await?;
                    apply_one(tx, id, event, payload).await?;
                }
            }
        }
        pending.flush(tx).await?;
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        on_tx!(tx, conn => {
            sqlx::query("DELETE FROM inbox_messages").execute(&mut *conn).await?;
            sqlx::query("DELETE FROM inbox_conversations").execute(&mut *conn).await?;
        });
        Ok(())
    }
}

/// Rows per multi-row statement (well inside both databases' bind limits).
const ROWS_PER_STATEMENT: usize = 500;

/// A new message to insert.
struct NewMessage {
    conversation: Uuid,
    seq: i64,
    workspace: Uuid,
    direction: &'static str,
    kind: &'static str,
    text: Option<String>,
    text_key: Option<String>,
    content: String,
    telegram_message_id: Option<i64>,
    delivery: &'static str,
    reply_to: Option<i64>,
    author: String,
    sent_at: DateTime<Utc>,
    position: i64,
}

/// How a new message moves its conversation's summary (when the row has not counted it).
struct Summary {
    conversation: Uuid,
    seq: i64,
    /// 1 for a message from the buyer (unread until read), 0 for one to the buyer.
    unread: i64,
    preview: String,
    at: DateTime<Utc>,
    position: i64,
}

/// New messages of a batch and their summary changes, not written yet.
#[derive(Default)]
struct Pending {
    messages: Vec<NewMessage>,
    summaries: Vec<Summary>,
    conversations: HashSet<Uuid>,
}

impl Pending {
    fn summarises(&self, conversation: Uuid) -> bool {
        self.conversations.contains(&conversation)
    }

    fn hold(&mut self, message: NewMessage, summary: Summary) {
        self.conversations.insert(summary.conversation);
        self.messages.push(message);
        self.summaries.push(summary);
    }

    async fn flush(&mut self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        for chunk in self.messages.chunks(ROWS_PER_STATEMENT) {
            on_tx!(tx, conn, DB => {
                let mut query = QueryBuilder::<DB>::new(
                    "INSERT INTO inbox_messages (conversation_id, seq, workspace_id, direction, kind, text, \
                     text_key, content, telegram_message_id, delivery, failure_reason, reply_to, author, sent_at, \
                     edited_at, position) ",
                );
                query.push_values(chunk, |mut row, m| {
                    row.push_bind(m.conversation)
                        .push_bind(m.seq)
                        .push_bind(m.workspace)
                        .push_bind(m.direction)
                        .push_bind(m.kind)
                        .push_bind(m.text.clone())
                        .push_bind(m.text_key.clone())
                        .push_bind(m.content.clone())
                        .push_bind(m.telegram_message_id)
                        .push_bind(m.delivery)
                        .push("NULL")
                        .push_bind(m.reply_to)
                        .push_bind(m.author.clone())
                        .push_bind(m.sent_at)
                        .push("NULL")
                        .push_bind(m.position);
                });
                query.push(" ON CONFLICT (conversation_id, seq) DO NOTHING");
                query.build().execute(&mut *conn).await?;
            });
        }
        // One row per conversation in `summaries` (see `apply`), so each row's condition
        // sees the state before this statement, as it would message by message.
        for chunk in self.summaries.chunks(ROWS_PER_STATEMENT) {
            on_tx!(tx, conn, DB => {
                let mut query = QueryBuilder::<DB>::new(
                    "WITH v (conversation_id, seq, unread, preview, at, position) AS (",
                );
                query.push_values(chunk, |mut row, s| {
                    row.push_bind(s.conversation)
                        .push_bind(s.seq)
                        .push_bind(s.unread)
                        .push_bind(s.preview.clone())
                        .push_bind(s.at)
                        .push_bind(s.position);
                });
                query.push(
                    ") UPDATE inbox_conversations SET message_count = v.seq, \
                     unread_count = unread_count + v.unread, last_message_preview = v.preview, \
                     last_message_at = v.at, changed_position = v.position FROM v \
                     WHERE inbox_conversations.conversation_id = v.conversation_id \
                     AND inbox_conversations.message_count < v.seq",
                );
                query.build().execute(&mut *conn).await?;
            });
        }
        self.messages.clear();
        self.summaries.clear();
        self.conversations.clear();
        Ok(())
    }
}

/// A message an event adds to a conversation.
struct AddedMessage {
    message: NewMessage,
    summary: Summary,
    /// The contact details the message changes: new names, a shared phone number, or both.
    contact: Option<(Option<ChatContact>, Option<String>)>,
}

/// The message an event adds (one received from the buyer, or one queued to them), if any.
fn new_message(
    id: Uuid,
    stored: &StoredEvent,
    event: &ConversationEvent,
) -> Result<Option<AddedMessage>, ProjectionError> {
    let position = stored.position.global_position;
    let workspace = || {
        stored
            .workspace_id()
            .ok_or_else(|| ProjectionError::undecodable(stored, "no workspace in metadata"))
    };
    let message = |seq: u64, content: &MessageContent| {
        let (text, text_key) = texts(content);
        (
            seq as i64,
            content.kind.as_str(),
            text,
            text_key,
            serde_json::to_string(content).unwrap_or_default(),
        )
    };
    Ok(match event {
        ConversationEvent::InboundMessageReceived {
            seq,
            telegram_message_id,
            content,
            sent_at,
            contact,
            ..
        } => {
            let (seq, kind, text, text_key, json) = message(*seq, content);
            let phone = shared_phone(content);
            Some(AddedMessage {
                message: NewMessage {
                    conversation: id,
                    seq,
                    workspace: workspace()?,
                    direction: "INBOUND",
                    kind,
                    text,
                    text_key,
                    content: json,
                    telegram_message_id: Some(*telegram_message_id),
                    delivery: "RECEIVED",
                    reply_to: None,
                    author: "buyer".to_string(),
                    sent_at: *sent_at,
                    position,
                },
                summary: Summary {
                    conversation: id,
                    seq,
                    unread: 1,
                    preview: content.preview(),
                    at: *sent_at,
                    position,
                },
                contact: (contact.is_some() || phone.is_some()).then(|| (contact.clone(), phone)),
            })
        }
        ConversationEvent::OutboundMessageQueued {
            seq,
            content,
            reply_to,
        } => {
            let (seq, kind, text, text_key, json) = message(*seq, content);
            let at = stored.recorded_at;
            Some(AddedMessage {
                message: NewMessage {
                    conversation: id,
                    seq,
                    workspace: workspace()?,
                    direction: "OUTBOUND",
                    kind,
                    text,
                    text_key,
                    content: json,
                    telegram_message_id: None,
                    delivery: "QUEUED",
                    reply_to: reply_to.map(|r| r as i64),
                    author: author(stored),
                    sent_at: at,
                    position,
                },
                summary: Summary {
                    conversation: id,
                    seq,
                    unread: 0,
                    preview: content.preview(),
                    at,
                    position,
                },
                contact: None,
            })
        }
        _ => None,
    })
}

/// Who the event's metadata names as its actor.
fn author(stored: &StoredEvent) -> String {
    stored
        .metadata()
        .ok()
        .and_then(|m| m.get(metadata_keys::ACTOR).cloned())
        .unwrap_or_default()
}

#[derive(sqlx::FromRow)]
struct ContactRow {
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
    phone: Option<String>,
}

/// What search matches in a conversation's contact: name, username and phone, lower-cased.
fn search_text(contact: &ChatContact, phone: Option<&str>) -> String {
    [
        contact.first_name.as_deref(),
        contact.last_name.as_deref(),
        contact.username.as_deref(),
        phone,
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
    .to_lowercase()
}

fn shared_phone(content: &MessageContent) -> Option<String> {
    (content.kind == MessageKind::Contact)
        .then(|| content.contact.as_ref().map(|c| c.phone_number.clone()))
        .flatten()
}

/// New contact details from a message: names as sent, a phone number the buyer shared;
/// what the message does not change stays as it was.
async fn change_contact(
    tx: &mut Tx,
    id: Uuid,
    (contact, phone): (Option<ChatContact>, Option<String>),
) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        let row: Option<ContactRow> = sqlx::query_as(
            "SELECT first_name, last_name, username, phone FROM inbox_conversations WHERE conversation_id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(ContactRow { first_name, last_name, username, phone: old_phone }) = row {
            let contact = contact.unwrap_or(ChatContact { first_name, last_name, username });
            let phone = phone.or(old_phone);
            sqlx::query(
                "UPDATE inbox_conversations SET first_name = $2, last_name = $3, username = $4, \
                 phone = $5, search_text = $6 WHERE conversation_id = $1",
            )
            .bind(id)
            .bind(&contact.first_name)
            .bind(&contact.last_name)
            .bind(&contact.username)
            .bind(&phone)
            .bind(search_text(&contact, phone.as_deref()))
            .execute(&mut *conn)
            .await?;
        }
    });
    Ok(())
}

async fn apply_one(
    tx: &mut Tx,
    id: Uuid,
    stored: &StoredEvent,
    event: ConversationEvent,
) -> Result<(), ProjectionError> {
    use ConversationEvent as E;
    let at = stored.recorded_at;
    let position = stored.position.global_position;
    on_tx!(tx, conn => {
        match event {
            E::ConversationStarted { workspace_id, bot_id, chat_id, contact } => {
                sqlx::query(
                    "INSERT INTO inbox_conversations (conversation_id, workspace_id, bot_id, chat_id, \
                     first_name, last_name, username, phone, closed, blocked, assignee, message_count, \
                     read_up_to, unread_count, last_message_preview, last_message_at, search_text, \
                     changed_position, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $8, NULL, 0, 0, 0, NULL, $9, $10, $11, $9) \
                     ON CONFLICT (conversation_id) DO NOTHING",
                )
                .bind(id)
                .bind(workspace_id.0)
                .bind(bot_id.0)
                .bind(chat_id)
                .bind(&contact.first_name)
                .bind(&contact.last_name)
                .bind(&contact.username)
                .bind(false)
                .bind(at)
                .bind(search_text(&contact, None))
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            // Written through `Pending` (see `InboxProjector::apply`).
            E::InboundMessageReceived { .. } | E::OutboundMessageQueued { .. } => {}
            E::InboundMessageEdited { telegram_message_id, content, edited_at, .. } => {
                let (text, text_key) = texts(&content);
                sqlx::query(
                    "UPDATE inbox_messages SET kind = $3, text = $4, text_key = $5, content = $6, edited_at = $7, \
                     position = $8 WHERE conversation_id = $1 AND telegram_message_id = $2 AND direction = 'INBOUND'",
                )
                .bind(id)
                .bind(telegram_message_id)
                .bind(content.kind.as_str())
                .bind(text)
                .bind(text_key)
                .bind(serde_json::to_string(&content).unwrap_or_default())
                .bind(edited_at)
                .bind(position)
                .execute(&mut *conn)
                .await?;
                touch!(&mut *conn, id, position);
            }
            E::OutboundMessageDelivered { seq, telegram_message_id } => {
                sqlx::query(
                    "UPDATE inbox_messages SET delivery = 'DELIVERED', telegram_message_id = $3, position = $4 \
                     WHERE conversation_id = $1 AND seq = $2",
                )
                .bind(id)
                .bind(seq as i64)
                .bind(telegram_message_id)
                .bind(position)
                .execute(&mut *conn)
                .await?;
                touch!(&mut *conn, id, position);
            }
            E::OutboundMessageFailed { seq, reason } => {
                sqlx::query(
                    "UPDATE inbox_messages SET delivery = 'FAILED', failure_reason = $3, position = $4 \
                     WHERE conversation_id = $1 AND seq = $2",
                )
                .bind(id)
                .bind(seq as i64)
                .bind(&reason)
                .bind(position)
                .execute(&mut *conn)
                .await?;
                touch!(&mut *conn, id, position);
            }
            E::ConversationRead { up_to } => {
                sqlx::query(
                    "UPDATE inbox_conversations SET read_up_to = $2, changed_position = $3, unread_count = \
                     (SELECT COUNT(*) FROM inbox_messages m WHERE m.conversation_id = $1 \
                      AND m.direction = 'INBOUND' AND m.seq > $2) WHERE conversation_id = $1",
                )
                .bind(id)
                .bind(up_to as i64)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            E::ConversationAssigned { assignee } => {
                sqlx::query("UPDATE inbox_conversations SET assignee = $2, changed_position = $3 WHERE conversation_id = $1")
                    .bind(id)
                    .bind(assignee.map(|a| a.0))
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            E::ConversationClosed | E::ConversationReopened { .. } => {
                let closed = matches!(event, E::ConversationClosed);
                sqlx::query("UPDATE inbox_conversations SET closed = $2, changed_position = $3 WHERE conversation_id = $1")
                    .bind(id)
                    .bind(closed)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
            E::BuyerBlockedBot { .. } | E::BuyerUnblockedBot => {
                let blocked = matches!(event, E::BuyerBlockedBot { .. });
                sqlx::query("UPDATE inbox_conversations SET blocked = $2, changed_position = $3 WHERE conversation_id = $1")
                    .bind(id)
                    .bind(blocked)
                    .bind(position)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    });
    Ok(())
}

fn texts(content: &MessageContent) -> (Option<String>, Option<String>) {
    let text = content.text.clone();
    let key = text.as_ref().map(|t| t.to_lowercase());
    (text, key)
}
