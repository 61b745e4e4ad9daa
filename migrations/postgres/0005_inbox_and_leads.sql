-- Inbox read model: one row per conversation, its messages; and the Leads read model.
CREATE TABLE inbox_conversations
(
    conversation_id      uuid    NOT NULL PRIMARY KEY,
    workspace_id         uuid    NOT NULL,
    bot_id               uuid    NOT NULL,
    chat_id              bigint NOT NULL,
    first_name           TEXT,
    last_name            TEXT,
    username             TEXT,
    phone                TEXT,
    closed               boolean NOT NULL,
    blocked              boolean NOT NULL,
    assignee             uuid,
    message_count        bigint NOT NULL,
    read_up_to           bigint NOT NULL,
    unread_count         bigint NOT NULL,
    last_message_preview TEXT,
    last_message_at      timestamptz    NOT NULL,
    -- Lower-cased name, username and phone, for search.
    search_text          TEXT    NOT NULL,
    -- Log position of the last change: subscribers ask for what changed after theirs.
    changed_position     bigint NOT NULL,
    created_at           timestamptz    NOT NULL
);
CREATE INDEX inbox_conversations_by_recency ON inbox_conversations (workspace_id, last_message_at, conversation_id);
CREATE INDEX inbox_conversations_by_bot ON inbox_conversations (workspace_id, bot_id, last_message_at);
CREATE INDEX inbox_conversations_by_assignee ON inbox_conversations (workspace_id, assignee, last_message_at);
CREATE INDEX inbox_conversations_by_change ON inbox_conversations (workspace_id, changed_position);

CREATE TABLE inbox_messages
(
    conversation_id     uuid    NOT NULL,
    seq                 bigint NOT NULL,
    workspace_id        uuid    NOT NULL,
    direction           TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    text                TEXT,
    -- Lower-cased text, for search.
    text_key            TEXT,
    content             TEXT    NOT NULL,
    telegram_message_id bigint,
    delivery            TEXT    NOT NULL,
    failure_reason      TEXT,
    reply_to            bigint,
    author              TEXT    NOT NULL,
    sent_at             timestamptz    NOT NULL,
    edited_at           timestamptz,
    -- Log position of the last change of the message (new, edited, delivered).
    position            bigint NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX inbox_messages_by_telegram_id ON inbox_messages (conversation_id, telegram_message_id);
CREATE INDEX inbox_messages_by_change ON inbox_messages (conversation_id, position);

CREATE TABLE leads
(
    lead_id          uuid    NOT NULL PRIMARY KEY,
    workspace_id     uuid    NOT NULL,
    source           TEXT    NOT NULL,
    name             TEXT,
    phone            TEXT,
    username         TEXT,
    brand            TEXT,
    model            TEXT,
    budget_minor     bigint,
    budget_currency  TEXT,
    listing_id       uuid,
    conversation_id  uuid,
    status           TEXT    NOT NULL,
    lost_reason      TEXT,
    assignee         uuid,
    notes            bigint NOT NULL,
    version          bigint NOT NULL,
    created_position bigint NOT NULL,
    created_at       timestamptz    NOT NULL,
    updated_at       timestamptz    NOT NULL
);
CREATE INDEX leads_by_recency ON leads (workspace_id, created_position);
CREATE INDEX leads_by_status ON leads (workspace_id, status, created_position);
CREATE INDEX leads_by_assignee ON leads (workspace_id, assignee, created_position);
CREATE INDEX leads_by_conversation ON leads (conversation_id);

-- Search by message text and by contact details, at any size of inbox.
CREATE INDEX inbox_messages_text_trgm ON inbox_messages USING gin (text_key gin_trgm_ops);
CREATE INDEX inbox_conversations_search_trgm ON inbox_conversations USING gin (search_text gin_trgm_ops);
