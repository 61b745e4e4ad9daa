//! The Telegram benchmarks, against the loopback fake Bot API the tests use (it runs in
//! this process; the `cartie serve` under test is started here, pointed at it):
//!
//! - `telegram-webhook`: N concurrent senders post text updates to a WEBHOOK bot's
//!   `/telegram/{bot}/webhook` across many chats; the clock stops when the Inbox read
//!   model holds every message. Prints updates/s end to end, and the webhook's p50/p99.
//! - `telegram-delivery`: operators queue messages to many chats of one bot
//!   (`sendMessage`); the delivery reactor sends them to the fake. Prints the bot's send
//!   rate, the most sends in any one second, the shortest interval between two sends to
//!   one chat, the longest a chat with queued messages waited between two sends, and
//!   whether every chat received all its messages in order.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use cartie_domain::workspace::Slug;
use cartie_domain::{BotId, ConversationId, WorkspaceId};
use cartie_store::{on_pool, Database};
use serde_json::{json, Value};
use uuid::Uuid;

#[path = "../../../api/tests/support/fake_telegram.rs"]
mod fake_telegram;

use fake_telegram::{FakeBot, FakeTelegram};

use super::{percentile, post};

const REGISTER: &str =
    "mutation($token: String!) { registerBot(input: { token: $token, mode: WEBHOOK }) { id webhookSet } }";
const SEND: &str = "mutation($id: ID!, $text: String!) { sendMessage(input: { conversationId: $id, content: { kind: TEXT, text: $text } }) { seq } }";
/// The first chat id; chats are consecutive from here.
const FIRST_CHAT: i64 = 500_000_000;

/// Where the server under test keeps its data, and how to reach its API.
pub struct Target {
    pub cartie: String,
    pub database_url: String,
    pub data_dir: String,
    pub token: String,
    pub workspace_slug: String,
}

/// The server under test, stopped when dropped (also when the benchmark fails).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `cartie serve` talking to the fake, with one registered WEBHOOK bot.
struct Rig {
    fake: FakeTelegram,
    _server: Server,
    url: String,
    bot: Uuid,
    secret: String,
    workspace: WorkspaceId,
    db: Database,
}

impl Rig {
    async fn start(target: &Target) -> anyhow::Result<Self> {
        let fake_bot = FakeBot::new(7_000_000_001, "bench_motors_bot");
        let fake = FakeTelegram::start(std::slice::from_ref(&fake_bot)).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let server = Server(
            Command::new(&target.cartie)
                .arg("serve")
                .env("CARTIE_DATA_DIR", &target.data_dir)
                .env("CARTIE_DATABASE_URL", &target.database_url)
                .env("CARTIE_BIND", format!("127.0.0.1:{port}"))
                .env("CARTIE_TELEGRAM_API_URL", &fake.url)
                .env("CARTIE_PUBLIC_URL", &url)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .context("cannot start cartie serve")?,
        );
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{url}/health")).send().await.is_err() {
            ensure!(
                started.elapsed() < Duration::from_secs(20),
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let registered = post(
            &http,
            &format!("{url}/graphql"),
            &target.token,
            REGISTER,
            json!({ "token": fake_bot.token }),
        )
        .await?;
        ensure!(
            registered["registerBot"]["webhookSet"] == json!(true),
            "the webhook was not set: {registered}"
        );
        let bot: Uuid = registered["registerBot"]["id"]
            .as_str()
            .context("no bot id")?
            .parse()?;
        let set = fake.calls("setWebhook");
        let secret = set
            .last()
            .and_then(|call| call.params.get("secret_token"))
            .and_then(Value::as_str)
            .context("setWebhook carried no secret_token")?
            .to_string();
        let workspace = WorkspaceId::for_slug(
            &Slug::parse("slug", &target.workspace_slug).map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        let db = Database::connect(&target.database_url, 2).await?;
        Ok(Self {
            fake,
            _server: server,
            url,
            bot,
            secret,
            workspace,
            db,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.db.close().await;
        Ok(())
    }

    async fn messages_in_inbox(&self) -> anyhow::Result<i64> {
        Ok(on_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM inbox_messages")
                .fetch_one(pool)
                .await?
        }))
    }

    async fn wait_for_inbox(&self, messages: i64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.messages_in_inbox().await?;
            if seen >= messages {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the Inbox shows {seen} of {messages} messages");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn conversation(&self, chat: i64) -> ConversationId {
        ConversationId::for_chat(self.workspace, BotId(self.bot), chat)
    }
}

/// A real-shaped private-chat text update (the shape of the `message_text.json` fixture).
fn text_update(update_id: u64, chat: i64) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": { "id": chat, "is_bot": false, "first_name": format!("Buyer {chat}"),
                      "username": format!("buyer_{chat}"), "language_code": "uk" },
            "chat": { "id": chat, "first_name": format!("Buyer {chat}"),
                      "username": format!("buyer_{chat}"), "type": "private" },
            "date": chrono::Utc::now().timestamp(),
            "text": format!("Is car {update_id} still available? What is the last price?")
        }
    })
}

async fn post_update(
    http: &reqwest::Client,
    rig_url: &str,
    bot: Uuid,
    secret: &str,
    update: &Value,
) -> anyhow::Result<()> {
    let response = http
        .post(format!("{rig_url}/telegram/{bot}/webhook"))
        .header("X-Telegram-Bot-Api-Secret-Token", secret)
        .json(update)
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "webhook answered {}",
        response.status()
    );
    Ok(())
}

