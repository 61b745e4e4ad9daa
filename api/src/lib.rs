//! Cartie's HTTP/GraphQL server, auth, and the composition root that wires the event log,
//! the command buses and the projection runners together.

pub mod access;
pub mod accounts;
pub mod app;
pub mod auth;
pub mod config;
pub mod credentials;
pub mod error;
pub mod graphql;
pub mod http;
pub mod keyfile;
pub mod recent;
pub mod secrets;
pub mod seed;
pub mod telegram;
pub mod telemetry;

pub use app::{App, Keys, Options};
pub use config::Settings;
