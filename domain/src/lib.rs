//! Cartie's pure model: aggregates, commands, events, value objects and domain errors.
//!
//! Nothing here knows about storage or transport. Everything a decision needs from the
//! outside (the caller, the current time) travels in the command's [`CommandContext`].

/// Implements `cqrs_es::Aggregate` for a type whose decisions are `decide(&self, command)`
/// (pure: events or a refusal) and whose state changes are `evolve(&mut self, event)`.
#[macro_export]
macro_rules! decided_aggregate {
    ($aggregate:ty, $name:literal, $command:ty, $event:ty, $error:ty) => {
        impl ::cqrs_es::Aggregate for $aggregate {
            const TYPE: &'static str = $name;
            type Command = $crate::Command<$command>;
            type Event = $event;
            type Error = $error;
            type Services = ();

            async fn handle(
                &mut self,
                command: Self::Command,
                _services: &Self::Services,
                sink: &::cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), Self::Error> {
                for event in self.decide(command)? {
                    sink.write(event, self).await;
                }
                Ok(())
            }

            fn apply(&mut self, event: Self::Event) {
                self.evolve(event)
            }
        }
    };
}

pub mod api_token;
pub mod bot;
pub mod context;
pub mod ids;
pub mod inbox;
pub mod lead;
pub mod listing;
pub mod member;
pub mod partner;
pub mod request;
pub mod values;
pub mod workspace;

pub use context::{Actor, Command, CommandContext};
pub use ids::{
    BotId, ConversationId, LeadId, ListingId, PartnerId, ProposalId, RequestId, UserId, VariantId,
    WorkspaceId,
};
