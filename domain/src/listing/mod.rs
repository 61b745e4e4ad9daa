//! A car for sale in a dealer's inventory.

mod aggregate;
mod commands;
mod events;
mod status;
mod values;

pub use aggregate::{Listing, ListingError};
pub use commands::{DetailsPatch, ListingCommand, Patch};
pub use events::ListingEvent;
pub use status::ListingStatus;
pub use values::{ListingDetails, Photo, Photos};
