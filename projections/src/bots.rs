//! The Bots read model: each workspace's Telegram bots, their mode and status. The token
//! and webhook secret are kept sealed, for the adapters to open; queries for people never
//! select them.

use cartie_domain::bot::{TelegramBot, TelegramBotEvent};
use cartie_store::{on_pool, on_tx, Database, StoredEvent, Tx};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use uuid::Uuid;

use crate::runner::{ProjectionError, Projector};

/// A bot as operators see it, with what the adapters know of its traffic.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BotRow {
    pub bot_id: Uuid,
    pub workspace_id: Uuid,
    pub telegram_id: i64,
    pub username: String,
    pub name: String,
    pub mode: String,
    pub enabled: bool,
    pub webhook_url: Option<String>,
    pub webhook_set_at: Option<DateTime<Utc>>,
    /// JSON array of `{command, description}`.
    pub commands: String,
    pub version: i64,
    pub registered_at: DateTime<Utc>,
    pub last_update_at: Option<DateTime<Utc>>,
    /// Outbound messages queued and not yet delivered or failed.
    pub backlog: i64,
}

/// What an adapter needs to act for a bot. The secrets are still sealed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BotCredentials {
    pub bot_id: Uuid,
    pub workspace_id: Uuid,
    pub mode: String,
    pub enabled: bool,
    pub token_sealed: String,
    pub webhook_secret_sealed: Option<String>,
    pub version: i64,
}

const ROW_SELECT: &str = "SELECT b.bot_id, b.workspace_id, b.telegram_id, b.username, b.name, b.mode, \
    b.enabled, b.webhook_url, b.webhook_set_at, b.commands, b.version, b.registered_at, \
    u.last_update_at, (SELECT COUNT(*) FROM telegram_outbox o WHERE o.bot_id = b.bot_id) AS backlog \
    FROM telegram_bots b LEFT JOIN telegram_bot_updates u ON u.bot_id = b.bot_id";

const CREDENTIALS_SELECT: &str = "SELECT bot_id, workspace_id, mode, enabled, token_sealed, \
    webhook_secret_sealed, version FROM telegram_bots";

/// The bots of a workspace, by username.
pub async fn list(db: &Database, workspace: Uuid) -> Result<Vec<BotRow>, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_as(&format!("{ROW_SELECT} WHERE b.workspace_id = $1 ORDER BY b.username"))
            .bind(workspace)
            .fetch_all(pool)
            .await
    })
}

/// One bot of a workspace.
pub async fn get(db: &Database, workspace: Uuid, bot: Uuid) -> Result<Option<BotRow>, sqlx::Error> {
    // By the primary key alone, the workspace checked on the row (ADR 0019).
    let row: Option<BotRow> = on_pool!(db, pool => {
        sqlx::query_as(&format!("{ROW_SELECT} WHERE b.bot_id = $1"))
            .bind(bot)
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.filter(|r| r.workspace_id == workspace))
}

/// A bot's sealed credentials, whichever workspace it belongs to (for adapters).
pub async fn credentials(db: &Database, bot: Uuid) -> Result<Option<BotCredentials>, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_as(&format!("{CREDENTIALS_SELECT} WHERE bot_id = $1"))
            .bind(bot)
            .fetch_optional(pool)
            .await
    })
}

/// Every enabled bot in POLLING mode.
pub async fn polling(db: &Database) -> Result<Vec<BotCredentials>, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_as(&format!("{CREDENTIALS_SELECT} WHERE mode = 'POLLING' AND enabled = $1 ORDER BY bot_id"))
            .bind(true)
            .fetch_all(pool)
            .await
    })
}

/// The last update a bot received, if any.
pub async fn last_update_id(db: &Database, bot: Uuid) -> Result<Option<i64>, sqlx::Error> {
    on_pool!(db, pool => {
        sqlx::query_scalar("SELECT last_update_id FROM telegram_bot_updates WHERE bot_id = $1")
            .bind(bot)
            .fetch_optional(pool)
            .await
    })
}

