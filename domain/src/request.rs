//! A B2B request: a client's wish for a car. The dealer drafts it with the client's needs,
//! publishes it to partner dealers, collects variants (its own listings and partners'
//! offers), shortlists, rejects or accepts them, shares a proposal link with the client and
//! closes the request as won or lost.
//!
//! The state machine: DRAFT → PUBLISHED → WON | LOST, and LOST from DRAFT too. A closed
//! request takes no further change except a record that it was posted to a channel.
//! Each variant: OFFERED → SHORTLISTED | REJECTED | ACCEPTED; SHORTLISTED → REJECTED |
//! ACCEPTED; REJECTED → SHORTLISTED (reconsidered); ACCEPTED → REJECTED. At most one
//! variant is accepted at a time, and a request is won with its accepted variant.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::context::Command;
use crate::ids::{LeadId, ListingId, PartnerId, ProposalId, UserId, VariantId, WorkspaceId};
use crate::lead::LeadContact;
use crate::listing::Photos;
use crate::values::{BodyType, FieldError, Fuel, Gearbox, Mileage, Money, Text, Year};

/// What the client wants. Every field is optional; those given constrain the matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Needs {
    pub brand: Option<Text>,
    pub model: Option<Text>,
    pub year_min: Option<Year>,
    pub year_max: Option<Year>,
    /// The most the client will pay; always more than zero.
    pub budget: Option<Money>,
    pub mileage_max: Option<Mileage>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    pub body: Option<BodyType>,
    pub city: Option<Text>,
    pub notes: Option<Text>,
}

impl Needs {
    /// Refuses needs no car can meet: an inverted year range, a budget of zero or less.
    pub fn check(&self) -> Result<(), FieldError> {
        if let (Some(min), Some(max)) = (self.year_min, self.year_max) {
            if min > max {
                return Err(FieldError::new(
                    "yearMax",
                    format!(
                        "must not be before yearMin ({} > {})",
                        min.value(),
                        max.value()
                    ),
                ));
            }
        }
        if let Some(budget) = self.budget {
            if budget.amount_minor <= 0 {
                return Err(FieldError::new("budget", "must be more than zero"));
            }
        }
        Ok(())
    }
}

/// Who the request is for: the client's contact, a lead, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestClient {
    pub contact: LeadContact,
    pub lead_id: Option<LeadId>,
}

impl RequestClient {
    pub fn check(&self) -> Result<(), FieldError> {
        let contact = &self.contact;
        if self.lead_id.is_none()
            && contact.name.is_none()
            && contact.phone.is_none()
            && contact.username.is_none()
        {
            return Err(FieldError::new(
                "client",
                "name the client (a name, a phone or a Telegram username) or a lead",
            ));
        }
        Ok(())
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestSource {
    /// Entered by a member of the workspace.
    Manual,
    /// Submitted by the client through the dealer's website or Mini App.
    PublicIntake,
}

impl RequestSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestSource::Manual => "MANUAL",
            RequestSource::PublicIntake => "PUBLIC_INTAKE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    Draft,
    Published,
    Won,
    Lost,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 4] = [
        RequestStatus::Draft,
        RequestStatus::Published,
        RequestStatus::Won,
        RequestStatus::Lost,
    ];

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            RequestStatus::Draft => "DRAFT",
            RequestStatus::Published => "PUBLISHED",
            RequestStatus::Won => "WON",
            RequestStatus::Lost => "LOST",
        }
    }

    pub fn is_closed(self) -> bool {
        matches!(self, RequestStatus::Won | RequestStatus::Lost)
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VariantStatus {
    Offered,
    Shortlisted,
    Rejected,
    Accepted,
}

impl VariantStatus {
    pub const ALL: [VariantStatus; 4] = [
        VariantStatus::Offered,
        VariantStatus::Shortlisted,
        VariantStatus::Rejected,
        VariantStatus::Accepted,
    ];

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            VariantStatus::Offered => "OFFERED",
            VariantStatus::Shortlisted => "SHORTLISTED",
            VariantStatus::Rejected => "REJECTED",
            VariantStatus::Accepted => "ACCEPTED",
        }
    }

    pub fn can_become(self, to: VariantStatus) -> bool {
        use VariantStatus::*;
        matches!(
            (self, to),
            (Offered, Shortlisted | Rejected | Accepted)
                | (Shortlisted, Rejected | Accepted)
                | (Rejected, Shortlisted)
                | (Accepted, Rejected)
        )
    }
}

impl fmt::Display for VariantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The car a variant offers, as described when it was offered (a listing may change later;
/// the offer stands as made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedCar {
    pub title: Text,
    pub brand: Option<Text>,
    pub model: Option<Text>,
    pub year: Option<Year>,
    pub mileage: Option<Mileage>,
    pub fuel: Option<Fuel>,
    pub gearbox: Option<Gearbox>,
    pub body: Option<BodyType>,
    pub description: Option<Text>,
}

