//! The composition root: one database, the command buses, the projection runners.

use std::sync::Arc;

use axum::Router;
use cartie_domain::listing::Listing;
use cartie_projections::inventory::InventoryProjector;
use cartie_projections::{ProjectionProgress, ProjectionRunner, Projector};
use cartie_store::{CommandBus, Database, LogNotifier};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::TokenKeys;

/// Every projection the platform runs, by name.
pub fn projectors() -> Vec<Arc<dyn Projector>> {
    vec![Arc::new(InventoryProjector)]
}

/// What request handlers use.
pub struct Services {
    pub db: Database,
    pub listings: CommandBus<Listing>,
    pub inventory: ProjectionProgress,
    pub projections: Vec<ProjectionProgress>,
}

/// The running platform: services plus the background tasks (projection runners, the
/// PostgreSQL notification listener) until [`App::shutdown`].
pub struct App {
    pub services: Arc<Services>,
    pub keys: TokenKeys,
    shutdown: watch::Sender<bool>,
    runners: Vec<JoinHandle<()>>,
    /// Tasks that loop until aborted (PostgreSQL notification listener and publisher).
    background: Vec<JoinHandle<()>>,
}

impl App {
    /// Starts the projection runners on a migrated database.
    pub fn start(db: Database, keys: TokenKeys) -> Self {
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
        let inventory = projections
            .iter()
            .find(|p| p.name() == InventoryProjector::NAME)
            .cloned()
            .expect("the inventory projection is registered");
        let services = Arc::new(Services {
            listings: CommandBus::new(&db, notifier.clone(), ()),
            db,
            inventory,
            projections,
        });
        Self {
            services,
            keys,
            shutdown,
            runners,
            background,
        }
    }

    pub fn router(&self) -> Router {
        crate::http::router(self.services.clone(), self.keys.clone())
    }

    /// Stops the runners after their current batch.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.background {
            task.abort();
        }
        for mut runner in self.runners {
            if tokio::time::timeout(std::time::Duration::from_secs(10), &mut runner)
                .await
                .is_err()
            {
                tracing::warn!("a projection runner did not stop in time");
                runner.abort();
            }
        }
    }
}
