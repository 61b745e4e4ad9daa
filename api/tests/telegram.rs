//! Telegram bots end to end against a loopback fake of the Bot API fed with real update
//! JSON (adapters/telegram/tests/fixtures): registration, webhooks, long polling across a
//! restart, and the delivery reactor's pacing, refusals and crash recovery.

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cartie_api::telegram::TelegramSettings;
use cartie_domain::{BotId, ConversationId};
use cartie_store::Backend;
use serde_json::{json, Value};
use support::fake_telegram::{FakeBot, FakeTelegram, Refusal};
use support::{code, field, ok, Api, Dealer};
use tower::ServiceExt;

cartie_store::on_both_backends!(
    bots_are_registered_only_with_tokens_telegram_accepts,
    webhook_updates_of_every_kind_land_in_the_inbox,
    long_polling_resumes_after_a_restart_without_loss_or_repeat,
    delivery_honours_retry_after_records_blocks_and_survives_a_crash,
    a_conversation_naming_another_workspaces_bot_never_reaches_its_token,
    a_change_to_a_bot_reaches_its_webhook_at_once,
);

const REGISTER: &str = "mutation($input: RegisterBotInput!) { registerBot(input: $input) { \
    id telegramId username mode enabled webhookSet webhookUrl commands { command description } } }";

const CONVERSATION: &str = "query($id: ID!) { conversation(id: $id) { messageCount blocked \
    messages(last: 50) { nodes { seq direction kind text delivery failureReason telegramMessageId \
    mediaGroupId otherSizes file { telegramFileId } } } } }";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../adapters/telegram/tests/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A text update from `chat_id` with its own update id.
fn text_update(update_id: i64, chat_id: i64, text: &str) -> Value {
    let mut update = fixture("message_text");
    update["update_id"] = json!(update_id);
    update["message"]["chat"]["id"] = json!(chat_id);
    update["message"]["from"]["id"] = json!(chat_id);
    update["message"]["message_id"] = json!(update_id);
    update["message"]["text"] = json!(text);
    update
}

struct Setup {
    api: Api,
    dealer: Dealer,
    fake: FakeTelegram,
    bot: FakeBot,
}

async fn setup(backend: Backend, slug: &str) -> Setup {
    let bot = FakeBot::new(7_100_000 + slug.len() as i64, &format!("{slug}_bot"));
    let fake = FakeTelegram::start(std::slice::from_ref(&bot)).await;
    let settings = TelegramSettings {
        api_url: fake.url.clone(),
        public_url: Some("https://cartie.example".into()),
        call_timeout: Duration::from_secs(2),
        poll_timeout: Duration::from_secs(1),
        ..TelegramSettings::default()
    };
    let api = Api::with_telegram(backend, settings).await;
    let dealer = api.dealer(slug).await;
    Setup {
        api,
        dealer,
        fake,
        bot,
    }
}

impl Setup {
    async fn register(&self, mode: &str) -> Value {
        ok(self
            .api
            .gql(
                &self.dealer.token,
                REGISTER,
                json!({ "input": { "token": self.bot.token, "mode": mode } }),
            )
            .await)["registerBot"]
            .clone()
    }

    fn conversation_id(&self, chat_id: i64) -> String {
        ConversationId::for_chat(self.dealer.id, BotId::for_telegram(self.bot.id), chat_id)
            .to_string()
    }

    /// The conversation with a chat (null until its first message is in the Inbox).
    async fn conversation(&self, chat_id: i64) -> Value {
        let response = self
            .api
            .gql(
                &self.dealer.token,
                CONVERSATION,
                json!({ "id": self.conversation_id(chat_id) }),
            )
            .await;
        if !response["errors"].is_null() {
            assert_eq!(code(&response), "NOT_FOUND", "{response}");
            return Value::Null;
        }
        response["data"]["conversation"].clone()
    }

