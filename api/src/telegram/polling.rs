//! Long polling for POLLING bots: one task per enabled bot asks Telegram for updates after
//! the last one recorded. The offset moves only past updates that are in the log, so a
//! restart neither loses an update nor records one twice (a repeat is recognised by its
//! update id anyway).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cartie_projections::bots::{self, BotCredentials};
use cartie_telegram::{read_json, TelegramError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::ingest::ingest;
use crate::app::Services;

/// How often the set of polling bots is read again even without a change to bots.
const RESCAN: Duration = Duration::from_secs(30);
/// Updates per `getUpdates` (Telegram's maximum).
const BATCH: i64 = 100;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Keeps one polling task per enabled POLLING bot until `stop`.
pub async fn run(services: Arc<Services>, mut stop: watch::Receiver<bool>) {
    let mut bots_changed = services.bots.clone();
    let mut running: HashMap<Uuid, (i64, JoinHandle<()>)> = HashMap::new();
    loop {
        match bots::polling(&services.db).await {
            Ok(wanted) => {
                running.retain(|id, (version, task)| {
                    let keep = !task.is_finished()
                        && wanted
                            .iter()
                            .any(|b| b.bot_id == *id && b.version == *version);
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for bot in wanted {
                    running.entry(bot.bot_id).or_insert_with(|| {
                        tracing::info!(bot = %bot.bot_id, "long polling starts");
                        (bot.version, tokio::spawn(poll(services.clone(), bot)))
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the polling bots"),
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = bots_changed.changed() => {}
            _ = tokio::time::sleep(RESCAN) => {}
        }
    }
    for (_, (_, task)) in running {
        task.abort();
    }
}

async fn poll(services: Arc<Services>, bot: BotCredentials) {
    let mut backoff = Duration::from_secs(1);
    let opened = loop {
        match services.open_bot(&bot) {
            Ok(opened) => break opened,
            Err(error) => {
                tracing::error!(bot = %bot.bot_id, %error, "cannot poll");
                tokio::time::sleep(MAX_BACKOFF).await;
            }
        }
    };
    let mut offset = loop {
        match bots::last_update_id(&services.db, bot.bot_id).await {
            Ok(last) => break last.map(|id| id + 1),
            Err(error) => {
                tracing::warn!(bot = %bot.bot_id, %error, "cannot read the polling offset");
                tokio::time::sleep(backoff).await;
            }
        }
    };
    loop {
        match opened
            .api
            .get_updates(offset, services.telegram.poll_timeout, BATCH)
            .await
        {
            Ok(updates) => {
                backoff = Duration::from_secs(1);
                for raw in updates {
                    let inbound = match read_json(&raw) {
                        Ok(inbound) => inbound,
                        Err(error) => {
                            // Not an update at all: nothing to record, but step past it.
                            tracing::warn!(bot = %bot.bot_id, %error, "getUpdates answered a malformed update");
                            if let Some(id) = raw.get("update_id").and_then(|v| v.as_i64()) {
                                offset = Some(id + 1);
                            }
                            continue;
                        }
                    };
                    let update_id = inbound.update_id();
                    // Never skip an update: retry storage until it takes it.
                    let mut retry = Duration::from_millis(200);
                    while let Err(error) = ingest(&services, &bot, inbound.clone()).await {
                        tracing::warn!(bot = %bot.bot_id, update_id, %error, "retrying an update");
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(MAX_BACKOFF);
                    }
                    offset = Some(update_id + 1);
                }
                // A restart resumes after the last update written down: write it now.
                if let Err(error) = services.update_marks.flush(&services.db).await {
                    tracing::warn!(bot = %bot.bot_id, %error, "cannot write the polling offset");
                }
            }
            Err(TelegramError::RetryAfter(seconds)) => {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
            }
            Err(error) => {
                if error == TelegramError::Unauthorized {
                    tracing::error!(bot = %bot.bot_id, "Telegram rejects the bot's token; rotate it");
                } else {
                    tracing::warn!(bot = %bot.bot_id, %error, "getUpdates failed");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
