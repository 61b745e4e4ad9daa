//! The Inbox benchmarks: ingest rate, per-message cost as a conversation grows, and list
//! query latency on a large inbox.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use cartie_domain::workspace::Slug;
use cartie_domain::WorkspaceId;
use cartie_store::{on_pool, Database};
use serde_json::json;
use uuid::Uuid;

use super::{percentile, post};

/// What an adapter asks: the acknowledgement that the message is in the log.
const RECORD: &str = "mutation($input: InboundMessageInput!) { recordInboundMessage(input: $input) { conversationId } }";
/// Recording and then reading the conversation as the Inbox shows the message.
const RECORD_SHOWN: &str = "mutation($input: InboundMessageInput!) { recordInboundMessage(input: $input) { conversation { messageCount } } }";
const BOT: &str = "0190c2a4-6f3e-7a1b-9c2d-00000000be01";

fn message(chat: u64, update: u64) -> serde_json::Value {
    json!({ "input": {
        "botId": BOT, "chatId": chat, "updateId": update, "telegramMessageId": update,
        "from": { "firstName": format!("Buyer {chat}"), "username": format!("buyer_{chat}") },
        "content": { "kind": "TEXT", "text": format!("Is car {update} still available? What is the last price?") },
        "sentAt": chrono::Utc::now().to_rfc3339(),
    } })
}

async fn messages_in_inbox(db: &Database) -> anyhow::Result<i64> {
    Ok(on_pool!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM inbox_messages")
            .fetch_one(pool)
            .await?
    }))
}

/// Clients record messages for `seconds`; the rate counts every acknowledged message over
/// the time until the Inbox shows them all (command → event → Inbox row).
pub async fn ingest(
    url: String,
    token: String,
    database_url: String,
    clients: usize,
    seconds: u64,
    conversations: u64,
) -> anyhow::Result<()> {
    let db = Database::connect(&database_url, 2)
        .await
        .context("connect")?;
    let before = messages_in_inbox(&db).await?;
    let http = reqwest::Client::new();
    let endpoint = format!("{url}/graphql");
    // Update ids above any an earlier run on this server sent: a conversation takes an id
    // at or below the ones it has seen for a repeat, which records nothing.
    let first_update = chrono::Utc::now().timestamp() as u64 * 100_000;
    let next = Arc::new(AtomicU64::new(first_update));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (http, endpoint, token, next, errors) = (
                http.clone(),
                endpoint.clone(),
                token.clone(),
                next.clone(),
                errors.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let update = next.fetch_add(1, Ordering::Relaxed);
                    let chat = update % conversations;
                    let t = Instant::now();
                    if post(&http, &endpoint, &token, RECORD, message(chat, update))
                        .await
                        .is_err()
                    {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await?);
    }
    let acknowledged = started.elapsed();
    ensure!(errors.load(Ordering::Relaxed) == 0, "some messages failed");
    let expected = before + latencies.len() as i64;
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = messages_in_inbox(&db).await?;
        if seen >= expected {
            break;
        }
        ensure!(
            Instant::now() < give_up,
            "the Inbox shows {} of {} messages",
            seen - before,
            latencies.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "{}",
        json!({
            "clients": clients,
            "conversations": conversations,
            "messages": latencies.len(),
            "seconds": elapsed.as_secs_f64(),
            "messages_per_second": latencies.len() as f64 / elapsed.as_secs_f64(),
            "p50_ms": percentile(&latencies, 0.50),
            "p99_ms": percentile(&latencies, 0.99),
            "shown_after_last_ms": (elapsed - acknowledged).as_secs_f64() * 1000.0,
        })
    );
    Ok(())
}

pub async fn growth(
    url: String,
    token: String,
    messages: usize,
    window: usize,
) -> anyhow::Result<()> {
    ensure!(
        messages >= 2 * window,
        "need at least two windows of messages"
    );
    let http = reqwest::Client::new();
    let endpoint = format!("{url}/graphql");
    // A fresh chat per run, so the conversation starts empty.
    let chat = (Uuid::now_v7().as_u128() % 1_000_000_000) as u64 + 10_000_000;
    let mut latencies = Vec::with_capacity(messages);
    for update in 1..=messages as u64 {
        let t = Instant::now();
        post(
            &http,
            &endpoint,
            &token,
            RECORD_SHOWN,
            message(chat, update),
        )
        .await?;
        latencies.push(t.elapsed());
    }
    let median = |slice: &[Duration]| {
        let mut sorted = slice.to_vec();
        sorted.sort();
        percentile(&sorted, 0.5)
    };
    let first = median(&latencies[..window]);
    let last = median(&latencies[messages - window..]);
    println!(
        "{}",
        json!({
            "messages": messages,
            "window": window,
            "first_window_median_ms": first,
            "last_window_median_ms": last,
            "last_over_first": last / first,
        })
    );
    Ok(())
}

