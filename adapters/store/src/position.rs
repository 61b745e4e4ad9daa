use serde::{Deserialize, Serialize};

/// A place in the log, ordered as readers walk it.
///
/// On PostgreSQL the log is read by `(transaction_id, global_position)`: positions are
/// handed out before commit, so the writing transaction's id comes first. On SQLite (one
/// writer) `transaction_id` is always 0 and the position alone orders the log.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    sqlx::FromRow,
)]
pub struct LogPosition {
    pub transaction_id: i64,
    pub global_position: i64,
}

impl LogPosition {
    pub const START: LogPosition = LogPosition {
        transaction_id: 0,
        global_position: 0,
    };

    pub fn new(transaction_id: i64, global_position: i64) -> Self {
        Self {
            transaction_id,
            global_position,
        }
    }
}

impl std::fmt::Display for LogPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.transaction_id == 0 {
            write!(f, "{}", self.global_position)
        } else {
            write!(f, "{}@{}", self.global_position, self.transaction_id)
        }
    }
}
