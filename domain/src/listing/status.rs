use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::values::{named_enum, FieldError};

named_enum!(
    /// Where a listing is in its life.
    ///
    /// ```text
    ///  PENDING ──┬──────────────► AVAILABLE ◄──► RESERVED
    ///            └──► DRAFT ◄───►     │              │
    ///                                 └────► SOLD ◄──┘
    ///  any state ──► ARCHIVED ──► DRAFT (restore)
    /// ```
    ListingStatus {
        Draft => "DRAFT",
        Pending => "PENDING",
        Available => "AVAILABLE",
        Reserved => "RESERVED",
        Sold => "SOLD",
        Archived => "ARCHIVED",
    }
);

impl ListingStatus {
    /// Whether a listing may move from `self` to `to`. Staying put is not a transition.
    pub fn can_become(self, to: ListingStatus) -> bool {
        use ListingStatus::*;
        match (self, to) {
            (from, to) if from == to => false,
            (_, Archived) => true,
            (Archived, Draft) => true,
            (Pending, Available | Draft) => true,
            (Draft, Available) => true,
            (Available, Draft | Reserved | Sold) => true,
            (Reserved, Available | Sold) => true,
            _ => false,
        }
    }

    /// States a listing may be created in: imports arrive PENDING review, dealers start
    /// from a DRAFT or publish straight away.
    pub fn is_initial(self) -> bool {
        matches!(
            self,
            ListingStatus::Draft | ListingStatus::Pending | ListingStatus::Available
        )
    }

    /// States in which the listing is offered to buyers and so must be complete.
    pub fn is_on_sale(self) -> bool {
        matches!(self, ListingStatus::Available | ListingStatus::Reserved)
    }
}
