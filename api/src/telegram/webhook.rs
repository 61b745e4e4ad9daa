//! `POST /telegram/{bot_id}/webhook`: Telegram delivers a WEBHOOK bot's updates here, with
//! the bot's secret token in `X-Telegram-Bot-Api-Secret-Token`.
//!
//! Answers: 404 for an unknown, disabled or polling bot; 401 when the secret token is
//! missing or wrong; 400 for a body that is no update (nothing recorded); 413 over 1 MiB
//! (the router's limit); 500 when the update could not be stored, so Telegram retries;
//! else 200 once the update is in the log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cartie_projections::bots::{self, BotCredentials};
use cartie_telegram::read_json;
use secrecy::ExposeSecret;
use serde_json::json;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::ingest::{ingest, Ingested};
use crate::app::Services;

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "ok": false, "description": message }))).into_response()
}

/// Why the webhook does not take a request for a bot.
enum Refusal {
    NoSuchBot,
    WrongSecret,
    Unavailable,
}

/// Whether `bot` takes a request carrying `given` as its secret token.
fn admits(services: &Services, bot: &BotCredentials, given: &[u8]) -> Result<(), Refusal> {
    if !(bot.enabled && bot.mode == "WEBHOOK") {
        return Err(Refusal::NoSuchBot);
    }
    let opened = services.open_bot(bot).map_err(|error| {
        tracing::error!(bot = %bot.bot_id, %error, "webhook: cannot open the bot's secrets");
        Refusal::Unavailable
    })?;
    let expected = opened
        .webhook_secret
        .as_ref()
        .map(|s| s.expose_secret().as_bytes())
        .unwrap_or_default();
    if expected.is_empty() || !bool::from(given.ct_eq(expected)) {
        return Err(Refusal::WrongSecret);
    }
    Ok(())
}

/// The bot the request is for, once it is admitted: from what this process read within
/// the last second, else from the read model.
async fn admitted(
    services: &Services,
    bot_id: Uuid,
    given: &[u8],
) -> Result<BotCredentials, Refusal> {
    if let Some(bot) = services.webhook_bots.get(&bot_id) {
        if admits(services, &bot, given).is_ok() {
            return Ok(bot);
        }
    }
    let read = services.webhook_bots.start_read();
    let bot = match bots::credentials(&services.db, bot_id).await {
        Ok(Some(bot)) => bot,
        Ok(None) => return Err(Refusal::NoSuchBot),
        Err(error) => {
            tracing::error!(%error, "webhook: bot lookup failed");
            return Err(Refusal::Unavailable);
        }
    };
    admits(services, &bot, given)?;
    services.webhook_bots.keep(read, bot_id, bot.clone());
    Ok(bot)
}

pub async fn webhook(
    State(services): State<Arc<Services>>,
    Path(bot_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(bot_id) = bot_id.parse::<Uuid>() else {
        return refuse(StatusCode::NOT_FOUND, "no such bot");
    };
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let bot = match admitted(&services, bot_id, given).await {
        Ok(bot) => bot,
        Err(Refusal::NoSuchBot) => return refuse(StatusCode::NOT_FOUND, "no such bot"),
        Err(Refusal::WrongSecret) => return refuse(StatusCode::UNAUTHORIZED, "wrong secret token"),
        Err(Refusal::Unavailable) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "try again"),
    };
    let inbound = match serde_json::from_slice(&body).and_then(|raw| read_json(&raw)) {
        Ok(inbound) => inbound,
        Err(error) => {
            tracing::info!(bot = %bot_id, %error, "webhook: not an update");
            return refuse(StatusCode::BAD_REQUEST, "the body is not a Telegram update");
        }
    };
    let update_id = inbound.update_id();
    match ingest(&services, &bot, inbound).await {
        Ok(Ingested::Recorded(_)) | Ok(Ingested::Ignored(_)) => {
            (StatusCode::OK, Json(json!({ "ok": true }))).into_response()
        }
        Err(error) => {
            tracing::error!(bot = %bot_id, update_id, %error, "webhook: update not stored");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "try again")
        }
    }
}