/// Records that a bot's updates up to `update_id` are handled (never moves back).
pub async fn record_update(
    db: &Database,
    bot: Uuid,
    update_id: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "INSERT INTO telegram_bot_updates (bot_id, last_update_id, last_update_at) VALUES ($1, $2, $3) \
             ON CONFLICT (bot_id) DO UPDATE SET last_update_at = excluded.last_update_at, \
             last_update_id = CASE WHEN excluded.last_update_id > telegram_bot_updates.last_update_id \
             THEN excluded.last_update_id ELSE telegram_bot_updates.last_update_id END",
        )
        .bind(bot)
        .bind(update_id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await
}

/// Projects bot events into `telegram_bots`. Updates apply only to a row at an older
/// version, so an event applied twice changes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct BotsProjector;

impl BotsProjector {
    pub const NAME: &'static str = "bots";
}

#[async_trait::async_trait]
impl Projector for BotsProjector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[TelegramBot::TYPE])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["telegram_bots"]
    }

    async fn apply(&self, tx: &mut Tx, events: &[StoredEvent]) -> Result<(), ProjectionError> {
        use TelegramBotEvent as E;
        for stored in events
            .iter()
            .filter(|e| e.aggregate_type == TelegramBot::TYPE)
        {
            let id: Uuid = stored
                .aggregate_id
                .parse()
                .map_err(|e| ProjectionError::undecodable(stored, e))?;
            let event: TelegramBotEvent = stored
                .payload()
                .map_err(|e| ProjectionError::undecodable(stored, e))?;
            let (at, version) = (stored.recorded_at, stored.sequence);
            on_tx!(&mut *tx, conn, DB => {
                if let E::BotRegistered { workspace_id, telegram_id, username, name, token, mode, webhook_secret } = event {
                    sqlx::query(
                        "INSERT INTO telegram_bots (bot_id, workspace_id, telegram_id, username, name, mode, enabled, \
                         token_sealed, webhook_secret_sealed, webhook_url, webhook_set_at, commands, version, \
                         registered_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, '[]', $10, $11, $11) \
                         ON CONFLICT (bot_id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(workspace_id.0)
                    .bind(telegram_id)
                    .bind(username)
                    .bind(name)
                    .bind(mode.as_str())
                    .bind(true)
                    .bind(token.0)
                    .bind(webhook_secret.map(|s| s.0))
                    .bind(version)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                    continue;
                }
                let mut q = sqlx::QueryBuilder::<DB>::new("UPDATE telegram_bots SET ");
                match event {
                    E::BotRegistered { .. } => unreachable!("handled above"),
                    E::BotDeliveryModeChanged { mode, webhook_secret } => {
                        q.push("mode = ").push_bind(mode.as_str());
                        q.push(", webhook_secret_sealed = ").push_bind(webhook_secret.map(|s| s.0));
                        q.push(", webhook_url = NULL, webhook_set_at = NULL");
                    }
                    E::BotWebhookSet { url, at } => {
                        q.push("webhook_url = ").push_bind(url);
                        q.push(", webhook_set_at = ").push_bind(at);
                    }
                    E::BotDisabled => {
                        q.push("enabled = ").push_bind(false);
                    }
                    E::BotEnabled => {
                        q.push("enabled = ").push_bind(true);
                    }
                    E::BotMenuSet { commands } => {
                        let json = serde_json::to_string(&commands)
                            .map_err(|e| ProjectionError::undecodable(stored, e))?;
                        q.push("commands = ").push_bind(json);
                    }
                    E::BotTokenRotated { token, webhook_secret } => {
                        q.push("token_sealed = ").push_bind(token.0);
                        q.push(", webhook_secret_sealed = ").push_bind(webhook_secret.map(|s| s.0));
                        q.push(", webhook_url = NULL, webhook_set_at = NULL");
                    }
                }
                q.push(", version = ").push_bind(version);
                q.push(", updated_at = ").push_bind(at);
                q.push(" WHERE bot_id = ").push_bind(id);
                q.push(" AND version < ").push_bind(version);
                q.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        on_tx!(tx, conn => {
            sqlx::query("DELETE FROM telegram_bots").execute(&mut *conn).await?;
        });
        Ok(())
    }
}
