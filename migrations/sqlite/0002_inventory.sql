-- Inventory read model: one row per listing, columns for every filter and sort.
CREATE TABLE inventory_listings
(
    listing_id       BLOB    NOT NULL PRIMARY KEY,
    workspace_id     BLOB    NOT NULL,
    version          INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    title            TEXT    NOT NULL,
    description      TEXT,
    brand            TEXT,
    model            TEXT,
    year             INTEGER,
    mileage_km       INTEGER,
    fuel             TEXT,
    gearbox          TEXT,
    engine_volume_cc INTEGER,
    body             TEXT,
    colour           TEXT,
    vin              TEXT,
    city             TEXT,
    price_minor      INTEGER,
    price_currency   TEXT,
    photos           TEXT    NOT NULL,
    -- Lower-cased (Unicode-aware, by the projector) copies for case-insensitive matching.
    brand_key        TEXT,
    model_key        TEXT,
    city_key         TEXT,
    search_text      TEXT    NOT NULL,
    created_position INTEGER NOT NULL,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
) STRICT;

CREATE INDEX inventory_listings_by_recency ON inventory_listings (workspace_id, created_position);
CREATE INDEX inventory_listings_by_status ON inventory_listings (workspace_id, status);
CREATE INDEX inventory_listings_by_make ON inventory_listings (workspace_id, brand_key, model_key);
CREATE INDEX inventory_listings_by_price ON inventory_listings (workspace_id, price_currency, price_minor);
CREATE INDEX inventory_listings_by_year ON inventory_listings (workspace_id, year);
CREATE INDEX inventory_listings_by_mileage ON inventory_listings (workspace_id, mileage_km);
CREATE INDEX inventory_listings_by_city ON inventory_listings (workspace_id, city_key);

-- Every price a listing has had, the first one included.
CREATE TABLE inventory_price_history
(
    listing_id     BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    workspace_id   BLOB    NOT NULL,
    price_minor    INTEGER NOT NULL,
    price_currency TEXT    NOT NULL,
    changed_at     TEXT    NOT NULL,
    PRIMARY KEY (listing_id, version)
) STRICT;
