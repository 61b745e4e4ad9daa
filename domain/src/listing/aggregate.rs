use serde::{Deserialize, Serialize};

use super::{ListingCommand, ListingDetails, ListingEvent, ListingStatus, Photos};
use crate::context::Command;
use crate::ids::WorkspaceId;
use crate::values::{FieldError, Money};

/// Why a listing refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// The listing does not exist, or belongs to another workspace (which must not be told
    /// apart from not existing).
    #[error("listing not found")]
    NotFound,
    #[error("a listing with this id already exists")]
    AlreadyExists,
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
    #[error("a listing cannot go from {from} to {to}")]
    IllegalTransition {
        from: ListingStatus,
        to: ListingStatus,
    },
    #[error("a listing cannot be {status} without: {}", missing.join(", "))]
    Incomplete {
        status: ListingStatus,
        missing: Vec<&'static str>,
    },
    #[error("the listing is archived; restore it to a draft before changing it")]
    Archived,
    #[error("the listing is at version {actual}, not the expected {expected}")]
    VersionMismatch { expected: u64, actual: u64 },
}

/// A listing's state, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    workspace_id: Option<WorkspaceId>,
    /// Number of events applied: the version callers pass back as `expected_version`.
    version: u64,
    status: Option<ListingStatus>,
    details: Option<ListingDetails>,
    price: Option<Money>,
    photos: Photos,
}

impl Listing {
    /// Takes a decision without side effects: the events the command leads to, or why not.
    pub fn decide(
        &self,
        command: Command<ListingCommand>,
    ) -> Result<Vec<ListingEvent>, ListingError> {
        let Command {
            context,
            expected_version,
            body,
        } = command;
        let workspace_id = context.workspace_id;

        if let ListingCommand::CreateListing {
            details,
            price,
            photos,
            status,
        } = body
        {
            return match self.workspace_id {
                // A retried create (same idempotency key, so same id) changes nothing.
                Some(owner) if owner == workspace_id => Ok(vec![]),
                Some(_) => Err(ListingError::AlreadyExists),
                None => {
                    if !status.is_initial() {
                        return Err(FieldError::new(
                            "status",
                            "a listing starts as DRAFT, PENDING or AVAILABLE",
                        )
                        .into());
                    }
                    require_complete(status, &details, price.as_ref())?;
                    Ok(vec![ListingEvent::ListingCreated {
                        workspace_id,
                        details,
                        price,
                        photos,
                        status,
                    }])
                }
            };
        }

        // Another workspace's listing is indistinguishable from a missing one.
        let (Some(owner), Some(status), Some(details)) =
            (self.workspace_id, self.status, &self.details)
        else {
            return Err(ListingError::NotFound);
        };
        if owner != workspace_id {
            return Err(ListingError::NotFound);
        }
        if let Some(expected) = expected_version {
            if expected != self.version {
                return Err(ListingError::VersionMismatch {
                    expected,
                    actual: self.version,
                });
            }
        }
        let changes_status = matches!(body, ListingCommand::ChangeListingStatus { .. });
        if status == ListingStatus::Archived && !changes_status {
            return Err(ListingError::Archived);
        }

        let events = match body {
            ListingCommand::CreateListing { .. } => unreachable!("handled above"),
            ListingCommand::UpdateListingDetails { patch } => {
                let updated = patch.apply_to(details);
                if &updated == details {
                    vec![]
                } else {
                    if status.is_on_sale() {
                        require_complete(status, &updated, self.price.as_ref())?;
                    }
                    vec![ListingEvent::ListingDetailsUpdated { details: updated }]
                }
            }
            ListingCommand::ChangeListingPrice { price } => {
                if self.price == Some(price) {
                    vec![]
                } else {
                    vec![ListingEvent::ListingPriceChanged {
                        price,
                        previous: self.price,
                    }]
                }
            }
            ListingCommand::ChangeListingStatus { status: to } => {
                if to == status {
                    vec![]
                } else if !status.can_become(to) {
                    return Err(ListingError::IllegalTransition { from: status, to });
                } else {
                    if to.is_on_sale() {
                        require_complete(to, details, self.price.as_ref())?;
                    }
                    vec![ListingEvent::ListingStatusChanged { from: status, to }]
                }
            }
            ListingCommand::SetListingPhotos { photos } => {
                if photos == self.photos {
                    vec![]
                } else {
                    vec![ListingEvent::ListingPhotosSet { photos }]
                }
            }
        };
        Ok(events)
    }
}

