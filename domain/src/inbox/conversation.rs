use std::collections::{BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::content::MessageContent;
use crate::context::Command;
use crate::ids::{BotId, UserId, WorkspaceId};
use crate::values::FieldError;

/// How many recent Telegram `update_id`s a conversation remembers to recognise repeats.
/// Telegram delivers a bot's updates in order and retries only recent ones, so a repeat
/// older than this window (or older than the oldest id in it) is still recognised.
const REMEMBERED_UPDATES: usize = 256;

/// The buyer as the chat shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatContact {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConversationCommand {
    /// A message from the buyer (a Telegram update); the update id makes repeats harmless.
    ReceiveInboundMessage {
        bot_id: BotId,
        chat_id: i64,
        contact: ChatContact,
        update_id: i64,
        telegram_message_id: i64,
        content: MessageContent,
        sent_at: DateTime<Utc>,
    },
    EditInboundMessage {
        update_id: i64,
        telegram_message_id: i64,
        content: MessageContent,
        edited_at: DateTime<Utc>,
    },
    /// An operator's message to the buyer, to be delivered by the bot.
    QueueOutboundMessage {
        content: MessageContent,
        /// The conversation's message number this answers.
        reply_to: Option<u64>,
    },
    RecordDelivery {
        seq: u64,
        telegram_message_id: i64,
    },
    RecordDeliveryFailure {
        seq: u64,
        reason: String,
    },
    MarkRead {
        up_to: u64,
    },
    Assign {
        assignee: Option<UserId>,
    },
    Close,
    Reopen,
    /// The buyer blocked the bot: a `my_chat_member` update (with its id) or a delivery
    /// Telegram refused because of the block (without).
    RecordBotBlocked {
        update_id: Option<i64>,
    },
    /// The buyer restarted the bot (a `my_chat_member` update back to member).
    RecordBotUnblocked {
        update_id: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConversationEvent {
    ConversationStarted {
        workspace_id: WorkspaceId,
        bot_id: BotId,
        chat_id: i64,
        contact: ChatContact,
    },
    InboundMessageReceived {
        seq: u64,
        update_id: i64,
        telegram_message_id: i64,
        content: MessageContent,
        sent_at: DateTime<Utc>,
        /// The chat's contact details when they changed since the last message.
        contact: Option<ChatContact>,
    },
    InboundMessageEdited {
        update_id: i64,
        telegram_message_id: i64,
        content: MessageContent,
        edited_at: DateTime<Utc>,
    },
    OutboundMessageQueued {
        seq: u64,
        content: MessageContent,
        reply_to: Option<u64>,
    },
    OutboundMessageDelivered {
        seq: u64,
        telegram_message_id: i64,
    },
    OutboundMessageFailed {
        seq: u64,
        reason: String,
    },
    ConversationRead {
        up_to: u64,
    },
    ConversationAssigned {
        assignee: Option<UserId>,
    },
    ConversationClosed,
    ConversationReopened {
        /// Reopened by a new message from the buyer rather than by an operator.
        automatically: bool,
    },
    BuyerBlockedBot {
        update_id: Option<i64>,
    },
    BuyerUnblockedBot,
}

impl ConversationEvent {
    pub const VERSION: &'static str = "1";
}

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        match self {
            ConversationEvent::ConversationStarted { .. } => "ConversationStarted",
            ConversationEvent::InboundMessageReceived { .. } => "InboundMessageReceived",
            ConversationEvent::InboundMessageEdited { .. } => "InboundMessageEdited",
            ConversationEvent::OutboundMessageQueued { .. } => "OutboundMessageQueued",
            ConversationEvent::OutboundMessageDelivered { .. } => "OutboundMessageDelivered",
            ConversationEvent::OutboundMessageFailed { .. } => "OutboundMessageFailed",
            ConversationEvent::ConversationRead { .. } => "ConversationRead",
            ConversationEvent::ConversationAssigned { .. } => "ConversationAssigned",
            ConversationEvent::ConversationClosed => "ConversationClosed",
            ConversationEvent::ConversationReopened { .. } => "ConversationReopened",
            ConversationEvent::BuyerBlockedBot { .. } => "BuyerBlockedBot",
            ConversationEvent::BuyerUnblockedBot => "BuyerUnblockedBot",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        Self::VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    /// No such conversation, or another workspace's (indistinguishable).
    #[error("conversation not found")]
    NotFound,
    #[error("the buyer blocked the bot; messages cannot reach them until they write again")]
    Blocked,
    #[error("message {0} is not an outbound message awaiting delivery")]
    NotAwaitingDelivery(u64),
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Chat {
    workspace_id: WorkspaceId,
    bot_id: BotId,
    chat_id: i64,
    contact: ChatContact,
}

/// A conversation's state. It stays small however long the conversation grows: messages
/// live in the read model; the aggregate keeps counters, the recent update ids and the
/// outbound messages still awaiting delivery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    chat: Option<Chat>,
    /// Messages so far (the last message's number).
    messages: u64,
    read_up_to: u64,
    closed: bool,
    blocked: bool,
    assignee: Option<UserId>,
    recent_updates: VecDeque<i64>,
    awaiting_delivery: BTreeSet<u64>,
}

impl Conversation {
    fn seen(&self, update_id: i64) -> bool {
        self.recent_updates.contains(&update_id)
            || (self.recent_updates.len() == REMEMBERED_UPDATES
                && self
                    .recent_updates
                    .iter()
                    .min()
                    .is_some_and(|oldest| update_id < *oldest))
    }

    pub fn decide(
        &self,
        command: Command<ConversationCommand>,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        let workspace_id = command.context.workspace_id;
        if let Some(chat) = &self.chat {
            if chat.workspace_id != workspace_id {
                return Err(ConversationError::NotFound);
            }
        }
        use ConversationCommand as C;
        use ConversationEvent as E;
        if let C::ReceiveInboundMessage {
            bot_id,
            chat_id,
            contact,
            update_id,
            telegram_message_id,
            content,
            sent_at,
        } = command.body
        {
            if self.seen(update_id) {
                return Ok(vec![]);
            }
            let mut events = Vec::new();
            let changed_contact = match &self.chat {
                None => {
                    events.push(E::ConversationStarted {
                        workspace_id,
                        bot_id,
                        chat_id,
                        contact: contact.clone(),
                    });
                    None
                }
                Some(chat) if chat.contact != contact => Some(contact),
                Some(_) => None,
            };
            if self.closed {
                events.push(E::ConversationReopened {
                    automatically: true,
                });
            }
            if self.blocked {
                events.push(E::BuyerUnblockedBot);
            }
            events.push(E::InboundMessageReceived {
                seq: self.messages + 1,
                update_id,
                telegram_message_id,
                content,
                sent_at,
                contact: changed_contact,
            });
            return Ok(events);
        }
        if self.chat.is_none() {
            return Err(ConversationError::NotFound);
        }
        let events = match command.body {
            C::ReceiveInboundMessage { .. } => unreachable!("handled above"),
            C::EditInboundMessage {
                update_id,
                telegram_message_id,
                content,
                edited_at,
            } => {
                if self.seen(update_id) {
                    vec![]
                } else {
                    vec![E::InboundMessageEdited {
                        update_id,
                        telegram_message_id,
                        content,
                        edited_at,
                    }]
                }
            }
            C::QueueOutboundMessage { content, reply_to } => {
                if self.blocked {
                    return Err(ConversationError::Blocked);
                }
                if let Some(reply_to) = reply_to {
                    if reply_to == 0 || reply_to > self.messages {
                        return Err(FieldError::new(
                            "replyTo",
                            format!("there is no message {reply_to} in this conversation"),
                        )
                        .into());
                    }
                }
                vec![E::OutboundMessageQueued {
                    seq: self.messages + 1,
                    content,
                    reply_to,
                }]
            }
            C::RecordDelivery {
                seq,
                telegram_message_id,
            } => {
                if !self.awaiting_delivery.contains(&seq) {
                    return Err(ConversationError::NotAwaitingDelivery(seq));
                }
                vec![E::OutboundMessageDelivered {
                    seq,
                    telegram_message_id,
                }]
            }
            C::RecordDeliveryFailure { seq, reason } => {
                if !self.awaiting_delivery.contains(&seq) {
                    return Err(ConversationError::NotAwaitingDelivery(seq));
                }
                let reason: String = reason.trim().chars().take(500).collect();
                vec![E::OutboundMessageFailed { seq, reason }]
            }
            C::MarkRead { up_to } => {
                let up_to = up_to.min(self.messages);
                if up_to <= self.read_up_to {
                    vec![]
                } else {
                    vec![E::ConversationRead { up_to }]
                }
            }
            C::Assign { assignee } => {
                if assignee == self.assignee {
                    vec![]
                } else {
                    vec![E::ConversationAssigned { assignee }]
                }
            }
            C::Close => {
                if self.closed {
                    vec![]
                } else {
                    vec![E::ConversationClosed]
                }
            }
            C::Reopen => {
                if self.closed {
                    vec![E::ConversationReopened {
                        automatically: false,
                    }]
                } else {
                    vec![]
                }
            }
            C::RecordBotBlocked { update_id } => {
                if self.blocked || update_id.is_some_and(|id| self.seen(id)) {
                    vec![]
                } else {
                    vec![E::BuyerBlockedBot { update_id }]
                }
            }
            C::RecordBotUnblocked { update_id } => {
                if !self.blocked || self.seen(update_id) {
                    vec![]
                } else {
                    vec![E::BuyerUnblockedBot]
                }
            }
        };
        Ok(events)
    }

    fn remember(&mut self, update_id: i64) {
        self.recent_updates.push_back(update_id);
        while self.recent_updates.len() > REMEMBERED_UPDATES {
            self.recent_updates.pop_front();
        }
    }

    /// Applies one of its events to the state.
    fn evolve(&mut self, event: ConversationEvent) {
        use ConversationEvent as E;
        match event {
            E::ConversationStarted {
                workspace_id,
                bot_id,
                chat_id,
                contact,
            } => {
                self.chat = Some(Chat {
                    workspace_id,
                    bot_id,
                    chat_id,
                    contact,
                });
            }
            E::InboundMessageReceived {
                seq,
                update_id,
                contact,
                ..
            } => {
                self.messages = seq;
                self.remember(update_id);
                if let (Some(chat), Some(contact)) = (&mut self.chat, contact) {
                    chat.contact = contact;
                }
            }
            E::InboundMessageEdited { update_id, .. } => self.remember(update_id),
            E::OutboundMessageQueued { seq, .. } => {
                self.messages = seq;
                self.awaiting_delivery.insert(seq);
            }
            E::OutboundMessageDelivered { seq, .. } | E::OutboundMessageFailed { seq, .. } => {
                self.awaiting_delivery.remove(&seq);
            }
            E::ConversationRead { up_to } => self.read_up_to = up_to,
            E::ConversationAssigned { assignee } => self.assignee = assignee,
            E::ConversationClosed => self.closed = true,
            E::ConversationReopened { .. } => self.closed = false,
            E::BuyerBlockedBot { update_id } => {
                self.blocked = true;
                if let Some(update_id) = update_id {
                    self.remember(update_id);
                }
            }
            E::BuyerUnblockedBot => self.blocked = false,
        }
    }
}

crate::decided_aggregate!(
    Conversation,
    "Conversation",
    ConversationCommand,
    ConversationEvent,
    ConversationError
);

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::context::{Actor, CommandContext};

    type ConversationTest = TestFramework<Conversation>;

    fn ws() -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(0xA))
    }

    fn bot() -> BotId {
        BotId(Uuid::from_u128(0xB07))
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn in_ws(workspace: WorkspaceId, body: ConversationCommand) -> Command<ConversationCommand> {
        Command::new(
            CommandContext::new(workspace, Actor::User(UserId(Uuid::from_u128(1))), at()),
            body,
        )
    }

    fn cmd(body: ConversationCommand) -> Command<ConversationCommand> {
        in_ws(ws(), body)
    }

    fn contact() -> ChatContact {
        ChatContact {
            first_name: Some("Ivan".into()),
            last_name: None,
            username: Some("ivan_buyer".into()),
        }
    }

    fn hello() -> MessageContent {
        MessageContent::text("text", "Is the Camry still available?").unwrap()
    }

    fn receive(update_id: i64) -> ConversationCommand {
        ConversationCommand::ReceiveInboundMessage {
            bot_id: bot(),
            chat_id: 42,
            contact: contact(),
            update_id,
            telegram_message_id: update_id * 10,
            content: hello(),
            sent_at: at(),
        }
    }

    fn started() -> ConversationEvent {
        ConversationEvent::ConversationStarted {
            workspace_id: ws(),
            bot_id: bot(),
            chat_id: 42,
            contact: contact(),
        }
    }

    fn received(seq: u64, update_id: i64) -> ConversationEvent {
        ConversationEvent::InboundMessageReceived {
            seq,
            update_id,
            telegram_message_id: update_id * 10,
            content: hello(),
            sent_at: at(),
            contact: None,
        }
    }

    fn queued(seq: u64) -> ConversationEvent {
        ConversationEvent::OutboundMessageQueued {
            seq,
            content: hello(),
            reply_to: None,
        }
    }

    #[test]
    fn the_first_message_starts_the_conversation() {
        ConversationTest::with(())
            .given_no_previous_events()
            .when(cmd(receive(100)))
            .then_expect_events(vec![started(), received(1, 100)]);
    }

    #[test]
    fn a_repeated_update_changes_nothing_even_interleaved_with_others() {
        let mut history = vec![started(), received(1, 100)];
        let mut conversation = Conversation::default();
        for event in history.clone() {
            conversation.evolve(event);
        }
        // 100, 101, 100, 102, 100: one message per distinct update.
        let mut seq = 1;
        for update in [101, 100, 102, 100] {
            let events = conversation.decide(cmd(receive(update))).unwrap();
            if update == 100 {
                assert!(events.is_empty(), "update {update} again");
            } else {
                seq += 1;
                assert_eq!(events, vec![received(seq, update)]);
            }
            for event in events {
                history.push(event.clone());
                conversation.evolve(event);
            }
        }
        assert_eq!(history.len(), 4);
    }

    #[test]
    fn updates_older_than_the_remembered_window_are_repeats_and_the_state_stays_small() {
        let mut conversation = Conversation::default();
        conversation.evolve(started());
        for update in 1..=1000 {
            for event in conversation.decide(cmd(receive(update))).unwrap() {
                conversation.evolve(event);
            }
        }
        assert_eq!(conversation.messages, 1000);
        assert_eq!(conversation.recent_updates.len(), REMEMBERED_UPDATES);
        assert!(conversation.decide(cmd(receive(3))).unwrap().is_empty());
        assert!(conversation.decide(cmd(receive(999))).unwrap().is_empty());
    }

    #[test]
    fn a_new_message_reopens_a_closed_conversation_and_unblocks_the_bot() {
        ConversationTest::with(())
            .given(vec![
                started(),
                received(1, 100),
                ConversationEvent::ConversationClosed,
                ConversationEvent::BuyerBlockedBot {
                    update_id: Some(101),
                },
            ])
            .when(cmd(receive(102)))
            .then_expect_events(vec![
                ConversationEvent::ConversationReopened {
                    automatically: true,
                },
                ConversationEvent::BuyerUnblockedBot,
                received(2, 102),
            ]);
    }

    #[test]
    fn a_changed_contact_travels_with_the_message() {
        let renamed = ChatContact {
            first_name: Some("Ivan".into()),
            last_name: Some("Petrenko".into()),
            username: Some("ivan_buyer".into()),
        };
        let mut command = receive(101);
        if let ConversationCommand::ReceiveInboundMessage { contact, .. } = &mut command {
            *contact = renamed.clone();
        }
        let mut expected = received(2, 101);
        if let ConversationEvent::InboundMessageReceived { contact, .. } = &mut expected {
            *contact = Some(renamed);
        }
        ConversationTest::with(())
            .given(vec![started(), received(1, 100)])
            .when(cmd(command))
            .then_expect_events(vec![expected]);
    }

    #[test]
    fn edits_are_recorded_once() {
        let edit = ConversationCommand::EditInboundMessage {
            update_id: 101,
            telegram_message_id: 1000,
            content: hello(),
            edited_at: at(),
        };
        ConversationTest::with(())
            .given(vec![started(), received(1, 100)])
            .when(cmd(edit.clone()))
            .then_expect_events(vec![ConversationEvent::InboundMessageEdited {
                update_id: 101,
                telegram_message_id: 1000,
                content: hello(),
                edited_at: at(),
            }]);
        ConversationTest::with(())
            .given(vec![
                started(),
                received(1, 100),
                ConversationEvent::InboundMessageEdited {
                    update_id: 101,
                    telegram_message_id: 1000,
                    content: hello(),
                    edited_at: at(),
                },
            ])
            .when(cmd(edit))
            .then_expect_events(vec![]);
    }

    #[test]
    fn operators_reply_and_deliveries_are_recorded_once_per_message() {
        ConversationTest::with(())
            .given(vec![started(), received(1, 100)])
            .when(cmd(ConversationCommand::QueueOutboundMessage {
                content: hello(),
                reply_to: Some(1),
            }))
            .then_expect_events(vec![ConversationEvent::OutboundMessageQueued {
                seq: 2,
                content: hello(),
                reply_to: Some(1),
            }]);
        ConversationTest::with(())
            .given(vec![started(), received(1, 100)])
            .when(cmd(ConversationCommand::QueueOutboundMessage {
                content: hello(),
                reply_to: Some(7),
            }))
            .then_expect_error(ConversationError::Invalid(FieldError::new(
                "replyTo",
                "there is no message 7 in this conversation",
            )));
        let history = vec![started(), received(1, 100), queued(2)];
        ConversationTest::with(())
            .given(history.clone())
            .when(cmd(ConversationCommand::RecordDelivery {
                seq: 2,
                telegram_message_id: 555,
            }))
            .then_expect_events(vec![ConversationEvent::OutboundMessageDelivered {
                seq: 2,
                telegram_message_id: 555,
            }]);
        ConversationTest::with(())
            .given(history.clone())
            .when(cmd(ConversationCommand::RecordDeliveryFailure {
                seq: 2,
                reason: "Forbidden: bot was blocked by the user".into(),
            }))
            .then_expect_events(vec![ConversationEvent::OutboundMessageFailed {
                seq: 2,
                reason: "Forbidden: bot was blocked by the user".into(),
            }]);
        let mut delivered = history;
        delivered.push(ConversationEvent::OutboundMessageDelivered {
            seq: 2,
            telegram_message_id: 555,
        });
        ConversationTest::with(())
            .given(delivered)
            .when(cmd(ConversationCommand::RecordDelivery {
                seq: 2,
                telegram_message_id: 556,
            }))
            .then_expect_error(ConversationError::NotAwaitingDelivery(2));
    }

    #[test]
    fn nothing_is_sent_to_a_buyer_who_blocked_the_bot() {
        ConversationTest::with(())
            .given(vec![
                started(),
                received(1, 100),
                ConversationEvent::BuyerBlockedBot {
                    update_id: Some(101),
                },
            ])
            .when(cmd(ConversationCommand::QueueOutboundMessage {
                content: hello(),
                reply_to: None,
            }))
            .then_expect_error(ConversationError::Blocked);
    }

    #[test]
    fn read_marks_only_move_forward_and_stop_at_the_last_message() {
        let history = vec![started(), received(1, 100), received(2, 101)];
        ConversationTest::with(())
            .given(history.clone())
            .when(cmd(ConversationCommand::MarkRead { up_to: 99 }))
            .then_expect_events(vec![ConversationEvent::ConversationRead { up_to: 2 }]);
        let mut read = history;
        read.push(ConversationEvent::ConversationRead { up_to: 2 });
        ConversationTest::with(())
            .given(read)
            .when(cmd(ConversationCommand::MarkRead { up_to: 1 }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn assignment_closing_and_reopening() {
        let member = UserId(Uuid::from_u128(7));
        ConversationTest::with(())
            .given(vec![started(), received(1, 100)])
            .when(cmd(ConversationCommand::Assign {
                assignee: Some(member),
            }))
            .then_expect_events(vec![ConversationEvent::ConversationAssigned {
                assignee: Some(member),
            }]);
        ConversationTest::with(())
            .given(vec![started(), received(1, 100)])
            .when(cmd(ConversationCommand::Close))
            .then_expect_events(vec![ConversationEvent::ConversationClosed]);
        ConversationTest::with(())
            .given(vec![
                started(),
                received(1, 100),
                ConversationEvent::ConversationClosed,
            ])
            .when(cmd(ConversationCommand::Reopen))
            .then_expect_events(vec![ConversationEvent::ConversationReopened {
                automatically: false,
            }]);
        ConversationTest::with(())
            .given(vec![started(), received(1, 100)])
            .when(cmd(ConversationCommand::Reopen))
            .then_expect_events(vec![]);
    }

    #[test]
    fn another_workspace_and_a_missing_conversation_are_not_found() {
        ConversationTest::with(())
            .given(vec![started(), received(1, 100)])
            .when(in_ws(
                WorkspaceId(Uuid::from_u128(0xC)),
                ConversationCommand::QueueOutboundMessage {
                    content: hello(),
                    reply_to: None,
                },
            ))
            .then_expect_error(ConversationError::NotFound);
        ConversationTest::with(())
            .given_no_previous_events()
            .when(cmd(ConversationCommand::Close))
            .then_expect_error(ConversationError::NotFound);
        ConversationTest::with(())
            .given(vec![started()])
            .when(cmd(ConversationCommand::RecordBotBlocked {
                update_id: Some(5),
            }))
            .then_expect_events(vec![ConversationEvent::BuyerBlockedBot {
                update_id: Some(5),
            }]);
    }
    #[test]
    fn a_block_seen_in_delivery_and_an_unblock_update() {
        // Telegram refused a delivery because of the block: no update id to remember.
        ConversationTest::with(())
            .given(vec![started(), received(1, 100)])
            .when(cmd(ConversationCommand::RecordBotBlocked {
                update_id: None,
            }))
            .then_expect_events(vec![ConversationEvent::BuyerBlockedBot { update_id: None }]);
        let blocked = || {
            vec![
                started(),
                received(1, 100),
                ConversationEvent::BuyerBlockedBot {
                    update_id: Some(101),
                },
            ]
        };
        ConversationTest::with(())
            .given(blocked())
            .when(cmd(ConversationCommand::RecordBotUnblocked {
                update_id: 102,
            }))
            .then_expect_events(vec![ConversationEvent::BuyerUnblockedBot]);
        // The blocking update itself, repeated, is no unblock; nor is an unblock when
        // nothing is blocked.
        ConversationTest::with(())
            .given(blocked())
            .when(cmd(ConversationCommand::RecordBotUnblocked {
                update_id: 101,
            }))
            .then_expect_events(vec![]);
        ConversationTest::with(())
            .given(vec![started(), received(1, 100)])
            .when(cmd(ConversationCommand::RecordBotUnblocked {
                update_id: 102,
            }))
            .then_expect_events(vec![]);
    }
}
