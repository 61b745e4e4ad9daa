//! `cartie-bench load`: drives a running server over HTTP with N concurrent clients, each
//! creating a listing and changing its price in a loop, and prints commands/s with p50/p99
//! latency as one JSON line.
//!
//! `cartie-bench seed`: appends N listings × (create + price change) straight through the
//! command bus, to give the replay benchmark a log of a known size.
//!
//! `cartie-bench ingest`: N concurrent integrations record inbound messages over HTTP
//! (`recordInboundMessage`, answered once the message is in the log) across many
//! conversations; prints messages/s until the Inbox shows every one of them, with p50/p99
//! of the acknowledgement.
//!
//! `cartie-bench growth`: one conversation grows message by message, each answered once the
//! Inbox shows it; prints the median latency of the first and the last window of messages,
//! and their ratio.
//!
//! `cartie-bench seed-inbox`: fills the Inbox read model of a workspace with N conversations
//! and M messages (rows written directly, in bulk), for the query benchmark.
//!
//! `cartie-bench inbox-query`: lists conversations (first page, unread, by bot, search)
//! repeatedly; prints p50/p99 per query.
//!
//! `cartie-bench seed-requests`: fills the Inventory and Requests read models of a workspace
//! (listings, requests, partners, variants; rows written directly, in bulk) and
//! `cartie-bench requests-query` times the request lists, one request with its variants and
//! matching (see `requests_bench`).
//!
//! `cartie-bench telegram-webhook` and `telegram-delivery`: start `cartie serve` against a
//! loopback fake Bot API and measure webhook ingest and the delivery reactor's pacing
//! (see `telegram_bench`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use cartie_domain::listing::{Listing, ListingCommand, ListingDetails, ListingStatus, Photos};
use cartie_domain::values::{Currency, Money, Text, Year};
use cartie_domain::{Actor, Command, CommandContext, ListingId, UserId, WorkspaceId};
use cartie_store::{CommandBus, Database, LogNotifier};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Load {
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        #[arg(long)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    Seed {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        listings: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    Ingest {
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        /// The server's database, to see when the Inbox shows every message.
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 1000)]
        conversations: u64,
    },
    Growth {
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        #[arg(long, default_value_t = 3000)]
        messages: usize,
        #[arg(long, default_value_t = 200)]
        window: usize,
    },
    SeedInbox {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        workspace_slug: String,
        #[arg(long, default_value_t = 100_000)]
        conversations: i64,
        #[arg(long, default_value_t = 2_000_000)]
        messages: i64,
    },
    InboxQuery {
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        #[arg(long, default_value_t = 500)]
        requests: usize,
    },
    SeedRequests {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        workspace_slug: String,
        #[arg(long, default_value_t = 1_000_000)]
        listings: i64,
        #[arg(long, default_value_t = 50_000)]
        requests: i64,
        #[arg(long, default_value_t = 10)]
        variants_per_request: i64,
    },
    RequestsQuery {
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        #[arg(long, default_value_t = 500)]
        requests: usize,
    },
    TelegramWebhook {
        #[command(flatten)]
        target: TelegramTarget,
        #[arg(long)]
        clients: usize,
        #[arg(long, default_value_t = 20_000)]
        updates: u64,
        #[arg(long, default_value_t = 1000)]
        chats: u64,
    },
    TelegramDelivery {
        #[command(flatten)]
        target: TelegramTarget,
        #[arg(long, default_value_t = 100)]
        chats: i64,
        #[arg(long, default_value_t = 10)]
        messages_per_chat: usize,
    },
}

/// The `cartie` binary to start and where it keeps its data.
#[derive(clap::Args)]
struct TelegramTarget {
    #[arg(long)]
    cartie: String,
    #[arg(long)]
    database_url: String,
    #[arg(long)]
    data_dir: String,
    /// An API token of the workspace.
    #[arg(long)]
    token: String,
    #[arg(long, default_value = "demo-motors")]
    workspace_slug: String,
}

