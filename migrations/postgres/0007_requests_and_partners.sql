-- Requests read model: B2B requests with their needs, counts and best offer; the variants
-- offered for them; the partners each is addressed to; proposals shared with clients;
-- and the workspace's partner dealers.
CREATE TABLE requests
(
    request_id          uuid    NOT NULL PRIMARY KEY,
    workspace_id        uuid    NOT NULL,
    status              TEXT    NOT NULL,
    source              TEXT    NOT NULL,
    assignee            uuid,
    brand               TEXT,
    model               TEXT,
    -- Lower-cased copies for case-insensitive filters.
    brand_key           TEXT,
    model_key           TEXT,
    year_min            bigint,
    year_max            bigint,
    budget_minor        bigint,
    budget_currency     TEXT,
    mileage_max         bigint,
    fuel                TEXT,
    gearbox             TEXT,
    body                TEXT,
    city                TEXT,
    notes               TEXT,
    client_name         TEXT,
    client_phone        TEXT,
    client_username     TEXT,
    lead_id             uuid,
    lost_reason         TEXT,
    won_variant_id      uuid,
    -- Variants offered (rejected ones included), and the cheapest one not rejected, in
    -- the budget's currency (without a budget: the first variant's).
    variant_count       bigint  NOT NULL,
    offer_currency      TEXT,
    best_offer_minor    bigint,
    -- Telegram channel posts of the request: JSON [{"channel": …, "messageId": …}].
    channel_posts       jsonb   NOT NULL,
    version             bigint  NOT NULL,
    created_position    bigint  NOT NULL,
    -- Log position of the last change to the request or one of its variants.
    changed_position    bigint  NOT NULL,
    created_at          timestamptz    NOT NULL,
    updated_at          timestamptz    NOT NULL,
    published_at        timestamptz,
    closed_at           timestamptz
);
CREATE INDEX requests_by_recency ON requests (workspace_id, created_position);
CREATE INDEX requests_by_status ON requests (workspace_id, status, created_position);
CREATE INDEX requests_by_assignee ON requests (workspace_id, assignee, created_position);
CREATE INDEX requests_by_brand ON requests (workspace_id, brand_key, created_position);
CREATE INDEX requests_by_budget ON requests (workspace_id, budget_currency, budget_minor);
CREATE INDEX requests_by_creation_time ON requests (workspace_id, created_at);

CREATE TABLE request_variants
(
    variant_id       uuid    NOT NULL PRIMARY KEY,
    request_id       uuid    NOT NULL,
    workspace_id     uuid    NOT NULL,
    source           TEXT    NOT NULL,
    partner_id       uuid,
    listing_id       uuid,
    listing_ref      TEXT,
    title            TEXT    NOT NULL,
    brand            TEXT,
    model            TEXT,
    year             bigint,
    mileage_km       bigint,
    fuel             TEXT,
    gearbox          TEXT,
    body             TEXT,
    description      TEXT,
    price_minor      bigint  NOT NULL,
    price_currency   TEXT    NOT NULL,
    -- JSON array of photos as the listing's.
    photos           jsonb   NOT NULL,
    city             TEXT,
    status           TEXT    NOT NULL,
    reject_reason    TEXT,
    offered_position bigint  NOT NULL,
    offered_at       timestamptz    NOT NULL,
    updated_at       timestamptz    NOT NULL
);
CREATE INDEX request_variants_by_request ON request_variants (request_id, offered_position);
CREATE INDEX request_variants_by_partner ON request_variants (partner_id, request_id);

CREATE TABLE request_partners
(
    request_id         uuid    NOT NULL,
    partner_id         uuid    NOT NULL,
    workspace_id       uuid    NOT NULL,
    addressed_position bigint  NOT NULL,
    addressed_at       timestamptz    NOT NULL,
    PRIMARY KEY (request_id, partner_id)
);
CREATE INDEX request_partners_by_partner ON request_partners (partner_id, addressed_position);

CREATE TABLE request_proposals
(
    proposal_id  uuid NOT NULL PRIMARY KEY,
    request_id   uuid NOT NULL,
    workspace_id uuid NOT NULL,
    shared_at    timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX request_proposals_by_request ON request_proposals (request_id, shared_at);

CREATE TABLE partners
(
    partner_id       uuid    NOT NULL PRIMARY KEY,
    workspace_id     uuid    NOT NULL,
    name             TEXT    NOT NULL,
    city             TEXT,
    -- JSON array of {name, phone, email, telegram}.
    contacts         jsonb   NOT NULL,
    notes            TEXT,
    active           boolean NOT NULL,
    version          bigint  NOT NULL,
    created_at       timestamptz    NOT NULL,
    updated_at       timestamptz    NOT NULL
);
CREATE INDEX partners_by_name ON partners (workspace_id, name);

-- A partner's API token names its partner.
ALTER TABLE directory_api_tokens ADD COLUMN partner_id uuid;

-- Matching a request against the inventory: available cars of a brand and model, cheapest
-- first.
CREATE INDEX inventory_listings_for_matching
    ON inventory_listings (workspace_id, brand_key, model_key, price_currency, price_minor);
