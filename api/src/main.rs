//! The `cartie` command line: serve, worker, migrate, replay, seed, token, schema.

use std::process::ExitCode;

use anyhow::Context;
use cartie_api::app::projectors;
use cartie_api::auth::TokenKeys;
use cartie_api::config::{ServeSettings, Settings};
use cartie_api::secrets::SecretKey;
use cartie_api::{accounts, graphql, seed, telemetry, App, Keys, Options};
use cartie_domain::member::Role;
use cartie_domain::values::Text;
use cartie_domain::{Actor, CommandContext};
use cartie_projections::directory::queries;
use cartie_store::{Database, EventLog};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::ExposeSecret;

/// mimalloc instead of the system allocator: the server allocates and frees many small
/// buffers per request (HTTP, JSON, rows), where glibc's malloc took about a seventh of
/// its CPU under load (docs/BENCHMARKS.md, "Allocator"). Built without transparent huge
/// pages (`no_thp`): batch after batch, the kernel zeroed 2 MiB pages that mimalloc had
/// purged and touched again (docs/BENCHMARKS.md, 2026-12-04 evening).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cartie",
    version,
    about = "Cartie: inventory, inbox and leads for car dealers on Telegram"
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Runs the API, the projections and the Telegram workers in one process.
    Serve(ServeSettings),
    /// Runs the projections and the Telegram workers (long polling, delivery) without
    /// the API, beside `cartie serve --no-telegram-workers`.
    Worker,
    /// Applies database migrations and exits.
    Migrate,
    /// Rebuilds read models from the start of the event log.
    Replay {
        /// The projection to rebuild (e.g. `inventory`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        projection: Option<String>,
        /// Rebuild every projection.
        #[arg(long)]
        all: bool,
    },
    /// Creates the platform workspace and its first owner (CARTIE_ADMIN_EMAIL,
    /// CARTIE_ADMIN_PASSWORD); with --demo, a demo dealer with sample inventory too.
    /// Idempotent: what exists is left as it is.
    Seed {
        #[arg(long)]
        demo: bool,
    },
    /// API tokens for bots and integrations.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Prints the GraphQL schema (SDL).
    Schema,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Creates an API token in a workspace and prints it (shown this once).
    #[command(visible_alias = "issue")]
    Create {
        /// The workspace's slug or id.
        #[arg(long)]
        workspace: String,
        /// What the token is for, as the workspace's list of tokens shows it.
        #[arg(long, default_value = "issued on the command line")]
        name: String,
        #[arg(long, value_enum, default_value = "member")]
        role: TokenRole,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum TokenRole {
    Admin,
    Member,
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    telemetry::init_logging(&cli.settings.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    match cli.command {
        Commands::Serve(serve) => run_server(&settings, &serve).await,
        Commands::Worker => run_worker(&settings).await,
        Commands::Migrate => {
            open_database(&settings).await?;
            println!("migrations applied");
            Ok(())
        }
        Commands::Replay { projection, all } => replay(&settings, projection, all).await,
        Commands::Seed { demo } => {
            let db = open_database(&settings).await?;
            let app = App::start(db.clone(), keys(&settings)?);
            let log = EventLog::new(db.clone());
            let before = log.event_count().await?;
            let result = async {
                let mut report = seed::platform(
                    &app.services,
                    settings.admin_email.as_deref(),
                    settings.admin_password.as_ref(),
                )
                .await?;
                if demo {
                    seed::demo(&app.services, settings.demo_password.as_ref(), &mut report).await?;
                }
                Ok::<_, seed::SeedError>(report)
            }
            .await;
            let after = log.event_count().await?;
            app.shutdown().await;
            close(&db).await;
            let report = result.context("seeding failed")?;
            print_report(&report);
            println!("{} new events", after - before);
            Ok(())
        }
        Commands::Token(TokenCommand::Create {
            workspace,
            name,
            role,
        }) => {
            let db = open_database(&settings).await?;
            let app = App::start(db.clone(), keys(&settings)?);
            let result = async {
                let found = match uuid::Uuid::parse_str(&workspace) {
                    Ok(id) => queries::workspace(&db, id).await?,
                    Err(_) => queries::workspace_by_slug(&db, &workspace).await?,
                }
                .with_context(|| format!("no workspace with the slug or id {workspace:?}"))?;
                let name = Text::parse("name", &name, Text::SHORT)
                    .map_err(|e| anyhow::anyhow!("--name {}", e.message))?;
                let role = match role {
                    TokenRole::Admin => Role::Admin,
                    TokenRole::Member => Role::Member,
                };
                let context = CommandContext::new(
                    cartie_domain::WorkspaceId(found.workspace_id),
                    Actor::System,
                    chrono::Utc::now(),
                );
                accounts::create_api_token(&app.services, context, name, role)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))
            }
            .await;
            app.shutdown().await;
            close(&db).await;
            let (_, token) = result?;
            println!("{}", token.expose_secret());
            Ok(())
        }
        Commands::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
    }
}

/// Closes the database's pools, waiting at most a few seconds: a connection held by a query
/// to a server that stopped answering is never given back, and the process must still end.
async fn close(db: &Database) {
    if tokio::time::timeout(std::time::Duration::from_secs(5), db.close())
        .await
        .is_err()
    {
        tracing::warn!("the database did not let go of its connections in time; stopping anyway");
    }
}