/// A listing offered to buyers must say what it is and what it costs.
fn require_complete(
    status: ListingStatus,
    details: &ListingDetails,
    price: Option<&Money>,
) -> Result<(), ListingError> {
    if !status.is_on_sale() {
        return Ok(());
    }
    let mut missing = Vec::new();
    if details.brand.is_none() {
        missing.push("brand");
    }
    if details.model.is_none() {
        missing.push("model");
    }
    if details.year.is_none() {
        missing.push("year");
    }
    if price.is_none() {
        missing.push("price");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ListingError::Incomplete { status, missing })
    }
}

crate::decided_aggregate!(
    Listing,
    "Listing",
    ListingCommand,
    ListingEvent,
    ListingError
);

impl Listing {
    /// Applies one of its events to the state.
    fn evolve(&mut self, event: ListingEvent) {
        self.version += 1;
        match event {
            ListingEvent::ListingCreated {
                workspace_id,
                details,
                price,
                photos,
                status,
            } => {
                self.workspace_id = Some(workspace_id);
                self.details = Some(details);
                self.price = price;
                self.photos = photos;
                self.status = Some(status);
            }
            ListingEvent::ListingDetailsUpdated { details } => self.details = Some(details),
            ListingEvent::ListingPriceChanged { price, .. } => self.price = Some(price),
            ListingEvent::ListingStatusChanged { to, .. } => self.status = Some(to),
            ListingEvent::ListingPhotosSet { photos } => self.photos = photos,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::context::{Actor, CommandContext};
    use crate::ids::UserId;
    use crate::listing::{DetailsPatch, Patch, Photo};
    use crate::values::{Currency, Text, Vin, Year};

    type ListingTest = TestFramework<Listing>;

    fn workspace_a() -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(0xA))
    }

