//! The `cartie` command line: serve, migrate, replay, token, schema.

use std::process::ExitCode;

use anyhow::Context;
use cartie_api::app::projectors;
use cartie_api::auth::{Role, TokenKeys};
use cartie_api::config::{ServeSettings, Settings};
use cartie_api::{graphql, telemetry, App};
use cartie_domain::{UserId, WorkspaceId};
use cartie_store::{Database, EventLog};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

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
    /// Runs the API and the projections in one process.
    Serve(ServeSettings),
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
    /// Issues API access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Prints the GraphQL schema (SDL).
    Schema,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Prints a bearer token for a workspace.
    Issue {
        #[arg(long)]
        workspace: Uuid,
        #[arg(long, value_enum, default_value = "admin")]
        role: Role,
        /// The user the token acts as (a fresh id when omitted).
        #[arg(long)]
        user: Option<Uuid>,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24 * 30)]
        ttl_hours: i64,
    },
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
        Commands::Migrate => {
            open_database(&settings).await?;
            println!("migrations applied");
            Ok(())
        }
        Commands::Replay { projection, all } => replay(&settings, projection, all).await,
        Commands::Token(TokenCommand::Issue {
            workspace,
            role,
            user,
            ttl_hours,
        }) => {
            let keys = keys(&settings)?;
            let user = UserId(user.unwrap_or_else(Uuid::now_v7));
            let token = keys.issue(
                WorkspaceId(workspace),
                user,
                role,
                chrono::Duration::hours(ttl_hours),
            )?;
            println!("{token}");
            Ok(())
        }
        Commands::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
    }
}

fn keys(settings: &Settings) -> anyhow::Result<TokenKeys> {
    TokenKeys::load_or_generate(settings.jwt_secret.as_ref(), &settings.data_dir)
        .context("cannot read or create the token signing key in the data directory")
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

async fn run_server(settings: &Settings, serve: &ServeSettings) -> anyhow::Result<()> {
    let db = open_database(settings).await?;
    let app = App::start(db.clone(), keys(settings)?);
    let listener = tokio::net::TcpListener::bind(serve.bind)
        .await
        .with_context(|| format!("cannot listen on {}", serve.bind))?;
    tracing::info!(address = %listener.local_addr()?, backend = ?db.backend(), "serving");
    axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    app.shutdown().await;
    db.close().await;
    tracing::info!("stopped");
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
    let total = EventLog::new(db.clone()).event_count().await?;
    for projector in selected {
        let bar = ProgressBar::new(total.max(0) as u64).with_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:40}] {pos}/{len} events ({per_sec}, {eta})",
            )?
            .progress_chars("=> "),
        );
        bar.set_prefix(projector.name());
        let started = std::time::Instant::now();
        let position =
            cartie_projections::rebuild(&db, projector.as_ref(), 5_000, |n| bar.set_position(n))
                .await?;
        bar.finish();
        println!(
            "{}: rebuilt up to position {} in {:.2?}",
            projector.name(),
            position,
            started.elapsed()
        );
    }
    db.close().await;
    Ok(())
}
