//! Typed identifiers. All ids are UUIDs; the newtypes keep a listing id from being passed
//! where a workspace id is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace for ids derived from natural keys (UUID v5), so that retried deliveries of the
/// same outside fact land on the same aggregate.
pub const CARTIE_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_0e52_8c4d_4f3a_9a57_2d0c_3e8b_1a90);

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// A dealer company's workspace: the tenant every aggregate belongs to.
    WorkspaceId
);
id_type!(
    /// A member of one or more workspaces.
    UserId
);
id_type!(
    /// A car for sale.
    ListingId
);

id_type!(
    /// A dealer's Telegram bot, as Cartie knows it.
    BotId
);
id_type!(
    /// The conversation of one bot with one Telegram chat.
    ConversationId
);
id_type!(
    /// A buyer worth following up.
    LeadId
);

id_type!(
    /// A client's wish for a car, worked on by the dealer and its partners.
    RequestId
);
id_type!(
    /// A partner dealer company that offers cars for the workspace's requests.
    PartnerId
);
id_type!(
    /// A car offered for one request, by the dealer or a partner.
    VariantId
);
id_type!(
    /// A proposal link shared with a request's client.
    ProposalId
);

macro_rules! generated {
    ($($name:ident),+) => {
        $(impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        })+
    };
}
generated!(RequestId, PartnerId, VariantId, ProposalId);

impl ConversationId {
    /// One conversation per (workspace, bot, chat): every update of the chat finds it.
    pub fn for_chat(workspace: WorkspaceId, bot: BotId, chat_id: i64) -> Self {
        Self(Uuid::new_v5(
            &CARTIE_NAMESPACE,
            format!("conversation:{workspace}:{bot}:{chat_id}").as_bytes(),
        ))
    }
}

impl LeadId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The lead of a conversation: capturing it twice finds the first.
    pub fn for_conversation(conversation: ConversationId) -> Self {
        Self(Uuid::new_v5(
            &CARTIE_NAMESPACE,
            format!("lead:{conversation}").as_bytes(),
        ))
    }
}

impl ListingId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id a listing created with this idempotency key gets, so that a retried
    /// `createListing` finds the listing the first attempt created.
    pub fn for_idempotency_key(workspace: WorkspaceId, key: &str) -> Self {
        Self(Uuid::new_v5(
            &CARTIE_NAMESPACE,
            format!("listing:{workspace}:{key}").as_bytes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_in_the_same_workspace_gives_the_same_listing_id() {
        let ws = WorkspaceId(Uuid::now_v7());
        assert_eq!(
            ListingId::for_idempotency_key(ws, "k1"),
            ListingId::for_idempotency_key(ws, "k1")
        );
        assert_ne!(
            ListingId::for_idempotency_key(ws, "k1"),
            ListingId::for_idempotency_key(ws, "k2")
        );
        let other = WorkspaceId(Uuid::now_v7());
        assert_ne!(
            ListingId::for_idempotency_key(ws, "k1"),
            ListingId::for_idempotency_key(other, "k1")
        );
    }
}
