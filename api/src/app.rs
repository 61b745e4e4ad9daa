//! The composition root: one database, the command buses, the projection runners.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use cartie_domain::api_token::ApiToken;
use cartie_domain::bot::TelegramBot;
use cartie_domain::inbox::Conversation;
use cartie_domain::lead::Lead;
use cartie_domain::listing::Listing;
use cartie_domain::member::Member;
use cartie_domain::partner::Partner;
use cartie_domain::request::Request;
use cartie_domain::workspace::Workspace;
use cartie_projections::bots::BotCredentials;
use cartie_projections::bots::BotsProjector;
use cartie_projections::directory::DirectoryProjector;
use cartie_projections::inbox::InboxProjector;
use cartie_projections::inventory::InventoryProjector;
use cartie_projections::leads::LeadsProjector;
use cartie_projections::requests::RequestsProjector;
use cartie_projections::telegram_delivery::TelegramDeliveryProjector;
use cartie_projections::{ProjectionProgress, ProjectionRunner, Projector};
use cartie_store::{CommandBus, Database, LogNotifier, LogPosition};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::accounts::{PresentedApiToken, Throttle};
use crate::auth::TokenKeys;
use crate::error::ApiError;
use crate::recent::Recent;
use crate::secrets::SecretKey;
use crate::telegram::{BotClients, OpenBotError, OpenedBot, TelegramSettings, UpdateMarks};

/// Every projection the platform runs, by name.
pub fn projectors() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(InventoryProjector),
        Arc::new(DirectoryProjector),
        Arc::new(InboxProjector),
        Arc::new(LeadsProjector),
        Arc::new(BotsProjector),
        Arc::new(TelegramDeliveryProjector),
        Arc::new(RequestsProjector),
    ]
}

/// How long a stopping process waits for its projection runners to finish their batch.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A conversation is loaded from a snapshot taken every this many events, so handling one
/// more message costs the same however long the conversation is.
pub const CONVERSATION_SNAPSHOT_EVERY: usize = 50;

/// A request is loaded from a snapshot taken every this many events.
pub const REQUEST_SNAPSHOT_EVERY: usize = 50;

/// What request handlers use.
pub struct Services {
    pub db: Database,
    pub listings: CommandBus<Listing>,
    pub workspaces: CommandBus<Workspace>,
    pub members: CommandBus<Member>,
    pub api_tokens: CommandBus<ApiToken>,
    pub conversations: CommandBus<Conversation>,
    pub leads: CommandBus<Lead>,
    pub bots_bus: CommandBus<TelegramBot>,
    pub requests: CommandBus<Request>,
    pub partners: CommandBus<Partner>,
    pub inventory: ProjectionProgress,
    pub directory: ProjectionProgress,
    pub inbox: ProjectionProgress,
    pub leads_progress: ProjectionProgress,
    pub bots: ProjectionProgress,
    pub telegram_delivery: ProjectionProgress,
    pub requests_progress: ProjectionProgress,
    pub projections: Vec<ProjectionProgress>,
    pub keys: TokenKeys,
    pub secret_key: SecretKey,
    pub throttle: Throttle,
    pub telegram: TelegramSettings,
    pub telegram_clients: BotClients,
    pub update_marks: UpdateMarks,
    /// Bots' credentials as this process's webhook last accepted an update with them,
    /// trusted only to accept (ADR 0017): a request they would refuse (an unknown, disabled
    /// or polling bot, a wrong secret) is checked against the read model first.
    pub webhook_bots: Recent<Uuid, BotCredentials>,
    /// Integration API tokens this process read (ADR 0020).
    pub recent_api_tokens: Recent<Uuid, PresentedApiToken>,
}

/// How long a mutation waits for the read model it answers from.
pub const READ_YOUR_WRITES: Duration = Duration::from_secs(5);

/// Waits until a projection (that of `read_model`) shows the change at `position`; a change
/// recorded but not shown within [`READ_YOUR_WRITES`] answers `CatchingUp`.
pub async fn shown(
    progress: &ProjectionProgress,
    position: Option<LogPosition>,
    read_model: &str,
) -> Result<(), ApiError> {
    if let Some(position) = position {
        if !progress.wait_for(position, READ_YOUR_WRITES).await {
            return Err(ApiError::CatchingUp(format!(
                "the change was recorded but the {read_model} has not caught up yet; read again shortly"
            )));
        }
    }
    Ok(())
}

impl Services {
    /// A bot's Bot API client and webhook secret, its sealed secrets opened with this
    /// server's key (once per version of the bot).
    pub fn open_bot(&self, bot: &BotCredentials) -> Result<OpenedBot, OpenBotError> {
        self.telegram_clients
            .open(&self.secret_key, &self.telegram, bot)
    }
}

