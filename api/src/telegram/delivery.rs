//! The delivery reactor: sends the outbox (kept by the `telegram-delivery` projection from
//! the log) with the Bot API, and records each outcome by command.
//!
//! Pacing: at most `bot_messages_per_second` per bot, one message per
//! `chat_interval` per chat, one message of a conversation at a time and in order;
//! `retry_after` postpones only the chat it came for. A message leaves the outbox only when
//! its delivery or failure is in the log, so a crash never loses one (it may send one
//! twice if it stops between Telegram's answer and the record: at-least-once).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cartie_domain::inbox::{ConversationCommand, ConversationError};
use cartie_domain::{Actor, Command, CommandContext, WorkspaceId};
use cartie_projections::bots;
use cartie_projections::telegram_delivery::{self, OutboxEntry};
use cartie_store::CommandError;
use cartie_telegram::TelegramError;
use chrono::Utc;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{watch, Notify, Semaphore};
use uuid::Uuid;

use crate::app::Services;

/// Sends in flight at once, over all bots.
const MAX_IN_FLIGHT: usize = 64;
/// Rows read per pass (one per conversation).
const PASS: i64 = 1000;
/// Transient failures (network, Telegram down, token rejected) before a message is
/// recorded as failed.
const MAX_ATTEMPTS: i64 = 12;
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// The longest the reactor sleeps without looking at the outbox.
const IDLE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Pacing {
    /// Conversations with a send in flight.
    in_flight: HashSet<Uuid>,
    /// When each (bot, chat) may receive its next message.
    chat_ready_at: HashMap<(Uuid, i64), Instant>,
    bots: HashMap<Uuid, Arc<DefaultDirectRateLimiter>>,
}

/// Runs until `stop`.
pub async fn run(services: Arc<Services>, mut stop: watch::Receiver<bool>) {
    let mut outbox_changed = services.telegram_delivery.clone();
    let pacing = Arc::new(Mutex::new(Pacing::default()));
    let finished = Arc::new(Notify::new());
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // Sends in flight end with the reactor: a stop is a crash as far as they can tell,
    // and the outbox still holds their messages.
    let mut sends = tokio::task::JoinSet::new();
    // Evenly spaced, with room for one send that comes late (a pass reads the outbox
    // first) to catch up: a full bucket would let twice the rate out in the first second,
    // none would lose every late slot.
    let per_bot = Quota::per_second(
        NonZeroU32::new(services.telegram.bot_messages_per_second.max(1)).expect("at least one"),
    )
    .allow_burst(NonZeroU32::new(2).expect("two"));
    loop {
        let mut wake_in = IDLE;
        match telegram_delivery::due(&services.db, Utc::now(), PASS).await {
            Ok(entries) => {
                let now = Instant::now();
                for entry in entries {
                    let chat = (entry.bot_id, entry.chat_id);
                    {
                        let mut p = pacing.lock().expect("not poisoned");
                        if p.in_flight.contains(&entry.conversation_id) {
                            continue;
                        }
                        if let Some(ready) = p.chat_ready_at.get(&chat).copied() {
                            if ready > now {
                                wake_in = wake_in.min(ready - now);
                                continue;
                            }
                        }
                        let limiter = p
                            .bots
                            .entry(entry.bot_id)
                            .or_insert_with(|| Arc::new(RateLimiter::direct(per_bot)))
                            .clone();
                        if let Err(not_until) = limiter.check() {
                            let wait = not_until.wait_time_from(DefaultClock::default().now());
                            wake_in = wake_in.min(wait.max(Duration::from_millis(1)));
                            continue;
                        }
                        p.in_flight.insert(entry.conversation_id);
                        p.chat_ready_at
                            .insert(chat, now + services.telegram.chat_interval);
                    }
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        return;
                    };
                    let (services, pacing, finished) =
                        (services.clone(), pacing.clone(), finished.clone());
                    sends.spawn(async move {
                        let conversation = entry.conversation_id;
                        let chat = (entry.bot_id, entry.chat_id);
                        let hold_chat_until = deliver(&services, entry).await;
                        let mut p = pacing.lock().expect("not poisoned");
                        p.in_flight.remove(&conversation);
                        if let Some(until) = hold_chat_until {
                            p.chat_ready_at.insert(chat, until);
                        }
                        // Forget chats long idle, so the map stays small.
                        if p.chat_ready_at.len() > 100_000 {
                            let now = Instant::now();
                            p.chat_ready_at.retain(|_, ready| *ready > now);
                        }
                        drop(p);
                        drop(permit);
                        finished.notify_one();
                    });
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the outbox");
                wake_in = Duration::from_secs(1);
            }
        }
        if wake_in == IDLE {
            // Nothing held back by pacing: sleep until the next postponed message is due.
            if let Ok(Some(next)) = telegram_delivery::next_due_at(&services.db).await {
                let until = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                wake_in = wake_in.min(until.max(Duration::from_millis(10)));
            }
        }
        while sends.try_join_next().is_some() {}
        tokio::select! {
            _ = stop.changed() => break,
            _ = outbox_changed.changed() => {}
            _ = finished.notified() => {}
            _ = tokio::time::sleep(wake_in) => {}
        }
    }
}

fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 10) as u32;
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// Sends one message and records the outcome. Answers how long the chat must then wait
/// beyond the usual interval (Telegram's `retry_after`).
async fn deliver(services: &Services, entry: OutboxEntry) -> Option<Instant> {
    let db = &services.db;
    let bot = match bots::credentials(db, entry.bot_id).await {
        // Only the conversation's own workspace's bot may speak in it: a conversation
        // naming another workspace's bot never reaches that bot's token.
        Ok(Some(bot)) if bot.workspace_id == entry.workspace_id => bot,
        Ok(_) => {
            record_failure(
                services,
                &entry,
                "the bot is not registered in this workspace",
                false,
            )
            .await;
            return None;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the bot of a queued message");
            postpone(services, &entry, Duration::from_secs(5), false, None).await;
            return None;
        }
    };
    if let Some(message_id) = entry.sent_message_id {
        record_delivery(services, &entry, message_id).await;
        return None;
    }
    let opened = match services.open_bot(&bot) {
        Ok(opened) => opened,
        Err(error) => {
            tracing::error!(bot = %entry.bot_id, %error, "cannot deliver");
            postpone(
                services,
                &entry,
                Duration::from_secs(60),
                true,
                Some(&error.to_string()),
            )
            .await;
            return None;
        }
    };
    let sent = opened
        .api
        .send(entry.chat_id, &entry.content, entry.reply_to_telegram_id)
        .await;
    match sent {
        Ok(message_id) => {
            metrics::counter!("cartie_telegram_deliveries_total", "outcome" => "delivered")
                .increment(1);
            if let Err(error) =
                telegram_delivery::mark_sent(db, entry.conversation_id, entry.seq, message_id).await
            {
                tracing::warn!(%error, "cannot note a sent message");
            }
            record_delivery(services, &entry, message_id).await;
            None
        }
        Err(TelegramError::RetryAfter(seconds)) => {
            metrics::counter!("cartie_telegram_deliveries_total", "outcome" => "retry_after")
                .increment(1);
            let wait = Duration::from_secs(seconds.max(1));
            postpone(services, &entry, wait, false, Some("flood control")).await;
            Some(Instant::now() + wait)
        }
        Err(error) if error.is_blocked() => {
            metrics::counter!("cartie_telegram_deliveries_total", "outcome" => "blocked")
                .increment(1);
            record_failure(services, &entry, "the buyer blocked the bot", true).await;
            None
        }
        Err(TelegramError::Refused { description, .. }) => {
            metrics::counter!("cartie_telegram_deliveries_total", "outcome" => "refused")
                .increment(1);
            record_failure(services, &entry, &description, false).await;
            None
        }
        Err(error) => {
            metrics::counter!("cartie_telegram_deliveries_total", "outcome" => "unavailable")
                .increment(1);
            let message = error.to_string();
            if entry.attempts + 1 >= MAX_ATTEMPTS {
                record_failure(services, &entry, &message, false).await;
            } else {
                postpone(
                    services,
                    &entry,
                    backoff(entry.attempts),
                    true,
                    Some(&message),
                )
                .await;
            }
            None
        }
    }
}

fn context(entry: &OutboxEntry) -> CommandContext {
    CommandContext::new(
        WorkspaceId(entry.workspace_id),
        Actor::Bot(entry.bot_id),
        Utc::now(),
    )
}

async fn command(
    services: &Services,
    entry: &OutboxEntry,
    body: ConversationCommand,
) -> Result<(), CommandError<ConversationError>> {
    services
        .conversations
        .execute(
            &entry.conversation_id.to_string(),
            Command::new(context(entry), body),
        )
        .await
        .map(|_| ())
}

/// After the log holds the outcome the row is ours to drop (the projection would drop it
/// too, a moment later); when the log already held it, likewise.
async fn settled(
    services: &Services,
    entry: &OutboxEntry,
    result: Result<(), CommandError<ConversationError>>,
) {
    match result {
        Ok(()) | Err(CommandError::Rejected(_)) => {
            if let Err(error) =
                telegram_delivery::forget(&services.db, entry.conversation_id, entry.seq).await
            {
                tracing::warn!(%error, "cannot drop a settled message from the outbox");
            }
        }
        Err(error) => {
            // The outcome is not in the log: the message stays and is tried again.
            tracing::warn!(%error, "cannot record a delivery outcome");
            postpone(services, entry, Duration::from_secs(1), false, None).await;
        }
    }
}

async fn record_delivery(services: &Services, entry: &OutboxEntry, telegram_message_id: i64) {
    let result = command(
        services,
        entry,
        ConversationCommand::RecordDelivery {
            seq: entry.seq as u64,
            telegram_message_id,
        },
    )
    .await;
    settled(services, entry, result).await;
}

async fn record_failure(services: &Services, entry: &OutboxEntry, reason: &str, blocked: bool) {
    let result = command(
        services,
        entry,
        ConversationCommand::RecordDeliveryFailure {
            seq: entry.seq as u64,
            reason: reason.to_string(),
        },
    )
    .await;
    if blocked && result.is_ok() {
        if let Err(error) = command(
            services,
            entry,
            ConversationCommand::RecordBotBlocked { update_id: None },
        )
        .await
        {
            tracing::warn!(%error, "cannot record that the buyer blocked the bot");
        }
    }
    settled(services, entry, result).await;
}

async fn postpone(
    services: &Services,
    entry: &OutboxEntry,
    by: Duration,
    failed: bool,
    error: Option<&str>,
) {
    let at = Utc::now() + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::seconds(1));
    if let Err(e) = telegram_delivery::postpone(
        &services.db,
        entry.conversation_id,
        entry.seq,
        at,
        failed,
        error,
    )
    .await
    {
        tracing::warn!(error = %e, "cannot postpone a message");
    }
}