impl From<TelegramTarget> for telegram_bench::Target {
    fn from(t: TelegramTarget) -> Self {
        Self {
            cartie: t.cartie,
            database_url: t.database_url,
            data_dir: t.data_dir,
            token: t.token,
            workspace_slug: t.workspace_slug,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Load {
            url,
            token,
            clients,
            seconds,
        } => load(url, token, clients, seconds).await,
        Cmd::Seed {
            database_url,
            listings,
            concurrency,
        } => seed(database_url, listings, concurrency).await,
        Cmd::Ingest {
            url,
            token,
            database_url,
            clients,
            seconds,
            conversations,
        } => inbox_bench::ingest(url, token, database_url, clients, seconds, conversations).await,
        Cmd::Growth {
            url,
            token,
            messages,
            window,
        } => inbox_bench::growth(url, token, messages, window).await,
        Cmd::SeedInbox {
            database_url,
            workspace_slug,
            conversations,
            messages,
        } => inbox_bench::seed_inbox(database_url, workspace_slug, conversations, messages).await,
        Cmd::InboxQuery {
            url,
            token,
            requests,
        } => inbox_bench::inbox_query(url, token, requests).await,
        Cmd::SeedRequests {
            database_url,
            workspace_slug,
            listings,
            requests,
            variants_per_request,
        } => {
            requests_bench::seed_requests(
                database_url,
                workspace_slug,
                listings,
                requests,
                variants_per_request,
            )
            .await
        }
        Cmd::RequestsQuery {
            url,
            token,
            requests,
        } => requests_bench::requests_query(url, token, requests).await,
        Cmd::TelegramWebhook {
            target,
            clients,
            updates,
            chats,
        } => telegram_bench::webhook(target.into(), clients, updates, chats).await,
        Cmd::TelegramDelivery {
            target,
            chats,
            messages_per_chat,
        } => telegram_bench::delivery(target.into(), chats, messages_per_chat).await,
    }
}

mod inbox_bench;
mod requests_bench;
mod telegram_bench;

const CREATE: &str =
    "mutation($input: CreateListingInput!) { createListing(input: $input) { id version } }";
const PRICE: &str = "mutation($id: ID!, $amount: Int!) { changeListingPrice(input: { id: $id, price: { amountMinor: $amount, currency: USD } }) { version } }";

async fn load(url: String, token: String, clients: usize, seconds: u64) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let endpoint = format!("{url}/graphql");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let (http, endpoint, token, errors) = (http.clone(), endpoint.clone(), token.clone(), errors.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    let input = json!({
                        "title": format!("Bench car {client}-{i}"), "brand": "Toyota", "model": "Corolla",
                        "year": 2020, "mileageKm": 42_000, "city": "Kyiv", "status": "AVAILABLE",
                        "price": { "amountMinor": 1_500_000, "currency": "USD" }
                    });
                    let t = Instant::now();
                    let created = post(&http, &endpoint, &token, CREATE, json!({ "input": input })).await;
                    latencies.push(t.elapsed());
                    let Some(id) = created.as_ref().ok().and_then(|v| v["createListing"]["id"].as_str().map(str::to_string)) else {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let t = Instant::now();
                    if post(&http, &endpoint, &token, PRICE, json!({ "id": id, "amount": 1_450_000 })).await.is_err() {
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
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| percentile(&latencies, p);
    println!(
        "{}",
        json!({
            "clients": clients,
            "commands": latencies.len(),
            "errors": errors.load(Ordering::Relaxed),
            "seconds": elapsed,
            "commands_per_second": latencies.len() as f64 / elapsed,
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
        })
    );
    ensure!(errors.load(Ordering::Relaxed) == 0, "some commands failed");
    Ok(())
}

/// The `p` quantile of sorted latencies, in milliseconds.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted
        .get(index)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

pub(crate) async fn post(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let response: Value = http
        .post(endpoint)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    ensure!(response["errors"].is_null(), "{response}");
    Ok(response["data"].clone())
}

async fn seed(database_url: String, listings: usize, concurrency: usize) -> anyhow::Result<()> {
    let db = Database::connect(&database_url, concurrency as u32 + 2)
        .await
        .context("connect")?;
    db.migrate().await?;
    let bus = Arc::new(CommandBus::<Listing>::new(&db, LogNotifier::new(), ()));
    let workspace = WorkspaceId(Uuid::now_v7());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (bus, next) = (bus.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if n >= listings {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let context = || {
                        CommandContext::new(
                            workspace,
                            Actor::User(UserId(Uuid::nil())),
                            chrono::Utc::now(),
                        )
                    };
                    let id = ListingId::generate().to_string();
                    let details = ListingDetails {
                        brand: Some(Text::parse(
                            "brand",
                            ["Toyota", "BMW", "Skoda", "Kia"][n % 4],
                            100,
                        )?),
                        model: Some(Text::parse("model", "Model", 100)?),
                        year: Some(Year::parse("year", 2000 + (n % 25) as i32, 2026)?),
                        ..ListingDetails::titled(Text::parse(
                            "title",
                            &format!("Seeded car {n}"),
                            200,
                        )?)
                    };
                    let price = |amount| Money::price("price", amount, Currency::USD);
                    let create = ListingCommand::CreateListing {
                        details,
                        price: Some(price(1_000_000 + n as i64)?),
                        photos: Photos::default(),
                        status: ListingStatus::Available,
                    };
                    bus.execute(&id, Command::new(context(), create))
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    let change = ListingCommand::ChangeListingPrice {
                        price: price(900_000 + n as i64)?,
                    };
                    bus.execute(&id, Command::new(context(), change))
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    println!(
        "{}",
        json!({ "listings": listings, "events": listings * 2, "seconds": started.elapsed().as_secs_f64() })
    );
    db.close().await;
    Ok(())
}
