//! Settings, read once from the command line and `CARTIE_*` environment variables (a `.env`
//! file is honoured). `.env.example` documents each.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Where the embedded database and generated keys live.
    #[arg(long, env = "CARTIE_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// `sqlite:<path>` or `postgres://…`; defaults to SQLite in the data directory.
    #[arg(
        long,
        env = "CARTIE_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<SecretString>,

    /// Connections in the database pool (a few per core serve PostgreSQL best).
    #[arg(
        long,
        env = "CARTIE_DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub database_max_connections: u32,

    /// HS256 key for bearer tokens; generated and kept in the data directory when unset.
    #[arg(long, env = "CARTIE_JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,

    /// Key sealing integration secrets at rest (64 hex digits); generated and kept in the
    /// data directory when unset.
    #[arg(long, env = "CARTIE_SECRET_KEY", global = true, hide_env_values = true)]
    pub secret_key: Option<SecretString>,

    /// The platform's first owner, created by `cartie seed` (and by `serve` when set).
    #[arg(long, env = "CARTIE_ADMIN_EMAIL", global = true)]
    pub admin_email: Option<String>,

    #[arg(
        long,
        env = "CARTIE_ADMIN_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub admin_password: Option<SecretString>,

    /// The demo member's password (generated and printed once when unset).
    #[arg(
        long,
        env = "CARTIE_DEMO_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub demo_password: Option<SecretString>,

    /// The Telegram Bot API server (a local Bot API server may stand in for Telegram's).
    #[arg(
        long,
        env = "CARTIE_TELEGRAM_API_URL",
        default_value = "https://api.telegram.org",
        global = true
    )]
    pub telegram_api_url: String,

    /// This server's public base URL (https://…), which Telegram posts webhooks to;
    /// without it, bots use long polling.
    #[arg(long, env = "CARTIE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "CARTIE_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
}

impl Settings {
    pub fn telegram(&self) -> crate::telegram::TelegramSettings {
        crate::telegram::TelegramSettings {
            api_url: self.telegram_api_url.clone(),
            public_url: self.public_url.clone().filter(|u| !u.trim().is_empty()),
            ..Default::default()
        }
    }

    /// The database URL (it may hold a password: never log it).
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.expose_secret().is_empty() => url.expose_secret().to_string(),
            _ => format!("sqlite:{}", self.data_dir.join("cartie.db").display()),
        }
    }

    /// Creates the data directory when the embedded database or generated keys need it.
    pub fn ensure_data_dir(&self) -> std::io::Result<&Path> {
        std::fs::create_dir_all(&self.data_dir)?;
        Ok(&self.data_dir)
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address the HTTP server listens on.
    #[arg(long, env = "CARTIE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Adds the demo dealer workspace, its member and sample inventory on start (once;
    /// later starts leave them as they are).
    #[arg(long, env = "CARTIE_DEMO")]
    pub demo: bool,

    /// Leaves Telegram long polling and delivery to a separate `cartie worker`.
    #[arg(long, env = "CARTIE_NO_TELEGRAM_WORKERS")]
    pub no_telegram_workers: bool,
}
