//! The Inbox read model: every conversation of a workspace with what operators sort and
//! filter by, and each conversation's messages.

mod projector;
pub mod queries;

pub use projector::InboxProjector;
