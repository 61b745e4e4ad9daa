//! The Telegram delivery reactor's own state, kept by a projector so it shares the log's
//! order and checkpointing: where each conversation's chat is, and the outbox of messages
//! queued by operators and not yet delivered or failed. A row enters the outbox with its
//! `OutboundMessageQueued` event and leaves with the delivery's or failure's event, so a
//! crash anywhere in between leaves the message in the outbox: at-least-once.

use cartie_domain::inbox::{Conversation, ConversationEvent, MessageContent};
use cartie_store::{on_pool, on_tx, Database, StoredEvent, Tx};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use uuid::Uuid;

use crate::runner::{ProjectionError, Projector};

#[derive(Debug, Default, Clone, Copy)]
pub struct TelegramDeliveryProjector;

impl TelegramDeliveryProjector {
    pub const NAME: &'static str = "telegram-delivery";
}

#[async_trait::async_trait]
impl Projector for TelegramDeliveryProjector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Conversation::TYPE])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["telegram_outbox", "telegram_delivery_chats"]
    }

    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        use ConversationEvent as E;
        for stored in events
            .iter()
            .filter(|e| e.aggregate_type == Conversation::TYPE)
        {
            // Only these four matter here; the rest are skipped before decoding.
            if !matches!(
                stored.event_type.as_str(),
                "ConversationStarted"
                    | "OutboundMessageQueued"
                    | "OutboundMessageDelivered"
                    | "OutboundMessageFailed"
            ) {
                continue;
            }
            let id: Uuid = stored
                .aggregate_id
                .parse()
                .map_err(|e| ProjectionError::undecodable(stored, e))?;
            let event: ConversationEvent = stored
                .payload()
                .map_err(|e| ProjectionError::undecodable(stored, e))?;
            on_tx!(&mut *tx, conn => {
                match event {
                    E::ConversationStarted { workspace_id, bot_id, chat_id, .. } => {
                        sqlx::query(
                            "INSERT INTO telegram_delivery_chats (conversation_id, workspace_id, bot_id, chat_id) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id) DO NOTHING",
                        )
                        .bind(id)
                        .bind(workspace_id.0)
                        .bind(bot_id.0)
                        .bind(chat_id)
                        .execute(&mut *conn)
                        .await?;
                    }
                    E::OutboundMessageQueued { seq, content, reply_to } => {
                        let content = serde_json::to_string(&content)
                            .map_err(|e| ProjectionError::undecodable(stored, e))?;
                        sqlx::query(
                            "INSERT INTO telegram_outbox (conversation_id, seq, workspace_id, bot_id, chat_id, content, \
                             reply_to, queued_position, attempts, next_attempt_at) \
                             SELECT c.conversation_id, $2, c.workspace_id, c.bot_id, c.chat_id, $3, $4, $5, 0, $6 \
                             FROM telegram_delivery_chats c WHERE c.conversation_id = $1 \
                             ON CONFLICT (conversation_id, seq) DO NOTHING",
                        )
                        .bind(id)
                        .bind(seq as i64)
                        .bind(content)
                        .bind(reply_to.map(|r| r as i64))
                        .bind(stored.position.global_position)
                        .bind(stored.recorded_at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    E::OutboundMessageDelivered { seq, .. } | E::OutboundMessageFailed { seq, .. } => {
                        sqlx::query("DELETE FROM telegram_outbox WHERE conversation_id = $1 AND seq = $2")
                            .bind(id)
                            .bind(seq as i64)
                            .execute(&mut *conn)
                            .await?;
                    }
                    _ => {}
                }
            });
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        on_tx!(tx, conn => {
            sqlx::query("DELETE FROM telegram_outbox").execute(&mut *conn).await?;
            sqlx::query("DELETE FROM telegram_delivery_chats").execute(&mut *conn).await?;
        });
        Ok(())
    }
}

/// One message waiting to go out.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub conversation_id: Uuid,
    pub seq: i64,
    pub workspace_id: Uuid,
    pub bot_id: Uuid,
    pub chat_id: i64,
    pub content: MessageContent,
    /// The Telegram id of the message this one answers, when the Inbox knows it.
    pub reply_to_telegram_id: Option<i64>,
    pub attempts: i64,
    /// Telegram accepted it already (before a restart); only the record is missing.
    pub sent_message_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    conversation_id: Uuid,
    seq: i64,
    workspace_id: Uuid,
    bot_id: Uuid,
    chat_id: i64,
    content: String,
    reply_to_telegram_id: Option<i64>,
    attempts: i64,
    sent_message_id: Option<i64>,
}

