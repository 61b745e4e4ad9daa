//! The Inbox and Leads through the GraphQL API: messages recorded by an integration,
//! operators reading, answering, assigning and closing; leads through their pipeline.

mod support;

use std::time::{Duration, Instant};

use cartie_domain::member::Role;
use cartie_projections::inbox::queries::{self, ConversationFilter, ConversationRow, MessageRow};
use cartie_projections::inbox::InboxProjector;
use cartie_projections::rebuild;
use cartie_store::Backend;
use serde_json::{json, Value};
use support::ws::{connect, next, subscribe};
use support::{code, field, ok, Api, Dealer};

cartie_store::on_both_backends!(
    a_repeated_update_is_one_message_and_unread_counts_follow_read_marks,
    conversations_are_ordered_filtered_and_searched,
    a_phrase_search_finds_exactly_the_conversations_whose_messages_hold_it,
    operators_answer_in_every_kind_and_bad_messages_are_refused,
    a_long_conversation_keeps_every_message_in_order,
    leads_move_through_the_pipeline_with_a_readable_timeline,
    subscribers_receive_new_messages_over_a_websocket_within_a_second,
    the_inbox_rebuilt_in_one_batch_is_the_inbox_projected_message_by_message,
);

const BOT: &str = "0190c2a4-6f3e-7a1b-9c2d-0000000000b1";
const OTHER_BOT: &str = "0190c2a4-6f3e-7a1b-9c2d-0000000000b2";

const RECORD: &str =
    "mutation($input: InboundMessageInput!) { recordInboundMessage(input: $input) { conversationId \
    conversation { id messageCount unreadCount lastMessagePreview contact { displayName username } } } }";

const CONVERSATION: &str = "query($id: ID!, $before: Int, $last: Int) { conversation(id: $id) { \
    id messageCount unreadCount closed blocked assigneeId leadStatus lastMessagePreview \
    messages(last: $last, before: $before) { hasOlder oldestSeq nodes { seq direction kind text delivery author \
    file { telegramFileId url } replyTo } } } }";

struct Inbox {
    api: Api,
    dealer: Dealer,
    /// An integration's API token (records inbound messages).
    bot: String,
}