    /// Polls the conversation until `check` holds (the projections run apart).
    async fn eventually(&self, chat_id: i64, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let conversation = self.conversation(chat_id).await;
            if check(&conversation) {
                return conversation;
            }
            assert!(Instant::now() < deadline, "never held: {conversation}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn webhook(&self, bot_id: &str, secret: Option<&str>, body: Body) -> StatusCode {
        let mut request = Request::post(format!("/telegram/{bot_id}/webhook"))
            .header("content-type", "application/json");
        if let Some(secret) = secret {
            request = request.header("x-telegram-bot-api-secret-token", secret);
        }
        let response = self
            .api
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        response.status()
    }

    /// Posts an update with the right secret; Telegram must be told 200.
    async fn deliver_update(&self, bot_id: &str, secret: &str, update: &Value) {
        let status = self
            .webhook(bot_id, Some(secret), Body::from(update.to_string()))
            .await;
        assert_eq!(status, StatusCode::OK, "{update}");
    }

    async fn send(&self, chat_id: i64, text: &str) -> Value {
        ok(self
            .api
            .gql(
                &self.dealer.token,
                "mutation($input: SendMessageInput!) { sendMessage(input: $input) { seq delivery } }",
                json!({ "input": {
                    "conversationId": self.conversation_id(chat_id),
                    "content": { "kind": "TEXT", "text": text }
                } }),
            )
            .await)["sendMessage"]
            .clone()
    }
}

async fn bots_are_registered_only_with_tokens_telegram_accepts(backend: Backend) {
    let s = setup(backend, "registry").await;
    let before = s.api.events().await;
    for (token, expected_field) in [
        ("not-a-token", "token"),
        // Well formed, but Telegram knows no such bot.
        (&*format!("999:AAH{}", "y".repeat(32)), "token"),
    ] {
        let response = s
            .api
            .gql(
                &s.dealer.token,
                REGISTER,
                json!({ "input": { "token": token, "mode": "POLLING" } }),
            )
            .await;
        assert_eq!(code(&response), "VALIDATION", "{response}");
        assert_eq!(field(&response), expected_field);
    }
    assert_eq!(
        s.api.events().await,
        before,
        "a refused token writes nothing"
    );

    let bot = s.register("WEBHOOK").await;
    assert_eq!(bot["telegramId"], json!(s.bot.id));
    assert_eq!(bot["username"], json!(s.bot.username));
    assert_eq!(bot["webhookSet"], json!(true));
    let url = format!(
        "https://cartie.example/telegram/{}/webhook",
        bot["id"].as_str().unwrap()
    );
    assert_eq!(bot["webhookUrl"], json!(url));
    let set = s.fake.calls("setWebhook");
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].params["url"], json!(url));
    let secret = set[0].params["secret_token"].as_str().unwrap();
    assert_eq!(secret.len(), 64);
    assert_eq!(
        set[0].params["allowed_updates"],
        json!([
            "message",
            "edited_message",
            "callback_query",
            "my_chat_member"
        ])
    );
    // The token and the webhook secret never reach the log in clear.
    let log = sqlx_dump(&s.api).await;
    assert!(!log.contains(&s.bot.token[4..]), "the token is in the log");
    assert!(!log.contains(secret), "the webhook secret is in the log");

    // Once per platform: again here, or in another workspace, is a conflict.
    let again = s
        .api
        .gql(
            &s.dealer.token,
            REGISTER,
            json!({ "input": { "token": s.bot.token, "mode": "POLLING" } }),
        )
        .await;
    assert_eq!(code(&again), "CONFLICT");
    let other = s.api.dealer("registry-two").await;
    let elsewhere = s
        .api
        .gql(
            &other.token,
            REGISTER,
            json!({ "input": { "token": s.bot.token, "mode": "POLLING" } }),
        )
        .await;
    assert_eq!(code(&elsewhere), "CONFLICT");
    let listed = ok(s.api.gql(&other.token, "{ bots { id } }", json!({})).await);
    assert_eq!(listed["bots"], json!([]));

    // To polling with a menu: Telegram is told first.
    let updated = ok(s
        .api
        .gql(
            &s.dealer.token,
            "mutation($input: UpdateBotInput!) { updateBot(input: $input) { mode webhookSet \
             commands { command description } } }",
            json!({ "input": { "botId": bot["id"], "mode": "POLLING",
                "commands": [{ "command": "/start", "description": "Begin" },
                             { "command": "cars", "description": "Cars in stock" }] } }),
        )
        .await)["updateBot"]
        .clone();
    assert_eq!(updated["mode"], json!("POLLING"));
    assert_eq!(updated["webhookSet"], json!(false));
    assert_eq!(
        updated["commands"][0],
        json!({ "command": "start", "description": "Begin" })
    );
    assert_eq!(s.fake.calls("deleteWebhook").len(), 1);
    let menu = s.fake.calls("setMyCommands");
    assert_eq!(menu.len(), 1);
    assert_eq!(menu[0].params["commands"][1]["command"], json!("cars"));
    let bad_menu = s
        .api
        .gql(
            &s.dealer.token,
            "mutation($input: UpdateBotInput!) { updateBot(input: $input) { mode } }",
            json!({ "input": { "botId": bot["id"],
                "commands": [{ "command": "Has Spaces", "description": "x" }] } }),
        )
        .await;
    assert_eq!(field(&bad_menu), "commands.command");
    // A menu naming a command twice is refused before Telegram is asked to show it.
    let twice = s
        .api
        .gql(
            &s.dealer.token,
            "mutation($input: UpdateBotInput!) { updateBot(input: $input) { mode } }",
            json!({ "input": { "botId": bot["id"], "commands": [
                { "command": "cars", "description": "Cars" },
                { "command": "/cars", "description": "Cars again" }] } }),
        )
        .await;
    assert_eq!(code(&twice), "VALIDATION");
    assert_eq!(field(&twice), "commands.command");
    assert_eq!(s.fake.calls("setMyCommands").len(), 1);
    s.api.shutdown().await;
}

