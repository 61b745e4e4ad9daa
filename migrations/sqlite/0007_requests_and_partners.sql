-- Requests read model: B2B requests with their needs, counts and best offer; the variants
-- offered for them; the partners each is addressed to; proposals shared with clients;
-- and the workspace's partner dealers.
CREATE TABLE requests
(
    request_id          BLOB    NOT NULL PRIMARY KEY,
    workspace_id        BLOB    NOT NULL,
    status              TEXT    NOT NULL,
    source              TEXT    NOT NULL,
    assignee            BLOB,
    brand               TEXT,
    model               TEXT,
    -- Lower-cased copies for case-insensitive filters.
    brand_key           TEXT,
    model_key           TEXT,
    year_min            INTEGER,
    year_max            INTEGER,
    budget_minor        INTEGER,
    budget_currency     TEXT,
    mileage_max         INTEGER,
    fuel                TEXT,
    gearbox             TEXT,
    body                TEXT,
    city                TEXT,
    notes               TEXT,
    client_name         TEXT,
    client_phone        TEXT,
    client_username     TEXT,
    lead_id             BLOB,
    lost_reason         TEXT,
    won_variant_id      BLOB,
    -- Variants offered (rejected ones included), and the cheapest one not rejected, in
    -- the budget's currency (without a budget: the first variant's).
    variant_count       INTEGER NOT NULL,
    offer_currency      TEXT,
    best_offer_minor    INTEGER,
    -- Telegram channel posts of the request: JSON [{"channel": …, "messageId": …}].
    channel_posts       TEXT    NOT NULL,
    version             INTEGER NOT NULL,
    created_position    INTEGER NOT NULL,
    -- Log position of the last change to the request or one of its variants.
    changed_position    INTEGER NOT NULL,
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    published_at        TEXT,
    closed_at           TEXT
) STRICT;
CREATE INDEX requests_by_recency ON requests (workspace_id, created_position);
CREATE INDEX requests_by_status ON requests (workspace_id, status, created_position);
CREATE INDEX requests_by_assignee ON requests (workspace_id, assignee, created_position);
CREATE INDEX requests_by_brand ON requests (workspace_id, brand_key, created_position);
CREATE INDEX requests_by_budget ON requests (workspace_id, budget_currency, budget_minor);
CREATE INDEX requests_by_creation_time ON requests (workspace_id, created_at);

CREATE TABLE request_variants
(
    variant_id       BLOB    NOT NULL PRIMARY KEY,
    request_id       BLOB    NOT NULL,
    workspace_id     BLOB    NOT NULL,
    source           TEXT    NOT NULL,
    partner_id       BLOB,
    listing_id       BLOB,
    listing_ref      TEXT,
    title            TEXT    NOT NULL,
    brand            TEXT,
    model            TEXT,
    year             INTEGER,
    mileage_km       INTEGER,
    fuel             TEXT,
    gearbox          TEXT,
    body             TEXT,
    description      TEXT,
    price_minor      INTEGER NOT NULL,
    price_currency   TEXT    NOT NULL,
    -- JSON array of photos as the listing's.
    photos           TEXT    NOT NULL,
    city             TEXT,
    status           TEXT    NOT NULL,
    reject_reason    TEXT,
    offered_position INTEGER NOT NULL,
    offered_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
) STRICT;
CREATE INDEX request_variants_by_request ON request_variants (request_id, offered_position);
CREATE INDEX request_variants_by_partner ON request_variants (partner_id, request_id);

CREATE TABLE request_partners
(
    request_id         BLOB    NOT NULL,
    partner_id         BLOB    NOT NULL,
    workspace_id       BLOB    NOT NULL,
    addressed_position INTEGER NOT NULL,
    addressed_at       TEXT    NOT NULL,
    PRIMARY KEY (request_id, partner_id)
) STRICT;
CREATE INDEX request_partners_by_partner ON request_partners (partner_id, addressed_position);

CREATE TABLE request_proposals
(
    proposal_id  BLOB NOT NULL PRIMARY KEY,
    request_id   BLOB NOT NULL,
    workspace_id BLOB NOT NULL,
    shared_at    TEXT NOT NULL,
    revoked_at   TEXT
) STRICT;
CREATE INDEX request_proposals_by_request ON request_proposals (request_id, shared_at);

CREATE TABLE partners
(
    partner_id       BLOB    NOT NULL PRIMARY KEY,
    workspace_id     BLOB    NOT NULL,
    name             TEXT    NOT NULL,
    city             TEXT,
    -- JSON array of {name, phone, email, telegram}.
    contacts         TEXT    NOT NULL,
    notes            TEXT,
    active           INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
) STRICT;
CREATE INDEX partners_by_name ON partners (workspace_id, name);

-- A partner's API token names its partner.
ALTER TABLE directory_api_tokens ADD COLUMN partner_id BLOB;

-- Matching a request against the inventory: available cars of a brand and model, cheapest
-- first.
CREATE INDEX inventory_listings_for_matching
    ON inventory_listings (workspace_id, brand_key, model_key, price_currency, price_minor);