impl Inbox {
    async fn new(backend: Backend, slug: &str) -> Self {
        let api = Api::new(backend).await;
        let dealer = api.dealer(slug).await;
        let bot = ok(api
            .gql(
                &dealer.token,
                "mutation { createApiToken(name: \"Telegram adapter\") { token } }",
                json!({}),
            )
            .await)["createApiToken"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        Self { api, dealer, bot }
    }

    /// A buyer's text message, as the adapter records it.
    async fn inbound(&self, bot: &str, chat: i64, update: i64, name: &str, text: &str) -> Value {
        let response = self
            .api
            .gql(
                &self.bot,
                RECORD,
                json!({ "input": {
                    "botId": bot, "chatId": chat, "updateId": update, "telegramMessageId": update * 10,
                    "from": { "firstName": name, "username": format!("{}_tg", name.to_lowercase()) },
                    "content": { "kind": "TEXT", "text": text },
                    "sentAt": format!("2026-11-22T10:{:02}:00Z", update % 60),
                } }),
            )
            .await;
        let receipt = ok(response)["recordInboundMessage"].clone();
        assert_eq!(receipt["conversationId"], receipt["conversation"]["id"]);
        receipt["conversation"].clone()
    }

    /// An operator's query or mutation, asserting it succeeded.
    async fn as_dealer(&self, query: &str, variables: Value) -> Value {
        ok(self.api.gql(&self.dealer.token, query, variables).await)
    }

    async fn conversation(&self, id: &Value) -> Value {
        ok(self
            .api
            .gql(&self.dealer.token, CONVERSATION, json!({ "id": id }))
            .await)["conversation"]
            .clone()
    }

    async fn list(&self, filter: Value) -> Vec<String> {
        let page = ok(self
            .api
            .gql(
                &self.dealer.token,
                "query($f: ConversationFilterInput) { conversations(filter: $f) { nodes { contact { firstName } } } }",
                json!({ "f": filter }),
            )
            .await);
        page["conversations"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["contact"]["firstName"].as_str().unwrap().to_string())
            .collect()
    }
}

async fn a_repeated_update_is_one_message_and_unread_counts_follow_read_marks(backend: Backend) {
    let inbox = Inbox::new(backend, "ingest-motors").await;
    // The same update three times, interleaved with others.
    let mut id = Value::Null;
    for update in [100, 101, 100, 102, 100] {
        id = inbox
            .inbound(BOT, 42, update, "Ivan", &format!("message {update}"))
            .await["id"]
            .clone();
    }
    let conversation = inbox.conversation(&id).await;
    assert_eq!(conversation["messageCount"], 3);
    assert_eq!(conversation["unreadCount"], 3);
    let texts: Vec<_> = conversation["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["message 102", "message 101", "message 100"]);

    let read = ok(inbox
        .api
        .gql(
            &inbox.dealer.token,
            "mutation($id: ID!) { markRead(conversationId: $id, upTo: 2) { unreadCount } }",
            json!({ "id": id }),
        )
        .await);
    assert_eq!(read["markRead"]["unreadCount"], 1);
    inbox.inbound(BOT, 42, 103, "Ivan", "and the price?").await;
    assert_eq!(inbox.conversation(&id).await["unreadCount"], 2);
    let all = ok(inbox
        .api
        .gql(
            &inbox.dealer.token,
            "mutation($id: ID!) { markRead(conversationId: $id) { unreadCount } }",
            json!({ "id": id }),
        )
        .await);
    assert_eq!(all["markRead"]["unreadCount"], 0);

    // Only integrations record inbound messages.
    let by_member = inbox
        .api
        .gql(
            &inbox.dealer.token,
            RECORD,
            json!({ "input": {
                "botId": BOT, "chatId": 1, "updateId": 1, "telegramMessageId": 1, "from": {},
                "content": { "kind": "TEXT", "text": "x" }, "sentAt": "2026-11-22T10:00:00Z"
            } }),
        )
        .await;
    assert_eq!(code(&by_member), "FORBIDDEN");
    inbox.api.shutdown().await;
}

async fn conversations_are_ordered_filtered_and_searched(backend: Backend) {
    let inbox = Inbox::new(backend, "list-motors").await;
    let ivan = inbox
        .inbound(BOT, 1, 10, "Ivan", "Looking for a Camry")
        .await["id"]
        .clone();
    inbox
        .inbound(OTHER_BOT, 2, 11, "Olena", "Do you have a RAV4 hybrid?")
        .await;
    inbox
        .inbound(BOT, 3, 12, "Taras", "Trade-in for my Golf?")
        .await;
    // Most recent message first.
    assert_eq!(inbox.list(json!({})).await, ["Taras", "Olena", "Ivan"]);
    assert_eq!(inbox.list(json!({ "botId": OTHER_BOT })).await, ["Olena"]);
    // Search: name, username, message text (case-insensitive).
    assert_eq!(inbox.list(json!({ "search": "olena" })).await, ["Olena"]);
    assert_eq!(inbox.list(json!({ "search": "taras_tg" })).await, ["Taras"]);
    assert_eq!(inbox.list(json!({ "search": "CAMRY" })).await, ["Ivan"]);
    assert!(inbox.list(json!({ "search": "100%" })).await.is_empty());

    // Unread, assigned to me, closed.
    inbox
        .api
        .gql(
            &inbox.dealer.token,
            "mutation($id: ID!) { markRead(conversationId: $id) { id } }",
            json!({ "id": ivan }),
        )
        .await;
    assert_eq!(
        inbox.list(json!({ "unreadOnly": true })).await,
        ["Taras", "Olena"]
    );
    let assigned = ok(inbox
        .api
        .gql(
            &inbox.dealer.token,
            "mutation($id: ID!, $who: ID) { assignConversation(conversationId: $id, assigneeId: $who) { assigneeId } }",
            json!({ "id": ivan, "who": inbox.dealer.owner.to_string() }),
        )
        .await);
    assert_eq!(
        assigned["assignConversation"]["assigneeId"],
        inbox.dealer.owner.to_string().as_str()
    );
    assert_eq!(inbox.list(json!({ "assignedToMe": true })).await, ["Ivan"]);
    let stranger = inbox
        .api
        .gql(
            &inbox.dealer.token,
            "mutation($id: ID!) { assignConversation(conversationId: $id, assigneeId: \"0190c2a4-6f3e-7a1b-9c2d-3e4f5a6b7c8d\") { id } }",
            json!({ "id": ivan }),
        )
        .await;
    assert_eq!(
        (code(&stranger), field(&stranger)),
        ("VALIDATION", "assigneeId")
    );
    ok(inbox
        .api
        .gql(
            &inbox.dealer.token,
            "mutation($id: ID!) { closeConversation(conversationId: $id) { closed } }",
            json!({ "id": ivan }),
        )
        .await);
    assert_eq!(inbox.list(json!({ "closed": true })).await, ["Ivan"]);
    assert_eq!(
        inbox.list(json!({ "closed": false })).await,
        ["Taras", "Olena"]
    );
    // A new message reopens it.
    inbox.inbound(BOT, 1, 13, "Ivan", "Still there?").await;
    assert_eq!(
        inbox.list(json!({ "closed": true })).await,
        Vec::<String>::new()
    );
    assert_eq!(inbox.list(json!({})).await, ["Ivan", "Taras", "Olena"]);

    // Pages cover every conversation once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ok(inbox
            .api
            .gql(
                &inbox.dealer.token,
                "query($after: String) { conversations(first: 2, after: $after) { hasNextPage endCursor nodes { contact { firstName } } } }",
                json!({ "after": after }),
            )
            .await)["conversations"]
            .clone();
        for node in page["nodes"].as_array().unwrap() {
            seen.push(node["contact"]["firstName"].as_str().unwrap().to_string());
        }
        if page["hasNextPage"] != true {
            break;
        }
        after = page["endCursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen, ["Ivan", "Taras", "Olena"]);
    inbox.api.shutdown().await;
}

/// Searches of several words look up their rare whole words first on PostgreSQL (ADR 0018);
/// whichever way a search is answered, it finds what a substring match finds.
async fn a_phrase_search_finds_exactly_the_conversations_whose_messages_hold_it(backend: Backend) {
    let inbox = Inbox::new(backend, "phrase-motors").await;
    let texts = [
        "Is car 512 in chat 9 still available?",
        "is CAR 512 in chat 90 still there",
        "oscar 512 in chat 9",
        "car 5120 in chat 9",
        "car 512 in chat",
        "car 512  in chat 9",
        "Продам камрі 2019 року, торг",
        "trade-in for my golf 4runner please",
        "email me at b@c.ua today",
        "car 512.5 in chat 9",
        "price 512 in chat 77",
    ];
    let names: Vec<String> = (0..texts.len()).map(|i| format!("Client{i}")).collect();
    for (i, text) in texts.iter().enumerate() {
        let chat = 100 + i as i64;
        inbox.inbound(BOT, chat, chat, &names[i], text).await;
    }
    let searches = [
        "car 512 in chat 9",
        "512 in chat",
        "Продам КАМРІ 2019",
        "продам камрі 2019 року",
        "for my golf 4runner",
        "at b@c.ua today",
        "chat 9 still",
        "in chat 7",
        "car 512 in chat 9 still there",
        "512.5 in chat",
    ];
    let check = |stage: &'static str| {
        let inbox = &inbox;
        let names = &names;
        async move {
            for search in searches {
                let mut found = inbox.list(json!({ "search": search })).await;
                found.sort();
                let mut expected: Vec<String> = texts
                    .iter()
                    .zip(names)
                    .filter(|(text, _)| text.to_lowercase().contains(&search.to_lowercase()))
                    .map(|(_, name)| name.clone())
                    .collect();
                expected.sort();
                assert!(
                    !expected.is_empty() || search.ends_with("there"),
                    "{search}"
                );
                assert_eq!(found, expected, "{stage}: {search:?}");
            }
        }
    };
    // Without statistics every word is rare; once analysed, these few messages make every
    // word common and the searches go by pattern.
    check("before statistics").await;
    if backend == Backend::Postgres {
        let db = &inbox.api.test.db;
        cartie_store::on_pool!(db, pool => {
            sqlx::query("ANALYZE inbox_messages").execute(pool).await.unwrap();
        });
        check("with statistics").await;
    }
    // A search longer than anyone types is refused, on SQLite long before its LIKE limit.
    let long = inbox
        .api
        .gql(
            &inbox.dealer.token,
            "query($s: String) { conversations(filter: { search: $s }) { nodes { id } } }",
            json!({ "s": "a".repeat(50_000) }),
        )
        .await;
    assert_eq!(
        (code(&long), field(&long)),
        ("VALIDATION", "filter.search"),
        "{long}"
    );
    inbox.api.shutdown().await;
}

async fn operators_answer_in_every_kind_and_bad_messages_are_refused(backend: Backend) {
    let inbox = Inbox::new(backend, "reply-motors").await;
    let id = inbox.inbound(BOT, 7, 1, "Ivan", "Photos please").await["id"].clone();
    let send = "mutation($input: SendMessageInput!) { sendMessage(input: $input) { seq direction kind text delivery author replyTo file { telegramFileId url } } }";
    let text = ok(inbox
        .api
        .gql(
            &inbox.dealer.token,
            send,
            json!({ "input": { "conversationId": id, "replyTo": 1, "content": { "kind": "TEXT", "text": "Sending now" } } }),
        )
        .await)["sendMessage"]
        .clone();
    assert_eq!(text["seq"], 2);
    assert_eq!(text["direction"], "OUTBOUND");
    assert_eq!(text["delivery"], "QUEUED");
    assert_eq!(text["replyTo"], 1);
    assert_eq!(
        text["author"],
        format!("user:{}", inbox.dealer.owner).as_str()
    );
    let photo = ok(inbox
        .api
        .gql(
            &inbox.dealer.token,
            send,
            json!({ "input": { "conversationId": id, "content": { "kind": "PHOTO", "text": "Front", "file": { "url": "https://cdn.example.com/camry/1.jpg" } } } }),
        )
        .await)["sendMessage"]
        .clone();
    assert_eq!(photo["file"]["url"], "https://cdn.example.com/camry/1.jpg");
    let video = ok(inbox
        .api
        .gql(
            &inbox.dealer.token,
            send,
            json!({ "input": { "conversationId": id, "content": { "kind": "VIDEO", "file": { "telegramFileId": "BAACAgIAAxkBAAIC" } } } }),
        )
        .await)["sendMessage"]
        .clone();
    assert_eq!(video["file"]["telegramFileId"], "BAACAgIAAxkBAAIC");
    let location = ok(inbox
        .api
        .gql(
            &inbox.dealer.token,
            send,
            json!({ "input": { "conversationId": id, "content": { "kind": "LOCATION", "location": { "latitude": 50.45, "longitude": 30.52 } } } }),
        )
        .await);
    assert_eq!(location["sendMessage"]["kind"], "LOCATION");

    let events = inbox.api.events().await;
    for (content, expected_field) in [
        (json!({ "kind": "TEXT", "text": "   " }), "text"),
        (json!({ "kind": "TEXT", "text": "x".repeat(4097) }), "text"),
        // Control characters but line breaks and tabs (a NUL is refused for the whole
        // request before it runs: tests/graphql.rs).
        (json!({ "kind": "TEXT", "text": "x\u{1b}[31my" }), "text"),
        (json!({ "kind": "TEXT", "text": "bell\u{7}" }), "text"),
        (
            json!({ "kind": "DOCUMENT", "file": { "telegramFileId": "abc\u{7}" } }),
            "file",
        ),
        (
            json!({ "kind": "PHOTO", "text": "c".repeat(1025), "file": { "telegramFileId": "x" } }),
            "caption",
        ),
        (json!({ "kind": "PHOTO" }), "file"),
        (
            json!({ "kind": "DOCUMENT", "file": { "url": "ftp://example.com/a.pdf" } }),
            "file",
        ),
        (
            json!({ "kind": "LOCATION", "location": { "latitude": 95.0, "longitude": 0.0 } }),
            "location",
        ),
    ] {
        let refused = inbox
            .api
            .gql(
                &inbox.dealer.token,
                send,
                json!({ "input": { "conversationId": id, "content": content } }),
            )
            .await;
        assert_eq!(
            (code(&refused), field(&refused)),
            ("VALIDATION", expected_field),
            "{refused}"
        );
    }
    // The same from an adapter recording a buyer's message.
    for (from, text, expected_field) in [
        (json!({ "firstName": "Ivan" }), "x\u{7}y", "text"),
        (
            json!({ "firstName": "Ivan", "lastName": "\u{1b}" }),
            "Hi",
            "from.lastName",
        ),
    ] {
        let refused = inbox
            .api
            .gql(
                &inbox.bot,
                RECORD,
                json!({ "input": {
                    "botId": BOT, "chatId": 7, "updateId": 900, "telegramMessageId": 9000,
                    "from": from, "content": { "kind": "TEXT", "text": text },
                    "sentAt": "2026-11-22T11:00:00Z",
                } }),
            )
            .await;
        assert_eq!(
            (code(&refused), field(&refused)),
            ("VALIDATION", expected_field),
            "{refused}"
        );
    }
    assert_eq!(
        inbox.api.events().await,
        events,
        "nothing refused was recorded"
    );

    // A buyer who blocked the bot cannot be written to; writing again unblocks.
    ok(inbox
        .api
        .gql(
            &inbox.bot,
            "mutation($bot: ID!) { recordBotBlocked(botId: $bot, chatId: 7, updateId: 2) { blocked } }",
            json!({ "bot": BOT }),
        )
        .await);
    let blocked = inbox
        .api
        .gql(
            &inbox.dealer.token,
            send,
            json!({ "input": { "conversationId": id, "content": { "kind": "TEXT", "text": "Hello?" } } }),
        )
        .await;
    assert_eq!(code(&blocked), "CONFLICT");
    assert!(blocked["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("blocked"));
    inbox
        .inbound(BOT, 7, 3, "Ivan", "Sorry, unblocked you")
        .await;
    ok(inbox
        .api
        .gql(
            &inbox.dealer.token,
            send,
            json!({ "input": { "conversationId": id, "content": { "kind": "TEXT", "text": "Welcome back" } } }),
        )
        .await);
    let conversation = inbox.conversation(&id).await;
    assert_eq!(conversation["blocked"], false);
    assert_eq!(conversation["messageCount"], 7);
    assert_eq!(conversation["lastMessagePreview"], "Welcome back");

    // An unknown conversation id is not found.
    let unknown = inbox
        .api
        .gql(
            &inbox.dealer.token,
            send,
            json!({ "input": { "conversationId": "0190c2a4-6f3e-7a1b-9c2d-3e4f5a6b7c8d", "content": { "kind": "TEXT", "text": "x" } } }),
        )
        .await;
    assert_eq!(code(&unknown), "NOT_FOUND");
    inbox.api.shutdown().await;
}

async fn a_long_conversation_keeps_every_message_in_order(backend: Backend) {
    // Longer than the snapshot interval: the aggregate is loaded from snapshots.
    let inbox = Inbox::new(backend, "long-motors").await;
    let mut id = Value::Null;
    for update in 1..=130 {
        id = inbox
            .inbound(BOT, 9, update, "Ivan", &format!("m{update}"))
            .await["id"]
            .clone();
    }
    // A repeat of an early update, long after, is still recognised.
    inbox.inbound(BOT, 9, 5, "Ivan", "m5 again").await;
    let mut seqs = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let page = ok(inbox
            .api
            .gql(
                &inbox.dealer.token,
                CONVERSATION,
                json!({ "id": id, "before": before, "last": 50 }),
            )
            .await)["conversation"]["messages"]
            .clone();
        for node in page["nodes"].as_array().unwrap() {
            assert_eq!(node["text"], format!("m{}", node["seq"]).as_str());
            seqs.push(node["seq"].as_i64().unwrap());
        }
        if page["hasOlder"] != true {
            break;
        }
        before = page["oldestSeq"].as_i64();
    }
    assert_eq!(seqs, (1..=130).rev().collect::<Vec<_>>());
    inbox.api.shutdown().await;
}

async fn leads_move_through_the_pipeline_with_a_readable_timeline(backend: Backend) {
    let inbox = Inbox::new(backend, "lead-motors").await;
    let api = &inbox.api;
    let token = &inbox.dealer.token;
    let seller = api
        .person(inbox.dealer.id, "seller@lead-motors.example", Role::Member)
        .await;
    let conversation = inbox.inbound(BOT, 5, 1, "Ivan", "Camry under $20k?").await["id"].clone();
    let capture = "mutation($input: CaptureLeadInput!) { captureLead(input: $input) { id status phone source conversationId budget { amountMinor currency } } }";
    let input = json!({ "source": "CONVERSATION", "name": "Ivan", "phone": "067 123 45 67", "brand": "Toyota",
        "model": "Camry", "budget": { "amountMinor": 2_000_000, "currency": "USD" }, "conversationId": conversation });
    let lead = ok(api.gql(token, capture, json!({ "input": input })).await)["captureLead"].clone();
    assert_eq!(lead["status"], "NEW");
    assert_eq!(lead["phone"], "+380671234567");
    // One lead per conversation: capturing again finds it.
    let again = ok(api.gql(token, capture, json!({ "input": input })).await)["captureLead"].clone();
    assert_eq!(again["id"], lead["id"]);
    assert_eq!(inbox.conversation(&conversation).await["leadStatus"], "NEW");

    let bad_phone = api
        .gql(
            token,
            capture,
            json!({ "input": { "name": "X", "phone": "12" } }),
        )
        .await;
    assert_eq!(
        (code(&bad_phone), field(&bad_phone)),
        ("VALIDATION", "phone")
    );
    let nobody = api
        .gql(token, capture, json!({ "input": { "brand": "BMW" } }))
        .await;
    assert_eq!((code(&nobody), field(&nobody)), ("VALIDATION", "contact"));

    let id = lead["id"].clone();
    let status = "mutation($id: ID!, $s: LeadStatus!, $r: String) { changeLeadStatus(id: $id, status: $s, reason: $r) { status lostReason } }";
    let skip = api
        .gql(token, status, json!({ "id": id, "s": "WON" }))
        .await;
    assert_eq!(code(&skip), "CONFLICT");
    for next in ["CONTACTED", "QUALIFIED"] {
        ok(api.gql(token, status, json!({ "id": id, "s": next })).await);
    }
    let no_reason = api
        .gql(token, status, json!({ "id": id, "s": "LOST" }))
        .await;
    assert_eq!(
        (code(&no_reason), field(&no_reason)),
        ("VALIDATION", "reason")
    );
    ok(api
        .gql(token, "mutation($id: ID!) { addLeadNote(id: $id, text: \"Wants a test drive on Saturday\") { notes } }", json!({ "id": id }))
        .await);
    ok(api
        .gql(
            token,
            "mutation($id: ID!, $who: ID) { assignLead(id: $id, assigneeId: $who) { assigneeId } }",
            json!({ "id": id, "who": seller.to_string() }),
        )
        .await);
    let lost = ok(api
        .gql(
            token,
            status,
            json!({ "id": id, "s": "LOST", "r": "Bought elsewhere" }),
        )
        .await);
    assert_eq!(lost["changeLeadStatus"]["lostReason"], "Bought elsewhere");

    let timeline = ok(api
        .gql(
            token,
            "query($id: ID!) { lead(id: $id) { notes timeline { event summary actor } } }",
            json!({ "id": id }),
        )
        .await)["lead"]
        .clone();
    assert_eq!(timeline["notes"], 1);
    let summaries: Vec<_> = timeline["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        summaries,
        [
            "Captured from conversation (Ivan, +380671234567)".to_string(),
            "Status NEW → CONTACTED".to_string(),
            "Status CONTACTED → QUALIFIED".to_string(),
            "Note: Wants a test drive on Saturday".to_string(),
            format!("Assigned to user:{seller}"),
            "Status QUALIFIED → LOST: Bought elsewhere".to_string(),
        ]
    );
    assert_eq!(
        timeline["timeline"][0]["actor"],
        format!("user:{}", inbox.dealer.owner).as_str()
    );

    // Filters: status, source, assignee.
    ok(api
        .gql(
            token,
            capture,
            json!({ "input": { "name": "Form buyer", "source": "FORM" } }),
        )
        .await);
    let list = |filter: Value| async move {
        let page = ok(api
            .gql(
                token,
                "query($f: LeadFilterInput) { leads(filter: $f) { nodes { name } } }",
                json!({ "f": filter }),
            )
            .await);
        page["leads"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(list(json!({})).await, ["Form buyer", "Ivan"]);
    assert_eq!(list(json!({ "statuses": ["LOST"] })).await, ["Ivan"]);
    assert_eq!(list(json!({ "sources": ["FORM"] })).await, ["Form buyer"]);
    assert_eq!(
        list(json!({ "assigneeId": seller.to_string() })).await,
        ["Ivan"]
    );
    assert_eq!(
        list(json!({ "createdFrom": "2999-01-01T00:00:00Z" })).await,
        Vec::<String>::new()
    );
    inbox.api.shutdown().await;
}

async fn subscribers_receive_new_messages_over_a_websocket_within_a_second(backend: Backend) {
    let inbox = Inbox::new(backend, "live-motors").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("ws://{}", listener.local_addr().unwrap());
    let router = inbox.api.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let id = inbox.inbound(BOT, 3, 1, "Ivan", "first").await["id"].clone();
    let mut socket = connect(&base, &inbox.dealer.token).await;
    assert_eq!(
        next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"],
        "connection_ack"
    );
    subscribe(
        &mut socket,
        "messages",
        "subscription($id: ID!) { conversationMessages(id: $id) { seq text direction } }",
        json!({ "id": id }),
    )
    .await;
    subscribe(
        &mut socket,
        "inbox",
        "subscription { inboxChanged { id unreadCount lastMessagePreview } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let sent = Instant::now();
    inbox
        .inbound(BOT, 3, 2, "Ivan", "is it still for sale?")
        .await;
    let mut got_message = None;
    let mut got_summary = None;
    while got_message.is_none() || got_summary.is_none() {
        let message = next(&mut socket, Duration::from_secs(1)).await.unwrap();
        assert_eq!(message["type"], "next", "{message}");
        match message["id"].as_str() {
            Some("messages") => {
                got_message = Some((
                    sent.elapsed(),
                    message["payload"]["data"]["conversationMessages"].clone(),
                ))
            }
            Some("inbox") => got_summary = Some(message["payload"]["data"]["inboxChanged"].clone()),
            other => panic!("unexpected subscription {other:?}"),
        }
    }
    let (elapsed, message) = got_message.unwrap();
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(
        message,
        json!({ "seq": 2, "text": "is it still for sale?", "direction": "INBOUND" })
    );
    let summary = got_summary.unwrap();
    assert_eq!(summary["id"], id);
    assert_eq!(summary["unreadCount"], 2);
    assert_eq!(summary["lastMessagePreview"], "is it still for sale?");

    // The socket serves subscriptions only: it authenticated once, at its start.
    subscribe(
        &mut socket,
        "mutation",
        "mutation { createApiToken(name: \"over the socket\") { token } }",
        json!({}),
    )
    .await;
    let refused = next(&mut socket, Duration::from_secs(5)).await.unwrap();
    assert!(refused.to_string().contains("FORBIDDEN"), "{refused}");

    // Signed out: the open subscriptions end instead of delivering more.
    ok(inbox
        .api
        .gql(&inbox.dealer.token, "mutation { signOut }", json!({}))
        .await);
    inbox.inbound(BOT, 3, 3, "Ivan", "hello?").await;
    let mut completed = Vec::new();
    while completed.len() < 2 {
        let message = next(&mut socket, Duration::from_secs(5)).await.unwrap();
        if message["id"] == "mutation" {
            continue;
        }
        assert_eq!(message["type"], "complete", "{message}");
        completed.push(message["id"].as_str().unwrap().to_string());
    }
    completed.sort();
    assert_eq!(completed, ["inbox", "messages"]);

    // Another workspace cannot subscribe to this conversation.
    let other = inbox.api.dealer("other-live-motors").await;
    let mut stranger = connect(&base, &other.token).await;
    assert_eq!(
        next(&mut stranger, Duration::from_secs(5)).await.unwrap()["type"],
        "connection_ack"
    );
    subscribe(
        &mut stranger,
        "spy",
        "subscription($id: ID!) { conversationMessages(id: $id) { seq text } }",
        json!({ "id": id }),
    )
    .await;
    let refused = next(&mut stranger, Duration::from_secs(5)).await.unwrap();
    assert!(
        refused["type"] == "error" || refused["payload"]["errors"].is_array(),
        "{refused}"
    );
    assert!(refused.to_string().contains("NOT_FOUND"), "{refused}");

    // Without a valid token the connection is refused.
    let mut anonymous = connect(&base, "not-a-token").await;
    let answer = next(&mut anonymous, Duration::from_secs(5)).await;
    assert!(
        answer
            .as_ref()
            .is_none_or(|a| a["type"] != "connection_ack"),
        "{answer:?}"
    );
    server.abort();
    inbox.api.shutdown().await;
}

/// Every column of the Inbox's rows, in a stable order.
async fn inbox_tables(inbox: &Inbox) -> (Vec<ConversationRow>, Vec<MessageRow>, Vec<String>) {
    let db = &inbox.api.test.db;
    let workspace = inbox.dealer.id.0;
    let (conversations, _) =
        queries::conversations(db, workspace, &ConversationFilter::default(), None, 1_000)
            .await
            .unwrap();
    let mut messages = Vec::new();
    for c in &conversations {
        let (page, _) = queries::messages(db, workspace, c.conversation_id, None, 1_000)
            .await
            .unwrap();
        messages.extend(page);
    }
    let search: Vec<String> = cartie_store::on_pool!(db, pool => sqlx::query_scalar(
        "SELECT search_text FROM inbox_conversations ORDER BY conversation_id",
    )
    .fetch_all(pool)
    .await
    .unwrap());
    (conversations, messages, search)
}

async fn the_inbox_rebuilt_in_one_batch_is_the_inbox_projected_message_by_message(
    backend: Backend,
) {
    let inbox = Inbox::new(backend, "batch-motors").await;
    let send = "mutation($id: ID!, $text: String!) { sendMessage(input: { conversationId: $id, \
        content: { kind: TEXT, text: $text } }) { seq } }";
    // Three chats taking turns, so a batch holds several messages of one conversation, each
    // kind of summary change, and contact changes between them.
    let mut ids = Vec::new();
    let mut update = 100;
    for round in 0..4 {
        for chat in 1..=3 {
            update += 1;
            // Chat 2's buyer renames themself in round 2.
            let name = if chat == 2 && round >= 2 {
                "Oksana"
            } else {
                ["Ivan", "Olha", "Petro"][chat as usize - 1]
            };
            let c = inbox
                .inbound(
                    BOT,
                    chat,
                    update,
                    name,
                    &format!("Message {round} from chat {chat}"),
                )
                .await;
            if round == 0 {
                ids.push(c["id"].clone());
            }
        }
        inbox
            .as_dealer(
                send,
                json!({ "id": ids[(round % 3) as usize], "text": format!("Answer {round}") }),
            )
            .await;
    }
    // The same update again (one message), a shared phone number, a read mark, an
    // assignment and a close.
    inbox
        .inbound(BOT, 1, 101, "Ivan", "Message 0 from chat 1")
        .await;
    ok(inbox
        .api
        .gql(
            &inbox.bot,
            RECORD,
            json!({ "input": {
                "botId": BOT, "chatId": 3, "updateId": 200, "telegramMessageId": 2000,
                "from": { "firstName": "Petro" },
                "content": { "kind": "CONTACT", "contact": { "phoneNumber": "+380671112233", "firstName": "Petro" } },
                "sentAt": "2026-11-22T11:00:00Z",
            } }),
        )
        .await);
    inbox.inbound(BOT, 3, 201, "Petro", "Call me").await;
    inbox
        .as_dealer(
            "mutation($id: ID!) { markRead(conversationId: $id) { id } }",
            json!({ "id": ids[0] }),
        )
        .await;
    inbox
        .inbound(BOT, 1, 202, "Ivan", "One more question")
        .await;
    inbox.as_dealer("mutation($id: ID!, $who: ID) { assignConversation(conversationId: $id, assigneeId: $who) { id } }", json!({ "id": ids[1], "who": inbox.dealer.owner.to_string() })).await;
    inbox
        .as_dealer(
            "mutation($id: ID!) { closeConversation(conversationId: $id) { id } }",
            json!({ "id": ids[2] }),
        )
        .await;

    let live = inbox_tables(&inbox).await;
    // What a user sees, so the comparison below compares something.
    let unread: Vec<i64> = live.0.iter().map(|c| c.unread_count).collect();
    assert_eq!(
        live.1.len(),
        12 + 4 + 3,
        "messages: 12 received, 4 answers, a contact, two more"
    );
    assert!(unread.contains(&1) && unread.contains(&4), "{unread:?}");
    assert!(
        live.2.iter().any(|s| s.contains("oksana"))
            && live.2.iter().any(|s| s.contains("+380671112233")),
        "{:?}",
        live.2
    );

    rebuild(&inbox.api.test.db, &InboxProjector, 5_000, |_| {})
        .await
        .unwrap();
    assert_eq!(inbox_tables(&inbox).await, live);
    inbox.api.shutdown().await;
}
