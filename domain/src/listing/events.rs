use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{ListingDetails, ListingStatus, Photos};
use crate::ids::WorkspaceId;
use crate::values::Money;

/// What happened to a listing. Each event carries what the read models need, so that no
/// projection has to recompute state (e.g. `ListingDetailsUpdated` holds all details).
///
/// Names and fields are stable: a change of shape needs a new version and an upcaster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ListingEvent {
    ListingCreated {
        workspace_id: WorkspaceId,
        details: ListingDetails,
        price: Option<Money>,
        photos: Photos,
        status: ListingStatus,
    },
    ListingDetailsUpdated {
        details: ListingDetails,
    },
    ListingPriceChanged {
        price: Money,
        previous: Option<Money>,
    },
    ListingStatusChanged {
        from: ListingStatus,
        to: ListingStatus,
    },
    ListingPhotosSet {
        photos: Photos,
    },
}

impl ListingEvent {
    pub const VERSION: &'static str = "1";
}

impl DomainEvent for ListingEvent {
    fn event_type(&self) -> String {
        match self {
            ListingEvent::ListingCreated { .. } => "ListingCreated",
            ListingEvent::ListingDetailsUpdated { .. } => "ListingDetailsUpdated",
            ListingEvent::ListingPriceChanged { .. } => "ListingPriceChanged",
            ListingEvent::ListingStatusChanged { .. } => "ListingStatusChanged",
            ListingEvent::ListingPhotosSet { .. } => "ListingPhotosSet",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        Self::VERSION.to_string()
    }
}