/// Every event payload of the log, as text.
async fn sqlx_dump(api: &Api) -> String {
    let log = cartie_store::EventLog::new(api.test.db.clone());
    let events = log
        .read_after(cartie_store::LogPosition::START, 100_000)
        .await
        .unwrap();
    events
        .iter()
        .map(|e| format!("{} {}", e.payload_json, e.metadata_json))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn webhook_updates_of_every_kind_land_in_the_inbox(backend: Backend) {
    let s = setup(backend, "hooks").await;
    let bot = s.register("WEBHOOK").await;
    let bot_id = bot["id"].as_str().unwrap().to_string();
    let secret = s.fake.calls("setWebhook")[0].params["secret_token"]
        .as_str()
        .unwrap()
        .to_string();
    let before = s.api.events().await;

    // Refused before anything is recorded.
    let text = fixture("message_text").to_string();
    assert_eq!(
        s.webhook(&bot_id, None, Body::from(text.clone())).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.webhook(&bot_id, Some("wrong"), Body::from(text.clone()))
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.webhook(&bot_id, Some(&secret), Body::from("{\"update_id\": \"x\""))
            .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.webhook(
            &uuid::Uuid::now_v7().to_string(),
            Some(&secret),
            Body::from(text.clone())
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.webhook(
            &bot_id,
            Some(&secret),
            Body::from(vec![b' '; 2 * 1024 * 1024])
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        s.api.events().await,
        before,
        "refused webhooks record nothing"
    );

    let kinds = [
        ("message_text", "TEXT"),
        ("message_photo", "PHOTO"),
        ("message_video", "VIDEO"),
        ("message_voice", "VOICE"),
        ("message_audio", "AUDIO"),
        ("message_document", "DOCUMENT"),
        ("message_animation", "ANIMATION"),
        ("message_sticker", "STICKER"),
        ("message_contact", "CONTACT"),
        ("message_location", "LOCATION"),
        ("media_group_1", "PHOTO"),
        ("media_group_2", "PHOTO"),
        ("callback_query", "CALLBACK"),
        // Ignored, and still answered 200 so Telegram moves on.
        ("group_message", ""),
        ("unknown_kind", ""),
    ];
    for (name, _) in kinds {
        s.deliver_update(&bot_id, &secret, &fixture(name)).await;
    }
    // The same update three times, interleaved with another: one message.
    for _ in 0..3 {
        for name in ["message_text", "message_sticker"] {
            s.deliver_update(&bot_id, &secret, &fixture(name)).await;
        }
    }
    // Out of order, with repeats (Telegram retries an update it could not deliver): each
    // update is one message.
    let late_chat = 6_200_001;
    for id in [1003, 1001, 1002, 1001, 1003] {
        let update = text_update(id, late_chat, &format!("message {id}"));
        s.deliver_update(&bot_id, &secret, &update).await;
    }
    let late = s
        .eventually(late_chat, |c| c["messageCount"] == json!(3))
        .await;
    let mut texts: Vec<_> = late["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    assert_eq!(texts, ["message 1001", "message 1002", "message 1003"]);
    for (name, kind) in kinds.iter().filter(|(_, kind)| !kind.is_empty()) {
        let update = fixture(name);
        let chat = update["message"]["chat"]["id"]
            .as_i64()
            .or(update["callback_query"]["message"]["chat"]["id"].as_i64())
            .unwrap();
        let conversation = s
            .eventually(chat, |c| {
                c["messages"]["nodes"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["kind"] == json!(kind)))
            })
            .await;
        let same_kind = conversation["messages"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["kind"] == json!(kind))
            .count();
        let expected = if name.starts_with("media_group") {
            2
        } else {
            1
        };
        assert_eq!(same_kind, expected, "{name}: {conversation}");
    }
    let album_chat = fixture("media_group_1")["message"]["chat"]["id"]
        .as_i64()
        .unwrap();
    let album = s.conversation(album_chat).await;
    let nodes = album["messages"]["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["mediaGroupId"], nodes[1]["mediaGroupId"]);
    assert!(nodes[0]["mediaGroupId"].is_string());
    let photo_chat = fixture("message_photo")["message"]["chat"]["id"]
        .as_i64()
        .unwrap();
    let photo = &s.conversation(photo_chat).await["messages"]["nodes"][0];
    assert!(!photo["otherSizes"].as_array().unwrap().is_empty());
    // The button press was answered.
    assert_eq!(
        s.fake
            .wait_for_calls("answerCallbackQuery", 1, Duration::from_secs(5))
            .await[0]
            .params["callback_query_id"],
        json!("586534174085442072")
    );

    // The buyer blocks the bot, then restarts it.
    let kicked = fixture("my_chat_member_kicked");
    let chat = kicked["my_chat_member"]["chat"]["id"].as_i64().unwrap();
    let hello = text_update(kicked["update_id"].as_i64().unwrap() - 5, chat, "Hello");
    for update in [hello, kicked] {
        s.deliver_update(&bot_id, &secret, &update).await;
    }
    s.eventually(chat, |c| c["blocked"] == json!(true)).await;
    s.deliver_update(&bot_id, &secret, &fixture("my_chat_member_member"))
        .await;
    let member_chat = fixture("my_chat_member_member")["my_chat_member"]["chat"]["id"]
        .as_i64()
        .unwrap();
    if member_chat == chat {
        s.eventually(chat, |c| c["blocked"] == json!(false)).await;
    }

    // The bot's status shows the traffic (written down every second).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed = ok(s
            .api
            .gql(
                &s.dealer.token,
                "{ bots { lastUpdateAt deliveryBacklog } }",
                json!({}),
            )
            .await);
        if listed["bots"][0]["lastUpdateAt"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "no last update shown: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A disabled bot's webhook is not found.
    ok(s.api
        .gql(
            &s.dealer.token,
            "mutation($id: ID!) { disableBot(botId: $id) { enabled } }",
            json!({ "id": bot_id }),
        )
        .await);
    assert_eq!(
        s.webhook(&bot_id, Some(&secret), Body::from(text)).await,
        StatusCode::NOT_FOUND
    );
    s.api.shutdown().await;
}

async fn long_polling_resumes_after_a_restart_without_loss_or_repeat(backend: Backend) {
    let mut s = setup(backend, "polling").await;
    s.register("POLLING").await;
    let chat = 5_550_001;
    s.fake.push_updates(
        &s.bot,
        (1..=3).map(|i| text_update(900 + i, chat, &format!("message {i}"))),
    );
    s.eventually(chat, |c| c["messageCount"] == json!(3)).await;

    s.api.restart().await;
    // Telegram would offer the last one again were the offset not kept; the fake also
    // keeps what it was not told to forget.
    s.fake.push_updates(
        &s.bot,
        [text_update(903, chat, "message 3")]
            .into_iter()
            .chain((4..=5).map(|i| text_update(900 + i, chat, &format!("message {i}")))),
    );
    let conversation = s.eventually(chat, |c| c["messageCount"] == json!(5)).await;
    let texts: Vec<_> = conversation["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .rev() // newest first
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "message 1",
            "message 2",
            "message 3",
            "message 4",
            "message 5"
        ]
    );
    // After the restart, polling asked from the update after the last recorded one.
    let offsets: Vec<_> = s
        .fake
        .calls("getUpdates")
        .iter()
        .filter_map(|c| c.params.get("offset").and_then(Value::as_i64))
        .collect();
    assert!(offsets.contains(&904), "{offsets:?}");
    assert!(offsets.iter().all(|o| *o <= 906), "{offsets:?}");
    s.api.shutdown().await;
}

async fn delivery_honours_retry_after_records_blocks_and_survives_a_crash(backend: Backend) {
    let mut s = setup(backend, "delivery").await;
    s.register("POLLING").await;
    let (calm, flooded, blocking, crashing) = (6_000_001, 6_000_002, 6_000_003, 6_000_004);
    s.fake.push_updates(
        &s.bot,
        [calm, flooded, blocking, crashing]
            .iter()
            .enumerate()
            .map(|(i, chat)| text_update(800 + i as i64, *chat, "Is it available?")),
    );
    for chat in [calm, flooded, blocking, crashing] {
        s.eventually(chat, |c| c["messageCount"] == json!(1)).await;
    }

    // Delivered, with Telegram's message id recorded.
    let sent = s.send(calm, "Yes, come and see it").await;
    // The answer shows the message as the Inbox has it: the bot may have delivered it first.
    assert!(
        sent["delivery"] == json!("QUEUED") || sent["delivery"] == json!("DELIVERED"),
        "{sent}"
    );
    let conversation = s
        .eventually(calm, |c| {
            c["messages"]["nodes"][0]["delivery"] == json!("DELIVERED")
        })
        .await;
    assert!(conversation["messages"]["nodes"][0]["telegramMessageId"].is_i64());
    let call = &s.fake.calls("sendMessage")[0];
    assert_eq!(call.params["chat_id"], json!(calm));
    assert_eq!(call.params["text"], json!("Yes, come and see it"));

    // 429: the chat waits retry_after; the message goes after it.
    s.fake.refuse(flooded, [Refusal::RetryAfter(2)]);
    s.send(flooded, "One moment").await;
    s.eventually(flooded, |c| {
        c["messages"]["nodes"][0]["delivery"] == json!("DELIVERED")
    })
    .await;
    let tries: Vec<_> = s
        .fake
        .calls("sendMessage")
        .into_iter()
        .filter(|c| c.params["chat_id"] == json!(flooded))
        .collect();
    assert_eq!(tries.len(), 2);
    assert!(tries[1].at - tries[0].at >= Duration::from_secs(2));

    // A buyer who blocked the bot: failed, and the conversation shows it.
    s.fake.refuse(blocking, [Refusal::Blocked]);
    s.send(blocking, "Still interested?").await;
    let conversation = s
        .eventually(blocking, |c| {
            c["messages"]["nodes"][0]["delivery"] == json!("FAILED") && c["blocked"] == json!(true)
        })
        .await;
    assert!(conversation["messages"]["nodes"][0]["failureReason"]
        .as_str()
        .unwrap()
        .contains("blocked"));

    // A crash while Telegram is answering: the message is sent again after the restart.
    s.fake
        .refuse(crashing, [Refusal::Stall(Duration::from_secs(30))]);
    s.send(crashing, "Price drops tomorrow").await;
    s.fake
        .wait_for_calls("sendMessage", 5, Duration::from_secs(10))
        .await;
    s.api.restart().await;
    s.eventually(crashing, |c| {
        c["messages"]["nodes"][0]["delivery"] == json!("DELIVERED")
    })
    .await;
    let backlog = ok(s
        .api
        .gql(&s.dealer.token, "{ bots { deliveryBacklog } }", json!({}))
        .await);
    assert_eq!(backlog["bots"][0]["deliveryBacklog"], json!(0));
    s.api.shutdown().await;
}

async fn a_conversation_naming_another_workspaces_bot_never_reaches_its_token(backend: Backend) {
    let s = setup(backend, "owner-of-bot").await;
    s.register("POLLING").await;
    // Another workspace's integration records a chat under this workspace's bot id (bot ids
    // follow from public Telegram ids) and its operator answers there.
    let intruder = s.api.dealer("intruder").await;
    let integration = ok(s
        .api
        .gql(
            &intruder.token,
            "mutation { createApiToken(name: \"adapter\") { token } }",
            json!({}),
        )
        .await)["createApiToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bot = BotId::for_telegram(s.bot.id);
    let chat = 6_100_001;
    let recorded = ok(s
        .api
        .gql(
            &integration,
            "mutation($input: InboundMessageInput!) { recordInboundMessage(input: $input) { conversation { id } } }",
            json!({ "input": {
                "botId": bot.to_string(), "chatId": chat, "updateId": 1, "telegramMessageId": 1,
                "from": { "firstName": "Mallory" },
                "content": { "kind": "TEXT", "text": "hello" },
                "sentAt": "2026-12-01T10:00:00Z",
            } }),
        )
        .await)["recordInboundMessage"]["conversation"]["id"]
        .clone();
    ok(s.api
        .gql(
            &intruder.token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { seq } }",
            json!({ "input": {
                "conversationId": recorded,
                "content": { "kind": "TEXT", "text": "spam through someone else's bot" }
            } }),
        )
        .await);
    // The message fails in the intruder's conversation, saying why.
    let deadline = Instant::now() + Duration::from_secs(15);
    let message = loop {
        let conversation = ok(s
            .api
            .gql(&intruder.token, CONVERSATION, json!({ "id": recorded }))
            .await)["conversation"]
            .clone();
        // Newest first: the operator's message.
        let message = conversation["messages"]["nodes"][0].clone();
        if message["delivery"] == json!("FAILED") {
            break message;
        }
        assert!(Instant::now() < deadline, "never failed: {conversation}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(message["failureReason"]
        .as_str()
        .unwrap()
        .contains("not registered in this workspace"));
    // The bot's owner still delivers through it; the intruder's text never went out.
    s.fake
        .push_updates(&s.bot, [text_update(900, 6_100_002, "Is it sold?")]);
    s.eventually(6_100_002, |c| c["messageCount"] == json!(1))
        .await;
    s.send(6_100_002, "Not yet").await;
    s.eventually(6_100_002, |c| {
        c["messages"]["nodes"][0]["delivery"] == json!("DELIVERED")
    })
    .await;
    let sends = s.fake.calls("sendMessage");
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0].params["chat_id"], json!(6_100_002));
    s.api.shutdown().await;
}

/// The webhook keeps the credentials it last accepted an update with, but a change made
/// through the API (disable, enable, a new secret, another mode) applies to the very next
/// request.
async fn a_change_to_a_bot_reaches_its_webhook_at_once(backend: Backend) {
    let s = setup(backend, "changes").await;
    let bot = s.register("WEBHOOK").await;
    let bot_id = bot["id"].as_str().unwrap().to_string();
    let secret_of = |call: usize| {
        s.fake.calls("setWebhook")[call].params["secret_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = secret_of(0);
    let post = |update_id: i64, secret: String| {
        let body = Body::from(text_update(update_id, 7001, "Still for sale?").to_string());
        let s = &s;
        let bot_id = bot_id.clone();
        async move { s.webhook(&bot_id, Some(&secret), body).await }
    };
    assert_eq!(post(1, first.clone()).await, StatusCode::OK);
    assert_eq!(post(2, "wrong".into()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(post(3, first.clone()).await, StatusCode::OK);

    let bot_mutation = |mutation: &'static str| {
        let s = &s;
        let bot_id = bot_id.clone();
        async move {
            ok(s.api
                .gql(
                    &s.dealer.token,
                    &format!("mutation($id: ID!) {{ {mutation}(botId: $id) {{ enabled }} }}"),
                    json!({ "id": bot_id }),
                )
                .await)
        }
    };
    bot_mutation("disableBot").await;
    assert_eq!(post(4, first.clone()).await, StatusCode::NOT_FOUND);
    bot_mutation("enableBot").await;
    assert_eq!(post(5, first.clone()).await, StatusCode::OK);

    let update_mode = |mode: &'static str| {
        let s = &s;
        let bot_id = bot_id.clone();
        async move {
            ok(s.api
                .gql(
                    &s.dealer.token,
                    "mutation($input: UpdateBotInput!) { updateBot(input: $input) { mode } }",
                    json!({ "input": { "botId": bot_id, "mode": mode } }),
                )
                .await)
        }
    };
    // Switching to WEBHOOK again gives the bot a new secret: the old one stops at once.
    update_mode("WEBHOOK").await;
    let second = secret_of(1);
    assert_ne!(first, second);
    assert_eq!(post(6, first.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(post(7, second.clone()).await, StatusCode::OK);
    update_mode("POLLING").await;
    assert_eq!(post(8, second).await, StatusCode::NOT_FOUND);

    let conversation = s.eventually(7001, |c| c["messageCount"] == json!(4)).await;
    // Newest first; each test update's message id is its update id.
    let recorded: Vec<_> = conversation["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["telegramMessageId"].as_i64().unwrap())
        .collect();
    assert_eq!(
        recorded,
        [7, 5, 3, 1],
        "the accepted updates, and only they"
    );
    s.api.shutdown().await;
}

/// A server that does not know its public URL refuses WEBHOOK before asking Telegram
/// anything (the token is not even checked).
#[tokio::test]
async fn webhook_mode_without_a_public_url_is_refused_before_telegram_is_asked() {
    let bot = FakeBot::new(7_200_001, "no_url_bot");
    let fake = FakeTelegram::start(std::slice::from_ref(&bot)).await;
    let settings = TelegramSettings {
        api_url: fake.url.clone(),
        public_url: None,
        call_timeout: Duration::from_secs(2),
        poll_timeout: Duration::from_secs(1),
        ..TelegramSettings::default()
    };
    let api = Api::with_telegram(Backend::Sqlite, settings).await;
    let dealer = api.dealer("no-public-url").await;
    let before = api.events().await;
    let response = api
        .gql(
            &dealer.token,
            REGISTER,
            json!({ "input": { "token": bot.token, "mode": "WEBHOOK" } }),
        )
        .await;
    assert_eq!(
        (code(&response), field(&response)),
        ("VALIDATION", "mode"),
        "{response}"
    );
    assert!(fake.calls("getMe").is_empty(), "Telegram was asked");
    assert_eq!(api.events().await, before);
    api.shutdown().await;
}
