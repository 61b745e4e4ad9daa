//! What travels with every command: who acts, in which workspace, why, and when.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{UserId, WorkspaceId};

/// Keys of the metadata stored with every event.
pub mod metadata_keys {
    pub const EVENT_ID: &str = "event_id";
    pub const WORKSPACE_ID: &str = "workspace_id";
    pub const ACTOR: &str = "actor";
    pub const CORRELATION_ID: &str = "correlation_id";
    pub const CAUSATION_ID: &str = "causation_id";
    pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
}

/// Who issued a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    User(UserId),
    ApiToken(Uuid),
    Bot(Uuid),
    /// The platform itself (seeds, migrations of data, reactors without a user).
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::ApiToken(id) => write!(f, "api_token:{id}"),
            Actor::Bot(id) => write!(f, "bot:{id}"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// The context of one command. It lands in the metadata of every event the command emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    pub workspace_id: WorkspaceId,
    pub actor: Actor,
    /// Ties together everything done on behalf of one outside request.
    pub correlation_id: Uuid,
    /// The request or event that directly caused this command.
    pub causation_id: Uuid,
    /// The caller's key for this command, when it has one (a Telegram `update_id`, a
    /// channel message id, an HTTP `Idempotency-Key`).
    pub idempotency_key: Option<String>,
    /// The time the decision is taken at; decisions never read the clock themselves.
    pub now: DateTime<Utc>,
}

impl CommandContext {
    /// A context for a fresh outside request: correlation and causation are the request id.
    pub fn new(workspace_id: WorkspaceId, actor: Actor, now: DateTime<Utc>) -> Self {
        let request_id = Uuid::now_v7();
        Self {
            workspace_id,
            actor,
            correlation_id: request_id,
            causation_id: request_id,
            idempotency_key: None,
            now,
        }
    }

    /// The metadata stored with each event of this command. The event store adds a
    /// per-event `event_id`.
    pub fn metadata(&self) -> HashMap<String, String> {
        use metadata_keys::*;
        let mut metadata = HashMap::from([
            (WORKSPACE_ID.to_string(), self.workspace_id.to_string()),
            (ACTOR.to_string(), self.actor.to_string()),
            (CORRELATION_ID.to_string(), self.correlation_id.to_string()),
            (CAUSATION_ID.to_string(), self.causation_id.to_string()),
        ]);
        if let Some(key) = &self.idempotency_key {
            metadata.insert(IDEMPOTENCY_KEY.to_string(), key.clone());
        }
        metadata
    }
}

/// A command with its context. `expected_version`, when given, is the aggregate version the
/// caller last saw: a decision on a newer aggregate is refused as a conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct Command<C> {
    pub context: CommandContext,
    pub expected_version: Option<u64>,
    pub body: C,
}

impl<C> Command<C> {
    pub fn new(context: CommandContext, body: C) -> Self {
        Self {
            context,
            expected_version: None,
            body,
        }
    }

    pub fn expecting_version(mut self, version: Option<u64>) -> Self {
        self.expected_version = version;
        self
    }
}
