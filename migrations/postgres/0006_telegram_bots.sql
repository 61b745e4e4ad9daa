-- Telegram bots: the Bots read model, the adapter's record of updates received, and the
-- delivery reactor's outbox.

-- Bots read model (projection "bots"). The token and webhook secret stay sealed.
CREATE TABLE telegram_bots
(
    bot_id                uuid    NOT NULL PRIMARY KEY,
    workspace_id          uuid    NOT NULL,
    telegram_id           bigint  NOT NULL,
    username              TEXT    NOT NULL,
    name                  TEXT    NOT NULL,
    mode                  TEXT    NOT NULL,
    enabled               boolean NOT NULL,
    token_sealed          TEXT    NOT NULL,
    webhook_secret_sealed TEXT,
    webhook_url           TEXT,
    webhook_set_at        timestamptz,
    commands              TEXT    NOT NULL,
    -- Bumped by every change: pollers and the webhook cache notice new tokens and modes.
    version               bigint  NOT NULL,
    registered_at         timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
CREATE INDEX telegram_bots_by_workspace ON telegram_bots (workspace_id, username);

-- The last update each bot received (webhook or polling). Long polling resumes after it.
-- Adapter state, not a read model: it is written as updates are handled.
CREATE TABLE telegram_bot_updates
(
    bot_id         uuid    NOT NULL PRIMARY KEY,
    last_update_id bigint  NOT NULL,
    last_update_at timestamptz NOT NULL
);

-- Delivery reactor (projection "telegram-delivery"): where each conversation's chat is,
-- and the outbound messages still to send. A row leaves the outbox when its delivery or
-- failure is in the log.
CREATE TABLE telegram_delivery_chats
(
    conversation_id uuid    NOT NULL PRIMARY KEY,
    workspace_id    uuid    NOT NULL,
    bot_id          uuid    NOT NULL,
    chat_id         bigint  NOT NULL
);

CREATE TABLE telegram_outbox
(
    conversation_id uuid    NOT NULL,
    seq             bigint  NOT NULL,
    workspace_id    uuid    NOT NULL,
    bot_id          uuid    NOT NULL,
    chat_id         bigint  NOT NULL,
    content         TEXT    NOT NULL,
    reply_to        bigint,
    queued_position bigint  NOT NULL,
    attempts        bigint  NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      TEXT,
    -- Set once Telegram accepted the message and until the log records it: a restart
    -- in between records the delivery instead of sending again.
    sent_message_id bigint,
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX telegram_outbox_due ON telegram_outbox (next_attempt_at, queued_position);
CREATE INDEX telegram_outbox_by_bot ON telegram_outbox (bot_id);
