use cartie_domain::context::metadata_keys;
use cartie_domain::inbox::{
    ChatContact, Conversation, ConversationEvent, MessageContent, MessageKind,
};
use cartie_store::{on_tx, StoredEvent, Tx};
use cqrs_es::Aggregate;
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

/// Inserts a message once (by its number in the conversation).
macro_rules! insert_message {
    ($conn:expr, $conversation:expr, $seq:expr, $workspace:expr, $direction:expr, $content:expr,
     $telegram_message_id:expr, $delivery:expr, $reply_to:expr, $author:expr, $sent_at:expr, $position:expr) => {{
        let content: &MessageContent = $content;
        let (text, text_key) = texts(content);
        sqlx::query(
            "INSERT INTO inbox_messages (conversation_id, seq, workspace_id, direction, kind, text, text_key, \
             content, telegram_message_id, delivery, failure_reason, reply_to, author, sent_at, edited_at, position) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $12, $13, NULL, $14) \
             ON CONFLICT (conversation_id, seq) DO NOTHING",
        )
        .bind($conversation)
        .bind($seq as i64)
        .bind($workspace)
        .bind($direction)
        .bind(content.kind.as_str())
        .bind(text)
        .bind(text_key)
        .bind(serde_json::to_string(content).unwrap_or_default())
        .bind($telegram_message_id)
        .bind($delivery)
        .bind($reply_to.map(|r: u64| r as i64))
        .bind($author)
        .bind($sent_at)
        .bind($position)
        .execute($conn)
        .await?
    }};
}

/// Projects conversation events into `inbox_conversations` and `inbox_messages`.
///
/// Each event is applied with its own statements; a message is inserted once (by its
/// number), and counters move only for a message the row has not counted yet, so applying
/// an event twice changes nothing.
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

    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
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
            apply_one(tx, id, event, payload).await?;
        }
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

async fn apply_one(
    tx: &mut Tx,
    id: Uuid,
    stored: &StoredEvent,
    event: ConversationEvent,
) -> Result<(), ProjectionError> {
    use ConversationEvent as E;
    let at = stored.recorded_at;
    let position = stored.position.global_position;
    let workspace = stored.workspace_id();
    let author = stored
        .metadata()
        .ok()
        .and_then(|m| m.get(metadata_keys::ACTOR).cloned())
        .unwrap_or_default();
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
            E::InboundMessageReceived { seq, telegram_message_id, content, sent_at, contact, .. } => {
                let workspace = workspace.ok_or_else(|| ProjectionError::undecodable(stored, "no workspace in metadata"))?;
                insert_message!(&mut *conn, id, seq, workspace, "INBOUND", &content, Some(telegram_message_id), "RECEIVED", None::<u64>, "buyer", sent_at, position);
                sqlx::query(
                    "UPDATE inbox_conversations SET message_count = $2, unread_count = unread_count + 1, \
                     last_message_preview = $3, last_message_at = $4, changed_position = $5 \
                     WHERE conversation_id = $1 AND message_count < $2",
                )
                .bind(id)
                .bind(seq as i64)
                .bind(content.preview())
                .bind(sent_at)
                .bind(position)
                .execute(&mut *conn)
                .await?;
                let phone = shared_phone(&content);
                if contact.is_some() || phone.is_some() {
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
                }
            }
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
            E::OutboundMessageQueued { seq, content, reply_to } => {
                let workspace = workspace.ok_or_else(|| ProjectionError::undecodable(stored, "no workspace in metadata"))?;
                insert_message!(&mut *conn, id, seq, workspace, "OUTBOUND", &content, None::<i64>, "QUEUED", reply_to, &author, at, position);
                sqlx::query(
                    "UPDATE inbox_conversations SET message_count = $2, last_message_preview = $3, \
                     last_message_at = $4, changed_position = $5 WHERE conversation_id = $1 AND message_count < $2",
                )
                .bind(id)
                .bind(seq as i64)
                .bind(content.preview())
                .bind(at)
                .bind(position)
                .execute(&mut *conn)
                .await?;
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
