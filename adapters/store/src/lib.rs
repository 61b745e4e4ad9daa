//! Cartie's event log: the SQLite (embedded) and PostgreSQL (production) backends behind
//! one interface, our migrations, the command bus over cqrs-es, and the reader that walks
//! the log in global order for projections and reactors.

mod commands;
mod db;
mod log;
mod position;
pub mod testing;

pub use commands::{append, CommandBus, CommandError};
pub use db::{Backend, Database, DatabaseError, SqliteDb, Tx};
pub use log::{EventLog, EventParts, LogNotifier, StoredEvent, Wakeups};
pub use position::LogPosition;
