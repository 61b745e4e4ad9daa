-- Inventory read model: one row per listing, columns for every filter and sort.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE inventory_listings
(
    listing_id       uuid        NOT NULL PRIMARY KEY,
    workspace_id     uuid        NOT NULL,
    version          bigint      NOT NULL,
    status           text        NOT NULL,
    title            text        NOT NULL,
    description      text,
    brand            text,
    model            text,
    year             integer,
    mileage_km       bigint,
    fuel             text,
    gearbox          text,
    engine_volume_cc integer,
    body             text,
    colour           text,
    vin              text,
    city             text,
    price_minor      bigint,
    price_currency   text,
    photos           jsonb       NOT NULL,
    -- Lower-cased (Unicode-aware, by the projector) copies for case-insensitive matching.
    brand_key        text,
    model_key        text,
    city_key         text,
    search_text      text        NOT NULL,
    created_position bigint      NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

CREATE INDEX inventory_listings_by_recency ON inventory_listings (workspace_id, created_position);
CREATE INDEX inventory_listings_by_status ON inventory_listings (workspace_id, status);
CREATE INDEX inventory_listings_by_make ON inventory_listings (workspace_id, brand_key, model_key);
CREATE INDEX inventory_listings_by_price ON inventory_listings (workspace_id, price_currency, price_minor);
CREATE INDEX inventory_listings_by_year ON inventory_listings (workspace_id, year);
CREATE INDEX inventory_listings_by_mileage ON inventory_listings (workspace_id, mileage_km);
CREATE INDEX inventory_listings_by_city ON inventory_listings (workspace_id, city_key);
-- Substring search over title and description (LIKE '%word%').
CREATE INDEX inventory_listings_search ON inventory_listings USING gin (search_text gin_trgm_ops);

-- Every price a listing has had, the first one included.
CREATE TABLE inventory_price_history
(
    listing_id     uuid        NOT NULL,
    version        bigint      NOT NULL,
    workspace_id   uuid        NOT NULL,
    price_minor    bigint      NOT NULL,
    price_currency text        NOT NULL,
    changed_at     timestamptz NOT NULL,
    PRIMARY KEY (listing_id, version)
);
