-- Inbox read model: one row per conversation, its messages; and the Leads read model.
CREATE TABLE inbox_conversations
(
    conversation_id      BLOB    NOT NULL PRIMARY KEY,
    workspace_id         BLOB    NOT NULL,
    bot_id               BLOB    NOT NULL,
    chat_id              INTEGER NOT NULL,
    first_name           TEXT,
    last_name            TEXT,
    username             TEXT,
    phone                TEXT,
    closed               INTEGER NOT NULL,
    blocked              INTEGER NOT NULL,
    assignee             BLOB,
    message_count        INTEGER NOT NULL,
    read_up_to           INTEGER NOT NULL,
    unread_count         INTEGER NOT NULL,
    last_message_preview TEXT,
    last_message_at      TEXT    NOT NULL,
    -- Lower-cased name, username and phone, for search.
    search_text          TEXT    NOT NULL,
    -- Log position of the last change: subscribers ask for what changed after theirs.
    changed_position     INTEGER NOT NULL,
    created_at           TEXT    NOT NULL
) STRICT;
CREATE INDEX inbox_conversations_by_recency ON inbox_conversations (workspace_id, last_message_at, conversation_id);
CREATE INDEX inbox_conversations_by_bot ON inbox_conversations (workspace_id, bot_id, last_message_at);
CREATE INDEX inbox_conversations_by_assignee ON inbox_conversations (workspace_id, assignee, last_message_at);
CREATE INDEX inbox_conversations_by_change ON inbox_conversations (workspace_id, changed_position);

CREATE TABLE inbox_messages
(
    conversation_id     BLOB    NOT NULL,
    seq                 INTEGER NOT NULL,
    workspace_id        BLOB    NOT NULL,
    direction           TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    text                TEXT,
    -- Lower-cased text, for search.
    text_key            TEXT,
    content             TEXT    NOT NULL,
    telegram_message_id INTEGER,
    delivery            TEXT    NOT NULL,
    failure_reason      TEXT,
    reply_to            INTEGER,
    author              TEXT    NOT NULL,
    sent_at             TEXT    NOT NULL,
    edited_at           TEXT,
    -- Log position of the last change of the message (new, edited, delivered).
    position            INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) STRICT;
CREATE INDEX inbox_messages_by_telegram_id ON inbox_messages (conversation_id, telegram_message_id);
CREATE INDEX inbox_messages_by_change ON inbox_messages (conversation_id, position);

CREATE TABLE leads
(
    lead_id          BLOB    NOT NULL PRIMARY KEY,
    workspace_id     BLOB    NOT NULL,
    source           TEXT    NOT NULL,
    name             TEXT,
    phone            TEXT,
    username         TEXT,
    brand            TEXT,
    model            TEXT,
    budget_minor     INTEGER,
    budget_currency  TEXT,
    listing_id       BLOB,
    conversation_id  BLOB,
    status           TEXT    NOT NULL,
    lost_reason      TEXT,
    assignee         BLOB,
    notes            INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    created_position INTEGER NOT NULL,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
) STRICT;
CREATE INDEX leads_by_recency ON leads (workspace_id, created_position);
CREATE INDEX leads_by_status ON leads (workspace_id, status, created_position);
CREATE INDEX leads_by_assignee ON leads (workspace_id, assignee, created_position);
CREATE INDEX leads_by_conversation ON leads (conversation_id);