/// The first waiting message of each conversation, if due by `now`, oldest first. One per
/// conversation keeps a conversation's messages in order and lets no busy chat crowd out
/// the others. Messages of a disabled bot wait; those of a bot this workspace has not
/// registered are offered too, for the reactor to record that they cannot go out.
pub async fn due(
    db: &Database,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OutboxEntry>, sqlx::Error> {
    let rows: Vec<OutboxRow> = on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT o.conversation_id, o.seq, o.workspace_id, o.bot_id, o.chat_id, o.content, \
             (SELECT m.telegram_message_id FROM inbox_messages m \
              WHERE m.conversation_id = o.conversation_id AND m.seq = o.reply_to) AS reply_to_telegram_id, \
             o.attempts, o.sent_message_id \
             FROM telegram_outbox o LEFT JOIN telegram_bots b \
             ON b.bot_id = o.bot_id AND b.workspace_id = o.workspace_id \
             WHERE o.next_attempt_at <= $1 AND (b.enabled IS NULL OR b.enabled = $2) \
             AND o.seq = (SELECT MIN(f.seq) FROM telegram_outbox f WHERE f.conversation_id = o.conversation_id) \
             ORDER BY o.queued_position LIMIT $3",
        )
        .bind(now)
        .bind(true)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(|r| {
            let content =
                serde_json::from_str(&r.content).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok(OutboxEntry {
                conversation_id: r.conversation_id,
                seq: r.seq,
                workspace_id: r.workspace_id,
                bot_id: r.bot_id,
                chat_id: r.chat_id,
                content,
                reply_to_telegram_id: r.reply_to_telegram_id,
                attempts: r.attempts,
                sent_message_id: r.sent_message_id,
            })
        })
        .collect()
}

/// When the next message that [`due`] would offer falls due, if any.
pub async fn next_due_at(db: &Database) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT MIN(o.next_attempt_at) FROM telegram_outbox o LEFT JOIN telegram_bots b \
             ON b.bot_id = o.bot_id AND b.workspace_id = o.workspace_id \
             WHERE b.enabled IS NULL OR b.enabled = $1",
        )
        .bind(true)
        .fetch_one(pool)
        .await
    })
}

/// Puts a message off until `at`, counting a failed attempt when `failed`.
pub async fn postpone(
    db: &Database,
    conversation: Uuid,
    seq: i64,
    at: DateTime<Utc>,
    failed: bool,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "UPDATE telegram_outbox SET next_attempt_at = $3, attempts = attempts + $4, \
             last_error = COALESCE($5, last_error) WHERE conversation_id = $1 AND seq = $2",
        )
        .bind(conversation)
        .bind(seq)
        .bind(at)
        .bind(i64::from(failed))
        .bind(error)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await
}

/// Notes that Telegram accepted the message, before the delivery is recorded in the log.
pub async fn mark_sent(
    db: &Database,
    conversation: Uuid,
    seq: i64,
    telegram_message_id: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "UPDATE telegram_outbox SET sent_message_id = $3 WHERE conversation_id = $1 AND seq = $2",
        )
        .bind(conversation)
        .bind(seq)
        .bind(telegram_message_id)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await
}

/// Drops a message whose outcome the log already holds (recorded by an earlier run).
pub async fn forget(db: &Database, conversation: Uuid, seq: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query("DELETE FROM telegram_outbox WHERE conversation_id = $1 AND seq = $2")
            .bind(conversation)
            .bind(seq)
            .execute(&mut *conn)
            .await?;
    });
    tx.commit().await
}