/// Who offers a variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VariantSource {
    /// A listing of the dealer's own inventory.
    Own { listing_id: ListingId },
    /// A partner dealer, optionally naming its own listing (a reference or a link).
    Partner {
        partner_id: PartnerId,
        listing_ref: Option<Text>,
    },
}

impl VariantSource {
    pub fn partner(&self) -> Option<PartnerId> {
        match self {
            VariantSource::Own { .. } => None,
            VariantSource::Partner { partner_id, .. } => Some(*partner_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub source: VariantSource,
    pub car: OfferedCar,
    pub price: Money,
    pub photos: Photos,
    /// Where the car stands.
    pub city: Option<Text>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RequestCommand {
    DraftRequest {
        needs: Needs,
        client: RequestClient,
        source: RequestSource,
        assignee: Option<UserId>,
    },
    /// Replaces the needs and the client, while the request is a draft.
    EditRequest {
        needs: Needs,
        client: RequestClient,
    },
    /// Opens the request to these partners (a draft is published; a published request is
    /// addressed to the partners it was not yet addressed to).
    PublishRequest {
        partners: Vec<PartnerId>,
    },
    AssignRequest {
        assignee: Option<UserId>,
    },
    OfferVariant {
        variant_id: VariantId,
        variant: Variant,
    },
    ShortlistVariant {
        variant_id: VariantId,
    },
    RejectVariant {
        variant_id: VariantId,
        reason: Text,
    },
    AcceptVariant {
        variant_id: VariantId,
    },
    /// Shares the shortlisted variants with the client behind a link; the link's secret is
    /// kept by the credential store, never in the log.
    ShareProposal {
        proposal_id: ProposalId,
    },
    RevokeProposal {
        proposal_id: ProposalId,
    },
    CloseWon {
        variant_id: VariantId,
    },
    CloseLost {
        reason: Text,
    },
    RecordChannelPost {
        channel: Text,
        message_id: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RequestEvent {
    RequestDrafted {
        workspace_id: WorkspaceId,
        needs: Needs,
        client: RequestClient,
        source: RequestSource,
        assignee: Option<UserId>,
    },
    RequestEdited {
        needs: Needs,
        client: RequestClient,
    },
    RequestPublished {
        partners: Vec<PartnerId>,
    },
    /// A published request opened to more partners.
    RequestAddressed {
        partners: Vec<PartnerId>,
    },
    RequestAssigned {
        assignee: Option<UserId>,
    },
    VariantOffered {
        variant_id: VariantId,
        variant: Variant,
    },
    VariantShortlisted {
        variant_id: VariantId,
    },
    VariantRejected {
        variant_id: VariantId,
        reason: Text,
    },
    VariantAccepted {
        variant_id: VariantId,
    },
    ProposalShared {
        proposal_id: ProposalId,
    },
    ProposalRevoked {
        proposal_id: ProposalId,
    },
    RequestWon {
        variant_id: VariantId,
    },
    RequestLost {
        reason: Text,
    },
    RequestPostedToChannel {
        channel: Text,
        message_id: i64,
    },
}

impl RequestEvent {
    pub const VERSION: &'static str = "1";
}

impl DomainEvent for RequestEvent {
    fn event_type(&self) -> String {
        match self {
            RequestEvent::RequestDrafted { .. } => "RequestDrafted",
            RequestEvent::RequestEdited { .. } => "RequestEdited",
            RequestEvent::RequestPublished { .. } => "RequestPublished",
            RequestEvent::RequestAddressed { .. } => "RequestAddressed",
            RequestEvent::RequestAssigned { .. } => "RequestAssigned",
            RequestEvent::VariantOffered { .. } => "VariantOffered",
            RequestEvent::VariantShortlisted { .. } => "VariantShortlisted",
            RequestEvent::VariantRejected { .. } => "VariantRejected",
            RequestEvent::VariantAccepted { .. } => "VariantAccepted",
            RequestEvent::ProposalShared { .. } => "ProposalShared",
            RequestEvent::ProposalRevoked { .. } => "ProposalRevoked",
            RequestEvent::RequestWon { .. } => "RequestWon",
            RequestEvent::RequestLost { .. } => "RequestLost",
            RequestEvent::RequestPostedToChannel { .. } => "RequestPostedToChannel",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        Self::VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No such request, or another workspace's (indistinguishable).
    #[error("request not found")]
    NotFound,
    #[error("a request with this id already exists")]
    AlreadyExists,
    #[error("variant not found")]
    VariantNotFound,
    #[error("a variant with this id already exists")]
    VariantExists,
    #[error("proposal not found")]
    ProposalNotFound,
    #[error("the request is {0}: it takes no further change")]
    Closed(RequestStatus),
    #[error("only a draft can be edited (the request is {0})")]
    NotDraft(RequestStatus),
    /// A partner acting on a request it was not addressed to (or not yet published).
    #[error("the request is not addressed to this partner")]
    NotAddressed,
    /// A partner acting on a variant it did not offer.
    #[error("the variant was offered by someone else")]
    NotYourVariant,
    #[error("a variant cannot go from {from} to {to}")]
    IllegalVariantTransition {
        from: VariantStatus,
        to: VariantStatus,
    },
    #[error("another variant is accepted already: reject it first")]
    AnotherAccepted,
    #[error("a request is won with its accepted variant; accept the variant first")]
    NotAccepted,
    #[error("shortlist or accept a variant before sharing a proposal")]
    NothingToPropose,
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
}

/// Who acts on a request: the workspace's own people and integrations, or a partner (only
/// through its partner token). The API establishes it from the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestActor {
    Dealer,
    Partner(PartnerId),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    workspace_id: Option<WorkspaceId>,
    status: Option<RequestStatus>,
    assignee: Option<UserId>,
    partners: BTreeSet<PartnerId>,
    variants: BTreeMap<VariantId, VariantStatus>,
    /// Proposals shared, and whether each is revoked.
    proposals: BTreeMap<ProposalId, bool>,
    channel_posts: BTreeSet<(String, i64)>,
}

/// A command with who issues it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestAction {
    pub by: RequestActor,
    pub command: RequestCommand,
}

impl Request {
    pub fn decide(
        &self,
        command: Command<RequestAction>,
    ) -> Result<Vec<RequestEvent>, RequestError> {
        let workspace_id = command.context.workspace_id;
        let RequestAction { by, command } = command.body;
        if let RequestCommand::DraftRequest {
            needs,
            client,
            source,
            assignee,
        } = command
        {
            if by != RequestActor::Dealer {
                return Err(RequestError::NotAddressed);
            }
            return match self.workspace_id {
                Some(_) => Err(RequestError::AlreadyExists),
                None => {
                    needs.check()?;
                    client.check()?;
                    Ok(vec![RequestEvent::RequestDrafted {
                        workspace_id,
                        needs,
                        client,
                        source,
                        assignee,
                    }])
                }
            };
        }
        let (Some(owner), Some(status)) = (self.workspace_id, self.status) else {
            return Err(RequestError::NotFound);
        };
        if owner != workspace_id {
            return Err(RequestError::NotFound);
        }
        if let RequestActor::Partner(partner) = by {
            // A partner sees only published requests addressed to it, and may only offer.
            if !self.partners.contains(&partner) {
                return Err(RequestError::NotAddressed);
            }
            if !matches!(command, RequestCommand::OfferVariant { .. }) {
                return Err(RequestError::NotAddressed);
            }
        }
        if status.is_closed() && !matches!(command, RequestCommand::RecordChannelPost { .. }) {
            return Err(RequestError::Closed(status));
        }
        let variant = |id: &VariantId| self.variants.get(id).ok_or(RequestError::VariantNotFound);
        let events = match command {
            RequestCommand::DraftRequest { .. } => unreachable!("handled above"),
            RequestCommand::EditRequest { needs, client } => {
                if status != RequestStatus::Draft {
                    return Err(RequestError::NotDraft(status));
                }
                needs.check()?;
                client.check()?;
                vec![RequestEvent::RequestEdited { needs, client }]
            }
            RequestCommand::PublishRequest { partners } => {
                if partners.is_empty() {
                    return Err(FieldError::new(
                        "partnerIds",
                        "name at least one partner to publish to",
                    )
                    .into());
                }
                let mut fresh: Vec<PartnerId> = Vec::new();
                for partner in partners {
                    if !self.partners.contains(&partner) && !fresh.contains(&partner) {
                        fresh.push(partner);
                    }
                }
                match status {
                    RequestStatus::Draft => {
                        vec![RequestEvent::RequestPublished { partners: fresh }]
                    }
                    _ if fresh.is_empty() => vec![],
                    _ => vec![RequestEvent::RequestAddressed { partners: fresh }],
                }
            }
            RequestCommand::AssignRequest { assignee } => {
                if assignee == self.assignee {
                    vec![]
                } else {
                    vec![RequestEvent::RequestAssigned { assignee }]
                }
            }
            RequestCommand::OfferVariant {
                variant_id,
                variant,
            } => {
                if self.variants.contains_key(&variant_id) {
                    return Err(RequestError::VariantExists);
                }
                match (by, variant.source.partner()) {
                    (RequestActor::Dealer, None) => {}
                    (RequestActor::Partner(partner), Some(offered_by)) if partner == offered_by => {
                        if status != RequestStatus::Published {
                            return Err(RequestError::NotAddressed);
                        }
                    }
                    // The dealer records its own cars; a partner offers only as itself.
                    _ => return Err(RequestError::NotYourVariant),
                }
                vec![RequestEvent::VariantOffered {
                    variant_id,
                    variant,
                }]
            }
            RequestCommand::ShortlistVariant { variant_id } => {
                let current = *variant(&variant_id)?;
                if self.variant_transition(variant_id, current, VariantStatus::Shortlisted)? {
                    vec![RequestEvent::VariantShortlisted { variant_id }]
                } else {
                    vec![]
                }
            }
            RequestCommand::RejectVariant { variant_id, reason } => {
                let current = *variant(&variant_id)?;
                if self.variant_transition(variant_id, current, VariantStatus::Rejected)? {
                    vec![RequestEvent::VariantRejected { variant_id, reason }]
                } else {
                    vec![]
                }
            }
            RequestCommand::AcceptVariant { variant_id } => {
                let current = *variant(&variant_id)?;
                if self.variant_transition(variant_id, current, VariantStatus::Accepted)? {
                    vec![RequestEvent::VariantAccepted { variant_id }]
                } else {
                    vec![]
                }
            }
            RequestCommand::ShareProposal { proposal_id } => {
                if self.proposals.contains_key(&proposal_id) {
                    return Ok(vec![]);
                }
                let something = self
                    .variants
                    .values()
                    .any(|v| matches!(v, VariantStatus::Shortlisted | VariantStatus::Accepted));
                if !something {
                    return Err(RequestError::NothingToPropose);
                }
                vec![RequestEvent::ProposalShared { proposal_id }]
            }
            RequestCommand::RevokeProposal { proposal_id } => {
                match self.proposals.get(&proposal_id) {
                    None => return Err(RequestError::ProposalNotFound),
                    Some(true) => vec![],
                    Some(false) => vec![RequestEvent::ProposalRevoked { proposal_id }],
                }
            }
            RequestCommand::CloseWon { variant_id } => {
                if *variant(&variant_id)? != VariantStatus::Accepted {
                    return Err(RequestError::NotAccepted);
                }
                vec![RequestEvent::RequestWon { variant_id }]
            }
            RequestCommand::CloseLost { reason } => vec![RequestEvent::RequestLost { reason }],
            RequestCommand::RecordChannelPost {
                channel,
                message_id,
            } => {
                if message_id <= 0 {
                    return Err(FieldError::new(
                        "messageId",
                        "must be a Telegram message id (more than zero)",
                    )
                    .into());
                }
                if self
                    .channel_posts
                    .contains(&(channel.as_str().to_string(), message_id))
                {
                    vec![]
                } else {
                    vec![RequestEvent::RequestPostedToChannel {
                        channel,
                        message_id,
                    }]
                }
            }
        };
        Ok(events)
    }

    /// Whether the variant changes (false: it is there already); refuses what its status
    /// does not allow.
    fn variant_transition(
        &self,
        variant_id: VariantId,
        from: VariantStatus,
        to: VariantStatus,
    ) -> Result<bool, RequestError> {
        if from == to {
            return Ok(false);
        }
        if !from.can_become(to) {
            return Err(RequestError::IllegalVariantTransition { from, to });
        }
        if to == VariantStatus::Accepted
            && self
                .variants
                .iter()
                .any(|(id, v)| *id != variant_id && *v == VariantStatus::Accepted)
        {
            return Err(RequestError::AnotherAccepted);
        }
        Ok(true)
    }

    fn set_variant(&mut self, id: VariantId, status: VariantStatus) {
        if let Some(v) = self.variants.get_mut(&id) {
            *v = status;
        }
    }

    /// Applies one of its events to the state.
    fn evolve(&mut self, event: RequestEvent) {
        match event {
            RequestEvent::VariantShortlisted { variant_id } => {
                self.set_variant(variant_id, VariantStatus::Shortlisted)
            }
            RequestEvent::VariantRejected { variant_id, .. } => {
                self.set_variant(variant_id, VariantStatus::Rejected)
            }
            RequestEvent::VariantAccepted { variant_id } => {
                self.set_variant(variant_id, VariantStatus::Accepted)
            }
            RequestEvent::RequestDrafted {
                workspace_id,
                assignee,
                ..
            } => {
                self.workspace_id = Some(workspace_id);
                self.status = Some(RequestStatus::Draft);
                self.assignee = assignee;
            }
            RequestEvent::RequestEdited { .. } => {}
            RequestEvent::RequestPublished { partners } => {
                self.status = Some(RequestStatus::Published);
                self.partners.extend(partners);
            }
            RequestEvent::RequestAddressed { partners } => self.partners.extend(partners),
            RequestEvent::RequestAssigned { assignee } => self.assignee = assignee,
            RequestEvent::VariantOffered { variant_id, .. } => {
                self.variants.insert(variant_id, VariantStatus::Offered);
            }
            RequestEvent::ProposalShared { proposal_id } => {
                self.proposals.insert(proposal_id, false);
            }
            RequestEvent::ProposalRevoked { proposal_id } => {
                self.proposals.insert(proposal_id, true);
            }
            RequestEvent::RequestWon { .. } => self.status = Some(RequestStatus::Won),
            RequestEvent::RequestLost { .. } => self.status = Some(RequestStatus::Lost),
            RequestEvent::RequestPostedToChannel {
                channel,
                message_id,
            } => {
                self.channel_posts
                    .insert((channel.as_str().to_string(), message_id));
            }
        }
    }
}

crate::decided_aggregate!(
    Request,
    "Request",
    RequestAction,
    RequestEvent,
    RequestError
);

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::context::{Actor, CommandContext};
    use crate::values::Currency;

    trait FieldIs {
        fn field_is(self, field: &str);
    }

    impl FieldIs for RequestError {
        fn field_is(self, field: &str) {
            match self {
                RequestError::Invalid(error) => assert_eq!(error.field, field, "{error}"),
                other => panic!("expected a refusal of {field}, got {other:?}"),
            }
        }
    }

    type Test = TestFramework<Request>;

    fn ws() -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(1))
    }

    fn cmd(by: RequestActor, command: RequestCommand) -> Command<RequestAction> {
        cmd_in(ws(), by, command)
    }

    fn cmd_in(
        workspace: WorkspaceId,
        by: RequestActor,
        command: RequestCommand,
    ) -> Command<RequestAction> {
        Command::new(
            CommandContext::new(workspace, Actor::System, Utc::now()),
            RequestAction { by, command },
        )
    }

    fn dealer(command: RequestCommand) -> Command<RequestAction> {
        cmd(RequestActor::Dealer, command)
    }

    fn text(s: &str) -> Text {
        Text::parse("t", s, 200).unwrap()
    }

    fn needs() -> Needs {
        Needs {
            brand: Some(text("Toyota")),
            year_min: Some(Year::parse("yearMin", 2015, 2026).unwrap()),
            year_max: Some(Year::parse("yearMax", 2020, 2026).unwrap()),
            budget: Some(Money::price("budget", 2_000_000, Currency::USD).unwrap()),
            ..Needs::default()
        }
    }

    fn client() -> RequestClient {
        RequestClient {
            contact: LeadContact {
                name: Some(text("Olha")),
                ..LeadContact::default()
            },
            lead_id: None,
        }
    }

    fn drafted() -> RequestEvent {
        RequestEvent::RequestDrafted {
            workspace_id: ws(),
            needs: needs(),
            client: client(),
            source: RequestSource::Manual,
            assignee: None,
        }
    }

    fn partner(n: u128) -> PartnerId {
        PartnerId(Uuid::from_u128(100 + n))
    }

    fn vid(n: u128) -> VariantId {
        VariantId(Uuid::from_u128(200 + n))
    }

    fn variant(source: VariantSource) -> Variant {
        Variant {
            source,
            car: OfferedCar {
                title: text("Toyota Camry 2018"),
                brand: Some(text("Toyota")),
                model: Some(text("Camry")),
                year: Some(Year::parse("year", 2018, 2026).unwrap()),
                mileage: Some(Mileage::parse("mileageKm", 80_000).unwrap()),
                fuel: None,
                gearbox: None,
                body: None,
                description: None,
            },
            price: Money::price("price", 1_900_000, Currency::USD).unwrap(),
            photos: Photos::default(),
            city: None,
        }
    }

    fn own() -> Variant {
        variant(VariantSource::Own {
            listing_id: ListingId(Uuid::from_u128(300)),
        })
    }

    fn partners_variant(p: PartnerId) -> Variant {
        variant(VariantSource::Partner {
            partner_id: p,
            listing_ref: None,
        })
    }

    fn offered(n: u128, variant: Variant) -> RequestEvent {
        RequestEvent::VariantOffered {
            variant_id: vid(n),
            variant,
        }
    }

    fn published() -> RequestEvent {
        RequestEvent::RequestPublished {
            partners: vec![partner(1)],
        }
    }

    #[test]
    fn a_request_is_drafted_with_the_clients_needs() {
        Test::with(())
            .given_no_previous_events()
            .when(dealer(RequestCommand::DraftRequest {
                needs: needs(),
                client: client(),
                source: RequestSource::Manual,
                assignee: None,
            }))
            .then_expect_events(vec![drafted()]);
    }

    #[test]
    fn an_inverted_year_range_a_budget_of_zero_and_a_nameless_client_are_refused() {
        let mut inverted = needs();
        inverted.year_min = Some(Year::parse("yearMin", 2021, 2026).unwrap());
        let mut zero = needs();
        zero.budget = Some(Money::price("budget", 0, Currency::USD).unwrap());
        for (needs, client, field) in [
            (inverted, client(), "yearMax"),
            (zero, client(), "budget"),
            (needs(), RequestClient::default(), "client"),
        ] {
            Test::with(())
                .given_no_previous_events()
                .when(dealer(RequestCommand::DraftRequest {
                    needs,
                    client,
                    source: RequestSource::Manual,
                    assignee: None,
                }))
                .inspect_result()
                .expect_err("refused")
                .field_is(field);
        }
    }

    #[test]
    fn a_draft_is_edited_but_a_published_request_is_not() {
        let mut changed = needs();
        changed.model = Some(text("RAV4"));
        Test::with(())
            .given(vec![drafted()])
            .when(dealer(RequestCommand::EditRequest {
                needs: changed.clone(),
                client: client(),
            }))
            .then_expect_events(vec![RequestEvent::RequestEdited {
                needs: changed.clone(),
                client: client(),
            }]);
        Test::with(())
            .given(vec![drafted(), published()])
            .when(dealer(RequestCommand::EditRequest {
                needs: changed,
                client: client(),
            }))
            .then_expect_error(RequestError::NotDraft(RequestStatus::Published));
    }

    #[test]
    fn publishing_opens_the_request_to_partners_and_later_to_more_of_them() {
        Test::with(())
            .given(vec![drafted()])
            .when(dealer(RequestCommand::PublishRequest {
                partners: vec![partner(1), partner(1)],
            }))
            .then_expect_events(vec![published()]);
        Test::with(())
            .given(vec![drafted(), published()])
            .when(dealer(RequestCommand::PublishRequest {
                partners: vec![partner(1), partner(2)],
            }))
            .then_expect_events(vec![RequestEvent::RequestAddressed {
                partners: vec![partner(2)],
            }]);
        Test::with(())
            .given(vec![drafted(), published()])
            .when(dealer(RequestCommand::PublishRequest {
                partners: vec![partner(1)],
            }))
            .then_expect_events(vec![]);
        Test::with(())
            .given(vec![drafted()])
            .when(dealer(RequestCommand::PublishRequest { partners: vec![] }))
            .inspect_result()
            .expect_err("refused")
            .field_is("partnerIds");
    }

    #[test]
    fn the_dealer_offers_its_own_listing_even_on_a_draft() {
        Test::with(())
            .given(vec![drafted()])
            .when(dealer(RequestCommand::OfferVariant {
                variant_id: vid(1),
                variant: own(),
            }))
            .then_expect_events(vec![offered(1, own())]);
        Test::with(())
            .given(vec![drafted(), offered(1, own())])
            .when(dealer(RequestCommand::OfferVariant {
                variant_id: vid(1),
                variant: own(),
            }))
            .then_expect_error(RequestError::VariantExists);
    }

    #[test]
    fn an_addressed_partner_offers_on_a_published_request() {
        Test::with(())
            .given(vec![drafted(), published()])
            .when(cmd(
                RequestActor::Partner(partner(1)),
                RequestCommand::OfferVariant {
                    variant_id: vid(1),
                    variant: partners_variant(partner(1)),
                },
            ))
            .then_expect_events(vec![offered(1, partners_variant(partner(1)))]);
    }

    #[test]
    fn a_partner_not_addressed_or_on_a_draft_or_as_someone_else_is_refused() {
        // Not addressed.
        Test::with(())
            .given(vec![drafted(), published()])
            .when(cmd(
                RequestActor::Partner(partner(2)),
                RequestCommand::OfferVariant {
                    variant_id: vid(1),
                    variant: partners_variant(partner(2)),
                },
            ))
            .then_expect_error(RequestError::NotAddressed);
        // A draft is addressed to nobody.
        Test::with(())
            .given(vec![drafted()])
            .when(cmd(
                RequestActor::Partner(partner(1)),
                RequestCommand::OfferVariant {
                    variant_id: vid(1),
                    variant: partners_variant(partner(1)),
                },
            ))
            .then_expect_error(RequestError::NotAddressed);
        // Offering in another partner's name, or as the dealer's own car.
        for v in [partners_variant(partner(2)), own()] {
            Test::with(())
                .given(vec![drafted(), published()])
                .when(cmd(
                    RequestActor::Partner(partner(1)),
                    RequestCommand::OfferVariant {
                        variant_id: vid(1),
                        variant: v,
                    },
                ))
                .then_expect_error(RequestError::NotYourVariant);
        }
        // The dealer does not record offers in a partner's name.
        Test::with(())
            .given(vec![drafted(), published()])
            .when(dealer(RequestCommand::OfferVariant {
                variant_id: vid(1),
                variant: partners_variant(partner(1)),
            }))
            .then_expect_error(RequestError::NotYourVariant);
        // A partner does nothing but offer.
        Test::with(())
            .given(vec![drafted(), published(), offered(1, own())])
            .when(cmd(
                RequestActor::Partner(partner(1)),
                RequestCommand::ShortlistVariant { variant_id: vid(1) },
            ))
            .then_expect_error(RequestError::NotAddressed);
    }

    #[test]
    fn a_partner_offering_after_close_is_a_conflict() {
        Test::with(())
            .given(vec![
                drafted(),
                published(),
                RequestEvent::RequestLost {
                    reason: text("bought elsewhere"),
                },
            ])
            .when(cmd(
                RequestActor::Partner(partner(1)),
                RequestCommand::OfferVariant {
                    variant_id: vid(1),
                    variant: partners_variant(partner(1)),
                },
            ))
            .then_expect_error(RequestError::Closed(RequestStatus::Lost));
    }

    #[test]
    fn variants_are_shortlisted_rejected_reconsidered_and_accepted() {
        let base = vec![drafted(), offered(1, own())];
        Test::with(())
            .given(base.clone())
            .when(dealer(RequestCommand::ShortlistVariant {
                variant_id: vid(1),
            }))
            .then_expect_events(vec![RequestEvent::VariantShortlisted {
                variant_id: vid(1),
            }]);
        Test::with(())
            .given(base.clone())
            .when(dealer(RequestCommand::RejectVariant {
                variant_id: vid(1),
                reason: text("too far"),
            }))
            .then_expect_events(vec![RequestEvent::VariantRejected {
                variant_id: vid(1),
                reason: text("too far"),
            }]);
        let mut rejected = base.clone();
        rejected.push(RequestEvent::VariantRejected {
            variant_id: vid(1),
            reason: text("too far"),
        });
        Test::with(())
            .given(rejected.clone())
            .when(dealer(RequestCommand::ShortlistVariant {
                variant_id: vid(1),
            }))
            .then_expect_events(vec![RequestEvent::VariantShortlisted {
                variant_id: vid(1),
            }]);
        Test::with(())
            .given(rejected)
            .when(dealer(RequestCommand::AcceptVariant { variant_id: vid(1) }))
            .then_expect_error(RequestError::IllegalVariantTransition {
                from: VariantStatus::Rejected,
                to: VariantStatus::Accepted,
            });
        Test::with(())
            .given(base.clone())
            .when(dealer(RequestCommand::AcceptVariant { variant_id: vid(1) }))
            .then_expect_events(vec![RequestEvent::VariantAccepted { variant_id: vid(1) }]);
        let mut accepted = base;
        accepted.push(RequestEvent::VariantAccepted { variant_id: vid(1) });
        Test::with(())
            .given(accepted.clone())
            .when(dealer(RequestCommand::ShortlistVariant {
                variant_id: vid(1),
            }))
            .then_expect_error(RequestError::IllegalVariantTransition {
                from: VariantStatus::Accepted,
                to: VariantStatus::Shortlisted,
            });
        Test::with(())
            .given(accepted.clone())
            .when(dealer(RequestCommand::AcceptVariant { variant_id: vid(1) }))
            .then_expect_events(vec![]);
        accepted.push(offered(2, own()));
        Test::with(())
            .given(accepted)
            .when(dealer(RequestCommand::AcceptVariant { variant_id: vid(2) }))
            .then_expect_error(RequestError::AnotherAccepted);
        Test::with(())
            .given(vec![drafted()])
            .when(dealer(RequestCommand::ShortlistVariant {
                variant_id: vid(9),
            }))
            .then_expect_error(RequestError::VariantNotFound);
    }

    #[test]
    fn a_proposal_needs_a_shortlisted_variant_and_can_be_revoked_once() {
        let p = ProposalId(Uuid::from_u128(400));
        Test::with(())
            .given(vec![drafted(), offered(1, own())])
            .when(dealer(RequestCommand::ShareProposal { proposal_id: p }))
            .then_expect_error(RequestError::NothingToPropose);
        let shortlisted = vec![
            drafted(),
            offered(1, own()),
            RequestEvent::VariantShortlisted { variant_id: vid(1) },
        ];
        Test::with(())
            .given(shortlisted.clone())
            .when(dealer(RequestCommand::ShareProposal { proposal_id: p }))
            .then_expect_events(vec![RequestEvent::ProposalShared { proposal_id: p }]);
        let mut shared = shortlisted;
        shared.push(RequestEvent::ProposalShared { proposal_id: p });
        Test::with(())
            .given(shared.clone())
            .when(dealer(RequestCommand::RevokeProposal { proposal_id: p }))
            .then_expect_events(vec![RequestEvent::ProposalRevoked { proposal_id: p }]);
        shared.push(RequestEvent::ProposalRevoked { proposal_id: p });
        Test::with(())
            .given(shared)
            .when(dealer(RequestCommand::RevokeProposal { proposal_id: p }))
            .then_expect_events(vec![]);
        Test::with(())
            .given(vec![drafted()])
            .when(dealer(RequestCommand::RevokeProposal { proposal_id: p }))
            .then_expect_error(RequestError::ProposalNotFound);
    }

    #[test]
    fn a_request_is_won_with_its_accepted_variant_and_then_takes_no_change() {
        let base = vec![drafted(), published(), offered(1, own())];
        Test::with(())
            .given(base.clone())
            .when(dealer(RequestCommand::CloseWon { variant_id: vid(1) }))
            .then_expect_error(RequestError::NotAccepted);
        let mut accepted = base;
        accepted.push(RequestEvent::VariantAccepted { variant_id: vid(1) });
        Test::with(())
            .given(accepted.clone())
            .when(dealer(RequestCommand::CloseWon { variant_id: vid(1) }))
            .then_expect_events(vec![RequestEvent::RequestWon { variant_id: vid(1) }]);
        accepted.push(RequestEvent::RequestWon { variant_id: vid(1) });
        for command in [
            RequestCommand::CloseLost {
                reason: text("changed mind"),
            },
            RequestCommand::AssignRequest {
                assignee: Some(UserId(Uuid::from_u128(5))),
            },
            RequestCommand::PublishRequest {
                partners: vec![partner(3)],
            },
            RequestCommand::OfferVariant {
                variant_id: vid(2),
                variant: own(),
            },
            RequestCommand::RejectVariant {
                variant_id: vid(1),
                reason: text("x"),
            },
            RequestCommand::ShareProposal {
                proposal_id: ProposalId(Uuid::from_u128(401)),
            },
        ] {
            Test::with(())
                .given(accepted.clone())
                .when(dealer(command))
                .then_expect_error(RequestError::Closed(RequestStatus::Won));
        }
        // The record of a channel post is kept whatever the status.
        Test::with(())
            .given(accepted)
            .when(dealer(RequestCommand::RecordChannelPost {
                channel: text("@cartie_deals"),
                message_id: 42,
            }))
            .then_expect_events(vec![RequestEvent::RequestPostedToChannel {
                channel: text("@cartie_deals"),
                message_id: 42,
            }]);
    }

    #[test]
    fn a_draft_or_published_request_is_lost_with_a_reason() {
        for given in [vec![drafted()], vec![drafted(), published()]] {
            Test::with(())
                .given(given)
                .when(dealer(RequestCommand::CloseLost {
                    reason: text("bought elsewhere"),
                }))
                .then_expect_events(vec![RequestEvent::RequestLost {
                    reason: text("bought elsewhere"),
                }]);
        }
    }

    #[test]
    fn a_channel_post_is_recorded_once() {
        let post = RequestEvent::RequestPostedToChannel {
            channel: text("@cartie_deals"),
            message_id: 42,
        };
        Test::with(())
            .given(vec![drafted(), post])
            .when(dealer(RequestCommand::RecordChannelPost {
                channel: text("@cartie_deals"),
                message_id: 42,
            }))
            .then_expect_events(vec![]);
        Test::with(())
            .given(vec![drafted()])
            .when(dealer(RequestCommand::RecordChannelPost {
                channel: text("@cartie_deals"),
                message_id: 0,
            }))
            .inspect_result()
            .expect_err("refused")
            .field_is("messageId");
    }

    #[test]
    fn another_workspaces_request_is_not_found_and_unknown_ones_neither() {
        Test::with(())
            .given(vec![drafted()])
            .when(cmd_in(
                WorkspaceId(Uuid::from_u128(2)),
                RequestActor::Dealer,
                RequestCommand::CloseLost { reason: text("x") },
            ))
            .then_expect_error(RequestError::NotFound);
        Test::with(())
            .given_no_previous_events()
            .when(dealer(RequestCommand::AssignRequest { assignee: None }))
            .then_expect_error(RequestError::NotFound);
        Test::with(())
            .given(vec![drafted()])
            .when(dealer(RequestCommand::DraftRequest {
                needs: needs(),
                client: client(),
                source: RequestSource::Manual,
                assignee: None,
            }))
            .then_expect_error(RequestError::AlreadyExists);
    }

    #[test]
    fn assigning_changes_only_when_the_assignee_does() {
        let someone = Some(UserId(Uuid::from_u128(5)));
        Test::with(())
            .given(vec![drafted()])
            .when(dealer(RequestCommand::AssignRequest { assignee: someone }))
            .then_expect_events(vec![RequestEvent::RequestAssigned { assignee: someone }]);
        Test::with(())
            .given(vec![
                drafted(),
                RequestEvent::RequestAssigned { assignee: someone },
            ])
            .when(dealer(RequestCommand::AssignRequest { assignee: someone }))
            .then_expect_events(vec![]);
    }
}