fn keys(settings: &Settings) -> anyhow::Result<Keys> {
    let tokens = TokenKeys::load_or_generate(settings.jwt_secret.as_ref(), &settings.data_dir)
        .context("cannot read or create the token signing key")?;
    let secrets = SecretKey::load_or_generate(settings.secret_key.as_ref(), &settings.data_dir)
        .context("cannot read or create the secret-sealing key")?;
    Ok(Keys { tokens, secrets })
}

async fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    let url = settings.database_url();
    if url.starts_with("sqlite:") {
        settings
            .ensure_data_dir()
            .context("cannot create the data directory")?;
    }
    let db = Database::connect(&url, settings.database_max_connections)
        .await
        .with_context(|| {
            format!(
                "cannot open the {} database",
                if url.starts_with("sqlite:") {
                    "SQLite"
                } else {
                    "PostgreSQL"
                }
            )
        })?;
    db.migrate().await.context("cannot apply migrations")?;
    Ok(db)
}

/// The platform on the configured database, with or without the Telegram workers.
async fn start_app(settings: &Settings, telegram_workers: bool) -> anyhow::Result<(Database, App)> {
    let db = open_database(settings).await?;
    let app = App::start_with_options(
        db.clone(),
        keys(settings)?,
        Options {
            telegram: settings.telegram(),
            telegram_workers,
            ..Options::default()
        },
    );
    Ok((db, app))
}

async fn run_server(settings: &Settings, serve: &ServeSettings) -> anyhow::Result<()> {
    let (db, app) = start_app(settings, !serve.no_telegram_workers).await?;
    seed_on_start(&app, settings, serve).await?;
    let listener = tokio::net::TcpListener::bind(serve.bind)
        .await
        .with_context(|| format!("cannot listen on {}", serve.bind))?;
    tracing::info!(address = %listener.local_addr()?, backend = ?db.backend(), "serving");
    axum::serve(
        listener,
        app.router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    app.shutdown().await;
    close(&db).await;
    tracing::info!("stopped");
    Ok(())
}

async fn run_worker(settings: &Settings) -> anyhow::Result<()> {
    let (db, app) = start_app(settings, true).await?;
    tracing::info!(backend = ?db.backend(), "worker running");
    shutdown_signal().await;
    app.shutdown().await;
    close(&db).await;
    tracing::info!("stopped");
    Ok(())
}

fn print_report(report: &seed::SeedReport) {
    for line in &report.lines {
        println!("{line}");
    }
    if let Some(password) = &report.generated_demo_password {
        println!(
            "demo sign-in: {} / {} (shown this once)",
            seed::DEMO_EMAIL,
            password.expose_secret()
        );
    }
}

/// On start: the platform's first owner when configured, the demo dealer when asked for.
/// Both leave what exists as it is.
async fn seed_on_start(
    app: &App,
    settings: &Settings,
    serve: &ServeSettings,
) -> anyhow::Result<()> {
    let mut report = seed::SeedReport::default();
    if settings.admin_email.is_some() || settings.admin_password.is_some() {
        report = seed::platform(
            &app.services,
            settings.admin_email.as_deref(),
            settings.admin_password.as_ref(),
        )
        .await
        .context("cannot create the platform administrator")?;
    }
    if serve.demo {
        seed::demo(&app.services, settings.demo_password.as_ref(), &mut report)
            .await
            .context("cannot create the demo workspace")?;
    }
    print_report(&report);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

async fn replay(settings: &Settings, projection: Option<String>, all: bool) -> anyhow::Result<()> {
    let db = open_database(settings).await?;
    let available = projectors();
    let selected: Vec<_> = if all {
        available
    } else {
        let name = projection.unwrap_or_default();
        let names: Vec<_> = available.iter().map(|p| p.name()).collect();
        let found: Vec<_> = available.into_iter().filter(|p| p.name() == name).collect();
        anyhow::ensure!(
            !found.is_empty(),
            "unknown projection {name:?}; known: {}",
            names.join(", ")
        );
        found
    };
    // The bars' length, counted while the first rebuild runs: counting a large log is a
    // scan of it, which would otherwise hold up the start (a tenth of a second for 100,000
    // events on PostgreSQL).
    let (counted, total) = tokio::sync::watch::channel(None);
    let counting = {
        let log = EventLog::new(db.clone());
        tokio::spawn(async move {
            match log.event_count().await {
                Ok(total) => {
                    counted.send_replace(Some(total.max(0) as u64));
                }
                Err(error) => tracing::warn!(%error, "could not count the log's events"),
            }
        })
    };
    for projector in selected {
        let bar = ProgressBar::no_length().with_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:40}] {pos}/{len} events ({per_sec}, {eta})",
            )?
            .progress_chars("=> "),
        );
        bar.set_prefix(projector.name());
        let started = std::time::Instant::now();
        let position = cartie_projections::rebuild(&db, projector.as_ref(), 5_000, |n| {
            if let Some(total) = *total.borrow() {
                bar.set_length(total);
            }
            bar.set_position(n)
        })
        .await?;
        bar.finish();
        println!(
            "{}: rebuilt up to position {} in {:.2?}",
            projector.name(),
            position,
            started.elapsed()
        );
    }
    if let Err(error) = counting.await {
        tracing::warn!(%error, "counting the log's events");
    }
    close(&db).await;
    Ok(())
}
