//! Cartie's pure model: aggregates, commands, events, value objects and domain errors.
//!
//! Nothing here knows about storage or transport. Everything a decision needs from the
//! outside (the caller, the current time) travels in the command's [`CommandContext`].

pub mod api_token;
pub mod context;
pub mod ids;
pub mod listing;
pub mod member;
pub mod values;
pub mod workspace;

pub use context::{Actor, Command, CommandContext};
pub use ids::{ListingId, UserId, WorkspaceId};