    fn workspace_b() -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(0xB))
    }

    fn in_workspace(workspace: WorkspaceId, body: ListingCommand) -> Command<ListingCommand> {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        Command::new(
            CommandContext::new(workspace, Actor::User(UserId(Uuid::from_u128(1))), now),
            body,
        )
    }

    fn command(body: ListingCommand) -> Command<ListingCommand> {
        in_workspace(workspace_a(), body)
    }

    fn text(value: &str) -> Text {
        Text::parse("test", value, 200).unwrap()
    }

    fn usd(amount_minor: i64) -> Money {
        Money::price("price", amount_minor, Currency::USD).unwrap()
    }

    fn complete_details() -> ListingDetails {
        ListingDetails {
            brand: Some(text("Toyota")),
            model: Some(text("Camry")),
            year: Some(Year::parse("year", 2019, 2026).unwrap()),
            vin: Some(Vin::parse("vin", "4T1B11HK5KU000001").unwrap()),
            ..ListingDetails::titled(text("Toyota Camry 2019"))
        }
    }

    fn created(status: ListingStatus) -> ListingEvent {
        ListingEvent::ListingCreated {
            workspace_id: workspace_a(),
            details: complete_details(),
            price: Some(usd(1_850_000)),
            photos: Photos::default(),
            status,
        }
    }

    fn status_changed(from: ListingStatus, to: ListingStatus) -> ListingEvent {
        ListingEvent::ListingStatusChanged { from, to }
    }

    fn change_status(to: ListingStatus) -> Command<ListingCommand> {
        command(ListingCommand::ChangeListingStatus { status: to })
    }

    #[test]
    fn it_creates_a_draft_listing_with_only_a_title() {
        let details = ListingDetails::titled(text("Something with wheels"));
        ListingTest::with(())
            .given_no_previous_events()
            .when(command(ListingCommand::CreateListing {
                details: details.clone(),
                price: None,
                photos: Photos::default(),
                status: ListingStatus::Draft,
            }))
            .then_expect_events(vec![ListingEvent::ListingCreated {
                workspace_id: workspace_a(),
                details,
                price: None,
                photos: Photos::default(),
                status: ListingStatus::Draft,
            }]);
    }

    #[test]
    fn it_does_not_publish_a_listing_without_price_brand_model_and_year() {
        ListingTest::with(())
            .given_no_previous_events()
            .when(command(ListingCommand::CreateListing {
                details: ListingDetails::titled(text("Mystery car")),
                price: None,
                photos: Photos::default(),
                status: ListingStatus::Available,
            }))
            .then_expect_error(ListingError::Incomplete {
                status: ListingStatus::Available,
                missing: vec!["brand", "model", "year", "price"],
            });
    }

    #[test]
    fn it_does_not_create_a_listing_straight_into_sold() {
        let result = ListingTest::with(())
            .given_no_previous_events()
            .when(command(ListingCommand::CreateListing {
                details: complete_details(),
                price: Some(usd(1)),
                photos: Photos::default(),
                status: ListingStatus::Sold,
            }))
            .inspect_result();
        assert!(matches!(result, Err(ListingError::Invalid(e)) if e.field == "status"));
    }

    #[test]
    fn a_retried_create_in_the_same_workspace_changes_nothing() {
        ListingTest::with(())
            .given(vec![created(ListingStatus::Draft)])
            .when(command(ListingCommand::CreateListing {
                details: complete_details(),
                price: None,
                photos: Photos::default(),
                status: ListingStatus::Draft,
            }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_create_on_another_workspaces_id_is_a_conflict() {
        ListingTest::with(())
            .given(vec![created(ListingStatus::Draft)])
            .when(in_workspace(
                workspace_b(),
                ListingCommand::CreateListing {
                    details: complete_details(),
                    price: None,
                    photos: Photos::default(),
                    status: ListingStatus::Draft,
                },
            ))
            .then_expect_error(ListingError::AlreadyExists);
    }

    #[test]
    fn another_workspace_cannot_change_the_listing_and_is_told_it_does_not_exist() {
        ListingTest::with(())
            .given(vec![created(ListingStatus::Available)])
            .when(in_workspace(
                workspace_b(),
                ListingCommand::ChangeListingPrice { price: usd(1) },
            ))
            .then_expect_error(ListingError::NotFound);
    }

    #[test]
    fn a_command_on_a_listing_that_was_never_created_is_not_found() {
        ListingTest::with(())
            .given_no_previous_events()
            .when(change_status(ListingStatus::Available))
            .then_expect_error(ListingError::NotFound);
    }

    #[test]
    fn it_changes_the_price_and_remembers_the_previous_one() {
        ListingTest::with(())
            .given(vec![created(ListingStatus::Available)])
            .when(command(ListingCommand::ChangeListingPrice {
                price: usd(1_790_000),
            }))
            .then_expect_events(vec![ListingEvent::ListingPriceChanged {
                price: usd(1_790_000),
                previous: Some(usd(1_850_000)),
            }]);
    }

    #[test]
    fn setting_the_same_price_again_emits_nothing() {
        ListingTest::with(())
            .given(vec![created(ListingStatus::Available)])
            .when(command(ListingCommand::ChangeListingPrice {
                price: usd(1_850_000),
            }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_stale_expected_version_is_refused() {
        ListingTest::with(())
            .given(vec![
                created(ListingStatus::Available),
                ListingEvent::ListingPriceChanged {
                    price: usd(1),
                    previous: Some(usd(1_850_000)),
                },
            ])
            .when(
                command(ListingCommand::ChangeListingPrice { price: usd(2) })
                    .expecting_version(Some(1)),
            )
            .then_expect_error(ListingError::VersionMismatch {
                expected: 1,
                actual: 2,
            });
    }

    #[test]
    fn the_current_expected_version_is_accepted() {
        ListingTest::with(())
            .given(vec![created(ListingStatus::Available)])
            .when(
                command(ListingCommand::ChangeListingPrice { price: usd(2) })
                    .expecting_version(Some(1)),
            )
            .then_expect_events(vec![ListingEvent::ListingPriceChanged {
                price: usd(2),
                previous: Some(usd(1_850_000)),
            }]);
    }

    #[test]
    fn it_updates_only_the_fields_in_the_patch() {
        let patch = DetailsPatch {
            colour: Patch::Set(text("Graphite")),
            vin: Patch::Clear,
            ..DetailsPatch::default()
        };
        let mut expected = complete_details();
        expected.colour = Some(text("Graphite"));
        expected.vin = None;
        ListingTest::with(())
            .given(vec![created(ListingStatus::Draft)])
            .when(command(ListingCommand::UpdateListingDetails { patch }))
            .then_expect_events(vec![ListingEvent::ListingDetailsUpdated {
                details: expected,
            }]);
    }

    #[test]
    fn an_update_that_changes_nothing_emits_nothing() {
        let patch = DetailsPatch {
            brand: Patch::Set(text("Toyota")),
            ..DetailsPatch::default()
        };
        ListingTest::with(())
            .given(vec![created(ListingStatus::Draft)])
            .when(command(ListingCommand::UpdateListingDetails { patch }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_listing_on_sale_cannot_lose_its_brand() {
        let patch = DetailsPatch {
            brand: Patch::Clear,
            ..DetailsPatch::default()
        };
        ListingTest::with(())
            .given(vec![created(ListingStatus::Available)])
            .when(command(ListingCommand::UpdateListingDetails { patch }))
            .then_expect_error(ListingError::Incomplete {
                status: ListingStatus::Available,
                missing: vec!["brand"],
            });
    }

    #[test]
    fn it_sets_reorders_and_clears_photos() {
        let a = Photo::url("photos[0]", "https://cdn.example.com/a.jpg").unwrap();
        let b = Photo::telegram_file_id("photos[1]", "AgACAgIAAxkBAAIB").unwrap();
        let first = Photos::parse("photos", vec![a.clone(), b.clone()]).unwrap();
        let reordered = Photos::parse("photos", vec![b, a]).unwrap();
        ListingTest::with(())
            .given(vec![
                created(ListingStatus::Draft),
                ListingEvent::ListingPhotosSet { photos: first },
            ])
            .when(command(ListingCommand::SetListingPhotos {
                photos: reordered.clone(),
            }))
            .then_expect_events(vec![ListingEvent::ListingPhotosSet { photos: reordered }]);
    }

    #[test]
    fn photo_urls_must_be_http_and_carry_no_credentials() {
        assert!(Photo::url("p", "https://cdn.example.com/a.jpg").is_ok());
        for bad in [
            "https://user:secret@cdn.example.com/a.jpg",
            "https://user@cdn.example.com/a.jpg",
            "ftp://cdn.example.com/a.jpg",
            "not a url",
        ] {
            assert_eq!(
                Photo::url("photos[0].url", bad).unwrap_err().field,
                "photos[0].url",
                "{bad}"
            );
        }
    }

    #[test]
    fn photos_cannot_repeat() {
        let a = Photo::url("photos[0]", "https://cdn.example.com/a.jpg").unwrap();
        let err = Photos::parse("photos", vec![a.clone(), a]).unwrap_err();
        assert_eq!(err.field, "photos[1]");
    }

    #[test]
    fn an_archived_listing_refuses_changes_until_restored() {
        ListingTest::with(())
            .given(vec![
                created(ListingStatus::Available),
                status_changed(ListingStatus::Available, ListingStatus::Archived),
            ])
            .when(command(ListingCommand::ChangeListingPrice {
                price: usd(5),
            }))
            .then_expect_error(ListingError::Archived);
    }

    #[test]
    fn an_archived_listing_can_be_restored_as_a_draft() {
        ListingTest::with(())
            .given(vec![
                created(ListingStatus::Sold),
                status_changed(ListingStatus::Sold, ListingStatus::Archived),
            ])
            .when(change_status(ListingStatus::Draft))
            .then_expect_events(vec![status_changed(
                ListingStatus::Archived,
                ListingStatus::Draft,
            )]);
    }

    #[test]
    fn changing_to_the_current_status_emits_nothing() {
        ListingTest::with(())
            .given(vec![created(ListingStatus::Reserved)])
            .when(change_status(ListingStatus::Reserved))
            .then_expect_events(vec![]);
    }

    /// Every (from, to) pair: the allowed ones emit exactly one event, every other one is
    /// refused as an illegal transition.
    #[test]
    fn every_transition_is_either_allowed_or_refused_as_illegal() {
        use ListingStatus::*;
        let allowed = [
            (Draft, Available),
            (Draft, Archived),
            (Pending, Available),
            (Pending, Draft),
            (Pending, Archived),
            (Available, Draft),
            (Available, Reserved),
            (Available, Sold),
            (Available, Archived),
            (Reserved, Available),
            (Reserved, Sold),
            (Reserved, Archived),
            (Sold, Archived),
            (Archived, Draft),
        ];
        let mut checked = 0;
        for &from in ListingStatus::ALL {
            for &to in ListingStatus::ALL {
                if from == to {
                    continue;
                }
                let validator = ListingTest::with(())
                    .given(vec![created(from)])
                    .when(change_status(to));
                if allowed.contains(&(from, to)) {
                    validator.then_expect_events(vec![status_changed(from, to)]);
                } else {
                    validator.then_expect_error(ListingError::IllegalTransition { from, to });
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 30);
    }

    #[test]
    fn a_pending_import_cannot_go_on_sale_while_incomplete() {
        ListingTest::with(())
            .given(vec![ListingEvent::ListingCreated {
                workspace_id: workspace_a(),
                details: ListingDetails::titled(text("Imported post")),
                price: None,
                photos: Photos::default(),
                status: ListingStatus::Pending,
            }])
            .when(change_status(ListingStatus::Available))
            .then_expect_error(ListingError::Incomplete {
                status: ListingStatus::Available,
                missing: vec!["brand", "model", "year", "price"],
            });
    }

    #[test]
    fn events_round_trip_through_json_with_stable_names() {
        let event = created(ListingStatus::Draft);
        let json = serde_json::to_value(&event).unwrap();
        assert!(json.get("ListingCreated").is_some());
        assert_eq!(json["ListingCreated"]["status"], "DRAFT");
        assert_eq!(json["ListingCreated"]["price"]["currency"], "USD");
        assert_eq!(serde_json::from_value::<ListingEvent>(json).unwrap(), event);
    }
}
