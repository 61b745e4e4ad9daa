//! Cartie's read models. Each projector turns events into rows of its own tables; the
//! [`runner`] feeds it the log in global order, in batches, each batch committed together
//! with the projector's checkpoint.

pub mod bots;
pub mod checkpoint;
mod copy;
pub mod directory;
pub mod inbox;
pub mod inventory;
pub mod leads;
pub mod rebuild;
pub mod requests;
pub mod runner;
pub mod telegram_delivery;

pub use rebuild::rebuild;
pub use runner::{
    PrepareAhead, Prepared, ProjectionError, ProjectionProgress, ProjectionRunner, Projector,
};
