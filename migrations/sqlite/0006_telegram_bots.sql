-- Telegram bots: the Bots read model, the adapter's record of updates received, and the
-- delivery reactor's outbox.

-- Bots read model (projection "bots"). The token and webhook secret stay sealed.
CREATE TABLE telegram_bots
(
    bot_id                BLOB    NOT NULL PRIMARY KEY,
    workspace_id          BLOB    NOT NULL,
    telegram_id           INTEGER NOT NULL,
    username              TEXT    NOT NULL,
    name                  TEXT    NOT NULL,
    mode                  TEXT    NOT NULL,
    enabled               INTEGER NOT NULL,
    token_sealed          TEXT    NOT NULL,
    webhook_secret_sealed TEXT,
    webhook_url           TEXT,
    webhook_set_at        TEXT,
    commands              TEXT    NOT NULL,
    -- Bumped by every change: pollers and the webhook cache notice new tokens and modes.
    version               INTEGER NOT NULL,
    registered_at         TEXT    NOT NULL,
    updated_at            TEXT    NOT NULL
) STRICT;
CREATE INDEX telegram_bots_by_workspace ON telegram_bots (workspace_id, username);

-- The last update each bot received (webhook or polling). Long polling resumes after it.
-- Adapter state, not a read model: it is written as updates are handled.
CREATE TABLE telegram_bot_updates
(
    bot_id         BLOB    NOT NULL PRIMARY KEY,
    last_update_id INTEGER NOT NULL,
    last_update_at TEXT    NOT NULL
) STRICT;

-- Delivery reactor (projection "telegram-delivery"): where each conversation's chat is,
-- and the outbound messages still to send. A row leaves the outbox when its delivery or
-- failure is in the log.
CREATE TABLE telegram_delivery_chats
(
    conversation_id BLOB    NOT NULL PRIMARY KEY,
    workspace_id    BLOB    NOT NULL,
    bot_id          BLOB    NOT NULL,
    chat_id         INTEGER NOT NULL
) STRICT;

CREATE TABLE telegram_outbox
(
    conversation_id BLOB    NOT NULL,
    seq             INTEGER NOT NULL,
    workspace_id    BLOB    NOT NULL,
    bot_id          BLOB    NOT NULL,
    chat_id         INTEGER NOT NULL,
    content         TEXT    NOT NULL,
    reply_to        INTEGER,
    queued_position INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT,
    -- Set once Telegram accepted the message and until the log records it: a restart
    -- in between records the delivery instead of sending again.
    sent_message_id INTEGER,
    PRIMARY KEY (conversation_id, seq)
) STRICT;
CREATE INDEX telegram_outbox_due ON telegram_outbox (next_attempt_at, queued_position);
CREATE INDEX telegram_outbox_by_bot ON telegram_outbox (bot_id);
