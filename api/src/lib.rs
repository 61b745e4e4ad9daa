//! Cartie's HTTP/GraphQL server, auth, and the composition root that wires the event log,
//! the command buses and the projection runners together.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod graphql;
pub mod http;
pub mod telemetry;

pub use app::App;
pub use config::Settings;
