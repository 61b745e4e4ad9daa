//! A loopback fake of the Telegram Bot API: it answers `getMe`, `setWebhook`,
//! `deleteWebhook`, `setMyCommands`, `getUpdates` (with offsets and long polling),
//! `answerCallbackQuery` and every `send*` (JSON or multipart), records each call, and can
//! be told to refuse: a token it does not know, `429 retry_after` or `403 blocked` for a
//! chat.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use tokio::sync::Notify;

/// A bot the fake knows: its token and who it is.
#[derive(Clone)]
pub struct FakeBot {
    pub token: String,
    pub id: i64,
    pub username: String,
}

impl FakeBot {
    pub fn new(id: i64, username: &str) -> Self {
        Self {
            token: format!("{id}:AAH{}", "x".repeat(32)),
            id,
            username: username.into(),
        }
    }
}

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub token: String,
    pub method: String,
    pub params: Map<String, Value>,
    pub at: Instant,
}

/// What the fake answers a send to a chat, once per entry, before answering normally.
#[derive(Debug, Clone)]
pub enum Refusal {
    RetryAfter(u64),
    Blocked,
    /// Hang (as a dead connection would) for this long.
    Stall(Duration),
}

#[derive(Default)]
struct State_ {
    bots: HashMap<String, FakeBot>,
    calls: Vec<Call>,
    updates: HashMap<String, VecDeque<Value>>,
    refusals: HashMap<i64, VecDeque<Refusal>>,
    next_message_id: i64,
}

#[derive(Clone)]
pub struct FakeTelegram {
    pub url: String,
    state: Arc<Mutex<State_>>,
    arrived: Arc<Notify>,
}

impl FakeTelegram {
    pub async fn start(bots: &[FakeBot]) -> Self {
        let state = Arc::new(Mutex::new(State_ {
            bots: bots.iter().map(|b| (b.token.clone(), b.clone())).collect(),
            next_message_id: 1000,
            ..Default::default()
        }));
        let fake = FakeTelegram {
            url: String::new(),
            state,
            arrived: Arc::new(Notify::new()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let router = Router::new().fallback(handle).with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakeTelegram {
            url: format!("http://{address}"),
            ..fake
        }
    }

    /// Queues updates (real JSON) for `getUpdates` of a bot.
    pub fn push_updates(&self, bot: &FakeBot, updates: impl IntoIterator<Item = Value>) {
        let mut state = self.state.lock().unwrap();
        state
            .updates
            .entry(bot.token.clone())
            .or_default()
            .extend(updates);
        drop(state);
        self.arrived.notify_waiters();
    }

    pub fn refuse(&self, chat_id: i64, refusals: impl IntoIterator<Item = Refusal>) {
        self.state
            .lock()
            .unwrap()
            .refusals
            .entry(chat_id)
            .or_default()
            .extend(refusals);
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Waits until `count` calls of `method` arrived (or panics after `timeout`).
    pub async fn wait_for_calls(&self, method: &str, count: usize, timeout: Duration) -> Vec<Call> {
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.calls(method);
            if calls.len() >= count {
                return calls;
            }
            assert!(
                Instant::now() < deadline,
                "{count} calls of {method} expected, {} arrived",
                calls.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn ok(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

fn error(status: StatusCode, description: &str, parameters: Option<Value>) -> Response {
    let mut body =
        json!({ "ok": false, "error_code": status.as_u16(), "description": description });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    (status, Json(body)).into_response()
}

async fn params(request: Request) -> Map<String, Value> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if is_multipart {
        let mut form = Multipart::from_request(request, &()).await.unwrap();
        let mut map = Map::new();
        while let Some(field) = form.next_field().await.unwrap() {
            let name = field.name().unwrap_or_default().to_string();
            let text = field.text().await.unwrap_or_default();
            // JSON-encoded fields (reply_parameters, media) stay readable as JSON.
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            map.insert(name, value);
        }
        map
    } else {
        let bytes = Bytes::from_request(request, &()).await.unwrap();
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
    }
}

fn chat_id(params: &Map<String, Value>) -> i64 {
    match &params["chat_id"] {
        Value::Number(n) => n.as_i64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("chat_id {other}"),
    }
}

async fn handle(State(fake): State<FakeTelegram>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let Some((token, method)) = path
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'))
    else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    let (token, method) = (token.to_string(), method.to_string());
    let params = params(request).await;
    let bot = {
        let mut state = fake.state.lock().unwrap();
        state.calls.push(Call {
            token: token.clone(),
            method: method.clone(),
            params: params.clone(),
            at: Instant::now(),
        });
        state.bots.get(&token).cloned()
    };
    let Some(bot) = bot else {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", None);
    };
    match method.as_str() {
        // Every field the current Bot API answers getMe with.
        "getMe" => ok(json!({
            "id": bot.id, "is_bot": true, "first_name": "Autohaus", "username": bot.username,
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false, "allows_users_to_create_topics": false,
            "can_manage_bots": false, "has_topics_enabled": false,
            "supports_guest_queries": false, "supports_join_request_queries": false
        })),
        "setWebhook" | "deleteWebhook" | "setMyCommands" | "answerCallbackQuery" => ok(json!(true)),
        "getUpdates" => {
            let offset = params.get("offset").and_then(Value::as_i64);
            let timeout = params.get("timeout").and_then(Value::as_u64).unwrap_or(0);
            let deadline = Instant::now() + Duration::from_secs(timeout.min(2));
            loop {
                let notified = fake.arrived.notified();
                let batch: Vec<Value> = {
                    let mut state = fake.state.lock().unwrap();
                    let queue = state.updates.entry(token.clone()).or_default();
                    // Telegram forgets updates below the offset a client confirms.
                    if let Some(offset) = offset {
                        queue.retain(|u| u["update_id"].as_i64().unwrap() >= offset);
                    }
                    queue.iter().take(100).cloned().collect()
                };
                if !batch.is_empty() || Instant::now() >= deadline {
                    return ok(Value::Array(batch));
                }
                let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
            }
        }
        send if send.starts_with("send") => {
            let chat = chat_id(&params);
            let refusal = fake
                .state
                .lock()
                .unwrap()
                .refusals
                .get_mut(&chat)
                .and_then(VecDeque::pop_front);
            match refusal {
                Some(Refusal::RetryAfter(seconds)) => {
                    return error(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!("Too Many Requests: retry after {seconds}"),
                        Some(json!({ "retry_after": seconds })),
                    )
                }
                Some(Refusal::Blocked) => {
                    return error(
                        StatusCode::FORBIDDEN,
                        "Forbidden: bot was blocked by the user",
                        None,
                    )
                }
                Some(Refusal::Stall(duration)) => tokio::time::sleep(duration).await,
                None => {}
            }
            let message_id = {
                let mut state = fake.state.lock().unwrap();
                state.next_message_id += 1;
                state.next_message_id
            };
            let message = json!({
                "message_id": message_id,
                "date": chrono::Utc::now().timestamp(),
                "chat": { "id": chat, "type": "private", "first_name": "Buyer" },
                "from": { "id": bot.id, "is_bot": true, "first_name": "Autohaus", "username": bot.username },
                "text": params.get("text").and_then(Value::as_str).unwrap_or("")
            });
            if send == "sendMediaGroup" {
                let n = params["media"].as_array().map(Vec::len).unwrap_or(2);
                ok(Value::Array((0..n).map(|_| message.clone()).collect()))
            } else {
                ok(message)
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found: method not found", None),
    }
}