/// Rows straight into the Inbox read model, in multi-row statements.
pub async fn seed_inbox(
    database_url: String,
    workspace_slug: String,
    conversations: i64,
    messages: i64,
) -> anyhow::Result<()> {
    let db = Database::connect(&database_url, 4)
        .await
        .context("connect")?;
    db.migrate().await?;
    let Database::Postgres(pool) = &db else {
        anyhow::bail!("seed-inbox fills PostgreSQL (the benchmark's target)");
    };
    let workspace = WorkspaceId::for_slug(
        &Slug::parse("slug", &workspace_slug).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let bots = [
        Uuid::from_u128(0xb1),
        Uuid::from_u128(0xb2),
        Uuid::from_u128(0xb3),
    ];
    let per_conversation = messages / conversations;
    let started = Instant::now();
    let base = chrono::Utc::now() - chrono::Duration::days(365);
    // Conversations, 5,000 per statement (generate_series keeps it in the server).
    sqlx::query(
        "INSERT INTO inbox_conversations (conversation_id, workspace_id, bot_id, chat_id, first_name, last_name, \
         username, phone, closed, blocked, assignee, message_count, read_up_to, unread_count, last_message_preview, \
         last_message_at, search_text, changed_position, created_at) \
         SELECT md5($1::text || n)::uuid, $1, ($2::uuid[])[1 + n % 3], n, 'Buyer', 'N' || n, 'buyer_' || n, \
         '+38067' || lpad(n::text, 7, '0'), n % 7 = 0, false, NULL, $3, $3 - (n % 4), n % 4, \
         'Is the car still available? ' || n, $4 + make_interval(secs => n * 300), \
         'buyer n' || n || ' buyer_' || n || ' +38067' || lpad(n::text, 7, '0'), n, $4 \
         FROM generate_series(1, $5) AS n",
    )
    .bind(workspace.0)
    .bind(&bots[..])
    .bind(per_conversation)
    .bind(base)
    .bind(conversations)
    .execute(pool)
    .await?;
    eprintln!("{conversations} conversations in {:.1?}", started.elapsed());
    // Messages, a batch of conversations at a time.
    let batch = 5_000i64;
    let mut from = 1;
    while from <= conversations {
        let to = (from + batch - 1).min(conversations);
        sqlx::query(
            "INSERT INTO inbox_messages (conversation_id, seq, workspace_id, direction, kind, text, text_key, content, \
             telegram_message_id, delivery, failure_reason, reply_to, author, sent_at, edited_at, position) \
             SELECT md5($1::text || n)::uuid, s, $1, CASE WHEN s % 2 = 1 THEN 'INBOUND' ELSE 'OUTBOUND' END, 'TEXT', \
             t, lower(t), json_build_object('kind', 'TEXT', 'text', t)::text, s, \
             CASE WHEN s % 2 = 1 THEN 'RECEIVED' ELSE 'DELIVERED' END, NULL, NULL, \
             CASE WHEN s % 2 = 1 THEN 'buyer' ELSE 'user:seed' END, $2 + make_interval(secs => n * 300 + s), NULL, n * 100 + s \
             FROM generate_series($3::bigint, $4::bigint) AS n, generate_series(1, $5) AS s, \
             LATERAL (SELECT 'Message ' || s || ' about car ' || (n * 31 + s) % 997 || ' in chat ' || n AS t) AS m",
        )
        .bind(workspace.0)
        .bind(base)
        .bind(from)
        .bind(to)
        .bind(per_conversation)
        .execute(pool)
        .await?;
        from = to + 1;
        if from % 20_000 == 1 {
            eprintln!(
                "messages for {} conversations in {:.1?}",
                from - 1,
                started.elapsed()
            );
        }
    }
    sqlx::query("ANALYZE inbox_conversations")
        .execute(pool)
        .await?;
    sqlx::query("ANALYZE inbox_messages").execute(pool).await?;
    println!(
        "{}",
        json!({ "conversations": conversations, "messages": per_conversation * conversations, "seconds": started.elapsed().as_secs_f64() })
    );
    Ok(())
}

pub async fn inbox_query(url: String, token: String, requests: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let endpoint = format!("{url}/graphql");
    let queries = [
        ("first_page", "{ conversations(first: 30) { nodes { id contact { displayName } unreadCount lastMessagePreview lastMessageAt leadStatus } endCursor } }"),
        ("unread", "{ conversations(first: 30, filter: { unreadOnly: true }) { nodes { id unreadCount } } }"),
        ("by_bot", "{ conversations(first: 30, filter: { botId: \"00000000-0000-0000-0000-0000000000b2\" }) { nodes { id } } }"),
        ("search_contact", "{ conversations(first: 30, filter: { search: \"buyer_4242\" }) { nodes { id } } }"),
        ("search_text", "{ conversations(first: 30, filter: { search: \"car 512 in chat 9\" }) { nodes { id } } }"),
    ];
    let mut results = serde_json::Map::new();
    for (name, query) in queries {
        // Warm up, then measure.
        for _ in 0..10 {
            post(&http, &endpoint, &token, query, json!({})).await?;
        }
        let mut latencies = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            post(&http, &endpoint, &token, query, json!({})).await?;
            latencies.push(t.elapsed());
        }
        latencies.sort();
        results.insert(
            name.to_string(),
            json!({ "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99) }),
        );
    }
    println!("{}", serde_json::Value::Object(results));
    Ok(())
}