pub async fn webhook(
    target: Target,
    clients: usize,
    updates: u64,
    chats: u64,
) -> anyhow::Result<()> {
    let rig = Rig::start(&target).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let next = Arc::new(AtomicU64::new(1));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let senders: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, secret, next, errors) = (
                http.clone(),
                rig.url.clone(),
                rig.secret.clone(),
                next.clone(),
                errors.clone(),
            );
            let bot = rig.bot;
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let update = next.fetch_add(1, Ordering::Relaxed);
                    if update > updates {
                        break latencies;
                    }
                    let chat = FIRST_CHAT + (update % chats) as i64;
                    let body = text_update(update, chat);
                    let t = Instant::now();
                    if post_update(&http, &url, bot, &secret, &body).await.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for sender in senders {
        latencies.extend(sender.await?);
    }
    let posted = started.elapsed().as_secs_f64();
    rig.wait_for_inbox(updates as i64, Duration::from_secs(120))
        .await?;
    let visible = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{}",
        json!({
            "clients": clients,
            "chats": chats,
            "updates": updates,
            "errors": errors.load(Ordering::Relaxed),
            "seconds_to_post": posted,
            "seconds_to_inbox": visible,
            "updates_per_second": updates as f64 / visible,
            "p50_ms": percentile(&latencies, 0.50),
            "p99_ms": percentile(&latencies, 0.99),
        })
    );
    ensure!(errors.load(Ordering::Relaxed) == 0, "some updates failed");
    rig.stop().await
}

pub async fn delivery(target: Target, chats: i64, per_chat: usize) -> anyhow::Result<()> {
    let rig = Rig::start(&target).await?;
    let http = reqwest::Client::new();
    // One buyer message per chat opens the conversations.
    for (i, chat) in (FIRST_CHAT..FIRST_CHAT + chats).enumerate() {
        post_update(
            &http,
            &rig.url,
            rig.bot,
            &rig.secret,
            &text_update(i as u64 + 1, chat),
        )
        .await?;
    }
    rig.wait_for_inbox(chats, Duration::from_secs(60)).await?;

    // Operators answer: round by round, every chat gets its next message.
    let endpoint = format!("{}/graphql", rig.url);
    let queued_from = Instant::now();
    for round in 0..per_chat {
        let sends: Vec<_> = (FIRST_CHAT..FIRST_CHAT + chats)
            .map(|chat| {
                let (http, endpoint, token) =
                    (http.clone(), endpoint.clone(), target.token.clone());
                let conversation = rig.conversation(chat).to_string();
                tokio::spawn(async move {
                    post(
                        &http,
                        &endpoint,
                        &token,
                        SEND,
                        json!({ "id": conversation, "text": format!("reply {round}") }),
                    )
                    .await
                })
            })
            .collect();
        for send in sends {
            send.await??;
        }
    }
    let queued_in = queued_from.elapsed().as_secs_f64();
    let total = chats as usize * per_chat;
    let calls = rig
        .fake
        .wait_for_calls("sendMessage", total, Duration::from_secs(600))
        .await;

    let first = calls.first().context("no sends")?.at;
    let last = calls.last().context("no sends")?.at;
    let rate = (calls.len() - 1) as f64 / (last - first).as_secs_f64();
    // The most sends in any window of one second.
    let mut busiest = 0;
    let mut start = 0;
    for end in 0..calls.len() {
        while calls[end].at - calls[start].at >= Duration::from_secs(1) {
            start += 1;
        }
        busiest = busiest.max(end - start + 1);
    }
    // Per chat: the order of its messages, the shortest interval between two sends,
    // and the longest wait between two sends while it still had messages queued.
    let mut shortest = Duration::MAX;
    let mut longest = Duration::ZERO;
    let mut in_order = true;
    let mut complete = true;
    let mut first_send_latest = Duration::ZERO;
    for chat in FIRST_CHAT..FIRST_CHAT + chats {
        let mine: Vec<_> = calls
            .iter()
            .filter(|c| match c.params.get("chat_id") {
                Some(Value::Number(n)) => n.as_i64() == Some(chat),
                Some(Value::String(s)) => s.parse() == Ok(chat),
                _ => false,
            })
            .collect();
        complete &= mine.len() == per_chat;
        for (i, call) in mine.iter().enumerate() {
            in_order &= call.params.get("text").and_then(Value::as_str)
                == Some(format!("reply {i}").as_str());
        }
        if let Some(first_send) = mine.first() {
            first_send_latest = first_send_latest.max(first_send.at - queued_from);
        }
        for pair in mine.windows(2) {
            let gap = pair[1].at - pair[0].at;
            shortest = shortest.min(gap);
            longest = longest.max(gap);
        }
    }
    println!(
        "{}",
        json!({
            "chats": chats,
            "messages_per_chat": per_chat,
            "messages": calls.len(),
            "seconds_to_queue": queued_in,
            "sends_per_second": rate,
            "busiest_second": busiest,
            "shortest_chat_interval_ms": shortest.as_secs_f64() * 1000.0,
            "longest_chat_wait_ms": longest.as_secs_f64() * 1000.0,
            "latest_first_send_ms": first_send_latest.as_secs_f64() * 1000.0,
            "every_chat_complete": complete,
            "in_order": in_order,
        })
    );
    ensure!(
        complete && in_order,
        "a chat missed messages or got them out of order"
    );
    rig.stop().await
}