/// How the platform runs beyond its database and keys.
#[derive(Default)]
pub struct Options {
    pub throttle: Throttle,
    pub telegram: TelegramSettings,
    /// Run long polling and the delivery reactor in this process (`cartie serve` and
    /// `cartie worker` do; one-off commands do not).
    pub telegram_workers: bool,
}

/// The keys the platform signs and seals with.
#[derive(Clone, Debug)]
pub struct Keys {
    pub tokens: TokenKeys,
    pub secrets: SecretKey,
}

/// The running platform: services plus the background tasks (projection runners, the
/// PostgreSQL notification listener) until [`App::shutdown`].
pub struct App {
    pub services: Arc<Services>,
    shutdown: watch::Sender<bool>,
    runners: Vec<JoinHandle<()>>,
    /// Tasks that loop until aborted (PostgreSQL notification listener and publisher).
    background: Vec<JoinHandle<()>>,
}

impl App {
    /// Starts the projection runners on a migrated database.
    pub fn start(db: Database, keys: Keys) -> Self {
        Self::start_with(db, keys, Throttle::default())
    }

    /// Like [`App::start`], with the given sign-in throttle.
    pub fn start_with(db: Database, keys: Keys, throttle: Throttle) -> Self {
        Self::start_with_options(
            db,
            keys,
            Options {
                throttle,
                ..Options::default()
            },
        )
    }

    /// Like [`App::start`], with the given options.
    pub fn start_with_options(db: Database, keys: Keys, options: Options) -> Self {
        let Options {
            throttle,
            telegram,
            telegram_workers,
        } = options;
        // Install the metrics recorder before anything records.
        crate::telemetry::metrics();
        let notifier = LogNotifier::new();
        let (shutdown, stopped) = watch::channel(false);
        let mut background = Vec::new();
        if let Database::Postgres(pool) = &db {
            background.push(notifier.listen_postgres(pool.clone()));
            background.push(notifier.publish_postgres(pool.clone()));
        }
        let mut runners = Vec::new();
        let mut projections = Vec::new();
        for projector in projectors() {
            let runner = ProjectionRunner::new(db.clone(), projector, notifier.clone());
            projections.push(runner.progress());
            runners.push(tokio::spawn(runner.run(stopped.clone())));
        }
        let progress = |name: &str| {
            projections
                .iter()
                .find(|p| p.name() == name)
                .cloned()
                .expect("every projection is registered")
        };
        let services = Arc::new(Services {
            listings: CommandBus::new(&db, notifier.clone(), ()),
            workspaces: CommandBus::new(&db, notifier.clone(), ()),
            members: CommandBus::new(&db, notifier.clone(), ()),
            api_tokens: CommandBus::new(&db, notifier.clone(), ()),
            // A busy conversation collects thousands of events: load it from a snapshot.
            conversations: CommandBus::with_snapshots(
                &db,
                notifier.clone(),
                (),
                CONVERSATION_SNAPSHOT_EVERY,
            ),
            leads: CommandBus::new(&db, notifier.clone(), ()),
            bots_bus: CommandBus::new(&db, notifier.clone(), ()),
            // A request collects many variants: load it from a snapshot.
            requests: CommandBus::with_snapshots(&db, notifier.clone(), (), REQUEST_SNAPSHOT_EVERY),
            partners: CommandBus::new(&db, notifier.clone(), ()),
            db,
            inventory: progress(InventoryProjector::NAME),
            directory: progress(DirectoryProjector::NAME),
            inbox: progress(InboxProjector::NAME),
            leads_progress: progress(LeadsProjector::NAME),
            bots: progress(BotsProjector::NAME),
            telegram_delivery: progress(TelegramDeliveryProjector::NAME),
            requests_progress: progress(RequestsProjector::NAME),
            projections,
            keys: keys.tokens,
            secret_key: keys.secrets,
            throttle,
            telegram,
            telegram_clients: BotClients::default(),
            update_marks: UpdateMarks::default(),
            webhook_bots: Recent::default(),
            recent_api_tokens: Recent::default(),
        });
        runners.push(tokio::spawn(UpdateMarks::run(
            services.clone(),
            stopped.clone(),
        )));
        if telegram_workers {
            runners.push(tokio::spawn(crate::telegram::polling::run(
                services.clone(),
                stopped.clone(),
            )));
            runners.push(tokio::spawn(crate::telegram::delivery::run(
                services.clone(),
                stopped.clone(),
            )));
        }
        Self {
            services,
            shutdown,
            runners,
            background,
        }
    }

    pub fn router(&self) -> Router {
        crate::http::router(self.services.clone())
    }

    /// Stops the runners after their current batch.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.background {
            task.abort();
        }
        // One deadline for all of them: a database that stopped answering holds every
        // runner, and waiting for each in turn would add up.
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for mut runner in self.runners {
            if tokio::time::timeout_at(deadline, &mut runner)
                .await
                .is_err()
            {
                tracing::warn!("a projection runner did not stop in time");
                runner.abort();
            }
        }
    }
}
